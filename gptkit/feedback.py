"""Learning from feedback, end to end on the toy world: rank answers by truth, DPO, measure.

`run_feedback_demo` stands in for a person at `gptkit rank`. For each of the toy world's ranking
prompts that has an exact answer, the SFT model samples k answers (one prefill, temperature 1);
answers whose extracted answer is right are ranked above wrong ones (ties within each group).
The rankings go into the logbook as synthetic ones (rater "auto:truth"), where a person's
rankings go, and DPO learns from exactly the pairs they imply. Greedy accuracy on the held-out
eval tasks (questions never used for ranking) is measured before and after.

Re-running reuses what `out_dir` holds: the figures (feedback.json), the ranked pairs
(auto-preferences.jsonl, so the logbook never receives the same rankings twice) and a finished
or interrupted DPO run.

Must not know: the terminal (progress goes to the reporter it is given).
"""

import json
import time
from pathlib import Path

from gptkit.evaluate import heldout_accuracy
from gptkit.prompting.answers import answer_is_right

RATER = "auto:truth"
UNCHECKABLE_KINDS = ("explain",)  # no single right answer to check against
FIGURES_FILE = "feedback.json"
PAIRS_FILE = "auto-preferences.jsonl"


def is_correct(task, text: str) -> bool:
    """The ranking rule: an answer is right when it gives the task's exact answer."""
    return answer_is_right(text, task.answer)


def answers(ckpt, question: str, *, k: int, temperature: float, seed: int, max_tokens: int) -> list[str]:
    """k answers of a chat checkpoint to `question`, decoded in lock-step from one prefill."""
    from gptkit.engine import SamplingParams
    from gptkit.textgen import generate_text, prompt_ids

    ids = prompt_ids(ckpt.tokenizer, "assistant", question)
    params = SamplingParams(temperature=temperature, max_new_tokens=max_tokens, seed=seed)
    return [r.text for r in generate_text(ckpt.model, ckpt.tokenizer, ids, params, num_samples=k)]


def rank_by_truth(ckpt, tasks, *, k: int, seed: int, max_tokens: int, logbook) -> list[tuple[str, str, str]]:
    """Sample k answers per task, log each ranking (right above wrong), return the implied pairs."""
    from gptkit.store import rankings_to_pairs

    settings = {"temperature": 1.0, "max_new_tokens": max_tokens, "num_samples": k}
    ids = []
    for i, task in enumerate(tasks):
        texts = answers(ckpt, task.question, k=k, temperature=1.0, seed=seed + i, max_tokens=max_tokens)
        ranks = [1 if is_correct(task, text) else 2 for text in texts]
        ids.append(logbook.log_ranking(task.question, [{"text": t, "checkpoint": ckpt.name} for t in texts], ranks,
                                       rater=RATER, synthetic=True, settings=settings, seed=seed + i,
                                       note=f"ranked by correctness against the toy world's answer {task.answer!r}"))
    logged = [r for r in logbook.rankings() if r["id"] in set(ids)]
    return [(r["prompt"], chosen, rejected) for r in logged for chosen, rejected in rankings_to_pairs(r)]


