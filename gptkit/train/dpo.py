"""DPO (Rafailov et al. 2023): learn straight from ranked pairs, no reward model, no sampling.

The policy starts as the SFT model; a frozen copy of the same checkpoint is the reference. For a
pair, each model's sequence log-prob sums the answer's tokens (its `<|end|>` included; the
prompt never counts), and

    loss = -log sigmoid(beta * ((pi_chosen - ref_chosen) - (pi_rejected - ref_rejected)))

`beta * (pi - ref)` is the answer's implicit reward; beta sets how far the policy may move from
the reference (larger: stays closer). While policy == reference the loss is exactly log 2.
Metrics: `margin` (implicit reward of chosen minus rejected), `reward_acc` (how often chosen
wins), `kl` (mean pi - ref log-prob of the chosen answers, a cheap KL estimate).

Optionally (`sft_weight` > 0) the per-token negative log-likelihood of the chosen answers is
added, as in RPO / iterative RPO (Pang et al. 2024). Plain DPO lowers the likelihood of chosen
and rejected answers alike, and a small model that drifts that way soon writes worse answers
than it did before; the NLL term keeps the chosen answers likely. The default is plain DPO.

The reference lives in the objective, never inside the trained model, so the optimizer never
sees it and the `policy` checkpoint holds only the policy. Its step folder is recorded
(`parent_path`) so a resumed run rebuilds the same reference.

Must not know: where pairs come from (data/preferences.py) or how training steps run (loop.py).
"""

from pathlib import Path

import torch
from torch.nn import functional as F

from gptkit.checkpoint import CHAT_KINDS
from gptkit.data.preferences import encode_pairs, load_preference_pairs, sample_pair_batch, split_by_prompt
from gptkit.device import to_device


