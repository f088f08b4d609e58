"""The feedback demo: rank by truth into the logbook, DPO, measure before/after; and reuse on re-run."""

import pytest

from gptkit.demo import feedback
from gptkit.checkpoint import load_checkpoint
from gptkit.data.toyworld import Task
from gptkit.store import open_logbook


@pytest.mark.parametrize("task, text, right", [
    (Task("arithmetic", "What is 12 + 7?", "19", ""), "Add the ones: 2 + 7 = 9. The answer is 19.", True),
    (Task("arithmetic", "What is 12 + 7?", "19", ""), "The answer is 18. The answer is 19.", False),  # the first one counts
    (Task("age", "...", "7", ""), "so she is 14 - 7 = 7.", False),  # no final answer
    (Task("capital", "Tell me the capital of Peru.", "Lima", ""), "The capital of Peru is lima.\nMore text", True),
    (Task("capital", "Tell me the capital of Peru.", "Lima", ""), "Peru is in South America.\nLima", False),
    (Task("animal", "Where does a cow live?", "on a farm", ""), "A cow lives on a farm.", True),
    (Task("colour", "What colour is snow?", "white", ""), "Snow is whitish.", False),
    (Task("two-hop", "...", "Oakley", ""), "Ann's mother is Bo. Bo lives in Oakley. The answer is Oakley.", True),
    (Task("capital", "...", "Paris", ""), "Rome\nQ: What is the capital of France?\nA: The answer is Paris.", False),
])
def test_one_rule_judges_held_out_answers_and_rankings(task, text, right):
    """Held-out evaluation and every ranking by truth (the demo's and `rank --auto truth`'s) agree."""
    from gptkit.demo.evaluate import is_correct
    from gptkit.ui.rank import AutoRule, auto_ranks

    assert is_correct(task, text) is right
    assert feedback.rank_rule([text], task.answer) == auto_ranks(AutoRule("truth"), [text], task.answer)
    assert auto_ranks(AutoRule("truth"), [text], task.answer) == (("ranked", [1]) if right else ("all_bad", [None]))


def test_demo_runs_end_to_end_and_reuses_its_work(tiny_checkpoints, tmp_path, monkeypatch):
    # A random tiny model is never right; judge its chains by length parity instead, so that
    # every ranking has winners and losers and the DPO stage really runs.
    def by_parity(texts, expected):
        return "ranked", [1 if len(text) % 2 == 0 else 2 for text in texts]

    monkeypatch.setattr(feedback, "rank_rule", by_parity)
    kwargs = dict(out_dir=tmp_path / "policy", steps=3, seed=0, device="cpu", samples=3, eval_limit=4,
                  max_tokens=12, batch_size=2)
    figures = feedback.run_feedback_demo(str(tiny_checkpoints["assistant"]), **kwargs)
    assert {"pairs", "accuracy_before", "accuracy_after", "seconds", "policy", "prompts_ranked"} <= figures.keys()
    assert figures["pairs"] > 0 and figures["dpo_steps"] == 3
    for cell in (figures["accuracy_before"], figures["accuracy_after"]):
        assert cell["template"] == "step-by-step" and cell["total"] == 4 and 0 <= cell["low"] <= cell["high"] <= 1
    assert {"ranking", "dpo", "evaluation", "total"} <= figures["seconds"].keys()
    policy = load_checkpoint(figures["policy"])
    assert policy.kind == "policy" and policy.meta["parent"] == "assistant/step-000001" and policy.meta["step"] == 3
    with open_logbook() as lb:
        rankings = lb.rankings()
    assert len(rankings) == figures["prompts_ranked"] > 0
    assert all(r["rater"] == "auto:truth" and r["synthetic"] and len(r["items"]) == 3 for r in rankings)
    assert all(r["prompt"].endswith("\nThink step by step.") and "'s " in r["prompt"] for r in rankings)
    assert all(r["ranks"] == [1 if len(i["text"]) % 2 == 0 else 2 for i in r["items"]] for r in rankings)

    (tmp_path / "policy" / feedback.FIGURES_FILE).unlink()  # as if stopped before the end
    again = feedback.run_feedback_demo(str(tiny_checkpoints["assistant"]), **kwargs)
    assert again["pairs"] == figures["pairs"] and again["policy"] == figures["policy"]
    with open_logbook() as lb:
        assert len(lb.rankings()) == len(rankings)  # nothing ranked twice
    assert feedback.run_feedback_demo(str(tiny_checkpoints["assistant"]), **kwargs) == again


def test_no_pairs_means_no_dpo(tiny_checkpoints, tmp_path):
    figures = feedback.run_feedback_demo(str(tiny_checkpoints["assistant"]), out_dir=tmp_path / "policy", steps=2, seed=0,
                                         device="cpu", samples=2, eval_limit=2, max_tokens=4)
    assert figures["pairs"] == 0 and figures["accuracy_after"] is None and figures["policy"] is None
    with open_logbook() as lb:
        assert {r["status"] for r in lb.rankings()} == {"all_bad"}  # a random model is never right
