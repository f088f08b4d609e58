"""Self-consistency cost: k samples in lock-step from one prefill vs one sample, same run.

Self-consistency voting is only worth teaching if it is cheap: k = 8 answers must cost no more
than 2x the wall time of one answer of the same length on a CPU. gptkit gets there by
prefilling the prompt once at batch 1, copying its keys/values into k rows, and decoding all
rows together, one batched forward per token (`gptkit.engine.generate`).

Rows (a `small`-preset GPT by default, `--preset` for others; random weights, vocab 4096, a 128-token prompt, exactly 64 new
tokens per sample: no stop ids, so every row runs to the length limit):
- k=1: one sample (the baseline)
- k=8, k=20: lock-step, one prefill
- 8 x k=1: the naive reference, eight separate generations one after the other

Each row reports the median wall time of interleaved calls after one untimed warm-up call each,
and its ratio to k=1. The budget check is k=8 <= 2.0 x k=1.

    python bench/self_consistency.py
    python bench/self_consistency.py --quick
    python bench/self_consistency.py --threads 1 --json
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from gptkit.engine import SamplingParams, complete  # noqa: E402
from gptkit.model import GPT, PRESETS, config_for  # noqa: E402

BUDGET = 2.0  # k=8 may cost at most this many times k=1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--preset", default="small", choices=tuple(PRESETS), help="model size (random weights)")
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--prompt", type=int, default=128, help="prompt tokens (a few-shot CoT prompt is about this long)")
    p.add_argument("--new", type=int, default=64, help="new tokens per sample")
    p.add_argument("--temperature", type=float, default=0.7, help="self-consistency sampling temperature")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--repeats", type=int, default=7, help="timed calls per row")
    p.add_argument("--quick", action="store_true", help="fewer repeats: seconds on a CPU")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = 3
    return args


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()  # a CPU-GPU sync point: time the work, not its launch


def median_seconds(fns: dict, repeats: int, device: str) -> dict:
    """Median seconds per call of each fn; calls interleaved (order alternating) so that a busy
    machine slows every row alike. Each fn gets one untimed warm-up call first."""
    outputs = {name: fn() for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(repeats):
        for name in list(fns) if r % 2 == 0 else list(fns)[::-1]:
            sync(device)
            start = time.perf_counter()
            fns[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: {"seconds": statistics.median(t), "output": outputs[name]} for name, t in times.items()}


def run(args) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = config_for(args.preset, args.vocab)
    assert args.prompt + args.new <= config.block_size, f"prompt + new tokens must fit the {args.preset} preset's context"
    model = GPT(config).to(args.device).eval()
    prompt = torch.randint(0, args.vocab, (args.prompt,), generator=torch.Generator().manual_seed(1)).tolist()

    def lockstep(k: int):
        params = SamplingParams(temperature=args.temperature, max_new_tokens=args.new, seed=0)
        return lambda: [c.tokens for c in complete(model, prompt, params, n_vocab=args.vocab, num_samples=k,
                                                   stop_ids=())]

    def sequential(k: int):
        def call():
            return [complete(model, prompt, SamplingParams(temperature=args.temperature, max_new_tokens=args.new,
                                                           seed=s), n_vocab=args.vocab, stop_ids=())[0].tokens
                    for s in range(k)]
        return call

    rows = {"k=1": (1, lockstep(1)), "k=8": (8, lockstep(8)), "k=20": (20, lockstep(20)),
            "8 x k=1": (8, sequential(8))}
    measured = median_seconds({name: fn for name, (_, fn) in rows.items()}, args.repeats, args.device)
    for name, (k, _) in rows.items():
        output = measured[name]["output"]
        assert len(output) == k and all(len(tokens) == args.new for tokens in output), f"{name}: wrong lengths"
    base = measured["k=1"]["seconds"]
    table = [{"row": name, "samples": k, "seconds": measured[name]["seconds"],
              "ratio_to_k1": measured[name]["seconds"] / base,
              "tokens_per_s": k * args.new / measured[name]["seconds"]} for name, (k, _) in rows.items()]
    k8 = measured["k=8"]["seconds"] / base
    return {
        "bench": "self_consistency",
        "device": args.device,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "config": {"preset": args.preset, "n_layer": config.n_layer, "n_embd": config.n_embd, "vocab": args.vocab,
                   "prompt": args.prompt, "new": args.new, "temperature": args.temperature, "repeats": args.repeats},
        "rows": table,
        "k8_ratio": k8,
        "lockstep_speedup_vs_sequential": measured["8 x k=1"]["seconds"] / measured["k=8"]["seconds"],
        "within_budget": k8 <= BUDGET,
    }


def print_table(report: dict) -> None:
    c = report["config"]
    print(f"self_consistency  device={report['device']}  threads={report['threads']}  torch={report['torch']}")
    print(f"model {c['preset']} ({c['n_layer']}x{c['n_embd']}), vocab {c['vocab']}; prompt {c['prompt']}, {c['new']} new "
          f"tokens per sample at T={c['temperature']}; median of {c['repeats']} interleaved calls after 1 warm-up")
    print(f"{'row':<10}{'samples':>8}{'ms':>10}{'x k=1':>8}{'tokens/s':>10}")
    for r in report["rows"]:
        print(f"{r['row']:<10}{r['samples']:>8}{r['seconds'] * 1000:>10.1f}{r['ratio_to_k1']:>8.2f}"
              f"{r['tokens_per_s']:>10.0f}")
    verdict = "within" if report["within_budget"] else "OVER"
    print(f"k=8 costs {report['k8_ratio']:.2f}x k=1 ({verdict} the {BUDGET:.1f}x budget); lock-step is "
          f"{report['lockstep_speedup_vs_sequential']:.2f}x faster than 8 sequential k=1 runs")


def main(argv=None) -> None:
    args = parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    if not report["within_budget"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
