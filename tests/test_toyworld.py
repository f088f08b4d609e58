"""The toy world: deterministic, held out where it says so, arithmetically right, well-formed."""

import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit.data import toyworld as tw

# "a op b = c" and "a op b op c = d" wherever they occur: every one must be true.
EQUATION = re.compile(r"(?<![\d.])(\d+(?: [-+*/] \d+)+) = (\d+)(?!\d|\.\d)")
NAMES = re.compile(r"\b(?:" + "|".join(tw.BOYS + tw.GIRLS) + r")\b")


@pytest.fixture(scope="module")
def docs():
    return tw.pretrain_documents()


@pytest.fixture(scope="module")
def chats():
    return tw.sft_conversations()


@pytest.fixture(scope="module")
def training_text(docs, chats):
    return "\n".join(docs) + "\n" + "\n".join(m["content"] for chat in chats for m in chat)


def assert_equations_true(text):
    found = EQUATION.findall(text)
    for expression, result in found:
        assert eval(expression) == int(result), f"{expression} = {result}"  # digits and + - * / only
    return len(found)


def solve_age(question):
    """Independent answer to an age puzzle, from the question text alone."""
    m = re.fullmatch(r"When (\w+) was (\d+), (?:his|her) \w+ was (half|twice) (?:his|her) age\. "
                     r"Now \1 is (\d+)\. How old is (?:his|her) \w+\?", question)
    if m:
        then, now = int(m[2]), int(m[4])
        sibling_then = then // 2 if m[3] == "half" else then * 2
        return now + (sibling_then - then)
    m = re.fullmatch(r"(\w+) is (\d+)\. (\w+) is (\d+) years? (older|younger) than \1\. "
                     r"(\w+) is (\d+) years? (older|younger) than \3\. How old is \6\?", question)
    if m:
        sign = {"older": 1, "younger": -1}
        return int(m[2]) + sign[m[5]] * int(m[4]) + sign[m[8]] * int(m[7])
    m = re.fullmatch(r"(\w+) is (\d+)\. (\w+) is (\d+) years? (older|younger) than \1\. How old is \3\?", question)
    if m:
        return int(m[2]) + (1 if m[5] == "older" else -1) * int(m[4])
    m = re.fullmatch(r"(\w+) is (\d+) now\. How old (will|was) \1 (?:be )?(?:in )?(\d+) years?(?: ago)?\?", question)
    if m:
        return int(m[2]) + (1 if m[3] == "will" else -1) * int(m[4])
    m = re.fullmatch(r"(\w+) is (\d+)\. (?:His|Her) \w+ is half (?:his|her) age\. How old is (?:his|her) \w+\?", question)
    assert m, f"unknown puzzle shape: {question}"
    return int(m[2]) // 2


def solve_sum(question):
    m = re.fullmatch(r"(?:What is|Work out) (\d+) ([-+]) (\d+)[?.]", question)
    assert m, question
    return int(m[1]) + int(m[3]) if m[2] == "+" else int(m[1]) - int(m[3])


def check_task(task):
    assert task.answer.strip() == task.answer and task.answer
    if task.kind in ("arithmetic", "age"):
        assert int(task.answer) == (solve_sum if task.kind == "arithmetic" else solve_age)(task.question)
        assert task.answer.isdigit()
    if task.kind == "capital":
        assert any(task.answer == cap and country in task.question for country, cap, _ in tw.COUNTRIES)
    if task.reasoning:
        assert task.reasoning.endswith(f"The answer is {task.answer}.")
    if task.kind in ("arithmetic", "age"):
        assert assert_equations_true(task.reasoning) >= 1
        last_result = EQUATION.findall(task.reasoning)[-1][1]
        assert last_result == task.answer  # the working arrives at the answer it announces


# ---------------------------------------------------------------- determinism


def test_same_seed_same_world():
    assert tw.pretrain_documents(3, 300) == tw.pretrain_documents(3, 300)
    assert tw.sft_conversations(3, 200) == tw.sft_conversations(3, 200)
    assert tw.eval_tasks(3, 10) == tw.eval_tasks(3, 10)
    assert tw.rank_prompts(3) == tw.rank_prompts(3)


