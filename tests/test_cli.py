"""cli.py: the training commands share one declaration of their options and refuse the ones they
do not use; user errors are one line, never a traceback."""

import dataclasses
import os
import subprocess
import sys

import pytest

from gptkit.cli import TrainingArgs, cli

TRAINING_COMMANDS = ("train", "sft", "reward", "rlhf")


def gptkit(*args):
    return subprocess.run([sys.executable, "-m", "gptkit", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=os.environ)


def test_every_training_command_takes_the_shared_options_and_only_train_a_preset():
    shared = {field.name for field in dataclasses.fields(TrainingArgs)}
    for name in TRAINING_COMMANDS:
        params = {param.name for param in cli.commands[name].params}
        assert shared <= params, name
        assert ("preset" in params) == (name == "train"), name


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("The cat sat on the mat. " * 50)
    return path


@pytest.mark.parametrize("args, message", [
    (["sft", "--preset", "tiny"], "No such option '--preset'"),
    (["reward", "--preset", "tiny"], "No such option '--preset'"),
    (["rlhf", "--preset", "tiny"], "No such option '--preset'"),
    (["rlhf", "--kl-coef", "0.1"], "--kl-coef: a PPO option; --method dpo does not use it"),
    (["rlhf", "--samples", "4"], "--samples: a PPO option; --method dpo does not use it"),
    (["rlhf", "--method", "ppo", "--beta", "0.2"], "--beta: a DPO option; --method ppo does not use it"),
    (["train", "--data", "TEXT", "-m", "ASSISTANT", "--preset", "tiny"],
     "--preset: the model and its tokenizer come from -m/--model"),
    (["train", "--data", "TEXT", "-m", "ASSISTANT", "--tokenizer", "TOK"],
     "--tokenizer: the model and its tokenizer come from -m/--model"),
    (["train", "--data", "TEXT", "--tokenizer", "TOK", "--vocab-size", "300"],
     "--vocab-size: sizes a tokenizer trained on --data"),
])
def test_training_commands_refuse_options_they_do_not_use(args, message, text_file, tiny_checkpoints, tmp_path):
    stand_ins = {"TEXT": text_file, "ASSISTANT": tiny_checkpoints["assistant"], "TOK": tiny_checkpoints["base"]}
    proc = gptkit(*[stand_ins.get(arg, arg) for arg in args], "--out", tmp_path / "run")
    errors = [line for line in proc.stderr.splitlines() if line.lower().startswith("error")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert not (tmp_path / "run").exists()
