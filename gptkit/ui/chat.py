"""`gptkit chat`: the terminal workbench where a person prompts, compares, votes and ranks.

Owns the state and behaviour of one chat (`ChatSession`: checkpoints loaded once by name, mode,
messages, settings, template, the exchanges so far), the prompt-toolkit loop around it
(`run_repl`) and the line-by-line loop used when stdin is not a terminal (`run_lines`). The slash
commands (parsing, /show, /tokens, /save, /load, ...) live in `chat_commands.py`.

Contract:
- `ChatSession.handle(line)` takes one input (a prompt, a slash command, or the pick that follows
  /regen) and writes everything to its Rich console. A user mistake prints one `error:` line;
  Ctrl-C during a generation keeps the partial answer, marked interrupted.
- Every completed turn is in the logbook (kind "chat"; "vote" for /vote) before `handle`
  returns, with checkpoint, template, mode, session id, the rendered prompt, settings and the
  seed that reproduces it: a turn without a fixed seed draws one and logs it.
- Modes: "assistant" keeps a multi-turn conversation and drops its oldest turns, visibly, when
  the context fills; "base" completes each input as a document; "compare" sends each input as a
  fresh single turn, same seed, to every checkpoint and shows the answers side by side.
- Checkpoints start loading in a background thread once the prompt is on screen (torch takes
  seconds to import); the first generation waits for them.

Must not know: the engine, tensors or SQL. Text becomes ids only through `gptkit.textgen` and
the tokenizer; torch is imported only when a checkpoint loads.

Length: about 600 lines because a chat turn has three shapes (conversation with context
trimming, document, compare with live panels) that share the logging, seeding and interrupt
handling kept here; the commands that merely act on a session live in chat_commands.py.
"""

import os
import random
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.text import Text

from gptkit import paths
from gptkit.checkpoint import CHAT_KINDS, GENERATIVE_KINDS
from gptkit.errors import GptkitError, UsageError
from gptkit.prompting.templates import render_base, render_chat_messages
from gptkit.ui.render import answer_grid, displayable

MODES = ("base", "assistant", "compare")


@dataclass
class ChatSettings:
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    max_tokens: int = 256
    seed: int | None = None  # None: each turn draws a seed (and logs it)
    samples: int = 3  # k for /regen, and for /vote when the template sets none
    stats: bool = False


@dataclass
class Answer:
    checkpoint: object  # gptkit.checkpoint.Checkpoint
    ids: list[int]  # the prompt exactly as sent
    result: object  # gptkit.textgen.TextResult
    seed: int


@dataclass
class Exchange:
    """One input and what came back: the unit that /regen, /vote, /tokens and /undo act on."""

    text: str  # what the user typed
    mode: str
    answers: list[Answer]
    history_before: list[dict]  # the conversation before this exchange, for /undo


# ---- checkpoints ------------------------------------------------------------------------------


def peek_kind(spec: str) -> str:
    """A checkpoint's kind from its metadata alone (no torch); CheckpointError if unusable."""
    from gptkit.checkpoint import display_name, read_meta, resolve_checkpoint
    from gptkit.errors import CheckpointError

    step_dir = resolve_checkpoint(spec)
    kind = read_meta(step_dir)["kind"]
    if kind not in GENERATIVE_KINDS:
        raise CheckpointError(f"{display_name(step_dir)}: is a {kind} checkpoint; chat needs base, assistant or policy")
    return kind


def newest_checkpoint() -> str:
    """The most recently saved run that can chat, for `gptkit chat` without -m."""
    from gptkit.checkpoint import list_checkpoints

    rows = [r for r in list_checkpoints() if r.get("kind") in GENERATIVE_KINDS]
    if not rows:
        raise UsageError(f"no checkpoints in {paths.checkpoints_dir()}: run `gptkit quickstart`, or pass -m PATH")
    return max(rows, key=lambda r: str(r.get("created") or ""))["name"]


def default_mode(kind: str) -> str:
    return "base" if kind == "base" else "assistant"


