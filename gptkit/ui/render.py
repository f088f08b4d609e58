"""Shared Rich renderables: coloured tokens, prompts as the model sees them, side-by-side answer
panels (also live, while answers stream), vote tables, and the quickstart's report tables.

Pure presentation: these functions take strings, ids and numbers and return Rich objects (or
print them to a console they are given); they never run a model.
"""

import time
import unicodedata

from rich.cells import cell_len
from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

TOKEN_STYLES = ("on #3b4261", "on #2d3f4f")  # alternate backgrounds so token boundaries show

# C0/C1 control characters but newline and tab: a sampled ESC could otherwise drive the terminal.
_CONTROL = dict.fromkeys([*range(0, 9), *range(11, 32), 127, *range(128, 160)], "\ufffd")


def displayable(text: str) -> str:
    """Model text safe to print as is: control characters become U+FFFD."""
    return text.translate(_CONTROL)


def graphemes(text: str) -> list[str]:
    """`text` in user-perceived characters, closely enough for cutting: combining marks, variation
    selectors and what a zero-width joiner joins stay with the character before them."""
    out: list[str] = []
    for ch in text:
        joins = (unicodedata.category(ch) in ("Mn", "Me") or "\ufe00" <= ch <= "\ufe0f" or ch == "\u200d"
                 or "\U0001f3fb" <= ch <= "\U0001f3ff")  # skin-tone modifiers
        if out and (joins or out[-1].endswith("\u200d")):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def clip_cells(text: str, cells: int) -> str:
    """`text` in at most `cells` terminal cells, ending in "…" when cut: counted in cells (a
    Japanese character takes two) and cut between graphemes, never inside one."""
    if cell_len(text) <= cells:
        return text
    out, used = [], 1  # the "…"
    for g in graphemes(text):
        if used + cell_len(g) > cells:
            break
        out.append(g)
        used += cell_len(g)
    return "".join(out) + "…"


def colored_tokens(tokenizer, ids: list[int], mask: list[int] | None = None) -> Text:
    """Each token on an alternating background, so its boundaries show; special tokens bold magenta.

    With a mask (SFT's loss mask, or chat's prompt/answer split), tokens where it is 1 are green
    and the rest dim, still on alternating backgrounds: which tokens the model produces (or learns
    to produce), and where each one ends.
    """
    text = Text()
    for i, piece in enumerate(tokenizer.token_strings(ids)):
        if tokenizer.is_special(ids[i]):
            style = "bold magenta"
        elif mask is not None:
            style = ("bold green " if mask[i] else "dim ") + TOKEN_STYLES[i % 2]
        else:
            style = TOKEN_STYLES[i % 2]
        text.append(piece, style=style)
    return text


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
    """A generation result's length and speed, e.g. "12 tokens · 80.1 tok/s"."""
    n = len(result.tokens)
    return f"{n} tokens · {n / max(result.seconds, 1e-9):.1f} tok/s"


def vote_bars(counts: list[tuple[str | None, int]], total: int, width: int = 30) -> Table:
    """A histogram of extracted answers: answer, bar, count, share."""
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("answer")
    table.add_column("votes")
    table.add_column("n", justify="right")
    table.add_column("share", justify="right")
    for answer, n in counts:
        bar = "█" * max(1, round(width * n / max(total, 1)))
        label = Text("(none)", style="dim") if answer is None else Text(str(answer))  # model text is never markup
        table.add_row(label, Text(bar, style="green"), str(n), f"{n / max(total, 1):.0%}")
    return table


def answer_grid(answers: list[tuple[str, ...]], width: int, min_column: int = 32):
    """One panel per (title, text[, footer]): side by side in equal columns that fill `width` when
    each gets at least `min_column` cells, stacked otherwise.

    The layout is decided up front, so k answers read either as one row to compare across or as a
    column to read down, never as a ragged wrap, and it never jumps while text streams in.
    """
    from rich.console import Group

    panels = []
    for title, text, *footer in answers:
        # fold: a line with no spaces (Japanese, a long URL) wraps at the panel edge instead of being cut
        # to one line with "…" (a table cell defaults to ellipsis for a word longer than the column)
        body = Text(displayable(text), overflow="fold") if text.strip() else Text("(empty)", style="dim")
        subtitle = Text(footer[0]) if footer and footer[0] else None
        panels.append(Panel(body, title=Text(title), title_align="left", border_style="cyan",
                            subtitle=subtitle, subtitle_align="right", expand=True))
    if width // max(1, len(panels)) < min_column:
        return Group(*panels)
    grid = Table.grid(expand=True, padding=(0, 1))
    for _ in panels:
        grid.add_column(ratio=1)
    grid.add_row(*panels)
    return grid


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


def show_vote(console: Console, title: str, results, answers: list[str | None], vote) -> None:
    """Self-consistency at a glance: each sample with the answer read from it, the histogram, and
    the majority, saying so when the top answers tie (the first one seen wins the tie)."""
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
    tied = [a for a, n in vote.counts if n == vote.counts[0][1]] if vote.counts else []
    if len(tied) > 1:
        console.print(Text(f"tie: {len(tied)} answers have {vote.counts[0][1]} of {vote.n} votes each "
                           f"({', '.join(displayable(a) for a in tied)}); the one sampled first wins", style="yellow"))
    console.print(Text.assemble("answer ", (displayable(winner), "bold green"),
                                f" · agreement {vote.agreement:.0%} ({vote.n_valid}/{vote.n} samples had an answer)"))


