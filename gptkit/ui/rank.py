"""The ranking session: show k anonymous answers to a prompt, take a person's ordering, log it.

Owns everything `gptkit rank` does between loading checkpoints and the logbook: where prompts
come from (`load_rank_prompts`: the toy world, .txt/.jsonl/.yaml files, or typed live), how k
answers are sampled and hidden (`sample_answers`: split across checkpoints, shuffled by the
seed, labelled 1..k), the ordering language (`parse_ordering`: "2>1=4>3", 1 = best, ties share a
rank; `typed_form` reads the full-width "２＞１" an input method types, for chat's picks too), the scripted raters for demos and tests (`auto_ranks`: truth, length, regex), and the
loop itself (`RankSession`), whose input is any `ask(message) -> str` (a prompt-toolkit
`PromptSession.prompt`, or plain line reading when stdin is not a terminal) and whose output is
a Rich console.

Contract: a ranking is committed to the logbook before "saved ranking #ID" is printed and
before the next prompt appears, so whatever the session acknowledged survives a SIGKILL.
Restarting with the same rater and the same set of checkpoints resumes: prompts that rater
already handled for that set (`ranked_prompts`) are skipped; another set (a second model added)
offers them again, since its answers are new.
Undo soft-deletes the rater's newest ranking and brings its prompt back with the same answers.

Must not know SQL, tensors or sampling internals: it calls the logbook's and textgen's public
functions. It runs to ~500 lines because it holds five small parts (orderings, scripted raters,
prompt files, sampling, the loop) that only `gptkit rank` uses; apart, they would scatter one
command across files without making any part simpler.
"""

import getpass
import re
import secrets
import sys
import unicodedata
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from gptkit.errors import DataError, UsageError
from gptkit.files import excerpt, parse_yaml, read_text
from gptkit.prompting.answers import compile_user_regex, search_user_regex, truth_ranks
from gptkit.ui.render import answer_grid

MAX_PROMPTS_BYTES = 64 << 20  # a prompts file is read whole (YAML composed node by node)
HELP = """order the answers best first, e.g. 2>1=4>3  ('=' ties two answers; every label exactly once;
  full-width ２＞１＝４＞３ and ｂ, ｓ, ｑ from an input method work too)
  b, bad      all answers are bad          s, skip     skip this prompt
  u, undo     undo your last ranking       n, note TEXT  add a note to this ranking
  q, quit     stop (saved rankings are kept; run the same command again to resume)
  ?           this help"""


# ----------------------------------------------------------------------------- orderings


class OrderingError(ValueError):
    """An ordering that cannot be read; the message is a one-line hint for the person."""


def typed_form(text: str) -> str:
    """What a person meant, however their input method wrote it: full-width forms ("２＞１",
    "／ｓｅｔ", the ideographic space U+3000) become their ASCII twins. Only the <wide>
    compatibility forms are folded (NFKC on those characters alone): NFKC on the whole text would
    also turn "²" into a label "2" and half-width katakana into full-width."""
    return "".join(unicodedata.normalize("NFKC", ch) if unicodedata.decomposition(ch).startswith("<wide>") else ch
                   for ch in text)


def parse_ordering(text: str, k: int) -> list[int]:
    """"2>1=4>3" with k=4 -> [2, 1, 3, 2]: the rank of each label 1..k (1 = best, ties share).

    Ranks are dense (the group after a tie is one worse, not two). Whitespace is ignored, and
    full-width forms as an input method types them ("２＞１＝４＞３") read as their ASCII twins.
    Raises OrderingError naming what is wrong: a bad token, a label out of 1..k, a label used
    twice, or labels missing.
    """
    compact = re.sub(r"\s+", "", typed_form(text))
    if not compact:
        raise OrderingError(f"empty ordering: name all {k} answers, e.g. {_example(k)}")
    tokens = re.split(r"([>=])", compact)  # labels at even positions, operators at odd
    ranks: dict[int, int] = {}
    rank = 1
    for i, token in enumerate(tokens):
        if i % 2 == 1:
            rank += token == ">"
            continue
        if not token.isdigit() or not token.isascii():
            what = "missing label" if not token else f"'{token}' is not a label"
            raise OrderingError(f"{what}: use labels 1-{k} joined by > (better) or = (tie), e.g. {_example(k)}")
        label = int(token)
        if not 1 <= label <= k:
            raise OrderingError(f"label {label} is out of range: the answers are 1-{k}")
        if label in ranks:
            raise OrderingError(f"label {label} appears twice: name every answer exactly once")
        ranks[label] = rank
    missing = [label for label in range(1, k + 1) if label not in ranks]
    if missing:
        raise OrderingError(f"missing {', '.join(map(str, missing))}: name all {k} answers, e.g. {_example(k)}")
    return [ranks[label] for label in range(1, k + 1)]


