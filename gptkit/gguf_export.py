"""GGUF export: one file that llama.cpp (and so ollama) runs as a GPT-2, tokenizer included.

`export_gguf(ckpt, path, dtype)` writes llama.cpp's GPT-2 architecture with the `gguf` package
(llama.cpp's own writer): weights in f32, f16 or q8_0 (norms and biases stay f32, as llama.cpp's
converter keeps them), and the tokenizer as llama.cpp's "gpt2" BPE vocabulary with the same
tokens and merges as the exported tokenizer.json (`hf_tokenizer.byte_level_bpe`), the stop ids
and the chat template. It also returns the Modelfile lines that load the file into ollama.

What llama.cpp cannot take from the file is the split regex: it knows a fixed set by name
(`tokenizer.ggml.pre`), so a tokenizer with any other regex is refused, the Japanese one
(`split="ja"`) included: no llama.cpp pre-tokenizer chunks kanji/katakana with the hiragana after
them, and a file that tokenized differently would run without any sign of it. gptkit's own regex (digits one by one) is llama.cpp's "qwen2" but for
one case: whitespace holding a newline at the very end of a text is one piece for gptkit and
two for llama.cpp. llama.cpp's BPE also adds no prefix space, so a `prefix_space` model wants
its prompt to open with a space, as gptkit's `encode_document` writes it; the chat template
adds it to every message. And gptkit never gives an empty answer (a stop id cannot come first),
a rule llama.cpp's samplers do not have.

It knows nothing about training or generation; `gguf` is imported only here.
"""

from pathlib import Path

from gptkit.errors import CheckpointError, UsageError

DTYPES = ("f32", "f16", "q8_0")
# llama.cpp's name for the split regex of each tokenizer gptkit makes or imports
_CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                   r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
# gptkit layer name -> llama.cpp's, for blk.N
_BLOCK_TENSORS = {"ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output",
                  "ln_2": "ffn_norm", "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"}


def llama_cpp_pre(pat_str: str) -> str | None:
    """llama.cpp's pre-tokenizer name for a split regex (None: it has none)."""
    from gptkit.hf_tokenizer import GPT2_SPLIT_PATTERN
    from gptkit.tokenizer import SPLIT_PATTERN

    return {SPLIT_PATTERN: "qwen2", GPT2_SPLIT_PATTERN: "gpt-2", _CL100K_PATTERN: "llama-bpe"}.get(pat_str)


def gguf_tensors(model, n_vocab: int) -> dict:
    """gptkit GPT -> llama.cpp GPT-2 tensors (float32 numpy; nn.Linear's (out, in) is what it reads)."""
    from gptkit.checkpoint import model_state

    out = {}
    for key, value in model_state(model).items():
        name = key.removeprefix("transformer.")
        if name == "wte.weight":
            name, value = "token_embd.weight", value[:n_vocab]  # the output layer reuses it (tied)
        elif name == "wpe.weight":
            name = "position_embd.weight"
        elif name.startswith("ln_f."):
            name = "output_norm." + name.removeprefix("ln_f.")
        else:
            _, block, rest = name.split(".", 2)  # h.N.<layer>.<weight|bias>
            layer, kind = rest.rsplit(".", 1)
            name = f"blk.{block}.{_BLOCK_TENSORS[layer]}.{kind}"
        out[name] = value.float().numpy()
    return out


def ollama_modelfile(path: Path, tok, *, chat: bool) -> str:
    """Modelfile lines for ollama: the file, gptkit's chat format (ollama adds <|endoftext|> itself,
    as the file asks) and the stop tokens."""
    space = " " if tok.prefix_space else ""
    if chat:
        template = (f"{{{{ if .System }}}}<|system|>{space}{{{{ .System }}}}<|end|>{{{{ end }}}}"
                    f"<|user|>{space}{{{{ .Prompt }}}}<|end|><|assistant|>")
    else:
        template = f"{space}{{{{ .Prompt }}}}"
    stops = ["<|end|>", "<|endoftext|>"] if tok.has_chat_tokens else ["<|endoftext|>"]
    return "\n".join([f"FROM ./{path.name}", f'TEMPLATE """{template}"""', *(f'PARAMETER stop "{s}"' for s in stops)])


