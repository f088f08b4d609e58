"""Text generation from a checkpoint: rendering, batching many prompts, stop strings, streaming.

Streaming and stop strings are checked on a real GPT whose weights script its greedy output
(every block zeroed, each position embedding pointing at the token to emit), so a test can say
exactly which bytes arrive in which order.
"""

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit.checkpoint import Checkpoint, load_checkpoint
from gptkit.engine import SamplingParams
from gptkit.model import GPT, config_for
from gptkit.textgen import generate, prompt_ids

GREEDY = SamplingParams(temperature=0, max_new_tokens=64)


@pytest.fixture(scope="module")
def base(tiny_checkpoints):
    return load_checkpoint(tiny_checkpoints["base"])


@pytest.fixture(scope="module")
def assistant(tiny_checkpoints):
    return load_checkpoint(tiny_checkpoints["assistant"])


def scripted(tokenizer, prompt_len: int, text: bytes) -> Checkpoint:
    """A base checkpoint whose greedy answer to any `prompt_len`-token prompt is `text`, one byte a token."""
    torch.manual_seed(0)
    model = GPT(config_for("tiny", tokenizer.n_vocab)).eval()
    script = [tokenizer.encoding.encode_single_token(bytes([b])) for b in text] + [tokenizer.bos_id]
    with torch.no_grad():
        for block in model.transformer.h:  # every block adds nothing: logits = ln_f(wte[token] + wpe[pos]) @ wte.T
            for linear in (block.attn.c_attn, block.attn.c_proj, block.mlp.c_fc, block.mlp.c_proj):
                linear.weight.zero_()
                linear.bias.zero_()
        wte, wpe = model.transformer.wte.weight, model.transformer.wpe.weight
        for i, token in enumerate(script):
            wpe[prompt_len - 1 + i] = 50 * wte[token]
    return Checkpoint(path=Path("scripted/step-000001"), meta={"kind": "base"}, model=model, tokenizer=tokenizer)


def streamed(ckpt, prompt, stop=(), k=1):
    deltas = []
    (results,) = generate(ckpt, [prompt], GREEDY, k=k, stop=stop, on_text=lambda i, j, d: deltas.append(d))
    return results[0], deltas


def test_a_scripted_model_says_its_script(base):
    ckpt = scripted(base.tokenizer, 3, b"Hello there")
    result, _ = streamed(ckpt, [base.tokenizer.bos_id, 40, 41])
    assert result.text == "Hello there" and result.finish_reason == "stop"


def test_utf8_split_over_tokens_is_streamed_whole(base):
    text = "é日本 ok"
    ckpt = scripted(base.tokenizer, 2, text.encode())
    result, deltas = streamed(ckpt, [base.tokenizer.bos_id, 40])
    assert result.text == text and "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas)
    assert "é" in deltas and "日" in deltas  # each arrives the step its last byte does, not later


def test_stop_strings_are_held_back_until_they_cannot_match(base):
    ckpt = scripted(base.tokenizer, 2, b"Hi STAR then STOP later")
    result, deltas = streamed(ckpt, [base.tokenizer.bos_id, 40], stop=("STOP",))
    assert result.text == "Hi STAR then " and result.finish_reason == "stop"
    assert "".join(deltas) == result.text
    assert deltas[:4] == ["H", "i", " ", "STA"]  # "S", then "ST" waited: they could have begun "STOP"
    assert not any("S" in d for d in deltas[4:])  # the stop string's "S", "ST", "STO" were never shown
    assert len(result.tokens) == len(b"Hi STAR then STOP")  # decoding ended at the stop string


def test_many_prompts_equal_each_prompt_alone(assistant):
    prompts = ["What is 2 + 3?", [{"role": "user", "content": "Hello"}], "Tell me about the moon landing please",
               prompt_ids(assistant.tokenizer, "base", "Q: capital of Japan?\nA:")]
    params = SamplingParams(temperature=1.0, max_new_tokens=10)
    seeds = [5, 6, None, 8]
    texts = {}
    together = generate(assistant, prompts, params, k=3, seeds=seeds, stop=("e",),
                        on_text=lambda i, j, d: texts.__setitem__((i, j), texts.get((i, j), "") + d))
    assert together[2][0].seed is not None and together[0][0].seed == 5
    for i, prompt in enumerate(prompts):
        (alone,) = generate(assistant, [prompt], params, k=3, seeds=[together[i][0].seed], stop=("e",))
        assert [(r.text, r.tokens, r.finish_reason) for r in together[i]] == \
            [(r.text, r.tokens, r.finish_reason) for r in alone]
        assert [texts.get((i, j), "") for j in range(3)] == [r.text for r in together[i]]
        assert all("e" not in r.text for r in together[i])


