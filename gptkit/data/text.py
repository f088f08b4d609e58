"""Pretraining data: text files, folders and JSONL -> cached token shards -> random batches.

Inputs: `.txt`/`.md` files (each file is one document), folders of them (recursive, sorted),
and `.jsonl` files with a "text" field per line (each line one document). Every document is
tokenized as ordinary text and starts with the tokenizer's bos id.

Tokenizing happens once: the ids go into `$GPTKIT_HOME/cache/shards/<key>/{train,val}.bin`
(numpy memmaps, uint16 when the vocabulary allows). The key hashes the input bytes and the
tokenizer, so changing either re-tokenizes and nothing stale is ever reused. The last ~5% of
the token stream (at least one context) is the validation split.

Batches are drawn at random offsets from a `torch.Generator` passed in, so the data order is
fully determined by that generator's state (what makes resume exact).
"""

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gptkit import paths
from gptkit.errors import DataError
from gptkit.files import clip, parse_json, read_text

TEXT_SUFFIXES = (".txt", ".md")


def input_files(specs: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into the ordered list of files to read."""
    files: list[Path] = []
    for spec in specs:
        path = Path(spec).expanduser()
        try:
            is_dir, exists = path.is_dir(), path.exists()
        except OSError as e:  # e.g. a name too long for the filesystem
            raise DataError(f"cannot read ({e.strerror})", path=clip(str(path))) from None
        if is_dir:
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES + (".jsonl",))
            if not found:
                raise DataError("folder has no .txt, .md or .jsonl files", path=path)
            files.extend(found)
        elif exists:  # read_text refuses anything but a regular file (a pipe would hang)
            files.append(path)
        else:
            raise DataError("no such file or folder", path=path)
    if not files:
        raise DataError("no input given: pass --data FILE|FOLDER (or --data toyworld)")
    return files


def iter_jsonl(path: Path):
    """(line number, parsed value) for each non-blank line; invalid JSON is a DataError at file:line.

    Lines split on "\\n" only, not str.splitlines(): JSON strings may hold U+2028 unescaped.
    """
    for line_no, line in enumerate(read_text(path).split("\n"), start=1):
        if line.strip():
            yield line_no, parse_json(line, path=path, line=line_no)


def read_jsonl(path: Path, field: str = "text") -> list[str]:
    docs = []
    for line_no, obj in iter_jsonl(path):
        if not isinstance(obj, dict) or not isinstance(obj.get(field), str):
            raise DataError("expected an object with a string", path=path, line=line_no, field=field)
        docs.append(obj[field])
    return docs


def read_documents(files: list[Path]) -> list[str]:
    docs: list[str] = []
    for path in files:
        if path.suffix.lower() == ".jsonl":
            docs.extend(read_jsonl(path))
        else:
            docs.append(read_text(path))
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise DataError("all input documents are empty", path=files[0] if len(files) == 1 else None)
    return docs


@dataclass
class TokenShards:
    train: np.ndarray  # 1-D token ids (memmap)
    val: np.ndarray
    folder: Path

    @property
    def n_tokens(self) -> int:
        return len(self.train) + len(self.val)


def _tokenizer_fingerprint(tokenizer) -> str:
    """Everything that decides the ids: the split pattern, every rank and every special token id.
    (Hashing only a sample of the ranks let a tokenizer that differed elsewhere reuse stale ids.)"""
    h = hashlib.sha256()
    h.update(tokenizer.name.encode())
    h.update(str(tokenizer.n_vocab).encode())
    h.update(tokenizer.encoding._pat_str.encode())
    h.update(b"prefix_space" if tokenizer.prefix_space else b"")
    for token, rank in sorted(tokenizer.encoding._mergeable_ranks.items(), key=lambda kv: kv[1]):
        h.update(len(token).to_bytes(2, "little") + token + rank.to_bytes(4, "little"))
    h.update(json.dumps(sorted(tokenizer.encoding._special_tokens.items())).encode())
    return h.hexdigest()


def build_shards(documents: list[str], tokenizer, *, block_size: int, source_key: str) -> TokenShards:
    """Tokenize `documents` once (cached under a key of source + tokenizer) into train/val shards."""
    key = hashlib.sha256((source_key + _tokenizer_fingerprint(tokenizer)).encode()).hexdigest()[:20]
    folder = paths.cache_dir() / "shards" / key
    if not (folder / "meta.json").is_file():
        ids = [tokenizer.bos_id]
        for doc_ids in tokenizer.encode_documents(documents):
            ids.extend(doc_ids)
            ids.append(tokenizer.bos_id)
        dtype = np.uint16 if tokenizer.n_vocab <= 65535 else np.uint32
        stream = np.asarray(ids, dtype=dtype)
        n_val = max(len(stream) // 20, min(block_size + 1, len(stream) // 4))
        if len(stream) - n_val < 2 or n_val < 2:
            raise DataError(f"not enough text to train on ({len(stream)} tokens); give at least a few thousand characters")
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        stream[:-n_val].tofile(tmp / "train.bin")
        stream[-n_val:].tofile(tmp / "val.bin")
        (tmp / "meta.json").write_text(json.dumps({"dtype": np.dtype(dtype).name, "documents": len(documents)}))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process (a DDP rank) finished the same shards first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    meta = json.loads((folder / "meta.json").read_text())
    dtype = np.dtype(meta["dtype"])
    return TokenShards(
        train=np.memmap(folder / "train.bin", dtype=dtype, mode="r"),
        val=np.memmap(folder / "val.bin", dtype=dtype, mode="r"),
        folder=folder,
    )


def source_key_for_files(files: list[Path]) -> str:
    h = hashlib.sha256()
    for path in files:
        h.update(str(path.resolve()).encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def random_batch(data: np.ndarray, batch_size: int, seq_len: int, generator):
    """(x, y) int64 tensors of shape (B, T) from random offsets; T shrinks for a tiny split."""
    import torch

    seq_len = min(seq_len, len(data) - 1)
    starts = torch.randint(0, len(data) - seq_len, (batch_size,), generator=generator).tolist()
    chunks = np.stack([np.asarray(data[s : s + seq_len + 1], dtype=np.int64) for s in starts])
    tensor = torch.from_numpy(chunks)
    return tensor[:, :-1].contiguous(), tensor[:, 1:].contiguous()
