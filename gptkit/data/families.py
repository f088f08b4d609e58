"""The toy world's families: single-hop facts a tiny model memorises, questions that compose two.

Why this part of the world exists: written-out steps help a small transformer when the answer
needs two facts that were never seen together (Balesni et al., "The Two-Hop Curse"; Prystawski
et al., "Why think step by step?"). So the world has children, their mothers and fathers, the
town each family lives in and each parent's job, and the corpus states every fact on its own
(one fact per document, in several wordings): "Tavi's mother is Lusa." and, elsewhere, "Lusa
lives in Elmstead." A question such as "In which town do Tavi's parents live?" needs both. Its
written chain repeats the facts' own wordings ("Tavi's mother is Lusa, who lives in Elmstead.
The answer is Elmstead."), and the town question has two routes (through the mother or through
the father), so sampled chains fail independently, which is what voting needs.

Held out by FAMILY, a fixed rule that no seed changes: the first `N_DEMO_FAMILIES` families are
demo families, whose composed questions, chains and answers appear in the corpus, the SFT chats
and the shipped templates' examples; the other `N_TEST_FAMILIES` are test families, whose
single-hop facts are trained like any other fact but whose compositions appear in no training
text of any seed. Towns and jobs are dealt round-robin, so a guess is right ~1 time in 10.

The world itself (names, families, towns, jobs) is a constant: built from `WORLD_SEED`, never
from a corpus seed, so templates can name demo people. Corpus seeds only choose which facts,
wordings and genres are drawn.

Must not know: tokenizers, tensors, models, files.
"""

import random
from dataclasses import dataclass
from functools import lru_cache

WORLD_SEED = 20241
N_DEMO_FAMILIES = 6
N_TEST_FAMILIES = 17
CHILDREN_PER_FAMILY = 6
N_STRANGERS = 150  # names of made-up people (`made_up_key`)

TOWNS = ("Oakley", "Riverton", "Hillcrest", "Lakeview", "Stonebridge", "Westmoor", "Ashdale", "Brookfield",
         "Pinehurst", "Elmstead")
JOBS = ("baker", "doctor", "farmer", "teacher", "nurse", "builder", "painter", "pilot", "fisher", "tailor")

_ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "j", "w")
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = ("", "", "", "n", "r", "l", "s")
_TAKEN = {"Kit", "Ken", "Tom", "Sam", "Ben", "Leo", "Max", "Dan", "Jack", "Noah", "Omar", "Mia", "Ann", "Lily",
          "Emma", "Zoe", "Sara", "Ruby", "Nina", "Amy", "Lucy", "Lima", "Rome", "Oslo", "Suva", "Doha",
          "Metal", "Vile", "Nona", "Mama", "Papa", "Baba", "Dada", "Nana", "Lola", "Sofa", "Tuna", "Pizza", "Soda",
          "Viper", "Nigel", "Tina", "Gaba", "Papi"}


@dataclass(frozen=True)
class Family:
    mother: str
    father: str
    children: tuple[str, ...]
    town: str
    jobs: tuple[str, str]  # (mother's job, father's job)
    demo: bool


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str  # "mother" | "father" (subject is a child) | "town" | "job" (subject is a parent)
    value: str


@dataclass(frozen=True)
class Composed:
    """A question that needs two facts, with every route to its answer written out as a chain."""

    question: str
    answer: str
    hops: tuple[tuple[Fact, Fact], ...]  # each route: (child -> parent, parent -> answer)
    child: str
    demo: bool

    @property
    def chains(self) -> tuple[str, ...]:
        """Each route written out: "A's mother is M, who lives in T. The answer is T." """
        return tuple(chain(*h) for h in self.hops)


def _names(rng: random.Random, n: int) -> list[str]:
    """`n` distinct made-up first names (two syllables, maybe a final consonant): no surname, so
    nothing in a name gives its family away."""
    names: list[str] = []
    seen = set(_TAKEN)
    while len(names) < n:
        name = (rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_ONSETS) + rng.choice(_VOWELS)
                + rng.choice(_CODAS)).capitalize()
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


