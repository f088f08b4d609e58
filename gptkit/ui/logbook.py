"""The logbook as `gptkit log` shows it: one line per entry, or one entry in full.

Plain Rich renderables from logbook entries (`store.Logbook.entries`: generations under their
own kind, rankings as "rank", experiment rows as "experiment"); nothing here reads the logbook or
the terminal, so the views load without prompt-toolkit or torch. An entry is named on the
command line by `entry_ref`: 42 (a generation), r7 (a ranking), x3 (an experiment row).
"""

import json

from rich.cells import cell_len, set_cell_size
from rich.console import Group
from rich.table import Table
from rich.text import Text

from gptkit.store import EXPERIMENT, RANK
from gptkit.ui.render import displayable

REF_PREFIX = {RANK: "r", EXPERIMENT: "x"}  # generations are bare numbers


def entry_ref(row: dict) -> str:
    """How `gptkit log show` names this entry: "42", "r7" or "x3"."""
    return REF_PREFIX.get(row["kind"], "") + str(row["id"])


def parse_entry_ref(text: str) -> tuple[int, str | None] | None:
    """"42" -> (42, None), "r7" -> (7, "rank"), "x3" -> (3, "experiment"); None if not a ref."""
    kind = next((k for k, prefix in REF_PREFIX.items() if text[:1].lower() == prefix), None)
    number = text[1:] if kind else text
    if not (number.isascii() and number.isdigit()) or len(number) > 18:  # beyond any row id SQLite can hold
        return None
    return int(number), kind


def _one_line(text: str | None, width: int) -> str:
    # Control characters (a random model emits them) would move the cursor and break the table.
    flat = displayable(" ".join((text or "").split()))
    return flat if cell_len(flat) <= width else set_cell_size(flat, width - 1) + "…"


def _ranking_summary(row: dict) -> tuple[str, str]:
    """(checkpoints, outcome) of a ranking entry: e.g. ("base/step-000001, ...", "2>1=3 best: ...")."""
    from gptkit.ui.rank import format_ordering

    answers = row["answers"]
    checkpoints = ", ".join(dict.fromkeys(a["checkpoint"] for a in answers if a["checkpoint"]))
    if row["status"] != "ranked":
        return checkpoints, row["status"].replace("_", " ")
    ranks = [a["rank"] for a in sorted(answers, key=lambda a: a["position"])]
    best = [a["text"] for a in answers if a["rank"] == 1]
    tie = f" (tie of {len(best)})" if len(best) > 1 else ""
    return checkpoints, f"{format_ordering(ranks)}{tie} best: {best[0]}"


def _summary(row: dict) -> tuple[str | None, str, str]:
    """(checkpoint, prompt, output) cells of any entry."""
    if row["kind"] == RANK:
        checkpoints, outcome = _ranking_summary(row)
        return checkpoints, row["prompt"], outcome
    if row["kind"] == EXPERIMENT:
        mark = {True: "right", False: "wrong", None: "unscored"}[row["correct"]]
        return row["checkpoint"], f"{row['template']}: {row['question']}", f"{mark}: {row['extracted']} (expected {row['expected']})"
    return row["checkpoint"], row["prompt"], row["output"]


def logbook_table(rows: list[dict], width: int = 100) -> Table:
    """Logbook entries, newest first, one line each, fitted to `width` terminal cells."""
    table = Table(show_header=True, header_style="bold", box=None)
    for name in ("id", "time", "kind", "checkpoint", "prompt", "output"):
        table.add_column(name, no_wrap=True, justify="right" if name == "id" else "left")
    text_width = max(10, (width - 58) // 2)  # what the other columns and the padding leave
    for row in rows:
        checkpoint, prompt, output = _summary(row)
        cells = (entry_ref(row), row["created"][5:16].replace("T", " "), row["kind"][:10],
                 _one_line(checkpoint, 20), _one_line(prompt, text_width), _one_line(output, text_width))
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _fields(row: dict, keys: tuple[str, ...]) -> Table:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key in keys:
        if key in ("settings", "votes"):
            table.add_row(key, Text(json.dumps(row.get(key) or {}, ensure_ascii=False)))
        elif row.get(key) is not None or key in ("id", "kind"):
            table.add_row(key, Text(entry_ref(row) if key == "id" else displayable(str(row[key]))))
    return table


def _heading(text: str) -> Text:
    return Text(text, style="bold cyan")


def logbook_entry(row: dict) -> Group:
    """One logbook entry in full: fields, settings, then its texts (a generation's rendered
    prompt and output, a ranking's answers best first, an experiment row's question and output)."""
    if row["kind"] == RANK:
        parts = [_fields(row, ("id", "created", "kind", "rater", "synthetic", "status", "note", "seed", "deleted",
                               "settings")), _heading("prompt"), Text(displayable(row["prompt"]))]
        for answer in row["answers"]:
            rank = "unranked" if answer["rank"] is None else f"rank {answer['rank']}"
            parts += [_heading(f"answer {answer['position'] + 1} ({rank}, {answer['checkpoint'] or 'no checkpoint'})"),
                      Text(displayable(answer["text"]))]
        return Group(*parts)
    if row["kind"] == EXPERIMENT:
        return Group(_fields(row, ("id", "created", "kind", "experiment_id", "template", "checkpoint", "case_id",
                                   "expected", "extracted", "correct", "agreement", "seed", "votes", "settings")),
                     _heading("question"), Text(displayable(row["question"] or "")),
                     _heading("output"), Text(displayable(row["output"] or "")))
    table = _fields(row, ("id", "created", "kind", "session_id", "checkpoint", "template", "mode", "seed", "tokens",
                          "seconds", "settings"))
    if row.get("extra"):
        table.add_row("extra", Text(_one_line(json.dumps(row["extra"], ensure_ascii=False), 400)))
    parts = [table, _heading("prompt"), Text(displayable(row["prompt"]))]
    if row.get("rendered_prompt") and row["rendered_prompt"] != row["prompt"]:
        parts += [_heading("rendered prompt (what the model saw)"), Text(displayable(row["rendered_prompt"]))]
    return Group(*parts, _heading("output"), Text(displayable(row["output"])))
