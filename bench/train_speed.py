"""Training throughput: gptkit's GPT against transformers' GPT2LMHeadModel, same run, same weights.

Both models get the same config and the same starting weights (copied through gptkit.hf, the
mapping `gptkit export` uses), the same AdamW (gptkit's make_optimizer), the same loss
expression (cross-entropy on fp32 logits), gradient clipping, the same autocast and the same
number of threads. Only the model code differs, so the ratio measures it.

Peak memory is measured for each implementation alone (construction, forward, backward and the
optimizer state its warm-up steps allocate). Timed steps are then interleaved, alternating which
implementation goes first, so a busy machine slows both alike; tokens/s comes from the median
step. Both models' first loss is printed: equal values show the weights really are the same.

    python bench/train_speed.py                 # the reference setup: 4x256, vocab 4096, T=256, B=8
    python bench/train_speed.py --quick         # under a minute on a laptop CPU
    python bench/train_speed.py --device cuda --json
"""

import argparse
import ctypes
import gc
import json
import os
import re
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from gptkit.device import peak_flops, pick_device  # noqa: E402
from gptkit.hf import gpt2_config, hf_state_dict  # noqa: E402
from gptkit.model import GPT, PRESETS, GPTConfig  # noqa: E402
from gptkit.train.loop import TrainConfig, make_optimizer  # noqa: E402

IMPLS = ("gptkit", "transformers")
# "cpu" counts only the CPU time this process got, so other processes on a shared machine do not
# inflate it; with several threads it also counts their spinning, so use it with --threads 1.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--preset", choices=tuple(PRESETS), help="layers, width and heads of a named size (e.g. gpt2)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=10, help="timed steps per implementation")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per implementation; peak memory is taken over them")
    p.add_argument("--compile", action="store_true", help="torch.compile both models")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--clock", default="wall", choices=tuple(CLOCKS), help="cpu: process CPU time (with --threads 1)")
    p.add_argument("--quick", action="store_true", help="fewer steps: under a minute on CPU")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    if args.warmup < 1:
        p.error("--warmup must be at least 1 (the first step also checks both models agree)")
    if args.quick:
        args.steps, args.warmup = 5, 1
    apply_preset(args)
    return args


def apply_preset(args) -> None:
    """--preset NAME sets --layers/--width/--heads from gptkit's named sizes."""
    if args.preset:
        preset = PRESETS[args.preset]
        args.layers, args.width, args.heads = preset["n_layer"], preset["n_embd"], preset["n_head"]


# ---------------------------------------------------------------------------------------------
# Memory: peak of one phase, not of the whole process


def reset_peak_memory(device_type: str) -> int:
    """Start a phase; returns the baseline that `peak_memory` subtracts."""
    gc.collect()
    if device_type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    _release_free_heap()
    try:  # Linux: writing 5 to clear_refs resets VmHWM, the process's peak RSS
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _proc_status_kib("VmRSS") * 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _release_free_heap() -> None:
    """Hand freed heap pages back to the OS, else the next phase's RSS starts with the last one's."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def peak_memory(device_type: str, baseline: int) -> int:
    if device_type == "cuda":
        return torch.cuda.max_memory_allocated() - baseline
    try:
        return _proc_status_kib("VmHWM") * 1024 - baseline
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+)", f.read(), re.M).group(1))


def sync(device_type: str) -> None:
    if device_type == "cuda":
        torch.cuda.synchronize()


def machine_load() -> float:
    """1-minute load average per core; above 1, threads wait for CPUs and timings mislead."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        return 0.0


# ---------------------------------------------------------------------------------------------
# The two models


def reference_model(config: GPTConfig, state: dict, attn_implementation: str):
    """transformers' GPT-2 with `state` (gptkit layout) copied in through the export mapping."""
    from transformers import GPT2Config, GPT2LMHeadModel

    donor = GPT(config)
    donor.load_state_dict(state)
    hf_config = GPT2Config(**gpt2_config(config, n_vocab=config.vocab_size, bos_id=0),
                           attn_implementation=attn_implementation)
    model = GPT2LMHeadModel(hf_config)
    assert model.config._attn_implementation == attn_implementation
    missing, unexpected = model.load_state_dict(hf_state_dict(donor, config.vocab_size), strict=False)
    assert missing == ["lm_head.weight"] and not unexpected, (missing, unexpected)  # lm_head is tied to wte
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    return model


def build(impl: str, config: GPTConfig, state: dict, device: str):
    if impl == "gptkit":
        model = GPT(config)
        model.load_state_dict(state)
    else:
        model = reference_model(config, state, "sdpa")
    return model.to(device).train()


def logits_of(impl: str, model, x):
    return model(x) if impl == "gptkit" else model(input_ids=x).logits