def cell_text(cell) -> Text:
    """One accuracy cell: accuracy, its 95% Wilson interval and n; for voted cells the mean
    agreement and the share of samples whose answer could not be read; a cut-off prompt in red."""
    low, high = cell.interval
    text = Text(f"{cell.accuracy:.0%} [{low:.0%}-{high:.0%}] n={cell.total}")
    if cell.samples > 1:
        text.append(f"  agree {cell.mean_agreement:.0%} unread {cell.unreadable:.0%}", style="dim")
    if cell.truncated:
        text.append(f"  {cell.truncated} cut", style="bold red")
    return text


def cell_label(template: str, samples: int) -> str:
    return template + (f" (k={samples})" if samples > 1 else "")


def experiment_tables(result, detail: bool):
    """The accuracy table (template rows x checkpoint columns) and, with `detail`, one row per case.
    A template voted at several k (`--vote-at`) gets a row per k."""
    checkpoints = list(dict.fromkeys(cell.checkpoint for cell in result.summary))
    table = Table(title="accuracy [95% interval]", header_style="bold")
    table.add_column("template")
    for name in checkpoints:
        table.add_column(name, justify="right")
    by_label: dict = {}
    for cell in result.summary:
        by_label.setdefault(cell_label(cell.template, cell.samples), {})[cell.checkpoint] = cell
    for label, cells in by_label.items():
        table.add_row(label, *(cell_text(cells[name]) if name in cells else Text("-") for name in checkpoints))
    if not detail:
        return [table]
    cases = Table(title="cases", header_style="bold")
    for column in ("template", "checkpoint", "case", "expected", "answer", "", "agree", "output"):
        cases.add_column(column, overflow="fold")
    def clipped(text: str, width: int) -> str:
        return clip_cells(text.replace("\n", "⏎ "), width)

    for row in result.rows:
        mark = Text("✓", style="green") if row.correct else Text("✗", style="red")
        cases.add_row(row.template, row.checkpoint, row.case_id, clipped(row.expected, 24),
                      "-" if row.extracted is None else clipped(row.extracted, 24), mark, f"{row.agreement:.0%}",
                      clipped(row.output, 80))
    return [cases, table]


# ---- the quickstart's report --------------------------------------------------------------------


# The quickstart's table headings in each toy world's language.
HEADINGS = {
    "en": {"prompt": "prompt", "base": "base model (document completer)", "assistant": "assistant (after SFT)",
           "task": "task", "base_short": "base", "assistant_short": "assistant",
           "questions": "answers a question with more questions", "model": "model", "technique": "technique"},
    "ja": {"prompt": "プロンプト", "base": "ベースモデル(文書の続きを書く)", "assistant": "アシスタント(SFT後)",
           "task": "課題", "base_short": "ベース", "assistant_short": "アシスタント",
           "questions": "質問に質問で答える割合", "model": "モデル", "technique": "手法"},
}


def showcase_table(showcase: list[dict], lang: str = "en") -> Table:
    """The same prompts answered by both models: prompt | base model | assistant."""
    say = HEADINGS[lang]
    table = Table(show_lines=True, expand=True)
    # fold: text without spaces (Japanese) wraps instead of being cut to one line with "…"
    table.add_column(say["prompt"], style="bold", ratio=2, overflow="fold")
    table.add_column(say["base"], ratio=3, overflow="fold")
    table.add_column(say["assistant"], ratio=3, overflow="fold")
    for row in showcase:  # model text is never markup
        table.add_row(Text(row["prompt"]), Text(displayable(row["base"].strip())),
                      Text(displayable(row["assistant"].strip())))
    return table


def accuracy_table(accuracy: dict, question_rate: dict, lang: str = "en") -> Table:
    """Held-out accuracy per task kind, "correct/n  share" for the base model and the assistant,
    then how often each answers a question with more questions."""
    say = HEADINGS[lang]
    table = Table()
    table.add_column(say["task"])
    table.add_column(say["base_short"], justify="right")
    table.add_column(say["assistant_short"], justify="right")
    for kind in accuracy["base"]:
        table.add_row(kind, *(f"{c}/{n}  {c / n:.0%}" for c, n in (accuracy[m][kind] for m in ("base", "assistant"))))
    table.add_row(say["questions"], f"{question_rate['base']:.0%}",
                  f"{question_rate['assistant']:.0%}", style="italic")
    return table


def techniques_table(techniques: dict, lang: str = "en") -> Table:
    """Rows: model and technique; columns: the case kinds; cells: accuracy [95% interval], and
    for voted cells the agreement; unreadable answers and cut prompts when there are any."""
    kinds = list(techniques)
    table = Table(header_style="bold")
    table.add_column(HEADINGS[lang]["model"])
    table.add_column(HEADINGS[lang]["technique"])
    for kind in kinds:
        table.add_column(kind, justify="right")
    labels: dict[tuple[str, str], dict] = {}
    for kind in kinds:
        for cell in techniques[kind]["cells"]:
            labels.setdefault((cell["model"], cell_label(cell["template"], cell["samples"])), {})[kind] = cell
    for (model, label), cells in labels.items():
        shown = []
        for kind in kinds:
            cell = cells.get(kind)
            if cell is None:
                shown.append("-")
                continue
            text = f"{cell['accuracy']:.0%} [{cell['low']:.0%}-{cell['high']:.0%}]"
            if cell["samples"] > 1:
                text += f" agree {cell['mean_agreement']:.0%}"
            if cell["unreadable"]:
                text += f" unread {cell['unreadable']:.0%}"
            if cell["truncated"]:
                text += f" [red]{cell['truncated']} cut[/]"
            shown.append(text)
        table.add_row(model, label, *shown)
    return table
