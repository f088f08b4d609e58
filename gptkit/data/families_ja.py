"""The families of the toy world, written in Japanese: the same people, the same facts, the same
held-out split as `families.py`, in sentences a Japanese reader would write.

Built on `families.py`, never beside it: the families, strangers, towns and jobs are the English
module's (`families.families()`, `_strangers()`, `_made_up_family`), and each English string is
rendered through one fixed table (`ja`): made-up names become katakana syllable by syllable
(`katakana`, injective on every world and stranger name, checked at import), towns become
Japanese town names, jobs Japanese job words. So a fact, a demo/test split or a held-out
composition here is the English one, and only its wording differs.

Wordings. Documents are plain style (だ/である); what the assistant says is polite (です/ます).
Each fact has several wordings; the first is the one a chain opens with ("ミラの母はヒホーだ。").

The chain. A chain is まず ("first"), the first hop without the child the question names and
without its closing "だ。", then the second hop as a clause on the parent just named, then the
answer (see `chain`):
    「まず、母はヒホー、松原に住んでいます。答えは松原です。」  (ミラの両親はどの町に住んでいますか？)
    「まず、父はセドー、漁師をしています。答えは漁師です。」  (ゴロの父の仕事は何ですか？)
The clause is one of the facts' own wordings, the introduction form "こちらはヒホー、松原に住んで
います。" (`RELATIVE`, the Japanese counterpart of "Meet Lusa, who lives in Elmstead."): as in
English, the model looks the fact up right after the parent's name instead of copying the name
to the start of a new sentence ("ヒホーは松原に…"), which a model this small cannot yet do.
Japanese relative clauses come BEFORE their noun ("松原に住んでいるヒホー"), which would put the
answer before the parent is named; the apposition "ヒホー、…" keeps the English order.

Must not know: tokenizers, tensors, models, files.
"""

import random
from dataclasses import dataclass
from functools import lru_cache

from gptkit.data import families as en
from gptkit.data.families import Fact, Family

TOWNS = {"Oakley": "樫野町", "Riverton": "川辺町", "Hillcrest": "緑ヶ丘", "Lakeview": "湖台", "Stonebridge": "石橋町",
         "Westmoor": "西原", "Ashdale": "桜谷", "Brookfield": "竹田", "Pinehurst": "松原", "Elmstead": "楡町"}
JOBS = {"baker": "パン屋", "doctor": "医者", "farmer": "農家", "teacher": "先生", "nurse": "看護師",
        "builder": "大工", "painter": "画家", "pilot": "パイロット", "fisher": "漁師", "tailor": "仕立て屋"}

# Made-up names are onset-vowel-onset-vowel(-coda) (families._names). l and r share the ラ row,
# as Japanese writes both; the names that would then collide are checked for below.
_KANA_ROWS = {  # onset -> kana for a, i, u, e, o
    "b": "バ ビ ブ ベ ボ", "d": "ダ ディ ドゥ デ ド", "f": "ファ フィ フ フェ フォ", "g": "ガ ギ グ ゲ ゴ",
    "h": "ハ ヒ ヒュ ヘ ホ", "k": "カ キ ク ケ コ", "l": "ラ リ ル レ ロ", "m": "マ ミ ム メ モ", "n": "ナ ニ ヌ ネ ノ",
    "p": "パ ピ プ ペ ポ", "r": "ラ リ ル レ ロ", "s": "サ シ ス セ ソ", "t": "タ ティ トゥ テ ト",
    "v": "ヴァ ヴィ ヴ ヴェ ヴォ", "z": "ザ ズィ ズ ゼ ゾ", "j": "ジャ ジ ジュ ジェ ジョ", "w": "ワ ウィ ウ ウェ ウォ",
}
_CODAS = {"": "", "n": "ン", "r": "ー", "l": "ル", "s": "ス"}  # "Hihor" -> ヒホー, as "Peter" -> ピーター


def katakana(name: str) -> str:
    """A made-up name in katakana: "Mira" -> "ミラ", "Hihor" -> "ヒホー", "Wenal" -> "ウェナル"."""
    s = name.lower()
    assert len(s) in (4, 5) and s[0] in _KANA_ROWS and s[2] in _KANA_ROWS, name
    kana = [_KANA_ROWS[s[i]].split()["aiueo".index(s[i + 1])] for i in (0, 2)]
    return "".join(kana) + _CODAS[s[4:]]