@lru_cache(maxsize=1)
def families() -> tuple[Family, ...]:
    """Every family, demo families first; a constant of the world."""
    rng = random.Random(WORLD_SEED)
    n = N_DEMO_FAMILIES + N_TEST_FAMILIES
    names = iter(_names(rng, n * (2 + CHILDREN_PER_FAMILY)))
    towns = [TOWNS[i % len(TOWNS)] for i in range(n)]
    mother_jobs = [JOBS[i % len(JOBS)] for i in range(n)]
    father_jobs = [JOBS[(i + 3) % len(JOBS)] for i in range(n)]
    for deal in (towns, mother_jobs, father_jobs):
        rng.shuffle(deal)
    return tuple(Family(mother=next(names), father=next(names),
                        children=tuple(next(names) for _ in range(CHILDREN_PER_FAMILY)),
                        town=towns[i], jobs=(mother_jobs[i], father_jobs[i]), demo=i < N_DEMO_FAMILIES)
                 for i in range(n))


def facts() -> list[Fact]:
    """Every single-hop fact of the world (test families' included: only compositions are held out)."""
    out = []
    for f in families():
        for child in f.children:
            out += [Fact(child, "mother", f.mother), Fact(child, "father", f.father)]
        for parent, job in zip((f.mother, f.father), f.jobs):
            out += [Fact(parent, "town", f.town), Fact(parent, "job", job)]
    return out


# ----------------------------------------------------------------------------- sentences

# The first form of each relation is the one chains use; the others are paraphrases.
FACT_FORMS = {
    "mother": ("{s}'s mother is {v}.", "{v} is {s}'s mother.", "The mother of {s} is {v}.",
               "{s} is the child of {v}, {s}'s mother."),
    "father": ("{s}'s father is {v}.", "{v} is {s}'s father.", "The father of {s} is {v}.",
               "{s} is the child of {v}, {s}'s father."),
    "town": ("{s} lives in {v}.", "{s}'s home is in {v}.", "{s} has a house in {v}.", "The town where {s} lives is {v}.",
             "Meet {s}, who lives in {v}."),
    "job": ("{s} is a {v}.", "{s} works as a {v}.", "{s}'s job: {v}.", "By trade, {s} is a {v}.",
            "Meet {s}, who is a {v}."),
}
RELATIVE = -1  # the form a chain's second hop repeats, as a clause on the parent: "Lusa, who lives in Elmstead."
# Single-hop questions: what answer keys, quiz sheets and chats ask (hop-1/hop-2 evals ask the first form).
FACT_QUESTIONS = {
    "mother": ("Who is {s}'s mother?", "What is the name of {s}'s mother?"),
    "father": ("Who is {s}'s father?", "What is the name of {s}'s father?"),
    "town": ("Where does {s} live?", "In which town does {s} live?"),
    "job": ("What is {s}'s job?", "What does {s} do for a living?"),
}
COMPOSED_QUESTIONS = {  # composed question form -> (relations it may go through, attribute)
    "town": ("In which town do {c}'s parents live?", ("mother", "father"), "town"),
    "mother-job": ("What is the job of {c}'s mother?", ("mother",), "job"),
    "father-job": ("What is the job of {c}'s father?", ("father",), "job"),
}


def fact_sentence(fact: Fact, form: int = 0) -> str:
    return FACT_FORMS[fact.relation][form].format(s=fact.subject, v=fact.value)


