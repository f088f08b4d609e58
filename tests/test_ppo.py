"""PPO: the reward rises under a reward model that likes one token, KL to the reference starts at
0, advantages follow the per-prompt baseline, and a run resumed part-way through a rollout
matches a straight run bit for bit."""

import json

import pytest
import torch
from safetensors.torch import load_file

from gptkit.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from gptkit.data.preferences import encode_prompt
from gptkit.device import pick_device
from gptkit.errors import TrainingError
from gptkit.train.loop import TrainConfig, train
from gptkit.train.ppo import PPOObjective, PPOSettings, baselined_advantages, clipped_surrogate, per_token_rewards, run_ppo
from test_dpo import marked_pairs
from test_reward import metrics


class TokenCounter(torch.nn.Module):
    """A stand-in reward model: the reward is how often `token` occurs up to the last token."""

    def __init__(self, token: int):
        super().__init__()
        self.token = token

    def reward(self, idx, last_index):
        upto = torch.arange(idx.size(1))[None, :] <= last_index[:, None]
        return ((idx == self.token) & upto).float().sum(1)


def test_advantages_compare_answers_to_the_same_prompt():
    mask = torch.tensor([[0, 1, 1], [0, 1, 1], [0, 1, 0], [0, 1, 0]], dtype=torch.float32)
    zeros = torch.zeros(4, 3)
    rewards = per_token_rewards(torch.tensor([1.0, 0.0, 5.0, 5.0]), zeros, zeros, mask, torch.tensor([2, 2, 1, 1]), 0.1)
    assert rewards.tolist() == [[0, 0, 1], [0, 0, 0], [0, 5, 0], [0, 5, 0]]
    advantages = baselined_advantages(rewards, mask, k=2)
    assert advantages[0, 1] > 0 and advantages[1, 1] < 0  # better than its sibling / worse
    assert advantages[2:].abs().sum() == 0  # equal answers to one prompt teach nothing
    assert advantages[:, 0].abs().sum() == 0  # prompt tokens never count
    logp_ref = torch.tensor([[0.0, -1.0, -2.0]] * 4)
    kl_rewards = per_token_rewards(torch.zeros(4), logp_ref + 0.5, logp_ref, mask, torch.tensor([2, 2, 1, 1]), 0.1)
    assert torch.allclose(kl_rewards, -0.05 * mask)


def test_clipped_surrogate_stops_pushing_past_the_clip():
    old = torch.zeros(1, 2)
    advantages, mask = torch.ones(1, 2), torch.ones(1, 2)
    inside = torch.full((1, 2), 0.1, requires_grad=True)  # ratio e^0.1 < 1.2
    outside = torch.full((1, 2), 0.5, requires_grad=True)  # ratio e^0.5 > 1.2
    loss_in, frac_in = clipped_surrogate(inside, old, advantages, mask, 0.2)
    loss_out, frac_out = clipped_surrogate(outside, old, advantages, mask, 0.2)
    loss_in.backward(), loss_out.backward()
    assert frac_in == 0 and frac_out == 1
    assert inside.grad.abs().sum() > 0 and outside.grad.abs().sum() == 0


def test_reward_rises_and_kl_starts_at_zero(tiny_checkpoints, tmp_path):
    sft = load_checkpoint(tiny_checkpoints["assistant"])
    tok = sft.tokenizer
    reference = load_checkpoint(tiny_checkpoints["assistant"]).model.requires_grad_(False)
    prompts = [encode_prompt(tok, f"Question {i}?") for i in range(20)]
    settings = PPOSettings(samples_per_prompt=4, prompts_per_rollout=4, max_new_tokens=16, kl_coef=0.01)
    objective = PPOObjective(sft.model, reference, TokenCounter(tok.encode(" woof")[-1]), tok, prompts, prompts[:4],
                             settings, device="cpu")
    cfg = TrainConfig(max_steps=40, batch_size=8, lr=1e-2, warmup_steps=2, eval_every=20, eval_batches=2,
                      save_every=1000, log_every=1)
    # what evaluation would have measured at step 0 (same held-out prompts, same generator)
    initial_val = float(objective.rollout(prompts[:4], torch.Generator().manual_seed(cfg.seed + 1))["score"].mean())
    train(sft.model, tok, objective, cfg, run_dir=tmp_path / "ppo", meta={"parent": sft.name}, dc=pick_device("cpu"))
    rows = metrics(tmp_path / "ppo")
    assert rows[0]["kl"] == 0 and rows[0]["clipfrac"] == 0  # the first minibatch: policy == reference == sampler
    first, last = [r["reward"] for r in rows[:8]], [r["reward"] for r in rows[-8:]]
    assert sum(last) / 8 > sum(first) / 8 + 1.0, (first, last)
    assert rows[-1]["val_reward"] > initial_val + 1.0, (initial_val, rows[-1]["val_reward"])
    assert rows[-1]["kl"] > 0  # it moved away from the reference to get there