def test_default_seed_is_params_seed_for_every_prompt(assistant):
    params = SamplingParams(temperature=1.0, max_new_tokens=8, seed=3)
    a, b = generate(assistant, ["hi", "hi"], params, k=2)
    assert [r.text for r in a] == [r.text for r in b] and a[0].seed == 3
    (c,) = generate(assistant, ["hi"], SamplingParams(temperature=1.0, max_new_tokens=8), k=2)
    (again,) = generate(assistant, ["hi"], SamplingParams(temperature=1.0, max_new_tokens=8), k=2, seeds=[c[0].seed])
    assert [r.tokens for r in again] == [r.tokens for r in c]  # a drawn seed is reported, and reproduces


def test_rendering_follows_the_checkpoint_unless_told(base, assistant):
    tok = assistant.tokenizer
    assert generate(assistant, ["hi"], GREEDY)[0][0].prompt_tokens == len(prompt_ids(tok, "assistant", "hi"))
    assert generate(assistant, ["hi"], GREEDY, as_document=True)[0][0].prompt_tokens == len(tok.encode_document("hi"))
    assert generate(base, ["hi"], GREEDY)[0][0].prompt_tokens == len(tok.encode_document("hi"))
    assert generate(base, ["hi"], GREEDY, as_document=False)[0][0].prompt_tokens == len(prompt_ids(tok, "assistant", "hi"))


def test_prompt_truncation_is_reported(base):
    block = base.model.config.block_size
    long = [base.tokenizer.bos_id] + [40] * (block + 10)
    short, cut = generate(base, [[base.tokenizer.bos_id, 40], long], SamplingParams(temperature=0, max_new_tokens=16))
    assert short[0].prompt_truncated == 0
    assert cut[0].prompt_truncated == len(long) - (block - 16) and cut[0].prompt_tokens == len(long)


@given(text=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12),
       stop=st.text(alphabet="abé日 ", min_size=1, max_size=3))
@settings(max_examples=25, deadline=None)
def test_streamed_deltas_add_up_to_the_text(base, text, stop):
    """Whatever bytes arrive and whatever the stop string: the deltas concatenate to the final text."""
    data = text.encode()[:40]
    ckpt = scripted(base.tokenizer, 2, data)
    result, deltas = streamed(ckpt, [base.tokenizer.bos_id, 40], stop=(stop,))
    full = data.decode("utf-8", errors="replace")
    assert "".join(deltas) == result.text == full.split(stop)[0]
    assert result.finish_reason == "stop"  # the stop string, or the script's closing end-of-document


# ---- gptkit generate ---------------------------------------------------------------------------


def cli(*args):
    from click.testing import CliRunner

    from gptkit.cli import cli as gptkit

    result = CliRunner().invoke(gptkit, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def logged():
    from gptkit.store import open_logbook

    with open_logbook() as book:
        return book.recent(kind="generate")


def test_generate_command_samples_and_logs_each_one(tiny_checkpoints, assistant):
    path = tiny_checkpoints["assistant"]
    out = cli("generate", "-m", path, "What is 2 + 3?", "-n", "3", "--seed", "4", "--max-tokens", "6", "--device", "cpu")
    assert [line.startswith("--- sample") for line in out.splitlines()].count(True) == 3
    rows = logged()
    assert len(rows) == 3 and {r["seed"] for r in rows} == {4} and {r["checkpoint"] for r in rows} == {assistant.name}
    assert rows[0]["settings"]["temperature"] == 0.8 and rows[0]["settings"]["max_new_tokens"] == 6
    assert sorted(r["extra"]["sample"] for r in rows) == [0, 1, 2]
    assert "<|user|>What is 2 + 3?" in rows[0]["rendered_prompt"]
    (want,) = generate(assistant, ["What is 2 + 3?"], SamplingParams(temperature=0.8, max_new_tokens=6, seed=4), k=3)
    assert sorted(r["output"] for r in rows) == sorted(r.text for r in want)
    listed = cli("log", "--kind", "generate", "--json")
    assert len(listed.splitlines()) == 3


def test_generate_command_json_reports_a_drawn_seed_that_reproduces(tiny_checkpoints, base):
    path = tiny_checkpoints["base"]
    out = cli("generate", "-m", path, "Once upon", "-n", "2", "--max-tokens", "5", "--json", "--no-log", "--device", "cpu")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["sample"] for line in lines] == [0, 1] and lines[0]["seed"] == lines[1]["seed"] is not None
    assert lines[0]["prompt_truncated"] == 0 and lines[0]["settings"]["seed"] == lines[0]["seed"]
    (again,) = generate(base, ["Once upon"], SamplingParams(temperature=0.8, max_new_tokens=5, seed=lines[0]["seed"]), k=2)
    assert [line["text"] for line in lines] == [r.text for r in again]
    assert logged() == []  # --no-log