def test_global_rng_is_untouched():
    random.seed(99)
    expected = random.random()
    random.seed(99)
    tw.pretrain_documents(0, 100), tw.sft_conversations(0, 50), tw.eval_tasks(), tw.rank_prompts()
    assert random.random() == expected


def test_different_seeds_differ():
    assert tw.pretrain_documents(0, 300) != tw.pretrain_documents(1, 300)
    assert tw.sft_conversations(0, 200) != tw.sft_conversations(1, 200)
    assert tw.eval_tasks(1) != tw.eval_tasks(2)
    assert tw.rank_prompts(1) != tw.rank_prompts(2)


# ---------------------------------------------------------------- held out


def test_eval_tasks_shape():
    tasks = tw.eval_tasks(n_per_kind=30)
    assert [t.kind for t in tasks] == ["capital"] * 30 + ["age"] * 30 + ["arithmetic"] * 30
    assert len({t.question for t in tasks}) == 90
    for task in tasks:
        check_task(task)
    assert all(len(re.findall(r"\d+", t.question)) == 2 and min(map(int, re.findall(r"\d+", t.question))) >= 10
               for t in tasks if t.kind == "arithmetic")


def test_eval_questions_never_appear_in_training(training_text):
    for task in tw.eval_tasks():
        assert task.question not in training_text


def test_eval_number_combinations_never_appear_in_training(training_text):
    # Names and pronouns are interchangeable, numbers are what is held out: compare with them masked.
    def masked(text):
        text = NAMES.sub("N", text)
        return re.sub(r"\b(?:his|her|His|Her|sister|brother)\b", "_", text)

    training = masked(training_text)
    for task in tw.eval_tasks():
        if task.kind == "age":
            assert masked(task.question) not in training
        if task.kind == "arithmetic":
            a, op, b = re.fullmatch(r"What is (\d+) ([-+]) (\d+)\?", task.question).groups()
            assert f"{a} {op} {b} =" not in training_text  # not even worked somewhere else
        if task.kind == "capital":
            phrasing = task.question
            for country, _, _ in tw.COUNTRIES:
                phrasing = phrasing.replace(country, "{c}")
            assert phrasing in tw.HELD_OUT_CAPITAL_QUESTIONS


def test_held_out_capital_phrasings_never_appear_in_training(training_text):
    for phrasing in tw.HELD_OUT_CAPITAL_QUESTIONS:
        before, after = phrasing.split("{c}")
        # any country at all, not only the ones in our table
        assert not re.search(re.escape(before) + r"[A-Z][A-Za-z ]*" + re.escape(after), training_text), phrasing


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_held_out_rule_holds_for_any_seed(seed):
    text = "\n".join(tw.pretrain_documents(seed, 300))
    text += "\n".join(m["content"] for chat in tw.sft_conversations(seed, 200) for m in chat)
    for task in tw.eval_tasks(seed, 10):
        assert task.question not in text


def test_rank_prompts_are_checkable_and_not_eval():
    eval_questions = {t.question for t in tw.eval_tasks()}
    prompts = tw.rank_prompts(n=40)
    assert len(prompts) == 40 and len({t.question for t in prompts}) == 40
    assert {t.kind for t in prompts} >= {"explain", "capital", "arithmetic", "age"}
    for task in prompts:
        assert task.question not in eval_questions
        check_task(task)


# ---------------------------------------------------------------- pretraining corpus


def test_corpus_size(docs):
    size = sum(len(d) for d in docs)
    assert 1_500_000 <= size <= 3_000_000, size


def test_documents_are_plain_and_split_losslessly(docs):
    for doc in docs:
        assert doc and doc == doc.strip() and "\n\n" not in doc
        assert "<|" not in doc
    assert "Kit" not in "\n".join(docs)  # the base model must not know the assistant's identity


def test_every_equation_in_the_corpus_is_true(docs, chats):
    assert assert_equations_true("\n".join(docs)) > 1000
    assert assert_equations_true("\n".join(m["content"] for chat in chats for m in chat)) > 1000


