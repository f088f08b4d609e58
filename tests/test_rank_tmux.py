"""gptkit rank once end to end on a real terminal (tmux): prompt-toolkit input, Rich output,
one ranking typed as keys, quit, and the logbook holds exactly that ranking."""

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gptkit.store import open_logbook

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def wait_for_screen(tmux, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "rank"], capture_output=True, text=True).stdout
        if text in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {text!r}; screen:\n{screen}")


def test_rank_in_tmux(tiny_checkpoints, tmp_path, isolated_home):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("What is 2 + 2?\nName a colour.\n")
    # A private tmux server (own socket) so the test never touches a user's sessions.
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    command = " ".join([
        "env", f"GPTKIT_HOME={shlex.quote(str(isolated_home))}",
        shlex.quote(sys.executable), "-m", "gptkit", "rank", "-m", shlex.quote(str(tiny_checkpoints["assistant"])),
        "--prompts", shlex.quote(str(prompts)), "-k", "2", "--max-tokens", "4", "--seed", "0",
        "--device", "cpu", "--rater", "tmux",
        "; echo EXIT=$?; sleep 30",  # keep the pane open so the exit status can be read
    ])
    subprocess.run([*tmux, "new-session", "-d", "-s", "rank", "-x", "160", "-y", "50",
                    "-c", str(Path(__file__).parent.parent), command], check=True)
    try:
        wait_for_screen(tmux, "rank>")
        subprocess.run([*tmux, "send-keys", "-t", "rank", "2>1", "Enter"], check=True)
        wait_for_screen(tmux, "saved ranking #1: 2>1")
        wait_for_screen(tmux, "Name a colour.")
        subprocess.run([*tmux, "send-keys", "-t", "rank", "q", "Enter"], check=True)
        screen = wait_for_screen(tmux, "EXIT=")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    assert "EXIT=0" in screen and "Traceback" not in screen
    with open_logbook() as logbook:
        assert logbook.check() == []
        [ranking] = logbook.rankings()
    assert ranking["prompt"] == "What is 2 + 2?" and ranking["ranks"] == [2, 1]
    assert ranking["rater"] == "tmux" and ranking["synthetic"] is False
    assert os.path.exists(isolated_home / "rank_history")  # prompt-toolkit ran, not the pipe reader
