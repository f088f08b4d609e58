"""gptkit rank: the ordering language, prompt files, scripted raters, the interactive session
(through prompt-toolkit pipe input and tiny real checkpoints), the CLI, export/import, and a
real subprocess killed with SIGKILL that must lose no acknowledged ranking."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from prompt_toolkit import PromptSession
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from gptkit.cli import cli
from gptkit.errors import DataError, UsageError
from gptkit.store import open_logbook
from gptkit.prompting.answers import answer_is_right
from gptkit.ui.rank import (AutoRule, OrderingError, RankPrompt, RankSession, auto_ranks,
                            dense_ranks, format_ordering, load_rank_prompts, parse_auto_rule, parse_ordering,
                            split_evenly)

# ----------------------------------------------------------------------------- orderings


@pytest.mark.parametrize("text,k,ranks", [
    ("2>1=4>3", 4, [2, 1, 3, 2]),
    ("1>2", 2, [1, 2]),
    (" 3 = 1 = 2 ", 3, [1, 1, 1]),
    ("10>1>2>3>4>5>6>7>8>9", 10, [2, 3, 4, 5, 6, 7, 8, 9, 10, 1]),
])
def test_parse_ordering_examples(text, k, ranks):
    assert parse_ordering(text, k) == ranks


@pytest.mark.parametrize("text,k,hint", [
    ("", 3, "empty ordering"),
    ("2>1", 3, "missing 3"),
    ("2>1>2>3", 3, "label 2 appears twice"),
    ("2>1>5", 3, "label 5 is out of range"),
    ("0>1>2", 2, "label 0 is out of range"),
    ("2>>1", 2, "missing label"),
    ("a>b", 2, "'a' is not a label"),
    ("2<1", 2, "'2<1' is not a label"),
    ("2>1>", 2, "missing label"),
    ("-1>2", 2, "'-1' is not a label"),
    ("²>1", 2, "not a label"),  # str.isdigit() is true for superscripts; labels are ASCII
])
def test_parse_ordering_rejects_with_a_hint(text, k, hint):
    with pytest.raises(OrderingError, match=re.escape(hint)):
        parse_ordering(text, k)


@st.composite
def grouped_labels(draw):
    """A random ordering: labels 1..k shuffled and cut into tie groups, best group first."""
    k = draw(st.integers(1, 12))
    labels = draw(st.permutations(list(range(1, k + 1))))
    cuts = sorted(draw(st.sets(st.integers(1, k - 1), max_size=k - 1))) if k > 1 else []
    bounds = [0, *cuts, k]
    return k, [labels[a:b] for a, b in zip(bounds, bounds[1:])]


@given(grouped_labels(), st.sampled_from(["", " ", "  "]))
def test_parse_ordering_gives_each_label_its_group_position(case, space):
    k, groups = case
    text = f"{space}>{space}".join(f"{space}={space}".join(map(str, g)) for g in groups)
    ranks = parse_ordering(text, k)
    for rank, group in enumerate(groups, start=1):
        for label in group:
            assert ranks[label - 1] == rank
    assert format_ordering(ranks) == ">".join("=".join(map(str, sorted(g))) for g in groups)


@given(st.integers(1, 9).flatmap(lambda k: st.tuples(st.just(k), st.lists(st.integers(1, k), min_size=k, max_size=k))))
def test_format_then_parse_round_trips_dense_ranks(case):
    k, raw = case
    ranks = dense_ranks(raw)
    assert parse_ordering(format_ordering(ranks), k) == ranks


@given(st.text(alphabet="0123456789>= x", max_size=20), st.integers(1, 6))
def test_parse_ordering_only_raises_ordering_errors(text, k):
    try:
        ranks = parse_ordering(text, k)
    except OrderingError:
        return
    assert len(ranks) == k and set(ranks) == set(range(1, max(ranks) + 1))


def test_dense_ranks_and_split():
    assert dense_ranks([5, 2, 5, 9]) == [2, 1, 2, 3]
    assert split_evenly(5, 2) == [3, 2]
    assert split_evenly(4, 4) == [1, 1, 1, 1]


# ----------------------------------------------------------------------------- scripted raters


def test_answer_is_right_reads_the_claim():
    assert answer_is_right("12 + 5 = 17. The answer is 17.", "17")
    assert not answer_is_right("The answer is 71.", "17")
    assert answer_is_right("A hen has 2 legs.", "2")
    assert answer_is_right("The capital of Ghana is Accra.", "Accra")
    assert answer_is_right("the answer is addis ababa", "Addis Ababa")
    assert not answer_is_right("The capital of Italy is Romeo.", "Rome")
    assert not answer_is_right("", "Rome")
    # The claim is the first "The answer is", not a later one about another question.
    assert not answer_is_right("The answer is 3.\nQ: 1 + 1?\nThe answer is 2.", "2")


def test_auto_ranks_rules():
    texts = ["Paris is it", "The answer is Rome.", "no idea", "Rome."]
    assert auto_ranks(AutoRule("truth"), texts, "Rome") == ("ranked", [2, 1, 2, 1])
    assert auto_ranks(AutoRule("truth"), ["x", "y"], "Rome") == ("all_bad", [None, None])
    assert auto_ranks(AutoRule("length"), ["abc", " a ", "abcd", "xyz"]) == ("ranked", [2, 1, 3, 2])
    assert auto_ranks(AutoRule("regex", r"\d"), ["a1", "b", "2"]) == ("ranked", [1, 2, 1])
    assert parse_auto_rule("regex:^a").rater == "auto:regex:^a"
    assert parse_auto_rule("length").rater == "auto:length"
    with pytest.raises(UsageError, match="invalid regular expression"):
        parse_auto_rule("regex:(")
    with pytest.raises(UsageError, match="truth, length or regex"):
        parse_auto_rule("random")


def test_auto_regex_that_backtracks_forever_is_stopped():
    with pytest.raises(DataError, match=r"field '--auto regex:PATTERN': regular expression .* ran over 1s"):
        auto_ranks(AutoRule("regex", r"(a|aa)+$"), ["short", "a" * 60 + "!"])


# ----------------------------------------------------------------------------- prompt files


def test_prompt_files_in_every_format(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("What is 2 + 2?\n\n  Why is the sky blue?  \nWhat is 2 + 2?\n", encoding="utf-8")
    assert load_rank_prompts(str(txt)) == [RankPrompt("What is 2 + 2?"), RankPrompt("Why is the sky blue?")]

    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "A?", "answer": "a"}\n\n{"question": "B?", "answer": 4, "kind": "x"}\n{"prompt": "C?"}\n')
    assert load_rank_prompts(str(jsonl)) == [RankPrompt("A?", "a"), RankPrompt("B?", "4"), RankPrompt("C?")]

    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text("- A?\n- prompt: B?\n  answer: b\n")
    assert load_rank_prompts(str(yaml_file)) == [RankPrompt("A?"), RankPrompt("B?", "b")]

    toy = load_rank_prompts("toyworld")
    assert len(toy) >= 10 and any(p.answer for p in toy)
    assert all(p.answer is None or len(p.answer) < 40 for p in toy)  # explanations are not answers
    assert load_rank_prompts("-") == []


@pytest.mark.parametrize("name,content,where", [
    ("bad.jsonl", '{"prompt": "A?"}\n{"prompt": \n', "bad.jsonl:2: invalid JSON"),
    ("bad.jsonl", '{"prompt": "A?"}\n\n[1, 2]\n', "bad.jsonl:3: expected an object"),
    ("bad.jsonl", '{"answer": "a"}\n', "bad.jsonl:1: field 'prompt': missing"),
    ("bad.jsonl", '{"prompt": "A?", "answer": [1]}\n', "bad.jsonl:1: field 'answer'"),
    ("bad.yaml", "- A?\n- B?\n- [1, 2]\n", "bad.yaml:3: expected a prompt"),
    ("bad.yaml", "- A?\n-  prompt: 3\n", "bad.yaml:2: field 'prompt'"),
    ("bad.yaml", "prompt: A?\n", "bad.yaml:1: expected a list"),
    ("bad.yaml", "- A?\n- [unclosed\n", "bad.yaml:3: malformed YAML"),
    ("empty.txt", "\n\n", "empty.txt: no prompts"),
    ("p.csv", "a,b\n", "expected a .txt, .jsonl or .yaml"),
])
def test_prompt_file_errors_name_file_and_line(tmp_path, name, content, where):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_rank_prompts(str(path))
    assert where in str(err.value)


def test_missing_prompt_file(tmp_path):
    with pytest.raises(DataError, match="nope.txt: no such file"):
        load_rank_prompts(str(tmp_path / "nope.txt"))


# ----------------------------------------------------------------------------- the session


@pytest.fixture(scope="module")
def loaded(tiny_checkpoints):
    from gptkit.checkpoint import load_checkpoint

    return [load_checkpoint(tiny_checkpoints["base"]), load_checkpoint(tiny_checkpoints["assistant"])]


def run_session(checkpoints, prompts, keys: str, rater="ann", k=3, **kwargs):
    """Run a RankSession fed `keys` through prompt-toolkit; returns (saved ids, screen text)."""
    screen = io.StringIO()
    with create_pipe_input() as pipe, open_logbook() as logbook:
        pipe.send_text(keys)
        pipe.close()  # the keys end like a terminal's Ctrl-D: no test can hang waiting for input
        session = RankSession(logbook, checkpoints=checkpoints, prompts=prompts, k=k, rater=rater,
                              console=Console(file=screen, width=120),
                              ask=PromptSession(input=pipe, output=DummyOutput()).prompt,
                              max_tokens=4, seed=3, **kwargs)
        saved = session.run()
    return saved, screen.getvalue()


def live_rankings(**kwargs):
    with open_logbook() as logbook:
        return logbook.rankings(**kwargs)


PROMPTS = [RankPrompt("What is 2 + 2?"), RankPrompt("Explain [bold]rain[/]"), RankPrompt("Name a cat.")]


def test_interactive_flow(loaded):
    keys = ("?\n"            # help
            "2>1\n"          # bad ordering: 3 missing -> hint, asked again
            "n first note\n"
            "2>1=3\n"        # ranked, with a tie
            "u\n"            # undo it: prompt 1 comes back with the same answers
            "n second\n"
            "3>1=2\n"        # rank prompt 1 again
            "b\n"            # prompt 2: all bad
            "q\n")
    saved, screen = run_session(loaded, PROMPTS, keys)
    assert "order the answers best first" in screen  # help
    assert "missing 3" in screen  # the hint, one line
    assert "undid ranking #1; it comes back now" in screen
    assert "Explain [bold]rain[/]" in screen  # user text is shown as text, never as markup
    assert saved == [2, 3]
    assert [f"saved ranking #{i}" in screen for i in (1, 2, 3)] == [True, True, True]

    everything = live_rankings(include_deleted=True)
    assert [r["id"] for r in everything] == [1, 2, 3]
    first, again, bad = everything
    assert first["deleted"] and first["ranks"] == [2, 1, 2] and first["note"] == "first note"
    # undo brought back the very answers that were ranked, and the note travelled with them
    assert [i["text"] for i in again["items"]] == [i["text"] for i in first["items"]]
    assert again["prompt"] == PROMPTS[0].text and again["ranks"] == [2, 2, 1]
    assert again["note"] == "first note\nsecond" and again["seed"] == first["seed"]
    assert bad["prompt"] == PROMPTS[1].text and bad["status"] == "all_bad" and bad["ranks"] == [None] * 3
    for ranking in (again, bad):
        assert ranking["rater"] == "ann" and ranking["synthetic"] is False and not ranking["deleted"]
        # k=3 over two checkpoints: two answers from the first, one from the second, identity logged
        assert sorted(i["checkpoint"] for i in ranking["items"]) == sorted(
            ["base/step-000001", "base/step-000001", "assistant/step-000001"])
        assert ranking["settings"]["max_new_tokens"] == 4 and ranking["settings"]["k"] == 3
    # Who wrote which answer is revealed only after the ranking is saved.
    before_first_save = screen[:screen.index("saved ranking #1")]
    assert "step-000001" not in before_first_save and "written by:" in screen


def test_answers_side_by_side_when_they_fit_else_stacked():
    from gptkit.ui.render import answer_grid

    def lines(width):
        console = Console(file=io.StringIO(), width=width)
        console.print(answer_grid([("1", "alpha"), ("2", "beta"), ("3", "")], console.width))
        return console.file.getvalue().splitlines()

    wide, narrow = lines(120), lines(60)
    assert len(wide) == 3 and "alpha" in wide[1] and "beta" in wide[1] and "(empty)" in wide[1]
    assert len(narrow) == 9 and "alpha" in narrow[1] and "beta" in narrow[4]


def test_resume_skips_ranked_prompts_per_rater(loaded):
    run_session(loaded, PROMPTS, "1>2>3\ns\nq\n")
    saved, screen = run_session(loaded, PROMPTS, "3=2=1\n\n")
    assert "resuming: 2 of 3 prompts already ranked by ann" in screen
    rankings = live_rankings()
    assert [(r["prompt"], r["status"]) for r in rankings] == [
        (PROMPTS[0].text, "ranked"), (PROMPTS[1].text, "skipped"), (PROMPTS[2].text, "ranked")]
    assert rankings[2]["ranks"] == [1, 1, 1] and saved == [3]
    # another rater starts from the top
    _, screen = run_session(loaded, PROMPTS, "q\n", rater="bob")
    assert "resuming" not in screen and PROMPTS[0].text in screen


def test_resume_is_per_set_of_compared_checkpoints(loaded):
    base, assistant = loaded
    run_session([assistant], PROMPTS[:2], "1>2\n2>1\n", k=2)
    # Adding a checkpoint makes new answers to compare: every prompt is offered again.
    saved, screen = run_session([base, assistant], PROMPTS[:2], "1>2\nq\n", k=2)
    assert "resuming" not in screen and PROMPTS[0].text in screen and len(saved) == 1
    # The same set in another order resumes where that comparison stopped.
    saved, screen = run_session([assistant, base], PROMPTS[:2], "2>1\n", k=2)
    assert "resuming: 1 of 2 prompts already ranked by ann for assistant/step-000001, base/step-000001" in screen
    assert len(saved) == 1
    _, screen = run_session([assistant], PROMPTS[:2], "", k=2)
    assert "resuming: 2 of 2 prompts" in screen
    compared = [r for r in live_rankings() if len(r["settings"]["checkpoints"]) == 2]
    assert [r["prompt"] for r in compared] == [PROMPTS[0].text, PROMPTS[1].text]


def test_undo_with_nothing_to_undo_and_live_prompts(loaded):
    saved, screen = run_session(loaded[:1], [], "Why is the sea salty?\nu\n1>2\nq\n", k=2)
    assert "nothing to undo" in screen
    [ranking] = live_rankings()
    assert ranking["prompt"] == "Why is the sea salty?" and ranking["ranks"] == [1, 2] and saved == [ranking["id"]]


def test_end_of_input_quits_cleanly(loaded):
    saved, screen = run_session(loaded[:1], PROMPTS, "1>2\n", k=2)  # input ends mid-session
    assert saved == [1] and "1 ranking saved this session" in screen
    assert len(live_rankings()) == 1


def test_same_seed_same_answers(loaded):
    run_session(loaded, PROMPTS[:1], "1>2>3\n", rater="a")
    run_session(loaded, PROMPTS[:1], "1>2>3\n", rater="b")
    a, b = live_rankings()
    assert [i["text"] for i in a["items"]] == [i["text"] for i in b["items"]]


# ----------------------------------------------------------------------------- the CLI


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def prompt_file(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": q, "answer": a}) + "\n"
                            for q, a in [("What is 3 + 4?", "7"), ("Name the capital of Spain.", "Madrid")]))
    return path


@pytest.mark.parametrize("rule", ["length", "regex:[aeiou]", "truth"])
def test_auto_rankings_are_synthetic_and_follow_the_rule(tiny_checkpoints, prompt_file, rule):
    result = invoke("rank", "-m", str(tiny_checkpoints["base"]), "-m", str(tiny_checkpoints["assistant"]),
                    "--prompts", str(prompt_file), "-k", "3", "--auto", rule, "--max-tokens", "8",
                    "--seed", "0", "--device", "cpu")
    assert result.exit_code == 0, result.output
    rankings = live_rankings()
    assert [r["prompt"] for r in rankings] == ["What is 3 + 4?", "Name the capital of Spain."]
    assert result.output.count("saved ranking #") == 2
    parsed = parse_auto_rule(rule)
    for ranking in rankings:
        assert ranking["synthetic"] is True and ranking["rater"] == f"auto:{rule}"
        texts = [item["text"] for item in ranking["items"]]
        assert (ranking["status"], ranking["ranks"]) == auto_ranks(parsed, texts, ranking["settings"].get("expected"))
    if rule == "length":
        for ranking in rankings:
            lengths = [len(item["text"].strip()) for item in ranking["items"]]
            best = [i for i, r in enumerate(ranking["ranks"]) if r == 1]
            assert all(lengths[i] == min(lengths) for i in best)
    # a second run on the same checkpoints resumes: nothing left to rank
    again = invoke("rank", "-m", str(tiny_checkpoints["assistant"]), "-m", str(tiny_checkpoints["base"]),
                   "--prompts", str(prompt_file), "-k", "2", "--auto", rule, "--max-tokens", "4", "--device", "cpu")
    assert again.exit_code == 0 and "saved ranking" not in again.output and len(live_rankings()) == 2


@pytest.mark.parametrize("args,message", [
    (["--auto", "coin"], "--auto: expected truth, length or regex:PATTERN"),
    (["--auto", "length", "--prompts", "-"], "cannot use --prompts -"),
    (["-k", "2", "-m", "X", "-m", "Y", "-m", "Z"], "-k 2: need at least one answer per checkpoint"),
])
def test_rank_usage_errors(tiny_checkpoints, args, message):
    result = CliRunner().invoke(cli, ["rank", "-m", str(tiny_checkpoints["base"]), *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_auto_truth_needs_answers(tiny_checkpoints, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("Hello?\n")
    result = CliRunner().invoke(cli, ["rank", "-m", str(tiny_checkpoints["base"]), "--prompts", str(prompts),
                                      "--auto", "truth", "--device", "cpu"])
    assert result.exit_code == 2 and "no prompt has an answer" in result.output


def seed_logbook():
    """Two live rankings (one synthetic), one undone, one all-bad: exports must tell them apart."""
    with open_logbook() as lb:
        lb.log_ranking("P1", [{"text": "a", "checkpoint": "m1"}, {"text": "b", "checkpoint": "m2"},
                              {"text": "c", "checkpoint": "m1"}], [2, 1, 2], rater="ann")
        lb.log_ranking("P2", [{"text": "x", "checkpoint": "m1"}, {"text": "y", "checkpoint": "m2"}],
                       [1, 2], rater="auto:length", synthetic=True)
        lb.log_ranking("P3", [{"text": "u", "checkpoint": "m1"}, {"text": "v", "checkpoint": "m2"}],
                       [1, 2], rater="ann")
        lb.undo_last_ranking("ann")
        lb.log_ranking("P4", [{"text": "q", "checkpoint": "m1"}, {"text": "r", "checkpoint": "m2"}],
                       [None, None], rater="ann", status="all_bad")


def jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_export_formats(tmp_path):
    seed_logbook()
    ranked = jsonl(invoke("rank", "export").output)
    assert [r["prompt"] for r in ranked] == ["P1", "P2", "P4"]
    assert [a["text"] for a in ranked[0]["answers"]] == ["b", "a", "c"]  # best first

    pairs = jsonl(invoke("rank", "export", "--format", "pairs").output)
    assert [(p["chosen"], p["rejected"], p["chosen_checkpoint"]) for p in pairs] == [
        ("b", "a", "m2"), ("b", "c", "m2"), ("x", "y", "m1")]

    trl = jsonl(invoke("rank", "export", "--format", "trl", "--no-synthetic").output)
    assert trl == [{"prompt": "P1", "chosen": "b", "rejected": "a"}, {"prompt": "P1", "chosen": "b", "rejected": "c"}]

    out = tmp_path / "prefs.jsonl"
    result = invoke("rank", "export", "--format", "trl", "--out", str(out))
    assert f"wrote 3 trl lines -> {out}" in result.output and len(jsonl(out.read_text())) == 3

    bad = CliRunner().invoke(cli, ["rank", "export", "--format", "csv"])
    assert bad.exit_code == 2 and "csv" in bad.output


def test_import_trl_round_trips(tmp_path):
    prefs = tmp_path / "prefs.jsonl"
    rows = [{"prompt": "Q1", "chosen": "good", "rejected": "bad"}, {"prompt": "Q2", "chosen": "yes", "rejected": "no"}]
    prefs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = invoke("rank", "import", str(prefs))
    assert result.exit_code == 0 and f"imported 2 preference pairs from {prefs}" in result.output
    assert jsonl(invoke("rank", "export", "--format", "trl").output) == rows

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(rows[0]) + '\n{"prompt": "Q", "chosen": "c"}\n')
    result = CliRunner().invoke(cli, ["rank", "import", str(broken)])
    assert result.exit_code == 1 and f"{broken}:2: field 'rejected': missing" in result.output
    assert len(live_rankings()) == 2  # all lines or none


# ----------------------------------------------------------------------------- SIGKILL


class Reader:
    """Collects a subprocess's stdout on a thread so the test can wait for text without blocking
    (the session prints "rank> " without a newline, so line reads would hang)."""

    def __init__(self, stream):
        self.text, self._stream = "", stream
        self._lock = threading.Lock()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        while chunk := os.read(self._stream.fileno(), 4096):
            with self._lock:
                self.text += chunk.decode("utf-8", "replace")

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 60.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = re.findall(pattern, self.text)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {pattern!r} x{count}; output so far:\n{self.text[-2000:]}")


def start_rank(checkpoint, prompts, isolated_home, *extra):
    env = {**os.environ, "GPTKIT_HOME": str(isolated_home), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "gptkit", "rank", "-m", str(checkpoint), "--prompts", str(prompts), "-k", "2",
           "--max-tokens", "4", "--seed", "0", "--device", "cpu", "--rater", "killer", *extra]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, cwd=Path(__file__).parent.parent)


def test_sigkill_loses_no_acknowledged_ranking(tiny_checkpoints, tmp_path, isolated_home):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"Question number {i}?\n" for i in range(8)))
    proc = start_rank(tiny_checkpoints["assistant"], prompts, isolated_home)
    out = Reader(proc.stdout)
    try:
        for n, ordering in enumerate(["2>1", "1=2", "b", "1>2"], start=1):
            out.wait_for(r"rank> ", count=n)
            proc.stdin.write(f"{ordering}\n".encode())
            proc.stdin.flush()
        out.wait_for(r"saved ranking #\d+", count=3)
        # Kill while the fourth ordering is in flight: it may or may not be acknowledged.
        proc.stdin.write(b"2>1\n")
        proc.stdin.flush()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    acknowledged = [int(i) for i in re.findall(r"saved ranking #(\d+)", out.text)]
    assert len(acknowledged) >= 3 and proc.returncode == -signal.SIGKILL
    with open_logbook() as logbook:
        assert logbook.check() == []
        stored = {r["id"]: r for r in logbook.rankings()}
    assert set(acknowledged) <= set(stored)
    assert [stored[i]["ranks"] for i in acknowledged[:3]] == [[2, 1], [1, 1], [None, None]]

    # Restarting resumes after the last committed prompt.
    proc = start_rank(tiny_checkpoints["assistant"], prompts, isolated_home)
    out = proc.communicate(b"q\n", timeout=60)[0].decode()
    assert f"resuming: {len(stored)} of 8 prompts already ranked by killer" in out
    assert f"Question number {len(stored)}?" in out