def test_facts_stated_in_the_corpus_are_the_real_ones(docs):
    text = "\n".join(docs)
    capitals = {c: cap for c, cap, _ in tw.COUNTRIES}
    stated = re.findall(r"The capital of ([A-Z][a-z]+(?: [A-Z][a-z]+)?) is ([A-Z][a-z]+(?: [A-Z][a-z]+)?)\.", text)
    assert len(stated) > 100
    for country, capital in stated:
        assert capitals[country] == capital
    pairs = re.findall(r"Q: (.*)\nA: (.*)", text)
    checked = 0
    for question, answer in pairs:
        if question.startswith(("What is the capital", "What city is the capital", "Name the capital")):
            country = re.search(r"of (.+)[?.]$", question)[1]
            assert answer in (capitals[country], f"{country} is a country in "
                              f"{dict((c, k) for c, _, k in tw.COUNTRIES)[country]}. Its capital is "
                              f"{capitals[country]}. The answer is {capitals[country]}.")
            checked += 1
        elif re.fullmatch(r"(?:What is|Work out) \d+ [-+] \d+[?.]", question) and answer.isdigit():
            assert int(answer) == solve_sum(question)
            checked += 1
    assert checked > 500


def test_genres_are_all_present(docs):
    quiz = [d for d in docs if tw.is_question_like(d) and "\nA: " not in d]
    keys = [d for d in docs if "\nQ: " in d]
    worked = [d for d in docs if "The answer is" in d and "\nQ: " not in d]
    facts = [d for d in docs if "\n" not in d]
    for genre in (quiz, keys, worked):
        assert len(genre) > len(docs) // 1000  # rare beside the one-fact documents, but there
    assert len(facts) > len(docs) // 2  # one-fact documents: the families' facts (test_families.py)
    assert any("Explain the moon landing to a 6 year old." in d for d in quiz)
    assert any("What is your name?" in d for d in quiz)


def test_quiz_sheets_hold_questions_without_answers():
    for seed in range(200):
        title, *lines = tw._quiz_sheet(random.Random(seed)).split("\n")
        instruction = lines[0] if not lines[0].endswith("?") and not re.match(r"\d|Explain|Work|Name", lines[0]) else None
        questions = [line for line in lines if line != instruction]
        assert len(questions) >= 4
        for line in questions:
            body = re.sub(r"^\d+\. ", "", line)
            assert body.endswith("?") or body.startswith(("Explain", "Work out", "Name")), line
            assert "A:" not in line and "The answer is" not in line and "=" not in line
        assert tw.is_question_like("\n".join(questions))


def test_answer_keys_are_q_a_pairs():
    for seed in range(200):
        title, *lines = tw._answer_key(random.Random(seed)).split("\n")
        assert not title.startswith(("Q:", "A:")) and len(lines) >= 6 and len(lines) % 2 == 0
        for q, a in zip(lines[::2], lines[1::2]):
            assert q.startswith("Q: ") and a.startswith("A: ") and len(a) > 3


# ---------------------------------------------------------------- chats


