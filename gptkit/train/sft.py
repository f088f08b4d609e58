"""Supervised fine-tuning: turn a base model (document completer) into an assistant.

The loss covers only the assistant's tokens and its end-of-turn token (the mask from
`render_chat`); a model that never learns `<|end|>` would never stop talking. The run writes an
`assistant` checkpoint whose metadata names its parent.

A base model whose tokenizer has no chat tokens (one imported from Hugging Face) gains them
here, and the run says so: the vocabulary, and the embedding when its padding is too small, grow.
"""

from dataclasses import replace
from pathlib import Path

import torch

from gptkit.data.chat import encode_conversations, load_conversations, sample_batch, split_examples
from gptkit.device import to_device
from gptkit.train.pretrain import sample_text

SAMPLE_QUESTION = "What is the capital of France?"


class SFTObjective:
    kind = "assistant"

    def __init__(self, train_examples, val_examples, tokenizer, *, batch_size: int, device):
        self.train_examples, self.val_examples = train_examples, val_examples
        self.tokenizer, self.batch_size, self.device = tokenizer, batch_size, device

    def next_batch(self, split: str, generator: torch.Generator):
        examples = self.train_examples if split == "train" else self.val_examples
        x, y, mask = sample_batch(examples, self.batch_size, generator, self.tokenizer.bos_id)
        return to_device(x, self.device), to_device(y, self.device), to_device(mask, self.device)

    def loss(self, model, batch):
        x, y, mask = batch
        return model(x, y, loss_mask=mask), {}

    def tokens_in(self, batch) -> int:
        return int(batch[2].sum())  # trained (assistant) tokens

    def sample(self, model) -> str | None:
        from gptkit.tokenizer import render_chat

        ids, _ = render_chat(self.tokenizer, [{"role": "user", "content": SAMPLE_QUESTION}], add_generation_prompt=True)
        return sample_text(model, self.tokenizer, ids)


def run_sft(*, init_from: str | None, data: str, run_dir, cfg, dc, resume: bool = False, reporter=None) -> Path:
    """`gptkit sft`: returns the last saved step folder of `run_dir`."""
    from gptkit.train.loop import start_run, train

    conversations = load_conversations(data)  # a bad line fails before any model is loaded
    start = start_run(run_dir, resume=resume, init_from=init_from, init_kinds=("base", "assistant"),
                      init_hint="the base checkpoint to fine-tune")
    tokenizer, model = start.tokenizer, start.model
    if not tokenizer.has_chat_tokens:
        tokenizer, model, grown = add_chat_tokens(tokenizer, model)
        if reporter:
            reporter.message(grown)
    examples = encode_conversations(tokenizer, conversations, model.config.block_size)
    train_examples, val_examples = split_examples(examples)
    if reporter:
        reporter.message(f"data: {len(examples)} conversations ({len(train_examples)} train / {len(val_examples)} val)")
    objective = SFTObjective(train_examples, val_examples, tokenizer, batch_size=cfg.batch_size, device=dc.device)
    meta = {"parent": start.parent, "data": data}
    return train(model, tokenizer, objective, cfg, run_dir=run_dir, meta=meta, dc=dc, resume=resume, reporter=reporter)


def add_chat_tokens(tokenizer, model):
    """(tokenizer, model, what changed) for a base model whose tokenizer lacks the chat tokens.

    The tokens follow the largest id; the embedding (tied to the output layer) gains rows only
    when its padding cannot hold them. Each new token's row starts at the mean of the existing
    tokens' rows, as transformers' `resize_token_embeddings` does: a start near every token.
    """
    from gptkit.model import GPT, pad_vocab
    from gptkit.tokenizer import CHAT_TOKENS

    old_vocab, old_rows = tokenizer.n_vocab, model.config.vocab_size
    tokenizer = tokenizer.with_chat_tokens()
    rows = max(old_rows, pad_vocab(tokenizer.n_vocab))
    if rows > old_rows:
        state = model.state_dict()
        wte = state["transformer.wte.weight"]
        state["transformer.wte.weight"] = state["lm_head.weight"] = torch.cat(
            [wte, wte.new_zeros(rows - old_rows, wte.shape[1])])
        model = GPT(replace(model.config, vocab_size=rows))
        model.load_state_dict(state)
    new_ids = [tokenizer.special_id(t) for t in CHAT_TOKENS]
    with torch.no_grad():
        wte = model.transformer.wte.weight
        wte[new_ids] = wte[:old_vocab].mean(dim=0)
    return tokenizer, model, (f"chat tokens: added {' '.join(CHAT_TOKENS)} as ids {new_ids[0]}-{new_ids[-1]}; "
                              f"vocabulary {old_vocab} -> {tokenizer.n_vocab} tokens, embedding {old_rows} -> "
                              f"{rows} rows")
