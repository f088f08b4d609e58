"""What a person types into `gptkit chat`, turned into calls on a `ChatSession`.

Owns: `handle` (one input: a pick after /regen, a /command, or a prompt), parsing each
/command's arguments into a one-line `UsageError` when they are wrong (never a traceback), the
confirmation each command prints, the table `COMMANDS` (the index of them all) and the
prompt-toolkit completer for commands, template names and checkpoint names.

Japanese (and other) input methods often commit full-width forms: "／ｓｅｔ　ｔｅｍｐｅｒａｔｕｒｅ　０．５"
or "２＞１". Commands, their arguments and picks are read with full-width forms folded to ASCII
(`rank.typed_form`), so those work as typed; a prompt, and the free text of /system, /vars,
/save and /load, is kept exactly as typed; a checkpoint name is folded only when no checkpoint
has the name as typed.

Must not change a session's state except through its methods (chat_session.py owns the state);
must not know the engine, tensors or SQL.
"""

import difflib
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prompt_toolkit.completion import Completer, Completion
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gptkit.errors import GptkitError, UsageError
from gptkit.prompting.templates import required_variables, template_folders
from gptkit.ui.chat_session import ChatSession
from gptkit.ui.chat_settings import MAX_SAMPLES, MODES, SETTINGS, parse_number
from gptkit.ui.rank import OrderingError, parse_ordering, typed_form
from gptkit.ui.render import clip_cells, colored_tokens, visible_prompt

MAX_PANELS = 16  # /regen shows its answers side by side


@dataclass(frozen=True)
class Command:
    run: Callable  # (session, argument text) -> None
    usage: str
    help: str
    verbatim: bool = False  # the argument is the user's own text (a message, a file name): never normalised


# ---- one input --------------------------------------------------------------------------------


def handle(session: ChatSession, line: str, *, errors: Console | None = None) -> bool:
    """One input: a pick after /regen, a /command, or a prompt. A user error becomes one
    `error:` line (on `errors`, default the session's console) and False; never raises one."""
    typed = typed_form(line)
    try:
        if session.pending is not None and looks_like_pick(typed):
            apply_pick(session, typed)
            return True
        if session.pending is not None:
            session.console.print(Text("(no pick: the current answer stays)", style="dim"))
            session.keep_current()
        if not line.strip():
            return True
        if typed.lstrip().startswith("/"):
            run_command(session, line.strip())
        else:
            session.ask(line)
        return True
    except GptkitError as e:
        (errors or session.console).print(Text(f"error: {e}", style="red"), soft_wrap=True)
        return False
    except KeyboardInterrupt:
        session.console.print(Text("interrupted", style="yellow"))
        return True


def run_command(session: ChatSession, line: str) -> None:
    """`line` as typed, starting with "/" or "／"; words may be split by any space, U+3000 too."""
    word, *rest = re.split(r"\s+", line[1:], maxsplit=1)
    name = typed_form(word).lower()
    command = COMMANDS.get(name)
    if command is None:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"did you mean /{close[0]}? " if close else ""
        raise UsageError(f"unknown command /{name}; {hint}/help lists them")
    arg = rest[0].strip() if rest else ""
    command.run(session, arg if command.verbatim else typed_form(arg))


# ---- argument parsing -------------------------------------------------------------------------


def parse_count(arg: str, command: str, default: int, most: int) -> int:
    if not arg.strip():
        return default
    return parse_number(command, arg.strip(), integer=True, ok=lambda x: 1 <= x <= most, expected=f"an integer 1-{most}")


_PICK = re.compile(r"\s*(\d+\s*([>=]\s*\d+\s*)*)?")


def looks_like_pick(line: str) -> bool:
    """An answer to /regen: empty (keep), a number, or an ordering like 2>1=3."""
    return _PICK.fullmatch(line) is not None


def parse_pick(text: str, k: int) -> tuple[int, list[int] | None]:
    """'2' -> (1, None): the picked answer (0-based), no ranking. '2>1=3' -> (1, [2, 1, 2]): the
    first-named answer continues the chat and the ordering (rank.parse_ordering) is a ranking."""
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


