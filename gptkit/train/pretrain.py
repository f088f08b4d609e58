"""Pretraining objective: next-token prediction on every token of a document stream.

A batch is (x, y) from `data.text.random_batch`; the loss is the mean cross-entropy, each packed
document seeing only itself (`model.document_layout`). The sample
shown at eval time is a short continuation of a fixed prompt (seeded, so comparable over time).
"""

import torch

from gptkit.data.text import TokenShards, build_shards, random_batch
from gptkit.device import to_device
from gptkit.engine import SamplingParams, complete


class PretrainObjective:
    kind = "base"

    def __init__(self, shards: TokenShards, tokenizer, *, batch_size: int, seq_len: int, device, sample_prompt: str = ""):
        self.shards, self.tokenizer = shards, tokenizer
        self.batch_size, self.seq_len, self.device = batch_size, seq_len, device
        self.sample_prompt = sample_prompt

    def next_batch(self, split: str, generator: torch.Generator):
        data = self.shards.train if split == "train" else self.shards.val
        x, y = random_batch(data, self.batch_size, self.seq_len, generator)
        return to_device(x, self.device), to_device(y, self.device)

    def loss(self, model, batch):
        x, y = batch
        return model(x, y, bos_id=self.tokenizer.bos_id), {}

    def tokens_in(self, batch) -> int:
        return batch[0].numel()

    def sample(self, model) -> str | None:
        return sample_text(model, self.tokenizer, self.tokenizer.encode_document(self.sample_prompt))


def sample_text(model, tokenizer, prompt_ids: list[int], max_new_tokens: int = 48) -> str:
    """A seeded, short continuation used to show progress during training."""
    model.eval()
    params = SamplingParams(temperature=0.8, top_k=50, max_new_tokens=max_new_tokens, seed=0)
    (completion,) = complete(model, prompt_ids, params, n_vocab=tokenizer.n_vocab,
                             stop_ids=tokenizer.stop_ids)
    return tokenizer.decode(prompt_ids[1:] + completion.tokens)


def load_pretrain_documents(data: list[str]) -> tuple[list[str], str]:
    """(documents, cache key) for --data specs; the word `toyworld` (or `toyworld-ja`) means the
    built-in world."""
    from gptkit.data import world
    from gptkit.data.text import input_files, read_documents, source_key_for_files

    named = world.parse(data[0]) if len(data) == 1 else None
    if named and named[1] is None:
        lang = named[0]
        return world.world(lang).pretrain_documents(), "toyworld-v1" if lang == "en" else f"toyworld-{lang}-v1"
    files = input_files(data)
    return read_documents(files), source_key_for_files(files)


def tokenizer_split(data: list[str]) -> str:
    """The split pattern for a tokenizer trained on `data`: "ja" for the Japanese toy world."""
    from gptkit.data import world

    named = world.parse(data[0]) if len(data) == 1 else None
    return "ja" if named and named[0] == "ja" else "default"


def run_pretrain(
    *,
    data: list[str],
    run_dir,
    cfg,
    dc,
    preset: str = "small",
    tokenizer_spec: str | None = None,
    vocab_size: int = 4096,
    init_from: str | None = None,
    resume: bool = False,
    reporter=None,
):
    """`gptkit train`: returns the last saved step folder of `run_dir`.

    A new model is made only when the run neither resumes nor starts from `init_from`; then
    `preset`, `tokenizer_spec` and `vocab_size` apply (and a resumed run keeps its own preset)."""
    from pathlib import Path

    from gptkit.checkpoint import load_tokenizer_from
    from gptkit.model import GPT, config_for
    from gptkit.tokenizer import train_tokenizer
    from gptkit.train.loop import start_run, train

    run_dir = Path(run_dir)
    documents, source_key = load_pretrain_documents(data)

    def new_model():
        if tokenizer_spec:
            tokenizer = load_tokenizer_from(tokenizer_spec)
        else:
            if reporter:
                reporter.message(f"training a {vocab_size}-token BPE tokenizer on the data (--tokenizer to use another)")
            tokenizer = train_tokenizer(documents, vocab_size, name=run_dir.name, split=tokenizer_split(data))
        torch.manual_seed(cfg.seed)  # the initial weights are part of what --seed reproduces
        return tokenizer, GPT(config_for(preset, tokenizer.n_vocab))

    start = start_run(run_dir, resume=resume, init_from=init_from, init_kinds=("base", "assistant"), new_model=new_model)
    tokenizer, model = start.tokenizer, start.model
    if resume:
        preset = start.saved.get("preset")
    elif init_from:
        preset = None  # the model is the checkpoint's, whatever its size
    shards = build_shards(documents, tokenizer, block_size=model.config.block_size, source_key=source_key)
    if reporter:
        reporter.message(f"data: {len(documents)} documents, {len(shards.train):,} train / {len(shards.val):,} val tokens")
    objective = PretrainObjective(shards, tokenizer, batch_size=cfg.batch_size, seq_len=model.config.block_size,
                                  device=dc.device, sample_prompt="")
    meta = {"parent": start.parent, "data": data, "preset": preset}
    return train(model, tokenizer, objective, cfg, run_dir=run_dir, meta=meta, dc=dc, resume=resume, reporter=reporter)
