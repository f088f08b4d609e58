"""Decoding throughput: gptkit.engine against transformers' generate, same run, same weights.

Rows (all from a 32-token prompt, 128 new tokens per sequence, KV cache on both sides):
- greedy, batch 1: `engine.complete` at temperature 0 vs `generate(do_sample=False)`; the two
  must produce the same tokens, which the table reports.
- k=8 samples: gptkit's lock-step decoding (one prefill copied to 8 rows) vs `generate` with
  `num_return_sequences=8` (pure sampling: temperature 1, no top-k/top-p), and vs gptkit
  running the 8 samples one after the other at batch 1 (what lock-step saves).

transformers runs with both "eager" and "sdpa" attention and the faster one is reported.
`min_new_tokens=max_new_tokens` and no stop ids make every side produce exactly 128 tokens.
Calls are interleaved (gptkit, reference, gptkit, ...) after one untimed warm-up call each, and
tokens/s comes from the median call.

    python bench/decode_speed.py
    python bench/decode_speed.py --quick
    python bench/decode_speed.py --device cuda --json
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling train_speed module
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from train_speed import (CLOCKS, apply_preset, machine_load, peak_memory, reference_model,  # noqa: E402
                         reset_peak_memory, sync)

from gptkit.device import pick_device  # noqa: E402
from gptkit.engine import SamplingParams, complete  # noqa: E402
from gptkit.model import GPT, PRESETS, GPTConfig  # noqa: E402

K = 8
ATTENTION = ("eager", "sdpa")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16"),
                   help="weights and cache dtype; auto: float32 on CPU, bfloat16 on CUDA")
    p.add_argument("--preset", choices=tuple(PRESETS), help="layers, width and heads of a named size (e.g. gpt2)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--block", type=int, default=256, help="context length (block_size)")
    p.add_argument("--prompt", type=int, default=32, help="prompt tokens")
    p.add_argument("--new", type=int, default=128, help="new tokens per sequence")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per implementation and row")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--clock", default="wall", choices=tuple(CLOCKS), help="cpu: process CPU time (with --threads 1)")
    p.add_argument("--quick", action="store_true", help="fewer repeats: under a minute on CPU")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = 1
    apply_preset(args)
    assert args.prompt + args.new <= args.block, "prompt + new tokens must fit in --block"
    return args


def timed(fn, device_type: str, clock) -> float:
    sync(device_type)
    t0 = clock()
    fn()
    sync(device_type)
    return clock() - t0


def compare(fns: dict, repeats: int, device_type: str, clock) -> dict:
    """Median seconds per call of each fn, and its peak memory during an untimed warm-up call.

    Timed calls are interleaved, alternating the order, so a busy machine slows all alike.
    """
    measured = {}
    for name, fn in fns.items():
        baseline = reset_peak_memory(device_type)
        measured[name] = {"output": fn(), "peak_bytes": peak_memory(device_type, baseline), "times": []}
    for r in range(repeats):
        for name in list(fns) if r % 2 == 0 else list(fns)[::-1]:
            measured[name]["times"].append(timed(fns[name], device_type, clock))
    for m in measured.values():
        m["seconds"] = statistics.median(m.pop("times"))
    return measured


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    dc = pick_device(args.device)
    dtype = {"auto": torch.bfloat16 if dc.type == "cuda" else torch.float32,
             "float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    torch.manual_seed(0)
    config = GPTConfig(block_size=args.block, vocab_size=args.vocab, n_layer=args.layers, n_head=args.heads,
                       n_embd=args.width, dropout=0.0, bias=True)
    model = GPT(config).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.to(device=dc.device, dtype=dtype)
    references = {impl: reference_model(config, state, impl).to(device=dc.device, dtype=dtype).eval()
                  for impl in ATTENTION}
    prompt = torch.randint(0, args.vocab, (args.prompt,), generator=torch.Generator().manual_seed(1)).tolist()
    prompt_ids = torch.tensor([prompt], device=dc.device)
    new = args.new

    def gptkit_greedy():
        (c,) = complete(model, prompt, SamplingParams(temperature=0, max_new_tokens=new), n_vocab=args.vocab)
        return [c.tokens]

    def gptkit_lockstep():
        rows = complete(model, prompt, SamplingParams(temperature=1.0, max_new_tokens=new, seed=0),
                        n_vocab=args.vocab, num_samples=K)
        return [c.tokens for c in rows]

    def gptkit_sequential():
        return [complete(model, prompt, SamplingParams(temperature=1.0, max_new_tokens=new, seed=s),
                         n_vocab=args.vocab)[0].tokens for s in range(K)]

    def hf_generate(hf, **sampling):
        def call():
            with torch.inference_mode():
                out = hf.generate(prompt_ids, attention_mask=torch.ones_like(prompt_ids), max_new_tokens=new,
                                  min_new_tokens=new, use_cache=True, pad_token_id=0, **sampling)
            return out[:, args.prompt:].tolist()
        return call

    greedy = {"gptkit": gptkit_greedy,
              **{f"transformers-{impl}": hf_generate(hf, do_sample=False) for impl, hf in references.items()}}
    sampled = {"gptkit": gptkit_lockstep, "gptkit-sequential": gptkit_sequential,
               **{f"transformers-{impl}": hf_generate(hf, do_sample=True, num_return_sequences=K, temperature=1.0,
                                                      top_k=0, top_p=1.0)
                  for impl, hf in references.items()}}
    rows = []
    for row, fns, sequences in (("greedy b=1", greedy, 1), (f"sample k={K}", sampled, K)):
        measured = compare(fns, args.repeats, dc.type, CLOCKS[args.clock])
        for name, m in measured.items():
            assert len(m["output"]) == sequences and all(len(t) == new for t in m["output"]), name
        hf_name = min((n for n in measured if n.startswith("transformers")), key=lambda n: measured[n]["seconds"])
        result = {"row": row, "sequences": sequences, "reference": hf_name}
        for name in ("gptkit", "gptkit-sequential", hf_name):
            if name in measured:
                key = "transformers" if name == hf_name else name
                result[f"{key}_tokens_per_s"] = sequences * new / measured[name]["seconds"]
                result[f"{key}_peak_bytes"] = measured[name]["peak_bytes"]
        result["ratio"] = result["gptkit_tokens_per_s"] / result["transformers_tokens_per_s"]
        if "gptkit-sequential_tokens_per_s" in result:
            result["lockstep_speedup"] = result["gptkit_tokens_per_s"] / result["gptkit-sequential_tokens_per_s"]
        if sequences == 1:
            result["same_tokens"] = measured["gptkit"]["output"] == measured[hf_name]["output"]
        rows.append(result)
    return {
        "bench": "decode_speed",
        "device": dc.device,
        "device_name": torch.cuda.get_device_name() if dc.type == "cuda" else "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "load_per_core": machine_load(),
        "torch": torch.__version__,
        "config": {"n_layer": args.layers, "n_embd": args.width, "n_head": args.heads, "vocab": args.vocab,
                   "block": args.block, "prompt": args.prompt, "new": new, "repeats": args.repeats, "clock": args.clock},
        "rows": rows,
    }


def print_table(report: dict) -> None:
    c = report["config"]
    print(f"decode_speed  device={report['device']} ({report['device_name']})  dtype={report['dtype']}  "
          f"threads={report['threads']}  torch={report['torch']}")
    if report["load_per_core"] > 1.0:
        print(f"warning: load average is {report['load_per_core']:.1f} per core: other processes compete for the "
              f"CPU, figures (and 2+ thread runs most) are unreliable; --threads 1 --clock cpu suffers least")
    print(f"model {c['n_layer']}x{c['n_embd']}, {c['n_head']} heads, vocab {c['vocab']}; prompt {c['prompt']}, "
          f"{c['new']} new tokens; median of {c['repeats']} interleaved calls after 1 warm-up; {c['clock']} clock")
    print(f"{'row':<14}{'implementation':<26}{'tokens/s':>10}{'peak MiB':>10}")
    for r in report["rows"]:
        names = [("gptkit", "gptkit" + (" lock-step" if r["sequences"] > 1 else "")),
                 ("gptkit-sequential", f"gptkit {r['sequences']} x batch 1"),
                 ("transformers", r["reference"])]
        for key, label in names:
            if f"{key}_tokens_per_s" in r:
                print(f"{r['row']:<14}{label:<26}{r[f'{key}_tokens_per_s']:>10.0f}"
                      f"{r[f'{key}_peak_bytes'] / 2**20:>10.1f}")
    for r in report["rows"]:
        same = f" (same tokens: {'yes' if r['same_tokens'] else 'NO'})" if "same_tokens" in r else ""
        print(f"decode {r['row']} tokens/s ratio gptkit/transformers: {r['ratio']:.2f}x{same}")
        if "lockstep_speedup" in r:
            print(f"decode {r['row']} lock-step vs {r['sequences']} sequential batch-1 runs: {r['lockstep_speedup']:.2f}x")


def main(argv=None) -> None:
    args = parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
