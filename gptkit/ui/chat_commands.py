"""The slash commands of `gptkit chat`, their completion, and the logbook views of `gptkit log`.

Owns: parsing each /command's arguments into a one-line `UsageError` when they are wrong (never
a traceback), the commands that act on a `ChatSession` (/regen's pick-and-rank, /vote's
self-consistency, /show, /tokens, /save and /load, ...), the prompt-toolkit completer for
commands, template names and checkpoint names, and the Rich tables `gptkit log` prints.

Must not know: the engine or SQL; it acts through `ChatSession` (chat.py), `gptkit.store`'s
Logbook methods and the prompting library.

Length: about 600 lines for seventeen commands, each with its own argument checks and one-line
hints; every command is a small function, and the table `COMMANDS` at the bottom is the index.
"""

import dataclasses
import difflib
import json
import math
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prompt_toolkit.completion import Completer, Completion
from rich.table import Table
from rich.text import Text

from gptkit.errors import DataError, GptkitError, UsageError
from gptkit.prompting.answers import extract_answer, majority_vote
from gptkit.prompting.templates import load_template, required_variables, template_folders
from gptkit.ui.chat import MODES, Answer, ChatSettings, PanelStream, default_mode, displayable, speed, visible_prompt
from gptkit.ui.render import colored_tokens, vote_bars

CHAT_FORMAT = "gptkit-chat"
DEFAULT_ANSWER_REGEX = r"The answer is (.+?)\."
VOTE_TEMPERATURE = 0.7  # /vote at temperature 0 would draw k identical answers
MAX_PANELS = 16


@dataclass(frozen=True)
class Command:
    run: Callable  # (session, argument text) -> None
    usage: str
    help: str


# ---- argument parsing -------------------------------------------------------------------------


def _number(name: str, value: str, *, integer: bool, ok, expected: str, off: bool = False):
    if off and value.lower() in ("off", "none", "random"):
        return None
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or not ok(number):
        raise UsageError(f"{name}: expected {expected}{' or off' if off else ''}, got '{value}'")
    return number


def _switch(name: str, value: str) -> bool:
    if value.lower() in ("on", "true", "yes", "1"):
        return True
    if value.lower() in ("off", "false", "no", "0"):
        return False
    raise UsageError(f"{name}: expected on or off, got '{value}'")


SETTINGS = {  # name: text -> value (UsageError when it does not fit)
    "temperature": lambda v: _number("temperature", v, integer=False, ok=lambda x: x >= 0, expected="a number >= 0"),
    "top_k": lambda v: _number("top_k", v, integer=True, ok=lambda x: x >= 1, expected="an integer >= 1", off=True),
    "top_p": lambda v: _number("top_p", v, integer=False, ok=lambda x: 0 < x <= 1, expected="a number in (0, 1]",
                               off=True),
    "max_tokens": lambda v: _number("max_tokens", v, integer=True, ok=lambda x: x >= 1, expected="an integer >= 1"),
    "seed": lambda v: _number("seed", v, integer=True, ok=lambda x: 0 <= x < 2**63,
                              expected="an integer 0 to 2**63-1 (or random)", off=True),
    "samples": lambda v: _number("samples", v, integer=True, ok=lambda x: 1 <= x <= 256, expected="an integer 1-256"),
    "stats": lambda v: _switch("stats", v),
}


def parse_count(arg: str, command: str, default: int, most: int) -> int:
    if not arg.strip():
        return default
    return _number(command, arg.strip(), integer=True, ok=lambda x: 1 <= x <= most, expected=f"an integer 1-{most}")


_PICK = re.compile(r"\s*(\d+\s*([>=]\s*\d+\s*)*)?")


def looks_like_pick(line: str) -> bool:
    """An answer to /regen: empty (keep), a number, or an ordering like 2>1=3."""
    return _PICK.fullmatch(line) is not None


def parse_pick(text: str, k: int) -> tuple[int, list[int] | None]:
    """'2' -> (1, None): the picked answer (0-based), no ranking. '2>1=3' -> (1, [2, 1, 2]): the
    first-named answer continues the chat and the ordering (rank.parse_ordering) is a ranking."""
    from gptkit.ui.rank import OrderingError, parse_ordering

    compact = re.sub(r"\s+", "", text)
    if compact.isdigit():
        if not 1 <= int(compact) <= k:
            raise UsageError(f"pick: the answers are numbered 1-{k}, got {compact}")
        return int(compact) - 1, None
    try:
        ranks = parse_ordering(compact, k)
    except OrderingError as e:
        raise UsageError(f"pick: {e}") from None
    return int(re.match(r"\d+", compact).group()) - 1, ranks