class CheckpointCache:
    """Checkpoints loaded once per name; `preload` starts loading in the background.

    A name is resolved to its step folder once, so a run that saves a newer step meanwhile does
    not swap the model under a conversation; a new session picks up the newest step."""

    def __init__(self, device: str = "auto"):
        self.device_spec = device
        self._device = None  # the DeviceChoice, picked on first load
        self._steps: dict[str, Path] = {}
        self._loaded: dict[Path, object] = {}
        self._lock = threading.Lock()  # a caller waits for a load in progress instead of repeating it

    def step_dir(self, spec: str) -> Path:
        from gptkit.checkpoint import resolve_checkpoint

        if spec not in self._steps:
            self._steps[spec] = resolve_checkpoint(spec)
        return self._steps[spec]

    def is_loaded(self, spec: str) -> bool:
        return self.step_dir(spec) in self._loaded

    def get(self, spec: str):
        from gptkit.checkpoint import load_checkpoint

        step_dir = self.step_dir(spec)
        with self._lock:
            if step_dir not in self._loaded:
                if self._device is None:
                    from gptkit.device import pick_device

                    self._device = pick_device(self.device_spec)
                self._loaded[step_dir] = load_checkpoint(step_dir, device=self._device.device, kinds=GENERATIVE_KINDS,
                                                         dtype=self._device.dtype)
                import gptkit.textgen  # noqa: F401  (warm the import the first turn needs)
            return self._loaded[step_dir]

    def preload(self, specs: list[str]) -> None:
        threading.Thread(target=self._preload, args=(list(specs),), daemon=True).start()

    def _preload(self, specs: list[str]) -> None:
        for spec in specs:
            try:
                self.get(spec)
            except Exception:
                pass  # the same error is raised again, in the foreground, when the checkpoint is used


# ---- rendering helpers ------------------------------------------------------------------------


def visible_prompt(tokenizer, ids: list[int], *, for_terminal: bool = True) -> Text:
    """The prompt as the model sees it: decoded text with special tokens written out in magenta
    (`for_terminal`: control characters replaced, see `displayable`)."""
    clean = displayable if for_terminal else str
    out, run = Text(), []
    for i in ids:
        if tokenizer.is_special(i):
            if run:
                out.append(clean(tokenizer.decode(run)))
                run = []
            out.append(tokenizer.token_strings([i])[0], style="bold magenta")
        else:
            run.append(i)
    if run:
        out.append(clean(tokenizer.decode(run)))
    return out


def speed(result) -> str:
    n = len(result.tokens)
    return f"{n} tokens · {n / max(result.seconds, 1e-9):.1f} tok/s"


class PanelStream:
    """Answers streaming into side-by-side panels: a Rich Live display on a terminal, else one
    final render when the block ends (pipes and files get no cursor movement)."""

    def __init__(self, console: Console, titles: list[str]):
        self.console, self.titles = console, list(titles)
        self.texts = [""] * len(titles)
        self.footers = [""] * len(titles)
        self._live: Live | None = None
        self._shown = 0.0

    def renderable(self):
        return answer_grid(list(zip(self.titles, self.texts, self.footers)), self.console.width)

    def add(self, i: int, delta: str) -> None:
        self.texts[i] += delta
        self._refresh(force=False)

    def finish(self, i: int, footer: str) -> None:
        self.footers[i] = footer
        self._refresh(force=True)

    def _refresh(self, force: bool) -> None:
        now = time.perf_counter()
        if self._live is not None and (force or now - self._shown > 0.05):  # ~20 frames/s is plenty
            self._live.update(self.renderable(), refresh=True)
            self._shown = now

    def __enter__(self):
        if self.console.is_terminal:
            self._live = Live(self.renderable(), console=self.console, auto_refresh=False, vertical_overflow="ellipsis")
            self._live.start()
        return self

    def __exit__(self, *exc_info):
        if self._live is not None:
            self._live.update(self.renderable())
            self._live.stop()
        else:
            self.console.print(self.renderable())


# ---- the session ------------------------------------------------------------------------------


