"""Hugging Face GPT-2 interop: import a local transformers GPT-2 folder, export one.

Contract:
- `import_hf` reads config.json + model.safetensors (or a sharded safetensors index) from a local
  folder and writes a gptkit "base" checkpoint at step 0. Pickle files (pytorch_model.bin, *.pt,
  ...) are refused by name and by content, never opened with torch.load.
  Its tokenizer is tokenizer.json, else vocab.json + merges.txt (`hf_tokenizer`); chat tokens
  are not added here (`gptkit sft` adds them), so HF -> gptkit -> HF keeps the vocabulary.
- `export_hf` writes a folder transformers uses on its own: config.json + model.safetensors
  (`GPT2LMHeadModel` with identical logits), tokenizer.json + tokenizer_config.json (encoding and
  chat template as gptkit's) and generation_config.json (stop ids); import reads it back exactly.
- `hf_state_dict` / `gpt2_config` are the one mapping gptkit -> HF; benches use them too.

The two layouts differ only in three ways: HF's Conv1D stores (in, out) where nn.Linear stores
(out, in); HF's vocabulary is the tokenizer's real size where ours is padded to a multiple of 64;
old HF files carry the causal-mask buffers attn.bias / attn.masked_bias, which are not weights.

It knows nothing about training or generation; transformers itself is never imported here.
"""

import json
import os
import shutil
from pathlib import Path

from gptkit.checkpoint import MAX_JSON_BYTES
from gptkit.errors import CheckpointError
from gptkit.files import read_json

CONV1D_WEIGHTS = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")  # causal-mask buffers in files saved by transformers < 4.3x
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")  # both are GELU's tanh approximation, as nn.GELU("tanh")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
OLD_TOKENIZER_DIR = "gptkit-tokenizer"  # where exports before tokenizer.json kept gptkit's own files


# ---------------------------------------------------------------------------------------------
# Import


def import_hf(hf_dir: Path, run_dir: Path, *, tokenizer_spec: str | None = None) -> Path:
    """Convert a local HF GPT-2 folder into a gptkit base checkpoint; returns its step folder."""
    import torch

    from gptkit.checkpoint import save_checkpoint
    from gptkit.model import GPT, pad_vocab

    hf_dir, run_dir = Path(hf_dir).expanduser(), Path(run_dir)
    if not hf_dir.is_dir():
        raise CheckpointError(f"{hf_dir}: expected a Hugging Face model folder (config.json + model.safetensors)")
    if run_dir.is_dir() and any(run_dir.glob("step-*")):
        raise CheckpointError(f"{run_dir} already holds a run; choose another output name")
    hf_config = read_hf_config(hf_dir / "config.json")
    tensors = read_hf_tensors(hf_dir)  # before the tokenizer: a pickle folder is refused first
    tokenizer = import_tokenizer(hf_dir, tokenizer_spec)
    config = gpt_config_from_hf(hf_config, pad_vocab(max(hf_config["vocab_size"], tokenizer.n_vocab)))
    with torch.device("meta"):  # shapes only: a config far larger than its file fails here, having allocated nothing
        skeleton = GPT(config)
    state = gpt_state_from_hf(tensors, hf_config, skeleton.state_dict(), hf_dir)
    model = GPT(config)
    model.load_state_dict(state)
    meta = {"kind": "base", "step": 0, "tokens_seen": 0, "parent": f"hf:{hf_dir.resolve()}"}
    return save_checkpoint(run_dir, model=model, tokenizer=tokenizer, meta=meta)


def read_hf_config(path: Path) -> dict:
    """config.json of a GPT-2 the gptkit architecture reproduces exactly, else CheckpointError."""
    if not path.exists():
        raise CheckpointError(f"{path}: file missing (a Hugging Face model folder has config.json)")
    cfg = read_json(path, max_bytes=MAX_JSON_BYTES)  # a DataError names the file
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    if cfg.get("model_type", "gpt2") != "gpt2":
        raise CheckpointError(f"{path}: field 'model_type': expected 'gpt2', got {cfg['model_type']!r}")
    for key in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
        if type(cfg.get(key)) is not int or cfg[key] <= 0:
            raise CheckpointError(f"{path}: field '{key}': expected a positive integer, got {cfg.get(key)!r}")
    if cfg["n_embd"] % cfg["n_head"]:
        raise CheckpointError(f"{path}: field 'n_head': {cfg['n_head']} does not divide n_embd {cfg['n_embd']}")
    expected = {
        "activation_function": (cfg.get("activation_function", "gelu_new") in TANH_GELUS, "gelu_new"),
        "layer_norm_epsilon": (_is_close(cfg.get("layer_norm_epsilon", 1e-5), 1e-5), "1e-05"),
        "n_inner": (cfg.get("n_inner") in (None, 4 * cfg["n_embd"]), f"null or {4 * cfg['n_embd']}"),
        "scale_attn_weights": (cfg.get("scale_attn_weights", True) is True, "true"),
        "scale_attn_by_inverse_layer_idx": (cfg.get("scale_attn_by_inverse_layer_idx", False) is False, "false"),
        "add_cross_attention": (cfg.get("add_cross_attention", False) is False, "false"),
    }
    for key, (ok, want) in expected.items():
        if not ok:
            raise CheckpointError(f"{path}: field '{key}': gptkit's GPT-2 needs {want}, got {cfg[key]!r}")
    return cfg


