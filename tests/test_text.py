"""data/text.py: the token-shard cache is reused for the same text and tokenizer and never for
other ones; batches come only from the generator."""

import os
from itertools import product

import numpy as np
import pytest
import tiktoken
import torch

from gptkit.data.text import build_shards, random_batch, source_key_for_files
from gptkit.errors import DataError
from gptkit.tokenizer import SPECIAL_TOKENS, SPLIT_PATTERN, Tokenizer

DOCUMENTS = [f"the bird {i} heard a word near the ford" for i in range(200)]
LETTERS = b"abcdefghijklmnopqrstuvwxyz"


def letter_tokenizer(swap: tuple[int, int] | None = None) -> Tokenizer:
    """A real tiktoken encoding of 1,037 tokens: the 256 bytes, every two-letter pair, 100 "x"+pair
    tokens and the specials. `swap` exchanges the ids of two tokens: another tokenizer, which
    writes other ids for the same text."""
    pairs = [bytes([a, b]) for a, b in product(LETTERS, repeat=2)]
    tokens = [bytes([b]) for b in range(256)] + pairs + [b"x" + pair for pair in pairs[:100]]
    if swap:
        i, j = swap
        tokens[i], tokens[j] = tokens[j], tokens[i]
    special = {token: len(tokens) + k for k, token in enumerate(SPECIAL_TOKENS)}
    encoding = tiktoken.Encoding(name="letters", pat_str=SPLIT_PATTERN, special_tokens=special,
                                 mergeable_ranks={token: rank for rank, token in enumerate(tokens)})
    return Tokenizer(encoding, "letters")


def test_same_text_and_tokenizer_reuse_the_cache_without_rewriting_it():
    tok = letter_tokenizer()
    first = build_shards(DOCUMENTS, tok, block_size=16, source_key="notes-v1")
    stamp = {name: os.stat(first.folder / name) for name in ("train.bin", "val.bin", "meta.json")}
    again = build_shards(DOCUMENTS, tok, block_size=16, source_key="notes-v1")
    assert again.folder == first.folder
    assert {name: (s.st_ino, s.st_mtime_ns) for name, s in stamp.items()} == {
        name: (os.stat(again.folder / name).st_ino, os.stat(again.folder / name).st_mtime_ns) for name in stamp}
    stream = np.concatenate([again.train, again.val]).tolist()
    expected = [tok.bos_id]
    for doc in DOCUMENTS:
        expected += tok.encode(doc) + [tok.bos_id]
    assert stream == expected and len(again.val) >= 17  # at least one context (block_size + 1) held out


def test_other_text_or_another_tokenizer_never_reuses_the_cache():
    tok = letter_tokenizer()
    folder = build_shards(DOCUMENTS, tok, block_size=16, source_key="notes-v1").folder
    assert build_shards(DOCUMENTS[:150], tok, block_size=16, source_key="notes-v2").folder != folder
    # "rd" and "rf" swap ids 701 and 703: a fingerprint that sampled every other rank would miss it
    swapped = letter_tokenizer(swap=(701, 703))
    assert tok.encode("rd") == [701] and swapped.encode("rd") == [703]
    other = build_shards(DOCUMENTS, swapped, block_size=16, source_key="notes-v1")
    assert other.folder != folder
    assert other.train[:40].tolist() == [swapped.bos_id, *swapped.encode(DOCUMENTS[0]), swapped.bos_id,
                                         *swapped.encode(DOCUMENTS[1])][:40]


def test_file_keys_follow_the_bytes(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("one")
    key = source_key_for_files([path])
    assert source_key_for_files([path]) == key
    path.write_text("two")
    assert source_key_for_files([path]) != key


def test_too_little_text_is_a_clear_error():
    with pytest.raises(DataError, match="not enough text"):
        build_shards(["ab"], letter_tokenizer(), block_size=16, source_key="tiny")


def test_batches_depend_only_on_the_generator():
    data = np.arange(1000, dtype=np.uint16)
    a = random_batch(data, 4, 8, torch.Generator().manual_seed(3))
    b = random_batch(data, 4, 8, torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert torch.equal(a[0][:, 1:], a[1][:, :-1])  # targets are the inputs shifted by one
