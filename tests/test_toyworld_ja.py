"""The Japanese toy world: the English world's facts and held-out rules in Japanese, nothing held
out leaking into training text, and the -ja templates reading back every task's answer."""

import collections
import hashlib
import json
import random
import re
from dataclasses import asdict

import pytest

from gptkit.data import families as fam_en
from gptkit.data import families_ja as fam
from gptkit.data import toyworld as en
from gptkit.data import toyworld_ja as tw
from gptkit.prompting.answers import extract_answer
from gptkit.prompting.templates import load_template

JA_TEMPLATES = ("zero-shot-ja", "few-shot-ja", "chain-of-thought-ja", "instructions-ja", "step-by-step-ja",
                "self-consistency-ja")
EQUATION = re.compile(r"(?<![\d.])(\d+(?: [-+*/] \d+)+) = (\d+)(?!\d|\.\d)")


@pytest.fixture(scope="module")
def docs():
    return tw.pretrain_documents()


@pytest.fixture(scope="module")
def chats():
    return tw.sft_conversations()


@pytest.fixture(scope="module")
def training_text(docs, chats):
    """Everything a model is trained or prompted with: documents, chats, the -ja templates' examples."""
    examples = [part for name in JA_TEMPLATES + ("sister-age-ja",) for ex in load_template(name).examples
                for part in (ex.question, ex.answer, ex.reasoning or "")]
    return "\n".join([*docs, *(m["content"] for chat in chats for m in chat), *examples])


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_english_world_is_unchanged():
    # Pinned before the Japanese world was built on it: sharing code must not move a byte.
    docs = "\n\n".join(en.pretrain_documents())
    assert sha(docs) == "dcec1629fe64f4ee009d496ada4db82bb45addda78542b8d1f8aefc96434eec9"
    assert sha(json.dumps(en.sft_conversations())) == "e5820228922fd9fd0bf7b06dd41643f0c4ecd154b63cff4b4a92b776c40c17d5"
    tasks = [asdict(t) for t in en.eval_tasks() + en.reasoning_tasks()]
    assert sha(json.dumps(tasks)) == "38446b17f548db905cad8842a3e6d3ea892d3a85654ac4e69f1adcee5cccaabd"
    rest = [asdict(t) for t in en.rank_prompts()] + en.showcase_prompts() + fam_en.held_out_texts()
    assert sha(json.dumps(rest)) == "ee7893466ce06595fd948f52c81d43df73ceff889c4481ddde5057c42339f88c"


def test_same_api_as_english():
    for name in ("Task", "pretrain_documents", "sft_conversations", "eval_tasks", "reasoning_tasks", "rank_prompts",
                 "showcase_prompts", "is_question_like", "write_toyworld", "STEP_BY_STEP", "JUST_THE_ANSWER",
                 "EVAL_KINDS", "REASONING_KINDS", "ASSISTANT_NAME"):
        assert hasattr(tw, name), name
    assert tw.Task is en.Task and (tw.EVAL_KINDS, tw.REASONING_KINDS) == (en.EVAL_KINDS, en.REASONING_KINDS)
    assert tw.STEP_BY_STEP == "ステップごとに考えましょう。" and tw.ASSISTANT_NAME == "キット"
    assert [w for _, w in tw._GENRES] == [w for _, w in en._GENRES]


def test_deterministic_per_seed():
    assert tw.pretrain_documents(3, 300) == tw.pretrain_documents(3, 300) != tw.pretrain_documents(4, 300)
    assert tw.sft_conversations(3, 200) == tw.sft_conversations(3, 200) != tw.sft_conversations(4, 200)
    assert tw.eval_tasks(5) == tw.eval_tasks(5) != tw.eval_tasks(6)
    assert tw.rank_prompts(5) == tw.rank_prompts(5)