def chain(first: Fact, second: Fact) -> str:
    """The written-out steps of a composition: the first hop's sentence, the second hop as a
    clause on the parent just named, then the answer. "Tavi's mother is Lusa, who lives in
    Elmstead. The answer is Elmstead." The clause form is one of the facts' own wordings
    ("Meet Lusa, who lives in Elmstead."), so the step is recalled, not invented, and the model
    looks the fact up right after the parent's name instead of having to copy that name to the
    start of a new sentence (which a model this small, trained for minutes, cannot yet do)."""
    clause = fact_sentence(second, RELATIVE).removeprefix(f"Meet {second.subject}")
    return f"{fact_sentence(first)[:-1]}{clause} The answer is {second.value}."


def _parent(family: Family, relation: str) -> str:
    return family.mother if relation == "mother" else family.father


def _attribute(family: Family, relation: str, attribute: str) -> str:
    return family.town if attribute == "town" else family.jobs[0 if relation == "mother" else 1]


def composed(demo: bool | None = None) -> list[Composed]:
    """Every composed question (town, mother's job, father's job for each child), demo, test or both."""
    out = []
    for f in families():
        if demo is not None and f.demo != demo:
            continue
        for child in f.children:
            for form, relations, attribute in COMPOSED_QUESTIONS.values():
                answer = _attribute(f, relations[0], attribute)
                hops = tuple((Fact(child, rel, _parent(f, rel)), Fact(_parent(f, rel), attribute, answer))
                             for rel in relations)
                out.append(Composed(form.format(c=child), answer, hops, child, f.demo))
    return out


def held_out_texts() -> list[str]:
    """What no training text may contain: each test composition's question, each of its chains,
    and each pair of hop sentences as the chain writes them."""
    out = []
    for c in composed(demo=False):
        out.append(c.question)
        for written in c.chains:
            out.append(written)
            out.append(written.rsplit(" The answer is", 1)[0])  # the two hops, without the answer
    return out


# ----------------------------------------------------------------------------- documents


def fact_document(rng: random.Random) -> str:
    """One fact in one of its wordings: the only way test families' facts reach the corpus.
    Half are a child's parent, half a parent's town or job: there are three times as many of
    the first, and the second are slower to learn (ten towns, ten jobs, easily confused)."""
    fact = rng.choice(_hop_facts()[rng.random() < 0.5])
    return fact_sentence(fact, rng.randrange(len(FACT_FORMS[fact.relation])))


@lru_cache(maxsize=1)
def _all_facts() -> tuple[Fact, ...]:
    return tuple(facts())


@lru_cache(maxsize=1)
def _hop_facts() -> tuple[tuple[Fact, ...], tuple[Fact, ...]]:
    """(parents' names, parents' towns and jobs)."""
    return (tuple(f for f in _all_facts() if f.relation in ("mother", "father")),
            tuple(f for f in _all_facts() if f.relation in ("town", "job")))


PARENTS_QUESTION = "Who are {c}'s parents?"


def parents_answer(child: str) -> str:
    """Both of a child's hop-1 facts: "X's mother is M. X's father is F." (no composition)."""
    f = next(f for f in families() if child in f.children)
    return f"{fact_sentence(Fact(child, 'mother', f.mother))} {fact_sentence(Fact(child, 'father', f.father))}"


@lru_cache(maxsize=1)
def _children() -> tuple[str, ...]:
    return tuple(c for f in families() for c in f.children)


def fact_question(rng: random.Random) -> tuple[str, str, str]:
    """(question, short answer, answer sentence) for a random single-hop fact."""
    fact = rng.choice(_all_facts())
    question = rng.choice(FACT_QUESTIONS[fact.relation]).format(s=fact.subject)
    return question, fact.value, fact_sentence(fact)


def demo_composed(rng: random.Random) -> Composed:
    return rng.choice(_demo())


@lru_cache(maxsize=1)
def _demo() -> tuple[Composed, ...]:
    return tuple(composed(demo=True))


def _composes(a: Fact, b: Fact) -> bool:
    """Whether two facts are the two hops of one composed question."""
    return any(x.relation in ("mother", "father") and y.relation in ("town", "job") and x.value == y.subject
               for x, y in ((a, b), (b, a)))


