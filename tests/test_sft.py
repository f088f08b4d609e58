"""`gptkit sft`: the loss covers the assistant's tokens and <|end|>, so the model learns to stop."""

import json
import os
import subprocess
import sys

import torch

from gptkit.checkpoint import load_checkpoint
from gptkit.textgen import generate_text, prompt_ids
from gptkit.engine import SamplingParams

CHATS = [
    {"messages": [{"role": "user", "content": "What is the capital of France?"}, {"role": "assistant", "content": "Paris."}]},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What sound does a cow make?"},
                  {"role": "assistant", "content": "Moo."}]},
    {"prompt": "What is your name?", "completion": "Kit."},
]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gptkit", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=os.environ.copy())


def test_sft_teaches_answers_and_stopping(tiny_checkpoints, tmp_path):
    data = tmp_path / "chats.jsonl"
    data.write_text("\n".join(json.dumps(c) for c in CHATS * 4) + "\n")
    proc = run_cli("sft", "-m", tiny_checkpoints["base"], "--data", data, "--max-steps", 120, "--lr", "3e-3",
                   "--batch-size", 8, "--eval-every", 0, "--out", tmp_path / "sft", "--json")
    assert proc.returncode == 0, proc.stderr
    ckpt = load_checkpoint(tmp_path / "sft")
    assert ckpt.kind == "assistant" and ckpt.meta["parent"] == "base/step-000001"
    torch.manual_seed(0)
    ids = prompt_ids(ckpt.tokenizer, "assistant", "What is the capital of France?")
    (result,) = generate_text(ckpt.model, ckpt.tokenizer, ids, SamplingParams(temperature=0, max_new_tokens=20))
    assert result.text == "Paris." and result.finish_reason == "stop"  # it learned the answer and <|end|>


def test_show_mask_colours_the_trained_tokens(tiny_checkpoints, tmp_path):
    data = tmp_path / "chats.jsonl"
    data.write_text("\n".join(json.dumps(c) for c in CHATS) + "\n")
    proc = run_cli("sft", "-m", tiny_checkpoints["base"], "--data", data, "--show-mask")
    assert proc.returncode == 0, proc.stderr
    assert "trained" in proc.stdout and "Paris." in proc.stdout


def test_malformed_conversation_names_file_line_and_field(tiny_checkpoints, tmp_path):
    data = tmp_path / "chats.jsonl"
    data.write_text(json.dumps(CHATS[0]) + "\n" + json.dumps({"messages": [{"role": "robot", "content": "hi"}]}) + "\n")
    proc = run_cli("sft", "-m", tiny_checkpoints["base"], "--data", data, "--max-steps", 1, "--out", tmp_path / "sft")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "chats.jsonl:2: field 'messages[0].role'" in proc.stderr


def test_add_chat_tokens_grows_a_full_embedding_and_keeps_the_old_tokens(tiny_checkpoints):
    from gptkit.model import GPT, GPTConfig
    from gptkit.tokenizer import Tokenizer
    from gptkit.train.sft import add_chat_tokens

    tok = load_checkpoint(tiny_checkpoints["base"]).tokenizer
    encoding = tok.encoding.__class__(name="plain", pat_str=tok.encoding._pat_str,
                                      mergeable_ranks=tok.encoding._mergeable_ranks,
                                      special_tokens={"<|endoftext|>": 319})
    plain = Tokenizer(encoding, "plain")
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=32, vocab_size=plain.n_vocab, n_layer=1, n_head=2, n_embd=32)).eval()
    assert plain.n_vocab % 64 == 0  # full: no padding row is free for the new tokens
    ids = torch.tensor([plain.encode_document("The cat says meow.")])
    with torch.no_grad():
        before = model(ids)
    chat, grown, message = add_chat_tokens(plain, model)
    n = plain.n_vocab
    assert message == (f"chat tokens: added <|system|> <|user|> <|assistant|> <|end|> as ids {n}-{n + 3}; "
                       f"vocabulary {n} -> {n + 4} tokens, embedding {n} -> {n + 64} rows")
    assert chat.has_chat_tokens and grown.config.vocab_size == n + 64
    wte = grown.transformer.wte.weight
    assert wte.data_ptr() == grown.lm_head.weight.data_ptr()  # still tied
    assert torch.allclose(wte[n:n + 4], wte[:n].mean(dim=0).expand(4, -1)) and torch.all(wte[n + 4:] == 0)
    with torch.no_grad():
        torch.testing.assert_close(grown(ids)[..., :n], before)  # the old tokens' logits are unchanged