@lru_cache(maxsize=1)
def _table() -> dict[str, str]:
    """English -> Japanese for every name, town and job of the world."""
    names = sorted(en._world_names() | set(en._strangers()))
    table = {n: katakana(n) for n in names}
    # Injective on the world: no two people (world or strangers) share a Japanese name.
    assert len(set(table.values())) == len(table), "two names collide in katakana"
    return table | TOWNS | JOBS


def ja(text: str) -> str:
    """The Japanese of one of the world's names, towns or jobs."""
    return _table()[text]


def ja_fact(f: Fact) -> Fact:
    return Fact(ja(f.subject), f.relation, ja(f.value))


def ja_family(f: Family) -> Family:
    return Family(mother=ja(f.mother), father=ja(f.father), children=tuple(map(ja, f.children)), town=ja(f.town),
                  jobs=(ja(f.jobs[0]), ja(f.jobs[1])), demo=f.demo)


@lru_cache(maxsize=1)
def families() -> tuple[Family, ...]:
    """`families.families()` in Japanese: demo families first, same order."""
    return tuple(map(ja_family, en.families()))


# ----------------------------------------------------------------------------- sentences

# The first form of each relation is the one chains open with; the others are paraphrases.
FACT_FORMS = {
    "mother": ("{s}の母は{v}だ。", "{v}は{s}の母だ。", "{s}のお母さんは{v}である。", "{s}は{v}の子で、{v}が{s}の母親だ。"),
    "father": ("{s}の父は{v}だ。", "{v}は{s}の父だ。", "{s}のお父さんは{v}である。", "{s}は{v}の子で、{v}が{s}の父親だ。"),
    "town": ("{s}は{v}に住んでいる。", "{s}の家は{v}にある。", "{s}は{v}に家を持っている。", "{s}が住んでいる町は{v}だ。",
             "こちらは{s}、{v}に住んでいます。"),
    "job": ("{s}は{v}だ。", "{s}は{v}として働いている。", "{s}の仕事：{v}。", "{s}の職業は{v}である。",
            "こちらは{s}、{v}をしています。"),
}
RELATIVE = -1  # the form a chain's second hop repeats, as a clause on the parent: "ヒホー、松原に住んでいます。"
# What the assistant says when asked one fact: the first form, polite.
POLITE_FORMS = {"mother": "{s}の母は{v}です。", "father": "{s}の父は{v}です。", "town": "{s}は{v}に住んでいます。",
                "job": "{s}は{v}です。"}
FACT_QUESTIONS = {  # hop-1/hop-2 evals ask the first form
    "mother": ("{s}の母は誰ですか？", "{s}のお母さんの名前は何ですか？"),
    "father": ("{s}の父は誰ですか？", "{s}のお父さんの名前は何ですか？"),
    "town": ("{s}はどの町に住んでいますか？", "{s}はどこに住んでいますか？"),
    "job": ("{s}の仕事は何ですか？", "{s}はどんな仕事をしていますか？"),
}
COMPOSED_QUESTIONS = {  # the same keys as families.COMPOSED_QUESTIONS
    "town": "{c}の両親はどの町に住んでいますか？",
    "mother-job": "{c}の母の仕事は何ですか？",
    "father-job": "{c}の父の仕事は何ですか？",
}
PARENTS_QUESTION = "{c}の両親は誰ですか？"
# The answer keys' labels: the ones templates.render_base writes ("Q: ...\nA:"), so a few-shot
# prompt to a base model looks like the keys it read. Japanese keys often say Q/A too.
QA = ("Q: ", "A: ")
ANSWER = "答えは{a}です。"


def fact_sentence(fact: Fact, form: int = 0) -> str:
    return FACT_FORMS[fact.relation][form].format(s=fact.subject, v=fact.value)


def polite_sentence(fact: Fact) -> str:
    return POLITE_FORMS[fact.relation].format(s=fact.subject, v=fact.value)


# Every chain opens with まず ("first"), as a Japanese answer that works something out does. It
# also tells a small model which answer it is writing: a one-fact answer 「ミラの母はヒホーです。」
# and a chain shared their words up to the parent's name, and without a mark of their own the
# model, trained for minutes, ended chains there (measured: step by step 17-21% of two-hop
# questions right, most wrong chains stopping at 「…の父はタフォンです。」).
CHAIN_OPENER = "まず、"


