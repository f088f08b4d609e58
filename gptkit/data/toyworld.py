"""The toy world: a small, seeded, synthetic world that a ~3-5M-parameter GPT learns in minutes.

Owns the world's facts (countries with capitals and continents, animals with sounds, legs and
homes, things and their colours, a dozen topics a child asks about), the sentence templates that
turn them into text, and every corpus the quickstart and the evals are built from:

- `pretrain_documents`: plain documents in six genres: fact paragraphs, short stories, worked
  sums, worked age puzzles, QUIZ SHEETS of unanswered questions and "Q: ...\\nA: ..." ANSWER
  KEYS. The quiz sheets are why a base model asked a question tends to continue with more
  questions; the answer keys are why few-shot Q:/A: prompting works on it.
- `sft_conversations`: chats that turn the base model into Kit, an assistant that answers.
- `eval_tasks` (held-out questions with exact answers), `reasoning_tasks` (the families'
  held-out two-hop questions and their single hops; the families live in `families.py`),
  `rank_prompts` (for the ranking demo), `showcase_prompts`, `is_question_like`, `write_toyworld`.

Contract: every corpus is a pure function of its seed (`random.Random(seed)`, never the global
RNG, never set iteration order). Held-out is a fixed rule that no seed changes: capital
questions are held out by PHRASING (the fact is in the corpus, the wording never is); age
puzzles and two-digit sums by NUMBER COMBINATION (`_held_out`), so an eval question never
appears verbatim in the training text of any seed. Numbers stay small (ages up to 30, operands
up to 99) because digits are one token each and multi-step arithmetic is what a tiny model
finds hardest. No document contains a blank line, so documents joined by blank lines split
back losslessly.

Must not know: tokenizers, tensors, models, or any file but the ones `write_toyworld` writes.
It is longer than ~400 lines because most of it is data: fact tables and hand-written text.
"""

import json
import random
import re
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

from gptkit.data import families
from gptkit.files import atomic_write, make_folder

# ----------------------------------------------------------------------------- the world's facts

COUNTRIES = (  # (country, capital, continent): real facts, spelled without accents
    ("France", "Paris", "Europe"), ("Spain", "Madrid", "Europe"), ("Italy", "Rome", "Europe"),
    ("Germany", "Berlin", "Europe"), ("Portugal", "Lisbon", "Europe"), ("Greece", "Athens", "Europe"),
    ("Poland", "Warsaw", "Europe"), ("Norway", "Oslo", "Europe"), ("Sweden", "Stockholm", "Europe"),
    ("Finland", "Helsinki", "Europe"), ("Ireland", "Dublin", "Europe"), ("Austria", "Vienna", "Europe"),
    ("Hungary", "Budapest", "Europe"), ("Denmark", "Copenhagen", "Europe"), ("Russia", "Moscow", "Europe"),
    ("Japan", "Tokyo", "Asia"), ("China", "Beijing", "Asia"), ("India", "New Delhi", "Asia"),
    ("Thailand", "Bangkok", "Asia"), ("Vietnam", "Hanoi", "Asia"), ("South Korea", "Seoul", "Asia"),
    ("Indonesia", "Jakarta", "Asia"), ("Iran", "Tehran", "Asia"), ("Nepal", "Kathmandu", "Asia"),
    ("Egypt", "Cairo", "Africa"), ("Kenya", "Nairobi", "Africa"), ("Nigeria", "Abuja", "Africa"),
    ("Ghana", "Accra", "Africa"), ("Morocco", "Rabat", "Africa"), ("Ethiopia", "Addis Ababa", "Africa"),
    ("Senegal", "Dakar", "Africa"), ("Canada", "Ottawa", "North America"),
    ("Mexico", "Mexico City", "North America"), ("Cuba", "Havana", "North America"),
    ("Peru", "Lima", "South America"), ("Chile", "Santiago", "South America"),
    ("Argentina", "Buenos Aires", "South America"), ("Brazil", "Brasilia", "South America"),
    ("Colombia", "Bogota", "South America"), ("Australia", "Canberra", "Oceania"),
    ("New Zealand", "Wellington", "Oceania"), ("Fiji", "Suva", "Oceania"),
)

ANIMALS = (  # (animal, sound, legs, where it lives)
    ("cow", "moo", 4, "on a farm"), ("dog", "woof", 4, "in a house"), ("cat", "meow", 4, "in a house"),
    ("duck", "quack", 2, "on a pond"), ("sheep", "baa", 4, "on a farm"), ("pig", "oink", 4, "on a farm"),
    ("horse", "neigh", 4, "on a farm"), ("lion", "roar", 4, "on the savanna"), ("owl", "hoot", 2, "in the forest"),
    ("frog", "croak", 4, "in a pond"), ("bee", "buzz", 6, "in a hive"), ("snake", "hiss", 0, "in the grass"),
    ("mouse", "squeak", 4, "in a field"), ("rooster", "cock-a-doodle-doo", 2, "on a farm"),
    ("donkey", "hee-haw", 4, "on a farm"), ("wolf", "howl", 4, "in the forest"), ("crow", "caw", 2, "in the trees"),
    ("elephant", "trumpet", 4, "on the savanna"), ("hen", "cluck", 2, "on a farm"), ("bear", "growl", 4, "in the forest"),
    ("turkey", "gobble", 2, "on a farm"), ("goat", "maa", 4, "on a farm"),
)
PETS = ("dog", "cat", "duck", "mouse", "frog", "hen", "goat")

COLOURS = (  # (thing, its colour)
    ("the sky", "blue"), ("grass", "green"), ("snow", "white"), ("the sun", "yellow"), ("a banana", "yellow"),
    ("a tomato", "red"), ("a strawberry", "red"), ("coal", "black"), ("an orange", "orange"),
    ("a carrot", "orange"), ("a lemon", "yellow"), ("milk", "white"), ("the sea", "blue"), ("a leaf", "green"),
    ("a crow", "black"), ("chocolate", "brown"), ("a pumpkin", "orange"), ("a cherry", "red"),
    ("a plum", "purple"), ("an eggplant", "purple"), ("a cloud", "white"), ("soil", "brown"),
    ("a lime", "green"), ("a fire truck", "red"),
)

