"""End to end: a real `gptkit chat -m base -m assistant` in a real terminal (tmux), driven by keys.

What the pipe-input tests cannot show: the prompt appears in a terminal, the Live panels render
there, and /quit leaves the program. The tmux server runs on its own socket and is killed after.
"""

import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from gptkit.store import open_logbook

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, socket: str):
        self.socket = socket

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "chat", check=False).stdout

    def alive(self) -> bool:
        return self.run("has-session", "-t", "chat", check=False).returncode == 0

    def wait_for(self, predicate, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{self.screen()}")

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", "chat", "-l", text)
        self.run("send-keys", "-t", "chat", "Enter")


def test_compare_session_in_a_real_terminal(tiny_checkpoints, isolated_home):
    tmux = Tmux(f"gptkit-test-{os.getpid()}")
    env = {"GPTKIT_HOME": str(isolated_home), "GPTKIT_CHECKPOINTS": str(tiny_checkpoints["base"].parent.parent),
           "TERM": "xterm-256color", "PATH": os.environ.get("PATH", "")}
    command = " ".join(["env", *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
                        shlex.quote(sys.executable), "-m", "gptkit", "chat", "-m", "base", "-m", "assistant",
                        "--max-tokens", "8"])
    for _ in range(3):  # on a busy machine a fresh tmux server now and then exits while starting
        if tmux.run("new-session", "-d", "-s", "chat", "-x", "120", "-y", "40", command, check=False).returncode == 0:
            break
        time.sleep(0.5)
    try:
        tmux.wait_for(lambda s: "compare ›" in s, 30, "the first prompt")
        tmux.type("/compare assistant base")
        tmux.wait_for(lambda s: "compare mode: assistant · base" in s, 10, "the /compare notice")
        tmux.type("What is the capital of France?")
        screen = tmux.wait_for(lambda s: s.count("tok/s") == 2, 30, "both answers")
        assert "assistant/step-000001 · assistant" in screen and "base/step-000001 · base" in screen
        # the two panels sit side by side, on the same lines
        assert any("╭─ assistant/step-000001" in line and "╭─ base/step-000001" in line for line in screen.splitlines())
        tmux.type("/quit")
        deadline = time.monotonic() + 10
        while tmux.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not tmux.alive(), "gptkit chat did not leave on /quit"
    finally:
        tmux.run("kill-server", check=False)
    with open_logbook() as logbook:
        rows = logbook.recent(kind="chat")
    assert sorted(r["checkpoint"] for r in rows) == ["assistant/step-000001", "base/step-000001"]
    assert {r["prompt"] for r in rows} == {"What is the capital of France?"}
