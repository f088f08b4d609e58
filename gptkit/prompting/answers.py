"""Answers: pull a final answer out of generated text, normalise it, vote, and score it.

Owns: the named normalisations (`NORMALIZATIONS`), answer extraction with a template's regex,
majority voting over self-consistency samples (Wang et al. 2022), and scoring against an
expected answer. Everything here is a pure function of text.

Must not know: templates' YAML, tokenizers, models or the logbook. `templates.py` uses
`answer_regex_problem` and `NORMALIZATIONS` to validate templates at load time.
"""

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from gptkit.errors import DataError, TemplateError, UsageError
from gptkit.files import clip, excerpt


def _strip_punct(text: str) -> str:
    # Unicode category P* covers "." "?" and the Japanese "。" "「」" alike; only the ends are
    # trimmed so inner punctuation ("St. John's") survives.
    def removable(ch: str) -> bool:
        return ch.isspace() or unicodedata.category(ch).startswith("P")

    start, end = 0, len(text)
    while start < end and removable(text[start]):
        start += 1
    while end > start and removable(text[end - 1]):
        end -= 1
    return text[start:end]


# Thousands groups are tried before a plain digit run so "1,000" is one number, not "1". Japanese
# text writes the sign, separator and point full-width too ("－１，２３４．５"); ASCII text reads as before.
_NUMBER = re.compile(r"[-－]?(?:\d{1,3}(?:[,，]\d{3})+|\d+)(?:[.．]\d+)?")


def _number(text: str) -> str:
    """The first integer or decimal in `text`, canonical: "1,000" -> "1000", "07" -> "7",
    "3.50" -> "3.5", "-0" -> "0", "７０歳" -> "70", "１，０００人" -> "1000". "" when there is none."""
    match = _NUMBER.search(text)
    if match is None:
        return ""
    number = match.group().replace("－", "-").replace("，", ",").replace("．", ".")
    sign = "-" if number.startswith("-") else ""
    whole, _, frac = number.lstrip("-").replace(",", "").partition(".")
    # Any Unicode decimal digit (full-width digits in Japanese output) becomes ASCII.
    whole = "".join(str(unicodedata.digit(ch)) for ch in whole).lstrip("0") or "0"
    frac = "".join(str(unicodedata.digit(ch)) for ch in frac).rstrip("0")
    if whole == "0" and not frac:
        sign = ""
    return sign + whole + ("." + frac if frac else "")


NORMALIZATIONS = {
    "strip": str.strip,
    "lower": str.lower,
    "strip_punct": _strip_punct,  # punctuation and whitespace at both ends
    "number": _number,  # the first number, canonical; put it last (strip_punct would eat "-")
}


def normalize_answer(text: str, names: Iterable[str]) -> str:
    """Apply the named normalisations in order. Unknown names are a bug (templates validate)."""
    for name in names:
        text = NORMALIZATIONS[name](text)
    return text


REGEX_SECONDS = 1.0  # per search of one text: enough for any sane pattern, and a bound on a bad one


def compile_user_regex(pattern: str, *, field: str, path=None):
    """`pattern` compiled by the `regex` package (re's syntax); DataError naming `field` if invalid."""
    import regex

    try:
        return regex.compile(pattern)
    except (regex.error, ValueError, OverflowError, RecursionError, MemoryError) as err:
        raise DataError(f"invalid regular expression {excerpt(pattern)}: {clip(str(err))}", path=path,
                        field=field) from None


def search_user_regex(pattern: str, text: str, *, field: str):
    """The first match of a user's `pattern` in `text`, or None, found within REGEX_SECONDS: a
    pattern that backtracks catastrophically is a DataError naming `field`, not a hung run."""
    try:
        return compile_user_regex(pattern, field=field).search(text, timeout=REGEX_SECONDS)
    except TimeoutError:
        raise DataError(f"regular expression {excerpt(pattern)} ran over {REGEX_SECONDS:g}s on one text "
                        "(nested repeats like (a+)+ backtrack without end); simplify it", field=field) from None


def answer_regex_problem(regex: str) -> str | None:
    """What is wrong with an answer regex, in a few words, or None when it is usable."""
    try:
        groups = compile_user_regex(regex, field="answer.regex").groups
    except DataError as err:
        return str(err).removeprefix("field 'answer.regex': ")
    if groups != 1:
        return f"needs exactly one capture group (the answer), found {groups}"
    return None


def extract_answer(text: str, regex: str | None, normalize: tuple[str, ...] = ()) -> str | None:
    """The answer in a generated `text`, normalised, or None when there is none.

    With a regex, the FIRST match's capture group is the answer: a base model keeps writing
    the document after answering (more "Q: ... A: ... The answer is N." blocks about other
    questions), and an assistant that rambles tends to restate or drift after its first
    conclusion, so the first "The answer is N." is the one that belongs to our question.
    Without a regex, the answer is the first non-blank line, stripped (a direct answer).
    An answer that normalises to blank text counts as no answer.
    """
    if regex is None:
        raw = next((line.strip() for line in text.splitlines() if line.strip()), None)
    else:
        problem = answer_regex_problem(regex)
        if problem:
            raise TemplateError(f"{problem}: {excerpt(regex)}", field="answer.regex")
        match = search_user_regex(regex, text, field="answer.regex")
        raw = match.group(1) if match else None
    if raw is None:
        return None
    answer = normalize_answer(raw, normalize)
    return answer if answer.strip() else None


@dataclass(frozen=True)
class Vote:
    answer: str | None  # the winner; None only when no sample had an answer
    counts: list[tuple[str, int]]  # every distinct answer, most votes first, ties first-seen first
    agreement: float  # winner's votes / all samples (failed extractions included); 0.0 if no winner
    n: int  # samples
    n_valid: int  # samples with an extractable answer


