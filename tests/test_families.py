"""The toy world's families: facts, compositions held out by family, chains that repeat the facts."""

import collections
import re

import pytest

from gptkit.data import families as fam
from gptkit.data import toyworld as tw
from gptkit.prompting.templates import load_template

SEEDS = (0, 1, 7)


def training_texts(seed: int) -> list[str]:
    docs = tw.pretrain_documents(seed, 20_000)
    chats = tw.sft_conversations(seed, 2000)
    return docs + [m["content"] for chat in chats for m in chat]


@pytest.fixture(scope="module", params=SEEDS)
def texts(request):
    return training_texts(request.param)


def test_the_world_is_a_constant():
    fam.families.cache_clear()
    first = fam.families()
    fam.families.cache_clear()
    assert fam.families() == first
    people = [p for f in first for p in (f.mother, f.father, *f.children)]
    assert len(people) == len(set(people)), "every name belongs to one person"
    assert sum(f.demo for f in first) == fam.N_DEMO_FAMILIES and len(first) == fam.N_DEMO_FAMILIES + fam.N_TEST_FAMILIES


def test_towns_and_jobs_are_dealt_evenly_so_a_guess_is_right_one_time_in_ten():
    towns = collections.Counter(f.town for f in fam.families())
    jobs = collections.Counter(job for f in fam.families() for job in f.jobs)
    assert set(towns) == set(fam.TOWNS) and max(towns.values()) - min(towns.values()) <= 1
    assert set(jobs) == set(fam.JOBS) and max(jobs.values()) - min(jobs.values()) <= 2
    answers = collections.Counter(c.answer for c in fam.two_hop_questions())
    assert max(answers.values()) / sum(answers.values()) < 0.15


def test_at_least_300_held_out_compositions_and_their_hops():
    tasks = tw.reasoning_tasks()
    kinds = collections.Counter(t.kind for t in tasks)
    assert kinds["two-hop"] >= 300 and kinds["hop-1"] >= 200
    assert kinds["hop-2"] == 4 * fam.N_TEST_FAMILIES  # every test parent's town and job
    assert len({t.question for t in tasks}) == len(tasks)
    test_children = {c for f in fam.families() if not f.demo for c in f.children}
    assert {c.child for c in fam.two_hop_questions()} == test_children


def test_chains_repeat_the_facts_sentences_and_reach_the_answer():
    facts = set(fam.facts())
    for c in fam.composed():
        assert len(c.hops) == len(c.chains)
        for (first, second), chain in zip(c.hops, c.chains):
            assert first in facts and second in facts and first.value == second.subject
            hop1, hop2, final = re.fullmatch(r"(.+?), (who .+?\.) (The answer is .+\.)", chain).groups()
            assert f"{hop1}." == fam.fact_sentence(first)  # the fact's own sentence ...
            assert f"Meet {second.subject}, {hop2}" == fam.fact_sentence(second, fam.RELATIVE)  # ... and wording
            assert final == f"The answer is {c.answer}."
    town = [c for c in fam.composed() if "town" in c.question]
    assert town and all(len(c.chains) == 2 for c in town), "two routes: through the mother or the father"


def test_no_test_composition_chain_or_answer_sentence_in_any_training_text(texts):
    held_out = fam.held_out_texts()
    joined = "\n".join(texts)
    assert not [h for h in held_out if h in joined]
    for c in fam.two_hop_questions():  # nor the composed answer as a sentence about the child
        assert f"{c.child}'s parents live in" not in joined
        assert f"{c.child} lives in" not in joined


def test_no_document_holds_both_hops_of_a_test_composition(texts):
    hop_pairs = [(fam.fact_sentence(first), fam.fact_sentence(second, form))
                 for c in fam.two_hop_questions() for first, second in c.hops
                 for form in range(len(fam.FACT_FORMS[second.relation]))]
    by_value = collections.defaultdict(list)
    for first, second in hop_pairs:
        by_value[first].append(second)
    firsts = re.compile("|".join(re.escape(f) for f in by_value))
    for text in texts:
        for found in firsts.findall(text):
            assert not any(second in text for second in by_value[found]), text