def chain(first: Fact, second: Fact) -> str:
    """「まず、母はヒホー、松原に住んでいます。答えは松原です。」: the opener, the first hop's sentence
    without the child (the question names it, and Japanese leaves a known topic unsaid) and
    without its "だ。", the second hop's introduction form without "こちらは{parent}", the answer.

    Measured with the child written out (「まず、ミラの母はヒホー、…」): the quickstart's assistant
    named the right parent even where it wrote the wrong child (another family's child, or a
    word such as 動物), and the wrong child's name then led it to that child's parent; the
    step-by-step cell was 27%. The parent is recalled from the question's child either way."""
    clause = fact_sentence(second, RELATIVE).removeprefix(f"こちらは{second.subject}")
    hop = fact_sentence(first).removeprefix(f"{first.subject}の").removesuffix("だ。")
    return f"{CHAIN_OPENER}{hop}{clause}{ANSWER.format(a=second.value)}"


def _question(hops: tuple[Fact, Fact]) -> str:
    """The composed question two hops answer (the English key follows from the hops' relations)."""
    key = "town" if hops[1].relation == "town" else f"{hops[0].relation}-job"
    return COMPOSED_QUESTIONS[key].format(c=hops[0].subject)


@dataclass(frozen=True)
class Composed(en.Composed):
    @property
    def chains(self) -> tuple[str, ...]:
        return tuple(chain(*h) for h in self.hops)


def _ja_composed(c: en.Composed) -> Composed:
    hops = tuple((ja_fact(a), ja_fact(b)) for a, b in c.hops)
    return Composed(_question(hops[0]), ja(c.answer), hops, ja(c.child), c.demo)


def composed(demo: bool | None = None) -> list[Composed]:
    """`families.composed` in Japanese, same order."""
    return [_ja_composed(c) for c in en.composed(demo)]


def held_out_texts() -> list[str]:
    """What no training text may contain: each test composition's question, each of its chains,
    and each chain without its opener and answer (the two hops as the chain writes them)."""
    out = []
    for c in composed(demo=False):
        out.append(c.question)
        for written in c.chains:
            out += [written, written.removeprefix(CHAIN_OPENER).rsplit("答えは", 1)[0]]
    return out


# ----------------------------------------------------------------------------- documents


@lru_cache(maxsize=1)
def _all_facts() -> tuple[Fact, ...]:
    return tuple(map(ja_fact, en._all_facts()))


@lru_cache(maxsize=1)
def _hop_facts() -> tuple[tuple[Fact, ...], tuple[Fact, ...]]:
    return tuple(tuple(map(ja_fact, facts)) for facts in en._hop_facts())


@lru_cache(maxsize=1)
def _children() -> tuple[str, ...]:
    return tuple(map(ja, en._children()))


@lru_cache(maxsize=1)
def _demo() -> tuple[Composed, ...]:
    return tuple(composed(demo=True))


def fact_document(rng: random.Random) -> str:
    """One fact in one of its wordings, drawn as `families.fact_document` draws."""
    fact = rng.choice(_hop_facts()[rng.random() < 0.5])
    return fact_sentence(fact, rng.randrange(len(FACT_FORMS[fact.relation])))


def parents_answer(child: str, family: Family | None = None) -> str:
    """「ミラの母はヒホーです。ミラの父はディデンです。」 (both hop-1 facts, no composition)."""
    f = family or next(f for f in families() if child in f.children)
    return polite_sentence(Fact(child, "mother", f.mother)) + polite_sentence(Fact(child, "father", f.father))


def fact_question(rng: random.Random) -> tuple[str, str, str]:
    """(question, short answer, polite answer sentence) for a random single-hop fact."""
    fact = rng.choice(_all_facts())
    question = rng.choice(FACT_QUESTIONS[fact.relation]).format(s=fact.subject)
    return question, fact.value, polite_sentence(fact)


def demo_composed(rng: random.Random) -> Composed:
    return rng.choice(_demo())


def answer_key(rng: random.Random) -> str:
    """A family answer key, built as `families.answer_key` builds one: single-hop Q/A about
    anyone and now and then a worked demo composition, never two hops of one composition."""
    q, a = QA
    worked = rng.random() < 0.6
    lines = [rng.choice(("解答：家族クイズ", "家族クイズの答え", "だれがだれ？ 答え", "答え"))]
    chosen: list[Fact] = []
    for _ in range(rng.randint(4, 10)):
        pick = rng.random()
        if pick < 0.25:
            c = demo_composed(rng)
            lines += [q + c.question, a + rng.choice(c.chains)]
            continue
        if pick < 0.4:
            child = rng.choice(_children())
            f = next(f for f in families() if child in f.children)
            pair = [Fact(child, "mother", f.mother), Fact(child, "father", f.father)]
            if any(en._composes(fact, other) for fact in pair for other in chosen):
                continue
            chosen += pair
            lines += [q + PARENTS_QUESTION.format(c=child), a + parents_answer(child)]
            continue
        fact = rng.choice(_all_facts())
        if any(en._composes(fact, other) for other in chosen):
            continue
        chosen.append(fact)
        question = rng.choice(FACT_QUESTIONS[fact.relation]).format(s=fact.subject)
        lines += [q + question, a + (fact_sentence(fact) if worked else fact.value)]
    return "\n".join(lines)