def example_names(session: ChatSession) -> str:
    """Two checkpoint names for an example command: the session's own, then any other that can
    chat, so a hint never suggests names that do not exist."""
    names = list(session.names)
    if len(names) < 2:
        names += [n for n in checkpoint_names() if n not in names][:2 - len(names)]
    return " ".join(names[:2]) if len(names) >= 2 else f"{names[0]} OTHER"


# ---- models, modes, templates -----------------------------------------------------------------


def checkpoint_arg(name: str) -> str:
    """A checkpoint name as typed, or its full-width forms folded (ｂａｓｅ -> base) when no
    checkpoint has the name as typed: a Japanese run may well be called 実験１."""
    from gptkit.checkpoint import resolve_checkpoint

    folded = typed_form(name)
    if folded == name:
        return name
    try:
        resolve_checkpoint(name)
        return name
    except GptkitError:
        return folded


def cmd_model(session: ChatSession, arg: str) -> None:
    arg = checkpoint_arg(arg)
    if not arg:
        raise UsageError("/model: give a checkpoint name (Tab completes)")
    session.use_checkpoints([arg])
    session.console.print(Text.assemble("model ", (arg, "bold"), f" · mode {session.mode}"))


def cmd_compare(session: ChatSession, arg: str) -> None:
    names = [checkpoint_arg(n) for n in shlex.split(arg.replace("\u3000", " "))]
    if not names:
        raise UsageError(f"/compare: give two or more checkpoints, e.g. /compare {example_names(session)}")
    if len(names) == 1:  # compare the current model with this one
        names = [session.names[0], *names]
    session.use_checkpoints(names, "compare")
    session.console.print(Text(f"compare mode: {' · '.join(names)}; each prompt goes to all, same seed"))


def cmd_mode(session: ChatSession, arg: str) -> None:
    session.switch_mode(arg)
    using = session.names if arg == "compare" else session.names[:1]
    session.console.print(Text(f"mode {arg} · {' · '.join(using)}"))


def show_template(session: ChatSession, template) -> None:
    s = session.settings
    session.console.print(Text(f"template {template.name}: temperature {s.temperature}, max_tokens {s.max_tokens}, "
                               f"seed {s.seed} (its defaults; /set changes them)", style="cyan"))
    if "question" not in required_variables(template):
        session.console.print(Text(f"note: {template.name}'s prompt has no {{question}}, so what you type is not "
                                   "used; set its variables with /vars", style="yellow"))


def cmd_template(session: ChatSession, arg: str) -> None:
    if not arg:
        current = session.template.name if session.template else "none"
        session.console.print(Text(f"template {current}; /template NAME (Tab completes) or /template off"))
    elif arg == "off":
        restored = session.template_off()
        back = ", ".join(f"{k} {session.settings.shown(k)}" for k in restored)
        session.console.print(Text("template off" + (f" · back to {back}" if back else "")))
    else:
        show_template(session, session.use_template(arg))


def cmd_vars(session: ChatSession, arg: str) -> None:
    if typed_form(arg) in ("off", "clear"):
        session.clear_vars()
    else:
        pairs = {}
        for pair in shlex.split(arg.replace("\u3000", " ")):  # an input method's space separates too
            key, eq, value = re.match(r"([^=＝]*)([=＝]?)(.*)", pair, re.DOTALL).groups()  # the value stays as typed
            key = typed_form(key)
            if not eq or not key.isidentifier():
                raise UsageError(f"/vars: expected name=value pairs, got '{pair}'")
            pairs[key] = value
        session.set_vars(pairs)
    defaults = session.template.variables if session.template else {}
    shown = {**defaults, **session.vars}
    session.console.print(Text(" ".join(f"{k}={v!r}" for k, v in shown.items()) or "no variables"))


def cmd_system(session: ChatSession, arg: str) -> None:
    if arg:
        session.set_system(None if typed_form(arg) == "off" else arg)
    session.console.print(Text(f"system: {session.system!r}" if session.system else "no system message"))