def answer_key(rng: random.Random) -> str:
    """A family answer key: single-hop Q/A about anyone, and now and then a demo composition,
    always worked out (a direct answer to one would train composing without steps, the skill
    the toy world shows a small model lacks). Never two hops of one composition in one key."""
    worked = rng.random() < 0.6
    lines = [rng.choice(("Answer key: families", "Family quiz answers", "Who is who: answers", "Answers"))]
    chosen: list[Fact] = []
    for _ in range(rng.randint(4, 10)):  # long enough that the later positions of a few-shot prompt are trained
        pick = rng.random()
        if pick < 0.25:
            c = demo_composed(rng)
            lines += [f"Q: {c.question}", f"A: {rng.choice(c.chains)}"]
            continue
        if pick < 0.4:
            child = rng.choice(_children())
            f = next(f for f in families() if child in f.children)
            pair = [Fact(child, "mother", f.mother), Fact(child, "father", f.father)]
            if any(_composes(fact, other) for fact in pair for other in chosen):
                continue
            chosen += pair
            lines += [f"Q: {PARENTS_QUESTION.format(c=child)}", f"A: {parents_answer(child)}"]
            continue
        fact = rng.choice(_all_facts())
        if any(_composes(fact, other) for other in chosen):
            continue
        chosen.append(fact)
        question = rng.choice(FACT_QUESTIONS[fact.relation]).format(s=fact.subject)
        lines += [f"Q: {question}", f"A: {fact_sentence(fact) if worked else fact.value}"]
    return "\n".join(lines)


@lru_cache(maxsize=1)
def _world_names() -> frozenset[str]:
    return frozenset(n for f in families() for n in (f.mother, f.father, *f.children))


@lru_cache(maxsize=1)
def _strangers() -> tuple[str, ...]:
    """A fixed pool of names that belong to no one in the world. Each is used often enough to
    become one token, like the world's names, so copying one is what copying a world name is."""
    rng = random.Random(WORLD_SEED + 1)
    return tuple(n for n in _names(rng, N_STRANGERS + len(_world_names())) if n not in _world_names())[:N_STRANGERS]


def _made_up_family(rng: random.Random) -> Family:
    """A family that is not in the world: strangers' names in a fresh draw, any town and jobs."""
    names = rng.sample(_strangers(), 4)
    return Family(mother=names[0], father=names[1], children=tuple(names[2:]), town=rng.choice(TOWNS),
                  jobs=(rng.choice(JOBS), rng.choice(JOBS)), demo=True)


def _made_up_composition(rng: random.Random, f: Family) -> tuple[str, tuple[Fact, Fact]]:
    """A composed question about `f`'s first child, and the two hops that answer it."""
    form, relations, attribute = rng.choice(list(COMPOSED_QUESTIONS.values()))
    rel = rng.choice(relations)
    child = f.children[0]
    return form.format(c=child), (Fact(child, rel, _parent(f, rel)),
                                  Fact(_parent(f, rel), attribute, _attribute(f, rel, attribute)))


def made_up_key(rng: random.Random) -> str:
    """Worked two-hop answers about made-up people, each family used once: where a small model
    learns to write a chain with the child's name taken from the question, since no made-up
    chain can be remembered. The world's demo chains alone are few enough to be learned by
    heart, and then a test child's chain comes out with a demo child's name in it. Strangers
    are no one in the world, so no test composition is shown, and their relations are drawn
    afresh in every answer."""
    lines = [rng.choice(("Worked answers", "Family puzzles: answers", "Answers, with working"))]
    for _ in range(rng.randint(1, 4)):
        f = _made_up_family(rng)
        child = f.children[0]
        if rng.random() < 0.2:
            lines += [f"Q: {PARENTS_QUESTION.format(c=child)}", f"A: {fact_sentence(Fact(child, 'mother', f.mother))} "
                      f"{fact_sentence(Fact(child, 'father', f.father))}"]
            continue
        question, hops = _made_up_composition(rng, f)
        lines += [f"Q: {question}", f"A: {chain(*hops)}"]
    return "\n".join(lines)


