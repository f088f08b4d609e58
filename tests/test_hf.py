"""HF GPT-2 interop: import/export against real transformers models, pickles refused, GPT-2 BPE files."""

import json
import os
import pickle
import subprocess
import sys

import pytest
import tiktoken
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

transformers = pytest.importorskip("transformers")
from tokenizers import ByteLevelBPETokenizer  # noqa: E402

from gptkit.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from gptkit.files import FILE_MODE  # noqa: E402
from gptkit.cli import cli  # noqa: E402
from gptkit.errors import CheckpointError, TokenizerError  # noqa: E402
from gptkit.hf import export_hf, import_hf  # noqa: E402
from gptkit.hf_tokenizer import GPT2_SPLIT_PATTERN, tokenizer_from_gpt2_files, tokenizer_from_tokenizer_json  # noqa: E402,E501
from gptkit.model import GPT, GPTConfig, pad_vocab  # noqa: E402
from gptkit.tokenizer import SPECIAL_TOKENS, Tokenizer  # noqa: E402

CORPUS = [
    "The moon landing happened in 1969. Astronauts walked on the moon and came back home.",
    "A base model continues the document; an assistant answers the question it was asked.",
    "Tom has 3 sisters and 2 brothers. How many siblings does Tom have? He has 5 siblings.",
    "Ünïcödé text, emoji 🚀, and   runs of   spaces\nand\n\nnewlines\ttabs.",
] * 20
SAMPLES = [
    "The moon landing happened in 1969.",
    "Explain the moon landing to a 6 year old in a few sentences.",
    "unseen words: zyxwvut, quokka, 12345+678=13023 ",
    "  leading spaces, trailing spaces   \n\n\tand ünïcödé 🚀🚀 ",
    "it's we'll they've I'm you'd THEY'RE",
]


def hf_forward(model, ids):
    with torch.no_grad():
        return model(ids).logits


def gpt_forward(model, ids):
    with torch.no_grad():
        return model(ids)


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory):
    """vocab.json + merges.txt of a byte-level BPE trained by HF `tokenizers`, as GPT-2 ships them."""
    folder = tmp_path_factory.mktemp("bpe")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    bpe.save_model(str(folder))
    return folder


@pytest.fixture(scope="module")
def hf_model_dir(bpe_dir, tmp_path_factory):
    """A randomly initialised transformers GPT-2 saved with its tokenizer files."""
    folder = tmp_path_factory.mktemp("hf")
    vocab = json.loads((bpe_dir / "vocab.json").read_text(encoding="utf-8"))
    eot = vocab["<|endoftext|>"]
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=64, n_positions=128, vocab_size=len(vocab),
                                     bos_token_id=eot, eos_token_id=eot)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # biases and LayerNorms start at 0/1; randomise them so their mapping is checked
        for name, p in model.named_parameters():
            if name.endswith("bias") or "ln_" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(folder)
    for name in ("vocab.json", "merges.txt"):
        (folder / name).write_bytes((bpe_dir / name).read_bytes())
    assert (folder / "model.safetensors").is_file()
    return folder


