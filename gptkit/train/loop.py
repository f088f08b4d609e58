"""The one training loop every objective shares (pretrain, sft, reward, dpo, ppo).

What the loop owns: AdamW (weight decay on matrices only), warmup + cosine schedule, gradient
accumulation and clipping, autocast precision, periodic validation and samples, the metrics log
(`metrics.jsonl` in the run folder), checkpoint cadence, exact resume, Ctrl-C and NaN handling.

What it does not know: where batches come from or how a batch becomes a loss. An objective
provides both:

    class Objective(Protocol):
        kind: str                                   # checkpoint kind written ("base", ...)
        def next_batch(self, split, generator): ... # deterministic given the generator state
        def loss(self, model, batch) -> tuple[Tensor, dict[str, float]]
        def tokens_in(self, batch) -> int           # for tokens/s
        def sample(self, model) -> str | None       # optional text shown at eval time

Every objective's run starts through `start_run`: refuse to overwrite a run or to resume nothing,
then either the newest step of the run (resume) or the checkpoint it starts from (or a new model).

Exact resume: the data order comes only from `generator` (a torch.Generator whose state is saved
with each checkpoint), the optimizer state and global RNG state are saved as tensors, and the
schedule is a pure function of the step. So N steps straight and N/2 + resume + N/2 give the
same parameters bit for bit on CPU.
"""

import json
import math
import os
from contextlib import nullcontext
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from gptkit.checkpoint import load_train_state, save_checkpoint
from gptkit.device import DeviceChoice
from gptkit.errors import CheckpointError, Interrupted, TrainingError
from gptkit.files import clip, excerpt, lock_folder


@dataclass
class TrainConfig:
    max_steps: int = 1000
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 200
    eval_batches: int = 10
    save_every: int = 500
    log_every: int = 10
    seed: int = 1337
    compile: bool = False
    stop_after: int | None = None  # end this invocation (with a save) at this step; the schedule still spans max_steps

    def to_dict(self) -> dict:
        return asdict(self)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then cosine decay to cfg.lr * min_lr_ratio at max_steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    coeff = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * coeff)


def make_optimizer(model, cfg: TrainConfig, device_type: str) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]  # matrices and embeddings decay; biases, norms don't
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = device_type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused or None)


def optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Flatten AdamW state into named tensors (safetensors, not pickle)."""
    out = {}
    for idx, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            out[f"opt.{idx}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return out


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    sd["state"] = state
    opt.load_state_dict(sd)


@dataclass
class RunState:
    step: int = 0
    tokens_seen: int = 0
    best_val: float | None = None
    history: list = field(default_factory=list)


class Reporter:
    """Where progress goes. The CLI plugs in a Rich display or JSON lines; tests use this silent one."""

    def start(self, total_steps: int, first_step: int, info: dict) -> None: ...
    def update(self, metrics: dict) -> None: ...
    def sample(self, step: int, text: str) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self) -> None: ...


class ForwardingReporter(Reporter):
    """Passes every call on to `inner`; a subclass watches the calls it overrides (and calls super)."""

    def __init__(self, inner: Reporter):
        self.inner = inner

    def start(self, total_steps: int, first_step: int, info: dict) -> None:
        self.inner.start(total_steps, first_step, info)

    def update(self, metrics: dict) -> None:
        self.inner.update(metrics)

    def sample(self, step: int, text: str) -> None:
        self.inner.sample(step, text)

    def message(self, text: str) -> None:
        self.inner.message(text)

    def finish(self) -> None:
        self.inner.finish()


@torch.no_grad()
def evaluate(model, objective, cfg: TrainConfig, dc: DeviceChoice) -> dict[str, float]:
    """Mean loss (and objective metrics) over cfg.eval_batches validation batches, fixed seed."""
    model.eval()
    generator = torch.Generator().manual_seed(cfg.seed + 1)  # same val batches at every eval
    totals: dict[str, float] = {}
    for _ in range(cfg.eval_batches):
        batch = objective.next_batch("val", generator)
        with dc.autocast():
            loss, metrics = objective.loss(model, batch)
        for k, v in {"loss": loss.item(), **metrics}.items():
            totals[k] = totals.get(k, 0.0) + float(v)
    model.train()
    return {f"val_{k}": v / cfg.eval_batches for k, v in totals.items()}


def train(
    model,
    tokenizer,
    objective,
    cfg: TrainConfig,
    *,
    run_dir: Path,
    meta: dict,
    dc: DeviceChoice,
    resume: bool = False,
    reporter: Reporter | None = None,
) -> Path:
    """Train `model` with `objective` for cfg.max_steps; returns the last saved step folder.

    `meta` is merged into every checkpoint's metadata (parent, data, tokenizer source, ...).
    With `resume`, continues from the newest step in `run_dir` (weights, optimizer, RNG, data),
    which must have been trained on the same `meta["data"]`.
    Ctrl-C saves a checkpoint of the last finished step and raises `Interrupted` (exit 130) naming
    it; a NaN/inf loss or weights raise TrainingError and leave the last good checkpoint as it
    was. While it runs, the process holds the run folder's lock: a second run on the same folder
    is refused. Under torchrun the ranks share the work (see distributed.py); rank 0 alone
    reports, saves and locks.
    """
    dist_main = _is_main_process()
    with lock_folder(run_dir) if dist_main else nullcontext():
        if dist_main:  # under the lock: a run that finished meanwhile is not overwritten
            check_run_dir(Path(run_dir), resume)
        return _train(model, tokenizer, objective, cfg, run_dir=run_dir, meta=meta, dc=dc, resume=resume,
                      reporter=reporter)


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _train(model, tokenizer, objective, cfg: TrainConfig, *, run_dir: Path, meta: dict, dc: DeviceChoice,
           resume: bool, reporter: Reporter | None) -> Path:
    from gptkit.checkpoint import latest_step, load_weights
    from gptkit.device import peak_flops
    from gptkit.train.distributed import any_rank, finish_distributed, init_distributed, mean_over_ranks, wrap_model

    dist = init_distributed(dc.type)
    reporter = reporter if (reporter and dist.is_main) else Reporter()
    run_dir = Path(run_dir)
    device = torch.device(dc.device)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    state = RunState()
    if resume:
        last = latest_step(run_dir)
        if last is None:
            raise TrainingError(f"--resume: no saved step in {run_dir} to resume from")
        check_same_data(last, meta)
        load_weights(model, last)
        model.to(device)
        opt = make_optimizer(model, cfg, dc.type)
        tensors, info = load_train_state(last)
        try:
            restore_optimizer(opt, {k: v.to(device) for k, v in tensors.items() if k.startswith("opt.")})
            generator.set_state(tensors["rng.data"])
            torch.set_rng_state(tensors["rng.torch"])
        except (KeyError, ValueError, RuntimeError, TypeError, IndexError) as err:
            raise CheckpointError(f"{last}: the saved training state does not fit this model "
                                  f"({type(err).__name__}: {clip(str(err))}); cannot resume from it") from None
        state.step, state.tokens_seen, state.best_val = info["step"], info["tokens_seen"], info.get("best_val")
        reporter.message(f"resumed from {last} at step {state.step}")
        if state.step >= cfg.max_steps:
            reporter.message(f"already at step {state.step} of {cfg.max_steps}: nothing to do (raise --max-steps to go on)")
            return last
    else:
        model.to(device)
        opt = make_optimizer(model, cfg, dc.type)
    model.train()
    step_fn = wrap_model(torch.compile(model) if cfg.compile else model, dist, dc.type)
    peak = peak_flops(dc)
    flops_per_token = model.flops_per_token(model.config.block_size) if hasattr(model, "flops_per_token") else 0

    def save(step_meta_extra: dict | None = None) -> Path:
        tensors = {**optimizer_tensors(opt), "rng.data": generator.get_state(), "rng.torch": torch.get_rng_state()}
        info = {"step": state.step, "tokens_seen": state.tokens_seen, "best_val": state.best_val, "train_config": cfg.to_dict()}
        try:
            return save_checkpoint(
                run_dir, model=model, tokenizer=tokenizer,
                meta={**meta, "kind": objective.kind, "step": state.step, "tokens_seen": state.tokens_seen,
                      "val_loss": state.best_val, **(step_meta_extra or {})},
                train_tensors=tensors, train_info=info,
            )
        except CheckpointError as err:
            if "NaN or infinite" not in str(err):
                raise
            where = f"; the last good checkpoint is {last_saved}" if last_saved else ""
            raise TrainingError(f"the weights became NaN or infinite by step {state.step}: stopping without "
                                f"saving them{where} (try a lower --lr)") from None

    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    metrics_file = open(run_dir / "metrics.jsonl", "a", encoding="utf-8") if dist.is_main else None
    reporter.start(cfg.max_steps, state.step, {"params": sum(p.numel() for p in model.parameters()), "device": dc.label})
    last_saved: Path | None = None
    last_saved_step = -1
    window_tokens, window_start = 0, time.perf_counter()
    # Ctrl-C asks the loop to stop at the next step boundary, so the weights saved are never
    # half-updated; a second Ctrl-C aborts at once without saving. Under DDP the ranks must agree
    # to stop, which is a host sync, so they compare notes on logging steps only.
    interrupted = stop_requested = False

    def on_sigint(signum, frame):
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        reporter.message("Ctrl-C: finishing this step, then saving (Ctrl-C again aborts without saving)")

    handle_signals = threading.current_thread() is threading.main_thread()
    previous_handler = signal.signal(signal.SIGINT, on_sigint) if handle_signals else None
    end_step = min(cfg.max_steps, cfg.stop_after or cfg.max_steps)
    try:
        while state.step < end_step and not stop_requested:
            lr = lr_at(state.step, cfg)
            for group in opt.param_groups:
                group["lr"] = lr
            loss_sum = torch.zeros((), device=device)
            extra: dict[str, float] = {}
            for micro in range(cfg.grad_accum):
                # every rank draws the whole global batch from the shared generator and keeps its slice
                batch = [objective.next_batch("train", generator) for _ in range(dist.world)][dist.rank]
                sync = micro == cfg.grad_accum - 1 or not dist.enabled
                with (nullcontext() if sync else step_fn.no_sync()), dc.autocast():
                    loss, extra = objective.loss(step_fn, batch)
                (loss / cfg.grad_accum).backward()
                loss_sum += loss.detach()
                tokens = objective.tokens_in(batch) * dist.world
                state.tokens_seen += tokens
                window_tokens += tokens
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            state.step += 1
            is_last = state.step == end_step
            if not dist.enabled or is_last or state.step % cfg.log_every == 0:
                stop_requested = any_rank(interrupted, dist, device)
            do_eval = bool(cfg.eval_every) and (state.step % cfg.eval_every == 0 or is_last) and not stop_requested
            if state.step % cfg.log_every == 0 or is_last or state.step % cfg.save_every == 0 or stop_requested or do_eval:
                loss_value = float(mean_over_ranks(loss_sum, dist)) / cfg.grad_accum  # note: a CPU-GPU sync point
                if not math.isfinite(loss_value):
                    where = f"; the last good checkpoint is {last_saved}" if last_saved else ""
                    raise TrainingError(f"loss became {loss_value} at step {state.step}: stopping{where} (try a lower --lr)")
                elapsed = max(time.perf_counter() - window_start, 1e-9)
                row = {"step": state.step, "loss": round(loss_value, 5), "lr": lr, "grad_norm": round(float(grad_norm), 4),
                       "tokens_seen": state.tokens_seen, "tok_per_s": round(window_tokens / elapsed, 1),
                       "time": round(time.time(), 3), **{k: round(float(v), 5) for k, v in extra.items()}}
                if peak and flops_per_token:
                    row["mfu"] = round(flops_per_token * window_tokens / elapsed / (peak * dist.world), 4)
                if dist.is_main and do_eval:
                    row.update({k: round(v, 5) for k, v in evaluate(model, objective, cfg, dc).items()})
                    if "val_loss" in row and (state.best_val is None or row["val_loss"] < state.best_val):
                        state.best_val = row["val_loss"]
                    text = objective.sample(model)
                    if text:
                        reporter.sample(state.step, text)
                    model.train()
                if metrics_file:
                    metrics_file.write(json.dumps(row) + "\n")
                    metrics_file.flush()
                reporter.update(row)
                window_tokens, window_start = 0, time.perf_counter()
            if (state.step % cfg.save_every == 0 or is_last) and dist.is_main:
                last_saved, last_saved_step = save(), state.step
        if stop_requested and state.step > 0 and last_saved_step != state.step and dist.is_main:
            last_saved = save({"interrupted": True})
            reporter.message(f"interrupted: saved step {state.step} to {last_saved}")
    finally:
        if metrics_file:
            metrics_file.close()
        if handle_signals:
            signal.signal(signal.SIGINT, previous_handler)
        reporter.finish()
    finish_distributed(dist)
    if not dist.is_main:
        return run_dir
    if last_saved is None:
        raise Interrupted("interrupted before the first step finished; nothing was saved")
    if stop_requested:
        raise Interrupted(f"interrupted at step {state.step}: saved {last_saved} (--resume continues the run)")
    return last_saved


def without_validation(cfg: TrainConfig, reporter: Reporter | None, why: str) -> TrainConfig:
    """`cfg` with validation off, the reporter saying so and `why`: a run with nothing held out
    shows no validation figures rather than figures measured on its own training data."""
    from dataclasses import replace

    if reporter:
        reporter.message(f"warning: {why}: validation is skipped (no val figures); rank a few more prompts to get them")
    return replace(cfg, eval_every=0)


def _data_key(data) -> list[str]:
    """--data as comparable text: each path made absolute (from the current folder), words such as
    toyworld and logbook as they are."""
    specs = [data] if isinstance(data, str) else list(data) if isinstance(data, (list, tuple)) else [repr(data)]
    return [os.path.abspath(os.path.expanduser(s)) if isinstance(s, str) and os.path.exists(os.path.expanduser(s))
            else str(s) for s in specs]


def check_same_data(last: Path, meta: dict) -> None:
    """A resumed run continues on the data it was trained on: TrainingError naming both otherwise."""
    from gptkit.checkpoint import read_meta

    saved, given = read_meta(last).get("data"), meta.get("data")
    if saved is not None and given is not None and _data_key(saved) != _data_key(given):
        raise TrainingError(f"--resume: {last.parent} was trained on --data {excerpt(saved)}, not {excerpt(given)}; "
                            "resume with the same data, or start a new run (another --out) from it with -m")


@dataclass
class RunStart:
    """What a run starts from (see `start_run`)."""

    tokenizer: object
    model: object  # on the CPU; a resumed run's weights are loaded by `train`
    parent: str | None  # the checkpoint the run started from (display name); None for a new model
    parent_path: str | None  # that checkpoint's step folder, for objectives that load it again (a frozen reference)
    saved: dict  # metadata of the step resumed from; {} for a fresh run


def start_run(run_dir: Path, *, resume: bool, init_from: str | None, init_kinds: tuple[str, ...],
              init_hint: str = "", new_model=None) -> RunStart:
    """The one start-or-resume preamble of every objective.

    Refuses to overwrite a run or to resume nothing (`check_run_dir`). Resumed: the newest step's
    tokenizer, a model built from its config and the lineage the run recorded. Fresh: the
    `init_from` checkpoint (one of `init_kinds`); without one, `new_model()` -> (tokenizer,
    model), or a UsageError asking for -m/--model (`init_hint`: what it should name).
    """
    from gptkit.checkpoint import build_model, check_vocabulary, latest_step, load_checkpoint, read_meta
    from gptkit.errors import UsageError
    from gptkit.tokenizer import load_tokenizer

    run_dir = Path(run_dir)
    if run_dir.is_dir() and _is_main_process():
        with lock_folder(run_dir):  # a run writing here already: refused now, before any data or model loads
            check_run_dir(run_dir, resume)
    else:
        check_run_dir(run_dir, resume)
    if resume:
        last = latest_step(run_dir)
        meta = read_meta(last)
        parent = meta.get("parent")
        tokenizer, model = load_tokenizer(last), build_model(meta)
        check_vocabulary(last, tokenizer, model.config)
        return RunStart(tokenizer, model, parent, meta.get("parent_path") or parent, meta)
    if init_from:
        ckpt = load_checkpoint(init_from, kinds=init_kinds)
        return RunStart(ckpt.tokenizer, ckpt.model, ckpt.name, str(ckpt.path.resolve()), {})
    if new_model is None:
        raise UsageError(f"-m/--model: give {init_hint}")
    tokenizer, model = new_model()
    return RunStart(tokenizer, model, None, None, {})


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse to silently overwrite a run, or to resume one that does not exist."""
    from gptkit.checkpoint import latest_step

    has_steps = run_dir.is_dir() and latest_step(run_dir) is not None
    if resume and not has_steps:
        raise TrainingError(f"--resume: {run_dir} holds no saved step to resume from")
    if not resume and has_steps:
        raise TrainingError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another --out")
