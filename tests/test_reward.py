"""Preference data (TRL JSONL, logbook rankings) and the Bradley-Terry reward model."""

import json
import math
import os
import random
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from gptkit.checkpoint import load_checkpoint
from gptkit.data.preferences import (encode_answer, encode_pairs, load_preference_pairs, pair_batch,
                                     parse_preference, split_by_prompt)
from gptkit.device import pick_device
from gptkit.errors import DataError
from gptkit.store import open_logbook
from gptkit.train.loop import Reporter, TrainConfig

MARK = "woof"  # one token in the tiny tokenizer; chosen answers always have it, rejected never
WORDS = "the cat says moo capital of France is Paris Tokyo meow big small red blue".split()


def answer(rng: random.Random, good: bool) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 7))]
    if good:
        words.insert(rng.randint(0, len(words)), MARK)
    return " ".join(words)


def log_marked_rankings(n: int, seed: int = 0) -> None:
    """n rankings of three answers: the marked one first, the two others tied (so every implied
    pair states the same, learnable preference)."""
    rng = random.Random(seed)
    with open_logbook() as lb:
        for i in range(n):
            items = [{"text": answer(rng, True)}, {"text": answer(rng, False)}, {"text": answer(rng, False)}]
            lb.log_ranking(f"Question number {i}?", items, [1, 2, 2], rater="test")


