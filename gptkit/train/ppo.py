"""PPO with a KL leash to the SFT model (InstructGPT's method): sample, score, reinforce.

A rollout draws `prompts_per_rollout` training prompts and samples k answers to each from one
prefill (the engine, temperature ~1, seeded from the loop's generator). The frozen reward model
scores prompt + answer. Each answer token earns -kl_coef * (log pi - log ref) against the frozen
SFT reference, and the last one also earns the reward model's score. The advantage of a token
is its reward-to-go minus a per-prompt baseline (the mean total reward of that prompt's k
answers; there is no learned value head), scaled to unit RMS over the rollout. The clipped
surrogate (ratio against the rollout-time log-probs, clip 0.2) is then optimised for `epochs`
passes of `minibatches` steps before the next rollout. Metrics: `reward` (mean score), `kl`
(mean summed log pi - log ref per answer, at rollout time), `clipfrac`.

How it fits the one loop: `next_batch` serves the current rollout's minibatches and makes a new
rollout when they are used up, counting its calls. A rollout depends on the policy at the step
that made it, which a later checkpoint does not hold, so every rollout is also written
atomically to `RUN/rollouts/`; a run resumed part-way through a rollout reads it back and goes
on bit for bit. Rollouts that no saved step needs any more are removed.

Validation makes one rollout on the held-out prompts per evaluation (val_reward is the figure
to watch); it draws only on the evaluation's own generator. With one prompt nothing is held out
and validation is skipped (`loop.without_validation`).

Must not know: where prompts come from (data/preferences.py) or how steps run (loop.py).
"""

import json
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from gptkit.checkpoint import CHAT_KINDS, display_name
from gptkit.data.chat import pad_batch
from gptkit.data.preferences import encode_prompt, load_prompts, split_by_prompt
from gptkit.engine import SamplingParams, generate
from gptkit.errors import DataError, TrainingError, UsageError
from gptkit.train.dpo import KLWatch, load_frozen, report_before_after, start_policy, token_logprobs

ROLLOUTS = "rollouts"
PPO_KL_MEANING = ("kl: how far the policy has moved from the reference, estimated on the sampled answers (their "
                  "log-probability under the policy minus under the reference, summed per answer); 0 at the start")
PPO_KL_FLOOR = -2.0  # a KL is never negative; an estimate this far below 0 is noise, not a measurement
PPO_KL_ALARM = ("a KL is never below 0, so this estimate is noise from too few sampled answers; more prompts per "
                "rollout (--batch-size) or more --samples make it steadier")
SCORING_BATCH = 32  # rows per forward when computing rollout log-probs and scores


@dataclass(frozen=True)
class PPOSettings:
    samples_per_prompt: int = 4  # k answers per prompt, from one prefill; the baseline needs k >= 2
    prompts_per_rollout: int = 8
    epochs: int = 2  # passes over each rollout
    minibatches: int = 2  # optimizer steps per pass
    clip: float = 0.2
    kl_coef: float = 0.05
    temperature: float = 1.0
    max_new_tokens: int = 64

    @property
    def calls_per_rollout(self) -> int:
        return self.epochs * self.minibatches


def sample_answers(model, prompt: list[int], params: SamplingParams, *, k: int, n_vocab: int,
                   stop_ids: tuple[int, ...]) -> list[list[int]]:
    """k answers from one prefill; each keeps the stop id that ended it (the policy chose to stop)."""
    rows: list[list[int]] = [[] for _ in range(k)]
    for step in generate(model, prompt, params, n_vocab=n_vocab, num_samples=k, stop_ids=stop_ids):
        for row, token in enumerate(step):
            if token is not None:
                rows[row].append(token)
    return rows


def per_token_rewards(score, old_logp, ref_logp, mask, last_pos, kl_coef: float) -> torch.Tensor:
    """(R, T): the KL penalty at every answer token, plus the score at each answer's last token."""
    rewards = -kl_coef * (old_logp - ref_logp) * mask
    rewards[torch.arange(len(score)), last_pos] += score
    return rewards


