"""Shared fixtures: every test runs with its own GPTKIT_HOME and checkpoints folder."""

import os

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine torch's thread
# pool makes every small op wait on the other core. Subprocesses of the CLI inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "gptkit_home"
    monkeypatch.setenv("GPTKIT_HOME", str(home))
    monkeypatch.setenv("GPTKIT_CHECKPOINTS", str(tmp_path / "checkpoints"))
    return home


TINY_CORPUS = [
    f"Q: What is the capital of {country}?\nA: {capital}\n\nThe {animal} says {sound}. {a} + {b} = {a + b}."
    for country, capital, animal, sound, a, b in [
        ("France", "Paris", "cat", "meow", 12, 7), ("Japan", "Tokyo", "dog", "woof", 3, 45),
        ("Italy", "Rome", "cow", "moo", 20, 22), ("Kenya", "Nairobi", "duck", "quack", 9, 9),
    ]
] * 20 + ["日本の首都は東京です。", "Explain the moon landing to a 6 year old."]


def make_tiny_checkpoints(root):
    """A trained tokenizer plus randomly initialised `tiny` GPTs saved as base and assistant runs.

    Random weights produce gibberish, which is all a UI or plumbing test needs; tests about what a
    model learns train their own.
    """
    import torch

    from gptkit.checkpoint import save_checkpoint
    from gptkit.model import GPT, config_for
    from gptkit.tokenizer import train_tokenizer

    tok = train_tokenizer(TINY_CORPUS, 320, name="tiny")
    out = {}
    for i, kind in enumerate(("base", "assistant")):
        torch.manual_seed(i)
        model = GPT(config_for("tiny", tok.n_vocab))
        parent = None if kind == "base" else "base/step-000001"
        out[kind] = save_checkpoint(root / kind, model=model, tokenizer=tok, meta={"kind": kind, "step": 1, "tokens_seen": 0, "parent": parent})
    return out


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """{"base": step folder, "assistant": step folder} shared by the whole session (read-only)."""
    return make_tiny_checkpoints(tmp_path_factory.mktemp("tiny_ckpts"))


def make_trained_checkpoints(root):
    """A prefix-space tokenizer and `tiny` GPTs trained for a few seconds: a base on TINY_CORPUS and
    an assistant fine-tuned from it on the corpus' questions as chats. Greedy decoding then writes
    varied tokens and the assistant ends answers with <|end|> (random weights repeat one token
    forever), which is what comparing generations token by token with another runtime needs.
    """
    import re

    import torch

    from gptkit.checkpoint import save_checkpoint
    from gptkit.data.chat import pad_batch
    from gptkit.model import GPT, config_for
    from gptkit.tokenizer import render_chat, train_tokenizer

    tok = train_tokenizer(TINY_CORPUS, 320, name="trained", prefix_space=True)
    chats = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}]
             for q, a in re.findall(r"Q: (.*)\nA: (.*)\n", "\n".join(TINY_CORPUS[:4]))]
    documents = [tok.encode_document(text) for text in TINY_CORPUS[:4] + TINY_CORPUS[-2:]]
    examples = {"base": [(ids, [1] * len(ids)) for ids in documents], "assistant": [render_chat(tok, c) for c in chats]}
    out = {}
    torch.manual_seed(0)
    model = GPT(config_for("tiny", tok.n_vocab))
    for kind in ("base", "assistant"):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        x, y, mask = pad_batch(examples[kind], tok.bos_id)
        for _ in range(60):
            optimizer.zero_grad()
            model(x, y, loss_mask=mask).backward()
            optimizer.step()
        parent = None if kind == "base" else "base/step-000060"
        out[kind] = save_checkpoint(root / kind, model=model.eval(), tokenizer=tok,
                                    meta={"kind": kind, "step": 60, "tokens_seen": 0, "parent": parent})
    return out


@pytest.fixture(scope="session")
def trained_checkpoints(tmp_path_factory):
    """{"base": step folder, "assistant": step folder}, trained (see `make_trained_checkpoints`)."""
    return make_trained_checkpoints(tmp_path_factory.mktemp("trained_ckpts"))
