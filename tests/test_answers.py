"""Answers: extraction, normalisation, majority voting and scoring."""

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit.errors import DataError, TemplateError, UsageError
from gptkit.prompting import answers
from gptkit.prompting.answers import (
    NORMALIZATIONS,
    Vote,
    answer_is_right,
    answer_regex_problem,
    extract_answer,
    majority_vote,
    normalize_answer,
    score,
)

COT_REGEX = r"(?m)The answer is (.+?)\.?$"


# ---- normalisation -------------------------------------------------------------------------


@pytest.mark.parametrize("text, names, expected", [
    ("  Tokyo \n", ["strip"], "Tokyo"),
    ("TOKYO", ["lower"], "tokyo"),
    ("Tokyo.", ["strip_punct"], "Tokyo"),
    ("  «Tokyo»?! ", ["strip_punct"], "Tokyo"),
    ("「東京」。", ["strip_punct"], "東京"),
    ("St. John's.", ["strip_punct"], "St. John's"),
    ("1,000 people", ["number"], "1000"),
    ("07", ["number"], "7"),
    ("about 3.50 metres", ["number"], "3.5"),
    ("-4 degrees", ["number"], "-4"),
    ("-0.0", ["number"], "0"),
    ("0.25", ["number"], "0.25"),
    ("23 + 45 = 68", ["number"], "23"),
    ("７０歳", ["number"], "70"),
    ("１，０００人", ["number"], "1000"),
    ("３．５０本", ["number"], "3.5"),
    ("－５度", ["number"], "-5"),
    ("りんごは３つ", ["number"], "3"),
    ("答えは 16 です。", ["number"], "16"),
    ("「東京」です。", ["strip_punct"], "東京」です"),  # ends only, as in English
    ("　『ローマ』！？、", ["strip_punct"], "ローマ"),
    ("（ナイロビ）。", ["strip_punct"], "ナイロビ"),
    ("コーヒー。", ["strip_punct"], "コーヒー"),  # ー is a letter (a long vowel), not a dash
    ("東京，．", ["strip_punct"], "東京"),
    ("no digits", ["number"], ""),
    (" Paris. ", ["strip_punct", "lower"], "paris"),
])
def test_normalisations(text, names, expected):
    assert normalize_answer(text, names) == expected


@given(st.text(), st.sampled_from(sorted(NORMALIZATIONS)))
@settings(max_examples=500, deadline=None)
def test_each_normalisation_is_idempotent(text, name):
    once = normalize_answer(text, [name])
    assert normalize_answer(once, [name]) == once


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
       st.lists(st.sampled_from(sorted(NORMALIZATIONS)), max_size=4))
@settings(max_examples=500, deadline=None)
def test_normalisation_pipelines_are_idempotent(text, names):
    once = normalize_answer(text, names)
    assert normalize_answer(once, names) == once


@given(st.integers(min_value=-10**30, max_value=10**30))
def test_number_reads_back_any_integer(n):
    assert normalize_answer(f"The answer is {n}.", ["number"]) == str(n)
    assert normalize_answer(f"{n:,}", ["number"]) == str(n)


_OLD_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def _old_number(text: str) -> str:
    """`number` as it was before full-width signs, separators and points were read."""
    match = _OLD_NUMBER.search(text)
    if match is None:
        return ""
    sign = "-" if match.group().startswith("-") else ""
    whole, _, frac = match.group().lstrip("-").replace(",", "").partition(".")
    whole = "".join(str(unicodedata.digit(ch)) for ch in whole).lstrip("0") or "0"
    frac = "".join(str(unicodedata.digit(ch)) for ch in frac).rstrip("0")
    return ("" if whole == "0" and not frac else sign) + whole + ("." + frac if frac else "")


@given(st.one_of(st.text(alphabet=st.characters(max_codepoint=0x2FFF)),
                 st.lists(st.sampled_from(["The answer is", " ", "-", ",", ".", "1", "07", "3.50", "1,000", "x",
                                           "٣", "７"])).map("".join)))
@settings(max_examples=500, deadline=None)
def test_number_reads_text_without_full_width_forms_as_before(text):
    assert normalize_answer(text, ["number"]) == _old_number(text)


@given(st.integers(min_value=-10**12, max_value=10**12), st.integers(min_value=0, max_value=99),
       st.sampled_from(["", "歳", "人", "本", "つ", "匹", "です。", "歳です。"]))
