"""DDP on CPU: 2 gloo ranks take the same step as one process on the same global batch."""

import os
import socket
import subprocess
import sys

import torch
from safetensors.torch import load_file

from gptkit.checkpoint import resolve_checkpoint

CORPUS = " ".join(f"line {i}: the quick fox {i % 13} jumps over {i % 7} dogs." for i in range(600))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_match_one_process_with_accumulation(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    subprocess.run([sys.executable, "-m", "gptkit", "tokenizer", "train", str(corpus), "--vocab-size", "300",
                    "--output", str(tmp_path / "tok")], check=True, capture_output=True)
    common = ["train", "--data", str(corpus), "--tokenizer", str(tmp_path / "tok"), "--preset", "tiny",
              "--batch-size", "2", "--max-steps", "3", "--eval-every", "0", "--device", "cpu", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "gptkit", *common, "--grad-accum", "2", "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env)
    assert one.returncode == 0, one.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", str(free_port()), "-m", "gptkit", *common, "--out", str(tmp_path / "ddp")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = load_file(str(resolve_checkpoint(tmp_path / "one") / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "ddp") / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4, msg=k)
    # only rank 0 wrote progress lines and the metrics log
    assert ddp.stdout.count('"event": "start"') == 1