def format_ordering(ranks: list[int]) -> str:
    """The inverse of `parse_ordering`: [2, 1, 3, 2] -> "2>1=4>3" (tied labels in label order)."""
    groups: dict[int, list[str]] = {}
    for label, rank in enumerate(ranks, start=1):
        groups.setdefault(rank, []).append(str(label))
    return ">".join("=".join(groups[rank]) for rank in sorted(groups))


def _example(k: int) -> str:
    """A valid ordering of k labels that shows both operators: 2>1=4>3 for k=4."""
    if k < 3:
        return ">".join(str(label) for label in range(k, 0, -1))
    return f"2>1={k}" + "".join(f">{n}" for n in range(3, k))


def dense_ranks(costs: list) -> list[int]:
    """Rank 1 for the lowest cost, equal costs share a rank, no gaps: [5, 2, 5, 9] -> [2, 1, 2, 3]."""
    order = {cost: rank for rank, cost in enumerate(sorted(set(costs)), start=1)}
    return [order[cost] for cost in costs]


# ----------------------------------------------------------------------------- scripted raters


@dataclass(frozen=True)
class AutoRule:
    name: str  # "truth" | "length" | "regex"
    pattern: str | None = None  # for "regex"

    @property
    def rater(self) -> str:
        return f"auto:{self.name}" + (f":{self.pattern}" if self.pattern is not None else "")


def parse_auto_rule(text: str) -> AutoRule:
    """"truth", "length" or "regex:PATTERN" -> AutoRule; UsageError otherwise."""
    if text in ("truth", "length"):
        return AutoRule(text)
    if text.startswith("regex:"):
        pattern = text[len("regex:"):]
        try:
            compile_user_regex(pattern, field="--auto regex:PATTERN")
        except DataError as err:  # an option's value: a usage error
            raise UsageError(str(err).removeprefix("field '--auto regex:PATTERN': ")) from None
        return AutoRule("regex", pattern)
    raise UsageError(f"--auto: expected truth, length or regex:PATTERN, got {excerpt(text)}")


def auto_ranks(rule: AutoRule, texts: list[str], expected: str | None = None) -> tuple[str, list[int | None]]:
    """(status, ranks) a scripted rater gives `texts`, in their shown order.

    truth: right answers above wrong ones, ties within each group; "all_bad" when none is right.
    length: shorter (stripped) text is better; equal lengths tie.
    regex: texts the pattern finds (searched with a time limit) above the others.
    """
    if rule.name == "truth":
        assert expected is not None, "the truth rule needs the expected answer"
        return truth_ranks(texts, expected)
    if rule.name == "length":
        return "ranked", dense_ranks([len(text.strip()) for text in texts])
    assert rule.name == "regex" and rule.pattern is not None, rule
    return "ranked", dense_ranks([search_user_regex(rule.pattern, text, field="--auto regex:PATTERN") is None
                                  for text in texts])


# ----------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class RankPrompt:
    text: str
    answer: str | None = None  # ground truth, when the source knows it (toy world, JSONL "answer")


def load_rank_prompts(spec: str) -> list[RankPrompt]:
    """`toyworld`, `-` (none: type them live), or a .txt (one per line), .jsonl ({"prompt" or
    "question", optional "answer"}; other fields ignored) or .yaml/.yml file (a list of strings
    or of such mappings). Repeated prompts are kept once. DataError names file:line."""
    if spec == "-":
        return []
    if spec in ("toyworld", "toyworld-ja"):
        from gptkit.data import world

        # An "explain" task's answer is a reference text, not something an answer can equal.
        prompts = [RankPrompt(t.question, None if t.kind == "explain" else t.answer)
                   for t in world.world(world.parse(spec)[0]).rank_prompts()]
    else:
        path = Path(spec)
        suffix = path.suffix.lower()
        if suffix not in (".txt", ".jsonl", ".yaml", ".yml"):
            raise DataError("expected a .txt, .jsonl or .yaml prompts file (or `toyworld`, or `-` to type them)", path=path)
        text = read_text(path, max_bytes=MAX_PROMPTS_BYTES)
        if suffix == ".txt":
            prompts = [RankPrompt(line.strip()) for line in text.splitlines() if line.strip()]
        elif suffix == ".jsonl":
            prompts = _jsonl_prompts(path)
        else:
            prompts = _yaml_prompts(path, text)
        if not prompts:
            raise DataError("no prompts in file", path=path)
    unique = {}
    for prompt in prompts:
        unique.setdefault(prompt.text, prompt)
    return list(unique.values())