def test_sft_messages_are_well_formed(chats):
    assert len(chats) == 4000
    with_system = multi_turn = 0
    for chat in chats:
        roles = [m["role"] for m in chat]
        if roles[0] == "system":
            with_system += 1
            roles = roles[1:]
        assert roles and roles == ["user", "assistant"] * (len(roles) // 2) and len(roles) % 2 == 0
        multi_turn += len(roles) > 2
        for message in chat:
            assert set(message) == {"role", "content"}
            assert isinstance(message["content"], str) and message["content"].strip() == message["content"] != ""
    assert with_system > 100 and multi_turn > 100


def test_sft_covers_the_story(chats):
    replies = {}
    for chat in chats:
        turns = [m for m in chat if m["role"] != "system"]
        for user, assistant in zip(turns[::2], turns[1::2]):
            replies.setdefault(user["content"], set()).add(assistant["content"])
    assert replies["What is your name?"] == {"My name is Kit, a small assistant made with gptkit."}
    assert "Who made you?" in replies and "What can you do?" in replies
    assert replies["What is the capital of France?"] == {"The capital of France is Paris."}
    assert replies["Explain the moon landing to a 6 year old"] <= set(tw.TOPICS["the moon landing"][1])
    explained = {q for q in replies if q.startswith("Explain")}
    assert len({t for t in tw.TOPICS if any(t in q for q in explained)}) == len(tw.TOPICS)
    worked = [r for rs in replies.values() for r in rs if re.match(r"Add the ones|Subtract the ones|When [A-Z]\w+ was", r)]
    assert len(worked) > 200 and all(re.search(r"The answer is \d+\.$", r) for r in worked)


# ---------------------------------------------------------------- showcase, question-likeness


def test_showcase_prompts():
    prompts = tw.showcase_prompts()
    for required in ("Explain the moon landing to a 6 year old", "What is the capital of France?", "What is your name?"):
        assert required in prompts
    assert any("+" in p for p in prompts) and any("How old" in p for p in prompts) and any("sound" in p for p in prompts)
    assert not set(prompts) & {t.question for t in tw.eval_tasks()}


@pytest.mark.parametrize("text", [
    "What is the capital of Spain?",
    "\n2. What is the capital of Spain?\n3. What sound does a cow make?\n4. Explain rain to a 6 year old.",
    "Explain rainbows to a 6 year old.\nExplain snow to a 6 year old.",
    "How old are you?\nWhere do you live?\nWhat is your favourite colour?",
    "Q: What is 3 + 4?\nQ: What is 5 + 6?",
    "\n5. When Ken was 6, his sister was half his age. Now Ken is 20. How old is his sis",
])
def test_question_like_positives(text):
    assert tw.is_question_like(text)


@pytest.mark.parametrize("text", [
    "",
    "   \n ",
    "Paris",
    "The capital of France is Paris.",
    "Paris\nQ: What is the capital of Spain?\nA: Madrid",
    "Q: What is the capital of Spain?\nA: Madrid",
    "Add the ones: 7 + 8 = 15, write 5 and carry 1. Add the tens: 4 + 3 + 1 = 8. The answer is 85.",
    "A long time ago, people flew a rocket to the moon.\nThey walked on it.\nThen they came home.",
])
def test_question_like_negatives(text):
    assert not tw.is_question_like(text)


@given(st.lists(st.sampled_from([t.question for t in tw.rank_prompts(n=40) if t.question.endswith("?")]),
                min_size=1, max_size=6), st.booleans())
def test_lists_of_questions_are_question_like(questions, numbered):
    lines = [f"{i}. {q}" if numbered else q for i, q in enumerate(questions, 1)]
    assert tw.is_question_like("\n".join(lines))


@given(st.lists(st.text(alphabet="abcdefghij ,.'", min_size=1, max_size=40), min_size=1, max_size=6))
def test_statements_are_not_question_like(lines):
    assert not tw.is_question_like("\n".join(lines))


# ---------------------------------------------------------------- files


def test_write_toyworld(tmp_path):
    paths = tw.write_toyworld(tmp_path / "world", seed=0)
    assert set(paths) == {"pretrain.jsonl", "pretrain.txt", "sft.jsonl", "eval.jsonl", "README.txt"}
    assert all(p.parent == tmp_path / "world" and p.exists() for p in paths.values())
    rows = [json.loads(line) for line in paths["pretrain.jsonl"].read_text(encoding="utf-8").splitlines()]
    docs = tw.pretrain_documents(0)
    assert [row["text"] for row in rows] == docs and all(set(row) == {"text"} for row in rows)
    assert paths["pretrain.txt"].read_text(encoding="utf-8").rstrip("\n").split("\n\n") == docs
    sft = [json.loads(line) for line in paths["sft.jsonl"].read_text(encoding="utf-8").splitlines()]
    assert [row["messages"] for row in sft] == tw.sft_conversations(0)
    tasks = [json.loads(line) for line in paths["eval.jsonl"].read_text(encoding="utf-8").splitlines()]
    assert [tw.Task(**row) for row in tasks] == tw.eval_tasks() + tw.reasoning_tasks()
    assert "eval.jsonl" in paths["README.txt"].read_text(encoding="utf-8")