def run_command(session, line: str) -> None:
    name, _, arg = line[1:].partition(" ")
    command = COMMANDS.get(name.lower())
    if command is None:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"did you mean /{close[0]}? " if close else ""
        raise UsageError(f"unknown command /{name}; {hint}/help lists them")
    command.run(session, arg.strip())


# ---- models, modes, templates -----------------------------------------------------------------


def cmd_model(session, arg: str) -> None:
    if not arg:
        raise UsageError("/model: give a checkpoint name (Tab completes)")
    session.use_checkpoints([arg])
    session.console.print(Text.assemble("model ", (arg, "bold"), f" · mode {session.mode}"))


def cmd_compare(session, arg: str) -> None:
    names = shlex.split(arg)
    if not names:
        raise UsageError("/compare: give two or more checkpoints, e.g. /compare base assistant")
    if len(names) == 1:  # compare the current model with this one
        names = [session.names[0], *names]
    session.use_checkpoints(names, "compare")
    session.console.print(Text(f"compare mode: {' · '.join(names)}; each prompt goes to all, same seed"))


def cmd_mode(session, arg: str) -> None:
    session.switch_mode(arg)
    using = session.names if arg == "compare" else session.names[:1]
    session.console.print(Text(f"mode {arg} · {' · '.join(using)}"))


def use_template(session, name: str) -> None:
    """Make `name` the active template; its sampling defaults replace the current settings."""
    template = load_template(name)
    session.template, session.vars = template, {}
    s, sampling = session.settings, template.sampling
    s.temperature, s.top_k, s.top_p = sampling["temperature"], sampling["top_k"], sampling["top_p"]
    s.max_tokens, s.seed = sampling["max_tokens"], sampling["seed"]
    session.console.print(Text(f"template {template.name}: temperature {s.temperature}, max_tokens {s.max_tokens}, "
                               f"seed {s.seed} (its defaults; /set changes them)", style="cyan"))
    if "question" not in required_variables(template):
        session.console.print(Text(f"note: {template.name}'s prompt has no {{question}}, so what you type is not "
                                   "used; set its variables with /vars", style="yellow"))


def cmd_template(session, arg: str) -> None:
    if not arg:
        current = session.template.name if session.template else "none"
        session.console.print(Text(f"template {current}; /template NAME (Tab completes) or /template off"))
    elif arg == "off":
        session.template, session.vars = None, {}
        session.console.print(Text("template off"))
    else:
        use_template(session, arg)


def cmd_vars(session, arg: str) -> None:
    if arg in ("off", "clear"):
        session.vars = {}
    for pair in shlex.split(arg) if arg not in ("off", "clear") else []:
        key, eq, value = pair.partition("=")
        if not eq or not key.isidentifier():
            raise UsageError(f"/vars: expected name=value pairs, got '{pair}'")
        if session.template is not None and key not in required_variables(session.template):
            used = ", ".join(sorted(required_variables(session.template)))
            raise UsageError(f"/vars: template {session.template.name} has no variable '{key}' (it uses: {used})")
        session.vars[key] = value
    defaults = session.template.variables if session.template else {}
    shown = {**defaults, **session.vars}
    session.console.print(Text(" ".join(f"{k}={v!r}" for k, v in shown.items()) or "no variables"))


def cmd_system(session, arg: str) -> None:
    if arg == "off":
        session.system = None
    elif arg:
        session.system = arg
    session.console.print(Text(f"system: {session.system!r}" if session.system else "no system message"))


def settings_text(settings: ChatSettings) -> str:
    def shown(name, value):
        if value is None:
            return "random" if name == "seed" else "off"
        return ("on" if value else "off") if isinstance(value, bool) else str(value)

    return " · ".join(f"{k} {shown(k, v)}" for k, v in dataclasses.asdict(settings).items())