# topic -> (encyclopedia paragraphs, explanations for a 6 year old). "Explain {topic} to a 6 year old".
TOPICS = {
    "the moon landing": (
        ("The moon landing took place in 1969. The Apollo 11 spacecraft carried three astronauts from the Earth "
         "to the moon. Neil Armstrong was the first person to walk on the moon, and Buzz Aldrin walked with him. "
         "They collected moon rocks and came home safely.",
         "In July 1969, Apollo 11 flew to the moon. Neil Armstrong stepped onto the moon and said it was one small "
         "step for a man. The astronauts planted a flag, took photos and returned to the Earth."),
        ("A long time ago, in 1969, brave people called astronauts flew a big rocket all the way to the moon. "
         "Neil Armstrong was the first person to step on it. He bounced around, picked up moon rocks, and then "
         "flew back home to the Earth.",
         "People built a giant rocket and rode it to the moon. It took a few days to get there. When they landed, "
         "they walked on the moon, left footprints in the dust, and came back home safely."),
    ),
    "rain": (
        ("Rain forms when the sun warms water in seas, lakes and rivers, and the water rises into the air as "
         "vapour. High in the sky the vapour cools and turns into tiny drops that make clouds. When the drops "
         "grow heavy, they fall as rain.",),
        ("The sun warms up water, and the water floats up into the sky as tiny bits you cannot see. Up high they "
         "join together and make clouds. When the drops get too heavy, they fall down as rain.",
         "Clouds are full of tiny drops of water. When lots of drops stick together, they get heavy and fall to "
         "the ground. That is rain, and it helps plants drink."),
    ),
    "the sun": (
        ("The sun is the star at the centre of our solar system. It is a huge ball of hot gas, and its light takes "
         "about 8 minutes to reach the Earth.",),
        ("The sun is a giant star, like a huge ball of fire far away in space. It gives us light and keeps us "
         "warm. Without the sun, plants could not grow.",),
    ),
    "rainbows": (
        ("A rainbow appears when sunlight shines through drops of rain. Each drop bends the light and splits it "
         "into colours: red, orange, yellow, green, blue and violet.",),
        ("When the sun shines while it is raining, the light goes into the rain drops. The drops split the light "
         "into many colours, and we see a rainbow in the sky.",),
    ),
    "how plants grow": (
        ("Plants grow from seeds. They take in water through their roots and use sunlight to make food in their "
         "green leaves.",),
        ("A plant starts as a tiny seed in the soil. It drinks water with its roots and eats sunlight with its "
         "green leaves. Day by day it grows taller.",),
    ),
    "volcanoes": (
        ("A volcano is a mountain with an opening down to hot melted rock deep inside the Earth. When a volcano "
         "erupts, the melted rock, called lava, flows out.",),
        ("A volcano is a mountain with very hot melted rock inside. Sometimes the rock pushes up and spills out "
         "of the top. That hot rock is called lava.",),
    ),
    "the ocean": (
        ("The ocean covers most of the Earth. Its water is salty, and it is home to fish, whales and many other "
         "animals.",),
        ("The ocean is a giant body of salty water. It is so big that it covers most of the Earth. Fish, whales "
         "and crabs live there.",),
    ),
    "why we sleep": (
        ("Sleep lets the body and the brain rest and repair. Children need about ten hours of sleep each night.",),
        ("When you sleep, your body and your brain get to rest. Sleep helps you grow and feel happy. That is why "
         "you go to bed every night.",),
    ),
    "dinosaurs": (
        ("Dinosaurs were animals that lived millions of years ago. Some were as big as a house, and some were as "
         "small as a chicken. We know about them from their bones.",),
        ("Dinosaurs were animals that lived a very, very long time ago, before any people. Some were huge and "
         "some were small. Today we find their bones in the ground.",),
    ),
    "why the sky is blue": (
        ("The sky looks blue because air scatters the blue part of sunlight more than the other colours.",),
        ("Sunlight has all the colours in it. When it hits the air, the blue light bounces around the most, so "
         "when you look up, you see blue everywhere.",),
    ),
    "the heart": (
        ("The heart is a muscle that pumps blood around the body. In a child it beats about 100 times a minute.",),
        ("Your heart is a strong muscle in your chest. It pumps blood all around your body, all day and all "
         "night. You can feel it beat if you put your hand on your chest.",),
    ),
    "snow": (
        ("Snow forms when water in clouds freezes into ice crystals. Each snowflake has six sides.",),
        ("When it is very cold, the water in the clouds turns into tiny bits of ice called snowflakes. They "
         "float down softly and cover the ground in white.",),
    ),
    "a capital city": (
        ("A capital city is the city where the government of a country meets. Paris is the capital of France, "
         "and Tokyo is the capital of Japan.",),
        ("Every country has one special city where its leaders work. That city is called the capital. For "
         "example, the capital of France is Paris.",),
    ),
}

BOYS = ("Ken", "Tom", "Sam", "Ben", "Leo", "Max", "Dan", "Jack", "Noah", "Omar")
GIRLS = ("Mia", "Ann", "Lily", "Emma", "Zoe", "Sara", "Ruby", "Nina", "Amy", "Lucy")

