"""The CUDA fast path: bf16 autocast training, fused AdamW, MFU, generation on the GPU.

Skipped where CUDA is absent (never faked); run on a GPU machine with `python -m pytest tests/test_cuda.py`.
"""

import pytest
import torch

from gptkit.device import pick_device
from gptkit.engine import SamplingParams, complete
from gptkit.model import GPT, config_for

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_picks_cuda_with_bf16_and_says_why():
    dc = pick_device("auto")
    assert dc.type == "cuda" and "CUDA" in dc.reason
    assert dc.dtype == ("bfloat16" if torch.cuda.is_bf16_supported() else "float32")


def test_bf16_training_step_on_cuda(tmp_path, tiny_checkpoints):
    from gptkit.checkpoint import load_checkpoint
    from gptkit.data.text import build_shards
    from gptkit.train.loop import TrainConfig, train
    from gptkit.train.pretrain import PretrainObjective

    tok = load_checkpoint(tiny_checkpoints["base"]).tokenizer
    shards = build_shards(["the cat sat on the mat. " * 400], tok, block_size=64, source_key="cuda-test")
    dc = pick_device("cuda")
    objective = PretrainObjective(shards, tok, batch_size=4, seq_len=64, device=dc.device)
    cfg = TrainConfig(max_steps=4, batch_size=4, log_every=1, eval_every=2, eval_batches=1, save_every=4)
    last = train(GPT(config_for("tiny", tok.n_vocab)), tok, objective, cfg, run_dir=tmp_path / "run", meta={}, dc=dc)
    ckpt = load_checkpoint(last)
    assert ckpt.meta["step"] == 4
    assert all(v.device.type == "cpu" for v in ckpt.model.state_dict().values())  # saved weights load anywhere


def test_cuda_greedy_matches_cpu_greedy():
    torch.manual_seed(0)
    model = GPT(config_for("tiny", 300)).eval()
    prompt = [1, 2, 3, 4, 5]
    params = SamplingParams(temperature=0, max_new_tokens=16)
    (cpu,) = complete(model, prompt, params, n_vocab=300)
    (gpu,) = complete(model.cuda(), prompt, params, n_vocab=300)
    assert cpu.tokens == gpu.tokens


def test_lock_step_samples_on_cuda_are_reproducible():
    torch.manual_seed(0)
    model = GPT(config_for("tiny", 300)).eval().cuda()
    params = SamplingParams(temperature=1.0, max_new_tokens=12, seed=3)
    a = complete(model, [1, 2, 3], params, n_vocab=300, num_samples=8)
    b = complete(model, [1, 2, 3], params, n_vocab=300, num_samples=8)
    assert [r.tokens for r in a] == [r.tokens for r in b]