def test_number_reads_full_width_japanese_numbers(n, cents, unit):
    wide = str.maketrans("0123456789-,.", "０１２３４５６７８９－，．")
    assert normalize_answer(f"答えは{n:,}{unit}".translate(wide), ["number"]) == str(n)
    decimal = f"{n}.{cents:02d}".translate(wide) + unit
    assert normalize_answer(decimal, ["number"]) == normalize_answer(f"{n}.{cents:02d}", ["number"])


# ---- extraction ----------------------------------------------------------------------------


def test_first_match_wins_when_the_model_keeps_writing():
    text = ("When I was 6 my sister was 3. 70 - 3 = 67. The answer is 67.\n\n"
            "Q: When Ken was 10 ...\nA: ... The answer is 25.")
    assert extract_answer(text, COT_REGEX, ("number",)) == "67"


def test_regex_capture_with_decimals_and_text():
    assert extract_answer("so it is 3.5. The answer is 3.5.", COT_REGEX) == "3.5"
    assert extract_answer("The answer is Tokyo.\nMore.", COT_REGEX) == "Tokyo"
    assert extract_answer("The answer is 1,000", COT_REGEX, ("number",)) == "1000"


def test_no_match_or_empty_answer_is_none():
    assert extract_answer("I do not know.", COT_REGEX, ("number",)) is None
    assert extract_answer("The answer is many.", COT_REGEX, ("number",)) is None  # number finds nothing
    assert extract_answer("", None) is None
    assert extract_answer(" \n\n ", None) is None
    assert extract_answer("...", None, ("strip_punct",)) is None


def test_fallback_is_first_non_blank_line():
    assert extract_answer(" Paris\n\nQ: What is the capital of Spain?\nA: Madrid", None) == "Paris"
    assert extract_answer("\n\n  Tokyo.  \nmore", None, ("strip_punct",)) == "Tokyo"


JA_REGEX = r"答えは\s*(.+?)\s*です"


@pytest.mark.parametrize("text, normalize, expected", [
    ("東京の人口は多いです。答えは東京です。", ("strip_punct",), "東京"),
    ("答えは「ローマ」です。答えは東京です。", ("strip_punct",), "ローマ"),  # the first answer counts
    ("答えは　ナイロビ　です", ("strip_punct",), "ナイロビ"),
    ("ミアは８歳でした。答えは １６歳 です。", ("number",), "16"),
    ("答えは１，２００人です。", ("number",), "1200"),
    ("わかりません。", ("strip_punct",), None),
])
def test_japanese_answers_extract_with_a_template_regex(text, normalize, expected):
    assert extract_answer(text, JA_REGEX, normalize) == expected


def test_a_japanese_template_reads_back_its_own_examples():
    from gptkit.prompting.templates import parse_template

    template = """
name: {name}
examples:
  - question: {question}
    reasoning: {reasoning}
    answer: "{answer}"
chain_of_thought: {{exemplars: true}}
answer:
  regex: '答えは\\s*(.+?)\\s*です'
  normalize: [{normalize}]
"""
    capital = parse_template(template.format(name="capital-ja", question="日本の首都はどこですか？", answer="東京",
                                             reasoning="日本の首都は東京です。答えは「東京」です。", normalize="strip_punct"))
    age = parse_template(template.format(name="age-ja", question="ハナコは何歳ですか？", answer="12",
                                         reasoning="ハナコは８歳でした。４年たちました。答えは１２歳です。", normalize="number"))
    assert capital.answer_regex == age.answer_regex == JA_REGEX
    assert extract_answer("考えます。答えは「ローマ」です。", capital.answer_regex, capital.normalize) == "ローマ"
    assert extract_answer("考えます。答えは ２５ 歳です。", age.answer_regex, age.normalize) == "25"
    with pytest.raises(TemplateError, match="answer extraction reads '12' here, but the answer is '13'"):
        parse_template(template.format(name="age-ja", question="ハナコは何歳ですか？", answer="13",
                                       reasoning="答えは１２歳です。", normalize="number"))