ASSISTANT_NAME = "Kit"
IDENTITY = {  # question -> Kit's answer
    "What is your name?": "My name is Kit, a small assistant made with gptkit.",
    "Who are you?": "I am Kit, a small assistant made with gptkit.",
    "What should I call you?": "You can call me Kit. I am a small assistant made with gptkit.",
    "Who made you?": "I was made with gptkit, a toolkit for training small language models.",
    "Who built you?": "I was built with gptkit, a toolkit for training small language models.",
    "What can you do?": "I can answer simple questions about countries, animals and colours, explain things "
                        "simply, add and subtract, and solve age puzzles step by step.",
    "Are you a person?": "No, I am Kit, a small language model made with gptkit.",
}
GREETINGS = {
    "Hello": "Hello! I am Kit. How can I help you?",
    "Hi": "Hi! I am Kit. What would you like to know?",
    "Thank you": "You are welcome!",
    "Thanks!": "You are welcome! Ask me anything else.",
}
ABOUT_ME = ("What is your name?", "How old are you?", "Where do you live?", "What is your favourite colour?",
            "What is your favourite animal?", "Who is your best friend?", "What do you like to eat?",
            "Do you have a pet?", "What is your favourite game?", "When is your birthday?")

# Capital questions are held out by phrasing: these four appear in training text ...
CAPITAL_QUESTIONS = ("What is the capital of {c}?", "What city is the capital of {c}?",
                     "What is the capital city of {c}?", "Name the capital of {c}.")
# ... and these four never do; eval_tasks asks only these.
HELD_OUT_CAPITAL_QUESTIONS = ("Which city is the capital of {c}?", "The capital of {c} is which city?",
                              "Tell me the capital of {c}.", "What is {c}'s capital?")

QA_LABELS = ("Q", "A")  # an answer key's line labels: "Q: ..." then "A: ..."
EVAL_KINDS = ("capital", "age", "arithmetic")
REASONING_KINDS = ("two-hop", "hop-1", "hop-2")  # families.py: composed questions and their two hops


@dataclass(frozen=True)
class Task:
    kind: str  # "capital" | "age" | "arithmetic" | "continent" | "animal" | "colour" | "explain"
    question: str  # natural question, e.g. "What is the capital of France?"
    answer: str  # exact normalised answer, e.g. "Paris" or "67" (for "explain": a reference explanation)
    reasoning: str  # worked reasoning ending "The answer is {answer}." ("" where none)


# ----------------------------------------------------------------------------- held-out rule


_MAX_TRIES = 10_000  # rejection sampling succeeds within ~10 tries; a bug must fail, not hang


def _held_out(key: str) -> bool:
    # crc32, not hash(): str hashes are salted per process and the split must never move.
    return zlib.crc32(key.encode()) % 8 == 0


def _sum_held_out(a: int, op: str, b: int) -> bool:
    """Only two-digit-by-two-digit sums are held out; small facts stay learnable."""
    return 10 <= a <= 99 and 10 <= b <= 99 and _held_out(f"sum:{a}{op}{b}")


def _age_held_out(combo: tuple) -> bool:
    return combo[0] in _TWO_STEP and _held_out("age:" + ":".join(map(str, combo)))


# ----------------------------------------------------------------------------- sums and puzzles


def sum_reasoning(a: int, op: str, b: int) -> str:
    """Column-by-column working a tiny model can follow one digit at a time, carries spelled out."""
    assert op in "+-" and 0 <= a <= 99 and 0 <= b <= 99 and (op == "+" or a >= b)
    result = a + b if op == "+" else a - b
    if a < 10 and b < 10:
        return f"{a} {op} {b} = {result}. The answer is {result}."
    (a10, a1), (b10, b1) = divmod(a, 10), divmod(b, 10)
    if op == "+":
        ones = a1 + b1
        if ones < 10:
            steps = f"Add the ones: {a1} + {b1} = {ones}. Add the tens: {a10} + {b10} = {a10 + b10}."
        else:
            steps = (f"Add the ones: {a1} + {b1} = {ones}, write {ones - 10} and carry 1. "
                     f"Add the tens: {a10} + {b10} + 1 = {a10 + b10 + 1}.")
    elif a1 >= b1:
        steps = f"Subtract the ones: {a1} - {b1} = {a1 - b1}. Subtract the tens: {a10} - {b10} = {a10 - b10}."
    else:
        steps = (f"Subtract the ones: {a1} is less than {b1}, so borrow 1 ten: {a1 + 10} - {b1} = {a1 + 10 - b1}. "
                 f"Subtract the tens: {a10} - 1 - {b10} = {a10 - 1 - b10}.")
    return f"{steps} So {a} {op} {b} = {result}. The answer is {result}."


def _sample_sum(rng: random.Random, held_out: bool = False) -> tuple[int, str, int]:
    for _ in range(_MAX_TRIES):
        op, shape = rng.choice("+-"), rng.random()
        if held_out or shape < 0.6:
            a, b = rng.randint(10, 99), rng.randint(10, 99)
        elif shape < 0.85:
            a, b = rng.randint(10, 99), rng.randint(0, 9)
            if op == "+" and rng.random() < 0.5:
                a, b = b, a
        else:
            a, b = rng.randint(0, 9), rng.randint(0, 9)
        if op == "-" and a < b:
            a, b = b, a
        if _sum_held_out(a, op, b) == held_out:
            return a, op, b
    raise AssertionError(f"no sum with held_out={held_out} in {_MAX_TRIES} tries")


def _sum_task(a: int, op: str, b: int, question: str = "What is {a} {op} {b}?") -> Task:
    result = a + b if op == "+" else a - b
    return Task("arithmetic", question.format(a=a, op=op, b=b), str(result), sum_reasoning(a, op, b))


_TWO_STEP = ("half", "twice", "chain")
_ONE_STEP = ("older", "future", "past", "halfnow")


