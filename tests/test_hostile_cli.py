"""Hostile and clumsy input through the real command line.

Each case runs `gptkit` in a subprocess under a memory limit (RLIMIT_AS) and a timeout, and must
end the way a user deserves: a non-zero exit, no traceback, one error line on stderr that says
what is wrong, and a file lying beside the target untouched. The limit is far below what the
bugs these cases came from took (5-7 GB) and far above what gptkit needs to say no.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from gptkit.checkpoint import step_dirname

REPO = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 1536 << 20  # bytes of address space: torch's import needs about 1 GB of it
NEIGHBOUR = "precious.txt"


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def hostile(tmp_path, *args, expect: str, code: int | None = None, timeout: int = 120, stdin: str | None = None):
    """Run gptkit with `args` in `tmp_path`; assert the failure is one clean line holding `expect`."""
    neighbour = tmp_path / NEIGHBOUR
    if not neighbour.exists():
        neighbour.write_text("keep me\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "gptkit", *map(str, args)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limited, input=stdin, env=env)
    err = proc.stderr
    assert proc.returncode != 0, f"exit 0 for {args}: {proc.stdout[-500:]}"
    if code is not None:
        assert proc.returncode == code, err
    assert "Traceback" not in err and "MemoryError" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1 and len(err.splitlines()) <= 4 and len(err) < 1000, err[-3000:]
    assert expect in errors[0], errors[0]
    assert neighbour.read_text() == "keep me\n"
    return errors[0]


@pytest.fixture
def run(tiny_checkpoints, tmp_path):
    """A private copy of the tiny base run: (run folder, its step folder)."""
    dest = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoints["base"].parent, dest)
    return dest, dest / tiny_checkpoints["base"].name


def edit_meta(step, **config):
    meta = json.loads((step / "meta.json").read_text())
    meta["config"].update(config)
    (step / "meta.json").write_text(json.dumps(meta))


# ---- checkpoints: checked before anything is allocated -----------------------------------------

@pytest.mark.parametrize("config, expect", [
    ({"n_layer": 100000}, "field 'n_layer': expected an integer from 1 to 1024, got 100000"),
    ({"n_head": 0}, "field 'n_head': expected an integer from 1 to 1024, got 0"),
    ({"n_head": 3}, "field 'n_head': 3 does not divide n_embd 64"),
    ({"n_layer": 2.5}, "field 'n_layer': expected an integer"),
    ({"dropout": 5}, "field 'dropout': expected a number in [0, 1)"),
    ({"block_size": 1e9}, "field 'block_size': expected an integer"),
    ({"block_size": 1 << 20}, "tensor transformer.wpe.weight has shape (256, 64), config expects (1048576, 64)"),
    ({"n_layer": 3}, "the file holds 2 layers, meta.json says n_layer 3"),
    ({"n_embd": 128, "n_head": 2}, "config expects"),
    ({"colour": "red"}, "unknown field(s)"),
])
def test_checkpoint_config_is_checked_before_allocating(tmp_path, run, config, expect):
    _, step = run
    edit_meta(step, **config)
    hostile(tmp_path, "generate", "-m", step, "hi", "--no-log", expect=expect)


def test_tampered_checkpoint_files(tmp_path, run):
    run_dir, step = run
    shutil.copytree(run_dir, tmp_path / "deep")
    (tmp_path / "deep" / step.name / "meta.json").write_text("[" * 100_000)
    hostile(tmp_path, "generate", "-m", tmp_path / "deep", "hi", expect="nested too deeply")

    tensors = load_file(step / "model.safetensors")
    tensors["transformer.h.0.mlp.c_fc.weight"][0, 0] = float("nan")
    save_file(tensors, step / "model.safetensors")
    hostile(tmp_path, "generate", "-m", run_dir, "hi", expect="holds NaN or infinite values")

    for latest in (b"../deep\n", b"\xff\xfe\n", b"step-000001/../../x\n", b"x" * 10_000):
        (run_dir / "LATEST").write_bytes(latest)
        hostile(tmp_path, "generate", "-m", run_dir, "hi", expect="LATEST: expected the name of a step folder")

    hostile(tmp_path, "generate", "-m", "x" * 5000, "hi", expect="File name too long")


def test_a_huge_pickle_is_refused_from_its_first_bytes(tmp_path):
    big = tmp_path / "model.safetensors"
    with open(big, "wb") as f:
        f.write(b"\x80\x04")  # pickle protocol 4, then 20 GB of sparse zeros
        f.truncate(20 << 30)
    hostile(tmp_path, "generate", "-m", big, "hi", expect="looks like a pickle/torch.save file")
    hostile(tmp_path, "tokenizer", "encode", "-t", big, "hi", expect="")


def test_a_hugging_face_config_far_larger_than_its_weights_allocates_nothing(tmp_path, tiny_checkpoints):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 300, "n_positions": 64,
                                                    "n_embd": 65536, "n_layer": 2, "n_head": 1}))
    save_file({"wte.weight": torch.zeros(300, 8)}, folder / "model.safetensors")  # 1,000x smaller than it says
    tokenizer = ("--tokenizer", tiny_checkpoints["base"])
    hostile(tmp_path, "import", folder, "--out", "x", *tokenizer,
            expect="hf/model.safetensors: tensors do not match config.json")
    (folder / "config.json").write_text("[" * 100_000)
    hostile(tmp_path, "import", folder, "--out", "x", *tokenizer, expect="nested too deeply")


# ---- options: every number has a range ---------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("generate", "-m", "x", "-t", "nan", "hi"),
    ("generate", "-m", "x", "--max-tokens", "100000000000000000000", "hi"),
    ("generate", "-m", "x", "--seed", str(2**70), "hi"),
    ("train", "--data", "toyworld", "--lr", "nan"),
    ("train", "--data", "toyworld", "--lr", "inf"),
    ("train", "--data", "toyworld", "--batch-size", "1000000000"),
    ("train", "--data", "toyworld", "--seed", "-1"),
    ("tokenizer", "train", "toyworld", "--vocab-size", str(2**40), "-o", "tok"),
    ("leaderboard", "--seed", "-1"),
    ("leaderboard", "--samples", "1000000000"),
    ("log", "-n", str(10**30)),
    ("rank", "-m", "x", "-t", "nan"),
    ("rlhf", "--beta", "nan"),
])
def test_numbers_out_of_range_are_usage_errors(tmp_path, args):
    hostile(tmp_path, *args, expect="Invalid value", code=2)


def test_an_entry_id_past_any_row_is_a_usage_error(tmp_path):
    hostile(tmp_path, "log", "show", str(10**30), expect="expected an entry id as gptkit log lists it", code=2)


# ---- paths: only regular files are read; a file where a folder belongs is named -----------------

def test_pipes_and_devices_are_refused_not_read(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    os.symlink("/dev/zero", tmp_path / "zero.yaml")
    os.symlink("/dev/zero", tmp_path / "zero.jsonl")
    hostile(tmp_path, "train", "--data", tmp_path / "pipe.yaml", expect="is a pipe; expected a regular file")
    hostile(tmp_path, "train", "--data", "/dev/zero", expect="is a device; expected a regular file")
    hostile(tmp_path, "sft", "--data", tmp_path / "zero.jsonl", expect="is a device")
    hostile(tmp_path, "rank", "import", tmp_path / "zero.jsonl", expect="is a device")
    hostile(tmp_path, "prompt", "run", "-t", tmp_path / "pipe.yaml", "-m", "x", "--cases", "toyworld",
            expect="is a pipe")
    hostile(tmp_path, "prompt", "run", "-t", "plain", "-m", "x", "--cases", tmp_path / "zero.yaml",
            expect="is a device")


def test_a_file_where_a_folder_belongs(tmp_path):
    (tmp_path / "out").write_text("mine\n")
    for args in (("train", "--data", "toyworld", "--out", "out"), ("tokenizer", "train", "toyworld", "-o", "out"),
                 ("data", "toyworld", "--out", "out"), ("quickstart", "--size", "tiny", "--out", "out", "--fresh")):
        hostile(tmp_path, *args, expect="is a file; expected a folder")
    assert (tmp_path / "out").read_text() == "mine\n"


def test_a_full_device_is_one_line(tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    from gptkit.store import open_logbook

    with open_logbook() as logbook:  # the same GPTKIT_HOME as the command's (conftest)
        logbook.log_ranking("p", [{"text": "a"}, {"text": "b"}], [1, 2], rater="me")
        logbook.log_generation(prompt="p", output="o")
    hostile(tmp_path, "rank", "export", "--out", "/dev/full", expect="/dev/full: cannot write (No space left on device)")
    hostile(tmp_path, "log", "export", "/dev/full", expect="/dev/full: cannot write (No space left on device)")


def test_quickstart_fresh_refuses_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    hostile(tmp_path, "quickstart", "--size", "tiny", "--out", "mine", "--fresh",
            expect="holds thesis.tex, which the quickstart did not write")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"


# ---- data files: deep nesting, bombs, silent acceptance ----------------------------------------

def test_deep_nesting_in_every_reader(tmp_path):
    deep = "[" * 100_000
    (tmp_path / "deep.jsonl").write_text(deep + "\n")
    (tmp_path / "deep.yaml").write_text(deep + "\n")
    hostile(tmp_path, "sft", "--data", "deep.jsonl", expect="deep.jsonl:1: invalid JSON (nested too deeply)")
    hostile(tmp_path, "rlhf", "--data", "deep.jsonl", "-m", "x", expect="nested too deeply")
    hostile(tmp_path, "rank", "import", "deep.jsonl", expect="deep.jsonl:1: invalid JSON (nested too deeply)")
    hostile(tmp_path, "rank", "--prompts", "deep.jsonl", "-m", "x", expect="nested too deeply")
    hostile(tmp_path, "rank", "--prompts", "deep.yaml", "-m", "x", expect="nested too deeply")
    hostile(tmp_path, "train", "--data", "deep.jsonl", expect="nested too deeply")
    hostile(tmp_path, "prompt", "run", "-t", "deep.yaml", "-m", "x", "--cases", "toyworld", expect="nested too deeply")
    hostile(tmp_path, "prompt", "run", "-t", "plain", "-m", "x", "--cases", "deep.yaml", expect="nested too deeply")
    hostile(tmp_path, "prompt", "run", "-t", "plain", "-m", "x", "--cases", "deep.jsonl", expect="nested too deeply")


def test_yaml_bombs_are_refused_with_a_short_message(tmp_path):
    lines = ["name: bomb", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    line = hostile(tmp_path, "prompt", "run", "-t", "bomb.yaml", "-m", "x", "--cases", "toyworld",
                   expect="YAML expands to more than 100,000 values")
    assert len(line) < 300
    (tmp_path / "cases.yaml").write_text("- &q {question: x, expected: y}\n" + "\n".join(lines[1:]).replace("a0:", "- a0:"))
    hostile(tmp_path, "prompt", "run", "-t", "plain", "-m", "x", "--cases", "cases.yaml", expect="malformed YAML")


def test_preferences_that_state_nothing_are_refused(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "same.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "a"}) + "\n")
    hostile(tmp_path, "rank", "import", "empty.jsonl", expect="no preference pairs in file")
    hostile(tmp_path, "rank", "import", "same.jsonl", expect="same.jsonl:1: field 'rejected': the same text as chosen")


@pytest.mark.parametrize("messages, expect", [
    ([{"role": "assistant", "content": "Hi"}, {"role": "user", "content": "Q"}], "messages[0].role': expected a user message"),
    ([{"role": "user", "content": "Q"}, {"role": "system", "content": "S"}, {"role": "assistant", "content": "A"}],
     "messages[1].role': expected a assistant message"),
    ([{"role": "user", "content": "Q"}, {"role": "assistant", "content": "  "}], "messages[1].content': an empty assistant turn"),
])
def test_sft_refuses_conversations_out_of_order(tmp_path, messages, expect):
    good = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    (tmp_path / "chats.jsonl").write_text(json.dumps(good) + "\n" + json.dumps({"messages": messages}) + "\n")
    hostile(tmp_path, "sft", "--data", "chats.jsonl", "-m", "x", expect=f"chats.jsonl:2: field '{expect}")


def test_a_template_regex_that_backtracks_forever_is_stopped(tmp_path):
    (tmp_path / "slow.yaml").write_text(
        "name: slow\nexamples:\n  - question: q\n    answer: '" + "a" * 60 + "!'\n"
        "answer:\n  regex: '^(\\w|\\w\\w)*$'\n")
    hostile(tmp_path, "prompt", "run", "-t", "slow.yaml", "-m", "x", "--cases", "toyworld", timeout=60,
            expect="slow.yaml:6: field 'answer.regex': regular expression '^(\\\\w|\\\\w\\\\w)*$' ran over 1s")


# ---- training runs: resume checks and one writer per folder ------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-step run of `gptkit train` on a small text file (with its training state)."""
    from conftest import TINY_CORPUS

    root = tmp_path_factory.mktemp("trained")
    (root / "corpus.txt").write_text("\n\n".join(TINY_CORPUS))
    env = {**os.environ, "GPTKIT_HOME": str(root / "home")}
    subprocess.run([sys.executable, "-m", "gptkit", "train", "--data", root / "corpus.txt", "--preset", "tiny",
                    "--vocab-size", "300", "--max-steps", "2", "--batch-size", "2", "--out", root / "run", "--json"],
                   check=True, capture_output=True, env=env, timeout=300)
    return root


