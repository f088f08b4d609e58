"""gptkit's tokenizer in Hugging Face's files (and llama.cpp's vocabulary), and back.

Owns the conversion both ways between a `Tokenizer` (tiktoken ranks, a split regex, special
tokens, `prefix_space`) and what transformers reads:
- `tokenizer_json`: byte-level BPE whose vocabulary and merges come from the ranks
  (`byte_level_bpe`), the same split regex, and the special tokens as added tokens.
  `AutoTokenizer(...)(text)` gives `encode_document(text)`: <|endoftext|> opens a document, and
  a `prefix_space` tokenizer has a normalizer adding gptkit's space before text that opens with
  a non-space (per piece between special tokens, so per chat message too).
- `tokenizer_config`: bos/eos/pad and a Jinja `chat_template` that renders as `render_chat`.
  Typed special-token strings in a message stay text: the template breaks them with a marker
  (Unicode noncharacters, `MARK`) that the normalizer removes after the special tokens have been
  found; the only text this normalizer changes is text holding U+FDD0 U+FDD1 or U+FDD0 U+FDD2,
  pairs of characters Unicode reserves for uses like this one. Outside chats transformers
  matches special tokens in text, as for every model; `split_special_tokens=True` makes it
  encode them as text, as gptkit always does.
- `generation_config`: the stop ids and gptkit's default sampling.
- `tokenizer_from_hf_files`: tokenizer.json, or GPT-2's vocab.json + merges.txt, back into a
  `Tokenizer` (chat tokens only where the files have them).

It knows nothing about models or checkpoints, and never imports transformers.
"""

from pathlib import Path

from gptkit.errors import TokenizerError
from gptkit.files import read_json, read_text
from gptkit.tokenizer import CHAT_TOKENS, DOCUMENT_TOKEN, ROLES, Tokenizer, byte_level_chars

# tiktoken's gpt2/r50k_base pattern: GPT-2's original regex, written with possessive quantifiers.
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
# Python's str.isspace() characters, which decide gptkit's prefix space (Oniguruma's \s differs).
MAX_TOKENIZER_BYTES = 256 << 20  # tokenizer.json, vocab.json, merges.txt: GPT-2's are a few MB
_SPACES = "".join(f"\\x{{{ord(c):x}}}" for c in map(chr, range(0x110000)) if c.isspace())
# The prefix space as a normalizer: prepend one, then take it back off a text that opened with
# whitespace. (A zero-width "insert here" Replace would be shorter, but its offsets make
# tokenizers' ByteLevel step panic.)
EXTRA_SPACE_PATTERN = rf"\A (?=[{_SPACES}])"
# Noncharacters. In a message the template writes a typed MARK as MARK + KEEP, and puts MARK + BREAK
# inside every typed special-token string; the normalizer undoes both.
MARK, KEEP, BREAK = "\ufdd0", "\ufdd1", "\ufdd2"
_MARKER_RULES = ((MARK + BREAK, ""), (MARK + KEEP, MARK))  # undo the template's escapes, in this order


# ---------------------------------------------------------------------------------------------
# gptkit -> Hugging Face


def byte_level_bpe(tok: Tokenizer) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab, merges) in GPT-2's byte-level alphabet; vocab holds the special tokens too.

    Every split of a token into two tokens is a merge, ordered by the token's rank, so merging
    the pair of highest priority picks what tiktoken's merging of the lowest-ranked pair picks.
    """
    ranks = tok.encoding._mergeable_ranks
    chars = byte_level_chars()

    def text(token: bytes) -> str:
        return "".join(chars[b] for b in token)

    vocab = {text(token): rank for token, rank in ranks.items()}
    clash = [t for t in tok.encoding._special_tokens if t in vocab]
    if clash:
        raise TokenizerError(f"tokenizer '{tok.name}': special token {clash[0]} is also an ordinary token; "
                             f"no byte-level vocabulary can hold both")
    vocab.update(tok.encoding._special_tokens)
    merges = []
    for token, _ in sorted(ranks.items(), key=lambda item: item[1]):
        splits = [(token[:i], token[i:]) for i in range(1, len(token)) if token[:i] in ranks and token[i:] in ranks]
        merges += [(text(a), text(b)) for a, b in sorted(splits, key=lambda ab: (ranks[ab[0]], ranks[ab[1]]))]
    return vocab, merges


def tokenizer_json(tok: Tokenizer) -> str:
    """tokenizer.json for transformers' fast tokenizer (built with HF `tokenizers` itself)."""
    from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers import Tokenizer as HFTokenizer

    vocab, merges = byte_level_bpe(tok)
    # ignore_merges: a piece that is a whole token is that token, as in tiktoken
    hf = HFTokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    rules = [normalizers.Replace(a, b) for a, b in _MARKER_RULES] if tok.has_chat_tokens else []
    if tok.prefix_space:
        rules += [normalizers.Prepend(" "), normalizers.Replace(Regex(EXTRA_SPACE_PATTERN), "")]
    hf.normalizer = normalizers.Sequence(rules) if rules else None
    hf.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(tok.encoding._pat_str), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    hf.decoder = decoders.ByteLevel()
    special = sorted(tok.encoding._special_tokens.items(), key=lambda item: item[1])
    hf.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, _ in special])
    hf.post_processor = processors.TemplateProcessing(
        single=f"{DOCUMENT_TOKEN} $A", pair=f"{DOCUMENT_TOKEN} $A {DOCUMENT_TOKEN} $B:1",
        special_tokens=[(DOCUMENT_TOKEN, tok.bos_id)])
    return hf.to_str(pretty=True)