def baselined_advantages(rewards: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Reward-to-go minus the mean total reward of the same prompt's k answers (rows come in
    groups of k), scaled to unit RMS over the answer tokens: (R, T)."""
    to_go = rewards.flip(1).cumsum(1).flip(1)  # (R, T)
    baseline = rewards.sum(1).view(-1, k).mean(1).repeat_interleave(k)  # (R,)
    advantages = (to_go - baseline[:, None]) * mask
    rms = ((advantages.pow(2) * mask).sum() / mask.sum().clamp(min=1)).sqrt()
    return advantages / rms.clamp(min=1e-8)


def clipped_surrogate(logp, old_logp, advantages, mask, clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's loss -min(ratio * A, clip(ratio) * A), mean over answer tokens, and the clipped fraction."""
    ratio = torch.exp(logp - old_logp)
    per_token = -torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    n = mask.sum().clamp(min=1)
    clipfrac = (((ratio - 1).abs() > clip).float() * mask).sum() / n
    return (per_token * mask).sum() / n, clipfrac.detach()


class PPOObjective:
    kind = "policy"

    def __init__(self, policy, reference, reward_model, tokenizer, train_prompts: list[list[int]],
                 val_prompts: list[list[int]], settings: PPOSettings, *, device, autocast=nullcontext,
                 rollout_dir: Path | None = None, grad_accum: int = 1, calls_done: int = 0):
        # `policy` is the very model the loop trains: rollouts must come from its current weights.
        self.policy, self.reference, self.reward_model, self.tokenizer = policy, reference, reward_model, tokenizer
        self.train_prompts, self.val_prompts, self.settings = train_prompts, val_prompts, settings
        self.device, self.autocast = device, autocast
        self.rollout_dir, self.grad_accum = rollout_dir, grad_accum
        self.calls = calls_done  # training next_batch calls so far: step * grad_accum
        self.buffer, self.buffer_start = None, None
        self.val_cache: tuple[int, dict] | None = None
        self.stop_ids = tokenizer.stop_ids

    # ---- batches -------------------------------------------------------------------------

    def next_batch(self, split: str, generator: torch.Generator):
        if split != "train":
            return self._val_batch(generator)
        s = self.settings
        offset = self.calls % s.calls_per_rollout
        start = self.calls - offset
        if self.buffer_start != start:
            self.buffer = self._new_rollout(generator, start) if offset == 0 else self._saved_rollout(start)
            self.buffer_start = start
        epoch, part = divmod(offset, s.minibatches)
        rows = torch.tensor_split(self.buffer["order"][epoch], s.minibatches)[part]
        self.calls += 1
        return {k: v[rows].to(self.device) for k, v in self.buffer.items() if k != "order"}

    def _val_batch(self, generator: torch.Generator) -> dict:
        # One rollout per evaluation: the policy only changes between training calls.
        if self.val_cache is None or self.val_cache[0] != self.calls:
            batch = self.rollout(self.val_prompts, generator)
            self.val_cache = (self.calls, {k: v.to(self.device) for k, v in batch.items() if k != "order"})
        return self.val_cache[1]

    def _new_rollout(self, generator: torch.Generator, start: int) -> dict:
        buffer = self.rollout(self.train_prompts, generator)
        if self.rollout_dir is not None:
            save_rollout(self.rollout_dir / rollout_name(start), buffer, self.settings)
            self._prune_rollouts(keep=start)
        return buffer

    def _saved_rollout(self, start: int) -> dict:
        path = None if self.rollout_dir is None else self.rollout_dir / rollout_name(start)
        if path is None or not path.is_file():
            raise TrainingError(f"cannot resume part-way through a rollout: {path or 'the rollout made at call ' + str(start)} "
                                "is missing")
        return load_rollout(path, self.settings)

    def _prune_rollouts(self, keep: int) -> None:
        """Drop rollouts that neither the current one nor any saved step's resume would read."""
        saved = [int(p.name[5:]) for p in self.rollout_dir.parent.glob("step-*") if p.name[5:].isdigit()]
        needed = {keep} | {c - c % self.settings.calls_per_rollout for c in (step * self.grad_accum for step in saved)}
        for path in self.rollout_dir.glob("rollout-*.safetensors"):
            if path.name[8:-12].isdigit() and int(path.name[8:-12]) not in needed:
                path.unlink(missing_ok=True)

    # ---- rollouts --------------------------------------------------------------------------

    @torch.no_grad()
    def rollout(self, prompts: list[list[int]], generator: torch.Generator) -> dict:
        """Sample, score and compute advantages; every random choice comes from `generator`."""
        s, k = self.settings, self.settings.samples_per_prompt
        picks = torch.randperm(len(prompts), generator=generator)[: s.prompts_per_rollout].tolist()
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        order = torch.stack([torch.randperm(len(picks) * k, generator=generator) for _ in range(s.epochs)])
        was_training = self.policy.training
        self.policy.eval()
        examples, scored = [], []
        for n, i in enumerate(picks):
            prompt = prompts[i]
            params = SamplingParams(temperature=s.temperature, max_new_tokens=s.max_new_tokens, seed=seed + n)
            for answer in sample_answers(self.policy, prompt, params, k=k, n_vocab=self.tokenizer.n_vocab, stop_ids=self.stop_ids):
                examples.append((prompt + answer, [0] * len(prompt) + [1] * len(answer)))
                # the reward model was trained on answers closed by <|end|>, whichever stop id ended this one
                ended = answer[-1] in self.stop_ids
                scored.append(prompt + answer[:-1] + [self.tokenizer.end_id] if ended else prompt + answer)
        x, y, mask = pad_batch(examples, self.tokenizer.bos_id)
        old_logp, ref_logp = self._logprobs(self.policy, x, y), self._logprobs(self.reference, x, y)
        self.policy.train(was_training)
        score = self._scores(scored)
        last_pos = torch.tensor([len(ids) - 2 for ids, _ in examples])  # in y: the answer's last token
        rewards = per_token_rewards(score, old_logp, ref_logp, mask, last_pos, s.kl_coef)
        return {"x": x, "y": y, "mask": mask, "old_logp": old_logp, "score": score,
                "advantages": baselined_advantages(rewards, mask, k),
                "kl": ((old_logp - ref_logp) * mask).sum(1), "order": order}

    def _logprobs(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = []
        for xs, ys in zip(x.split(SCORING_BATCH), y.split(SCORING_BATCH)):
            with self.autocast():  # the same precision the loss will use, so the first ratio is 1
                out.append(token_logprobs(model, xs.to(self.device), ys.to(self.device)).float().cpu())
        return torch.cat(out)

    def _scores(self, sequences: list[list[int]]) -> torch.Tensor:
        out = []
        for start in range(0, len(sequences), SCORING_BATCH):
            chunk = sequences[start : start + SCORING_BATCH]
            ids = torch.full((len(chunk), max(map(len, chunk))), self.tokenizer.bos_id, dtype=torch.long)
            for row, seq in enumerate(chunk):
                ids[row, : len(seq)] = torch.tensor(seq)
            last = torch.tensor([len(seq) - 1 for seq in chunk])
            with self.autocast():
                out.append(self.reward_model.reward(ids.to(self.device), last.to(self.device)).float().cpu())
        return torch.cat(out)

    # ---- the loop's interface ---------------------------------------------------------------

    def loss(self, model, batch):
        logp = token_logprobs(model, batch["x"], batch["y"])
        loss, clipfrac = clipped_surrogate(logp, batch["old_logp"], batch["advantages"], batch["mask"], self.settings.clip)
        return loss, {"reward": batch["score"].mean(), "kl": batch["kl"].mean(), "clipfrac": clipfrac}

    def tokens_in(self, batch) -> int:
        return int(batch["mask"].sum())

    def sample(self, model) -> str | None:
        from gptkit.train.pretrain import sample_text

        return sample_text(model, self.tokenizer, self.train_prompts[0])


def rollout_name(start: int) -> str:
    return f"rollout-{start:08d}.safetensors"


def save_rollout(path: Path, buffer: dict, settings: PPOSettings) -> None:
    """Write a rollout atomically (temporary file, fsync, rename)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.contiguous() for k, v in buffer.items()}, tmp, metadata={"settings": json.dumps(asdict(settings))})
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_rollout(path: Path, settings: PPOSettings) -> dict:
    from safetensors import safe_open

    from gptkit.checkpoint import read_tensors

    tensors = read_tensors(path)  # refuses anything that is not a clean safetensors file
    with safe_open(str(path), framework="pt") as f:
        saved = json.loads((f.metadata() or {}).get("settings", "{}"))
    if saved != asdict(settings):
        raise TrainingError(f"{path}: made with other PPO settings ({saved}); resume with the run's own settings")
    return tensors


def run_ppo(*, init_from: str | None, data: str, reward_spec: str | None, run_dir, cfg, dc,
            settings: PPOSettings | None = None, resume: bool = False, include_synthetic: bool = True,
            reporter=None) -> Path:
    """`gptkit rlhf --method ppo`: returns the last saved step folder of `run_dir`.

    On resume the reward model, the reference and the PPO settings are the run's own (from its
    metadata), whatever the command line says, so the run goes on exactly as it started.
    """
    from gptkit.train.loop import train, without_validation

    run_dir = Path(run_dir)
    settings = settings or PPOSettings()
    asked_prompts = load_prompts(data, include_synthetic=include_synthetic)  # bad data fails before any model loads
    start = start_policy(init_from, run_dir, resume)
    tokenizer, model, saved = start.tokenizer, start.model, start.saved
    calls_done = 0
    if resume:
        if saved.get("method") != "ppo":
            raise UsageError(f"--resume: {run_dir} holds a {saved.get('method') or saved['kind']} run, not a PPO one")
        asked, settings = settings, PPOSettings(**saved["ppo"])
        reward_spec = saved["reward_model_path"]
        calls_done = saved["step"] * cfg.grad_accum
        if reporter and asked != settings:
            reporter.message(f"resuming with the run's own PPO settings: {asdict(settings)}")
    if not reward_spec:
        raise UsageError("--reward: PPO needs a reward model checkpoint (train one with `gptkit reward`)")
    if settings.samples_per_prompt < 2:
        raise UsageError("--samples: PPO's baseline compares answers to one prompt; give at least 2")
    reward_ckpt = load_frozen(reward_spec, dc.device, ("reward",))
    probe = "What is the capital of France? 12 + 7 = 19."
    if reward_ckpt.tokenizer.n_vocab != tokenizer.n_vocab or reward_ckpt.tokenizer.encode(probe) != tokenizer.encode(probe):
        raise UsageError(f"--reward: {reward_ckpt.name} uses another tokenizer than the policy; "
                         "train the reward model from the same SFT checkpoint")
    reference = load_frozen(start.parent_path, dc.device, CHAT_KINDS).model
    room = model.config.block_size - settings.max_new_tokens
    encoded = [(prompt, encode_prompt(tokenizer, prompt)) for prompt in asked_prompts]
    prompts = [(prompt, ids) for prompt, ids in encoded if len(ids) <= room]  # the engine would cut longer ones
    if not prompts:
        raise DataError(f"{data}: no prompt leaves room for {settings.max_new_tokens} new tokens in a "
                        f"{model.config.block_size}-token context")
    train_prompts, val_prompts = split_by_prompt(prompts, lambda item: item[0])
    if not val_prompts:
        cfg = without_validation(cfg, reporter, "there is one prompt, so none can be held out")
    if reporter:
        reporter.message(f"prompts: {len(train_prompts)} train / {len(val_prompts)} held-out; reward model "
                         f"{reward_ckpt.name}; reference {start.parent} (frozen); {settings.samples_per_prompt} samples per prompt")
        reporter = KLWatch(reporter, PPO_KL_MEANING, PPO_KL_FLOOR, PPO_KL_ALARM)
    model.to(dc.device)
    objective = PPOObjective(model, reference, reward_ckpt.model, tokenizer, [ids for _, ids in train_prompts],
                             [ids for _, ids in val_prompts], settings, device=dc.device, autocast=dc.autocast,
                             rollout_dir=run_dir / ROLLOUTS, grad_accum=cfg.grad_accum, calls_done=calls_done)
    meta = {"parent": start.parent, "parent_path": start.parent_path, "data": data, "method": "ppo",
            "reward_model": reward_ckpt.name, "reward_model_path": str(reward_ckpt.path.resolve()), "ppo": asdict(settings)}
    last = train(model, tokenizer, objective, cfg, run_dir=run_dir, meta=meta, dc=dc, resume=resume, reporter=reporter)
    report_before_after(reporter, reference, model, tokenizer, train_prompts[0][0], (start.parent, display_name(last)))
    return last