def test_resume_with_other_data_says_what_changed(tmp_path, trained):
    (tmp_path / "other.txt").write_text("other text " * 500)
    shutil.copytree(trained / "run", tmp_path / "run")
    hostile(tmp_path, "train", "--data", "other.txt", "--max-steps", "4", "--out", "run", "--resume",
            expect="was trained on --data")


@pytest.mark.parametrize("tamper, expect", [
    (lambda step: (step / "train_state.json").write_text('{"step": "two"}'), "field 'step': expected a whole number"),
    (lambda step: (step / "train_state.json").write_text('{"a": ' * 50_000), "nested too deeply"),
    (lambda step: save_file({k: v for k, v in load_file(step / "train_state.safetensors").items() if k != "rng.data"},
                            step / "train_state.safetensors"), "tensor rng.data"),
    (lambda step: save_file({**load_file(step / "train_state.safetensors"), "rng.torch": torch.zeros(3, dtype=torch.uint8)},
                            step / "train_state.safetensors"), "saved training state does not fit"),
])
def test_tampered_training_state(tmp_path, trained, tamper, expect):
    shutil.copytree(trained / "run", tmp_path / "run")
    tamper(tmp_path / "run" / step_dirname(2))
    shutil.copy(trained / "corpus.txt", tmp_path / "corpus.txt")
    hostile(tmp_path, "train", "--data", trained / "corpus.txt", "--preset", "tiny", "--max-steps", "4",
            "--batch-size", "2", "--out", "run", "--resume", expect=expect)


def test_generate_says_when_the_prompt_was_cut_to_fit(tmp_path, tiny_checkpoints):
    proc = subprocess.run([sys.executable, "-m", "gptkit", "generate", "-m", tiny_checkpoints["base"], "--max-tokens", "2",
                           "--no-log", "word " * 400], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "note: the prompt is 2001 tokens; the model read only its last" in proc.stderr
