"""Training progress on the terminal: a Rich progress bar, or JSON lines for scripts.

Both implement the `Reporter` interface of `gptkit.train.loop`. The Rich display shows step,
loss, validation loss, tokens/s (and MFU on CUDA) and an ETA; samples and messages print above
the bar. `JsonReporter` writes one JSON object per event to stdout, nothing else.
"""

import json
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from gptkit.train.loop import Reporter


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
        stats = f"loss {metrics['loss']:.3f}"
        if "val_loss" in metrics:
            stats += f" | val {metrics['val_loss']:.3f}"
        for key in ("reward_acc", "margin", "kl", "reward"):
            if key in metrics:
                stats += f" | {key} {metrics[key]:.3f}"
        stats += f" | {metrics['tok_per_s'] / 1000:.1f}k tok/s"
        if "mfu" in metrics:
            stats += f" | mfu {metrics['mfu'] * 100:.1f}%"
        self.progress.update(self.task, completed=metrics["step"], stats=stats)

    def sample(self, step: int, text: str) -> None:
        self.console.print(f"[dim]sample @ {step}:[/] {text!r}"[:400], markup=True, highlight=False)

    def message(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


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


def make_reporter(title: str, as_json: bool) -> Reporter:
    return JsonReporter(title) if as_json else RichReporter(title)