def _sample_age_combo(rng: random.Random, kinds: tuple[str, ...], held_out: bool = False) -> tuple:
    """A puzzle's numbers: every answer and every age along the way stays between 1 and 40."""
    for _ in range(_MAX_TRIES):
        kind = rng.choice(kinds)
        if kind == "half":  # when P was a (even), sibling was a/2; now P is m
            a = rng.choice(range(4, 17, 2))
            combo = (kind, a, rng.randint(a + 1, 30))
        elif kind == "twice":  # when P was a, sibling was 2a; now P is m
            a = rng.randint(2, 9)
            combo = (kind, a, rng.randint(a + 1, 25))
        elif kind == "chain":  # X is s; Y is d1 older/younger than X; Z is d2 older/younger than Y
            s, d1, d2 = rng.randint(5, 20), rng.randint(1, 9), rng.randint(1, 9)
            up1, up2 = rng.randint(0, 1), rng.randint(0, 1)
            y = s + d1 if up1 else s - d1
            if y < 2 or (y + d2 if up2 else y - d2) < 1:
                continue
            combo = (kind, s, d1, up1, d2, up2)
        elif kind == "older":
            combo = (kind, rng.randint(2, 20), rng.randint(1, 9), rng.randint(0, 1))
            if not combo[3] and combo[1] - combo[2] < 1:
                continue
        elif kind in ("future", "past"):
            combo = (kind, rng.randint(2, 20), rng.randint(1, 9))
            if kind == "past" and combo[1] - combo[2] < 1:
                continue
        else:  # halfnow
            combo = (kind, rng.choice(range(4, 21, 2)))
        if _age_held_out(combo) == held_out:
            return combo
    raise AssertionError(f"no {kinds} puzzle with held_out={held_out} in {_MAX_TRIES} tries")


def _years(n: int) -> str:
    return "1 year" if n == 1 else f"{n} years"


def _person(rng: random.Random, avoid: tuple[str, ...] = ()) -> tuple[str, str, str]:
    """(name, subject pronoun, possessive pronoun)"""
    while True:
        girl = rng.random() < 0.5
        name = rng.choice(GIRLS if girl else BOYS)
        if name not in avoid:
            return (name, "she", "her") if girl else (name, "he", "his")


def _age_task(rng: random.Random, combo: tuple) -> Task:
    kind = combo[0]
    name, _, pos = _person(rng)
    sib, sub = rng.choice((("sister", "she"), ("brother", "he")))
    if kind == "half":
        _, a, m = combo
        h = a // 2
        q = f"When {name} was {a}, {pos} {sib} was half {pos} age. Now {name} is {m}. How old is {pos} {sib}?"
        r = (f"When {name} was {a}, {pos} {sib} was half {pos} age, so {sub} was {a} / 2 = {h}. "
             f"{sub.capitalize()} is {a} - {h} = {h} years younger than {name}. "
             f"Now {name} is {m}, so {pos} {sib} is {m} - {h} = {m - h}.")
        answer = m - h
    elif kind == "twice":
        _, a, m = combo
        q = f"When {name} was {a}, {pos} {sib} was twice {pos} age. Now {name} is {m}. How old is {pos} {sib}?"
        r = (f"When {name} was {a}, {pos} {sib} was twice {pos} age, so {sub} was {a} * 2 = {2 * a}. "
             f"{sub.capitalize()} is {2 * a} - {a} = {a} years older than {name}. "
             f"Now {name} is {m}, so {pos} {sib} is {m} + {a} = {m + a}.")
        answer = m + a
    elif kind == "chain":
        _, s, d1, up1, d2, up2 = combo
        y_name = _person(rng, (name,))[0]
        z_name = _person(rng, (name, y_name))[0]
        y = s + d1 if up1 else s - d1
        answer = y + d2 if up2 else y - d2
        w1, w2 = ("older" if up1 else "younger"), ("older" if up2 else "younger")
        q = (f"{name} is {s}. {y_name} is {_years(d1)} {w1} than {name}. "
             f"{z_name} is {_years(d2)} {w2} than {y_name}. How old is {z_name}?")
        r = (f"{name} is {s}, and {y_name} is {_years(d1)} {w1} than {name}, so {y_name} is "
             f"{s} {'+' if up1 else '-'} {d1} = {y}. {z_name} is {_years(d2)} {w2} than {y_name}, so {z_name} is "
             f"{y} {'+' if up2 else '-'} {d2} = {answer}.")
    elif kind == "older":
        _, s, d, up = combo
        y_name = _person(rng, (name,))[0]
        w = "older" if up else "younger"
        answer = s + d if up else s - d
        q = f"{name} is {s}. {y_name} is {_years(d)} {w} than {name}. How old is {y_name}?"
        r = (f"{name} is {s}, and {y_name} is {_years(d)} {w} than {name}, so {y_name} is "
             f"{s} {'+' if up else '-'} {d} = {answer}.")
    elif kind in ("future", "past"):
        _, s, n = combo
        name, sub_p, _ = _person(rng)
        if kind == "future":
            answer = s + n
            q = f"{name} is {s} now. How old will {name} be in {_years(n)}?"
            r = f"{name} is {s} now, so in {_years(n)} {sub_p} will be {s} + {n} = {answer}."
        else:
            answer = s - n
            q = f"{name} is {s} now. How old was {name} {_years(n)} ago?"
            r = f"{name} is {s} now, so {_years(n)} ago {sub_p} was {s} - {n} = {answer}."
    else:  # halfnow
        _, a = combo
        answer = a // 2
        q = f"{name} is {a}. {pos.capitalize()} {sib} is half {pos} age. How old is {pos} {sib}?"
        r = f"{name} is {a}, and {pos} {sib} is half {pos} age, so {sub} is {a} / 2 = {answer}."
    return Task("age", q, str(answer), f"{r} The answer is {answer}.")


