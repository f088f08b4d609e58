"""Terminal line charts for loss curves, drawn from a run's metrics.jsonl.

Pure presentation: `read_curve` reads recorded metrics, `line_chart` turns (x, y) series into a
Rich Text block with axes. Nothing here trains or loads a model.
"""

from pathlib import Path

from rich.text import Text

from gptkit.errors import DataError
from gptkit.files import parse_json, read_text

SERIES_STYLES = (("•", "cyan"), ("◦", "magenta"), ("+", "yellow"), ("x", "green"))


def read_curve(run_dir: Path, key: str = "loss") -> list[tuple[float, float]]:
    """(step, value) pairs for `key` from run_dir/metrics.jsonl; the last write of a step wins."""
    points: dict[float, float] = {}
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    for line in read_text(path).splitlines():
        try:
            row = parse_json(line)
        except DataError:
            continue  # a line cut short by a crash: skip it
        if isinstance(row, dict) and all(isinstance(row.get(k), (int, float)) for k in ("step", key)):
            points[row["step"]] = row[key]
    return sorted(points.items())


def line_chart(series: dict[str, list[tuple[float, float]]], *, width: int = 60, height: int = 12, title: str = "") -> Text:
    """Plot each named series on shared axes; y is labelled on the left, x (steps) below."""
    series = {name: pts for name, pts in series.items() if pts}
    out = Text()
    if title:
        out.append(title + "\n", style="bold")
    if not series:
        return out.append("(no data)\n", style="dim")
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    x_span, y_span = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    grid: list[list[tuple[str, str] | None]] = [[None] * width for _ in range(height)]
    for (name, pts), (mark, style) in zip(series.items(), SERIES_STYLES):
        for x, y in pts:
            col = round((x - x0) / x_span * (width - 1))
            row = height - 1 - round((y - y0) / y_span * (height - 1))
            grid[row][col] = (mark, style)
    for r, cells in enumerate(grid):
        label = y1 - r * y_span / (height - 1)
        out.append(f"{label:7.3f} ┤", style="dim")
        for cell in cells:
            out.append(cell[0], style=cell[1]) if cell else out.append(" ")
        out.append("\n")
    out.append(" " * 8 + "└" + "─" * width + "\n", style="dim")
    out.append(f"{'':9}{x0:<{width // 2}.0f}{x1:>{width - width // 2}.0f}  step\n", style="dim")
    for (name, _), (mark, style) in zip(series.items(), SERIES_STYLES):
        out.append(f"{'':9}{mark} ", style=style).append(name + "\n")
    return out
