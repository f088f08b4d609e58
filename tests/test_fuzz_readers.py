"""Every reader of a file a user (or an attacker) can hand gptkit, fed any bytes and any nesting.

The property: a reader returns, or raises a GptkitError (whose message the CLI prints as one
line); never another exception (RecursionError, KeyError, TypeError, UnicodeDecodeError, ...).
Each reader gets raw bytes, valid JSON/YAML of any shape, and nesting far past the parsers'
recursion limits.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptkit.errors import GptkitError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["prompt", "chosen", "rejected", "messages", "role", "content", "text", "question", "expected",
                     "vars", "id", "kind", "answer", "completion", "name", "step", "config", "format"]) | st.text(max_size=5),
    inner, max_size=5), max_leaves=20)
deep = st.builds(lambda opener, n: opener * n, st.sampled_from(["[", "{\"a\": ", "- ", "[{", "a:\n  "]),
                 st.integers(500, 60_000))


def file_contents(line_based: bool):
    """Bytes to write: raw, JSON (a line or several), YAML dumps, or deep nesting."""
    as_json = values.map(lambda v: json.dumps(v).encode())
    lines = st.lists(values, min_size=1, max_size=4).map(lambda vs: "\n".join(json.dumps(v) for v in vs).encode())
    as_yaml = values.map(lambda v: yaml.safe_dump(v).encode())
    return st.one_of(st.binary(max_size=200), as_json, lines if line_based else as_yaml, deep.map(str.encode))


def only_gptkit_errors(read, *args):
    try:
        read(*args)
    except GptkitError:
        pass


@pytest.fixture
def folder():
    path = Path(tempfile.mkdtemp())
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@FUZZ
@given(data=file_contents(line_based=True))
def test_jsonl_readers(folder, data):
    from gptkit.data.chat import load_conversations
    from gptkit.data.preferences import read_preference_file
    from gptkit.data.text import read_jsonl
    from gptkit.ui.rank import load_rank_prompts

    path = write(folder, "data.jsonl", data)
    for read in (read_jsonl, load_conversations, read_preference_file, load_rank_prompts):
        only_gptkit_errors(read, str(path))


@FUZZ
@given(data=file_contents(line_based=True) | file_contents(line_based=False))
def test_case_files(folder, data):
    from gptkit.prompting.experiment import check_cases, load_cases
    from gptkit.prompting.templates import load_template

    plain = load_template("plain")
    for name in ("cases.jsonl", "cases.yaml"):
        try:
            check_cases([plain], load_cases(write(folder, name, data)), "regex")
        except GptkitError:
            pass


@FUZZ
@given(data=file_contents(line_based=False))
def test_yaml_templates_and_prompt_files(folder, data):
    from gptkit.prompting.templates import load_template, parse_template
    from gptkit.ui.rank import load_rank_prompts

    only_gptkit_errors(load_template, write(folder, "t.yaml", data))
    only_gptkit_errors(load_rank_prompts, str(write(folder, "prompts.yaml", data)))
    only_gptkit_errors(parse_template, data.decode("utf-8", "replace"))


@FUZZ
@given(meta=values | deep, train_state=values | deep, latest=st.binary(max_size=80))
def test_checkpoint_metadata(tiny_checkpoints, folder, meta, train_state, latest):
    from gptkit.checkpoint import latest_step, load_checkpoint, load_train_state, read_meta, validate_checkpoint

    run = folder / "run"
    shutil.rmtree(run, ignore_errors=True)  # the folder is shared by the examples of one test
    shutil.copytree(tiny_checkpoints["base"].parent, run)
    step = run / tiny_checkpoints["base"].name
    only_gptkit_errors(latest_step, write(run, "LATEST", latest).parent)
    (run / "LATEST").unlink()
    write(step, "train_state.json", (train_state if isinstance(train_state, str) else json.dumps(train_state)).encode())
    only_gptkit_errors(load_train_state, step)
    if isinstance(meta, dict):  # keep it looking like a checkpoint, so the deeper checks are reached
        meta = {"format": "gptkit-checkpoint", "kind": "base", "step": 1, "config": {}, **meta}
    write(step, "meta.json", (meta if isinstance(meta, str) else json.dumps(meta)).encode())
    for read in (read_meta, validate_checkpoint, load_checkpoint):
        only_gptkit_errors(read, step)


@FUZZ
@given(config=st.dictionaries(st.sampled_from(["block_size", "vocab_size", "n_layer", "n_head", "n_embd", "dropout",
                                               "bias"]), scalars | st.integers(-10, 2000), max_size=7))
def test_model_configs(tiny_checkpoints, folder, config):
    from gptkit.checkpoint import load_checkpoint

    run = folder / "run"
    shutil.rmtree(run, ignore_errors=True)  # the folder is shared by the examples of one test
    shutil.copytree(tiny_checkpoints["base"].parent, run)
    step = run / tiny_checkpoints["base"].name
    meta = json.loads((step / "meta.json").read_text())
    meta["config"].update(config)
    write(step, "meta.json", json.dumps(meta).encode())
    only_gptkit_errors(load_checkpoint, step)


@FUZZ
@given(head=st.binary(max_size=40), header=values | deep)
def test_safetensors_headers(folder, head, header):
    from gptkit.checkpoint import read_tensors, tensor_shapes

    raw = (header if isinstance(header, str) else json.dumps(header)).encode()
    for data in (head, len(raw).to_bytes(8, "little") + raw, (len(raw) + 99).to_bytes(8, "little") + raw):
        path = write(folder, "model.safetensors", data)
        only_gptkit_errors(tensor_shapes, path)
        only_gptkit_errors(read_tensors, path)


@FUZZ
@given(meta=values | deep, ranks=st.binary(max_size=200))
def test_saved_tokenizers(tiny_checkpoints, folder, meta, ranks):
    from gptkit.tokenizer import load_tokenizer

    tok = folder / "tok"
    tok.mkdir(exist_ok=True)
    shutil.copy(tiny_checkpoints["base"] / "tokenizer.tiktoken", tok / "tokenizer.tiktoken")
    write(tok, "tokenizer.json", (meta if isinstance(meta, str) else json.dumps(meta)).encode())
    only_gptkit_errors(load_tokenizer, tok)
    shutil.copy(tiny_checkpoints["base"] / "tokenizer.json", tok / "tokenizer.json")
    write(tok, "tokenizer.tiktoken", ranks)
    only_gptkit_errors(load_tokenizer, tok)


def test_special_files_are_refused_by_every_reader(folder):
    from gptkit.data.chat import load_conversations
    from gptkit.data.preferences import read_preference_file
    from gptkit.data.text import read_jsonl
    from gptkit.prompting.experiment import load_cases
    from gptkit.prompting.templates import load_template
    from gptkit.ui.rank import load_rank_prompts

    os.mkfifo(folder / "pipe.jsonl")
    os.symlink("/dev/zero", folder / "zero.yaml")
    readers = (read_jsonl, load_conversations, read_preference_file, load_cases, load_rank_prompts)
    for read in readers:
        with pytest.raises(GptkitError, match="is a pipe; expected a regular file"):
            read(folder / "pipe.jsonl" if read is not load_rank_prompts else str(folder / "pipe.jsonl"))
    for read in (load_template, load_cases, lambda p: load_rank_prompts(str(p))):
        with pytest.raises(GptkitError, match="is a device; expected a regular file"):
            read(folder / "zero.yaml")


chat_files = st.fixed_dictionaries({"format": st.just("gptkit-chat")}, optional={
    key: values for key in ("version", "checkpoints", "mode", "template", "vars", "system", "settings", "messages")})


@FUZZ
@given(data=file_contents(line_based=False) | chat_files.map(lambda d: json.dumps(d).encode()))
def test_saved_chats(folder, data):
    from gptkit.ui.chat_settings import read_saved_chat

    only_gptkit_errors(read_saved_chat, write(folder, "chat.json", data))
