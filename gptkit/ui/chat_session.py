"""One chat's state and turns: the only code that changes them.

`ChatSession` holds what `gptkit chat` is working with (checkpoints loaded once by name, mode,
template and its variables, system message, settings, the conversation and its exchanges) and
every way they change: a turn (assistant, base, compare), /regen and its pick, /vote, /undo,
/clear, a template switched on or off, a setting set, a chat saved or loaded. Parsing what the
user typed is `chat_commands.py`'s job; the prompt-toolkit loop is `chat_repl.py`'s.

Contract:
- A user mistake raises a `GptkitError` (one line, shown by the caller) and changes nothing.
  Ctrl-C during a generation keeps the partial answer, marked interrupted.
- Every completed turn is in the logbook (kind "chat"; "vote" for /vote) before the method
  returns, with checkpoint, template, mode, session id, the rendered prompt, settings and the
  seed that reproduces it: a turn without a fixed seed draws one and logs it.
- Modes: "assistant" keeps a multi-turn conversation; when the context fills, the oldest turns
  leave the model's view, visibly, but stay in the conversation (and in /save); "base" completes
  each input as a document; "compare" sends each input as a fresh single turn, same seed, to
  every checkpoint and shows the answers side by side.
- Answers stream to the session's Rich console as they are written.

Must not know: the engine, tensors or SQL. Text becomes ids only through `gptkit.textgen` and
the tokenizer; torch is imported only when a checkpoint loads. Settings and the /save file
format are chat_settings.py's.

Length: about 630 lines, because every change of a chat's state is here by design (three turn
shapes sharing logging, seeding and Ctrl-C handling, plus /regen, /vote, /undo, /save, /load);
each method is short, and the section comments are the map.
"""

import dataclasses
import json
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.text import Text

from gptkit import paths
from gptkit.checkpoint import CHAT_KINDS, GENERATIVE_KINDS, peek_kind, validate_checkpoint
from gptkit.errors import UsageError, WriteError
from gptkit.files import atomic_write
from gptkit.prompting.answers import extract_answer, majority_vote
from gptkit.prompting.templates import load_template, render_base, render_chat_messages, required_variables
from gptkit.ui.chat_settings import (CHAT_FORMAT, MODES, SETTINGS, TEMPLATE_SETTINGS, ChatSettings, read_saved_chat,
                                     template_ref)
from gptkit.ui.render import PanelStream, displayable, show_vote, speed, visible_prompt

DEFAULT_ANSWER_REGEX = r"The answer is (.+?)\."
VOTE_TEMPERATURE = 0.7  # /vote at temperature 0 would draw k identical answers


# ---- what a turn leaves behind ----------------------------------------------------------------


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
    context_before: int = 0  # where the model's view of it started


@dataclass
class PendingPick:
    """Alternatives from /regen waiting for the user to pick one (and maybe order them)."""

    exchange: Exchange
    results: list
    seed: int


@dataclass
class VoteResult:
    """/vote on one checkpoint: the samples, the answer read from each, and the majority."""

    checkpoint: object
    results: list
    answers: list[str | None]
    vote: object  # gptkit.prompting.answers.Vote


def extract_vote_answer(text: str, template) -> str | None:
    """The template's answer extraction, else "The answer is X." and then the first line."""
    if template is not None:
        return extract_answer(text, template.answer_regex, template.normalize)
    return extract_answer(text, DEFAULT_ANSWER_REGEX) or extract_answer(text, None)


