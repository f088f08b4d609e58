"""DPO (Rafailov et al. 2023): learn straight from ranked pairs, no reward model, no sampling.

The policy starts as the SFT model; a frozen copy of the same checkpoint is the reference. For a
pair, each model's sequence log-prob sums the answer's tokens (its `<|end|>` included; the
prompt never counts), and

    loss = -log sigmoid(beta * ((pi_chosen - ref_chosen) - (pi_rejected - ref_rejected)))

`beta * (pi - ref)` is the answer's implicit reward; beta sets how far the policy may move from
the reference (larger: stays closer). While policy == reference the loss is exactly log 2.
Metrics: `margin` (implicit reward of chosen minus rejected), `reward_acc` (how often chosen
wins), `kl` (mean pi - ref log-prob of the chosen answers, a cheap KL estimate).

Guardrails for a person learning from a handful of rankings (shared with PPO): pairs from a single
prompt cannot be split, so validation is skipped, and said to be, rather than run on the training
pairs; the `kl` figure is explained once and a value far below zero flagged (`KLWatch`); and the
run ends with one prompt answered greedily by the reference and by the tuned policy (`before_after`).

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

from gptkit.checkpoint import CHAT_KINDS, display_name
from gptkit.data.preferences import encode_prompt, encode_split, load_preference_pairs, sample_pair_batch
from gptkit.device import to_device
from gptkit.train.loop import ForwardingReporter, Reporter

FEW_PAIRS = 20  # below this many training pairs, a warning: DPO fits them at once and can drift far


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


class KLWatch(ForwardingReporter):
    """Says once, at the start, what the `kl` figure means, and flags the first `kl` or `val_kl`
    below `floor` with what such a value means."""

    def __init__(self, inner: Reporter, meaning: str, floor: float, alarm: str):
        super().__init__(inner)
        self.meaning, self.floor, self.alarm = meaning, floor, alarm
        self.flagged = False

    def start(self, total_steps: int, first_step: int, info: dict) -> None:
        super().start(total_steps, first_step, info)
        self.inner.message(self.meaning)

    def update(self, metrics: dict) -> None:
        super().update(metrics)
        low = [metrics[k] for k in ("kl", "val_kl") if metrics.get(k, 0.0) < self.floor]
        if low and not self.flagged:
            self.flagged = True
            self.inner.message(f"warning: kl {low[0]:.1f} at step {metrics['step']}: {self.alarm}")


DPO_KL_MEANING = ("kl: how far the policy has moved from the reference, as the change in log-probability of the "
                  "chosen answers (policy minus reference, summed over an answer's tokens); 0 at the start")
DPO_KL_FLOOR = -10.0  # the chosen answers e^10 (~22,000) times less likely than before
DPO_KL_ALARM = ("far below 0, the chosen answers themselves have become much less likely: the model is drifting "
                "from what it could do; fewer --max-steps, a lower --lr, a larger --beta or --sft-weight 1 keep it closer")


@torch.no_grad()
def before_after(reference, policy, tokenizer, prompt, max_new_tokens: int = 48) -> tuple[str, str]:
    """The answers of the reference (before tuning) and of the policy (after) to `prompt`, greedy."""
    from gptkit.engine import SamplingParams
    from gptkit.textgen import generate_ids

    ids = encode_prompt(tokenizer, prompt)
    params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
    answers = []
    for model in (reference, policy):
        model.eval()
        answers.append(generate_ids(model, tokenizer, [ids], params)[0][0].text)
    return answers[0], answers[1]


def report_before_after(reporter, reference, policy, tokenizer, prompt, names: tuple[str, str]) -> None:
    """Show `before_after` on a prompt from the person's own data: what their rankings did."""
    if not reporter:
        return
    before, after = before_after(reference, policy, tokenizer, prompt)
    shown = prompt if isinstance(prompt, str) else prompt[-1]["content"]
    reporter.message(f"before and after, greedy, on a prompt from your data: {shown!r}\n"
                     f"  before ({names[0]}): {before!r}\n  after  ({names[1]}): {after!r}")


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
    from gptkit.errors import UsageError
    from gptkit.train.loop import train, without_validation

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
    train_pairs, val_pairs, unheld = encode_split(tokenizer, pairs, model.config.block_size, data)
    if unheld:
        cfg = without_validation(cfg, reporter, unheld)
    if reporter:
        reporter.message(f"data: {len(pairs)} pairs ({len(train_pairs)} train / {len(val_pairs)} held-out); "
                         f"reference: {start.parent} (frozen); beta {beta}")
        if len(train_pairs) < FEW_PAIRS:
            reporter.message(f"warning: {len(train_pairs)} training pairs are very few: DPO fits them within a few "
                             "steps and can pull a small model far from the reference; watch kl, and compare the "
                             "before and after answers at the end")
        reporter = KLWatch(reporter, DPO_KL_MEANING, DPO_KL_FLOOR, DPO_KL_ALARM)
    objective = DPOObjective(train_pairs, val_pairs, tokenizer, reference, beta=beta, sft_weight=sft_weight,
                             batch_size=cfg.batch_size, device=dc.device)
    meta = {"parent": start.parent, "parent_path": start.parent_path, "data": data, "method": "dpo", "beta": beta,
            "sft_weight": sft_weight}
    last = train(model, tokenizer, objective, cfg, run_dir=run_dir, meta=meta, dc=dc, resume=resume, reporter=reporter)
    report_before_after(reporter, reference, model, tokenizer, pairs[0][0], (start.parent, display_name(last)))
    return last