def quiz_questions(rng: random.Random, n: int) -> list[str]:
    """Unanswered family questions for quiz sheets: single-hop ones, and demo compositions."""
    return [demo_composed(rng).question if rng.random() < 0.2 else fact_question(rng)[0] for _ in range(n)]


# ----------------------------------------------------------------------------- chats

STEP_BY_STEP = "Think step by step."
JUST_THE_ANSWER = ("Give just the answer.", "Answer with just the answer.", "Just the answer, please.")


def stranger_question(rng: random.Random) -> Composed:
    """A composed question about strangers, the facts it needs (and one more) stated first.

    Taught demo chains alone are learned by heart: an assistant trained on them writes a test
    child's first hop as the single fact it memorised ("Gemis's mother is Dida.") and stops
    there. Strangers' chains are new every time and their facts are on the page, so what is
    learned from them is the chain's form: the child from the question, its parent, then the
    parent's clause and the answer. Strangers are no one in the world, so no test composition
    is shown."""
    f = _made_up_family(rng)
    question, hops = _made_up_composition(rng, f)
    child, other = f.children[0], "father" if hops[0].relation == "mother" else "mother"
    given = [fact_sentence(x, rng.randrange(len(FACT_FORMS[x.relation])))
             for x in (*hops, Fact(child, other, _parent(f, other)))]
    rng.shuffle(given)
    return Composed(f"{' '.join(given)} {question}", hops[1].value, (hops,), child, True)


def stranger_exchange(rng: random.Random) -> tuple[str, str]:
    """`stranger_question` asked step by step, answered with its chain."""
    c = stranger_question(rng)
    return f"{c.question}{rng.choice((' ', chr(10)))}{STEP_BY_STEP}", c.chains[0]


def exchange(rng: random.Random) -> tuple[str, str]:
    """One (user, assistant) turn about the families. A bare composed question is answered
    directly, as a person would; asked to think step by step, the assistant writes the chain."""
    pick = rng.random()
    if pick < 0.4:
        question, _, sentence = fact_question(rng)
        return question, sentence
    if pick < 0.55:  # the opening of every chain, for any child: copy the name, then its parent
        child = rng.choice(_children())
        return PARENTS_QUESTION.format(c=child), parents_answer(child)
    if pick < 0.7:
        return stranger_exchange(rng)
    c = demo_composed(rng)
    style = rng.random()
    if style < 0.45:
        return f"{c.question}{rng.choice((' ', chr(10)))}{STEP_BY_STEP}", rng.choice(c.chains)
    if style < 0.7:
        return f"{c.question} {rng.choice(JUST_THE_ANSWER)}", f"The answer is {c.answer}."
    return c.question, f"The answer is {c.answer}."


# ----------------------------------------------------------------------------- evaluation


def two_hop_questions() -> list[Composed]:
    """The held-out composed questions: every test child's three."""
    return composed(demo=False)


def hop_questions(hop: int) -> list[tuple[str, str]]:
    """(question, answer) for each single hop the test compositions rest on: hop 1 asks each
    test child's mother and father, hop 2 each test parent's town and job. A chain can only be
    as right as its hops."""
    out = []
    for f in families():
        if f.demo:
            continue
        if hop == 1:
            for child in f.children:
                out += [(FACT_QUESTIONS[rel][0].format(s=child), _parent(f, rel)) for rel in ("mother", "father")]
        else:
            for rel in ("mother", "father"):
                parent = _parent(f, rel)
                out += [(FACT_QUESTIONS["town"][0].format(s=parent), f.town),
                        (FACT_QUESTIONS["job"][0].format(s=parent), _attribute(f, rel, "job"))]
    return out
