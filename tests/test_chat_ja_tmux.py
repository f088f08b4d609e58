"""Japanese in a real terminal (tmux): `gptkit chat` comparing two tiny models trained here on
Japanese text, driven by full-width keys as an input method commits them, and `gptkit rank` on a
file of Japanese questions. What tmux draws is read back with capture-pane and measured in
terminal columns (unicodedata.east_asian_width W/F = two cells): every row of the side-by-side
panels must have its border characters in the columns of the panels' corners.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import unicodedata

import pytest

from gptkit.store import open_logbook

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

JA_QA = [("日本の首都はどこですか？", "日本の首都は東京です。"), ("富士山の高さは？", "富士山は三千七百七十六メートルです。"),
         ("猫は何と鳴きますか？", "猫はにゃーと鳴きます。"), ("十二足す七は？", "十二足す七は十九です。")]
JA_CORPUS = [f"質問：{q}\n答え：{a}\n" for q, a in JA_QA] * 10
VERTICAL = "│┃╭╮╰╯"


def make_japanese_checkpoints(root):
    """A tokenizer trained on Japanese and `tiny` GPTs trained on it for a few seconds: a base on
    the corpus and an assistant tuned from it on the questions as chats. The content is not the
    point, only that what they write is Japanese."""
    import torch

    from gptkit.checkpoint import save_checkpoint
    from gptkit.data.chat import pad_batch
    from gptkit.model import GPT, config_for
    from gptkit.tokenizer import render_chat, train_tokenizer

    tok = train_tokenizer(JA_CORPUS, 400, name="ja")
    chats = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in JA_QA]
    examples = {"base": [(ids, [1] * len(ids)) for ids in (tok.encode_document(t) for t in JA_CORPUS[:4])],
                "assistant": [render_chat(tok, c) for c in chats]}
    torch.manual_seed(0)
    model = GPT(config_for("tiny", tok.n_vocab))
    for kind in ("base", "assistant"):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        x, y, mask = pad_batch(examples[kind], tok.bos_id)
        for _ in range(40):
            optimizer.zero_grad()
            model(x, y, loss_mask=mask).backward()
            optimizer.step()
        save_checkpoint(root / f"ja-{kind}", model=model.eval(), tokenizer=tok,
                        meta={"kind": kind, "step": 40, "tokens_seen": 0, "parent": None})
    return root


@pytest.fixture(scope="module")
def ja_checkpoints(tmp_path_factory):
    return make_japanese_checkpoints(tmp_path_factory.mktemp("ja_ckpts"))


class Terminal:
    """One program in a private tmux server (its own socket: a user's sessions are never touched)."""

    def __init__(self, folder, command: str, width: int):
        self.tmux = ["tmux", "-u", "-S", str(folder / "tmux.sock")]
        for _ in range(3):  # on a busy machine a fresh tmux server now and then exits while starting
            if subprocess.run([*self.tmux, "new-session", "-d", "-s", "ja", "-x", str(width), "-y", "50", command],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.5)

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-t", "ja"], capture_output=True, text=True).stdout

    def wait_for(self, predicate, what: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{self.screen()}")

    def type(self, text: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "ja", "-l", text], check=True)
        subprocess.run([*self.tmux, "send-keys", "-t", "ja", "Enter"], check=True)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


def command_line(env: dict[str, str], *args: str) -> str:
    env = {**env, "TERM": "xterm-256color", "LANG": "C.UTF-8", "PYTHONUTF8": "1", "PATH": os.environ.get("PATH", ""),
           "OMP_NUM_THREADS": "1"}
    # -u: under pytest, COLUMNS=80 and LINES=24 are in the environment, and Rich would believe them
    return " ".join(["env", "-u", "COLUMNS", "-u", "LINES", *(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.quote(sys.executable),
                     "-m", "gptkit", *map(shlex.quote, args)]) + "; echo EXIT=$?; sleep 30"


def cells(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1


def border_columns(line: str) -> list[int]:
    out, x = [], 0
    for ch in line:
        if ch in VERTICAL:
            out.append(x)
        x += cells(ch)
    return out


def panel_rows(screen: str, top_marker: str) -> list[str]:
    """The rows of the last block of side-by-side panels whose top row contains `top_marker`."""
    lines = screen.splitlines()
    start = max(i for i, line in enumerate(lines) if top_marker in line and line.count("╭") >= 2)
    rows = []
    for line in lines[start:]:
        if not border_columns(line):
            break
        rows.append(line)
    return rows


def assert_aligned(rows: list[str], width: int) -> None:
    """The panels fill the terminal's width; every row's borders sit in the columns of the top
    row's corners (a shorter panel that has ended leaves blanks there), and rows where every panel
    is open have all of them."""
    top = border_columns(rows[0])
    assert len(top) >= 4 and top[-1] == width - 1, rows[0]
    for row in rows:
        cols = border_columns(row)
        assert set(cols) <= set(top), f"border at {cols}, corners at {top}:\n" + "\n".join(rows)
    assert sum(border_columns(row) == top for row in rows) >= 3, "\n".join(rows)


def wide(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.east_asian_width(ch) in "WF" and ch not in "＞／　"]


@pytest.mark.parametrize("width", [101, 80])
def test_japanese_compare_panels_stay_aligned_in_a_real_terminal(ja_checkpoints, tmp_path, isolated_home, width):
    env = {"GPTKIT_HOME": str(isolated_home), "GPTKIT_CHECKPOINTS": str(ja_checkpoints)}
    terminal = Terminal(tmp_path, command_line(env, "chat", "-m", "ja-assistant", "--max-tokens", "40", "--seed", "0",
                                               "--device", "cpu"), width)
    try:
        terminal.wait_for(lambda s: "assistant ›" in s, "the first prompt")
        terminal.type("／ｃｏｍｐａｒｅ　ｊａ－ａｓｓｉｓｔａｎｔ　ｊａ－ｂａｓｅ")  # as an input method commits it
        terminal.wait_for(lambda s: "compare mode: ja-assistant · ja-base" in s, "the /compare notice")
        terminal.type("日本の首都はどこですか？")
        screen = terminal.wait_for(lambda s: s.count("tok/s") == 2 and "compare ›" in s.rsplit("tok/s", 1)[1],
                                   "both answers")
        rows = panel_rows(screen, "ja-assistant/step-000040")
        assert_aligned(rows, width)
        assert "…" not in "".join(rows[1:-1]) and len(rows) > 3, screen  # wrapped whole, never cut to a line
        assert wide("".join(rows[1:])), "the answers contain no Japanese:\n" + screen

        terminal.type("／ｔｏｋｅｎｓ")
        screen = terminal.wait_for(lambda s: s.count("answer tokens (green)") == 2
                                   and re.search(r"^compare ›\s*$", s, re.MULTILINE), "/tokens for both answers")
        shown = screen[screen.index("answer tokens (green)"):]
        assert len(wide(shown)) >= 10 and "本" in shown, screen  # Japanese pieces, the question's and the answers'
        assert "Traceback" not in screen and "error" not in screen
        terminal.type("／ｑｕｉｔ")
        assert "EXIT=0" in terminal.wait_for(lambda s: "EXIT=" in s, "the exit")
    finally:
        terminal.close()
    with open_logbook() as logbook:
        rows = logbook.recent(kind="chat")
    assert {r["prompt"] for r in rows} == {"日本の首都はどこですか？"} and len(rows) == 2


def test_japanese_rank_panels_stay_aligned_in_a_real_terminal(ja_checkpoints, tmp_path, isolated_home):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("日本の首都はどこですか？\n猫は何と鳴きますか？\n", encoding="utf-8")
    env = {"GPTKIT_HOME": str(isolated_home), "GPTKIT_CHECKPOINTS": str(ja_checkpoints)}
    terminal = Terminal(tmp_path, command_line(env, "rank", "-m", "ja-assistant", "-m", "ja-base", "--prompts",
                                               str(prompts), "-k", "2", "--max-tokens", "40", "--seed", "0",
                                               "--device", "cpu", "--rater", "tmux"), 101)
    try:
        screen = terminal.wait_for(lambda s: "rank>" in s, "the first rank prompt")
        rows = panel_rows(screen, "╭─ 1 ")
        assert_aligned(rows, 101)
        assert "…" not in "".join(rows[1:-1]) and len(rows) > 3, screen
        assert wide("".join(rows[1:])), "the answers contain no Japanese:\n" + screen
        terminal.type("２＞１")  # full-width, as an input method commits it
        terminal.wait_for(lambda s: "saved ranking #1: 2>1" in s, "the saved ranking")
        screen = terminal.wait_for(lambda s: s.count("rank>") >= 2 and "猫は何と" in s, "the second prompt")
        assert_aligned(panel_rows(screen, "╭─ 1 "), 101)
        terminal.type("ｑ")
        assert "EXIT=0" in terminal.wait_for(lambda s: "EXIT=" in s, "the exit")
    finally:
        terminal.close()
    with open_logbook() as logbook:
        [ranking] = logbook.rankings()
    assert ranking["prompt"] == "日本の首都はどこですか？" and ranking["ranks"] == [2, 1]
