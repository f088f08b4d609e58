"""The logbook as `gptkit log` shows it: one line per entry, or one entry in full.

Plain Rich renderables from logbook rows (`store.Logbook`); nothing here reads the logbook or
the terminal, so the views load without prompt-toolkit or torch.
"""

import json

from rich.cells import cell_len, set_cell_size
from rich.console import Group
from rich.table import Table
from rich.text import Text

from gptkit.ui.render import displayable


def _one_line(text: str | None, width: int) -> str:
    # Control characters (a random model emits them) would move the cursor and break the table.
    flat = displayable(" ".join((text or "").split()))
    return flat if cell_len(flat) <= width else set_cell_size(flat, width - 1) + "…"


def logbook_table(rows: list[dict], width: int = 100) -> Table:
    """Recent logbook entries, newest first, one line each, fitted to `width` terminal cells."""
    table = Table(show_header=True, header_style="bold", box=None)
    for name in ("id", "time", "kind", "checkpoint", "prompt", "output"):
        table.add_column(name, no_wrap=True, justify="right" if name == "id" else "left")
    text_width = max(10, (width - 54) // 2)  # what the other columns and the padding leave
    for row in rows:
        cells = (str(row["id"]), row["created"][5:16].replace("T", " "), row["kind"][:8],
                 _one_line(row["checkpoint"], 20), _one_line(row["prompt"], text_width),
                 _one_line(row["output"], text_width))
        table.add_row(*(Text(cell) for cell in cells))
    return table


def logbook_entry(row: dict) -> Group:
    """One logbook entry in full: fields, settings, the rendered prompt and the output."""
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key in ("id", "created", "kind", "session_id", "checkpoint", "template", "mode", "seed", "tokens", "seconds"):
        table.add_row(key, Text("" if row.get(key) is None else str(row[key])))
    table.add_row("settings", Text(json.dumps(row.get("settings") or {}, ensure_ascii=False)))
    if row.get("extra"):
        table.add_row("extra", Text(_one_line(json.dumps(row["extra"], ensure_ascii=False), 400)))
    parts = [table, Text("prompt", style="bold cyan"), Text(displayable(row["prompt"]))]
    if row.get("rendered_prompt") and row["rendered_prompt"] != row["prompt"]:
        parts += [Text("rendered prompt (what the model saw)", style="bold cyan"),
                  Text(displayable(row["rendered_prompt"]))]
    return Group(*parts, Text("output", style="bold cyan"), Text(displayable(row["output"])))
