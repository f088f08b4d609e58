"""A newcomer's path after the quickstart, typed into a real terminal (tmux): list the
checkpoints, chat with both models side by side and then with a template, rank answers with a
tie, find the ranking in the logbook, tune on that one ranking (and be warned), ask for the
leaderboard, compare the two models blind, and see the leaderboard.

The quickstart's checkpoints are stood in for by tiny random ones in the same places
(checkpoints/quickstart/base and .../assistant).
"""

import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from gptkit.store import open_logbook

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Terminal:
    """A shell in a private tmux server (its own socket: a user's sessions are never touched)."""

    def __init__(self, folder, env: dict[str, str]):
        self.tmux = ["tmux", "-S", str(folder / "tmux.sock")]
        subprocess.run([*self.tmux, "new-session", "-d", "-s", "path", "-x", "160", "-y", "50", "-c", str(folder),
                        "bash --norc --noprofile"], check=True)
        self.commands = 0
        self.seen: dict[str, int] = {}  # text -> times `expect` has seen it
        self.type(" ".join(f"export {k}={shlex.quote(v)};" for k, v in env.items()) + " export PS1='$ '")
        self.type(f"gptkit() {{ {shlex.quote(sys.executable)} -m gptkit \"$@\"; }}")

    def screen(self) -> str:
        """Everything printed so far (scrollback included), wrapped lines joined."""
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-J", "-S", "-", "-t", "path"],
                              capture_output=True, text=True).stdout

    def expect(self, text: str, timeout: float = 60.0) -> str:
        """Wait for `text` to appear once more than it had when last expected; returns the screen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if screen.count(text) > self.seen.get(text, 0):
                self.seen[text] = screen.count(text)
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {text!r}; screen:\n{screen}")

    def type(self, keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "path", "-l", keys], check=True)
        subprocess.run([*self.tmux, "send-keys", "-t", "path", "Enter"], check=True)

    def key(self, name: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "path", name], check=True)

    def run(self, command: str, timeout: float = 120.0) -> str:
        """Type a command at the shell and wait for it to end; returns what it printed."""
        self.commands += 1
        typed = f"{command}; echo EXIT-{self.commands}=$?"
        self.type(typed)
        deadline = time.monotonic() + timeout
        while not (done := re.search(rf"^EXIT-{self.commands}=(\d+)$", screen := self.screen(), re.MULTILINE)):
            assert time.monotonic() < deadline, f"timed out waiting for {command!r}; screen:\n{screen}"
            time.sleep(0.1)
        printed = screen[screen.rindex(typed) + len(typed):done.start()]
        assert done.group(1) == "0", printed
        return printed

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


def rank_the_prompt(terminal: Terminal, models: str, ordering: str, ranking_id: int) -> str:
    """`gptkit rank` on prompts.txt's one prompt: type `ordering`, then q at the typed-prompt
    question that follows; returns the screen once the command has ended."""
    terminal.type(f"gptkit rank {models} --prompts prompts.txt --max-tokens 6 --seed 0 --rater newcomer "
                  "--device cpu; echo RANKED=$?")
    terminal.expect("rank>")
    terminal.type(ordering)
    terminal.expect(f"saved ranking #{ranking_id}: {ordering}")
    terminal.type("q")
    return terminal.expect("RANKED=0")


def chat_with_both_models(terminal: Terminal) -> None:
    """Compare side by side, a hint with the session's real names, then the assistant with a
    template, leaving it (its settings go back), and Ctrl-D."""
    terminal.type("gptkit chat -m quickstart/base -m quickstart/assistant --max-tokens 6 --device cpu; "
                  "echo CHATTED=$?")
    terminal.expect("compare ›")
    terminal.type("Explain the moon landing to a 6 year old.")
    screen = terminal.expect("tok/s ─╯")
    assert "base/step-000001 · base" in screen and "assistant/step-000001 · assistant" in screen, screen[-3000:]
    terminal.type("/compare")
    terminal.expect("e.g. /compare quickstart/base quickstart/assistant")
    terminal.type("/mode assistant")
    terminal.expect("mode assistant · quickstart/assistant")
    terminal.type("/template few-shot")
    terminal.expect("template few-shot: temperature 0.0")
    terminal.type("What is the capital of Peru?")
    terminal.type("/template off")
    terminal.expect("template off · back to temperature 0.8")
    terminal.key("C-d")
    terminal.expect("CHATTED=0")


def test_newcomer_path_in_tmux(tiny_checkpoints, tmp_path, isolated_home):
    checkpoints = tmp_path / "checkpoints"  # $GPTKIT_CHECKPOINTS (conftest)
    for kind in ("base", "assistant"):
        shutil.copytree(tiny_checkpoints[kind].parent, checkpoints / "quickstart" / kind)
    (tmp_path / "prompts.txt").write_text("In which town do Gemis's parents live?\n")
    terminal = Terminal(tmp_path, {"GPTKIT_HOME": str(isolated_home), "GPTKIT_CHECKPOINTS": str(checkpoints),
                                   "OMP_NUM_THREADS": "1"})
    try:
        listed = terminal.run("gptkit list")
        assert "quickstart/assistant  assistant  1" in listed and "quickstart/base" in listed

        chat_with_both_models(terminal)

        rank_the_prompt(terminal, "-m quickstart/assistant -k 3", "2>1=3", 1)  # three answers, two tied

        logged = terminal.run("gptkit log")
        assert "rank" in logged and "In which town do Gemis's parents live?" in logged and "2>1=3 best:" in logged
        assert "Explain the moon landing" in logged and "What is the capital of Peru?" in logged  # the chat turns

        tuned = terminal.run("gptkit rlhf -m quickstart/assistant --data logbook --max-steps 3 --batch-size 2 "
                             "--out checkpoints/policy --device cpu", timeout=180)
        assert "can be held out (they answer one prompt): validation is skipped" in tuned
        assert "training pairs are very few" in tuned and "kl: how far the policy has moved" in tuned
        assert "before and after, greedy" in tuned and "saved" in tuned

        board = terminal.run("gptkit leaderboard")
        assert "no battles yet" in board and "gptkit rank -m A -m B" in board

        # both models, blind: the prompt ranked for one model comes back for the pair
        screen = rank_the_prompt(terminal, "-m quickstart/assistant -m policy -k 2", "1=2", 2)
        assert "resuming" not in screen[screen.rindex("-m quickstart/assistant -m policy -k 2"):]

        board = terminal.run("gptkit leaderboard")
        assert "policy/step-000003" in board and "assistant/step-000001" in board
        assert "Traceback" not in terminal.screen()
    finally:
        terminal.close()
    with open_logbook() as logbook:
        first, second = logbook.rankings()
    assert first["ranks"] == [2, 1, 2] and first["rater"] == "newcomer"
    assert second["ranks"] == [1, 1] and {i["checkpoint"] for i in second["items"]} == {
        "assistant/step-000001", "policy/step-000003"}