def cmd_set(session, arg: str) -> None:
    name, _, value = arg.partition(" ")
    if not arg:
        session.console.print(Text(settings_text(session.settings)))
        return
    if name not in SETTINGS:
        close = difflib.get_close_matches(name, SETTINGS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(f"/set: unknown setting '{name}'; {hint}settings: {', '.join(SETTINGS)}")
    if not value.strip():
        raise UsageError(f"/set {name}: give a value")
    setattr(session.settings, name, SETTINGS[name](value.strip()))
    session.console.print(Text(settings_text(session.settings), style="dim"))


# ---- looking at prompts and tokens ------------------------------------------------------------


def cmd_show(session, arg: str) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    t = session.template
    rows = [("checkpoints", " · ".join(session.names)), ("mode", session.mode),
            ("template", f"{t.name} — {t.description}" if t else "none")]
    if t:
        rows += [("variables", " ".join(f"{k}={v!r}" for k, v in {**t.variables, **session.vars}.items())),
                 ("stop", ", ".join(repr(s) for s in t.stop) or "none")]
    rows += [("system", repr(session.system) if session.system else "none"),
             ("settings", settings_text(session.settings)),
             ("conversation", f"{len(session.messages)} messages, {len(session.exchanges)} exchanges")]
    for name, value in rows:
        table.add_row(name, Text(value))
    session.console.print(table)
    if session.exchanges:
        label = "prompt of the last turn"
        shown = [(a.checkpoint, a.ids) for a in session.exchanges[-1].answers]
    elif t is not None and (session.vars.get("question") or t.variables.get("question")):
        label = "prompt preview with the template's question"
        ckpt = session.checkpoint(session.names[0])
        kind = default_mode(ckpt.kind) if session.mode == "compare" else session.mode
        question = session.vars.get("question") or t.variables["question"]
        shown = [(ckpt, session.build_prompt(ckpt, kind, question, history=True)[0])]
    else:
        session.console.print(Text("no prompt yet: ask something, then /show displays exactly what the model saw",
                                   style="dim"))
        return
    for ckpt, ids in shown:
        session.console.print(Text(f"{label} ({ckpt.name}):", style="cyan"))
        session.console.print(visible_prompt(ckpt.tokenizer, ids))
        session.console.print(Text(f"{len(ids)} tokens", style="bold"))


def cmd_tokens(session, arg: str) -> None:
    exchange = session.last_exchange("/tokens")
    for answer in exchange.answers:
        ids, tokens = answer.ids, list(answer.result.tokens)
        session.console.print(Text(f"{answer.checkpoint.name}: {len(ids)} prompt tokens (dim) + {len(tokens)} "
                                   "answer tokens (green); special tokens magenta", style="cyan"))
        session.console.print(colored_tokens(answer.checkpoint.tokenizer, ids + tokens,
                                             [0] * len(ids) + [1] * len(tokens)))


# ---- the conversation -------------------------------------------------------------------------


def cmd_undo(session, arg: str) -> None:
    exchange = session.last_exchange("/undo")
    session.exchanges.pop()
    session.messages = exchange.history_before
    session.pending = None
    session.console.print(Text(f"undone: {exchange.text[:60]!r}", style="dim"))


def cmd_clear(session, arg: str) -> None:
    session.messages, session.exchanges, session.pending = [], [], None
    session.console.print(Text("conversation cleared (settings, template and system message stay)", style="dim"))


def cmd_quit(session, arg: str) -> None:
    session.done = True


def cmd_help(session, arg: str) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for command in dict.fromkeys(COMMANDS.values()):
        table.add_row(Text(command.usage), Text(command.help))
    session.console.print(table)
    session.console.print(Text('"""  starts a multi-line block (end it with """); Esc+Enter adds a line; '
                               "Ctrl-C stops an answer; Ctrl-D leaves", style="dim"))


# ---- /regen: alternatives, pick, ranking ------------------------------------------------------


@dataclass
class PendingPick:
    """Alternatives from /regen waiting for the user to pick one (and maybe order them)."""

    exchange: object  # chat.Exchange
    results: list
    seed: int


def cmd_regen(session, arg: str) -> None:
    """k new answers to the last prompt, side by side; the next input picks one."""
    k = parse_count(arg, "/regen", min(session.settings.samples, MAX_PANELS), MAX_PANELS)
    exchange = session.last_exchange("/regen")
    if exchange.mode == "compare":
        raise UsageError("/regen works on one model; switch with /mode assistant or /mode base")
    first = exchange.answers[0]
    seed = session.turn_seed()
    with PanelStream(session.console, [str(i + 1) for i in range(k)]) as panels:
        results = session.generate(first.checkpoint, first.ids, seed=seed, k=k, on_text=panels.add)
        for i, result in enumerate(results):
            panels.finish(i, speed(result))
    for i, result in enumerate(results):
        session.log_turn(Answer(first.checkpoint, first.ids, result, seed), prompt=exchange.text,
                         mode=exchange.mode, extra={"regen": i + 1, "of": k})
    session.pending = PendingPick(exchange, results, seed)
    session.console.print(Text(f"pick 1-{k} to continue with it; an ordering like 2>1=3 also saves a ranking; "
                               "Enter keeps the current answer", style="cyan"))


def apply_pick(session, line: str) -> None:
    pending = session.pending
    if not line.strip():
        session.pending = None
        session.console.print(Text("kept the current answer", style="dim"))
        return
    best, ranks = parse_pick(line, len(pending.results))  # a bad ordering keeps the pick open
    session.pending = None
    exchange, chosen = pending.exchange, pending.results[best]
    first = exchange.answers[0]
    exchange.answers[0] = Answer(first.checkpoint, first.ids, chosen, pending.seed)
    if exchange.mode == "assistant" and session.messages and session.messages[-1]["role"] == "assistant":
        session.messages[-1] = {"role": "assistant", "content": chosen.text}
    session.console.print(Text(f"continuing with answer {best + 1}", style="green"))
    if ranks is None:
        return
    items = [{"text": r.text, "checkpoint": first.checkpoint.name} for r in pending.results]
    ranking_id = session.logbook().log_ranking(
        exchange.text, items, ranks, rater="chat", settings=session.settings_dict(pending.seed),
        seed=pending.seed, note=f"gptkit chat session {session.session_id()}")
    session.console.print(Text(f"ranking #{ranking_id} saved ({line.strip()})", style="green"))


# ---- /vote: self-consistency ------------------------------------------------------------------


def extract_vote_answer(text: str, template) -> str | None:
    """The template's answer extraction, else "The answer is X." and then the first line."""
    if template is not None:
        return extract_answer(text, template.answer_regex, template.normalize)
    return extract_answer(text, DEFAULT_ANSWER_REGEX) or extract_answer(text, None)


def vote_targets(session) -> tuple[str, list[tuple[object, list[int]]]]:
    """The current question and (checkpoint, prompt ids) to sample it from."""
    if session.exchanges:
        last = session.exchanges[-1]
        return last.text, [(a.checkpoint, a.ids) for a in last.answers]
    t = session.template
    question = session.vars.get("question") or (t.variables.get("question") if t else None)
    if not question:
        raise UsageError("/vote: ask a question first (or pick a template with a default question)")
    compare = session.mode == "compare"
    ckpts = [session.checkpoint(n) for n in (session.names if compare else session.names[:1])]
    return question, [(c, session.build_prompt(c, default_mode(c.kind) if compare else session.mode, question,
                                               history=False)[0]) for c in ckpts]


def cmd_vote(session, arg: str) -> None:
    """Self-consistency: k answers in lock-step, extract each, majority vote, histogram."""
    t = session.template
    k = parse_count(arg, "/vote", (t.sc_samples if t and t.sc_samples else session.settings.samples), 256)
    question, targets = vote_targets(session)
    temperature = t.sc_temperature if t and t.sc_temperature else session.settings.temperature or VOTE_TEMPERATURE
    seed = session.turn_seed()
    session.console.print(Text(question, style="bold"))
    for ckpt, ids in targets:
        with session.console.status(Text(f"sampling {k} answers from {ckpt.name}…")):
            results = session.generate(ckpt, ids, seed=seed, k=k, temperature=temperature)
        answers = [extract_vote_answer(r.text, t) for r in results]
        vote = majority_vote(answers)
        show_vote(session.console, f"{ckpt.name} · {ckpt.kind} · {k} samples at temperature {temperature}",
                  results, answers, vote)
        all_tokens = [tok for r in results for tok in r.tokens]  # the row counts every sample's tokens
        session.log_turn(Answer(ckpt, ids, dataclasses.replace(results[0], tokens=all_tokens), seed),
                         prompt=question, mode=session.mode, kind="vote", output=vote.answer or "",
                         settings=session.settings_dict(seed, temperature=temperature, samples=k),
                         extra={"samples": [r.text for r in results], "answers": answers, "counts": vote.counts,
                                "agreement": vote.agreement, "n": vote.n})


def show_vote(console, title: str, results, answers, vote) -> None:
    console.print(Text(title, style="cyan"))
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("#", justify="right")
    table.add_column("answer", style="bold", no_wrap=True, max_width=20)
    table.add_column("sample", style="dim", no_wrap=True, overflow="ellipsis", ratio=1)
    for i, (result, answer) in enumerate(zip(results, answers), start=1):
        table.add_row(str(i), Text(displayable(answer or "(none)")), Text(displayable(" ".join(result.text.split()))))
    console.print(table)
    counts = [(None if a is None else displayable(a), n) for a, n in vote.counts]
    counts += [(None, vote.n - vote.n_valid)] if vote.n_valid < vote.n else []
    console.print(vote_bars(counts, vote.n))
    winner = vote.answer if vote.answer is not None else "(no answer)"
    console.print(Text.assemble("answer ", (displayable(winner), "bold green"),
                                f" · agreement {vote.agreement:.0%} ({vote.n_valid}/{vote.n} samples had an answer)"))


# ---- /save and /load --------------------------------------------------------------------------


def template_ref(template) -> str:
    """The template's name when the name finds this very file again, else its path."""
    try:
        found = load_template(template.name).source == template.source
    except GptkitError:
        found = False
    return template.name if found else str(template.source)


def cmd_save(session, arg: str) -> None:
    if not arg:
        raise UsageError("/save: give a file name, e.g. /save chat.json")
    path = Path(arg).expanduser()
    data = {"format": CHAT_FORMAT, "version": 1, "checkpoints": session.names, "mode": session.mode,
            "template": template_ref(session.template) if session.template else None, "vars": session.vars,
            "system": session.system, "settings": dataclasses.asdict(session.settings), "messages": session.messages}
    try:
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise UsageError(f"/save: cannot write {path} ({e.strerror or e})") from None
    session.console.print(Text(f"saved {len(session.messages)} messages and the settings to {path}", style="green"))


def _expect(data: dict, key: str, kinds, what: str, path: Path):
    value = data.get(key)
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
        raise DataError(f"expected {what}, got {type(value).__name__}", path=path, field=key)
    return value


def read_saved_chat(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"not a readable JSON chat file ({e})", path=path) from None
    if not isinstance(data, dict) or data.get("format") != CHAT_FORMAT:
        raise DataError(f'not a saved gptkit chat (expected "format": "{CHAT_FORMAT}")', path=path)
    names = _expect(data, "checkpoints", list, "a list of checkpoint names", path)
    if not names or not all(isinstance(n, str) for n in names):
        raise DataError("expected a non-empty list of checkpoint names", path=path, field="checkpoints")
    if data.get("mode") not in MODES:
        raise DataError(f"expected one of {', '.join(MODES)}", path=path, field="mode")
    _expect(data, "template", (str, type(None)), "a template name or null", path)
    _expect(data, "system", (str, type(None)), "text or null", path)
    variables = _expect(data, "vars", dict, "an object of variables", path)
    if not all(isinstance(v, str) for v in variables.values()):
        raise DataError("expected text values", path=path, field="vars")
    messages = _expect(data, "messages", list, "a list of messages", path)
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                or not isinstance(m.get("content"), str):
            raise DataError("expected {\"role\": system|user|assistant, \"content\": text}", path=path,
                            field=f"messages[{i}]")
    settings = ChatSettings()
    for name, value in _expect(data, "settings", dict, "an object of settings", path).items():
        if name not in SETTINGS:
            raise DataError(f"unknown setting (expected one of {', '.join(SETTINGS)})", path=path,
                            field=f"settings.{name}")
        text = "off" if value is None else ("on" if value is True else "off" if value is False else str(value))
        try:
            setattr(settings, name, SETTINGS[name](text))
        except UsageError as e:
            raise DataError(str(e), path=path, field=f"settings.{name}") from None
    return {**data, "settings": settings}


def cmd_load(session, arg: str) -> None:
    if not arg:
        raise UsageError("/load: give a file written by /save")
    path = Path(arg).expanduser()
    data = read_saved_chat(path)
    template = load_template(data["template"]) if data["template"] else None
    session.use_checkpoints(data["checkpoints"], data["mode"])
    session.template = template
    session.settings, session.vars, session.system = data["settings"], dict(data["vars"]), data["system"]
    session.messages, session.exchanges = list(data["messages"]), []
    session.console.print(Text(f"loaded {len(session.messages)} messages from {path} · {' · '.join(session.names)} "
                               f"· mode {session.mode}", style="green"))


COMMANDS = {
    "help": Command(cmd_help, "/help", "this list"),
    "model": Command(cmd_model, "/model NAME", "chat with another checkpoint (mode follows its kind)"),
    "compare": Command(cmd_compare, "/compare A B ...", "send each prompt to several checkpoints, side by side"),
    "mode": Command(cmd_mode, "/mode base|assistant|compare", "document completion, conversation, or compare"),
    "template": Command(cmd_template, "/template NAME|off", "render prompts with a template (its sampling too)"),
    "vars": Command(cmd_vars, "/vars k=v ...", "set template variables (no arguments: show them)"),
    "set": Command(cmd_set, "/set KEY VALUE", "temperature, top_k, top_p, max_tokens, seed, samples, stats"),
    "show": Command(cmd_show, "/show", "settings, template, and the exact prompt with its token count"),
    "system": Command(cmd_system, "/system TEXT|off", "the system message for chat prompts"),
    "regen": Command(cmd_regen, "/regen [k]", "k new answers side by side; pick one, or order them to rank"),
    "vote": Command(cmd_vote, "/vote [k]", "self-consistency: k samples, extract answers, majority vote"),
    "tokens": Command(cmd_tokens, "/tokens", "the last exchange, token by token"),
    "undo": Command(cmd_undo, "/undo", "forget the last exchange"),
    "clear": Command(cmd_clear, "/clear", "start the conversation afresh"),
    "save": Command(cmd_save, "/save FILE", "save messages, settings, checkpoints, mode and template as JSON"),
    "load": Command(cmd_load, "/load FILE", "continue a chat saved with /save"),
    "quit": Command(cmd_quit, "/quit", "leave (Ctrl-D too)"),
}
COMMANDS["exit"] = COMMANDS["quit"]


# ---- completion -------------------------------------------------------------------------------


def template_names() -> list[str]:
    """Names by file, without parsing: a broken user template must not break completion."""
    return sorted({p.stem for _, folder in template_folders() if folder.is_dir() for p in folder.glob("*.yaml")})


def checkpoint_names() -> list[str]:
    from gptkit.checkpoint import GENERATIVE_KINDS, list_checkpoints

    return [row["name"] for row in list_checkpoints() if row.get("kind") in GENERATIVE_KINDS]


def argument_candidates(command: str, before: list[str]) -> list[str]:
    """What may come next after `/command before...`."""
    if command in ("model", "compare"):
        return checkpoint_names()
    if before:
        return {"stats": ["on", "off"], "seed": ["random"], "top_k": ["off"], "top_p": ["off"]}.get(
            before[0], []) if command == "set" and len(before) == 1 else []
    return {"template": [*template_names(), "off"], "mode": list(MODES), "set": list(SETTINGS),
            "system": ["off"], "vars": ["clear"]}.get(command, [])


class ChatCompleter(Completer):
    """Tab completion for slash commands, then their arguments (checkpoints, templates, ...)."""

    def __init__(self, session):
        self.session = session

    def get_completions(self, document, complete_event):
        text = document.text_before_cursor
        if not text.startswith("/") or "\n" in text:
            return
        if " " not in text:
            for name, command in COMMANDS.items():
                if name.startswith(text[1:].lower()):
                    yield Completion("/" + name, start_position=-len(text), display_meta=command.help)
            return
        command, rest = text[1:].split(" ", 1)
        *before, word = rest.split(" ")
        for candidate in argument_candidates(command.lower(), [w for w in before if w]):
            if candidate.startswith(word):
                yield Completion(candidate, start_position=-len(word))
