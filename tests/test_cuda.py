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


def test_cuda_graph_decode_equals_eager_decode():
    torch.manual_seed(0)
    model = GPT(config_for("tiny", 300)).eval().cuda()
    prompt = [7, 1, 9, 4]
    greedy = SamplingParams(temperature=0, max_new_tokens=40)
    (graphed,) = complete(model, prompt, greedy, n_vocab=300, static=True)
    (eager,) = complete(model, prompt, greedy, n_vocab=300, static=False, sync_every=1)
    assert graphed.tokens == eager.tokens
    sampled = SamplingParams(temperature=1.0, max_new_tokens=20, seed=5)
    rows = complete(model, prompt, sampled, n_vocab=300, num_samples=8, static=True)
    again = complete(model, prompt, sampled, n_vocab=300, num_samples=8, static=True)
    assert [r.tokens for r in rows] == [r.tokens for r in again] and len({tuple(r.tokens) for r in rows}) > 1


def test_cuda_decode_reads_sampled_ids_once_per_chunk():
    """Sampling (top-k, top-p included) stays on the GPU; the host waits once per CUDA_SYNC_EVERY steps."""
    import warnings

    from gptkit.engine import CUDA_SYNC_EVERY

    model = GPT(config_for("tiny", 300)).eval().cuda()
    new = 4 * CUDA_SYNC_EVERY
    params = SamplingParams(temperature=0.8, top_k=50, top_p=0.9, max_new_tokens=new, seed=0)
    complete(model, [1, 2, 3], params, n_vocab=300, num_samples=4)  # warm-up outside the count
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            complete(model, [1, 2, 3], params, n_vocab=300, num_samples=4)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    # one read per chunk, plus the setup: the prompt's copy to the GPU and the graph capture's syncs
    assert len(syncs) <= new // CUDA_SYNC_EVERY + 5, [str(w.message) for w in syncs]


def test_bf16_inference_checkpoint_and_pinned_batches(tiny_checkpoints):
    from gptkit.checkpoint import load_checkpoint
    from gptkit.device import to_device

    ckpt = load_checkpoint(tiny_checkpoints["base"], device="cuda", dtype="bfloat16")
    assert ckpt.model.lm_head.weight.dtype == torch.bfloat16
    (c,) = complete(ckpt.model, [ckpt.tokenizer.bos_id], SamplingParams(temperature=0, max_new_tokens=8),
                    n_vocab=ckpt.tokenizer.n_vocab)
    assert len(c.tokens) <= 8
    batch = torch.arange(12).view(3, 4)
    moved = to_device(batch, "cuda")
    assert moved.device.type == "cuda" and torch.equal(moved.cpu(), batch)
