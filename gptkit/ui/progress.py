"""Progress on the terminal, in a log file, or as JSON lines for scripts.

Training reports through the `Reporter` interface of `gptkit.train.loop`; `make_reporter` picks
one: JSON lines (`--json`), a Rich progress bar when its stream (stderr) is a terminal, or plain
lines otherwise (a file, a pipe, CI), where a bar would be drawn once, cut at 80 columns, at the
end. Every reporter shows step, loss, validation loss, tokens/s (and MFU on CUDA) and an ETA;
samples and messages go between the progress lines. `task_progress` does the same for counted
work that is not training (`gptkit prompt run`'s answers). `PaceReporter` measures seconds per
step early in a run, for estimates of what is left.
"""

import json
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from gptkit.train.loop import ForwardingReporter, Reporter

PLAIN_EVERY_S = 30.0  # a plain progress line at most this often (and always the first and the last)


def format_duration(seconds: float) -> str:
    """4 -> "4s", 250 -> "4m10s", 3725 -> "1h02m"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def stats_text(metrics: dict) -> str:
    """One training update in words: "loss 2.345 | val 2.400 | 5.2k tok/s"."""
    stats = f"loss {metrics['loss']:.3f}"
    if "val_loss" in metrics:
        stats += f" | val {metrics['val_loss']:.3f}"
    for key in ("reward_acc", "margin", "kl", "reward"):
        if key in metrics:
            stats += f" | {key} {metrics[key]:.3f}"
    stats += f" | {metrics['tok_per_s'] / 1000:.1f}k tok/s"
    if "mfu" in metrics:
        stats += f" | mfu {metrics['mfu'] * 100:.1f}%"
    return stats


class Pacer:
    """When a plain progress line is due, and the time left: a line at the first update, then at
    most every `every` seconds, and at the last; the ETA extrapolates the pace since `start`."""

    def __init__(self, total: int, done: int = 0, every: float = PLAIN_EVERY_S, clock=time.monotonic):
        self.total, self.first, self.every, self.clock = total, done, every, clock
        self.started, self.printed = clock(), None

    def due(self, done: int) -> bool:
        now = self.clock()
        if self.printed is None or done >= self.total or now - self.printed >= self.every:
            self.printed = now
            return True
        return False

    def eta(self, done: int) -> str:
        elapsed = self.clock() - self.started
        if done <= self.first or elapsed <= 0:
            return "?"
        return format_duration((self.total - done) * elapsed / (done - self.first))


class RichReporter(Reporter):
    def __init__(self, title: str, console: Console | None = None):
        self.title = title
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.task = None

    def start(self, total_steps: int, first_step: int, info: dict) -> None:
        self.console.print(f"[bold]{self.title}[/]: {info['params'] / 1e6:.2f}M parameters on {info['device']}")
        self.progress = Progress(
            TextColumn("[bold blue]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task(self.title, total=total_steps, completed=first_step, stats="")

    def update(self, metrics: dict) -> None:
        self.progress.update(self.task, completed=metrics["step"], stats=stats_text(metrics))

    def sample(self, step: int, text: str) -> None:
        self.console.print(f"[dim]sample @ {step}:[/] {text!r}"[:400], markup=True, highlight=False)

    def message(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class PlainReporter(Reporter):
    """Plain lines for output that is not a terminal: one per `Pacer` interval, and one for
    every validation (the figures worth keeping), each with step, loss, tokens/s and ETA."""

    def __init__(self, title: str, stream=None, every: float = PLAIN_EVERY_S, clock=time.monotonic):
        self.title, self.stream, self.every, self.clock = title, stream or sys.stderr, every, clock
        self.pacer: Pacer | None = None

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, total_steps: int, first_step: int, info: dict) -> None:
        self.pacer = Pacer(total_steps, first_step, self.every, self.clock)
        self._print(f"{self.title}: {info['params'] / 1e6:.2f}M parameters on {info['device']}; "
                    f"steps {first_step}-{total_steps}")

    def update(self, metrics: dict) -> None:
        step = metrics["step"]
        if self.pacer.due(step) or "val_loss" in metrics:
            self._print(f"{self.title}: step {step}/{self.pacer.total} | {stats_text(metrics)} | eta {self.pacer.eta(step)}")

    def sample(self, step: int, text: str) -> None:
        self._print(f"sample @ {step}: {text!r}"[:400])

    def message(self, text: str) -> None:
        self._print(text)


class JsonReporter(Reporter):
    def __init__(self, stage: str, stream=None):
        self.stage = stage
        self.stream = stream or sys.stdout

    def _emit(self, obj: dict) -> None:
        self.stream.write(json.dumps({"stage": self.stage, **obj}, ensure_ascii=False) + "\n")
        self.stream.flush()

    def start(self, total_steps: int, first_step: int, info: dict) -> None:
        self._emit({"event": "start", "total_steps": total_steps, "first_step": first_step, **info})

    def update(self, metrics: dict) -> None:
        self._emit({"event": "step", **metrics})

    def sample(self, step: int, text: str) -> None:
        self._emit({"event": "sample", "step": step, "text": text})

    def message(self, text: str) -> None:
        self._emit({"event": "message", "text": text})

    def finish(self) -> None:
        self._emit({"event": "finish"})


class PaceReporter(ForwardingReporter):
    """Once `after` steps have run since the first update, calls `on_pace(seconds per step, step)`
    once and shows the text it returns as a message (the first update is the starting line: it
    leaves out model building and first-step warm-up)."""

    def __init__(self, inner: Reporter, on_pace: Callable[[float, int], str | None], after: int = 16,
                 clock=time.monotonic):
        super().__init__(inner)
        self.on_pace, self.after, self.clock = on_pace, after, clock
        self.first: tuple[float, int] | None = None
        self.done = False

    def update(self, metrics: dict) -> None:
        super().update(metrics)
        now, step = self.clock(), metrics["step"]
        if self.first is None:
            self.first = (now, step)
        elif not self.done and step - self.first[1] >= self.after:
            self.done = True
            text = self.on_pace((now - self.first[0]) / (step - self.first[1]), step)
            if text:
                self.inner.message(text)


def make_reporter(title: str, as_json: bool) -> Reporter:
    if as_json:
        return JsonReporter(title)
    console = Console(stderr=True)
    return RichReporter(title, console) if console.is_terminal else PlainReporter(title)


@contextmanager
def task_progress(title: str, total: int, unit: str):
    """Progress of `total` units of work on stderr: a Rich bar on a terminal (gone when done),
    else plain lines ("experiment: 40/120 answers | eta 3m10s") on the `Pacer`'s interval.
    Yields `advance(description)`, to call once per unit done."""
    console = Console(stderr=True)
    if not console.is_terminal:
        pacer, done = Pacer(total), 0

        def advance(description: str) -> None:
            nonlocal done
            done += 1
            if pacer.due(done):
                print(f"{title}: {done}/{total} {unit} ({description}) | eta {pacer.eta(done)}", file=sys.stderr, flush=True)

        yield advance
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(title, total=total)
        yield lambda description: progress.update(task, advance=1, description=description)