def _made_up(rng: random.Random) -> tuple[Family, str, tuple[Fact, Fact]]:
    """A made-up family (strangers), drawn by the English module, and a composition about it."""
    f = en._made_up_family(rng)
    _, hops = en._made_up_composition(rng, f)
    hops = (ja_fact(hops[0]), ja_fact(hops[1]))
    return ja_family(f), _question(hops), hops


def made_up_key(rng: random.Random) -> str:
    """Worked two-hop answers about strangers: where the chain's FORM is learned, since no
    stranger's chain can be remembered (see `families.made_up_key`)."""
    q, a = QA
    lines = [rng.choice(("解き方つきの答え", "家族パズル：答え", "考え方と答え"))]
    for _ in range(rng.randint(1, 4)):
        strangers = en._made_up_family(rng)
        if rng.random() < 0.2:
            f = ja_family(strangers)
            lines += [q + PARENTS_QUESTION.format(c=f.children[0]), a + parents_answer(f.children[0], f)]
            continue
        _, hops = en._made_up_composition(rng, strangers)
        hops = (ja_fact(hops[0]), ja_fact(hops[1]))
        lines += [q + _question(hops), a + chain(*hops)]
    return "\n".join(lines)


def quiz_questions(rng: random.Random, n: int) -> list[str]:
    """Unanswered family questions for quiz sheets: single-hop ones, and demo compositions."""
    return [demo_composed(rng).question if rng.random() < 0.2 else fact_question(rng)[0] for _ in range(n)]


# ----------------------------------------------------------------------------- chats

STEP_BY_STEP = "ステップごとに考えましょう。"
JUST_THE_ANSWER = ("答えだけを書いてください。", "答えだけ教えてください。", "答えだけでお願いします。")


def stranger_question(rng: random.Random) -> Composed:
    """A composed question about strangers, the facts it needs (and one more) stated first
    (see `families.stranger_question`)."""
    f, question, hops = _made_up(rng)
    child = f.children[0]
    other = "father" if hops[0].relation == "mother" else "mother"
    given = [fact_sentence(x, rng.randrange(len(FACT_FORMS[x.relation])))
             for x in (*hops, Fact(child, other, f.mother if other == "mother" else f.father))]
    rng.shuffle(given)
    return Composed("".join(given) + question, hops[1].value, (hops,), child, True)


def stranger_exchange(rng: random.Random) -> tuple[str, str]:
    c = stranger_question(rng)
    return f"{c.question}{rng.choice(('', chr(10)))}{STEP_BY_STEP}", c.chains[0]


def exchange(rng: random.Random) -> tuple[str, str]:
    """One (user, assistant) turn about the families, mixed as `families.exchange` mixes them."""
    pick = rng.random()
    if pick < 0.4:
        question, _, sentence = fact_question(rng)
        return question, sentence
    if pick < 0.55:
        child = rng.choice(_children())
        return PARENTS_QUESTION.format(c=child), parents_answer(child)
    if pick < 0.7:
        return stranger_exchange(rng)
    c = demo_composed(rng)
    style = rng.random()
    if style < 0.45:
        return f"{c.question}{rng.choice(('', chr(10)))}{STEP_BY_STEP}", rng.choice(c.chains)
    if style < 0.7:
        return f"{c.question}{rng.choice(JUST_THE_ANSWER)}", ANSWER.format(a=c.answer)
    return c.question, ANSWER.format(a=c.answer)


# ----------------------------------------------------------------------------- evaluation


def two_hop_questions() -> list[Composed]:
    return composed(demo=False)


def hop_questions(hop: int) -> list[tuple[str, str]]:
    """(question, answer) for each single hop the test compositions rest on, in
    `families.hop_questions` order."""
    out = []
    for f in families():
        if f.demo:
            continue
        if hop == 1:
            for child in f.children:
                out += [(FACT_QUESTIONS["mother"][0].format(s=child), f.mother),
                        (FACT_QUESTIONS["father"][0].format(s=child), f.father)]
        else:
            for parent, job in zip((f.mother, f.father), f.jobs):
                out += [(FACT_QUESTIONS["town"][0].format(s=parent), f.town),
                        (FACT_QUESTIONS["job"][0].format(s=parent), job)]
    return out