def _prompt_from_mapping(row: dict, path: Path, line: int) -> RankPrompt:
    key = "prompt" if "prompt" in row else "question"
    text = row.get(key)
    if not isinstance(text, str) or not text.strip():
        what = "expected a non-empty string" if key in row else 'missing (expected "prompt")'
        raise DataError(what, path=path, line=line, field="prompt")
    answer = row.get("answer")
    if isinstance(answer, bool) or (answer is not None and not isinstance(answer, (str, int, float))):
        raise DataError("expected a string or number", path=path, line=line, field="answer")
    return RankPrompt(text.strip(), None if answer is None else str(answer))


def _jsonl_prompts(path: Path) -> list[RankPrompt]:
    from gptkit.data.text import iter_jsonl

    prompts = []
    for number, row in iter_jsonl(path):
        if not isinstance(row, dict):
            raise DataError('expected an object {"prompt": ..., "answer": ...}', path=path, line=number)
        prompts.append(_prompt_from_mapping(row, path, number))
    return prompts


def _yaml_prompts(path: Path, text: str) -> list[RankPrompt]:
    data, root = parse_yaml(text, path=path)  # the nodes keep each item's line
    if data is None:
        return []
    if not isinstance(data, list):
        raise DataError("expected a list of prompts", path=path, line=1)
    prompts = []
    for node, item in zip(root.value, data):
        line = node.start_mark.line + 1
        if isinstance(item, str) and item.strip():
            prompts.append(RankPrompt(item.strip()))
        elif isinstance(item, dict):
            prompts.append(_prompt_from_mapping(item, path, line))
        else:
            raise DataError("expected a prompt string or a mapping with prompt (and answer)", path=path, line=line)
    return prompts


# ----------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answer:
    text: str
    checkpoint: str


@dataclass
class Shown:
    """One prompt ready to rank: label i+1 is answers[i]."""

    prompt: RankPrompt
    answers: list[Answer]
    seed: int
    settings: dict
    notes: list[str] = field(default_factory=list)