@pytest.fixture
def reward_checkpoint(tiny_checkpoints, tmp_path):
    """A reward model on the tiny assistant's trunk with a random (not zero) head."""
    from gptkit.train.reward import reward_model_from

    sft = load_checkpoint(tiny_checkpoints["assistant"])
    rm = reward_model_from(sft.model)
    torch.manual_seed(0)
    torch.nn.init.normal_(rm.reward_head.weight, std=1.0)
    return save_checkpoint(tmp_path / "rm", model=rm, tokenizer=sft.tokenizer, meta={"kind": "reward", "step": 1, "parent": sft.name})


def test_ppo_resumes_bitwise_part_way_through_a_rollout(tiny_checkpoints, reward_checkpoint, tmp_path):
    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n" for p, c, r in marked_pairs(12)))
    settings = PPOSettings(samples_per_prompt=2, prompts_per_rollout=3, max_new_tokens=12)  # 4 steps per rollout

    def run(out, resume=False, stop_after=None):
        cfg = TrainConfig(max_steps=10, batch_size=3, lr=1e-3, warmup_steps=1, eval_every=5, eval_batches=1,
                          save_every=4, log_every=1, stop_after=stop_after)
        return run_ppo(init_from=str(tiny_checkpoints["assistant"]), data=str(data), reward_spec=str(reward_checkpoint),
                       run_dir=tmp_path / out, cfg=cfg, dc=pick_device("cpu"), settings=settings, resume=resume)

    run("straight")
    run("halves", stop_after=6)  # step 6 = the 3rd of the 4 steps of the second rollout
    assert load_checkpoint(tmp_path / "halves").meta["step"] == 6
    run("halves", resume=True)  # steps 7-8 reuse the saved rollout: the policy that made it is gone
    a = load_file(str(resolve_checkpoint(tmp_path / "straight") / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "halves") / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert metrics(tmp_path / "straight")[-1] | {"time": 0, "tok_per_s": 0} == metrics(tmp_path / "halves")[-1] | {"time": 0, "tok_per_s": 0}
    ckpt = load_checkpoint(tmp_path / "halves")
    assert ckpt.kind == "policy" and ckpt.meta["parent"] == "assistant/step-000001" and ckpt.meta["method"] == "ppo"
    assert ckpt.meta["reward_model"] == "rm/step-000001" and ckpt.meta["step"] == 10
    # pruned when a rollout is made: the one of calls 0-3 went; 4-7 stayed for saved step 6
    assert sorted(p.name for p in (tmp_path / "halves" / "rollouts").iterdir()) == [
        "rollout-00000004.safetensors", "rollout-00000008.safetensors"]


def test_missing_rollout_is_a_clear_error_on_resume(tiny_checkpoints, reward_checkpoint, tmp_path):
    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n" for p, c, r in marked_pairs(6)))
    settings = PPOSettings(samples_per_prompt=2, prompts_per_rollout=2, max_new_tokens=8)
    kw = dict(init_from=str(tiny_checkpoints["assistant"]), data=str(data), reward_spec=str(reward_checkpoint),
              run_dir=tmp_path / "run", dc=pick_device("cpu"), settings=settings)
    run_ppo(cfg=TrainConfig(max_steps=4, batch_size=2, eval_every=0, stop_after=2), **kw)
    for path in (tmp_path / "run" / "rollouts").iterdir():
        path.unlink()
    with pytest.raises(TrainingError, match="rollout-00000000.safetensors is missing"):
        run_ppo(cfg=TrainConfig(max_steps=4, batch_size=2, eval_every=0), resume=True, **kw)


def test_cli_reward_then_ppo(tiny_checkpoints, tmp_path):
    from click.testing import CliRunner

    from gptkit.cli import cli

    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n" for p, c, r in marked_pairs(6)))
    sft = str(tiny_checkpoints["assistant"])
    runner = CliRunner()
    common = ["--data", str(data), "--max-steps", "2", "--batch-size", "2", "--json"]
    result = runner.invoke(cli, ["rlhf", "--method", "ppo", "-m", sft, "--out", str(tmp_path / "nope"), *common])
    assert result.exit_code == 2 and "--reward: PPO needs a reward model" in result.output
    result = runner.invoke(cli, ["reward", "-m", sft, "--out", str(tmp_path / "rm"), *common])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[-1])["val_pairs"] > 0
    result = runner.invoke(cli, ["rlhf", "--method", "ppo", "-m", sft, "--reward", str(tmp_path / "rm"), "--samples", "2",
                                 "--max-tokens", "8", "--out", str(tmp_path / "ppo"), *common])
    assert result.exit_code == 0, result.output
    steps = [json.loads(line) for line in result.output.splitlines() if '"event": "step"' in line]
    assert {"reward", "kl", "clipfrac", "val_reward"} <= steps[-1].keys()
    ckpt = load_checkpoint(tmp_path / "ppo")
    assert ckpt.kind == "policy" and ckpt.meta["reward_model"] == "rm/step-000002" and ckpt.meta["ppo"]["samples_per_prompt"] == 2