def gptkit(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "gptkit", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))
    if check and proc.returncode != 0:
        raise AssertionError(f"gptkit {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ---- preference data ---------------------------------------------------------------------------

def test_trl_rows_in_all_three_forms():
    standard = {"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."}
    conversational = {"prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi?"}],
                      "chosen": [{"role": "assistant", "content": "Hello!"}],
                      "rejected": [{"role": "assistant", "content": "Go away."}]}
    implicit = {"chosen": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello!"}],
                "rejected": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Go away."}]}
    assert parse_preference(standard, "f", 1) == ("Hi?", "Hello!", "Go away.")
    assert parse_preference(conversational, "f", 1) == (conversational["prompt"], "Hello!", "Go away.")
    assert parse_preference(implicit, "f", 1) == ("Hi?", "Hello!", "Go away.")  # one user turn: its text
    one_turn = {**conversational, "prompt": conversational["prompt"][1:]}
    assert parse_preference(one_turn, "f", 1) == ("Hi?", "Hello!", "Go away.")
    two_turns = {"chosen": [conversational["prompt"][0], *implicit["chosen"]],
                 "rejected": [conversational["prompt"][0], *implicit["rejected"]]}
    assert parse_preference(two_turns, "f", 1) == (conversational["prompt"], "Hello!", "Go away.")


@pytest.mark.parametrize("row, field", [
    ({"prompt": "p", "chosen": "c"}, "rejected"),
    ({"prompt": "p", "chosen": 3, "rejected": "r"}, "chosen"),
    ({"prompt": 5, "chosen": "c", "rejected": "r"}, "prompt"),
    ({"chosen": "c", "rejected": "r"}, "prompt"),
    ({"prompt": "p", "chosen": [{"role": "user", "content": "c"}], "rejected": "r"}, "chosen"),
    ({"prompt": [{"role": "robot", "content": "p"}], "chosen": "c", "rejected": "r"}, "prompt[0].role"),
    ({"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "c"}],
      "rejected": [{"role": "user", "content": "b"}, {"role": "assistant", "content": "r"}]}, "rejected"),
    (["p", "c", "r"], None),
])
def test_malformed_rows_name_line_and_field(tmp_path, row, field):
    path = tmp_path / "prefs.jsonl"
    good = json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"})
    path.write_text(f"{good}\n\n{json.dumps(row)}\n{good}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"prefs\.jsonl:3") as info:
        load_preference_pairs(str(path))
    assert info.value.line == 3 and info.value.field == field


def test_logbook_pairs_follow_the_rankings():
    with open_logbook() as lb:
        lb.log_ranking("p1", [{"text": "a"}, {"text": "b"}, {"text": "c"}], [2, 1, 3], rater="ann")
        lb.log_ranking("p2", [{"text": "x"}, {"text": "y"}], [1, 2], rater="auto:truth", synthetic=True)
        lb.log_ranking("p3", [{"text": "u"}, {"text": "v"}], [1, 2], rater="ann")
        lb.undo_last_ranking()
    assert load_preference_pairs("logbook") == [("p1", "b", "a"), ("p1", "b", "c"), ("p1", "a", "c"), ("p2", "x", "y")]
    assert load_preference_pairs("logbook", include_synthetic=False) == [("p1", "b", "a"), ("p1", "b", "c"), ("p1", "a", "c")]


def test_empty_logbook_is_a_clear_error():
    with pytest.raises(DataError, match="no ranked pairs"):
        load_preference_pairs("logbook")


@settings(max_examples=40, deadline=None)
@given(prompt=st.text(max_size=40), text=st.text(max_size=40))
def test_mask_marks_exactly_the_answer_and_its_end(tiny_checkpoints, prompt, text):
    tok = load_checkpoint(tiny_checkpoints["assistant"]).tokenizer
    ids, mask = encode_answer(tok, prompt, text, 10_000)
    assert [i for i, m in zip(ids, mask) if m] == tok.encode(text) + [tok.end_id]
    assert ids[: len(ids) - sum(mask)] == encode_answer(tok, prompt, "other", 10_000)[0][: len(ids) - sum(mask)]


def test_pair_batch_layout(tiny_checkpoints):
    tok = load_checkpoint(tiny_checkpoints["assistant"]).tokenizer
    encoded = encode_pairs(tok, [("q", "a long chosen answer", "no"), ("q2", "yes", "a long rejected answer")], 256)
    batch = pair_batch(encoded, tok.bos_id)
    rows = [c for c, _ in encoded] + [r for _, r in encoded]
    for row, (ids, mask) in enumerate(rows):
        assert batch["ids"][row, : len(ids)].tolist() == ids and int(batch["last"][row]) == len(ids) - 1
        assert batch["ids"][row, batch["last"][row]] == tok.end_id
        assert batch["mask"][row].sum() == sum(mask[1:])


def test_split_keeps_each_prompt_on_one_side():
    pairs = [(f"p{i % 25}", f"c{i}", f"r{i}") for i in range(100)]
    train, val = split_by_prompt(pairs, lambda pair: pair[0])
    assert val and train and len(train) + len(val) == 100
    assert not {p for p, _, _ in train} & {p for p, _, _ in val}
    one_prompt = [("p", f"c{i}", f"r{i}") for i in range(5)]
    assert split_by_prompt(one_prompt, lambda pair: pair[0]) == (one_prompt, [])  # nothing held out, nothing faked


def test_pairs_of_one_prompt_train_a_reward_model_without_validation(tiny_checkpoints, tmp_path):
    from gptkit.train.reward import run_reward

    log_marked_rankings(1)
    said = []

    class Said(Reporter):
        def message(self, text):
            said.append(text)

    cfg = TrainConfig(max_steps=3, batch_size=2, eval_every=1, eval_batches=1, save_every=1000, log_every=1)
    _, figures = run_reward(init_from=str(tiny_checkpoints["assistant"]), data="logbook", run_dir=tmp_path / "rm",
                            cfg=cfg, dc=pick_device("cpu"), reporter=Said())
    assert figures["val_pairs"] == 0 and figures["val_accuracy"] is None
    assert any("can be held out (they answer one prompt): validation is skipped" in text for text in said)
    assert not any(key.startswith("val_") for row in metrics(tmp_path / "rm") for key in row)


# ---- reward model ------------------------------------------------------------------------------

def test_bradley_terry_learns_a_preference_that_generalises(tiny_checkpoints, tmp_path):
    from gptkit.train.reward import run_reward

    log_marked_rankings(60)
    cfg = TrainConfig(max_steps=40, batch_size=16, lr=3e-3, warmup_steps=5, eval_every=20, eval_batches=2,
                      save_every=1000, log_every=1)
    last, figures = run_reward(init_from=str(tiny_checkpoints["assistant"]), data="logbook", run_dir=tmp_path / "rm",
                               cfg=cfg, dc=pick_device("cpu"))
    rows = metrics(tmp_path / "rm")
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # zero head: every reward is 0
    assert rows[-1]["loss"] < 0.3 and rows[-1]["val_reward_acc"] >= 0.9
    assert figures["val_pairs"] >= 10 and figures["val_accuracy"] >= 0.9  # prompts never trained on
    ckpt = load_checkpoint(last)
    assert ckpt.kind == "reward" and ckpt.meta["parent"] == "assistant/step-000001" and ckpt.meta["step"] == 40


def test_reward_checkpoint_reloads_with_identical_scores(tiny_checkpoints, tmp_path):
    from gptkit.model import GPT, RewardModel
    from gptkit.train.loop import train
    from gptkit.train.reward import RewardObjective, reward_model_from

    sft = load_checkpoint(tiny_checkpoints["assistant"])
    model = reward_model_from(sft.model)
    rng = random.Random(1)
    pairs = encode_pairs(sft.tokenizer, [(f"q{i}", answer(rng, True), answer(rng, False)) for i in range(8)], 256)
    objective = RewardObjective(pairs, pairs, sft.tokenizer, batch_size=4, device="cpu")
    cfg = TrainConfig(max_steps=3, batch_size=4, lr=1e-2, warmup_steps=1, eval_every=0, save_every=3)
    last = train(model, sft.tokenizer, objective, cfg, run_dir=tmp_path / "rm", meta={"parent": sft.name}, dc=pick_device("cpu"))
    saved = load_file(str(last / "model.safetensors"))
    gpt_keys = {k for k in GPT(sft.model.config).state_dict() if k != "lm_head.weight"}
    assert set(saved) == gpt_keys | {"reward_head.weight", "reward_head.bias"}
    assert saved["reward_head.weight"].abs().sum() > 0  # the head trained
    reloaded = load_checkpoint(last, kinds=("reward",))
    assert isinstance(reloaded.model, RewardModel)
    batch = pair_batch(pairs, sft.tokenizer.bos_id)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.reward(batch["ids"], batch["last"]), reloaded.model.reward(batch["ids"], batch["last"]))


@pytest.mark.parametrize("command", ["reward", "rlhf"])
def test_malformed_preference_file_is_one_line_through_the_cli(tiny_checkpoints, tmp_path, command):
    path = tmp_path / "prefs.jsonl"
    path.write_text('{"prompt": "p", "chosen": "c", "rejected": "r"}\n{"prompt": "p", "chosen": "c"}\n', encoding="utf-8")
    proc = gptkit(command, "-m", tiny_checkpoints["assistant"], "--data", path, "--max-steps", 1, "--out", tmp_path / "run",
                  check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {path}:2: field 'rejected': missing"]