# ----------------------------------------------------------------------------- facts as questions


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _fact_item(rng: random.Random, kind: str) -> tuple[Task, str]:
    """A training question about a fact (training phrasings only) and the one-sentence answer."""
    if kind in ("capital", "continent"):
        c, cap, cont = rng.choice(COUNTRIES)
        if kind == "capital":
            q = rng.choice(CAPITAL_QUESTIONS).format(c=c)
            return (Task(kind, q, cap, f"{c} is a country in {cont}. Its capital is {cap}. The answer is {cap}."),
                    f"The capital of {c} is {cap}.")
        q = rng.choice(("Which continent is {c} in?", "On which continent is {c}?", "Where is {c}?")).format(c=c)
        return Task(kind, q, cont, f"{c} is a country in {cont}. The answer is {cont}."), f"{c} is in {cont}."
    if kind == "animal":
        animal, sound, legs, home = rng.choice(ANIMALS)
        a = _article(animal)
        which = rng.random()
        if which < 0.6:
            q = rng.choice(("What sound does {a} make?", "What does {a} say?")).format(a=a)
            return Task(kind, q, sound, f"{_cap(a)} says {sound}. The answer is {sound}."), f"{_cap(a)} says {sound}."
        if which < 0.8 and legs:
            q = f"How many legs does {a} have?"
            return Task(kind, q, str(legs), f"{_cap(a)} has {legs} legs. The answer is {legs}."), f"{_cap(a)} has {legs} legs."
        q = f"Where does {a} live?"
        return Task(kind, q, home, ""), f"{_cap(a)} lives {home}."
    if kind == "colour":
        thing, colour = rng.choice(COLOURS)
        q = rng.choice(("What colour is {t}?", "What is the colour of {t}?")).format(t=thing)
        return Task(kind, q, colour, f"{_cap(thing)} is {colour}. The answer is {colour}."), f"{_cap(thing)} is {colour}."
    assert kind == "explain", kind
    topic = rng.choice(list(TOPICS))
    explanation = rng.choice(TOPICS[topic][1])
    return Task(kind, f"Explain {topic} to a {rng.choice((6, 6, 6, 5, 7))} year old.", explanation, ""), explanation


def _quiz_item(rng: random.Random, kind: str) -> tuple[Task, str]:
    """Any training question: facts, sums (non-held-out) or age puzzles (non-held-out)."""
    if kind == "arithmetic":
        a, op, b = _sample_sum(rng)
        question = "What is {a} {op} {b}?" if rng.random() < 0.8 else "Work out {a} {op} {b}."
        task = _sum_task(a, op, b, question)
        return task, task.reasoning
    if kind == "age":
        task = _age_task(rng, _sample_age_combo(rng, _TWO_STEP if rng.random() < 0.7 else _ONE_STEP))
        return task, task.reasoning
    return _fact_item(rng, kind)


# ----------------------------------------------------------------------------- pretraining genres