# ---- checkpoints ------------------------------------------------------------------------------


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
        self.messages: list[dict] = []  # the whole conversation, as /save writes it
        self.context_start = 0  # the model sees messages[context_start:] (and a leading system message)
        self.exchanges: list[Exchange] = []
        self.pending: PendingPick | None = None  # after /regen, until the next input
        self.done = False
        self._before_template: dict | None = None  # the settings a template replaced, restored by /template off
        self.file: Path | None = None  # the file this chat was loaded from or last saved to
        self._logbook = None
        self._session_id: str | None = None
        self.use_checkpoints(names, mode, preload=False)  # the REPL starts loading once the prompt shows
        if template:
            self.use_template(template)

    # ---- checkpoints and modes ----------------------------------------------------------------

    def use_checkpoints(self, names: list[str], mode: str | None = None, *, preload: bool = True) -> None:
        # A typo, a foreign file or a config its weights do not fit fails here, before anything loads
        # (header checks only), so the current conversation and models stay as they were.
        kinds = [validate_checkpoint(n, GENERATIVE_KINDS)[1]["kind"] for n in names]
        mode = mode or ("compare" if len(names) > 1 else default_mode(kinds[0]))
        if mode not in MODES:
            raise UsageError(f"mode: expected one of {', '.join(MODES)}, got '{mode}'")
        if mode == "compare" and len(names) < 2:
            raise UsageError(f"compare mode needs two or more checkpoints, e.g. /compare {names[0]} OTHER")
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

    # ---- template, variables, system message, settings ----------------------------------------

    def use_template(self, name: str):
        """Make `name` the active template; its sampling defaults replace the current settings
        (remembered, so /template off puts them back)."""
        template = load_template(name)
        if self._before_template is None:
            self._before_template = {k: getattr(self.settings, k) for k in TEMPLATE_SETTINGS}
        self.template, self.vars = template, {}
        for key in TEMPLATE_SETTINGS:
            setattr(self.settings, key, template.sampling[key])
        return template

    def template_off(self) -> list[str]:
        """Leave the template; settings it set and nobody changed since go back to what they were.
        Returns the names of the settings restored."""
        restored = []
        if self.template is not None and self._before_template is not None:
            for key, before in self._before_template.items():
                if getattr(self.settings, key) == self.template.sampling[key] and before != self.template.sampling[key]:
                    setattr(self.settings, key, before)
                    restored.append(key)
        self.template, self.vars, self._before_template = None, {}, None
        return restored

    def set_vars(self, pairs: dict[str, str]) -> None:
        if self.template is not None:
            used = required_variables(self.template)
            for key in pairs:
                if key not in used:
                    raise UsageError(f"/vars: template {self.template.name} has no variable '{key}' "
                                     f"(it uses: {', '.join(sorted(used))})")
        self.vars.update(pairs)

    def clear_vars(self) -> None:
        self.vars = {}

    def set_system(self, text: str | None) -> None:
        self.system = text or None

    def set_setting(self, name: str, value: str) -> None:
        """Set one setting from its text ("0.7", "off", "random", ...); UsageError if it does not fit."""
        if name not in SETTINGS:
            raise UsageError(f"/set: unknown setting '{name}'; settings: {', '.join(SETTINGS)}")
        setattr(self.settings, name, SETTINGS[name](value))

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

    # ---- prompts ------------------------------------------------------------------------------

    def with_system(self, messages: list[dict]) -> list[dict]:
        if not self.system:
            return messages
        if messages and messages[0]["role"] == "system":
            return [{"role": "system", "content": self.system}, *messages[1:]]
        return [{"role": "system", "content": self.system}, *messages]

    def _head(self) -> int:
        """1 when the conversation opens with a system message (it never leaves the view), else 0."""
        return 1 if self.messages and self.messages[0]["role"] == "system" else 0

    def context(self) -> list[dict]:
        """The part of the conversation the model sees: a leading system message, then the turns
        from `context_start` on."""
        head = self._head()
        return self.messages[:head] + self.messages[max(self.context_start, head):]

    def build_prompt(self, ckpt, kind: str, text: str, *, history: bool) -> tuple[list[int], list[dict] | None]:
        """(prompt ids, the chat messages this turn adds; None for a base document)."""
        from gptkit.textgen import prompt_ids

        variables = {**self.vars, "question": text}
        if kind == "base":
            document = render_base(self.template, variables) if self.template else text
            return prompt_ids(ckpt.tokenizer, "base", document), None
        earlier = self.context() if history else []
        if self.template is not None and not earlier:
            new = render_chat_messages(self.template, variables)
        else:
            new = [{"role": "user", "content": text}]
        return prompt_ids(ckpt.tokenizer, "assistant", self.with_system(earlier + new)), new

    def question_preview(self):
        """(checkpoint, prompt ids) for the template's default question before anything is asked,
        or None when there is no such question."""
        t = self.template
        question = self.vars.get("question") or (t.variables.get("question") if t else None)
        if not question:
            return None
        ckpt = self.checkpoint(self.names[0])
        kind = default_mode(ckpt.kind) if self.mode == "compare" else self.mode
        return ckpt, self.build_prompt(ckpt, kind, question, history=True)[0]

    def _budget(self, ckpt) -> int:
        """Prompt tokens that fit beside the answer (the engine's own rule, `fit_prompt`)."""
        block = ckpt.model.config.block_size
        return block - min(self.settings.max_tokens, block // 2)

    def _drop_oldest_turn(self) -> bool:
        """Move the model's view past the oldest turn still in it (a user message and what answered
        it); the conversation itself keeps every message."""
        start = max(self.context_start, self._head())
        if start >= len(self.messages):
            return False
        start += 1
        while start < len(self.messages) and self.messages[start]["role"] != "user":
            start += 1
        self.context_start = start
        return True

    def _fit_conversation(self, ckpt, text: str) -> tuple[list[int], list[dict]]:
        budget, dropped = self._budget(ckpt), 0
        ids, new = self.build_prompt(ckpt, "assistant", text, history=True)
        while len(ids) > budget and self._drop_oldest_turn():
            dropped += 1
            ids, new = self.build_prompt(ckpt, "assistant", text, history=True)
        if dropped:
            self.console.print(Text(f"context full: the model no longer sees the {dropped} oldest turn"
                                    f"{'s' * (dropped > 1)} (the prompt now fits in {budget} tokens; /save keeps "
                                    "them)", style="yellow"))
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

    # ---- turns --------------------------------------------------------------------------------

    def ask(self, text: str) -> None:
        """One turn: the answer streams to the console and lands in the logbook."""
        if self.mode == "compare":
            self._ask_compare(text)
        else:
            self._ask_single(text.strip() if self.mode != "base" else text)

    def _ask_single(self, text: str) -> None:
        ckpt = self.checkpoint(self.names[0])
        history_before, context_before = list(self.messages), self.context_start
        if self.mode == "assistant":
            ids, new = self._fit_conversation(ckpt, text)
        else:
            ids, new = self.build_prompt(ckpt, "base", text, history=False)
            self._warn_if_cut(ids, self._budget(ckpt))
            tail = ckpt.tokenizer.decode(ids[1:]).rsplit("\n", 1)[-1]
            self.console.print(Text(displayable(tail), style="dim"), end="", soft_wrap=True)
        seed = self.turn_seed()
        [result] = self.generate(ckpt, ids, seed=seed, on_text=lambda _, delta: self.console.print(
            displayable(delta), end="", markup=False, highlight=False, soft_wrap=True))
        self.console.print()
        if new is not None:
            self.messages += new + [{"role": "assistant", "content": result.text}]
        answer = Answer(ckpt, ids, result, seed)
        self.log_turn(answer, prompt=text, mode=self.mode)
        self.exchanges.append(Exchange(text, self.mode, [answer], history_before, context_before))
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
        self.exchanges.append(Exchange(text, "compare", answers, list(self.messages), self.context_start))

    def last_exchange(self, command: str) -> Exchange:
        if not self.exchanges:
            raise UsageError(f"{command}: nothing asked yet")
        return self.exchanges[-1]

    def undo(self) -> Exchange:
        """Forget the last exchange: the conversation goes back to what it was before it."""
        exchange = self.last_exchange("/undo")
        self.exchanges.pop()
        self.messages, self.context_start = exchange.history_before, exchange.context_before
        self.pending = None
        return exchange

    def clear(self) -> None:
        self.messages, self.exchanges, self.pending, self.context_start = [], [], None, 0

    def end(self) -> None:
        """/quit: the REPL stops after this input."""
        self.done = True

    # ---- /regen and its pick ------------------------------------------------------------------

    def regen(self, k: int) -> PendingPick:
        """k new answers to the last prompt, side by side; they wait in `pending` for a pick."""
        exchange = self.last_exchange("/regen")
        if exchange.mode == "compare":
            raise UsageError("/regen works on one model; switch with /mode assistant or /mode base")
        first = exchange.answers[0]
        seed = self.turn_seed()
        with PanelStream(self.console, [str(i + 1) for i in range(k)]) as panels:
            results = self.generate(first.checkpoint, first.ids, seed=seed, k=k, on_text=panels.add)
            for i, result in enumerate(results):
                panels.finish(i, speed(result))
        for i, result in enumerate(results):
            self.log_turn(Answer(first.checkpoint, first.ids, result, seed), prompt=exchange.text,
                          mode=exchange.mode, extra={"regen": i + 1, "of": k})
        self.pending = PendingPick(exchange, results, seed)
        return self.pending

    def keep_current(self) -> None:
        """No pick after /regen: the current answer stays."""
        self.pending = None

    def pick(self, best: int, ranks: list[int] | None) -> int | None:
        """Continue with alternative `best` (0-based); with `ranks` (an ordering of all of them),
        save a ranking too and return its logbook id."""
        pending, self.pending = self.pending, None
        exchange, chosen = pending.exchange, pending.results[best]
        first = exchange.answers[0]
        exchange.answers[0] = Answer(first.checkpoint, first.ids, chosen, pending.seed)
        if exchange.mode == "assistant" and self.messages and self.messages[-1]["role"] == "assistant":
            self.messages[-1] = {"role": "assistant", "content": chosen.text}
        if ranks is None:
            return None
        items = [{"text": r.text, "checkpoint": first.checkpoint.name} for r in pending.results]
        return self.logbook().log_ranking(
            exchange.text, items, ranks, rater="chat", settings=self.settings_dict(pending.seed),
            seed=pending.seed, note=f"gptkit chat session {self.session_id()}")

    # ---- /vote: self-consistency ----------------------------------------------------------------

    def _vote_targets(self) -> tuple[str, list[tuple[object, list[int]]]]:
        """The current question and (checkpoint, prompt ids) to sample it from."""
        if self.exchanges:
            last = self.exchanges[-1]
            return last.text, [(a.checkpoint, a.ids) for a in last.answers]
        t = self.template
        question = self.vars.get("question") or (t.variables.get("question") if t else None)
        if not question:
            raise UsageError("/vote: ask a question first (or pick a template with a default question)")
        compare = self.mode == "compare"
        ckpts = [self.checkpoint(n) for n in (self.names if compare else self.names[:1])]
        return question, [(c, self.build_prompt(c, default_mode(c.kind) if compare else self.mode, question,
                                                history=False)[0]) for c in ckpts]

    def vote_samples(self) -> int:
        """k for /vote without a number: the template's self-consistency samples, else the setting."""
        t = self.template
        return t.sc_samples if t and t.sc_samples else self.settings.samples

    def vote(self, k: int) -> list[VoteResult]:
        """Self-consistency: k answers in lock-step per checkpoint, each answer read, majority
        vote; shown as a table and histogram, and logged (kind "vote")."""
        t = self.template
        question, targets = self._vote_targets()
        temperature = t.sc_temperature if t and t.sc_temperature else self.settings.temperature or VOTE_TEMPERATURE
        seed = self.turn_seed()
        self.console.print(Text(question, style="bold"))
        out = []
        for ckpt, ids in targets:
            with self.console.status(Text(f"sampling {k} answers from {ckpt.name}…")):
                results = self.generate(ckpt, ids, seed=seed, k=k, temperature=temperature)
            answers = [extract_vote_answer(r.text, t) for r in results]
            vote = majority_vote(answers)
            show_vote(self.console, f"{ckpt.name} · {ckpt.kind} · {k} samples at temperature {temperature}",
                      results, answers, vote)
            all_tokens = [tok for r in results for tok in r.tokens]  # the row counts every sample's tokens
            self.log_turn(Answer(ckpt, ids, dataclasses.replace(results[0], tokens=all_tokens), seed),
                          prompt=question, mode=self.mode, kind="vote", output=vote.answer or "",
                          settings=self.settings_dict(seed, temperature=temperature, samples=k),
                          extra={"samples": [r.text for r in results], "answers": answers, "counts": vote.counts,
                                 "agreement": vote.agreement, "n": vote.n})
            out.append(VoteResult(ckpt, results, answers, vote))
        return out

    # ---- /save and /load ----------------------------------------------------------------------

    def saved(self) -> dict:
        """Everything /save writes: the whole conversation (trimmed context or not) and the settings."""
        return {"format": CHAT_FORMAT, "version": 1, "checkpoints": self.names, "mode": self.mode,
                "template": template_ref(self.template) if self.template else None, "vars": self.vars,
                "system": self.system, "settings": dataclasses.asdict(self.settings), "messages": self.messages}

    def save(self, path: Path, *, overwrite: bool = False) -> None:
        """Write the chat to `path` atomically (the old file stays whole until the new one is in
        place). An existing file is replaced only with `overwrite`, or when it is the file this
        chat came from or was saved to."""
        if path.is_dir():
            raise UsageError(f"/save: {path} is a folder; give a file name")
        if path.exists() and not overwrite and not _same_file(path, self.file):
            raise UsageError(f"/save: {path} exists; /save {path} --overwrite replaces it")
        try:
            atomic_write(path, json.dumps(self.saved(), ensure_ascii=False, indent=2) + "\n")
        except WriteError as e:
            raise UsageError(f"/save: cannot write {path} ({e.reason}); nothing was changed there") from None
        self.file = path

    def load(self, path: Path) -> None:
        """Continue a chat written by `save`: checkpoints, mode, template, settings, conversation."""
        data = read_saved_chat(path)
        template = load_template(data["template"]) if data["template"] else None
        self.use_checkpoints(data["checkpoints"], data["mode"])
        self.template, self._before_template = template, None
        self.settings, self.vars, self.system = data["settings"], dict(data["vars"]), data["system"]
        self.messages, self.exchanges, self.context_start = list(data["messages"]), [], 0
        self.file = path

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


def _same_file(path: Path, other: Path | None) -> bool:
    try:
        return other is not None and path.samefile(other)
    except OSError:
        return False