def chat_template(tok: Tokenizer, *, escape: bool) -> str:
    """Jinja rendering a conversation as `render_chat` does; `escape` breaks typed special tokens
    with `MARK` (for a tokenizer.json whose normalizer removes it again)."""
    content = "message['content']"
    if escape:
        content += f" | replace('{MARK}', '{MARK}{KEEP}')" + "".join(
            f" | replace('{t}', '{t[0]}{MARK}{BREAK}{t[1:]}')" for t in sorted(tok.encoding._special_tokens))
    prefix = "{% if message['content'] and message['content'] == message['content'].lstrip() %} {% endif %}"
    return (
        f"{DOCUMENT_TOKEN}"
        "{% for message in messages %}"
        f"{{% if message['role'] not in {list(ROLES)} %}}"
        "{{ raise_exception('role must be system, user or assistant, got ' + message['role']) }}{% endif %}"
        "{{ '<|' + message['role'] + '|>' }}"
        f"{prefix if tok.prefix_space else ''}"
        f"{{{{ {content} }}}}<|end|>"
        "{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )


def tokenizer_config(tok: Tokenizer, *, chat: bool, max_length: int) -> dict:
    """tokenizer_config.json; `chat`: an assistant, whose answers end with <|end|>."""
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": DOCUMENT_TOKEN,
        "eos_token": "<|end|>" if chat else DOCUMENT_TOKEN,
        "pad_token": DOCUMENT_TOKEN,
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,  # chat templates need their own special tokens found (see above)
    }
    if tok.has_chat_tokens:
        config["chat_template"] = chat_template(tok, escape=True)
    return config


def generation_config(tok: Tokenizer) -> dict:
    """generation_config.json: gptkit's stop ids and `gptkit generate`'s default sampling."""
    return {
        "bos_token_id": tok.bos_id,
        "eos_token_id": list(tok.stop_ids),
        "pad_token_id": tok.bos_id,
        "do_sample": True,
        "temperature": 0.8,
        "top_k": 0,  # off: gptkit samples from the whole distribution unless asked
        "max_new_tokens": 128,
        "min_new_tokens": 1,  # gptkit never gives an empty answer
    }


# ---------------------------------------------------------------------------------------------
# Hugging Face -> gptkit


def tokenizer_from_hf_files(folder: Path, *, name: str) -> Tokenizer | None:
    """The folder's tokenizer.json, else its vocab.json + merges.txt; None when it has neither."""
    if (folder / "tokenizer.json").is_file():
        return tokenizer_from_tokenizer_json(folder / "tokenizer.json", name=name)
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return tokenizer_from_gpt2_files(folder / "vocab.json", folder / "merges.txt", name=name)
    return None


def tokenizer_from_tokenizer_json(path: Path, *, name: str) -> Tokenizer:
    """A byte-level BPE tokenizer.json (GPT-2's, or one gptkit wrote) as a gptkit Tokenizer."""
    try:
        spec = read_json(path, max_bytes=MAX_TOKENIZER_BYTES)
        model = spec["model"]
    except (KeyError, TypeError) as e:
        raise TokenizerError(f"{path}: not a readable tokenizer.json ({e})") from None
    if not isinstance(model, dict) or model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise TokenizerError(f"{path}: field 'model': gptkit reads byte-level BPE tokenizers only")
    pat_str = _split_pattern(path, spec.get("pre_tokenizer"))
    prefix_space = _prefix_space(path, spec.get("normalizer"))
    added = {t.get("content"): t.get("id") for t in spec.get("added_tokens") or [] if isinstance(t, dict)}
    merges = [(f"{path}: field 'model.merges[{i}]'", m.split(" ") if isinstance(m, str) else m)
              for i, m in enumerate(model.get("merges") or [])]
    return _tokenizer_from_bpe(model["vocab"], merges, added, pat_str=pat_str, prefix_space=prefix_space,
                               name=name, source=path)


def _split_pattern(path: Path, pre) -> str:
    """The split regex of GPT-2's ByteLevel pre-tokenizer, or of Split + ByteLevel as gptkit writes."""
    steps = pre.get("pretokenizers") if isinstance(pre, dict) and pre.get("type") == "Sequence" else [pre]
    kinds = [s.get("type") if isinstance(s, dict) else None for s in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True) and not steps[0].get("add_prefix_space"):
        return GPT2_SPLIT_PATTERN
    if (kinds == ["Split", "ByteLevel"] and "Regex" in (steps[0].get("pattern") or {})
            and steps[0].get("behavior") == "Isolated" and not steps[0].get("invert")
            and not steps[1].get("use_regex", True) and not steps[1].get("add_prefix_space")):
        return steps[0]["pattern"]["Regex"]
    raise TokenizerError(f"{path}: field 'pre_tokenizer': gptkit reproduces GPT-2's ByteLevel or a regex Split "
                         f"followed by ByteLevel (no prefix space), got {kinds}; pass --tokenizer")


