"""`gptkit train` and checkpoints: exact resume, atomic saves, refusal of pickles and bad files."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gptkit.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from gptkit.errors import CheckpointError, TrainingError
from gptkit.tokenizer import load_tokenizer

CORPUS = "\n".join(
    f"Document {i}: the {c} cat saw {i % 7} birds and {i % 5} fish near the {p}."
    for i, (c, p) in enumerate([("black", "river"), ("white", "house"), ("small", "tree")] * 150)
)


def gptkit(*args, cwd=None, check=True, timeout=300, env=None):
    proc = subprocess.run([sys.executable, "-m", "gptkit", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"gptkit {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS)
    return path


@pytest.fixture
def tokenizer_dir(tmp_path, corpus):
    out = tmp_path / "tok"
    gptkit("tokenizer", "train", corpus, "--vocab-size", 320, "--output", out)
    return out


def train_args(corpus, tokenizer_dir, out, *extra):
    return ["train", "--data", corpus, "--tokenizer", tokenizer_dir, "--preset", "tiny", "--batch-size", 4,
            "--out", out, "--eval-every", 4, "--json", *extra]


def weights(run: Path) -> dict:
    return load_file(str(resolve_checkpoint(run) / "model.safetensors"))


def test_resume_is_bitwise_exact(tmp_path, corpus, tokenizer_dir):
    gptkit(*train_args(corpus, tokenizer_dir, tmp_path / "straight", "--max-steps", 8))
    gptkit(*train_args(corpus, tokenizer_dir, tmp_path / "halves", "--max-steps", 8, "--stop-after", 4))
    assert json.loads((resolve_checkpoint(tmp_path / "halves") / "meta.json").read_text())["step"] == 4
    gptkit(*train_args(corpus, tokenizer_dir, tmp_path / "halves", "--max-steps", 8, "--resume"))
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "halves")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_train_writes_metrics_meta_and_json_lines(tmp_path, corpus, tokenizer_dir):
    proc = gptkit(*train_args(corpus, tokenizer_dir, tmp_path / "run", "--max-steps", 8))
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    steps = [e for e in events if e.get("event") == "step"]
    assert steps and steps[-1]["step"] == 8 and "val_loss" in steps[-1] and steps[-1]["tok_per_s"] > 0
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == 8
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.kind == "base" and ckpt.meta["tokens_seen"] == 8 * 4 * ckpt.model.config.block_size
    assert ckpt.tokenizer.encode("the cat saw 12 birds") == load_tokenizer(tokenizer_dir).encode("the cat saw 12 birds")


def test_training_refuses_to_overwrite_and_resume_of_nothing(tmp_path, corpus, tokenizer_dir):
    gptkit(*train_args(corpus, tokenizer_dir, tmp_path / "run", "--max-steps", 2))
    proc = gptkit(*train_args(corpus, tokenizer_dir, tmp_path / "run", "--max-steps", 2), check=False)
    assert proc.returncode != 0 and "--resume" in proc.stderr and "Traceback" not in proc.stderr
    proc = gptkit(*train_args(corpus, tokenizer_dir, tmp_path / "none", "--max-steps", 2, "--resume"), check=False)
    assert proc.returncode != 0 and "no saved step" in proc.stderr


def test_sigint_saves_a_loadable_checkpoint(tmp_path, corpus, tokenizer_dir):
    args = [sys.executable, "-m", "gptkit", *map(str, train_args(corpus, tokenizer_dir, tmp_path / "run", "--max-steps", 100000, "--eval-every", 0, "--save-every", 100000))]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # wait until training is really under way
        if '"event": "step"' in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err  # the shell's convention after Ctrl-C, the checkpoint saved first
    assert "interrupted at step" in err and "Traceback" not in err
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.meta.get("interrupted") is True and ckpt.meta["step"] > 0


def test_sigkill_during_training_leaves_a_loadable_checkpoint(tmp_path, corpus, tokenizer_dir):
    args = [sys.executable, "-m", "gptkit", *map(str, train_args(corpus, tokenizer_dir, tmp_path / "run", "--max-steps", 100000, "--eval-every", 0, "--save-every", 1))]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen = 0
    for line in proc.stdout:
        seen += '"event": "step"' in line
        if seen >= 3:
            break
    time.sleep(0.05)  # land somewhere inside a save with decent probability
    proc.kill()
    proc.wait()
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.meta["step"] >= 1


def test_crash_inside_save_keeps_previous_step(tmp_path, corpus, tokenizer_dir, monkeypatch):
    gptkit(*train_args(corpus, tokenizer_dir, tmp_path / "run", "--max-steps", 2))
    ckpt = load_checkpoint(tmp_path / "run")
    real_replace = os.replace

    def crash(src, dst):
        if Path(str(src)).name.startswith(".tmp-"):
            raise OSError("simulated crash while renaming the new step into place")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(CheckpointError, match="cannot save .*simulated crash.*the last saved step step-000002 is kept"):
        save_checkpoint(tmp_path / "run", model=ckpt.model, tokenizer=ckpt.tokenizer, meta={**ckpt.meta, "step": 3})
    monkeypatch.setattr(os, "replace", real_replace)
    again = load_checkpoint(tmp_path / "run")
    assert again.meta["step"] == 2


class WritesAFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickles_are_refused_never_executed(tmp_path, corpus, tokenizer_dir):
    target = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(WritesAFile(str(target))))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(evil)
    gptkit(*train_args(corpus, tokenizer_dir, tmp_path / "run", "--max-steps", 2))
    step = resolve_checkpoint(tmp_path / "run")
    (step / "model.safetensors").write_bytes(pickle.dumps(WritesAFile(str(target))))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(tmp_path / "run")
    proc = gptkit("generate", "-m", tmp_path / "run", "hello", check=False)
    assert proc.returncode == 1 and "pickle" in proc.stderr and "Traceback" not in proc.stderr
    assert not target.exists()


def test_truncated_and_foreign_checkpoints_are_refused(tmp_path, corpus, tokenizer_dir):
    gptkit(*train_args(corpus, tokenizer_dir, tmp_path / "run", "--max-steps", 2))
    step = resolve_checkpoint(tmp_path / "run")
    weights_file = step / "model.safetensors"
    weights_file.write_bytes(weights_file.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_checkpoint(tmp_path / "run")
    (step / "meta.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a gptkit checkpoint"):
        load_checkpoint(tmp_path / "run")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint("no-such-run")


def test_nan_loss_stops_with_clear_error_and_keeps_last_good(tmp_path, corpus, tokenizer_dir):
    from gptkit.data.text import build_shards
    from gptkit.device import pick_device
    from gptkit.model import GPT, config_for
    from gptkit.tokenizer import load_tokenizer
    from gptkit.train.loop import TrainConfig, train
    from gptkit.train.pretrain import PretrainObjective

    tok = load_tokenizer(tokenizer_dir)
    model = GPT(config_for("tiny", tok.n_vocab))
    shards = build_shards([CORPUS], tok, block_size=64, source_key="nan-test")

    class Poisoned(PretrainObjective):
        calls = 0

        def loss(self, model, batch):
            Poisoned.calls += 1
            loss, extra = super().loss(model, batch)
            return (loss * float("nan") if Poisoned.calls > 4 else loss), extra

    objective = Poisoned(shards, tok, batch_size=2, seq_len=64, device="cpu")
    cfg = TrainConfig(max_steps=20, batch_size=2, save_every=2, log_every=1, eval_every=0)
    with pytest.raises(TrainingError, match="loss became nan at step 5"):
        train(model, tok, objective, cfg, run_dir=tmp_path / "run", meta={}, dc=pick_device("cpu"))
    assert load_checkpoint(tmp_path / "run").meta["step"] == 4


def test_infinite_learning_rate_never_saves_nan_weights(tmp_path, tokenizer_dir):
    from gptkit.checkpoint import latest_step
    from gptkit.data.text import build_shards
    from gptkit.device import pick_device
    from gptkit.model import GPT, config_for
    from gptkit.train.loop import TrainConfig, train
    from gptkit.train.pretrain import PretrainObjective

    tok = load_tokenizer(tokenizer_dir)
    shards = build_shards([CORPUS], tok, block_size=64, source_key="inf-lr")
    objective = PretrainObjective(shards, tok, batch_size=2, seq_len=64, device="cpu")
    cfg = TrainConfig(max_steps=4, batch_size=2, lr=float("inf"), warmup_steps=1, save_every=1, log_every=1, eval_every=0)
    with pytest.raises(TrainingError, match="weights became NaN or infinite by step 1: stopping without saving them"):
        train(GPT(config_for("tiny", tok.n_vocab)), tok, objective, cfg, run_dir=tmp_path / "run", meta={},
              dc=pick_device("cpu"))
    assert latest_step(tmp_path / "run") is None and not list((tmp_path / "run").glob(".tmp-*"))


def test_a_save_removes_what_killed_saves_left(tmp_path, tiny_checkpoints):
    ckpt = load_checkpoint(tiny_checkpoints["base"])
    run = tmp_path / "run"
    dead, live = run / ".tmp-step-000003-999999999", run / f".tmp-step-000003-{os.getppid()}"
    for folder in (dead, live, run / ".old-step-000002-999999998"):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"half")
    save_checkpoint(run, model=ckpt.model, tokenizer=ckpt.tokenizer, meta={**ckpt.meta, "step": 4})
    assert sorted(p.name for p in run.iterdir()) == sorted([live.name, "LATEST", "step-000004"])


def test_two_writers_on_one_run_folder(tmp_path, corpus, tokenizer_dir):
    first = subprocess.Popen([sys.executable, "-m", "gptkit", *map(str, train_args(
        corpus, tokenizer_dir, tmp_path / "run", "--max-steps", 100000, "--eval-every", 0, "--save-every", 5))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in first.stdout:  # the first run holds the folder once it trains
            if '"event": "step"' in line:
                break
        for resume in ((), ("--resume",)):  # whether or not the first run has saved a step yet
            second = gptkit(*train_args(corpus, tokenizer_dir, tmp_path / "run", "--max-steps", 3, *resume), check=False)
            assert second.returncode == 2, second.stderr
            assert f"another gptkit process (pid {first.pid}) is writing to this run folder" in second.stderr
            assert "Traceback" not in second.stderr and '"event": "step"' not in second.stdout
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # one writer's lines only
    assert gptkit(*train_args(corpus, tokenizer_dir, tmp_path / "run", "--max-steps", steps[-1] + 2,
                              "--resume")).returncode == 0  # free again once the first run has ended


@pytest.mark.parametrize(
    "setup, expected",
    [
        (lambda d: d / "missing.txt", "no such file"),
        (lambda d: (d / "bin.txt").write_bytes(b"\x00\x01\x02" * 100) and d / "bin.txt", "binary"),
        (lambda d: (d / "bad.jsonl").write_text('{"text": "ok"}\n{"text": 3}\n') and d / "bad.jsonl", "bad.jsonl:2: field 'text'"),
        (lambda d: (d / "latin.txt").write_bytes("caf\xe9".encode("latin-1")) and d / "latin.txt", "not UTF-8"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "no .txt"),
    ],
)
def test_bad_data_gets_one_clear_line(tmp_path, tokenizer_dir, setup, expected):
    path = setup(tmp_path)
    proc = gptkit("train", "--data", path, "--tokenizer", tokenizer_dir, "--preset", "tiny", "--max-steps", 1,
                  "--out", tmp_path / "run", check=False)
    assert proc.returncode != 0
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_validation_runs_on_its_own_cadence(tmp_path, tokenizer_dir):
    from gptkit.data.text import build_shards
    from gptkit.device import pick_device
    from gptkit.model import GPT, config_for
    from gptkit.train.loop import TrainConfig, train
    from gptkit.train.pretrain import PretrainObjective

    tok = load_tokenizer(tokenizer_dir)
    shards = build_shards([CORPUS], tok, block_size=32, source_key="cadence-test")
    objective = PretrainObjective(shards, tok, batch_size=2, seq_len=32, device="cpu")
    # validation every 7 steps while logging every 10: it must not wait for a logging step
    cfg = TrainConfig(max_steps=15, batch_size=2, log_every=10, eval_every=7, eval_batches=1, save_every=100)
    train(GPT(config_for("tiny", tok.n_vocab)), tok, objective, cfg, run_dir=tmp_path / "run", meta={}, dc=pick_device("cpu"))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val_loss" in r] == [7, 14, 15]
    assert [r["step"] for r in rows] == [7, 10, 14, 15]


def test_learning_rate_warms_up_linearly_then_follows_a_cosine_to_its_floor():
    from gptkit.train.loop import TrainConfig, lr_at

    cfg = TrainConfig(max_steps=110, lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert [lr_at(s, cfg) for s in range(10)] == pytest.approx([1e-3 * (s + 1) / 10 for s in range(10)])
    assert lr_at(10, cfg) == pytest.approx(1e-3)  # the peak, where the cosine starts
    assert lr_at(60, cfg) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # halfway down
    assert lr_at(110, cfg) == pytest.approx(1e-4) and lr_at(500, cfg) == pytest.approx(1e-4)  # the floor, then flat
    decay = [lr_at(s, cfg) for s in range(10, 111)]
    assert all(a > b for a, b in zip(decay, decay[1:]))
    assert lr_at(0, TrainConfig(max_steps=5, lr=2e-3, warmup_steps=0)) == pytest.approx(2e-3)  # no warmup: starts at the peak


def test_the_device_line_names_the_device_then_why():
    from gptkit.device import pick_device

    assert pick_device("cpu").label == "cpu, fp32 (asked for with --device)"