def test_demo_compositions_are_taught(texts):
    joined = "\n".join(texts)
    demo = fam.composed(demo=True)
    assert sum(c.question in joined for c in demo) > len(demo) * 0.8
    assert any(chain in joined for c in demo for chain in c.chains)


def test_every_fact_is_read_often_and_in_several_wordings():
    docs = tw.pretrain_documents(0)
    sentences = collections.Counter(docs)
    facts = fam.facts()
    seen = {f: sum(sentences[fam.fact_sentence(f, i)] for i in range(len(fam.FACT_FORMS[f.relation]))) for f in facts}
    assert min(seen.values()) >= 30 and sum(seen.values()) / len(seen) >= 60
    forms = {f: sum(sentences[fam.fact_sentence(f, i)] > 0 for i in range(len(fam.FACT_FORMS[f.relation]))) for f in facts}
    assert sum(n >= 3 for n in forms.values()) > 0.9 * len(facts)


def test_shipped_templates_use_demo_families_only():
    demo = {c.question: c for c in fam.composed(demo=True)}
    test = {c.question for c in fam.two_hop_questions()}
    for name in ("few-shot", "chain-of-thought"):
        t = load_template(name)
        family = [ex for ex in t.examples if "'s " in ex.question]
        assert family, name
        for ex in family:
            assert ex.question in demo and ex.question not in test
            assert ex.answer == demo[ex.question].answer
            assert not ex.reasoning or ex.reasoning in demo[ex.question].chains


@pytest.mark.parametrize("seed", SEEDS)
def test_a_shuffled_answer_control_scores_chance(seed):
    """Perfect answers scored against another question's answer: what the quickstart's control
    reports. The world's answers are balanced, so this sits at chance (~1 in 10)."""
    import random

    answers = [c.answer for c in fam.two_hop_questions()]
    shuffled = answers[:]
    random.Random(seed).shuffle(shuffled)
    assert sum(a == b for a, b in zip(answers, shuffled)) / len(answers) < 0.2


def test_made_up_chains_are_about_strangers_and_written_like_the_worlds():
    import random

    world = fam._world_names()
    assert len(fam._strangers()) == fam.N_STRANGERS and not set(fam._strangers()) & world
    rng = random.Random(0)
    for _ in range(300):
        doc = fam.made_up_key(rng)
        assert not set(re.findall(r"\b[A-Z][a-z]+\b", doc)) & world
        for question, answer in re.findall(r"^Q: (.+)\nA: (.+)$", doc, re.M):
            child = re.search(r"(\w+)'s", question)[1]
            if "The answer is" in answer:
                assert re.fullmatch(rf"{child}'s (mother|father) is (\w+), who (lives in|is a) (\w+)\. The answer is \4\.",
                                    answer), answer
            else:
                assert re.fullmatch(rf"{child}'s mother is \w+\. {child}'s father is \w+\.", answer), answer


def test_strangers_chats_give_the_facts_their_chain_writes_out():
    import random

    rng = random.Random(1)
    for _ in range(300):
        user, answer = fam.stranger_exchange(rng)
        assert user.endswith(fam.STEP_BY_STEP) and not set(re.findall(r"\b[A-Z][a-z]+\b", user)) & fam._world_names()
        child, rel, parent, value = re.fullmatch(
            r"(\w+)'s (mother|father) is (\w+), who (?:lives in|is a) (\w+)\. The answer is \4\.", answer).groups()
        question = re.search(r"(?:In which town do|What is the job of) (\w+)'s", user)[1]
        assert child == question
        stated = {form.format(s=child, v=parent) for form in fam.FACT_FORMS[rel]}
        assert any(s in user for s in stated)  # the first hop is on the page ...
        attribute = "town" if value in fam.TOWNS else "job"
        assert any(form.format(s=parent, v=value) in user for form in fam.FACT_FORMS[attribute])  # ... and the second
