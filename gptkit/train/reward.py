"""Reward model: the assistant's trunk with a scalar head, trained on ranked answer pairs.

As in InstructGPT and Open-Assistant, a ranking of k answers gives every (better, worse) pair it
implies, and the model learns Bradley-Terry preferences: loss = -log sigmoid(r_chosen - r_rejected).
The reward of a conversation is read from the final hidden state at its last real token (the
answer's `<|end|>`), where the whole prompt and answer are in view.

The architecture, `RewardModel` (GPT plus a zero-initialised scalar head), lives in model.py
beside the GPT; here its trunk starts as the SFT model's, so every reward starts at 0 and the
first loss is exactly log 2.

Must not know: where pairs come from (data/preferences.py) or how they are ranked (store.py).
"""

from pathlib import Path

import torch
from torch.nn import functional as F

from gptkit.checkpoint import CHAT_KINDS
from gptkit.data.preferences import encode_split, load_preference_pairs, pair_batch, sample_pair_batch
from gptkit.device import to_device
from gptkit.model import GPT, RewardModel


def reward_model_from(model: GPT) -> RewardModel:
    """A RewardModel whose trunk is a copy of `model`'s (a GPT) and whose head is zero."""
    rm = RewardModel(model.config)
    result = rm.load_state_dict(model.state_dict(), strict=False)
    assert not result.unexpected_keys and set(result.missing_keys) == {"reward_head.weight", "reward_head.bias"}, result
    return rm.to(next(model.parameters()).device)


def bradley_terry(chosen: torch.Tensor, rejected: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Mean -log sigmoid(r_chosen - r_rejected) and how often/by how much chosen wins."""
    diff = chosen.float() - rejected.float()
    metrics = {"reward_acc": (diff > 0).float().mean().detach(), "margin": diff.mean().detach()}
    return -F.logsigmoid(diff).mean(), metrics


class RewardObjective:
    kind = "reward"

    def __init__(self, train_pairs, val_pairs, tokenizer, *, batch_size: int, device):
        self.train_pairs, self.val_pairs = train_pairs, val_pairs
        self.tokenizer, self.batch_size, self.device = tokenizer, batch_size, device

    def next_batch(self, split: str, generator: torch.Generator):
        pairs = self.train_pairs if split == "train" else self.val_pairs
        batch = sample_pair_batch(pairs, self.batch_size, generator, self.tokenizer.bos_id)
        return {k: to_device(v, self.device) for k, v in batch.items()}

    def loss(self, model, batch):
        rewards = model.reward(batch["ids"], batch["last"])  # (2B,): chosen rows, then rejected
        chosen, rejected = rewards.chunk(2)
        return bradley_terry(chosen, rejected)

    def tokens_in(self, batch) -> int:
        return int((batch["last"] + 1).sum())

    def sample(self, model) -> str | None:
        return None


@torch.no_grad()
def pairwise_accuracy(model: RewardModel, encoded_pairs: list, pad_id: int, *, batch_size: int = 32) -> float:
    """Fraction of pairs whose chosen answer gets the higher reward (every pair, in order)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    wins = 0
    for start in range(0, len(encoded_pairs), batch_size):
        batch = pair_batch(encoded_pairs[start : start + batch_size], pad_id)
        chosen, rejected = model.reward(batch["ids"].to(device), batch["last"].to(device)).chunk(2)
        wins += int((chosen > rejected).sum())
    model.train(was_training)
    return wins / max(1, len(encoded_pairs))


def run_reward(*, init_from: str | None, data: str, run_dir, cfg, dc, resume: bool = False,
               include_synthetic: bool = True, reporter=None) -> tuple[Path, dict]:
    """`gptkit reward`: (last saved step folder, figures incl. held-out pairwise accuracy)."""
    from gptkit.train.loop import start_run, train, without_validation

    pairs = load_preference_pairs(data, include_synthetic=include_synthetic)  # bad data fails before any model loads
    start = start_run(run_dir, resume=resume, init_from=init_from, init_kinds=CHAT_KINDS,  # it already reads chats
                      init_hint="the assistant (SFT) checkpoint the reward model starts from")
    tokenizer = start.tokenizer
    model = start.model if resume else reward_model_from(start.model)  # a resumed run's is a RewardModel already
    train_pairs, val_pairs, unheld = encode_split(tokenizer, pairs, model.config.block_size, data)
    held_out = unheld is None
    if unheld:
        cfg = without_validation(cfg, reporter, unheld)
    if reporter:
        reporter.message(f"data: {len(pairs)} pairs ({len(train_pairs)} train / {len(val_pairs)} held-out)")
    objective = RewardObjective(train_pairs, val_pairs, tokenizer, batch_size=cfg.batch_size, device=dc.device)
    meta = {"parent": start.parent, "data": data}
    last = train(model, tokenizer, objective, cfg, run_dir=run_dir, meta=meta, dc=dc, resume=resume, reporter=reporter)
    accuracy = pairwise_accuracy(model, val_pairs, tokenizer.bos_id) if held_out else None
    if reporter and held_out:
        reporter.message(f"held-out pairwise accuracy: {accuracy:.3f} on {len(val_pairs)} pairs")
    return last, {"train_pairs": len(train_pairs), "val_pairs": len(val_pairs) if held_out else 0, "val_accuracy": accuracy}
