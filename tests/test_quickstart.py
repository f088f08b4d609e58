"""`gptkit quickstart` end to end at the tiny size: stages, reuse, resume, the report."""

import json
import os
import subprocess
import sys

from gptkit.checkpoint import load_checkpoint, read_meta, resolve_checkpoint
from gptkit.demo.evaluate import answer_region, is_correct
from gptkit.demo.quickstart import SIZES, estimate_text, seconds_left
from gptkit.data.toyworld import Task


def quickstart(out, *extra):
    proc = subprocess.run([sys.executable, "-m", "gptkit", "quickstart", "--size", "tiny", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_quickstart_runs_every_stage_then_reuses_them(tmp_path):
    out = tmp_path / "qs"
    proc = quickstart(out)
    # Not a terminal: plain progress lines, and an estimate once the first steps are measured.
    assert "base model: step 30/30 | loss " in proc.stderr and "━" not in proc.stderr
    assert "estimate: " in proc.stderr and " left on this machine (from the steps so far)" in proc.stderr
    for stage in ("1. Same prompt, two models", "2. Held-out tasks", "3. Prompt techniques", "4. Loss curves",
                  "train loss", "--cases toyworld:KIND"):
        assert stage in proc.stdout
    results = json.loads((out / "results.json").read_text())
    plan = SIZES["tiny"]
    assert results["accuracy"]["base"].keys() == {"capital", "hop-1", "hop-2", "two-hop"}
    assert results["accuracy"]["assistant"]["capital"][1] == plan.eval_per_kind
    table = results["techniques"]
    assert table.keys() == {"two-hop", "capital"} and 0 <= table["two-hop"]["shuffled_control"] <= 1
    rows = [(c["model"], c["template"], c["samples"]) for c in table["two-hop"]["cells"]]
    assert rows == [("base", "zero-shot", 1), ("base", "few-shot", 1), ("base", "chain-of-thought", 1),
                    ("assistant", "zero-shot", 1), ("assistant", "instructions", 1), ("assistant", "step-by-step", 1),
                    ("assistant", "self-consistency", plan.sc_samples)]
    assert all(c["total"] == plan.table_limit and c["low"] <= c["accuracy"] <= c["high"] for c in table["two-hop"]["cells"])
    assert "Explain the moon landing to a 6 year old" in [row["prompt"] for row in results["showcase"]]
    assert 0.0 <= results["question_rate"]["base"] <= 1.0
    base, assistant = load_checkpoint(out / "base"), load_checkpoint(out / "assistant")
    assert (base.kind, base.meta["step"]) == ("base", plan.base_steps)
    assert (assistant.kind, assistant.meta["step"]) == ("assistant", plan.sft_steps)
    assert assistant.meta["parent"] == base.name  # lineage recorded
    # every cell is what `gptkit prompt run` prints for it (same cases, seed and settings)
    sc = next(c for c in table["two-hop"]["cells"] if c["template"] == "self-consistency")
    proc = subprocess.run([sys.executable, "-m", "gptkit", "prompt", "run", "-t", "self-consistency", "-m",
                           str(out / "assistant"), "--cases", "toyworld:two-hop", "--limit", str(plan.table_limit),
                           "--samples", str(plan.sc_samples), "--vote-at", "2", "--json"],
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.splitlines()[-1])["summary"]
    assert [c["samples"] for c in summary] == [2, plan.sc_samples]
    assert {k: summary[1][k] for k in ("correct", "total", "mean_agreement", "unreadable")} == \
        {k: sc[k] for k in ("correct", "total", "mean_agreement", "unreadable")}
    again = quickstart(out, "--json")
    events = [json.loads(line) for line in again.stdout.splitlines() if line.startswith("{")]
    assert not any(e.get("event") == "step" for e in events)  # nothing retrained
    assert events[-1]["event"] == "results"


def test_quickstart_resumes_an_interrupted_stage(tmp_path):
    out = tmp_path / "qs"
    plan = SIZES["tiny"]
    # simulate an interruption: train the base stage only part of the way with the same settings
    subprocess.run([sys.executable, "-m", "gptkit", "tokenizer", "train", "toyworld", "--vocab-size", str(plan.vocab_size),
                    "-o", str(out / "tokenizer")], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "gptkit", "train", "--data", "toyworld", "--tokenizer", str(out / "tokenizer"),
                    "--preset", plan.preset, "--max-steps", str(plan.base_steps), "--stop-after", "10",
                    "--batch-size", str(plan.base_batch), "--out", str(out / "base"), "--json"], check=True, capture_output=True)
    assert read_meta(resolve_checkpoint(out / "base"))["step"] == 10
    proc = quickstart(out, "--json")
    assert "resumed from" in proc.stdout
    assert read_meta(resolve_checkpoint(out / "base"))["step"] == plan.base_steps


def test_answer_scoring_rules():
    capital = Task("capital", "Which city is the capital of France?", "Paris", "")
    assert is_correct(capital, " Paris\nQ: next")
    assert is_correct(capital, "The capital of France is Paris.")
    assert not is_correct(capital, "The capital of France is Rome.\nParis")
    number = Task("age", "q", "67", "")
    assert is_correct(number, "70 - 3 = 67. The answer is 67.")
    assert not is_correct(number, "The answer is 68. Or 67.")
    assert is_correct(number, " 67")
    assert answer_region("Paris\n\nQ: more") == "Paris"


def test_the_estimate_is_the_default_run_measured_again():
    # The default run's figures (README): a base step took 0.40 s; base 167 s + assistant 112 s +
    # evaluation and technique table 24 s = 303 s. Measured at base step 24, the estimate says so.
    plan = SIZES["small"]
    left = seconds_left(plan, "base", 0.40, {"base": plan.base_steps - 24, "assistant": plan.sft_steps}, False)
    assert 280 < left < 310 and estimate_text(left) == "estimate: about 5 minutes left on this machine (from the steps so far)"
    # Measured on the assistant stage (base reused), only its steps and what follows are left.
    only_sft = seconds_left(plan, "assistant", 0.37, {"base": 0, "assistant": plan.sft_steps - 24}, False)
    assert 120 < only_sft < 135
    assert seconds_left(plan, "base", 0.40, {"base": 0, "assistant": 0}, True) > 60  # --feedback: DPO still to come
    assert estimate_text(20) == "estimate: under a minute left on this machine (from the steps so far)"


def test_time_claims_agree_and_name_the_cpu():
    from pathlib import Path

    from click.testing import CliRunner

    from gptkit.cli import cli

    claim = "about 10 minutes on a 2-core AVX2 CPU"
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    setup = next(line for line in readme.splitlines() if line.startswith("pip install -e . && gptkit quickstart"))
    assert claim in setup
    assert claim in " ".join(CliRunner().invoke(cli, ["quickstart", "--help"]).output.split())
    # the measured figure beside it: the AVX-512 run, scaled to the AVX2 CPU's training speed
    assert "5 min 4 s in all" in readme and "~9.6 min" in readme
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in readme


def test_fresh_removes_only_what_the_quickstart_made(tmp_path):
    import pytest

    from gptkit.demo.quickstart import MARK, claim_folder
    from gptkit.errors import UsageError

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    for fresh in (False, True):  # a folder holding anything else is refused, with or without --fresh
        with pytest.raises(UsageError, match="holds thesis.tex, which the quickstart did not write"):
            claim_folder(mine, fresh=fresh)
    assert (mine / "thesis.tex").read_text() == "years of work" and not (mine / MARK).exists()

    old = tmp_path / "old"  # stages of an older quickstart, not marked yet: --fresh refuses
    (old / "base" / "step-000001").mkdir(parents=True)
    with pytest.raises(UsageError, match="not marked as the quickstart's own"):
        claim_folder(old, fresh=True)
    assert (old / "base" / "step-000001").is_dir()
    claim_folder(old, fresh=False)  # reused as it is, and marked
    assert (old / MARK).is_file() and (old / "base" / "step-000001").is_dir()
    claim_folder(old, fresh=True)
    assert sorted(p.name for p in old.iterdir()) == [MARK]

    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file; expected a folder"):
        claim_folder(tmp_path / "file", fresh=True)


def test_quickstart_in_japanese_fills_its_table_from_prompt_run_with_the_ja_templates(tmp_path):
    out = tmp_path / "qs-ja"
    proc = quickstart(out, "--lang", "ja")
    for heading in ("1. 同じプロンプト、2つのモデル", "2. 学習で見ていない問題", "3. 2つの事実が要る質問でのプロンプト手法",
                    "4. 損失曲線", "質問に質問で答える割合", "--cases toyworld-ja:KIND", "-t step-by-step-ja"):
        assert heading in proc.stdout
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["lang"] == "ja"
    prompts = [row["prompt"] for row in results["showcase"]]
    assert any("月面着陸" in p for p in prompts) and any("妹" in p or "姉" in p for p in prompts)
    plan = SIZES["tiny"]
    cells = results["techniques"]["two-hop"]["cells"]
    assert [(c["model"], c["template"]) for c in cells] == [
        ("base", "zero-shot-ja"), ("base", "few-shot-ja"), ("base", "chain-of-thought-ja"),
        ("assistant", "zero-shot-ja"), ("assistant", "instructions-ja"), ("assistant", "step-by-step-ja"),
        ("assistant", "self-consistency-ja")]
    tokenizer_meta = json.loads((out / "tokenizer" / "tokenizer.json").read_text(encoding="utf-8"))
    assert tokenizer_meta["split"] == "ja"
    proc = subprocess.run([sys.executable, "-m", "gptkit", "prompt", "run", "-t", "step-by-step-ja", "-m",
                           str(out / "assistant"), "--cases", "toyworld-ja:two-hop", "--limit", str(plan.table_limit),
                           "--json"], capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-2000:]
    (summary,) = json.loads(proc.stdout.splitlines()[-1])["summary"]
    cell = next(c for c in cells if c["template"] == "step-by-step-ja")
    assert {k: summary[k] for k in ("correct", "total", "unreadable")} == {k: cell[k] for k in ("correct", "total", "unreadable")}


def test_the_japanese_guide_shows_the_commands_that_fill_its_table():
    from pathlib import Path

    from gptkit.demo.quickstart import table_commands

    guide = (Path(__file__).parents[1] / "README.ja.md").read_text(encoding="utf-8")
    assert "gptkit quickstart --lang ja" in guide
    out = "checkpoints/quickstart-ja"
    for command in table_commands(f"{out}/base", f"{out}/assistant", SIZES["small"], "ja"):
        assert command in guide