def test_same_facts_as_english():
    """Every family, fact, split and answer is the English one under the fixed tables."""
    assert [f.demo for f in fam.families()] == [f.demo for f in fam_en.families()]
    assert fam.families() == tuple(map(fam.ja_family, fam_en.families()))
    en_tasks, ja_tasks = en.reasoning_tasks(), tw.reasoning_tasks()
    assert [t.kind for t in ja_tasks] == [t.kind for t in en_tasks]
    assert [t.answer for t in ja_tasks] == [fam.ja(t.answer) for t in en_tasks]
    ja_eval, en_eval = tw.eval_tasks(), en.eval_tasks()
    kinds = ["capital"] * 30 + ["age"] * 30 + ["arithmetic"] * 30
    assert [t.kind for t in ja_eval] == [t.kind for t in en_eval] == kinds
    ja_capital = {en_cap: ja_cap for (_, en_cap, _), (_, ja_cap, _) in zip(en.COUNTRIES, tw.COUNTRIES)}
    assert [t.answer for t in ja_eval[:30]] == [ja_capital[t.answer] for t in en_eval[:30]]
    assert [t.answer for t in ja_eval[30:]] == [t.answer for t in en_eval[30:]]  # the same held-out puzzles and sums


def genres_drawn(world, seed: int, n: int) -> tuple[list[int], float]:
    """Which genre each of `n` documents is, and the generator's next draw after them."""
    rng, (makers, weights) = random.Random(seed), zip(*world._GENRES)
    drawn = []
    for _ in range(n):
        drawn.append(rng.choices(range(len(makers)), weights)[0])
        makers[drawn[-1]](rng)
    return drawn, rng.random()


def test_in_step_with_english():
    """Every generator draws as its English twin does: document i is the same genre, about the
    same facts, so a run of the same length sees the same mix, and a chat draws the same turns."""
    assert genres_drawn(tw, 0, 8000) == genres_drawn(en, 0, 8000)
    ja_rng, en_rng = random.Random(1), random.Random(1)
    for _ in range(2000):
        tw._exchange(ja_rng), en._exchange(en_rng)
    assert ja_rng.random() == en_rng.random()
    ja_rank, en_rank = tw.rank_prompts(), en.rank_prompts()
    assert [t.kind for t in ja_rank] == [t.kind for t in en_rank]
    assert [t.answer for t in ja_rank if t.answer.isdigit()] == [t.answer for t in en_rank if t.answer.isdigit()]


def test_names_are_short_injective_katakana():
    table = fam._table()
    names = [n for n in table if n not in fam.TOWNS and n not in fam.JOBS]
    kana = [table[n] for n in names]
    assert len(set(kana)) == len(kana) == len(fam_en._world_names() | set(fam_en._strangers()))
    assert all(re.fullmatch(r"[ァ-ヴー]{2,5}", k) for k in kana)
    others = set(tw.BOYS + tw.GIRLS) | {tw.ASSISTANT_NAME} | set(fam.TOWNS.values()) | set(fam.JOBS.values())
    assert not others & set(kana)
    assert len(set(fam.TOWNS.values())) == 10 and len(set(fam.JOBS.values())) == 10
    assert fam.katakana("Tavi") == "タヴィ" and fam.katakana("Hihor") == "ヒホー"