def export_gguf(ckpt_spec: str | Path, path: Path, *, dtype: str = "f32") -> tuple[Path, str]:
    """Write a checkpoint as a GGUF file, atomically; returns its path and its ollama Modelfile."""
    try:
        import gguf
    except ImportError:
        raise UsageError("GGUF export needs the gguf package: pip install 'gptkit[export]'") from None
    import numpy as np

    from gptkit.checkpoint import CHAT_KINDS
    from gptkit.files import atomic_path
    from gptkit.hf import load_exportable
    from gptkit.hf_tokenizer import byte_level_bpe, chat_template

    if dtype not in DTYPES:
        raise UsageError(f"--dtype: expected one of {', '.join(DTYPES)}, got '{dtype}'")
    path = Path(path).expanduser()
    if path.exists():
        raise CheckpointError(f"{path}: already exists; choose a new file name")
    ckpt = load_exportable(ckpt_spec, "llama.cpp's GPT-2 could not run it")
    config, tok = ckpt.model.config, ckpt.tokenizer
    pre = llama_cpp_pre(tok.encoding._pat_str)
    if pre is None and tok.split == "ja":
        raise CheckpointError(f"{ckpt.name}: its tokenizer splits Japanese with gptkit's 'ja' regex, which no llama.cpp "
                              f"pre-tokenizer reproduces (llama.cpp would cut the text differently); "
                              f"export it with --format hf instead")
    if pre is None:
        raise CheckpointError(f"{ckpt.name}: its tokenizer's split regex is none of those llama.cpp knows by name; "
                              f"export it with --format hf instead")
    vocab, merges = byte_level_bpe(tok)
    tokens = [f"[PAD{i}]" for i in range(tok.n_vocab)]  # ids no token owns stay unused placeholders
    types = [gguf.TokenType.UNUSED] * tok.n_vocab
    for text, i in vocab.items():
        tokens[i] = text
        types[i] = gguf.TokenType.CONTROL if tok.is_special(i) else gguf.TokenType.NORMAL
    chat = ckpt.kind in CHAT_KINDS
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[dtype]

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        writer = gguf.GGUFWriter(tmp, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.GPT2])
        writer.add_name(ckpt.name)
        writer.add_file_type(file_type)
        writer.add_context_length(config.block_size)
        writer.add_embedding_length(config.n_embd)
        writer.add_feed_forward_length(4 * config.n_embd)
        writer.add_block_count(config.n_layer)
        writer.add_head_count(config.n_head)
        writer.add_layer_norm_eps(1e-5)
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(pre)
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges([f"{a} {b}" for a, b in merges])
        writer.add_bos_token_id(tok.bos_id)
        writer.add_eos_token_id(tok.end_id if chat else tok.bos_id)
        if tok.has_chat_tokens:
            writer.add_eot_token_id(tok.end_id)
            writer.add_chat_template(chat_template(tok, escape=False))
        writer.add_pad_token_id(tok.bos_id)
        writer.add_add_bos_token(True)  # every gptkit document opens with <|endoftext|>
        writer.add_add_eos_token(False)
        for name, value in gguf_tensors(ckpt.model, tok.n_vocab).items():
            if value.ndim == 1 or dtype == "f32":
                writer.add_tensor(name, value)
            elif dtype == "q8_0" and value.shape[-1] % gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0][0] == 0:
                q8 = gguf.GGMLQuantizationType.Q8_0
                writer.add_tensor(name, gguf.quants.quantize(value, q8), raw_dtype=q8)
            else:  # f16, or a q8_0 file's rows that do not fill whole 32-value blocks
                writer.add_tensor(name, value.astype(np.float16))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return path, ollama_modelfile(path, tok, chat=chat)