def cmd_set(session: ChatSession, arg: str) -> None:
    name, _, value = arg.partition(" ")
    if not arg:
        session.console.print(Text(session.settings.text()))
        return
    if name not in SETTINGS:
        close = difflib.get_close_matches(name, SETTINGS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(f"/set: unknown setting '{name}'; {hint}settings: {', '.join(SETTINGS)}")
    if not value.strip():
        raise UsageError(f"/set {name}: give a value")
    session.set_setting(name, value.strip())
    session.console.print(Text(session.settings.text(), style="dim"))


# ---- looking at prompts and tokens ------------------------------------------------------------


def cmd_show(session: ChatSession, arg: str) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # a system message with no spaces (Japanese) wraps, never cut to one line
    t = session.template
    rows = [("checkpoints", " · ".join(session.names)), ("mode", session.mode),
            ("template", f"{t.name} — {t.description}" if t else "none")]
    if t:
        rows += [("variables", " ".join(f"{k}={v!r}" for k, v in {**t.variables, **session.vars}.items())),
                 ("stop", ", ".join(repr(s) for s in t.stop) or "none")]
    seen = len(session.context())
    context = f" (the model sees the last {seen})" if seen < len(session.messages) else ""
    rows += [("system", repr(session.system) if session.system else "none"),
             ("settings", session.settings.text()),
             ("conversation", f"{len(session.messages)} messages{context}, {len(session.exchanges)} exchanges")]
    for name, value in rows:
        table.add_row(name, Text(value))
    session.console.print(table)
    if session.exchanges:
        label = "prompt of the last turn"
        shown = [(a.checkpoint, a.ids) for a in session.exchanges[-1].answers]
    elif (preview := session.question_preview()) is not None:
        label = "prompt preview with the template's question"
        shown = [preview]
    else:
        session.console.print(Text("no prompt yet: ask something, then /show displays exactly what the model saw",
                                   style="dim"))
        return
    for ckpt, ids in shown:
        session.console.print(Text(f"{label} ({ckpt.name}):", style="cyan"))
        session.console.print(visible_prompt(ckpt.tokenizer, ids))
        session.console.print(Text(f"{len(ids)} tokens", style="bold"))


def cmd_tokens(session: ChatSession, arg: str) -> None:
    exchange = session.last_exchange("/tokens")
    for answer in exchange.answers:
        ids, tokens = answer.ids, list(answer.result.tokens)
        session.console.print(Text(f"{answer.checkpoint.name}: {len(ids)} prompt tokens (dim) + {len(tokens)} "
                                   "answer tokens (green), each on its own shade; special tokens magenta",
                                   style="cyan"))
        session.console.print(colored_tokens(answer.checkpoint.tokenizer, ids + tokens,
                                             [0] * len(ids) + [1] * len(tokens)), soft_wrap=True)


# ---- the conversation -------------------------------------------------------------------------


def cmd_undo(session: ChatSession, arg: str) -> None:
    exchange = session.undo()
    session.console.print(Text(f"undone: {clip_cells(exchange.text, 60)!r}", style="dim"))


def cmd_clear(session: ChatSession, arg: str) -> None:
    session.clear()
    session.console.print(Text("conversation cleared (settings, template and system message stay)", style="dim"))


def cmd_quit(session: ChatSession, arg: str) -> None:
    session.end()


def cmd_help(session: ChatSession, arg: str) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for command in dict.fromkeys(COMMANDS.values()):
        table.add_row(Text(command.usage), Text(command.help))
    session.console.print(table)
    session.console.print(Text('Enter sends; Esc+Enter (Alt+Enter) adds a line; pasted lines stay one message; '
                               '"""  starts a multi-line block (end it with """); commands and picks may be typed '
                               "full-width (／ｓｅｔ　ｔｅｍｐｅｒａｔｕｒｅ　０．５, ２＞１); Ctrl-C stops an answer; "
                               "Ctrl-D leaves", style="dim"))


# ---- /regen, /vote ------------------------------------------------------------------------------


def cmd_regen(session: ChatSession, arg: str) -> None:
    """k new answers to the last prompt, side by side; the next input picks one."""
    k = parse_count(arg, "/regen", min(session.settings.samples, MAX_PANELS), MAX_PANELS)
    session.regen(k)
    session.console.print(Text(f"pick 1-{k} to continue with it; an ordering like 2>1=3 also saves a ranking; "
                               "Enter keeps the current answer", style="cyan"))


def apply_pick(session: ChatSession, line: str) -> None:
    if not line.strip():
        session.keep_current()
        session.console.print(Text("kept the current answer", style="dim"))
        return
    best, ranks = parse_pick(line, len(session.pending.results))  # a bad ordering keeps the pick open
    ranking_id = session.pick(best, ranks)
    session.console.print(Text(f"continuing with answer {best + 1}", style="green"))
    if ranking_id is not None:
        session.console.print(Text(f"ranking #{ranking_id} saved ({line.strip()})", style="green"))


def cmd_vote(session: ChatSession, arg: str) -> None:
    """Self-consistency: k answers in lock-step, extract each, majority vote, histogram."""
    session.vote(parse_count(arg, "/vote", session.vote_samples(), MAX_SAMPLES))


# ---- /save and /load --------------------------------------------------------------------------


def cmd_save(session: ChatSession, arg: str) -> None:
    words = shlex.split(arg.replace("\u3000", " "))
    overwrite = any(typed_form(w) == "--overwrite" for w in words)
    names = [w for w in words if typed_form(w) != "--overwrite"]
    if len(names) != 1:
        raise UsageError("/save: give one file name, e.g. /save chat.json (add --overwrite to replace a file)")
    path = Path(names[0]).expanduser()
    session.save(path, overwrite=overwrite)
    session.console.print(Text(f"saved {len(session.messages)} messages and the settings to {path}", style="green"))


def cmd_load(session: ChatSession, arg: str) -> None:
    if not arg:
        raise UsageError("/load: give a file written by /save")
    path = Path(arg).expanduser()
    session.load(path)
    session.console.print(Text(f"loaded {len(session.messages)} messages from {path} · {' · '.join(session.names)} "
                               f"· mode {session.mode}", style="green"))


COMMANDS = {
    "help": Command(cmd_help, "/help", "this list"),
    "model": Command(cmd_model, "/model NAME", "chat with another checkpoint (mode follows its kind)",
                     verbatim=True),
    "compare": Command(cmd_compare, "/compare A B ...", "send each prompt to several checkpoints, side by side",
                       verbatim=True),
    "mode": Command(cmd_mode, "/mode base|assistant|compare", "document completion, conversation, or compare"),
    "template": Command(cmd_template, "/template NAME|off", "render prompts with a template (its sampling too)"),
    "vars": Command(cmd_vars, "/vars k=v ...", "set template variables (no arguments: show them)",
                    verbatim=True),
    "set": Command(cmd_set, "/set KEY VALUE", "temperature, top_k, top_p, max_tokens, seed, samples, stats"),
    "show": Command(cmd_show, "/show", "settings, template, and the exact prompt with its token count"),
    "system": Command(cmd_system, "/system TEXT|off", "the system message for chat prompts", verbatim=True),
    "regen": Command(cmd_regen, "/regen [k]", "k new answers side by side; pick one, or order them to rank"),
    "vote": Command(cmd_vote, "/vote [k]", "self-consistency: k samples, extract answers, majority vote"),
    "tokens": Command(cmd_tokens, "/tokens", "the last exchange, token by token"),
    "undo": Command(cmd_undo, "/undo", "forget the last exchange"),
    "clear": Command(cmd_clear, "/clear", "start the conversation afresh"),
    "save": Command(cmd_save, "/save FILE [--overwrite]", "save messages, settings, checkpoints, mode and template",
                    verbatim=True),
    "load": Command(cmd_load, "/load FILE", "continue a chat saved with /save", verbatim=True),
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

    def get_completions(self, document, complete_event):
        typed = document.text_before_cursor
        # Full-width forms complete as their ASCII twins; folding keeps the length, so the
        # positions below count in what was typed.
        text = typed_form(typed)
        if not text.startswith("/") or "\n" in text or len(text) != len(typed):
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
