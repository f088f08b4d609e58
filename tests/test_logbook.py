"""`gptkit log`: every kind the logbook holds is listed, found, shown and exported (ui/logbook.py)."""

import json

from click.testing import CliRunner

from gptkit.cli import cli
from gptkit.store import ENTRY_KINDS, open_logbook


def log(*args):
    result = CliRunner(env={"COLUMNS": "160"}).invoke(cli, ["log", *args], catch_exceptions=False)
    return result


def rank_a_moon(logbook):
    return logbook.log_ranking("Name a moon of Jupiter.",
                               [{"text": "Io", "checkpoint": "a/step-000001"}, {"text": "Titan", "checkpoint": "b/step-000001"},
                                {"text": "Europa", "checkpoint": "a/step-000001"}], [1, 2, 1], rater="ann")


def test_a_logbook_of_rankings_only_lists_them():
    with open_logbook() as logbook:
        rank_a_moon(logbook)
    listing = log()
    assert listing.exit_code == 0 and "empty" not in listing.output
    assert "Name a moon of Jupiter." in listing.output and "1=3>2 (tie of 2) best: Io" in listing.output
    [row] = listing.output.splitlines()[1:]
    words = row.split()
    assert (words[0], words[3]) == ("r1", "rank") and "a/step-000001, b/st…" in row
    # a kind it does not hold: say what it does hold
    assert log("--kind", "chat").output.strip() == "no matching entries; the logbook holds 1 rank (gptkit log --kind KIND)"


def test_every_kind_is_listed_found_shown_and_exported(tmp_path):
    with open_logbook() as logbook:
        rank_a_moon(logbook)
        logbook.log_experiment_result(experiment_id="e1", template="few-shot", checkpoint="a/step-000001",
                                      question="What is the capital of Peru?", expected="Lima", output="A: Lima",
                                      extracted="Lima", correct=True)
        logbook.log_generation(kind="generate", checkpoint="a/step-000001", prompt="Once upon", output=" a time")
    kinds = [json.loads(line)["kind"] for line in log("--json").output.splitlines()]
    assert kinds == ["generate", "experiment", "rank"]
    for kind in ("rank", "experiment", "generate"):
        assert [json.loads(line)["kind"] for line in log("--kind", kind, "--json").output.splitlines()] == [kind]
    [found] = [json.loads(line) for line in log("--search", "jupiter", "--json").output.splitlines()]
    assert found["kind"] == "rank" and [a["text"] for a in found["answers"]] == ["Io", "Europa", "Titan"]
    shown = log("show", "r1")
    assert shown.exit_code == 0 and "answer 2 (rank 2, b/step-000001)" in shown.output and "Titan" in shown.output
    assert json.loads(log("show", "r1", "--json").output) == {**found, "deleted": None}
    shown = log("show", "x1")
    assert shown.exit_code == 0 and "What is the capital of Peru?" in shown.output and "few-shot" in shown.output
    assert "Once upon" in log("show", "1").output  # each kind numbers its own entries
    assert log("show", "r9").exit_code == 2 and log("show", "moon").exit_code == 2
    out = tmp_path / "all.jsonl"
    assert log("export", str(out)).output.strip() == f"wrote 3 entries -> {out}"
    assert [json.loads(line)["kind"] for line in out.read_text().splitlines()] == ["rank", "experiment", "generate"]


def test_help_names_every_kind_and_an_empty_logbook_says_how_to_fill_it():
    help_text = " ".join(log("--help").output.split())
    assert all(f"({kind})" in help_text for kind in ENTRY_KINDS)
    assert "chat, vote, generate, rank or experiment" in help_text
    assert "the logbook is empty" in log().output
