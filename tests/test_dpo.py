"""DPO: starts at log 2 (policy == reference), widens the chosen-rejected margin, never moves the
reference, writes a `policy` checkpoint with its parent, and resumes bit for bit."""

import json
import math
import random

import pytest
import torch
from safetensors.torch import load_file

from gptkit.checkpoint import load_checkpoint, resolve_checkpoint
from gptkit.data.preferences import encode_pairs, pair_batch
from gptkit.device import pick_device
from gptkit.train.dpo import DPOObjective, dpo_loss, sequence_logprobs
from gptkit.train.loop import TrainConfig, train
from test_reward import answer, metrics


def marked_pairs(n: int, seed: int = 0) -> list[tuple]:
    rng = random.Random(seed)
    return [(f"Question number {i}?", answer(rng, True), answer(rng, False)) for i in range(n)]


@torch.no_grad()
def logprob_margin(model, encoded, pad_id) -> float:
    """Mean over pairs of log p(chosen) - log p(rejected) (answer tokens only)."""
    batch = pair_batch(encoded, pad_id)
    chosen, rejected = sequence_logprobs(model, batch["x"], batch["y"], batch["mask"]).chunk(2)
    return float((chosen - rejected).mean())


def test_dpo_loss_formula():
    policy = torch.tensor([-3.0, -9.0, -5.0, -4.0])  # chosen rows, then rejected
    reference = torch.tensor([-4.0, -8.0, -5.0, -5.0])
    loss, m = dpo_loss(policy, reference, beta=0.5)
    logits = torch.tensor([0.5 * ((-3 + 4) - (-5 + 5)), 0.5 * ((-9 + 8) - (-4 + 5))])
    assert loss.item() == pytest.approx(-torch.nn.functional.logsigmoid(logits).mean().item())
    assert m["reward_acc"].item() == 0.5 and m["kl"].item() == pytest.approx(0.0)
    assert m["margin"].item() == pytest.approx(logits.mean().item())


def test_sft_weight_adds_the_chosen_answers_per_token_nll(tiny_checkpoints):
    policy = load_checkpoint(tiny_checkpoints["assistant"])
    tok = policy.tokenizer
    encoded = encode_pairs(tok, marked_pairs(4), 256)
    batch = pair_batch(encoded, tok.bos_id)
    plain = DPOObjective(encoded, encoded, tok, policy.model, beta=0.1, batch_size=4, device="cpu")
    rpo = DPOObjective(encoded, encoded, tok, policy.model, beta=0.1, batch_size=4, device="cpu", sft_weight=2.0)
    with torch.no_grad():
        loss, m = plain.loss(policy.model, batch)
        loss_rpo, m_rpo = rpo.loss(policy.model, batch)
        chosen_x, chosen_y = batch["x"][:4], batch["y"][:4]
        expected_nll = torch.nn.functional.cross_entropy(policy.model(chosen_x).flatten(0, 1), chosen_y.flatten(),
                                                         reduction="none").view(4, -1)
        expected_nll = ((expected_nll * batch["mask"][:4]).sum(1) / batch["mask"][:4].sum(1)).mean()
    assert "nll" not in m and loss.item() == pytest.approx(math.log(2))
    assert m_rpo["nll"].item() == pytest.approx(expected_nll.item(), rel=1e-5)
    assert loss_rpo.item() == pytest.approx(math.log(2) + 2.0 * expected_nll.item(), rel=1e-5)


def test_dpo_widens_the_margin_and_leaves_the_reference_alone(tiny_checkpoints, tmp_path):
    policy = load_checkpoint(tiny_checkpoints["assistant"])
    reference = load_checkpoint(tiny_checkpoints["assistant"]).model.requires_grad_(False)
    frozen = {k: v.clone() for k, v in reference.state_dict().items()}
    tok = policy.tokenizer
    train_pairs = encode_pairs(tok, marked_pairs(40), 256)
    held_out = encode_pairs(tok, marked_pairs(10, seed=1), 256)
    before = logprob_margin(policy.model, held_out, tok.bos_id)
    objective = DPOObjective(train_pairs, held_out, tok, reference, beta=0.1, batch_size=8, device="cpu")
    cfg = TrainConfig(max_steps=30, batch_size=8, lr=3e-3, warmup_steps=3, eval_every=15, eval_batches=2,
                      save_every=1000, log_every=1)
    train(policy.model, tok, objective, cfg, run_dir=tmp_path / "dpo", meta={"parent": policy.name}, dc=pick_device("cpu"))
    rows = metrics(tmp_path / "dpo")
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # policy == reference
    assert rows[0]["kl"] == 0 and rows[0]["margin"] == 0
    assert rows[-1]["reward_acc"] > 0.9 and rows[-1]["margin"] > 0
    after = logprob_margin(policy.model, held_out, tok.bos_id)
    assert after > before + 5, (before, after)
    assert all(torch.equal(v, frozen[k]) for k, v in reference.state_dict().items())
    assert not any(p.requires_grad for p in reference.parameters())


