"""Evaluation throughput: many prompts batched (`engine.generate_many`) vs one prompt at a time, same run.

A technique table (`gptkit prompt run`, the README's "Prompt techniques, measured") asks one
model hundreds of questions. Its prompts come in families: every prompt of a template carries
that template's instructions and examples and differs only in its question. The workload here
has that shape, with random weights and random token ids (`small` preset by default):
- technique table: 4 templates (beginnings of ~40-190 tokens) x 75 questions (20-60 tokens),
  prompts of 60-250 tokens in shuffled order, greedy, 32 new tokens each;
- self-consistency: k=10 samples at temperature 0.7 for 30 questions of the longest template;
- no shared beginning: 300 prompts of 60-250 random tokens, greedy: what batching alone gives.

"One at a time" is `engine.complete` per prompt (k samples of a prompt still decode together),
which is how evaluation ran before. Both sides must produce the same tokens, which the table
reports: sampling noise does not depend on the batch. No stop ids, so every answer has exactly
32 tokens. Calls alternate between the two sides after an untimed warm-up; answers/s comes
from the median call.

    python bench/eval_speed.py
    python bench/eval_speed.py --quick
    python bench/eval_speed.py --preset medium --threads 1 --clock cpu --json
"""

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling train_speed module
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from train_speed import CLOCKS, machine_load, sync  # noqa: E402

from gptkit.device import pick_device  # noqa: E402
from gptkit.engine import SamplingParams, batch_limits, complete, generate_many, plan_batches  # noqa: E402
from gptkit.model import GPT, PRESETS, config_for  # noqa: E402

TEMPLATE_LENGTHS = (40, 90, 140, 190)  # the beginnings: zero-shot, instructions, few-shot, chain of thought


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--preset", default="small", choices=tuple(PRESETS), help="model size (random weights)")
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--block", type=int, default=512, help="context length (block_size): prompts + answers fit")
    p.add_argument("--questions", type=int, default=75, help="questions per template")
    p.add_argument("--sc-questions", type=int, default=30, help="questions of the self-consistency row")
    p.add_argument("--k", type=int, default=10, help="self-consistency samples per question")
    p.add_argument("--new", type=int, default=32, help="new tokens per answer")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per side and row")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--clock", default="wall", choices=tuple(CLOCKS), help="cpu: process CPU time (with --threads 1)")
    p.add_argument("--quick", action="store_true", help="a fifth of the questions, one timed call: about a minute")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    if args.quick:
        args.questions, args.sc_questions, args.repeats = 15, 6, 1
    return args


def workloads(args) -> list[tuple[str, list[list[int]], SamplingParams, int]]:
    """(row name, prompts, sampling, samples per prompt) of each row."""
    rng = random.Random(0)

    def ids(n: int) -> list[int]:
        return [rng.randrange(1, args.vocab) for _ in range(n)]

    templates = [[0] + ids(n - 1) for n in TEMPLATE_LENGTHS]  # 0 plays the bos id
    table = [t + ids(rng.randint(20, 60)) for t in templates for _ in range(args.questions)]
    rng.shuffle(table)
    sc = [templates[-1] + ids(rng.randint(20, 60)) for _ in range(args.sc_questions)]
    distinct = [[0] + ids(rng.randint(59, 249)) for _ in range(len(table))]
    greedy = SamplingParams(temperature=0, max_new_tokens=args.new)
    voting = SamplingParams(temperature=0.7, max_new_tokens=args.new, seed=0)
    return [("technique table", table, greedy, 1), (f"self-consistency k={args.k}", sc, voting, args.k),
            ("no shared beginning", distinct, greedy, 1)]


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    dc = pick_device(args.device)
    clock = CLOCKS[args.clock]
    torch.manual_seed(0)
    model = GPT(config_for(args.preset, args.vocab, block_size=args.block)).to(dc.device).eval()
    rows = []
    for name, prompts, params, k in workloads(args):
        seeds = list(range(len(prompts)))

        def batched():
            return [[c.tokens for c in samples]
                    for samples in generate_many(model, prompts, params, n_vocab=args.vocab, num_samples=k, seeds=seeds)]

        def one_at_a_time():
            return [[c.tokens for c in complete(model, p, SamplingParams(**{**params.to_dict(), "seed": s}),
                                                n_vocab=args.vocab, num_samples=k)]
                    for p, s in zip(prompts, seeds)]

        sides = {"batched": batched, "one_at_a_time": one_at_a_time}
        outputs = {side: fn() for side, fn in sides.items()}  # warm-up, and what each side answers
        times = {side: [] for side in sides}
        for r in range(args.repeats):
            for side in list(sides) if r % 2 == 0 else list(sides)[::-1]:
                sync(dc.type)
                t0 = clock()
                sides[side]()
                sync(dc.type)
                times[side].append(clock() - t0)
        answers = len(prompts) * k
        max_rows, split_gain = batch_limits(model, max(map(len, prompts)) + args.new)
        result = {"row": name, "prompts": len(prompts), "samples": k, "answers": answers,
                  "batches": len(plan_batches(prompts, k, max_rows, split_gain)),
                  "same_tokens": outputs["batched"] == outputs["one_at_a_time"]}
        for side in sides:
            result[f"{side}_answers_per_s"] = answers / statistics.median(times[side])
        result["ratio"] = result["batched_answers_per_s"] / result["one_at_a_time_answers_per_s"]
        rows.append(result)
    cfg = model.config
    return {
        "bench": "eval_speed",
        "device": dc.device,
        "threads": torch.get_num_threads(),
        "load_per_core": machine_load(),
        "torch": torch.__version__,
        "config": {"preset": args.preset, "n_layer": cfg.n_layer, "n_embd": cfg.n_embd, "n_head": cfg.n_head,
                   "vocab": args.vocab, "block": args.block, "new": args.new, "repeats": args.repeats,
                   "clock": args.clock},
        "rows": rows,
    }


def print_table(report: dict) -> None:
    c = report["config"]
    print(f"eval_speed  device={report['device']}  threads={report['threads']}  torch={report['torch']}")
    if report["load_per_core"] > 1.0:
        print(f"warning: load average is {report['load_per_core']:.1f} per core: other processes compete for the "
              f"CPU and the figures are unreliable; --threads 1 --clock cpu suffers least")
    print(f"model {c['preset']} ({c['n_layer']}x{c['n_embd']}, {c['n_head']} heads), vocab {c['vocab']}, block "
          f"{c['block']}; {c['new']} new tokens per answer; median of {c['repeats']} alternating calls; {c['clock']} clock")
    print(f"{'row':<26}{'answers':>8}{'batches':>8}{'batched ans/s':>15}{'one at a time':>15}{'ratio':>8}  same tokens")
    for r in report["rows"]:
        print(f"{r['row']:<26}{r['answers']:>8}{r['batches']:>8}{r['batched_answers_per_s']:>15.1f}"
              f"{r['one_at_a_time_answers_per_s']:>15.1f}{r['ratio']:>7.2f}x  {'yes' if r['same_tokens'] else 'NO'}")
    for r in report["rows"]:
        print(f"eval {r['row']}: answers/s batched vs one prompt at a time: {r['ratio']:.2f}x")


def main(argv=None) -> None:
    args = parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
