"""ui/progress.py: plain progress lines when the output is not a terminal, and measured pace."""

import io
import os
import subprocess
import sys

from gptkit.ui.progress import PaceReporter, PlainReporter, Reporter, format_duration

from conftest import TINY_CORPUS


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def metrics(step, **extra):
    return {"step": step, "loss": 2.5, "tok_per_s": 3000.0, **extra}


def test_plain_lines_come_at_a_steady_interval_with_an_eta():
    clock, out = Clock(), io.StringIO()
    reporter = PlainReporter("train", out, every=30, clock=clock)
    reporter.start(100, 0, {"params": 3.7e6, "device": "cpu (fp32)"})
    for step in range(1, 101):
        clock.now = step * 2.0  # 2 s a step
        reporter.update(metrics(step, **({"val_loss": 2.6} if step == 50 else {})))
    reporter.finish()
    lines = out.getvalue().splitlines()
    assert lines[0] == "train: 3.70M parameters on cpu (fp32); steps 0-100"
    steps = [int(line.split()[2].split("/")[0]) for line in lines[1:]]
    # the first update, then every 15 steps (30 s), a validation, and the last step
    assert steps == [1, 16, 31, 46, 50, 61, 76, 91, 100]
    assert lines[1] == "train: step 1/100 | loss 2.500 | 3.0k tok/s | eta 3m18s"
    assert "val 2.600" in lines[5] and lines[-1].endswith("eta 0s")


def test_format_duration():
    assert [format_duration(s) for s in (4, 250, 3725)] == ["4s", "4m10s", "1h02m"]


def test_pace_is_measured_once_after_the_first_update():
    clock, calls, messages = Clock(), [], []

    class Inner(Reporter):
        def message(self, text):
            messages.append(text)

    reporter = PaceReporter(Inner(), lambda seconds, step: calls.append((seconds, step)) or "about 3 minutes",
                            after=4, clock=clock)
    reporter.start(20, 0, {})
    clock.now = 10.0  # the first update carries start-up time: it only starts the measure
    reporter.update(metrics(2))
    for step in range(3, 20):
        clock.now = 10.0 + (step - 2) * 0.5
        reporter.update(metrics(step))
    assert calls == [(0.5, 6)] and messages == ["about 3 minutes"]


def run_gptkit(*args):
    """gptkit in a real subprocess, stdout and stderr to pipes: not a terminal."""
    proc = subprocess.run([sys.executable, "-m", "gptkit", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_training_to_a_pipe_prints_plain_progress_lines(tiny_checkpoints, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(TINY_CORPUS))
    proc = run_gptkit("train", "--data", corpus, "--tokenizer", tiny_checkpoints["base"], "--preset", "tiny",
                      "--max-steps", 12, "--batch-size", 2, "--out", tmp_path / "run", "--device", "cpu")
    lines = proc.stderr.splitlines()
    assert any(line.startswith("train: ") and "parameters on cpu" in line for line in lines)
    progress = [line for line in lines if line.startswith("train: step ")]
    assert progress[0].startswith("train: step 1/12 | loss ") and progress[-1].startswith("train: step 12/12 | loss ")
    assert all(" tok/s | " in line and " | eta " in line for line in progress)
    assert "━" not in proc.stderr and "\r" not in proc.stderr  # no bar, no redrawn line


def test_prompt_run_to_a_pipe_prints_answers_done_and_eta(tiny_checkpoints):
    proc = run_gptkit("prompt", "run", "-t", "plain", "-m", tiny_checkpoints["base"], "--cases", "toyworld:capital",
                      "--limit", 3, "--device", "cpu")
    assert "experiment: 1/3 answers (plain x base/step-000001) | eta " in proc.stderr
    assert "experiment: 3/3 answers (plain x base/step-000001) | eta 0s" in proc.stderr
