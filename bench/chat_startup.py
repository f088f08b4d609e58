"""Chat latency in a real terminal (tmux): launch -> first prompt, and question -> first answer text.

Rows, each the median of --repeats fresh launches of `gptkit chat -m CHECKPOINT --mode assistant`:
- launch -> prompt: from starting the command until its prompt is on the screen (target <= 2 s
  on CPU). The checkpoint loads in a background thread meanwhile.
- first answer, cold: the question is typed the moment the prompt appears, so this includes
  whatever checkpoint loading is still left, then prefill and the first token.
- first answer, warm: a second question in the same session.
References from the same run: `python -c pass` (the interpreter's floor), `python -c "import
torch"` (what a CLI that loads torch before showing anything pays first), `gptkit --help`.

The screen is polled every 20 ms, so figures are +-20 ms. Nothing is asserted: these are figures.

    python bench/chat_startup.py                   (a random `small` assistant in a temp folder)
    python bench/chat_startup.py -m assistant --repeats 5
"""

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

POLL = 0.02


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-m", "--model", default=None, help="checkpoint name or path (default: a random `small` one)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for any one event")
    return p.parse_args(argv)


def random_checkpoint(folder: Path) -> Path:
    """A `small` assistant with random weights and a tokenizer trained on a few lines."""
    import torch

    from gptkit.checkpoint import save_checkpoint
    from gptkit.model import GPT, config_for
    from gptkit.tokenizer import train_tokenizer

    tok = train_tokenizer([f"Q: What is {a} + {b}?\nA: {a + b}" for a in range(30) for b in range(30)], 512, "bench")
    torch.manual_seed(0)
    model = GPT(config_for("small", tok.n_vocab))
    return save_checkpoint(folder / "bench-assistant", model=model, tokenizer=tok,
                           meta={"kind": "assistant", "step": 1, "tokens_seen": 0, "parent": None})


class Terminal:
    """One tmux server on its own socket, one pane."""

    def __init__(self):
        self.socket = f"gptkit-bench-{os.getpid()}"

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True).stdout

    def start(self, command: str) -> None:
        # remain-on-exit: if the chat dies, its last words stay on the screen for the timeout message
        args = ["tmux", "-L", self.socket, "new-session", "-d", "-s", "bench", "-x", "120", "-y", "40", command,
                ";", "set-option", "-t", "bench", "remain-on-exit", "on"]
        for _ in range(3):  # on a busy machine a fresh tmux server now and then exits while starting
            started = subprocess.run(args, capture_output=True, text=True)
            if started.returncode == 0:
                return
            time.sleep(0.5)
        raise SystemExit(f"tmux could not start: {started.stderr.strip()}")

    def wait_for(self, predicate, timeout: float, what: str) -> float:
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if predicate(self.tmux("capture-pane", "-p", "-t", "bench").splitlines()):
                return time.perf_counter()
            time.sleep(POLL)
        raise SystemExit(f"timed out waiting for {what}:\n" + self.tmux("capture-pane", "-p", "-t", "bench"))

    def type(self, text: str) -> float:
        self.tmux("send-keys", "-t", "bench", "-l", text)
        sent = time.perf_counter()
        self.tmux("send-keys", "-t", "bench", "Enter")
        return sent

    def stop(self) -> None:
        self.tmux("kill-server")


def answer_started(question: str):
    """Some answer text below the line where `question` was entered; not the toolbar, not the
    "loading ..." spinner shown while the checkpoint finishes loading."""
    def check(lines: list[str]) -> bool:
        asked = [i for i, line in enumerate(lines) if line.rstrip().endswith(f"› {question}")]
        return bool(asked) and any(line.strip() and " | template " not in line and "loading " not in line
                                   for line in lines[asked[-1] + 1:])
    return check


def one_launch(command: str, timeout: float) -> dict:
    term = Terminal()
    try:
        launched = time.perf_counter()
        term.start(command)
        prompt_at = term.wait_for(lambda lines: any("assistant ›" in line for line in lines), timeout, "the prompt")
        sent = term.type("What is 2 + 3?")
        cold = term.wait_for(answer_started("What is 2 + 3?"), timeout, "the first answer") - sent
        term.wait_for(lambda lines: sum("assistant ›" in line for line in lines) >= 2, timeout, "the next prompt")
        sent = term.type("And 4 + 4?")
        warm = term.wait_for(answer_started("And 4 + 4?"), timeout, "the second answer") - sent
        term.type("/quit")
        return {"prompt": prompt_at - launched, "cold": cold, "warm": warm}
    finally:
        term.stop()


def wall_time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True)
    return time.perf_counter() - start


def main(argv=None) -> None:
    args = parse_args(argv)
    if shutil.which("tmux") is None:
        raise SystemExit("this benchmark drives a real terminal through tmux; install tmux")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        model = args.model or str(random_checkpoint(Path(tmp)))
        env = {"GPTKIT_HOME": str(home), "TERM": "xterm-256color", "PATH": os.environ.get("PATH", "")}
        if os.environ.get("GPTKIT_CHECKPOINTS"):
            env["GPTKIT_CHECKPOINTS"] = os.environ["GPTKIT_CHECKPOINTS"]
        command = " ".join(["env", *(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.quote(sys.executable),
                            "-m", "gptkit", "chat", "-m", shlex.quote(model), "--mode", "assistant",
                            "--max-tokens", "16"])
        runs = [one_launch(command, args.timeout) for _ in range(args.repeats)]
        references = {
            "python -c pass": [wall_time([sys.executable, "-c", "pass"]) for _ in range(args.repeats)],
            "python -c 'import torch'": [wall_time([sys.executable, "-c", "import torch"])
                                         for _ in range(args.repeats)],
            "gptkit --help": [wall_time([sys.executable, "-m", "gptkit", "--help"]) for _ in range(args.repeats)],
        }
    print(f"gptkit chat -m {model}  ({args.repeats} launches, median seconds, "
          f"screen polled every {POLL * 1000:.0f} ms)")
    rows = [("launch -> prompt on screen (target <= 2 s)", [r["prompt"] for r in runs]),
            ("question -> first answer text, cold", [r["cold"] for r in runs]),
            ("question -> first answer text, warm", [r["warm"] for r in runs]),
            *((f"reference: {name}", times) for name, times in references.items())]
    for name, times in rows:
        print(f"  {name:<46} {statistics.median(times):6.2f} s   (min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