def majority_vote(answers: list[str | None]) -> Vote:
    """Majority vote over self-consistency samples.

    None (no extractable answer) is never a candidate, so it wins only when every sample is
    None. Ties are broken by the answer that appeared FIRST among the samples: deterministic,
    and it favours the sample order the engine produced (seeded), not string order.
    """
    tally: dict[str, int] = {}  # insertion order = first appearance
    for answer in answers:
        if answer is not None:
            tally[answer] = tally.get(answer, 0) + 1
    counts = sorted(tally.items(), key=lambda item: -item[1])  # stable: ties keep first-seen order
    n = len(answers)
    if not counts:
        return Vote(answer=None, counts=[], agreement=0.0, n=n, n_valid=0)
    winner, votes = counts[0]
    return Vote(answer=winner, counts=counts, agreement=votes / n, n=n, n_valid=sum(tally.values()))


SCORE_METHODS = ("exact", "contains", "regex")


def score(output_answer: str | None, expected: str, method: str = "exact") -> bool:
    """Whether an extracted answer is right.

    exact: equal after stripping surrounding whitespace; contains: `expected` occurs in the
    answer; regex: `expected` is a pattern that `re.search` finds in the answer (anchor it
    with ^...$ for a whole-answer match). No answer (None) is never right. Normalise
    `expected` with the template's normalisations first (`normalize_answer`), or a "lower"
    template can never match "Tokyo".
    """
    if method not in SCORE_METHODS:
        raise UsageError(f"unknown scoring method {excerpt(method)}; expected one of: {', '.join(SCORE_METHODS)}")
    if not expected.strip():
        raise DataError("expected answer is empty", field="expected")
    if output_answer is None:
        return False
    if method == "exact":
        return output_answer.strip() == expected.strip()
    if method == "contains":
        return expected.strip() in output_answer
    return search_user_regex(expected, output_answer, field="expected") is not None


_ANSWER_IS = r"[Tt]he answer is:?\s*([^\n]*)"
# 「答えは東京です。」: the claim runs from 答えは to the end of the sentence, less the copula
_ANSWER_IS_JA = r"答えは[:：]?\s*([^\n。]*)"
_COPULA = re.compile(r"\s*(?:です|でした|だ|だった|である)$")
_WHOLE_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def answer_region(text: str) -> str:
    """A model's answer to one question: up to a blank line or the next 'Q:' line (a base model
    often goes on to ask and answer more questions)."""
    text = text.strip()
    for cut in ("\n\n", "\nQ:", "\nQ "):
        if cut in text:
            text = text[: text.index(cut)]
    return text.strip()


def answer_is_right(text: str, expected: str) -> bool:
    """Whether `text` gives the answer `expected` (the toy world's ground truth): THE rule that
    held-out evaluation and every ranking by truth use.

    Only the answer region counts (`answer_region`). The claim is what follows "The answer is",
    else what follows 答えは up to the sentence's end and copula (「答えは２５歳です。」 claims
    "２５歳"), else the first line. A number must equal the expected number ("A hen has 2 legs."
    is right for 2, and 「２５歳」 for 25); a word or phrase must appear in the claim as whole
    words, case-insensitively ("The capital of Ghana is Accra." is right for Accra). Japanese has
    no spaces, so there a word ends where the script changes: 「答えは東京です。」 and a first
    line 「日本の首都は東京です。」 are right for 東京, 「答えは東京都です。」 is not (see `_script`).
    """
    text = answer_region(text)
    claim = extract_answer(text, _ANSWER_IS) or _japanese_claim(text) or extract_answer(text, None)
    if claim is None:
        return False
    if _WHOLE_NUMBER.fullmatch(expected.strip()):
        return normalize_answer(claim, ("number",)) == normalize_answer(expected, ("number",))
    phrase = normalize_answer(expected, ("strip_punct",))
    if not phrase:
        return False
    if phrase.isascii():
        return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", claim, re.IGNORECASE) is not None
    # A Japanese word is whole when the letters around it are of another script (パリ in はパリです).
    return any((i == 0 or _script(claim[i - 1]) != _script(phrase[0]))
               and (i + len(phrase) == len(claim) or _script(claim[i + len(phrase)]) != _script(phrase[-1]))
               for i in _starts(claim.lower(), phrase.lower()))


def _starts(text: str, part: str):
    i = text.find(part)
    while i >= 0:
        yield i
        i = text.find(part, i + 1)


def _script(ch: str) -> str:
    """A letter's script as far as Japanese word ends go: kanji, hiragana, katakana (with ー), other
    letters and digits ("word"), or anything else ("")."""
    if "\u3041" <= ch <= "\u309f":
        return "hiragana"
    if "\u30a0" <= ch <= "\u30ff" or ch in "ーｰ" or "\uff66" <= ch <= "\uff9f":
        return "katakana"
    if unicodedata.name(ch, "").startswith("CJK UNIFIED") or ch in "々〆":
        return "kanji"
    return "word" if ch.isalnum() or ch == "_" else ""


def _japanese_claim(text: str) -> str | None:
    claim = extract_answer(text, _ANSWER_IS_JA, ("strip_punct",))
    return claim and (normalize_answer(_COPULA.sub("", claim), ("strip_punct",)) or None)


def truth_ranks(texts: list[str], expected: str) -> tuple[str, list[int | None]]:
    """(status, ranks) of a ranking by truth: right answers (rank 1) above wrong ones (rank 2),
    ties within each group; ("all_bad", no ranks) when none is right."""
    right = [answer_is_right(text, expected) for text in texts]
    if not any(right):
        return "all_bad", [None] * len(texts)
    return "ranked", [1 if r else 2 for r in right]