def copy_folder(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def byte_tokenizer() -> Tokenizer:
    ranks = {bytes([b]): b for b in range(256)}
    special = {t: 256 + i for i, t in enumerate(SPECIAL_TOKENS)}
    encoding = tiktoken.Encoding(name="bytes", pat_str=GPT2_SPLIT_PATTERN, mergeable_ranks=ranks, special_tokens=special)
    return Tokenizer(encoding, "bytes")


def saved_gpt(tmp_path, *, bias=True, seed=0):
    """A randomly initialised gptkit checkpoint (random biases/norms too) with a byte tokenizer."""
    tokenizer = byte_tokenizer()
    torch.manual_seed(seed)
    model = GPT(GPTConfig(block_size=64, vocab_size=pad_vocab(tokenizer.n_vocab), n_layer=2, n_head=2, n_embd=64,
                          bias=bias)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
    step = save_checkpoint(tmp_path / "runs" / "tiny", model=model, tokenizer=tokenizer, meta={"kind": "base", "step": 3})
    return step, model, tokenizer


# ---------------------------------------------------------------------------------------------
# import


def test_import_matches_transformers_logits(hf_model_dir, tmp_path):
    step = import_hf(hf_model_dir, tmp_path / "imported")
    ckpt = load_checkpoint(step)
    hf = transformers.GPT2LMHeadModel.from_pretrained(hf_model_dir).eval()
    n = hf.config.vocab_size
    ids = torch.randint(0, n, (3, 40), generator=torch.Generator().manual_seed(1))
    ours = gpt_forward(ckpt.model, ids)
    torch.testing.assert_close(ours[..., :n], hf_forward(hf, ids), atol=1e-4, rtol=1e-4)
    assert ckpt.model.config.vocab_size % 64 == 0 and ckpt.model.config.block_size == 128
    assert torch.all(ours[..., n:] == 0)  # padding rows are zero
    assert ckpt.meta["kind"] == "base" and ckpt.meta["step"] == 0
    assert ckpt.meta["parent"] == f"hf:{hf_model_dir.resolve()}"


def test_import_reads_unprefixed_files_with_mask_buffers(hf_model_dir, tmp_path):
    """openai-community/gpt2's file: GPT2Model keys (no "transformer.") plus attn.bias/masked_bias buffers."""
    folder = copy_folder(hf_model_dir, tmp_path / "old")
    tensors = load_file(folder / "model.safetensors")
    old = {k.removeprefix("transformer."): v for k, v in tensors.items()}
    for i in range(2):
        old[f"h.{i}.attn.bias"] = torch.tril(torch.ones(128, 128)).view(1, 1, 128, 128)
        old[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(old, folder / "model.safetensors", metadata={"format": "pt"})
    ours = load_checkpoint(import_hf(folder, tmp_path / "a")).model
    reference = load_checkpoint(import_hf(hf_model_dir, tmp_path / "b")).model
    for (name, a), (_, b) in zip(ours.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), name


def test_import_uses_tokenizer_ids_of_vocab_json_and_adds_no_chat_tokens(hf_model_dir, tmp_path):
    ckpt = load_checkpoint(import_hf(hf_model_dir, tmp_path / "run"))
    vocab = json.loads((hf_model_dir / "vocab.json").read_text(encoding="utf-8"))
    assert ckpt.tokenizer.bos_id == vocab["<|endoftext|>"]  # keeps its id rather than being appended
    assert not ckpt.tokenizer.has_chat_tokens and ckpt.tokenizer.stop_ids == (ckpt.tokenizer.bos_id,)
    assert ckpt.tokenizer.n_vocab == len(vocab) == ckpt.meta["n_vocab"]


def test_import_with_explicit_tokenizer(hf_model_dir, tmp_path):
    folder = copy_folder(hf_model_dir, tmp_path / "no_tok")
    (folder / "vocab.json").unlink()
    with pytest.raises(CheckpointError, match="--tokenizer"):
        import_hf(folder, tmp_path / "a")
    byte_tokenizer().save(tmp_path / "tok")
    ckpt = load_checkpoint(import_hf(folder, tmp_path / "b", tokenizer_spec=str(tmp_path / "tok")))
    assert ckpt.tokenizer.name == "bytes" and ckpt.tokenizer.n_vocab == 261
    hf_vocab = json.loads((folder / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    assert ckpt.model.config.vocab_size == pad_vocab(max(hf_vocab, 261))


def test_pickle_weights_refused_and_never_executed(hf_model_dir, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    payload = pickle.dumps({"transformer.wte.weight": Payload()})
    folder = copy_folder(hf_model_dir, tmp_path / "pickled")
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(payload)
    with pytest.raises(CheckpointError, match="pytorch_model.bin.*never loads pickles"):
        import_hf(folder, tmp_path / "a")
    (folder / "model.safetensors").write_bytes(payload)  # a pickle under the safetensors name
    with pytest.raises(CheckpointError, match="pickle"):
        import_hf(folder, tmp_path / "b")
    assert not marker.exists()
    pickle.loads(payload)  # the payload is live: loading it would have written the marker
    assert marker.exists()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("activation_function", "relu", "activation_function.*gelu_new"),
        ("layer_norm_epsilon", 1e-6, "layer_norm_epsilon"),
        ("n_inner", 100, "n_inner"),
        ("scale_attn_by_inverse_layer_idx", True, "scale_attn_by_inverse_layer_idx"),
        ("model_type", "llama", "model_type"),
        ("n_head", 3, "n_head"),
        ("n_embd", "64", "n_embd"),
    ],
)
def test_unsupported_configs_refused(hf_model_dir, tmp_path, field, value, message):
    folder = copy_folder(hf_model_dir, tmp_path / "bad")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(CheckpointError, match=message):
        import_hf(folder, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_weights_that_disagree_with_config_refused(hf_model_dir, tmp_path):
    folder = copy_folder(hf_model_dir, tmp_path / "bad")
    tensors = load_file(folder / "model.safetensors")
    del tensors["transformer.h.1.mlp.c_fc.bias"]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="missing.*h.1.mlp.c_fc.bias"):
        import_hf(folder, tmp_path / "a")
    config = json.loads((hf_model_dir / "config.json").read_text(encoding="utf-8"))
    (folder / "model.safetensors").write_bytes((hf_model_dir / "model.safetensors").read_bytes())
    (folder / "config.json").write_text(json.dumps({**config, "n_embd": 32}), encoding="utf-8")
    with pytest.raises(CheckpointError, match="shape"):
        import_hf(folder, tmp_path / "b")


def test_import_refuses_to_overwrite_a_run(hf_model_dir, tmp_path):
    import_hf(hf_model_dir, tmp_path / "run")
    with pytest.raises(CheckpointError, match="already holds a run"):
        import_hf(hf_model_dir, tmp_path / "run")


# ---------------------------------------------------------------------------------------------
# export


def test_export_loads_in_transformers_with_same_logits(tmp_path):
    step, model, tokenizer = saved_gpt(tmp_path)
    out = export_hf(step, tmp_path / "hf")
    hf, info = transformers.GPT2LMHeadModel.from_pretrained(out, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    hf.eval()
    assert hf.config.vocab_size == tokenizer.n_vocab and hf.config.n_positions == 64
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()  # tied, as saved
    ids = torch.randint(0, tokenizer.n_vocab, (2, 64), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(hf_forward(hf, ids), gpt_forward(model, ids)[..., : tokenizer.n_vocab],
                               atol=1e-4, rtol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "runs"]  # no temporary folder left


def test_export_then_import_keeps_weights_and_tokenizer(tmp_path):
    step, model, tokenizer = saved_gpt(tmp_path, seed=5)
    back = load_checkpoint(import_hf(export_hf(step, tmp_path / "hf"), tmp_path / "back"))
    n = tokenizer.n_vocab
    original, restored = model.state_dict(), back.model.state_dict()
    assert original.keys() == restored.keys()
    for name in original:
        if name in ("transformer.wte.weight", "lm_head.weight"):
            assert torch.equal(restored[name][:n], original[name][:n])
            assert torch.all(restored[name][n:] == 0)  # export trims the padding rows; import pads with zeros
        else:
            assert torch.equal(restored[name], original[name]), name
    assert back.tokenizer.encoding._mergeable_ranks == tokenizer.encoding._mergeable_ranks
    assert back.tokenizer.encoding._special_tokens == tokenizer.encoding._special_tokens
    assert back.tokenizer.encoding._pat_str == tokenizer.encoding._pat_str


def test_export_refuses_bias_free_models(tmp_path):
    step, _, _ = saved_gpt(tmp_path, bias=False)
    with pytest.raises(CheckpointError, match="bias=False"):
        export_hf(step, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def test_export_refuses_a_non_empty_folder(tmp_path):
    step, _, _ = saved_gpt(tmp_path)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(CheckpointError, match="not an empty folder"):
        export_hf(step, tmp_path / "hf")
    assert [p.name for p in (tmp_path / "hf").iterdir()] == ["notes.txt"]


def test_export_writes_a_complete_folder_of_ordinary_files(tmp_path):
    step, _, tokenizer = saved_gpt(tmp_path)
    out = export_hf(step, tmp_path / "hf")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "generation_config.json", "model.safetensors",
                                                      "tokenizer.json", "tokenizer_config.json"]
    assert {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()} == dict.fromkeys(
        (p.name for p in out.iterdir()), FILE_MODE)  # safetensors alone would leave its file 0600
    generation = json.loads((out / "generation_config.json").read_text(encoding="utf-8"))
    assert generation["eos_token_id"] == [tokenizer.end_id, tokenizer.bos_id]


# ---------------------------------------------------------------------------------------------
# round trips and the command line


def test_import_reads_a_folder_with_tokenizer_json_only(hf_model_dir, bpe_pair, tmp_path):
    folder = copy_folder(hf_model_dir, tmp_path / "fast_only")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe_pair[0]._tokenizer)
    fast.save_pretrained(folder)
    (folder / "vocab.json").unlink()
    (folder / "merges.txt").unlink()
    assert (folder / "tokenizer.json").is_file()
    from_json = load_checkpoint(import_hf(folder, tmp_path / "a")).tokenizer
    from_pair = load_checkpoint(import_hf(hf_model_dir, tmp_path / "b")).tokenizer
    assert from_json.encoding._mergeable_ranks == from_pair.encoding._mergeable_ranks
    assert from_json.encoding._special_tokens == from_pair.encoding._special_tokens == {"<|endoftext|>": 0}
    assert from_json.encoding._pat_str == from_pair.encoding._pat_str and not from_json.prefix_space
    for text in SAMPLES:
        assert from_json.encode(text) == bpe_pair[0].encode(text).ids


@pytest.mark.parametrize("edit, message", [
    (lambda spec: spec.update(pre_tokenizer={"type": "Metaspace", "replacement": "_"}), "field 'pre_tokenizer'"),
    (lambda spec: spec.update(normalizer={"type": "NFKC"}), "field 'normalizer'"),
    (lambda spec: spec["model"].update(merges=[["a"]]), r"field 'model.merges\[0\]': expected two byte-level"),
    (lambda spec: spec["model"].update(type="WordPiece"), "byte-level BPE tokenizers only"),
])
def test_tokenizer_json_gptkit_cannot_reproduce_is_refused(bpe_pair, tmp_path, edit, message):
    spec = json.loads(bpe_pair[0]._tokenizer.to_str())
    edit(spec)
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(TokenizerError, match=message):
        tokenizer_from_tokenizer_json(tmp_path / "tokenizer.json", name="x")


def test_hf_to_gptkit_to_hf_keeps_vocabulary_weights_and_tokenizer(hf_model_dir, bpe_pair, tmp_path):
    step = import_hf(hf_model_dir, tmp_path / "run")
    out = export_hf(step, tmp_path / "back")
    vocab_size = [json.loads((d / "config.json").read_text(encoding="utf-8"))["vocab_size"] for d in (hf_model_dir, out)]
    assert vocab_size[0] == vocab_size[1] == len(bpe_pair[0].get_vocab())
    original, returned = load_file(hf_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert original.keys() == returned.keys()
    for name, tensor in original.items():
        assert torch.equal(returned[name], tensor), name
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    assert tokenizer.get_vocab() == bpe_pair[0].get_vocab()
    for text in SAMPLES:
        assert tokenizer.encode(text, add_special_tokens=False) == bpe_pair[0].encode(text).ids


def test_sft_gives_an_imported_model_the_chat_tokens_and_says_so(hf_model_dir, tmp_path):
    step = import_hf(hf_model_dir, tmp_path / "imported")
    data = tmp_path / "chats.jsonl"
    data.write_text(json.dumps({"prompt": "What is the moon?", "completion": "A rock."}) + "\n", encoding="utf-8")
    n = json.loads((hf_model_dir / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    proc = subprocess.run([sys.executable, "-m", "gptkit", "sft", "-m", str(step), "--data", str(data), "--max-steps",
                           "1", "--batch-size", "1", "--json", "--out", str(tmp_path / "assistant")],
                          capture_output=True, text=True, timeout=300, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    messages = [e["text"] for e in map(json.loads, proc.stdout.splitlines()) if e.get("event") == "message"]
    assert (f"chat tokens: added <|system|> <|user|> <|assistant|> <|end|> as ids {n}-{n + 3}; vocabulary {n} -> "
            f"{n + 4} tokens, embedding {pad_vocab(n)} -> {pad_vocab(n)} rows") in messages
    assistant = load_checkpoint(tmp_path / "assistant")
    assert assistant.tokenizer.has_chat_tokens and assistant.tokenizer.n_vocab == n + 4
    assert not load_checkpoint(step).tokenizer.has_chat_tokens  # the base model is left as imported


@pytest.mark.parametrize("make_args, message", [
    (lambda step, tmp: ["export", step, tmp / "file.txt"], "already exists and is not an empty folder"),
    (lambda step, tmp: ["export", step, tmp / "out", "--format", "onnx"], "--format: expected hf or gguf, got 'onnx'"),
    (lambda step, tmp: ["export", tmp / "file.txt", tmp / "out"], "expected a checkpoint folder"),
    (lambda step, tmp: ["export", "no-such-run", tmp / "out"], "checkpoint 'no-such-run' not found"),
    (lambda step, tmp: ["export", step, tmp / "out", "--dtype", "f16"], "--dtype: applies to GGUF files"),
    (lambda step, tmp: ["import", tmp / "file.txt"], "expected a Hugging Face model folder"),
])
def test_export_and_import_refuse_bad_input_in_one_line(tmp_path, make_args, message):
    step, _, _ = saved_gpt(tmp_path)
    (tmp_path / "file.txt").write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(cli, [str(a) for a in make_args(step, tmp_path)])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)  # a clean exit, no traceback
    assert result.output.startswith("error: ") and result.output.count("\n") == 1 and message in result.output
    assert not (tmp_path / "out").exists() and (tmp_path / "file.txt").read_text(encoding="utf-8") == "mine"


# ---------------------------------------------------------------------------------------------
# GPT-2 vocab.json + merges.txt -> tiktoken


@pytest.fixture(scope="module")
def bpe_pair(bpe_dir):
    hf = ByteLevelBPETokenizer.from_file(str(bpe_dir / "vocab.json"), str(bpe_dir / "merges.txt"))
    ours = tokenizer_from_gpt2_files(bpe_dir / "vocab.json", bpe_dir / "merges.txt", name="bpe")
    return hf, ours


@pytest.mark.parametrize("text", SAMPLES)
def test_gpt2_files_encode_like_hf_tokenizers(bpe_pair, text):
    hf, ours = bpe_pair
    ids = ours.encode(text)
    assert ids == hf.encode(text).ids
    assert len(ids) < len(text.encode())  # the merges are really used, not just bytes
    assert ours.decode(ids) == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.one_of(st.sampled_from(sorted(set("".join(CORPUS)))), st.characters(blacklist_categories=("Cs",))),
               max_size=80))
def test_gpt2_files_encode_like_hf_tokenizers_on_any_text(bpe_pair, text):
    hf, ours = bpe_pair
    assert ours.encode(text) == hf.encode(text).ids


def test_gpt2_files_with_merges_out_of_id_order_refused(bpe_dir, tmp_path):
    vocab = json.loads((bpe_dir / "vocab.json").read_text(encoding="utf-8"))
    lines = (bpe_dir / "merges.txt").read_text(encoding="utf-8").splitlines()
    body = [line for line in lines if line and not line.startswith("#")]
    a, b = ("".join(body[0].split()), "".join(body[1].split()))
    vocab[a], vocab[b] = vocab[b], vocab[a]
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    with pytest.raises(TokenizerError, match="merge order"):
        tokenizer_from_gpt2_files(tmp_path / "vocab.json", bpe_dir / "merges.txt", name="x")