def token_logprobs(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log p(y_t | x_<=t) for every position: x, y (B, T) -> (B, T) in float32."""
    logits = model(x)  # (B, T, V)
    return -F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none").view_as(y)


def sequence_logprobs(model, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Summed log-prob of the masked (answer) tokens of each row: (B,)."""
    return (token_logprobs(model, x, y) * mask).sum(dim=-1)


def dpo_loss(policy_logps: torch.Tensor, reference_logps: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict]:
    """Rows are chosen answers first, then rejected (as `pair_batch` orders them): (2B,) each."""
    policy_chosen, policy_rejected = policy_logps.chunk(2)
    reference_chosen, reference_rejected = reference_logps.chunk(2)
    chosen_reward = beta * (policy_chosen - reference_chosen)
    rejected_reward = beta * (policy_rejected - reference_rejected)
    logits = chosen_reward - rejected_reward
    metrics = {"margin": logits.mean().detach(), "reward_acc": (logits > 0).float().mean().detach(),
               "kl": (policy_chosen - reference_chosen).mean().detach()}
    return -F.logsigmoid(logits).mean(), metrics


def load_frozen(spec, device: str, kinds: tuple[str, ...]):
    """A checkpoint's model in eval mode with gradients off: a reference or a reward model."""
    from gptkit.checkpoint import load_checkpoint

    ckpt = load_checkpoint(spec, device=device, kinds=kinds)
    ckpt.model.requires_grad_(False)
    return ckpt


class DPOObjective:
    kind = "policy"

    def __init__(self, train_pairs, val_pairs, tokenizer, reference, *, beta: float, batch_size: int, device,
                 sft_weight: float = 0.0):
        self.train_pairs, self.val_pairs = train_pairs, val_pairs
        self.tokenizer, self.reference = tokenizer, reference
        self.beta, self.sft_weight, self.batch_size, self.device = beta, sft_weight, batch_size, device

    def next_batch(self, split: str, generator: torch.Generator):
        pairs = self.train_pairs if split == "train" else self.val_pairs
        batch = sample_pair_batch(pairs, self.batch_size, generator, self.tokenizer.bos_id)
        return {k: to_device(batch[k], self.device) for k in ("x", "y", "mask")}

    def loss(self, model, batch):
        x, y, mask = batch["x"], batch["y"], batch["mask"]
        policy = sequence_logprobs(model, x, y, mask)
        with torch.no_grad():
            reference = sequence_logprobs(self.reference, x, y, mask)
        loss, metrics = dpo_loss(policy, reference, self.beta)
        if self.sft_weight:
            chosen_nll = -(policy.chunk(2)[0] / mask.chunk(2)[0].sum(-1).clamp(min=1)).mean()  # per token
            loss = loss + self.sft_weight * chosen_nll
            metrics["nll"] = chosen_nll.detach()
        return loss, metrics

    def tokens_in(self, batch) -> int:
        return int(batch["mask"].sum())

    def sample(self, model) -> str | None:
        from gptkit.tokenizer import render_chat
        from gptkit.train.pretrain import sample_text
        from gptkit.train.sft import SAMPLE_QUESTION

        ids, _ = render_chat(self.tokenizer, [{"role": "user", "content": SAMPLE_QUESTION}], add_generation_prompt=True)
        return sample_text(model, self.tokenizer, ids)


def start_policy(init_from, run_dir: Path, resume: bool):
    """`start_run` for a policy (DPO, PPO): it starts from an SFT checkpoint, which is also the
    frozen reference; the run records both its name and its step folder (`parent_path`)."""
    from gptkit.train.loop import start_run

    return start_run(run_dir, resume=resume, init_from=init_from, init_kinds=CHAT_KINDS,
                     init_hint="the assistant (SFT) checkpoint to start the policy from")


def run_dpo(*, init_from: str | None, data: str, run_dir, cfg, dc, beta: float = 0.1, sft_weight: float = 0.0,
            resume: bool = False, include_synthetic: bool = True, reporter=None) -> Path:
    """`gptkit rlhf --method dpo`: returns the last saved step folder of `run_dir`.

    On resume, beta, sft_weight and the reference are the run's own (from its metadata), so it
    goes on exactly as it started."""
    from gptkit.errors import DataError, UsageError
    from gptkit.train.loop import train

    pairs = load_preference_pairs(data, include_synthetic=include_synthetic)  # bad data fails before any model loads
    start = start_policy(init_from, run_dir, resume)
    tokenizer, model, saved = start.tokenizer, start.model, start.saved
    if resume and saved.get("method") != "dpo":
        raise UsageError(f"--resume: {run_dir} holds a {saved.get('method') or saved['kind']} run, not a DPO one")
    if resume and (saved.get("beta", beta), saved.get("sft_weight", 0.0)) != (beta, sft_weight):
        beta, sft_weight = saved.get("beta", beta), saved.get("sft_weight", 0.0)
        if reporter:
            reporter.message(f"resuming with the run's own beta {beta} and sft_weight {sft_weight}")
    reference = load_frozen(start.parent_path, dc.device, CHAT_KINDS).model
    train_raw, val_raw = split_by_prompt(pairs, lambda pair: pair[0])
    train_pairs = encode_pairs(tokenizer, train_raw, model.config.block_size)
    val_pairs = encode_pairs(tokenizer, val_raw, model.config.block_size) or train_pairs
    if not train_pairs:
        raise DataError(f"{data}: none of the {len(pairs)} pairs states a preference (identical answers or empty ones)")
    if reporter:
        reporter.message(f"data: {len(pairs)} pairs ({len(train_pairs)} train / {len(val_pairs)} val); "
                         f"reference: {start.parent} (frozen); beta {beta}")
    objective = DPOObjective(train_pairs, val_pairs, tokenizer, reference, beta=beta, sft_weight=sft_weight,
                             batch_size=cfg.batch_size, device=dc.device)
    meta = {"parent": start.parent, "parent_path": start.parent_path, "data": data, "method": "dpo", "beta": beta,
            "sft_weight": sft_weight}
    return train(model, tokenizer, objective, cfg, run_dir=run_dir, meta=meta, dc=dc, resume=resume, reporter=reporter)