def test_documents_are_japanese_without_blank_lines(docs):
    assert len(docs) == 40_000 and not any("\n\n" in d or not d.strip() for d in docs)
    for doc in random.Random(0).sample(docs, 300):
        letters = [ch for ch in doc if not ch.isspace() and not ch.isdigit() and ch not in "+-*/=.:"]
        japanese = sum("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in letters)
        assert japanese > 0.7 * len(letters), doc


def test_equations_are_true(docs, chats):
    text = "\n".join(docs[:5000] + [m["content"] for chat in chats for m in chat])
    found = EQUATION.findall(text)
    assert len(found) > 500
    for expression, result in found:
        assert eval(expression) == int(result), f"{expression} = {result}"  # digits and + - * / only


def test_no_held_out_composition_in_training_text(training_text):
    held = fam.held_out_texts()
    assert len(held) == sum(1 + 2 * len(c.chains) for c in fam.two_hop_questions())  # question, (chain, hops) per route
    leaked = [text for text in held if text in training_text]
    assert not leaked, leaked[:3]
    # ... while the demo compositions and the test families' single facts are trained
    assert fam.composed(demo=True)[0].chains[0] in training_text
    test_parent = next(f for f in fam.families() if not f.demo).mother
    assert f"こちらは{test_parent}、" in training_text


def test_no_document_holds_both_hops_of_a_test_composition(docs, chats):
    hop_pairs = [(fam.fact_sentence(first), fam.fact_sentence(second, form))
                 for c in fam.two_hop_questions() for first, second in c.hops
                 for form in range(len(fam.FACT_FORMS[second.relation]))]
    by_first = {}
    for first, second in hop_pairs:
        by_first.setdefault(first, []).append(second)
    firsts = re.compile("|".join(re.escape(f) for f in by_first))
    for text in docs + [m["content"] for chat in chats for m in chat]:
        for found in firsts.findall(text):
            assert not any(second in text for second in by_first[found]), text
    joined = "\n".join(docs)
    for c in fam.two_hop_questions():  # nor the composed answer as a sentence about the child
        assert f"{c.child}は{c.answer}に" not in joined and f"{c.child}の両親は{c.answer}" not in joined


def test_every_fact_is_read_often_and_in_several_wordings(docs):
    sentences = collections.Counter(docs)
    facts = fam._all_facts()
    seen = {f: sum(sentences[fam.fact_sentence(f, i)] for i in range(len(fam.FACT_FORMS[f.relation]))) for f in facts}
    assert min(seen.values()) >= 30 and sum(seen.values()) / len(seen) >= 60
    forms = {f: sum(sentences[fam.fact_sentence(f, i)] > 0 for i in range(len(fam.FACT_FORMS[f.relation])))
             for f in facts}
    assert sum(n >= 3 for n in forms.values()) > 0.9 * len(facts)


def test_strangers_chains_are_written_like_the_worlds():
    world = {fam.ja(n) for n in fam_en._world_names()}
    name = "[ァ-ヴー]+"
    rng = random.Random(0)
    for _ in range(300):
        for question, answer in re.findall(r"^Q: (.+)\nA: (.+)$", fam.made_up_key(rng), re.M):
            child = re.match(rf"({name})の", question)[1]
            assert child not in world
            assert re.fullmatch(rf"まず、(母|父)は({name})、(.+)に住んでいます。答えは\3です。", answer) or \
                re.fullmatch(rf"まず、(母|父)は({name})、(.+)をしています。答えは\3です。", answer) or \
                re.fullmatch(rf"{child}の母は{name}です。{child}の父は{name}です。", answer), answer
        user, answer = fam.stranger_exchange(rng)
        assert user.endswith(tw.STEP_BY_STEP)
        rel, parent, value = re.fullmatch(
            rf"まず、(母|父)は({name})、(.+?)(?:に住んでいます|をしています)。答えは\3です。", answer).groups()
        child = re.search(rf"({name})の(?:両親|母|父)(?:は|の仕事)", user)[1]  # the facts name the child first
        relation = {"母": "mother", "父": "father"}[rel]
        assert any(form.format(s=child, v=parent) in user for form in fam.FACT_FORMS[relation])  # both hops given
        attribute = "town" if value in fam.TOWNS.values() else "job"
        assert any(form.format(s=parent, v=value) in user for form in fam.FACT_FORMS[attribute])


def test_chain_repeats_the_facts_own_wordings():
    c = fam.two_hop_questions()[0]
    first, second = c.hops[0]
    assert c.chains[0] == f"まず、母は{first.value}、{c.answer}に住んでいます。答えは{c.answer}です。"
    assert fam.fact_sentence(first).removeprefix(f"{c.child}の").removesuffix("だ。") in c.chains[0]
    clause = fam.fact_sentence(second, fam.RELATIVE).removeprefix(f"こちらは{second.subject}")
    assert f"{second.subject}{clause}" in c.chains[0]
    job = next(x for x in fam.two_hop_questions() if x.question.endswith("の父の仕事は何ですか？"))
    assert job.chains[0].endswith(f"、{job.answer}をしています。答えは{job.answer}です。")


def test_held_out_capitals_sums_and_puzzles_never_trained(training_text):
    for form in tw.HELD_OUT_CAPITAL_QUESTIONS:
        for part in form.split("{c}"):
            if part:
                assert part not in training_text, form  # the phrasing itself, for any country
    for form in tw.CAPITAL_QUESTIONS:
        assert form.format(c="フランス") in training_text
    for task in tw.eval_tasks():
        assert task.question not in training_text
    for a, op, b in re.findall(r"(?<![\d.])(\d\d) ([-+]) (\d\d) = ", training_text):
        assert not en._sum_held_out(int(a), op, int(b)), f"{a} {op} {b}"


@pytest.mark.parametrize("name", JA_TEMPLATES)
def test_templates_read_back_every_answer(name):
    t = load_template(name)
    for task in tw.eval_tasks() + tw.reasoning_tasks():
        for shown in (f"答えは{task.answer}です。", task.answer, f" {task.answer}", f"答: {task.answer}",
                      f"A: {task.answer}\nQ: 次の質問？"):
            assert extract_answer(shown, t.answer_regex, t.normalize) == task.answer, (name, shown)
        if task.reasoning:
            assert extract_answer(task.reasoning, t.answer_regex, t.normalize) == task.answer


def test_template_examples_use_demo_families_only():
    test_people = {n for f in fam.families() if not f.demo for n in (f.mother, f.father, *f.children)}
    demo_people = {n for f in fam.families() if f.demo for n in (f.mother, f.father, *f.children)}
    seen_demo = False
    for name in JA_TEMPLATES + ("sister-age-ja",):
        for ex in load_template(name).examples:
            text = ex.question + (ex.reasoning or "")
            assert not any(p in text for p in test_people), (name, ex.question)
            seen_demo |= any(p in text for p in demo_people)
    assert seen_demo
    sister = load_template("sister-age-ja")
    assert extract_answer("70 - 3 = 67歳です。答えは67です。", sister.answer_regex, sister.normalize) == "67"


def test_showcase():
    prompts = tw.showcase_prompts()
    assert prompts[0] == "6歳の子どもに月面着陸を説明して" and "フランスの首都" in prompts[1]
    assert any("妹は何歳ですか？" in p and "半分" in p for p in prompts)
    two_hop = fam.two_hop_questions()[0].question
    assert prompts[-2:] == [two_hop, f"{two_hop}\n{tw.STEP_BY_STEP}"]


def test_is_question_like():
    for text in ("フランスの首都はどこですか？", "2. 空はなぜ青いのですか？\n3. 雨はなぜ降るのですか？",
                 "Q: スペインの首都はどこですか？", "問: 牛はなんと鳴きますか？", "6歳の子どもに雪を説明して",
                 "日本の首都を答えなさい。\n犬の足は何本ですか？"):
        assert tw.is_question_like(text), text
    for text in ("", "パリ", "答えはパリです。", "Q: スペインの首都はどこですか？\nA: マドリード",
                 "フランスの首都はパリです。", "ゲミスの母はディダ、桜谷に住んでいます。答えは桜谷です。"):
        assert not tw.is_question_like(text), text


def test_quiz_sheets_are_question_like_and_answer_keys_are_not():
    rng = random.Random(0)
    for _ in range(200):  # the title line is skipped: a continuation starts after it
        assert tw.is_question_like(tw._quiz_sheet(rng).split("\n", 1)[1])
        assert not tw.is_question_like(tw._answer_key(rng).split("\n", 1)[1])
        assert not tw.is_question_like(fam.answer_key(rng).split("\n", 1)[1])


def test_write_toyworld_round_trip(tmp_path, docs):
    paths = tw.write_toyworld(tmp_path / "ja")
    assert sorted(paths) == ["README.txt", "eval.jsonl", "pretrain.jsonl", "pretrain.txt", "sft.jsonl"]
    assert paths["pretrain.txt"].read_text(encoding="utf-8").rstrip("\n").split("\n\n") == docs
    rows = [json.loads(line) for line in paths["pretrain.jsonl"].read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == docs
    chats = [json.loads(line)["messages"] for line in paths["sft.jsonl"].read_text(encoding="utf-8").splitlines()]
    assert chats == tw.sft_conversations() and all(chat[-1]["role"] == "assistant" for chat in chats)
    tasks = [json.loads(line) for line in paths["eval.jsonl"].read_text(encoding="utf-8").splitlines()]
    assert tasks == [asdict(t) for t in tw.eval_tasks() + tw.reasoning_tasks()]
    assert "トイワールド" in paths["README.txt"].read_text(encoding="utf-8")