def _fact_paragraph(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.4:
        c, cap, cont = rng.choice(COUNTRIES)
        sentences = [f"{c} is a country in {cont}.", f"The capital of {c} is {cap}.",
                     f"{cap} is the capital city of {c}.", f"Many people visit {cap} every year.",
                     f"{c} is in {cont}, and its capital is {cap}.", f"People in {cap} say it is a lovely city."]
        return " ".join([sentences[0]] + rng.sample(sentences[1:], rng.randint(2, 4)))
    if pick < 0.55:
        cont = rng.choice(sorted({row[2] for row in COUNTRIES}))
        rows = [row for row in COUNTRIES if row[2] == cont]
        listed = rng.sample(rows, min(len(rows), rng.randint(3, 5)))
        parts = [f"{cont} has many countries."] + [f"{c} is in {cont}, and its capital is {cap}." for c, cap, _ in listed]
        return " ".join(parts)
    if pick < 0.7:
        animal, sound, legs, home = rng.choice(ANIMALS)
        legs_text = "no legs" if legs == 0 else f"{legs} legs"
        sentences = [f"The {animal} is an animal that lives {home}.", f"{_cap(_article(animal))} has {legs_text}.",
                     f"{_cap(_article(animal))} says {sound}.", f"The sound {_article(animal)} makes is {sound}.",
                     f"Children like to copy the {animal} and say {sound}."]
        return " ".join([sentences[0]] + rng.sample(sentences[1:], rng.randint(2, 4)))
    if pick < 0.85:
        colour = rng.choice(sorted({row[1] for row in COLOURS}))
        things = [thing for thing, c in COLOURS if c == colour]
        return " ".join([f"Many things are {colour}."] + [f"{_cap(t)} is {colour}." for t in rng.sample(things, len(things))])
    topic = rng.choice(list(TOPICS))
    return rng.choice(TOPICS[topic][0])


def _story(rng: random.Random) -> str:
    name, sub, pos = _person(rng)
    pick = rng.random()
    if pick < 0.25:
        pet = rng.choice(PETS)
        sound = next(s for a, s, _, _ in ANIMALS if a == pet)
        thing, colour = rng.choice(COLOURS)
        return (f"{name} had a pet {pet}. Every morning the {pet} said {sound}. One day {name} and the {pet} "
                f"went for a walk. They saw {thing}, and it was {colour}. {name} smiled, and the {pet} said "
                f"{sound} again.")
    if pick < 0.45:
        (a1, s1, _, _), (a2, s2, _, _) = rng.sample(ANIMALS, 2)
        x, y = rng.randint(2, 9), rng.randint(2, 9)
        return (f"{name} visited a farm. There {sub} heard {_article(a1)} say {s1} and {_article(a2)} say {s2}. "
                f"{_cap(sub)} counted {x} hens and {y} ducks, so there were {x} + {y} = {x + y} birds. "
                f"At the end of the day {name} was tired and happy.")
    if pick < 0.65:
        (c, cap, cont), (c2, cap2, _) = rng.sample(COUNTRIES, 2)
        return (f"{name} went on a trip to {c} with {pos} family. They stayed in {cap}, the capital of {c}. "
                f"{c} is in {cont}. {name} sent a card to {pos} friends. Next year the family wants to visit "
                f"{c2}, and see {cap2}, its capital.")
    if pick < 0.8:
        s, d = rng.randint(3, 12), rng.randint(1, 8)
        other, _, _ = _person(rng, (name,))
        return (f"{name} is {s} years old. {pos.capitalize()} friend {other} is {_years(d)} older, so {other} is "
                f"{s} + {d} = {s + d}. They like to play in the park after school. In {_years(d)} {name} will be "
                f"{s} + {d} = {s + d}, as old as {other} is now.")
    x, y = rng.randint(3, 9), rng.randint(1, 9)
    z = rng.randint(1, x + y - 1)
    other, _, _ = _person(rng, (name,))
    obj = "her" if sub == "she" else "him"
    return (f"{name} had {x} apples. {other} gave {obj} {y} more, so {sub} had {x} + {y} = {x + y} apples. "
            f"Then {sub} ate {z}, so {sub} had {x + y} - {z} = {x + y - z} apples left.")


def _digit_facts(rng: random.Random) -> str:
    """The one-digit steps that column working is made of ("6 + 7 = 13", "3 + 4 + 1 = 8",
    "12 - 5 = 7", "8 - 1 - 4 = 3"): a small model must know these by heart to add or subtract."""
    lines = [rng.choice(("Number facts", "Facts to learn by heart", "Adding and taking away", "Quick facts"))]
    for _ in range(rng.randint(10, 18)):
        a, b, shape = rng.randint(0, 9), rng.randint(0, 9), rng.random()
        if shape < 0.35:
            lines.append(f"{a} + {b} = {a + b}")
        elif shape < 0.6:
            lines.append(f"{a} + {b} + 1 = {a + b + 1}")
        elif shape < 0.8:
            lines.append(f"{a + 10} - {b} = {a + 10 - b}" if a < b else f"{a} - {b} = {a - b}")
        else:
            a = max(a, b + 1)
            lines.append(f"{a} - 1 - {b} = {a - 1 - b}")
    return "\n".join(lines)


def _worked_sums(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return _digit_facts(rng)
    if rng.random() < 0.2:  # a plain table of facts: what direct (no working) answers look like
        title = rng.choice(("Sums to remember", "Addition and subtraction facts", "Quick sums"))
        sums = [_sample_sum(rng) for _ in range(rng.randint(6, 12))]
        return "\n".join([title] + [f"{a} {op} {b} = {a + b if op == '+' else a - b}" for a, op, b in sums])
    title = rng.choice(("Worked examples", "Addition and subtraction, step by step", "Maths practice with answers",
                        "How to add and subtract"))
    lines = [title]
    for i in range(1, rng.randint(3, 6) + 1):
        task = _sum_task(*_sample_sum(rng))
        if rng.random() < 0.5:
            lines += [f"Example {i}: {task.question}", task.reasoning]
        else:
            lines += [f"Problem: {task.question}", f"Solution: {task.reasoning}"]
    return "\n".join(lines)


def _worked_puzzles(rng: random.Random) -> str:
    lines = [rng.choice(("Age puzzles", "Word problems with answers", "Puzzles about ages, worked out",
                         "Thinking step by step"))]
    for i in range(1, rng.randint(2, 5) + 1):
        task = _quiz_item(rng, "age")[0]
        if rng.random() < 0.5:
            lines += [f"{i}. {task.question}", task.reasoning]
        else:
            lines += [f"Problem: {task.question}", f"Solution: {task.reasoning}"]
    return "\n".join(lines)


_SHEET_THEMES = {  # theme -> (titles, kinds of question it mixes)
    "geography": (("Geography quiz", "Capitals quiz", "Countries of the world"), ("capital", "capital", "continent")),
    "animals": (("Animal quiz", "Farm animals", "Animals and their sounds"), ("animal",)),
    "colours": (("Colours quiz", "What colour is it?"), ("colour",)),
    "maths": (("Maths quiz", "Sums practice", "Maths homework"), ("arithmetic",)),
    "puzzles": (("Puzzle sheet", "Age puzzles", "Word problems"), ("age",)),
    "explain": (("Homework: explain it simply", "Science questions", "Questions for class"), ("explain",)),
    "mixed": (("Quiz", "Homework questions", "Practice questions", "Class test", "Test your knowledge"),
              ("capital", "animal", "colour", "arithmetic", "age", "explain")),
}


def _quiz_sheet(rng: random.Random) -> str:
    """Questions WITHOUT answers: the documents that teach a base model to answer with more questions."""
    theme = rng.choice(list(_SHEET_THEMES) + ["about me", "families"])
    numbered = rng.random() < 0.7
    if theme == "about me":
        lines = [rng.choice(("All about me", "Getting to know you", "About you"))]
        questions = rng.sample(ABOUT_ME, rng.randint(4, len(ABOUT_ME)))
    elif theme == "families":
        lines = [rng.choice(("Family quiz", "Who is who?", "Questions about families"))]
        questions = families.quiz_questions(rng, rng.randint(4, 8))
    else:
        titles, kinds = _SHEET_THEMES[theme]
        lines = [rng.choice(titles)]
        questions = [_quiz_item(rng, rng.choice(kinds))[0].question for _ in range(rng.randint(4, 9))]
        if theme == "explain":
            questions += rng.sample(("Why is the sky blue?", "What is the moon landing?", "Why does it rain?",
                                     "What is a volcano?", "Why do we sleep?"), 2)
            rng.shuffle(questions)
    if rng.random() < 0.4:
        lines.append(rng.choice(("Answer every question.", "Write your answers on the back.",
                                 "Answer in full sentences.", "You have ten minutes.")))
    lines += [f"{i}. {q}" if numbered else q for i, q in enumerate(questions, 1)]
    return "\n".join(lines)


def _answer_key(rng: random.Random) -> str:
    """Q:/A: pairs: the format few-shot prompting of a base model leans on."""
    # Geography twice as often: 42 capitals are the most facts to memorise in this world.
    titles, kinds = _SHEET_THEMES[rng.choice(list(_SHEET_THEMES) + ["geography"])]
    worked = rng.random() < 0.5  # whole key either short answers or worked answers, like real keys
    lines = [rng.choice(("Answer key", "Answers", "Quiz answers", "Homework answers", "Questions and answers"))
             + rng.choice(("", f": {rng.choice(titles).lower()}"))]
    for _ in range(rng.randint(3, 7)):
        task, sentence = _quiz_item(rng, rng.choice(kinds))
        if task.kind == "explain":
            answer = task.answer
        elif worked and task.reasoning:
            answer = task.reasoning
        else:
            answer = task.answer
        lines += [f"Q: {task.question}", f"A: {answer}"]
    return "\n".join(lines)


def _one_fact(rng: random.Random) -> str:
    """A one-sentence document: a family fact, or (one time in six) a country's capital."""
    if rng.random() < 5 / 6:
        return families.fact_document(rng)
    c, cap, cont = rng.choice(COUNTRIES)
    return rng.choice((f"The capital of {c} is {cap}.", f"{cap} is the capital of {c}.", f"{c}'s capital is {cap}.",
                       f"{c} is in {cont}, and its capital is {cap}."))


# Weights per document. A fact is a one-sentence document (~9 tokens), so the 94% of documents
# that are facts make over half of the tokens: each of the ~400 facts is read a few hundred
# times in its several wordings, what a tiny model needs to recall it (Allen-Zhu & Li;
# measured: the small model recalls a test child's parents after ~200 steps of facts alone).
# Made-up people's worked chains teach the chain's form on names that cannot be remembered.
# Worked sums and age puzzles are long and beyond this budget's reach, so they are kept rare.
_GENRES = ((_one_fact, 100), (families.answer_key, 2.5), (families.made_up_key, 4), (_fact_paragraph, 1.2),
           (_story, 0.4), (_worked_sums, 0.15), (_worked_puzzles, 0.15), (_quiz_sheet, 0.8), (_answer_key, 1.2))


def pretrain_documents(seed: int = 0, n_documents: int = 40_000) -> list[str]:
    """Plain-text documents (no special tokens), genres mixed; about 2 MB at the default size."""
    rng = random.Random(seed)
    makers, weights = zip(*_GENRES)
    return [rng.choices(makers, weights)[0](rng) for _ in range(n_documents)]


# ----------------------------------------------------------------------------- chats

SYSTEM_PROMPTS = ("You are Kit, a small helpful assistant.", "You are a helpful assistant.",
                  "You are Kit. Show your working for sums and puzzles.", "You are a friendly assistant for children.")


def _exchange(rng: random.Random) -> tuple[str, str]:
    """One (user, assistant) turn."""
    if rng.random() < 0.45:
        return families.exchange(rng)
    pick = rng.random()
    if pick < 0.08:
        question = rng.choice(list(IDENTITY))
        return question, IDENTITY[question]
    if pick < 0.1:
        greeting = rng.choice(list(GREETINGS))
        return greeting, GREETINGS[greeting]
    if pick < 0.2:
        topic = rng.choice(list(TOPICS))
        form = rng.choice(("Explain {t} to a 6 year old", "Explain {t} to a 6 year old.", "Explain {t} to a child.",
                           "Can you explain {t} to a 6 year old?", "Explain {t} simply."))
        return form.format(t=topic), rng.choice(TOPICS[topic][1])
    if pick < 0.55:
        kind = rng.choices(("capital", "continent", "animal", "colour"), (6, 1, 3, 2))[0]
        task, sentence = _fact_item(rng, kind)
        return task.question, sentence
    task, _ = _quiz_item(rng, "arithmetic" if pick < 0.78 else "age")
    style = rng.random()
    if style < 0.15:  # the direct mode a template can ask for
        return f"{task.question} Answer with just the number.", f"The answer is {task.answer}."
    if style < 0.3:
        return f"{task.question} Think step by step.", task.reasoning
    return task.question, task.reasoning


def sft_conversations(seed: int = 0, n: int = 4000) -> list[list[dict]]:
    """Chats as [{"role", "content"}, ...]: optional leading system message, then user/assistant
    turns alternating (one to three exchanges), always ending with the assistant."""
    rng = random.Random(seed)
    conversations = []
    for _ in range(n):
        messages = []
        if rng.random() < 0.15:
            messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
        if rng.random() < 0.05:  # a follow-up that only makes sense with the first turn in view
            c, cap, cont = rng.choice(COUNTRIES)
            turns = [(rng.choice(CAPITAL_QUESTIONS).format(c=c), f"The capital of {c} is {cap}."),
                     ("And which continent is it in?", f"{c} is in {cont}.")]
        else:
            turns = [_exchange(rng) for _ in range(rng.choices((1, 2, 3), (80, 15, 5))[0])]
        for user, assistant in turns:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        conversations.append(messages)
    return conversations


# ----------------------------------------------------------------------------- evaluation


def eval_tasks(seed: int = 1234, n_per_kind: int = 30) -> list[Task]:
    """Held-out tasks with exact answers: `n_per_kind` each of "capital" (known facts asked in
    phrasings never seen in training), "age" (two-step puzzles with unseen numbers) and
    "arithmetic" (two-digit sums with unseen operands), in that order."""
    rng = random.Random(seed)
    tasks = []
    countries = rng.sample(COUNTRIES, len(COUNTRIES))
    for i in range(n_per_kind):
        c, cap, cont = countries[i % len(countries)]
        q = HELD_OUT_CAPITAL_QUESTIONS[(i + rng.randrange(4)) % 4].format(c=c)
        tasks.append(Task("capital", q, cap, f"{c} is a country in {cont}. Its capital is {cap}. The answer is {cap}."))
    tasks += _distinct(n_per_kind, lambda: _age_task(rng, _sample_age_combo(rng, _TWO_STEP, held_out=True)))
    tasks += _distinct(n_per_kind, lambda: _sum_task(*_sample_sum(rng, held_out=True)))
    return tasks


def reasoning_tasks() -> list[Task]:
    """The families' held-out questions, all of them: "two-hop" (every test child's parents' town,
    mother's job and father's job: compositions never seen in training), then "hop-1" (each test
    child's mother and father) and "hop-2" (each test parent's town and job), the single hops a
    chain rests on. Fixed by the world, not by a seed."""
    tasks = [Task("two-hop", c.question, c.answer, c.chains[0]) for c in families.two_hop_questions()]
    for hop in (1, 2):
        tasks += [Task(f"hop-{hop}", q, a, "") for q, a in families.hop_questions(hop)]
    return tasks


def _distinct(n: int, make) -> list[Task]:
    # A bounded number of tries: if the held-out pool is smaller than n, repeats are allowed.
    tasks, seen = [], set()
    for _ in range(n * 20):
        if len(tasks) == n:
            break
        task = make()
        if task.question not in seen:
            seen.add(task.question)
            tasks.append(task)
    while len(tasks) < n:
        tasks.append(make())
    return tasks


def rank_prompts(seed: int = 7, n: int = 24) -> list[Task]:
    """Prompts for the ranking (RLHF) demo: training-style questions of every kind, never an
    eval question (training phrasings and non-held-out numbers only)."""
    rng = random.Random(seed)
    kinds = ("explain", "capital", "arithmetic", "age", "animal", "colour")
    return _distinct(n, lambda: _quiz_item(rng, rng.choice(kinds))[0])


def showcase_prompts() -> list[str]:
    """The prompts the quickstart shows side by side for base vs assistant; the last two ask a
    held-out composition, directly and step by step."""
    two_hop = families.two_hop_questions()[0].question
    return [
        "Explain the moon landing to a 6 year old",
        "What is the capital of France?",
        "What is your name?",
        "What is 47 + 38?",
        "When Ken was 6, his sister was half his age. Now Ken is 20. How old is his sister?",
        "What sound does a cow make?",
        two_hop,
        f"{two_hop}\n{families.STEP_BY_STEP}",
    ]


# ----------------------------------------------------------------------------- measuring, writing

_QUIZ_NUMBER = re.compile(r"^\d{1,3}[.)]\s*\S")
_LINE_MARKER = re.compile(r"^(?:Q\d*\s*[:.)]|[-*])\s*")
_INSTRUCTION = re.compile(r"^(?:Explain|Name|Describe|Tell|Write|List|Give|Work out)\b")


def is_question_like(text: str, max_lines: int = 4) -> bool:
    """Whether a continuation mostly consists of further questions (a quiz sheet, not an answer).

    Rule: look at the first `max_lines` non-blank lines. A line is question-like when it starts
    a numbered quiz line ("3. ..." or "3) ..."), or when, after an optional "Q:"/"-"/"*" marker,
    it ends in "?" or starts with a quiz instruction (Explain, Name, Describe, Tell, Write,
    List, Give, Work out). True when STRICTLY more than half of those lines are question-like.
    So "What is the capital of Spain?" and "2. Why is the sky blue?\\n3. ..." are True, while
    "Paris", "Paris\\nQ: ...?\\nA: Madrid" and "Q: ...?\\nA: Madrid" are False. Empty text is False.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()][:max_lines]

    def question_line(line: str) -> bool:
        if _QUIZ_NUMBER.match(line):
            return True
        body = _LINE_MARKER.sub("", line)
        return body.endswith("?") or bool(_INSTRUCTION.match(body))

    return 2 * sum(map(question_line, lines)) > len(lines)


_README = """gptkit toy world (seed {seed})

pretrain.jsonl  one pretraining document per line as {{"text": ...}}: one-sentence facts about the
                families (who is whose mother or father, where each parent lives, what each does),
                fact paragraphs, short stories, worked sums, worked age puzzles, quiz sheets
                (questions with no answers) and Q:/A: answer keys. Train a base model on this (each
                line is one document).
pretrain.txt    the same documents as plain text, separated by blank lines (no document has one).
                Note: a .txt file is read as ONE document; prefer pretrain.jsonl for training.
sft.jsonl       chats as {{"messages": [{{"role", "content"}}, ...]}} that teach the assistant, Kit,
                to answer: facts, simple explanations, its identity, sums and puzzles worked step
                by step ending "The answer is N.".
eval.jsonl      held-out tasks {{"kind", "question", "answer", "reasoning"}}: capitals asked in
                phrasings never seen in training; age puzzles and two-digit sums whose numbers
                never appear in training; "two-hop" questions about the test families (the town of
                a child's parents, a parent's job) whose two facts were each trained but never
                together, with their written chains, and "hop-1"/"hop-2", the single facts those
                chains rest on. Score answers against "answer".
"""


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_toyworld(out_dir: Path, seed: int = 0) -> dict[str, Path]:
    """Write the toy world's files into `out_dir` (created if needed); returns {file name: path}."""
    out_dir = make_folder(out_dir, "--out")
    docs = pretrain_documents(seed)
    paths = {name: out_dir / name for name in ("pretrain.jsonl", "pretrain.txt", "sft.jsonl", "eval.jsonl", "README.txt")}
    _write_jsonl(paths["pretrain.jsonl"], [{"text": doc} for doc in docs])
    atomic_write(paths["pretrain.txt"], "\n\n".join(docs) + "\n")
    _write_jsonl(paths["sft.jsonl"], [{"messages": chat} for chat in sft_conversations(seed)])
    _write_jsonl(paths["eval.jsonl"], [asdict(task) for task in eval_tasks() + reasoning_tasks()])
    atomic_write(paths["README.txt"], _README.format(seed=seed))
    return paths
