"""Learning from feedback, end to end on the toy world: rank chains by truth, DPO, measure.

`run_feedback_demo` stands in for a person at `gptkit rank`. Each of the demo families'
composed questions ("In which town do Mira's parents live?"), and twice as many about
strangers whose facts the question states (`families.stranger_question`), is asked step by
step, exactly as the `step-by-step` template asks it; the SFT model samples k chains for each
(one prefill, temperature 1), and chains whose final answer is right are ranked above wrong ones
(`prompting.answers.truth_ranks`, the rule `gptkit rank --auto truth` uses; a set with no right
chain is logged as all bad). The rankings go into the logbook as synthetic ones (rater
"auto:truth"), where a person's rankings go, and DPO learns from exactly the pairs they imply.
Then the step-by-step template is measured on the TEST families' two-hop questions, which no
ranking touched, before and after, with 95% intervals. Ranked on the demo chains alone, DPO
pushes the model towards the chains it knows by heart and held-out accuracy falls (measured:
61% -> 15% after 120 steps); the strangers' questions reward the chain's form instead.

Re-running reuses what `out_dir` holds: the figures (feedback.json), the ranked pairs
(auto-preferences.jsonl, so the logbook never receives the same rankings twice) and a finished
or interrupted DPO run.

Must not know: the terminal (progress goes to the reporter it is given).
"""

import json
import random
import time
from pathlib import Path

from gptkit.files import atomic_write
from gptkit.prompting.answers import truth_ranks

RATER = "auto:truth"
TEMPLATE = "step-by-step"  # how questions are asked, when ranking and when measuring
FIGURES_FILE = "feedback.json"
PAIRS_FILE = "auto-preferences.jsonl"
N_STRANGER_QUESTIONS = 216  # beside the 108 demo questions
rank_rule = truth_ranks  # (texts, expected) -> (status, ranks); a test may swap in another rule


def rank_chains(ckpt, questions: list[tuple[str, str]], *, k: int, seed: int, max_tokens: int,
                logbook) -> list[tuple[str, str, str]]:
    """Sample k chains for each (prompt, answer), log each ranking, return the implied pairs."""
    from gptkit.engine import SamplingParams
    from gptkit.store import rankings_to_pairs
    from gptkit.textgen import generate

    settings = {"temperature": 1.0, "max_new_tokens": max_tokens, "num_samples": k}
    params = SamplingParams(temperature=1.0, max_new_tokens=max_tokens)
    seeds = [seed + i for i in range(len(questions))]
    ids = []
    for (prompt, answer), results, row_seed in zip(questions, generate(ckpt, [p for p, _ in questions], params, k=k,
                                                                         seeds=seeds, stop=("\n",)), seeds):
        texts = [r.text for r in results]
        status, ranks = rank_rule(texts, answer)
        ids.append(logbook.log_ranking(prompt, [{"text": t, "checkpoint": ckpt.name} for t in texts], ranks,
                                       rater=RATER, synthetic=True, settings=settings, seed=row_seed, status=status,
                                       note=f"ranked by the final answer's truth against {answer!r}"))
    logged = [r for r in logbook.rankings() if r["id"] in set(ids)]
    return [(r["prompt"], chosen, rejected) for r in logged for chosen, rejected in rankings_to_pairs(r)]


def template_for(lang: str) -> str:
    """The step-by-step template in the world's language ("step-by-step-ja" in Japanese)."""
    return TEMPLATE if lang == "en" else f"{TEMPLATE}-{lang}"


def chain_accuracy(ckpt, limit: int | None, lang: str = "en") -> dict:
    """The step-by-step template on the test families' two-hop questions: a summary cell."""
    from gptkit.data.world import spec_for
    from gptkit.prompting.experiment import load_cases, run_experiment

    result = run_experiment([template_for(lang)], [ckpt], load_cases(f"{spec_for(lang)}:two-hop", limit=limit))
    return result.summary[0].to_dict()


def run_feedback_demo(sft_spec: str, *, out_dir, steps: int = 200, seed: int = 0, reporter=None, device: str = "auto",
                      samples: int = 8, eval_limit: int | None = None, beta: float = 0.1, sft_weight: float = 1.0,
                      lr: float = 1e-4, batch_size: int = 8, max_tokens: int = 64, lang: str = "en") -> dict:
    """Auto-rank demo and strangers' chains, DPO on them into the policy run `out_dir`, compare.

    Returns the figures: prompts ranked, pairs used, the step-by-step accuracy on held-out
    two-hop questions (first `eval_limit`, default all) before and after with their intervals,
    the policy checkpoint and seconds per phase; `lang` "ja" asks and measures in the Japanese
    world (`step-by-step-ja`, `toyworld-ja:two-hop`). The NLL term (RPO, `sft_weight`) keeps DPO from
    pushing down the likelihood of the chains it prefers, which a model this small is prone to.
    """
    from gptkit.checkpoint import latest_step, load_checkpoint, read_meta
    from gptkit.data.preferences import load_preference_pairs
    from gptkit.data.world import world
    from gptkit.device import pick_device
    from gptkit.prompting.templates import load_template, render_chat_messages
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
    template, families = load_template(template_for(lang)), world(lang).families
    rng = random.Random(seed)
    asked = families.composed(demo=True) + [families.stranger_question(rng) for _ in range(N_STRANGER_QUESTIONS)]
    questions = [(render_chat_messages(template, {"question": c.question})[-1]["content"], c.answer) for c in asked]
    t0 = time.perf_counter()
    if pairs_file.is_file():
        pairs = load_preference_pairs(str(pairs_file)) if pairs_file.stat().st_size else []
        reporter.message(f"feedback: reusing {len(pairs)} ranked pairs from {pairs_file}")
    else:
        reporter.message(f"feedback: sampling {samples} chains for each of {len(questions)} questions (demo families, "
                         "strangers), ranking them by their final answer's truth")
        with open_logbook() as lb:
            pairs = rank_chains(sft, questions, k=samples, seed=seed, max_tokens=max_tokens, logbook=lb)
        atomic_write(pairs_file, "".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}, ensure_ascii=False)
                                         + "\n" for p, c, r in pairs))
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
        reporter.message("feedback: every question's chains were all right or all wrong: no pairs, nothing to learn")
    seconds["dpo"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    before = chain_accuracy(sft, eval_limit, lang)
    after = chain_accuracy(policy, eval_limit, lang) if policy else None
    seconds["evaluation"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - start

    figures = {
        "rater": RATER, "template": template.name, "prompts_ranked": len(questions), "samples_per_prompt": samples,
        "pairs": len(pairs), "dpo_steps": steps if policy else 0, "beta": beta, "sft_weight": sft_weight,
        "accuracy_before": before, "accuracy_after": after,
        "assistant": sft.name, "policy": str(policy.path) if policy else None,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    atomic_write(out_dir / FIGURES_FILE, json.dumps(figures, indent=2, ensure_ascii=False))
    return figures