def _is_close(value, target: float) -> bool:
    return type(value) in (int, float) and abs(value - target) <= 1e-12


def gpt_config_from_hf(hf_config: dict, vocab_size: int):
    from gptkit.model import GPTConfig

    # dropout 0: an imported model is fine-tuned or sampled, not pretrained again (nanoGPT's choice)
    return GPTConfig(block_size=hf_config["n_positions"], vocab_size=vocab_size, n_layer=hf_config["n_layer"],
                     n_head=hf_config["n_head"], n_embd=hf_config["n_embd"], dropout=0.0, bias=True)


def read_hf_tensors(hf_dir: Path) -> dict:
    """All tensors of model.safetensors (or of the shards its index names); pickles are refused."""
    from gptkit.checkpoint import read_tensors

    single, index = hf_dir / "model.safetensors", hf_dir / "model.safetensors.index.json"
    if single.is_file():
        return read_tensors(single)
    if index.is_file():
        try:
            shards = sorted(set(read_json(index, max_bytes=MAX_JSON_BYTES)["weight_map"].values()))
        except (KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{index}: unreadable safetensors index ({e})") from None
        tensors = {}
        for shard in shards:
            if Path(shard).name != shard:
                raise CheckpointError(f"{index}: field 'weight_map': shard {shard!r} is not a file in {hf_dir}")
            tensors.update(read_tensors(hf_dir / shard))
        return tensors
    pickles = sorted(p.name for p in hf_dir.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(
            f"{hf_dir}: holds only {', '.join(pickles)} (pickle/torch.save format, which can run code when "
            f"loaded; gptkit never loads pickles): convert it to model.safetensors in a trusted environment")
    raise CheckpointError(f"{hf_dir}: no model.safetensors")


def gpt_state_from_hf(tensors: dict, hf_config: dict, expected: dict, hf_dir: Path) -> dict:
    """HF GPT-2 tensors -> a state dict for gptkit's GPT whose state_dict() is `expected`."""
    import torch

    source = hf_dir / "model.safetensors"
    state = {}
    lm_head = None
    for key, value in tensors.items():
        name = key.removeprefix("transformer.")  # GPT2Model files lack the prefix, GPT2LMHeadModel's have it
        if name.endswith(MASK_BUFFERS):
            continue
        if name == "lm_head.weight":
            lm_head = value
            continue
        if name.endswith(CONV1D_WEIGHTS):
            value = value.t()
        state["transformer." + name] = value.to(torch.float32).contiguous()
    wanted = {k for k in expected if k != "lm_head.weight"}
    missing, unexpected = sorted(wanted - set(state)), sorted(set(state) - wanted)
    if missing or unexpected:
        raise CheckpointError(f"{source}: tensors do not match config.json (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
    wte = state["transformer.wte.weight"]
    hf_vocab = hf_config["vocab_size"]
    if wte.shape != (hf_vocab, hf_config["n_embd"]):
        raise CheckpointError(f"{source}: wte has shape {tuple(wte.shape)}, config.json implies "
                              f"{(hf_vocab, hf_config['n_embd'])}")
    if lm_head is not None and not torch.equal(lm_head.to(torch.float32), wte):
        raise CheckpointError(f"{source}: lm_head.weight differs from wte.weight; gptkit's GPT ties them")
    if lm_head is None and hf_config.get("tie_word_embeddings", True) is False:
        raise CheckpointError(f"{hf_dir / 'config.json'}: field 'tie_word_embeddings': gptkit's GPT ties the "
                              f"embeddings, but this model has none saved for lm_head")
    padded = torch.zeros(expected["transformer.wte.weight"].shape, dtype=torch.float32)
    padded[:hf_vocab] = wte  # rows past the real vocabulary stay zero
    state["transformer.wte.weight"] = padded
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(f"{source}: tensor {key} has shape {tuple(value.shape)} (gptkit layout), "
                                  f"config.json implies {tuple(expected[key].shape)}")
    state["lm_head.weight"] = padded
    return state


def import_tokenizer(hf_dir: Path, tokenizer_spec: str | None):
    """--tokenizer if given (a tokenizer, or a checkpoint's), else the folder's tokenizer.json, else
    GPT-2's vocab.json + merges.txt (else an older gptkit export's own files)."""
    from gptkit.checkpoint import load_tokenizer_from
    from gptkit.hf_tokenizer import tokenizer_from_hf_files
    from gptkit.tokenizer import load_tokenizer

    if tokenizer_spec is not None:
        return load_tokenizer_from(tokenizer_spec)
    tokenizer = tokenizer_from_hf_files(hf_dir, name=hf_dir.name)
    if tokenizer is not None:
        return tokenizer
    if (hf_dir / OLD_TOKENIZER_DIR).is_dir():
        return load_tokenizer(hf_dir / OLD_TOKENIZER_DIR)
    raise CheckpointError(f"{hf_dir}: no tokenizer found (neither tokenizer.json nor vocab.json + merges.txt); "
                          f"pass --tokenizer with a gptkit tokenizer folder, a checkpoint or a tiktoken name")


# ---------------------------------------------------------------------------------------------
# Export


def gpt2_config(config, *, n_vocab: int, bos_id: int) -> dict:
    """transformers.GPT2Config fields of a gptkit GPTConfig, vocabulary trimmed to `n_vocab`."""
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": n_vocab,
        "n_positions": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": None,
        "activation_function": "gelu_new",
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": 1e-5,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": True,
        "bos_token_id": bos_id,
        "eos_token_id": bos_id,
        "use_cache": True,
    }


def hf_state_dict(model, n_vocab: int) -> dict:
    """gptkit GPT -> GPT2LMHeadModel tensors on CPU: Conv1D layout, wte trimmed, lm_head tied (omitted)."""
    from gptkit.checkpoint import model_state

    out = {}
    for key, value in model_state(model).items():
        if key.endswith(CONV1D_WEIGHTS):
            value = value.t()
        if key == "transformer.wte.weight":
            value = value[:n_vocab]
        out[key] = value.contiguous()
    return out


def export_hf(ckpt_spec: str | Path, hf_dir: Path) -> Path:
    """Write a transformers GPT-2 folder for a gptkit checkpoint, atomically; returns the folder."""
    from safetensors.torch import save_file

    from gptkit.checkpoint import CHAT_KINDS
    from gptkit.files import seal_folder
    from gptkit.hf_tokenizer import generation_config, tokenizer_config, tokenizer_json

    ckpt = load_exportable(ckpt_spec, "transformers could not load it as GPT2LMHeadModel")
    config, tokenizer = ckpt.model.config, ckpt.tokenizer
    hf_dir = Path(hf_dir).expanduser()
    if hf_dir.exists() and (not hf_dir.is_dir() or any(hf_dir.iterdir())):
        raise CheckpointError(f"{hf_dir}: already exists and is not an empty folder; choose a new one")
    files = {
        "config.json": gpt2_config(config, n_vocab=tokenizer.n_vocab, bos_id=tokenizer.bos_id),
        "tokenizer_config.json": tokenizer_config(tokenizer, chat=ckpt.kind in CHAT_KINDS,
                                                  max_length=config.block_size),
        "generation_config.json": generation_config(tokenizer),
    }
    hf_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = hf_dir.parent / f".tmp-{hf_dir.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        # "format": "pt" is the metadata transformers writes and checks when it loads
        save_file(hf_state_dict(ckpt.model, tokenizer.n_vocab), tmp / "model.safetensors", metadata={"format": "pt"})
        for name, content in files.items():
            (tmp / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "tokenizer.json").write_text(tokenizer_json(tokenizer), encoding="utf-8")
        seal_folder(tmp)
        if hf_dir.exists():
            hf_dir.rmdir()  # empty, checked above
        os.replace(tmp, hf_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return hf_dir


def load_exportable(ckpt_spec: str | Path, why_bias: str):
    """A checkpoint that writes text and has GPT-2's biases (what HF and GGUF files describe)."""
    from gptkit.checkpoint import GENERATIVE_KINDS, load_checkpoint

    ckpt = load_checkpoint(ckpt_spec, kinds=GENERATIVE_KINDS)
    if not ckpt.model.config.bias:
        raise CheckpointError(f"{ckpt.name}: trained with bias=False; GPT-2 has biases, so {why_bias}")
    assert ckpt.tokenizer.n_vocab <= ckpt.model.config.vocab_size, "tokenizer larger than the model's vocabulary"
    return ckpt