def split_evenly(k: int, n: int) -> list[int]:
    """k answers across n checkpoints, the first ones taking the remainder: (5, 2) -> [3, 2]."""
    return [k // n + (i < k % n) for i in range(n)]


def prompt_seed(seed: int | None, prompt: str) -> int:
    """A fixed --seed gives each prompt its own reproducible seed (resume-proof); else a fresh one."""
    if seed is None:
        return secrets.randbelow(2**31)
    return zlib.crc32(f"{seed}\0{prompt}".encode()) & 0x7FFFFFFF


def sample_answers(checkpoints: list, prompt: str, k: int, *, temperature: float, max_tokens: int,
                   seed: int) -> list[Answer]:
    """k answers, split across `checkpoints`, each share sampled in lock-step from one prefill,
    then shuffled with `seed` so the shown order hides who wrote what."""
    import random

    from gptkit.engine import SamplingParams
    from gptkit.textgen import generate

    answers = []
    params = SamplingParams(temperature=temperature, max_new_tokens=max_tokens, seed=seed)
    for ckpt, n in zip(checkpoints, split_evenly(k, len(checkpoints))):
        if n == 0:
            continue
        (results,) = generate(ckpt, [prompt], params, k=n)
        answers += [Answer(r.text, ckpt.name) for r in results]
    random.Random(seed).shuffle(answers)
    return answers


# ----------------------------------------------------------------------------- the session


QUIT, SAVED, UNDONE = "quit", "saved", "undone"


class RankSession:
    """The ranking loop. `ask(message)` returns one line and raises EOFError (or
    KeyboardInterrupt) to end; `auto` replaces the person with a scripted rater."""

    def __init__(self, logbook, *, checkpoints: list, prompts: list[RankPrompt], k: int,
                 rater: str, console: Console, ask: Callable[[str], str] | None = None,
                 temperature: float = 0.8, max_tokens: int = 128, seed: int | None = None,
                 auto: AutoRule | None = None):
        assert checkpoints and k >= len(checkpoints), (k, len(checkpoints))
        assert auto is not None or ask is not None, "a person needs `ask`"
        self.logbook, self.checkpoints, self.prompts, self.k = logbook, checkpoints, prompts, k
        self.rater = auto.rater if auto else rater
        self.console, self.ask, self.auto = console, ask, auto
        self.temperature, self.max_tokens, self.seed = temperature, max_tokens, seed
        self.saved: list[int] = []  # ranking ids acknowledged in this session

    def run(self) -> list[int]:
        """Rank until the prompts (and the live prompts) run out or the person quits; returns
        the ids saved in this session."""
        handled = self.logbook.ranked_prompts(self.rater, [c.name for c in self.checkpoints])
        queue: deque[RankPrompt | Shown] = deque(p for p in self.prompts if p.text not in handled)
        if len(queue) < len(self.prompts):
            self.console.print(f"resuming: {len(self.prompts) - len(queue)} of {len(self.prompts)} prompts "
                               f"already ranked by {escape(self.rater)} for "
                               f"{escape(', '.join(c.name for c in self.checkpoints))}")
        while True:
            if not queue:
                typed = self._live_prompt()
                if typed is None:
                    break
                queue.append(typed)
            entry = queue.popleft()
            shown = entry if isinstance(entry, Shown) else self._sample(entry)
            if self.auto:
                status, ranks = auto_ranks(self.auto, [a.text for a in shown.answers], shown.prompt.answer)
                self._save(shown, status, ranks)
                continue
            self._show(shown, remaining=len(queue))
            if self._ask_ranking(shown, queue) == QUIT:
                break
        count = len(self.saved)
        self.console.print(f"{count} ranking{'' if count == 1 else 's'} saved this session"
                           + ("" if self.auto else "; run the same command again to resume") + ".")
        return self.saved

    def _live_prompt(self) -> RankPrompt | None:
        if self.auto:
            return None
        try:
            text = self.ask("type a prompt, or empty to finish> ").strip()
        except (EOFError, KeyboardInterrupt):
            return None
        return None if typed_form(text).lower() in ("", "q", "quit") else RankPrompt(text)

    def _sample(self, prompt: RankPrompt) -> Shown:
        seed = prompt_seed(self.seed, prompt.text)
        with self.console.status(f"sampling {self.k} answers..."):
            answers = sample_answers(self.checkpoints, prompt.text, self.k, temperature=self.temperature,
                                     max_tokens=self.max_tokens, seed=seed)
        settings = {"temperature": self.temperature, "max_new_tokens": self.max_tokens, "seed": seed,
                    "k": self.k, "checkpoints": [c.name for c in self.checkpoints]}
        if prompt.answer is not None:
            settings["expected"] = prompt.answer
        return Shown(prompt, answers, seed, settings)

    def _show(self, shown: Shown, remaining: int) -> None:
        self.console.rule(f"prompt ({remaining} more queued)", style="dim")
        self.console.print(Text(shown.prompt.text, style="bold"))
        panels = [(f"{label}", answer.text.strip()) for label, answer in enumerate(shown.answers, start=1)]
        self.console.print(answer_grid(panels, self.console.width))
        if shown.notes:
            self.console.print(Text("note: " + " / ".join(shown.notes), style="dim"))
        hint = f"best first, e.g. {_example(len(shown.answers))} · b all bad · s skip · u undo · n note · q quit · ? help"
        self.console.print(Text(hint, style="dim"))

    def _ask_ranking(self, shown: Shown, queue: deque) -> str:
        k = len(shown.answers)
        while True:
            try:
                line = self.ask("rank> ").strip()
            except (EOFError, KeyboardInterrupt):
                return QUIT
            # Commands in the form an input method may type them ("ｑ", "ｎ　ＴＥＸＴ"); a note stays as typed.
            word, *rest = re.split(r"\s+", line, maxsplit=1)
            command, rest = typed_form(word).lower(), rest[0] if rest else ""
            if command in ("q", "quit"):
                return QUIT
            if command == "?" or command == "help":
                self.console.print(Text(HELP))
            elif command in ("n", "note"):
                if rest.strip():
                    shown.notes.append(rest.strip())
                    self.console.print("note added to this ranking")
                else:
                    self.console.print("n TEXT adds a note, e.g. n answer 3 is rude")
            elif command in ("b", "bad"):
                return self._save(shown, "all_bad", [None] * k)
            elif command in ("s", "skip"):
                return self._save(shown, "skipped", [None] * k)
            elif command in ("u", "undo"):
                undone = self.logbook.undo_last_ranking(self.rater)
                if undone is None:
                    self.console.print("nothing to undo")
                    continue
                self.console.print(f"undid ranking #{undone}; it comes back now")
                if undone in self.saved:
                    self.saved.remove(undone)
                queue.appendleft(shown)
                queue.appendleft(self._restore(undone))
                return UNDONE
            else:
                try:
                    ranks = parse_ordering(line, k)
                except OrderingError as err:
                    self.console.print(Text(f"? {err}", style="yellow"))
                    continue
                return self._save(shown, "ranked", ranks)

    def _save(self, shown: Shown, status: str, ranks: list[int | None]) -> str:
        ranking_id = self.logbook.log_ranking(
            shown.prompt.text, [{"text": a.text, "checkpoint": a.checkpoint} for a in shown.answers], ranks,
            rater=self.rater, synthetic=self.auto is not None, note="\n".join(shown.notes) or None,
            status=status, settings=shown.settings, seed=shown.seed)
        # Printed only now, after the commit: an acknowledged ranking is on disk.
        self.saved.append(ranking_id)
        what = format_ordering(ranks) if status == "ranked" else status.replace("_", " ")
        self.console.print(f"saved ranking #{ranking_id}: {what}", highlight=False)
        if len({a.checkpoint for a in shown.answers}) > 1:
            self.console.print(Text("  written by: " + ", ".join(
                f"{label}={a.checkpoint}" for label, a in enumerate(shown.answers, start=1)), style="dim"))
        return SAVED

    def _restore(self, ranking_id: int) -> Shown:
        """An undone ranking's prompt, with the very answers that were ranked, ready again."""
        ranking = next(r for r in self.logbook.rankings(include_deleted=True) if r["id"] == ranking_id)
        known = {p.text: p for p in self.prompts}
        return Shown(known.get(ranking["prompt"], RankPrompt(ranking["prompt"])),
                     [Answer(item["text"], item["checkpoint"]) for item in ranking["items"]],
                     ranking["seed"], ranking["settings"] or {},
                     [ranking["note"]] if ranking["note"] else [])


# ----------------------------------------------------------------------------- terminal wiring


def terminal_ask(console: Console) -> Callable[[str], str]:
    """prompt-toolkit line editing (with history) on a terminal; plain line reading otherwise,
    so the session can be driven through a pipe."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        from gptkit import paths

        paths.ensure_dir(paths.home())
        return PromptSession(history=FileHistory(str(paths.history_path("rank")))).prompt

    def ask(message: str) -> str:
        console.print(message, end="", markup=False, highlight=False)
        console.file.flush()
        line = sys.stdin.readline()
        # Echo what was read, so a piped session's output reads like a terminal transcript.
        console.print(line.rstrip("\r\n"), markup=False, highlight=False)
        if not line:
            raise EOFError
        return line.rstrip("\r\n")

    return ask


def default_rater() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "me"


def run_rank(*, model_specs: list[str], prompts: str, k: int, rater: str | None, temperature: float,
             max_tokens: int, seed: int | None, auto: str | None, device: str) -> list[int]:
    """Everything `gptkit rank` does: validate, load checkpoints, run a session on this terminal."""
    from gptkit.checkpoint import load_checkpoint
    from gptkit.device import pick_device
    from gptkit.store import open_logbook

    if not model_specs:
        raise UsageError("-m/--model: give at least one checkpoint to sample answers from")
    if k < len(model_specs):
        raise UsageError(f"-k {k}: need at least one answer per checkpoint ({len(model_specs)} given)")
    rule = parse_auto_rule(auto) if auto is not None else None
    if rule is not None and prompts == "-":
        raise UsageError("--auto ranks a prompt list; it cannot use --prompts - (typed prompts)")
    prompt_list = load_rank_prompts(prompts)
    if rule is not None and rule.name == "truth":
        prompt_list = [p for p in prompt_list if p.answer is not None]
        if not prompt_list:
            raise UsageError('--auto truth: no prompt has an answer to check (use --prompts toyworld, '
                             'or JSONL lines with "answer")')
    dc = pick_device(device)
    checkpoints = [load_checkpoint(spec, device=dc.device, kinds=("base", "assistant", "policy"), dtype=dc.dtype)
                   for spec in model_specs]
    console = Console(highlight=False)
    with open_logbook() as logbook:
        session = RankSession(logbook, checkpoints=checkpoints, prompts=prompt_list, k=k,
                              rater=rater or default_rater(), console=console,
                              ask=None if rule else terminal_ask(console), temperature=temperature,
                              max_tokens=max_tokens, seed=seed, auto=rule)
        if rule is None:
            console.print(Text(f"ranking as {session.rater}: {k} answers per prompt from "
                               f"{', '.join(c.name for c in checkpoints)}, shown in random order. ? for help.", style="dim"))
        return session.run()