def run_feedback_demo(sft_spec: str, *, out_dir, steps: int = 60, seed: int = 0, reporter=None, device: str = "auto",
                      samples: int = 8, n_prompts: int = 96, eval_per_kind: int = 30, beta: float = 0.1,
                      sft_weight: float = 1.0, lr: float = 1e-4, batch_size: int = 8, max_tokens: int = 96) -> dict:
    """Auto-rank toy-world answers, DPO on them into the policy run `out_dir`, compare accuracy.

    Returns the figures: prompts ranked, pairs used, greedy accuracy {kind: [correct, total]}
    before and after on the held-out eval tasks, the policy checkpoint and seconds per phase.

    Defaults, measured on the quickstart's `small` assistant (3.7M parameters, 2-core CPU,
    ~30 s in all): 8 samples for each of the ~80 checkable prompts among 96 give ~430 pairs.
    Plain DPO (sft_weight 0) at these settings made that model's answers worse (capital
    accuracy 26/30 -> 21-25/30), so the demo adds the chosen answers' NLL (RPO, weight 1).
    """
    from gptkit.checkpoint import latest_step, load_checkpoint, read_meta
    from gptkit.data import toyworld
    from gptkit.data.preferences import load_preference_pairs
    from gptkit.device import pick_device
    from gptkit.store import open_logbook
    from gptkit.train.dpo import run_dpo
    from gptkit.train.loop import Reporter, TrainConfig

    reporter = reporter or Reporter()
    out_dir = Path(out_dir)
    if (out_dir / FIGURES_FILE).is_file():
        reporter.message(f"feedback: reusing {out_dir / FIGURES_FILE}")
        return json.loads((out_dir / FIGURES_FILE).read_text(encoding="utf-8"))
    start = time.perf_counter()
    dc = pick_device(device)
    sft = load_checkpoint(sft_spec, device=dc.device, kinds=("assistant", "policy"))
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    pairs_file = out_dir / PAIRS_FILE
    tasks = [t for t in toyworld.rank_prompts(n=n_prompts) if t.kind not in UNCHECKABLE_KINDS]
    t0 = time.perf_counter()
    if pairs_file.is_file():
        pairs = load_preference_pairs(str(pairs_file)) if pairs_file.stat().st_size else []
        reporter.message(f"feedback: reusing {len(pairs)} ranked pairs from {pairs_file}")
    else:
        reporter.message(f"feedback: sampling {samples} answers to each of {len(tasks)} toy-world prompts, ranking them by correctness")
        with open_logbook() as lb:
            pairs = rank_by_truth(sft, tasks, k=samples, seed=seed, max_tokens=max_tokens, logbook=lb)
        tmp = pairs_file.with_name(f".{pairs_file.name}.tmp")
        tmp.write_text("".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}, ensure_ascii=False) + "\n"
                               for p, c, r in pairs), encoding="utf-8")
        tmp.replace(pairs_file)
    seconds["ranking"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    policy = None
    if pairs:
        last = latest_step(out_dir)
        done = last is not None and read_meta(last)["step"] >= steps
        if not done:
            reporter.message(f"feedback: DPO on {len(pairs)} pairs for {steps} steps")
            cfg = TrainConfig(max_steps=steps, batch_size=batch_size, lr=lr, warmup_steps=max(1, steps // 10),
                              eval_every=steps, eval_batches=2, save_every=steps, log_every=max(1, steps // 20), seed=seed)
            last = run_dpo(init_from=str(sft.path), data=str(pairs_file), run_dir=out_dir, cfg=cfg, dc=dc, beta=beta,
                           sft_weight=sft_weight, resume=last is not None, reporter=reporter)
        policy = load_checkpoint(last, device=dc.device, kinds=("policy",))
    else:
        reporter.message("feedback: every prompt's answers were all right or all wrong: no pairs, nothing to learn")
    seconds["dpo"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    eval_tasks = toyworld.eval_tasks(n_per_kind=eval_per_kind)
    before = heldout_accuracy(sft, eval_tasks, max_tokens=max_tokens)
    after = heldout_accuracy(policy, eval_tasks, max_tokens=max_tokens) if policy else None
    seconds["evaluation"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - start

    figures = {
        "rater": RATER, "prompts_ranked": len(tasks), "samples_per_prompt": samples, "pairs": len(pairs),
        "dpo_steps": steps if policy else 0, "beta": beta, "sft_weight": sft_weight, "eval_per_kind": eval_per_kind,
        "accuracy_before": before, "accuracy_after": after,
        "assistant": sft.name, "policy": str(policy.path) if policy else None,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    (out_dir / FIGURES_FILE).write_text(json.dumps(figures, indent=2, ensure_ascii=False), encoding="utf-8")
    return figures