def _prefix_space(path: Path, normalizer) -> bool:
    """Whether the normalizer is gptkit's prefix space (and chat marker rules); others are refused."""
    steps = normalizer.get("normalizers") if isinstance(normalizer, dict) and normalizer.get("type") == "Sequence" \
        else [normalizer] if normalizer else []
    markers = [{"type": "Replace", "pattern": {"String": a}, "content": b} for a, b in _MARKER_RULES]
    prefix = [{"type": "Prepend", "prepend": " "},
              {"type": "Replace", "pattern": {"Regex": EXTRA_SPACE_PATTERN}, "content": ""}]
    if steps not in ([], markers, prefix, markers + prefix):
        raise TokenizerError(f"{path}: field 'normalizer': gptkit cannot reproduce it; pass --tokenizer")
    return steps[-2:] == prefix


def tokenizer_from_gpt2_files(vocab_path: Path, merges_path: Path, *, name: str) -> Tokenizer:
    """A gptkit Tokenizer with the same ids as GPT-2 style vocab.json + merges.txt."""
    vocab = read_json(vocab_path, max_bytes=MAX_TOKENIZER_BYTES)
    lines = read_text(merges_path, max_bytes=MAX_TOKENIZER_BYTES).splitlines()
    if not isinstance(vocab, dict):
        raise TokenizerError(f"{vocab_path}: expected a JSON object of token -> id")
    merges = [(f"{merges_path}:{number}", line.split(" ")) for number, line in enumerate(lines, start=1)
              if line and not (number == 1 and line.startswith("#version"))]
    return _tokenizer_from_bpe(vocab, merges, {}, pat_str=GPT2_SPLIT_PATTERN, prefix_space=False, name=name,
                               source=vocab_path)


def _tokenizer_from_bpe(vocab, merges: list[tuple[str, list]], added: dict, *, pat_str: str, prefix_space: bool,
                        name: str, source: Path) -> Tokenizer:
    """Mergeable ranks are the vocab ids of the 256 byte tokens and of each merge's result, so ids
    stay what the model's embedding rows expect; tiktoken merges by rank, so merge results must
    have increasing ids (true of GPT-2 and of anything HF `tokenizers` trains). Every other vocab
    entry and every added token is a special token; <|endoftext|> follows the largest id if none
    is there (gptkit opens documents with it). Chat tokens are not added: `gptkit sft` does that.
    """
    import tiktoken

    if not isinstance(vocab, dict) or not all(type(i) is int and i >= 0 for i in vocab.values()):
        raise TokenizerError(f"{source}: vocab: expected an object of token -> non-negative integer id")
    if not all(isinstance(t, str) and type(i) is int and vocab.get(t, i) == i for t, i in added.items()):
        raise TokenizerError(f"{source}: field 'added_tokens': expected contents with ids that agree with the vocab")
    vocab = {**vocab, **added}
    if len(set(vocab.values())) != len(vocab):
        raise TokenizerError(f"{source}: vocab: two tokens share an id")
    byte_of = {ch: b for b, ch in byte_level_chars().items()}
    ranks: dict[bytes, int] = {}
    for ch, b in byte_of.items():
        if ch not in vocab:
            raise TokenizerError(f"{source}: vocab: byte token {ch!r} (byte {b}) missing; not a byte-level BPE")
        ranks[bytes([b])] = vocab[ch]
    mergeable = set(byte_of)
    last_id = -1
    for where, parts in merges:
        pair = isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, str) for p in parts)
        token = "".join(parts) if pair else ""
        if not pair or token not in vocab or token in added or not all(c in byte_of for c in token):
            raise TokenizerError(f"{where}: expected two byte-level tokens whose join is in the vocab, got {parts!r}")
        if token in mergeable:
            continue
        if vocab[token] <= last_id:
            raise TokenizerError(f"{where}: merge result {token!r} has id {vocab[token]}, below an earlier "
                                 f"merge's {last_id}; tiktoken needs ids in merge order (pass --tokenizer)")
        last_id = vocab[token]
        ranks[bytes(byte_of[c] for c in token)] = vocab[token]
        mergeable.add(token)
    special = {token: i for token, i in vocab.items() if token not in mergeable}
    special.setdefault(DOCUMENT_TOKEN, max(vocab.values()) + 1)
    if len({t in special for t in CHAT_TOKENS}) > 1:
        raise TokenizerError(f"{source}: has only some of gptkit's chat tokens {', '.join(CHAT_TOKENS)}")
    try:
        encoding = tiktoken.Encoding(name=name, pat_str=pat_str, mergeable_ranks=ranks, special_tokens=special)
    except ValueError as e:
        raise TokenizerError(f"{source}: split pattern is not a regex tiktoken accepts ({e})") from None
    return Tokenizer(encoding, name, prefix_space=prefix_space)