def train_step(impl, model, opt, x, y, autocast) -> torch.Tensor:
    with autocast():
        logits = logits_of(impl, model, x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.detach()


class Trainer:
    """One implementation's model, optimizer and compiled step, built from the shared weights."""

    def __init__(self, impl: str, config: GPTConfig, state: dict, dc, compile_model: bool):
        self.impl, self.dc = impl, dc
        self.model = build(impl, config, state, dc.device)
        self.opt = make_optimizer(self.model, TrainConfig(), dc.type)
        self.forward = torch.compile(self.model) if compile_model else self.model

    def step(self, x, y) -> torch.Tensor:
        return train_step(self.impl, self.forward, self.opt, x, y, self.dc.autocast)


def timed_step(trainer: Trainer, batch, clock) -> float:
    sync(trainer.dc.type)
    t0 = clock()
    trainer.step(*batch)
    sync(trainer.dc.type)
    return clock() - t0


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    dc = pick_device(args.device)
    torch.manual_seed(0)
    config = GPTConfig(block_size=args.seq, vocab_size=args.vocab, n_layer=args.layers, n_head=args.heads,
                       n_embd=args.width, dropout=0.0, bias=True)
    state = {k: v.clone() for k, v in GPT(config).state_dict().items()}
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(4):
        seq = torch.randint(0, args.vocab, (args.batch, args.seq + 1), generator=g)
        batches.append((seq[:, :-1].contiguous().to(dc.device), seq[:, 1:].contiguous().to(dc.device)))
    # First use loads code, kernels and allocator pools; a throwaway step of each keeps that out
    # of the memory figures below.
    for impl in IMPLS:
        Trainer(impl, config, state, dc, args.compile).step(*batches[0])
    # Memory: each implementation alone, from construction through its warm-up steps (which
    # allocate the optimizer state). The first one stays alive, and is part of the baseline.
    trainers, results = {}, {}
    for impl in IMPLS:
        baseline = reset_peak_memory(dc.type)
        trainers[impl] = Trainer(impl, config, state, dc, args.compile)
        losses = [float(trainers[impl].step(*batches[i % len(batches)])) for i in range(args.warmup)]
        results[impl] = {"peak_bytes": peak_memory(dc.type, baseline), "first_loss": losses[0]}
    # Speed: steps interleaved, alternating which goes first, so a busy machine slows both alike.
    times = {impl: [] for impl in IMPLS}
    for i in range(args.steps):
        for impl in IMPLS if i % 2 == 0 else IMPLS[::-1]:
            times[impl].append(timed_step(trainers[impl], batches[i % len(batches)], CLOCKS[args.clock]))
    for impl in IMPLS:
        step_s = statistics.median(times[impl])
        results[impl].update(tokens_per_s=args.batch * args.seq / step_s, step_ms=step_s * 1e3)
    flops = GPT(config).flops_per_token(args.seq)
    peak = peak_flops(dc) if dc.dtype == "bfloat16" else None
    for result in results.values():
        result["mfu"] = result["tokens_per_s"] * flops / peak if peak else None
    return {
        "bench": "train_speed",
        "device": dc.device,
        "device_name": torch.cuda.get_device_name() if dc.type == "cuda" else "cpu",
        "dtype": dc.dtype,
        "threads": torch.get_num_threads(),
        "load_per_core": machine_load(),
        "torch": torch.__version__,
        "config": {"n_layer": args.layers, "n_embd": args.width, "n_head": args.heads, "vocab": args.vocab,
                   "seq": args.seq, "batch": args.batch, "steps": args.steps, "warmup": args.warmup,
                   "compile": args.compile, "clock": args.clock},
        "results": results,
        "ratio": results["gptkit"]["tokens_per_s"] / results["transformers"]["tokens_per_s"],
    }


def print_table(report: dict) -> None:
    c = report["config"]
    print(f"train_speed  device={report['device']} ({report['device_name']})  dtype={report['dtype']}  "
          f"threads={report['threads']}  torch={report['torch']}")
    if report["load_per_core"] > 1.0:
        print(f"warning: load average is {report['load_per_core']:.1f} per core: other processes compete for the "
              f"CPU, figures (and 2+ thread runs most) are unreliable; --threads 1 --clock cpu suffers least")
    print(f"model {c['n_layer']}x{c['n_embd']}, {c['n_head']} heads, vocab {c['vocab']}; batch {c['batch']} x T={c['seq']}; "
          f"median of {c['steps']} interleaved timed steps after {c['warmup']} warm-up; {c['clock']} clock")
    print(f"{'impl':<14}{'tokens/s':>12}{'step ms':>10}{'peak MiB':>10}{'MFU':>8}{'first loss':>12}")
    for impl, r in report["results"].items():
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        print(f"{impl:<14}{r['tokens_per_s']:>12.0f}{r['step_ms']:>10.1f}{r['peak_bytes'] / 2**20:>10.1f}"
              f"{mfu:>8}{r['first_loss']:>12.4f}")
    print(f"train tokens/s ratio gptkit/transformers: {report['ratio']:.2f}x")


def main(argv=None) -> None:
    args = parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
