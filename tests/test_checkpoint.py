"""checkpoint.py: the kinds, reading a kind without the weights, and listing runs."""

import json
import shutil

import pytest

from gptkit.checkpoint import CHAT_KINDS, GENERATIVE_KINDS, KINDS, load_checkpoint, peek_kind
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
