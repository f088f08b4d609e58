"""Wide characters in the shared renderables: Japanese text (two cells a character, no spaces to
wrap at) in answer panels side by side and stacked, streaming into them, the vote table, the
quickstart's showcase and the "…" cut-offs. Each layout is rendered on a recording Rich console
and measured the way a terminal draws it: unicodedata.east_asian_width W/F takes two cells.
"""

import io
import unicodedata
from types import SimpleNamespace

import pytest
from rich.console import Console

from gptkit.ui.render import PanelStream, answer_grid, clip_cells, graphemes, show_vote, showcase_table

JA = ("日本の首都は東京です。富士山は日本で一番高い山です。猫は「にゃー」と鳴きます。"
      "十二足す七は十九です。")
MIXED = "こんにちは、世界！ABCあいうえおかきくけこ 123 さしすせそ、たちつてと。"
BORDERS = set("│┃╭╮╰╯├┤┬┴┼─━┏┓┗┛")


def cells(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1


def columns(line: str) -> list[int]:
    """The terminal columns of the vertical border characters in `line`."""
    out, x = [], 0
    for ch in line:
        if ch in "│┃╭╮╰╯├┤":
            out.append(x)
        x += cells(ch)
    return out


def width(line: str) -> int:
    return sum(cells(ch) for ch in line)


def rendered(renderable, console_width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=console_width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


def between(lines: list[str], left: int, right: int) -> str:
    """What lies between terminal columns `left` and `right` (exclusive) on every row, borders and
    spaces dropped, rows joined: one panel's (or one table column's) text."""
    out = []
    for line in lines:
        x = 0
        for ch in line:
            if left < x < right and ch not in BORDERS and not ch.isspace():
                out.append(ch)
            x += cells(ch)
    return "".join(out)


def squeezed(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("n,console_width", [(2, 80), (2, 81), (2, 79), (2, 67), (3, 100), (3, 101), (3, 119)])
def test_japanese_panels_side_by_side_keep_their_borders_in_line(console_width, n):
    answers = [(f"{i + 1} · 日本語モデル", [JA * 2, MIXED, JA][i], "12 tokens · 80.1 tok/s") for i in range(n)]
    lines = rendered(answer_grid(answers, console_width), console_width)
    assert {width(line) for line in lines} == {console_width}, "\n".join(lines)
    top = columns(lines[0])
    assert len(top) == 2 * n, lines[0]  # side by side: every panel's corners on the first row
    for line in lines:
        # every row's borders sit in the columns of the panels' corners; a finished panel leaves blanks
        assert set(columns(line)) <= set(top), f"{columns(line)} vs {top}:\n" + "\n".join(lines)
        assert columns(line) == [c for c in top if c in columns(line)]


@pytest.mark.parametrize("console_width", [80, 81])
def test_japanese_without_spaces_wraps_inside_its_panel_instead_of_being_cut(console_width):
    # Before: a table cell defaults to overflow="ellipsis", so a line with no spaces showed one
    # row and "…", and the rest of a Japanese answer was lost.
    lines = rendered(answer_grid([("1", JA * 2), ("2", MIXED)], console_width), console_width)
    a_left, a_right, b_left, b_right = columns(lines[0])
    assert squeezed(JA * 2) in between(lines[1:], a_left, a_right)
    assert squeezed(MIXED) in between(lines[1:], b_left, b_right)
    assert "…" not in between(lines[1:-1], 0, console_width)


def test_japanese_panels_stacked_when_narrow_keep_their_borders():
    lines = rendered(answer_grid([("1", JA), ("2", MIXED)], 41), 41)
    assert {width(line) for line in lines} == {41}
    assert {tuple(columns(line)) for line in lines} == {(0, 40)}
    assert squeezed(JA) in between(lines, 0, 40)


def test_streaming_japanese_into_panels_keeps_every_frame_aligned():
    console = Console(file=io.StringIO(), width=81, record=True, color_system=None)
    stream = PanelStream(console, ["ja-a · base", "ja-b · assistant"])
    for i, text in enumerate([JA, MIXED]):
        for ch in text:  # a character at a time, as a model writes it
            stream.add(i, ch)
            frame = rendered(stream.renderable(), 81)
            assert {width(line) for line in frame} == {81}
            top = columns(frame[0])
            assert all(set(columns(line)) <= set(top) for line in frame), "\n".join(frame)
        stream.finish(i, "5 tokens")


def test_clip_counts_cells_and_never_splits_a_character():
    assert clip_cells("日本の首都は東京です", 9) == "日本の首…"  # 4 characters = 8 cells, and the "…"
    assert width(clip_cells("日本の首都は東京です", 9)) <= 9
    assert clip_cells("abc", 3) == "abc" and clip_cells("abcd", 3) == "ab…"
    assert clip_cells("か\u3099か\u3099か\u3099", 4) == "か\u3099…"  # a combining voiced mark stays on its kana
    assert graphemes("👨\u200d👩\u200d👧x") == ["👨\u200d👩\u200d👧", "x"]
    assert clip_cells("👨\u200d👩\u200d👧" * 3, 6).count("\u200d") % 2 == 0  # a family is kept whole or not at all
    for n in range(1, 30):
        cut = clip_cells(JA, n)
        assert width(cut) <= n and JA.startswith(cut.rstrip("…"))


def test_the_vote_table_with_japanese_answers_fits_the_terminal():
    results = [SimpleNamespace(text=t) for t in (JA, MIXED, "答えは東京です。")]
    answers = ["東京", "東京都でございますでございますでございます", None]
    vote = SimpleNamespace(counts=[("東京", 1), ("東京都でございますでございますでございます", 1)], n=3, n_valid=2,
                           answer="東京", agreement=0.5)
    console = Console(file=io.StringIO(), width=61, record=True, color_system=None)
    show_vote(console, "ja · base · 3 samples", results, answers, vote)
    lines = console.export_text().splitlines()
    assert all(width(line) <= 61 for line in lines), "\n".join(lines)
    assert any("東京" in line for line in lines) and "tie: 2 answers" in "\n".join(lines)


def test_the_showcase_table_wraps_japanese_and_keeps_its_grid():
    rows = [{"prompt": "日本の首都はどこですか？", "base": JA * 2, "assistant": "東京です。" + JA}]
    lines = rendered(showcase_table(rows), 90)
    assert {width(line) for line in lines} == {90}
    top = columns(lines[0]) or columns(lines[1])
    assert all(columns(line) in ([], top) or set(columns(line)) <= set(top) for line in lines), "\n".join(lines)
    header = next(line for line in lines if "base model" in line)
    _, left, right, _ = columns(header)
    assert squeezed(JA * 2) in between(lines, left, right) and "…" not in "".join(lines)


def test_experiment_cases_cut_japanese_by_cells():
    from gptkit.ui.render import experiment_tables

    row = SimpleNamespace(template="ja", checkpoint="ja-base", case_id="1", expected="東京都" * 20, extracted="東京",
                          correct=True, agreement=1.0, output="日本の首都は東京です。\n" * 20)
    cases, _ = experiment_tables(SimpleNamespace(summary=[], rows=[row]), detail=True)
    console = Console(file=io.StringIO(), width=400, record=True, color_system=None)
    console.print(cases)
    [line] = [line for line in console.export_text().splitlines() if "ja-base" in line]
    cells_by_column = [part.strip() for part in line.split("│")[1:-1]]
    expected, output = cells_by_column[3], cells_by_column[-1]
    assert expected.endswith("…") and width(expected) <= 24 and expected.startswith("東京都東京都")
    assert output.endswith("…") and width(output) <= 80 and "⏎" in output