def rlhf(*args) -> str:
    """Run `gptkit rlhf ...` in-process through the real CLI; returns its output."""
    from click.testing import CliRunner

    from gptkit.cli import cli

    result = CliRunner().invoke(cli, ["rlhf", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


def dpo_args(sft, data, out, *extra):
    return ["-m", sft, "--data", data, "--batch-size", 4, "--out", out, "--eval-every", 3, "--json", "--lr", 3e-3, *extra]


def test_dpo_through_the_cli_resumes_bitwise_and_records_its_parent(tiny_checkpoints, tmp_path):
    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n" for p, c, r in marked_pairs(30)))
    sft = tiny_checkpoints["assistant"]
    rlhf(*dpo_args(sft, data, tmp_path / "straight", "--max-steps", 6))
    rlhf(*dpo_args(sft, data, tmp_path / "halves", "--max-steps", 6, "--stop-after", 3))
    output = rlhf(*dpo_args(sft, data, tmp_path / "halves", "--max-steps", 6, "--resume", "--beta", 0.3))
    assert "resuming with the run's own beta 0.1 and sft_weight 0.0" in output
    a = load_file(str(resolve_checkpoint(tmp_path / "straight") / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "halves") / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["transformer.h.0.attn.c_attn.weight"],
                           load_file(str(sft / "model.safetensors"))["transformer.h.0.attn.c_attn.weight"])
    ckpt = load_checkpoint(tmp_path / "halves")
    assert ckpt.kind == "policy" and ckpt.meta["step"] == 6 and ckpt.meta["method"] == "dpo"
    assert ckpt.meta["parent"] == "assistant/step-000001" and ckpt.meta["parent_path"] == str(sft.resolve())
    steps = [json.loads(line) for line in output.splitlines() if '"event": "step"' in line]
    assert {"margin", "reward_acc", "kl", "val_reward_acc"} <= steps[-1].keys()


# ---- guardrails for a few rankings -----------------------------------------------------------------


def test_rlhf_on_a_few_rankings_of_one_prompt_warns_and_skips_validation(tiny_checkpoints, tmp_path):
    from gptkit.store import open_logbook

    with open_logbook() as logbook:  # one prompt, four answers, a tie: five pairs
        logbook.log_ranking("In which town do Gemis's parents live?",
                            [{"text": t, "checkpoint": "assistant/step-000001"} for t in
                             ("The answer is Ashdale.", "Ashdale.", "Elmstead.", "Gemis is a dog.")],
                            [1, 2, 2, 3], rater="ann")
    output = rlhf("-m", tiny_checkpoints["assistant"], "--data", "logbook", "--max-steps", 4, "--batch-size", 2,
                  "--out", tmp_path / "policy")
    flat = " ".join(output.split())
    assert ("warning: none of the 5 pairs can be held out (they answer one prompt): validation is skipped "
            "(no val figures)") in flat
    assert "5 pairs (5 train / 0 held-out)" in flat and "warning: 5 training pairs are very few" in flat
    assert "kl: how far the policy has moved from the reference" in flat
    assert ("before and after, greedy, on a prompt from your data: \"In which town do Gemis's parents live?\" "
            "before (assistant/step-000001): ") in flat and "after (policy/step-000004): " in flat
    rows = metrics(tmp_path / "policy")
    assert len(rows) == 4 and not any(key.startswith("val_") for row in rows for key in row)


def test_kl_is_explained_once_and_a_value_far_below_zero_flagged():
    from gptkit.train.dpo import DPO_KL_FLOOR, KLWatch
    from gptkit.train.loop import Reporter

    said = []

    class Inner(Reporter):
        def message(self, text):
            said.append(text)

    watch = KLWatch(Inner(), "kl: what it means", DPO_KL_FLOOR, "what to do")
    watch.start(10, 0, {})
    for step, kl in enumerate([0.0, -0.5, -3.0, -155.76, -200.0], start=1):
        watch.update({"step": step, "loss": 0.1, "kl": kl})
    assert said == ["kl: what it means", "warning: kl -155.8 at step 4: what to do"]