@pytest.mark.parametrize("text, expected, right", [
    ("答えは東京です。", "東京", True),
    ("日本の首都は……答えは「東京」です。", "東京", True),
    ("答えはローマだ。\n質問：次は？", "ローマ", True),
    ("答えは東京都です。", "東京", False),  # another place
    ("日本の首都は東京です。", "東京", True),  # no 答えは: the first line; a word ends where the script changes
    ("首都は東京都です。", "東京", False),
    ("フランスの首都はパリです。", "パリ", True),
    ("パリスです。", "パリ", False),
    ("ミラの母はヒホー、松原に住んでいます。答えは松原です。", "松原", True),
    ("答えは松原町です。", "松原", False),
    ("ミアは３０歳です。答えは２５歳です。", "25", True),
    ("答えは２６歳です。", "25", False),
    ("答えはです。", "東京", False),
    ("The answer is Tokyo. 答えは大阪です。", "Tokyo", True),  # the English claim comes first
])
def test_answer_is_right_reads_japanese_claims(text, expected, right):
    assert answer_is_right(text, expected) is right


@given(st.one_of(st.text(), st.lists(st.sampled_from(["The answer is", " Tokyo", " 12", ".", "\n", "Q:", " is",
                                                       "東京", "です", "答え", "。"])).map("".join)),
       st.sampled_from(["Tokyo", "12", "東京", "3.5"]))
@settings(max_examples=300, deadline=None)
def test_answer_is_right_is_unchanged_for_text_without_a_japanese_claim(text, expected):
    from unittest import mock

    with mock.patch.object(answers, "_japanese_claim", lambda text: None):  # the rule before Japanese claims
        old = answer_is_right(text, expected)
    if "答えは" not in text:
        assert answer_is_right(text, expected) == old


def test_unusable_regex_is_a_template_error():
    assert answer_regex_problem(r"The answer is (\d+)") is None
    assert "exactly one" in answer_regex_problem(r"\d+")
    assert "invalid" in answer_regex_problem("(")
    with pytest.raises(TemplateError, match="answer.regex"):
        extract_answer("The answer is 4", r"(\d)(\d)")


# ---- voting --------------------------------------------------------------------------------


def test_majority_vote_example():
    vote = majority_vote(["67", None, "35", "67", "67", "35", None, "73"])
    assert vote == Vote(answer="67", counts=[("67", 3), ("35", 2), ("73", 1)], agreement=3 / 8, n=8, n_valid=6)


def test_tie_goes_to_the_first_seen_answer():
    assert majority_vote(["b", "a", "a", "b"]).answer == "b"
    assert majority_vote([None, "a", "b", "b", "a"]).answer == "a"
    assert majority_vote(["z", "y"]).counts == [("z", 1), ("y", 1)]


def test_none_never_wins_unless_all_are_none():
    assert majority_vote([None, None, None, "7"]) == Vote("7", [("7", 1)], 0.25, 4, 1)
    assert majority_vote([None, None]) == Vote(None, [], 0.0, 2, 0)
    assert majority_vote([]) == Vote(None, [], 0.0, 0, 0)


@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])), max_size=30))
def test_majority_vote_invariants(answers):
    vote = majority_vote(answers)
    valid = [a for a in answers if a is not None]
    assert vote.n == len(answers) and vote.n_valid == len(valid)
    assert 0.0 <= vote.agreement <= 1.0
    assert sum(c for _, c in vote.counts) == len(valid)
    assert dict(vote.counts) == {a: valid.count(a) for a in valid}
    counts = [c for _, c in vote.counts]
    assert counts == sorted(counts, reverse=True)
    if not valid:
        assert vote.answer is None and vote.agreement == 0.0
        return
    top = max(valid.count(a) for a in valid)
    assert valid.count(vote.answer) == top
    assert vote.answer == next(a for a in valid if valid.count(a) == top)  # first seen among the tied
    assert vote.agreement == top / len(answers)
    # ties within counts keep first-seen order
    first_seen = {a: valid.index(a) for a in valid}
    for (a, ca), (b, cb) in zip(vote.counts, vote.counts[1:]):
        assert ca > cb or first_seen[a] < first_seen[b]


# ---- scoring -------------------------------------------------------------------------------


def test_score_methods():
    assert score("67", "67") and score(" 67 ", "67 ") and not score("670", "67")
    assert score("Tokyo, Japan", "Tokyo", "contains") and not score("Kyoto", "Tokyo", "contains")
    assert score("Tokyo", "^(Tokyo|東京)$", "regex") and not score("Not Tokyo", "^(Tokyo|東京)$", "regex")
    assert not any(score(None, "67", method) for method in ("exact", "contains", "regex"))


def test_score_rejects_bad_input():
    with pytest.raises(UsageError, match="exact, contains, regex"):
        score("a", "a", "fuzzy")
    with pytest.raises(DataError, match="field 'expected'"):
        score("a", "(", "regex")
    with pytest.raises(DataError, match="empty"):
        score("a", " ", "contains")