class ChatSession:
    def __init__(self, names: list[str], *, console: Console | None = None, mode: str | None = None,
                 device: str = "auto", template: str | None = None, system: str | None = None,
                 settings: ChatSettings | None = None):
        if not names:
            raise UsageError("chat needs a checkpoint: -m NAME (twice or more to compare)")
        self.console = console or Console()
        self.settings = settings or ChatSettings()
        self.cache = CheckpointCache(device)
        self.names: list[str] = []
        self.mode = "assistant"
        self.template = None
        self.vars: dict[str, str] = {}
        self.system = system
        self.messages: list[dict] = []
        self.exchanges: list[Exchange] = []
        self.pending = None  # chat_commands.PendingPick after /regen, until the next input
        self.done = False
        self._logbook = None
        self._session_id: str | None = None
        self.use_checkpoints(names, mode, preload=False)  # run_repl starts loading once the prompt shows
        if template:
            from gptkit.ui.chat_commands import use_template

            use_template(self, template)

    # ---- state changes used by the commands --------------------------------------------------

    def use_checkpoints(self, names: list[str], mode: str | None = None, *, preload: bool = True) -> None:
        kinds = [peek_kind(n) for n in names]  # a typo fails here, before anything loads
        mode = mode or ("compare" if len(names) > 1 else default_mode(kinds[0]))
        if mode not in MODES:
            raise UsageError(f"mode: expected one of {', '.join(MODES)}, got '{mode}'")
        if mode == "compare" and len(names) < 2:
            raise UsageError("compare mode needs two or more checkpoints: /compare A B")
        self.names, self.mode = list(names), mode
        self.pending = None
        if preload:
            self.preload()

    def switch_mode(self, mode: str) -> None:
        """/mode: compare answers with every checkpoint in the session; assistant mode puts a chat
        checkpoint first (a base model never learned the chat format), base mode a base one if
        the session has one (any model can continue a document)."""
        if mode not in MODES:
            raise UsageError(f"/mode: expected one of {', '.join(MODES)}, got '{mode}'")
        if mode == "compare":
            self.use_checkpoints(self.names, "compare")
            return
        fits = [n for n in self.names if peek_kind(n) in (CHAT_KINDS if mode == "assistant" else ("base",))]
        if mode == "assistant" and not fits:
            raise UsageError(f"/mode assistant: {self.names[0]} is a base model: it continues documents and was "
                             "never taught to chat; load an assistant with /model NAME")
        first = fits[0] if fits else self.names[0]
        self.names = [first] + [n for n in self.names if n != first]
        self.mode, self.pending = mode, None

    def preload(self) -> None:
        """Load the current checkpoints in a background thread (a turn waits for them)."""
        self.cache.preload(self.names)

    def checkpoint(self, spec: str):
        if self.cache.is_loaded(spec):
            return self.cache.get(spec)
        with self.console.status(Text(f"loading {spec}…")):
            return self.cache.get(spec)

    def stop_strings(self) -> tuple[str, ...]:
        return self.template.stop if self.template is not None else ()

    def settings_dict(self, seed: int | None, **overrides) -> dict:
        s = self.settings
        out = {"temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p, "max_tokens": s.max_tokens,
               "seed": seed, "stop": list(self.stop_strings())}
        return {**out, **overrides}

    def turn_seed(self) -> int:
        return self.settings.seed if self.settings.seed is not None else random.randrange(2**31)

    def prompt_label(self) -> str:
        if self.pending is not None:
            return f"pick 1-{len(self.pending.results)} › "
        return f"{self.mode} › "

    def status_line(self) -> str:
        s = self.settings
        template = self.template.name if self.template else "none"
        seed = "random" if s.seed is None else s.seed
        return (f" {' · '.join(self.names)} | {self.mode} | template {template} | temperature {s.temperature}"
                f" | max_tokens {s.max_tokens} | seed {seed} | /help")

    # ---- input --------------------------------------------------------------------------------

    def handle(self, line: str) -> None:
        """One input: a pick after /regen, a /command, or a prompt. Never raises a user error."""
        from gptkit.ui import chat_commands

        try:
            if self.pending is not None and chat_commands.looks_like_pick(line):
                chat_commands.apply_pick(self, line)
                return
            if self.pending is not None:
                self.console.print(Text("(no pick: the current answer stays)", style="dim"))
                self.pending = None
            if not line.strip():
                return
            if line.lstrip().startswith("/"):
                chat_commands.run_command(self, line.strip())
            else:
                self.ask(line.strip() if self.mode != "base" else line)
        except GptkitError as e:
            self.console.print(Text(f"error: {e}", style="red"), soft_wrap=True)
        except KeyboardInterrupt:
            self.console.print(Text("interrupted", style="yellow"))

    def ask(self, text: str) -> None:
        if self.mode == "compare":
            self._ask_compare(text)
        else:
            self._ask_single(text)

    # ---- prompts ------------------------------------------------------------------------------

    def with_system(self, messages: list[dict]) -> list[dict]:
        if not self.system:
            return messages
        if messages and messages[0]["role"] == "system":
            return [{"role": "system", "content": self.system}, *messages[1:]]
        return [{"role": "system", "content": self.system}, *messages]

    def build_prompt(self, ckpt, kind: str, text: str, *, history: bool) -> tuple[list[int], list[dict] | None]:
        """(prompt ids, the chat messages this turn adds; None for a base document)."""
        from gptkit.textgen import prompt_ids

        variables = {**self.vars, "question": text}
        if kind == "base":
            document = render_base(self.template, variables) if self.template else text
            return prompt_ids(ckpt.tokenizer, "base", document), None
        earlier = self.messages if history else []
        if self.template is not None and not earlier:
            new = render_chat_messages(self.template, variables)
        else:
            new = [{"role": "user", "content": text}]
        return prompt_ids(ckpt.tokenizer, "assistant", self.with_system(earlier + new)), new

    def _budget(self, ckpt) -> int:
        """Prompt tokens that fit beside the answer (the engine's own rule, `fit_prompt`)."""
        block = ckpt.model.config.block_size
        return block - min(self.settings.max_tokens, block // 2)

    def _drop_oldest_turn(self) -> bool:
        start = 1 if self.messages and self.messages[0]["role"] == "system" else 0
        if len(self.messages) <= start:
            return False
        del self.messages[start]
        while len(self.messages) > start and self.messages[start]["role"] != "user":
            del self.messages[start]
        return True

    def _fit_conversation(self, ckpt, text: str) -> tuple[list[int], list[dict]]:
        budget, dropped = self._budget(ckpt), 0
        ids, new = self.build_prompt(ckpt, "assistant", text, history=True)
        while len(ids) > budget and self._drop_oldest_turn():
            dropped += 1
            ids, new = self.build_prompt(ckpt, "assistant", text, history=True)
        if dropped:
            self.console.print(Text(f"context full: dropped the {dropped} oldest turn{'s' * (dropped > 1)} "
                                    f"(the prompt now fits in {budget} tokens)", style="yellow"))
        self._warn_if_cut(ids, budget)
        return ids, new

    def _warn_if_cut(self, ids: list[int], budget: int) -> None:
        if len(ids) > budget:
            self.console.print(Text(f"the prompt is {len(ids)} tokens; the model sees only its last {budget}",
                                    style="yellow"))

    # ---- generation ---------------------------------------------------------------------------

    def generate(self, ckpt, ids: list[int], *, seed: int, k: int = 1, temperature: float | None = None,
                 on_text=None) -> list:
        """k answers to `ids` in lock-step; Ctrl-C ends them early, keeping what was written."""
        from gptkit.engine import SamplingParams
        from gptkit.textgen import TextResult
        from gptkit.textgen import generate as generate_texts

        s = self.settings
        params = SamplingParams(temperature=s.temperature if temperature is None else temperature, top_k=s.top_k,
                                top_p=s.top_p, max_new_tokens=s.max_tokens, seed=seed)
        parts: list[list[str]] = [[] for _ in range(k)]

        def collect(_: int, row: int, delta: str) -> None:  # (prompt, sample, delta): one prompt here
            parts[row].append(delta)
            if on_text is not None:
                on_text(row, delta)

        start = time.perf_counter()
        try:
            (results,) = generate_texts(ckpt, [ids], params, k=k, stop=self.stop_strings(), on_text=collect)
            return results
        except KeyboardInterrupt:
            seconds = time.perf_counter() - start
            # The sampled ids died with the generator; re-encoding the kept text counts them closely enough.
            return [TextResult(text="".join(p), tokens=ckpt.tokenizer.encode("".join(p)), finish_reason="interrupted",
                               prompt_tokens=len(ids), seconds=seconds, seed=seed) for p in parts]

    def log_turn(self, answer: Answer, *, prompt: str, mode: str, kind: str = "chat", output: str | None = None,
                 settings: dict | None = None, extra: dict | None = None) -> int:
        result, ckpt = answer.result, answer.checkpoint
        return self.logbook().log_generation(
            kind=kind, session_id=self.session_id(), checkpoint=ckpt.name,
            template=self.template.name if self.template else None, mode=mode, prompt=prompt,
            rendered_prompt=visible_prompt(ckpt.tokenizer, answer.ids, for_terminal=False).plain,
            output=result.text if output is None else output, settings=settings or self.settings_dict(answer.seed),
            seed=answer.seed, tokens=len(result.tokens), seconds=round(result.seconds, 4),
            extra={"finish_reason": result.finish_reason, "prompt_tokens": len(answer.ids), **(extra or {})})

    def _ask_single(self, text: str) -> None:
        ckpt = self.checkpoint(self.names[0])
        if self.mode == "assistant":
            ids, new = self._fit_conversation(ckpt, text)
        else:
            ids, new = self.build_prompt(ckpt, "base", text, history=False)
            self._warn_if_cut(ids, self._budget(ckpt))
            tail = ckpt.tokenizer.decode(ids[1:]).rsplit("\n", 1)[-1]
            self.console.print(Text(displayable(tail), style="dim"), end="", soft_wrap=True)
        history_before, seed = list(self.messages), self.turn_seed()
        [result] = self.generate(ckpt, ids, seed=seed, on_text=lambda _, delta: self.console.print(
            displayable(delta), end="", markup=False, highlight=False, soft_wrap=True))
        self.console.print()
        if new is not None:
            self.messages += new + [{"role": "assistant", "content": result.text}]
        answer = Answer(ckpt, ids, result, seed)
        self.log_turn(answer, prompt=text, mode=self.mode)
        self.exchanges.append(Exchange(text, self.mode, [answer], history_before))
        self._after_answer(result)

    def _after_answer(self, result) -> None:
        if result.finish_reason == "interrupted":
            self.console.print(Text("⏹ interrupted: the partial answer is kept", style="yellow"))
        if self.settings.stats:
            self.console.print(Text(f"{speed(result)} · {result.seconds:.2f} s · {result.finish_reason}", style="dim"))

    def _ask_compare(self, text: str) -> None:
        ckpts = [self.checkpoint(n) for n in self.names]
        seed = self.turn_seed()
        prompts = [self.build_prompt(c, default_mode(c.kind), text, history=False)[0] for c in ckpts]
        answers = []
        with PanelStream(self.console, [f"{c.name} · {c.kind}" for c in ckpts]) as panels:
            for i, (ckpt, ids) in enumerate(zip(ckpts, prompts)):
                [result] = self.generate(ckpt, ids, seed=seed, on_text=lambda _, delta, i=i: panels.add(i, delta))
                panels.finish(i, speed(result) + (" · interrupted" if result.finish_reason == "interrupted" else ""))
                answers.append(Answer(ckpt, ids, result, seed))
                if result.finish_reason == "interrupted":
                    break
        for answer in answers:
            self.log_turn(answer, prompt=text, mode="compare", extra={"compare": [c.name for c in ckpts]})
        self.exchanges.append(Exchange(text, "compare", answers, list(self.messages)))

    def last_exchange(self, command: str) -> Exchange:
        if not self.exchanges:
            raise UsageError(f"{command}: nothing asked yet")
        return self.exchanges[-1]

    # ---- the logbook --------------------------------------------------------------------------

    def logbook(self):
        if self._logbook is None:
            from gptkit.store import open_logbook

            self._logbook = open_logbook()
        return self._logbook

    def session_id(self) -> str:
        """The logbook session, opened with the first turn (a chat left unused leaves no trace)."""
        if self._session_id is None:
            self._session_id = self.logbook().start_session(self.mode, list(self.names))
        return self._session_id

    def close(self) -> None:
        if self._logbook is not None:
            self._logbook.close()
            self._logbook = None


# ---- the loops --------------------------------------------------------------------------------


def unwrap_block(text: str) -> str:
    """A \"\"\"-delimited block without its delimiters; anything else unchanged."""
    stripped = text.strip()
    if stripped.startswith('"""'):
        body = stripped[3:]
        return (body[:-3] if body.endswith('"""') else body).strip("\n")
    return text


def open_block(text: str) -> bool:
    """Whether Enter should add a line: a \"\"\" block that has not been closed yet."""
    stripped = text.strip()
    return stripped.startswith('"""') and not (len(stripped) >= 6 and stripped.endswith('"""'))


def run_lines(session: ChatSession, lines) -> None:
    """Scripting: each line (or \"\"\" block) of `lines` is one input; answers go to the console."""
    block: list[str] | None = None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if block is not None:
            block.append(line)
            if line.rstrip().endswith('"""'):
                session.handle(unwrap_block("\n".join(block)))
                block = None
        elif open_block(line):
            block = [line]
        else:
            session.handle(line)
        if session.done:
            break
    if block is not None and not session.done:
        session.handle(unwrap_block("\n".join(block)))
    session.close()


def _key_bindings():
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()

    @bindings.add("enter")
    def _(event):
        buffer = event.current_buffer
        if buffer.complete_state is not None and buffer.complete_state.current_completion is not None:
            buffer.apply_completion(buffer.complete_state.current_completion)
        elif open_block(buffer.text):
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    def _(event):
        event.current_buffer.insert_text("\n")

    return bindings


def run_repl(session: ChatSession, input=None, output=None) -> None:
    """The interactive loop: history, completion, multi-line input; Ctrl-C clears, Ctrl-D leaves."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory

    from gptkit.ui.chat_commands import ChatCompleter

    history = paths.history_path("chat")
    paths.ensure_dir(history.parent)
    prompt = PromptSession(history=FileHistory(str(history)), completer=ChatCompleter(session),
                           key_bindings=_key_bindings(), multiline=True, prompt_continuation="... ",
                           complete_while_typing=True, bottom_toolbar=session.status_line,
                           input=input, output=output)

    def start_loading(_app) -> None:
        # Importing torch holds the GIL for seconds: started earlier, it would delay the first frame.
        prompt.app.after_render.remove_handler(start_loading)
        session.preload()

    prompt.app.after_render.add_handler(start_loading)
    try:
        while not session.done:
            try:
                line = prompt.prompt(session.prompt_label())
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            try:
                session.handle(unwrap_block(line))
            except Exception as e:  # a bug must not cost the user the conversation
                session.console.print(Text(f"internal error (a gptkit bug): {type(e).__name__}: {e}", style="red"))
                if os.environ.get("GPTKIT_DEBUG"):
                    traceback.print_exc(file=sys.stderr)
    finally:
        session.close()


def print_banner(session: ChatSession) -> None:
    kinds = ", ".join(f"{n} ({peek_kind(n)})" for n in session.names)
    session.console.print(Text.assemble(("gptkit chat", "bold"), f" · {kinds} · mode {session.mode}"))
    session.console.print(Text('/help lists commands · """ starts a multi-line block · Ctrl-C stops an answer · '
                               "Ctrl-D leaves", style="dim"))

