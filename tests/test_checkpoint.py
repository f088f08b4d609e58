"""checkpoint.py: the kinds, reading a kind without the weights, and listing runs."""

import json
import shutil
from pathlib import Path

import pytest

from gptkit.checkpoint import CHAT_KINDS, GENERATIVE_KINDS, KINDS, load_checkpoint, peek_kind, resolve_checkpoint
from gptkit.files import FILE_MODE, atomic_path
from gptkit.errors import CheckpointError


def copy_run(step_dir, dest):
    """A private copy of a session checkpoint's run folder; returns its step folder."""
    shutil.copytree(step_dir.parent, dest)
    return dest / step_dir.name


def test_kinds_nest():
    assert set(CHAT_KINDS) < set(GENERATIVE_KINDS) < set(KINDS) and "reward" not in GENERATIVE_KINDS


def test_peek_kind_reads_metadata_only(tiny_checkpoints, tmp_path):
    step = copy_run(tiny_checkpoints["assistant"], tmp_path / "assistant")
    (step / "model.safetensors").unlink()
    assert peek_kind(tmp_path / "assistant", CHAT_KINDS) == "assistant"
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(tmp_path / "assistant")


def test_peek_kind_refuses_a_kind_not_asked_for(tiny_checkpoints):
    with pytest.raises(CheckpointError, match="is a base checkpoint; expected assistant or policy"):
        peek_kind(tiny_checkpoints["base"], CHAT_KINDS)


def test_unknown_kind_in_metadata_is_refused(tiny_checkpoints, tmp_path):
    step = copy_run(tiny_checkpoints["base"], tmp_path / "odd")
    meta = json.loads((step / "meta.json").read_text())
    (step / "meta.json").write_text(json.dumps({**meta, "kind": "critic"}))
    with pytest.raises(CheckpointError, match="field 'kind': expected one of base, assistant, policy, reward"):
        peek_kind(step)


# ---- `gptkit list`: every run, nested ones included


def test_list_shows_nested_runs_by_the_names_they_resolve_by(tiny_checkpoints, tmp_path, monkeypatch):
    import subprocess
    import sys

    from gptkit.checkpoint import list_checkpoints, resolve_checkpoint

    root = tmp_path / "checkpoints"  # GPTKIT_CHECKPOINTS (conftest)
    copy_run(tiny_checkpoints["base"], root / "quickstart" / "base")
    copy_run(tiny_checkpoints["assistant"], root / "quickstart" / "assistant")
    copy_run(tiny_checkpoints["base"], root / "mine")
    (root / "quickstart" / "tokenizer").mkdir()  # not a run: skipped, as is a half-written step
    (root / "quickstart" / "broken" / "step-000001").mkdir(parents=True)
    rows = list_checkpoints()
    assert [(r["name"], r["kind"], r["step"]) for r in rows] == [
        ("mine", "base", 1), ("quickstart/assistant", "assistant", 1), ("quickstart/base", "base", 1)]
    assert all(resolve_checkpoint(r["name"]) == Path(r["path"]) for r in rows)
    proc = subprocess.run([sys.executable, "-m", "gptkit", "list"], capture_output=True, text=True, check=True)
    header, *lines, footer = proc.stdout.splitlines()
    assert header.split() == ["name", "kind", "step", "size", "parent"]
    size = f"{(Path(rows[0]['path']) / 'model.safetensors').stat().st_size / 1e6:.1f}"
    assert [line.split() for line in lines] == [
        ["mine", "base", "1", size, "MB"], ["quickstart/assistant", "assistant", "1", size, "MB", "base/step-000001"],
        ["quickstart/base", "base", "1", size, "MB"]]
    assert footer == f"in {root.resolve()}"


def test_a_name_not_found_says_where_it_looked_and_suggests_close_names(tiny_checkpoints, tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"  # GPTKIT_CHECKPOINTS (conftest)
    copy_run(tiny_checkpoints["assistant"], root / "quickstart" / "assistant")
    copy_run(tiny_checkpoints["base"], root / "quickstart" / "base")
    copy_run(tiny_checkpoints["base"], root / "mine")
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("asistant")
    message = str(err.value)
    assert f"in {root.resolve()} ($GPTKIT_CHECKPOINTS={root})" in message
    assert "did you mean quickstart/assistant?" in message and "\n" not in message
    with pytest.raises(CheckpointError, match=r"did you mean quickstart/base\?"):
        resolve_checkpoint("base:1")  # the last part of a nested name counts as close
    with pytest.raises(CheckpointError, match="it holds mine, quickstart/assistant, quickstart/base"):
        resolve_checkpoint("zzzzzz")
    # Without $GPTKIT_CHECKPOINTS the folder is ./checkpoints of wherever the command runs.
    monkeypatch.delenv("GPTKIT_CHECKPOINTS")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("quickstart/assistant")
    assert str(err.value) == (f"checkpoint 'quickstart/assistant' not found: looked for the path 'quickstart/assistant' "
                              f"and in {elsewhere / 'checkpoints'} ($GPTKIT_CHECKPOINTS is not set, so ./checkpoints "
                              f"of {elsewhere}), which does not exist")


def test_saved_files_are_ordinary_files(tiny_checkpoints):
    """safetensors creates its files 0600; a saved step's files get the mode of any new file."""
    assert {p.name: p.stat().st_mode & 0o777 for p in tiny_checkpoints["base"].iterdir()} == {
        p.name: FILE_MODE for p in tiny_checkpoints["base"].iterdir()}


def test_atomic_path_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "model.gguf"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half", encoding="utf-8")
            raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]
    with atomic_path(target) as tmp:
        tmp.write_text("new", encoding="utf-8")
    assert target.read_text(encoding="utf-8") == "new" and target.stat().st_mode & 0o777 == FILE_MODE


def test_a_full_disk_during_a_save_keeps_the_last_step(tiny_checkpoints, tmp_path, monkeypatch):
    import errno
    import os

    from gptkit.checkpoint import save_checkpoint

    copy_run(tiny_checkpoints["base"], tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(CheckpointError, match=r"step-000002: cannot save \(No space left on device\); "
                                              r"the last saved step step-000001 is kept"):
        save_checkpoint(tmp_path / "run", model=ckpt.model, tokenizer=ckpt.tokenizer, meta={**ckpt.meta, "step": 2})
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["LATEST", "step-000001"]
    assert load_checkpoint(tmp_path / "run").meta["step"] == 1


def test_a_tokenizer_larger_than_the_model_vocabulary_is_refused(tiny_checkpoints, tmp_path):
    import random

    from gptkit.tokenizer import train_tokenizer

    step = copy_run(tiny_checkpoints["base"], tmp_path / "small")
    letters = random.Random(0)
    words = ["".join(letters.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(letters.randint(2, 8))) for _ in range(20000)]
    bigger = train_tokenizer([" ".join(words)], 500)
    bigger.save(step)  # its ids run past the model's 320 embeddings
    with pytest.raises(CheckpointError, match=f"the tokenizer has {bigger.n_vocab} tokens but the model's vocabulary "
                                              "holds 320"):
        load_checkpoint(step)
