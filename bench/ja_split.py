"""Which split regex suits Japanese: characters per token on held-out Japanese at one vocab size.

Each candidate pattern trains a byte-level BPE tokenizer (`train_tokenizer`) on generated
Japanese documents (tests/ja_corpus.py, a stand-in for the Japanese toy world) with every 20th
document held out, then encodes the held-out ones ("ja only"). A second tokenizer trains on those
and on as many English toy-world documents ("mixed"), held out the same way, so English must not
get worse. Also printed: the share of held-out answers X in 「答えはXです」 that are whole tokens
(start and end on token boundaries), and whether HF tokenizers (training) and tiktoken (run time)
cut held-out text into the same chunks (they must, or training and run time disagree).

    python bench/ja_split.py                 # 4000 documents, vocab 2048
    python bench/ja_split.py --docs 2000 --vocab 1024 --json
    python bench/ja_split.py --ja data/ja/                 # a Japanese corpus of your own instead
    python bench/ja_split.py --ja toyworld-ja --en toyworld  # the toy world in both languages
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the generated corpus
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from ja_corpus import japanese_documents  # noqa: E402

from gptkit import tokenizer as tk  # noqa: E402

_L = tk._JA_LETTERS
_P = tk._JA_PUNCT
_REST = (rf"""|[^\r\n\p{{L}}\p{{N}}{_P}]?+[\p{{L}}&&[^{_L}]]++|\p{{N}}"""
         rf"""|[{_P}]| ?[^\s\p{{L}}\p{{N}}{_P}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
# The candidates differ only in how Japanese letters are chunked; English, digits, punctuation
# and whitespace follow the "ja" pattern's other alternatives.
CANDIDATES = {
    "default (cl100k-like)": tk.SPLIT_PATTERN,
    "script (kanji|hiragana|katakana): ja": tk.SPLIT_PATTERN_JA,
    "bunsetsu (kanji/katakana run + hiragana)": (
        r"""'(?i:[sdmt]|ll|ve|re)| ?+[\p{Han}\p{Katakana}ーｰ]++\p{Hiragana}*+| ?+\p{Hiragana}++""" + _REST),
    "bunsetsu, katakana apart": (r"""'(?i:[sdmt]|ll|ve|re)| ?+\p{Han}++\p{Hiragana}*+| ?+[\p{Katakana}ーｰ]++\p{Hiragana}*+"""
                                 r"""| ?+\p{Hiragana}++""" + _REST),
    "hiragana leads (hiragana run + kanji/katakana run)": (
        r"""'(?i:[sdmt]|ll|ve|re)| ?+\p{Hiragana}*+[\p{Han}\p{Katakana}ーｰ]++| ?+\p{Hiragana}++""" + _REST),
}


def hf_chunks(pattern: str, text: str) -> list[str]:
    from tokenizers import Regex, pre_tokenizers
    return [c for c, _ in pre_tokenizers.Split(Regex(pattern), behavior="isolated").pre_tokenize_str(text)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--ja", nargs="*", default=None, help="Japanese text files/folders/JSONL instead of the generated ones")
    parser.add_argument("--en", nargs="*", default=None, help="English documents instead of the toy world's")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from gptkit.data.toyworld import pretrain_documents
    from gptkit.train.pretrain import load_pretrain_documents

    def split(docs):  # every 20th document held out
        return [d for i, d in enumerate(docs) if i % 20], [d for i, d in enumerate(docs) if i % 20 == 0]

    ja_docs = load_pretrain_documents(args.ja)[0] if args.ja else japanese_documents(args.docs, seed=0)
    en_docs = load_pretrain_documents(args.en)[0] if args.en else pretrain_documents(seed=0, n_documents=args.docs)
    ja_train, ja_test = split(ja_docs)
    en_train, en_test = split(en_docs)
    results = {}
    for label, pattern in CANDIDATES.items():
        tk.SPLIT_PATTERNS["bench"] = pattern
        ja = tk.train_tokenizer(ja_train, args.vocab, name="bench", split="bench")
        both = tk.train_tokenizer(ja_train + en_train, args.vocab, name="bench", split="bench")
        agree = all(_tiktoken_chunks(pattern, text, chunks) == chunks
                    for text in ja_test[:100] + en_test[:100] for chunks in [hf_chunks(pattern, text)])
        results[label] = {"ja": tk.chars_per_token(ja, ja_test), "mixed_ja": tk.chars_per_token(both, ja_test),
                          "mixed_en": tk.chars_per_token(both, en_test), "answers_aligned": _answers_aligned(ja, ja_test),
                          "ja_vocab": ja.n_vocab, "engines_agree": agree}
    if args.json:
        print(json.dumps({"docs": args.docs, "vocab": args.vocab, "results": results}))
        return
    print(f"held out: every 20th of {len(ja_docs)} Japanese and {len(en_docs)} English documents; "
          f"vocab {args.vocab}; chars/token")
    print(f"{'pattern':50s} {'ja only':>7s} {'(vocab)':>7s} {'mixed:ja':>8s} {'mixed:en':>8s} "
          f"{'answers':>7s}  engines agree")
    for label, r in results.items():
        print(f"{label:50s} {r['ja']:7.3f} {r['ja_vocab']:7d} {r['mixed_ja']:8.3f} {r['mixed_en']:8.3f} "
              f"{r['answers_aligned']:7.0%}  {r['engines_agree']}")
    print("answers: held-out 「答えはXです」 whose X starts and ends on token boundaries (ja only)")


def _answers_aligned(tok, texts: list[str]) -> float:
    """The share of answers X in 「答えはXです」 that are whole tokens: a model copies a name more
    easily when it starts and ends on token boundaries, as English names do after a space."""
    import re
    aligned = total = 0
    for text in texts:
        ids = tok.encode(text)
        ends, pos = set(), 0
        for i in ids:
            pos += len(tok.encoding.decode_single_token_bytes(i))
            ends.add(pos)
        for m in re.finditer("答えは(.+?)です", text):
            start, end = (len(text[:k].encode()) for k in m.span(1))
            aligned += start in ends and end in ends
            total += 1
    return aligned / total if total else 0.0


def _tiktoken_chunks(pattern: str, text: str, chunks: list[str]) -> list[str]:
    """tiktoken's chunks of `text`: with every HF chunk whole in the vocabulary, each token is one chunk."""
    import tiktoken
    ranks = {bytes([b]): b for b in range(256)}
    for chunk in chunks:
        ranks.setdefault(chunk.encode(), len(ranks))
    enc = tiktoken.Encoding("probe", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
    return [enc.decode_single_token_bytes(i).decode("utf-8", "backslashreplace") for i in enc.encode_ordinary(text)]


if __name__ == "__main__":
    main()
