"""Preference data for learning from rankings: (prompt, chosen, rejected) triples, as chat tokens.

Two sources, one shape:
- a TRL preference JSONL file, read by `read_preference_file`, the one reader of such files
  (`gptkit rank import` and every training command use it), validated line by line (a bad line
  is a DataError naming file:line and field). Accepted rows: `{"prompt", "chosen", "rejected"}`
  with strings (TRL's standard form); the prompt may also be a list of `{role, content}`
  messages and the answers lists ending in one assistant message (TRL's conversational form);
  without a "prompt", the answers are whole conversations whose shared leading messages are the
  prompt (TRL's implicit prompt form).
- the logbook (`source == "logbook"`): every (better, worse) pair every live ranking implies,
  through `store.rankings_to_pairs`, the one place a ranking becomes pairs.

A prompt is a string (one user turn) or a list of messages; an answer is always a string. A
prompt given as messages that are one user turn is that turn's text, so one prompt has one
spelling whichever form a file uses.
Encoding goes through `render_chat`, so a pair's mask marks exactly the answer's tokens and its
`<|end|>`, as SFT trains them. Batches put the chosen answers in the first half of the rows and
the rejected ones in the second half.

Must not know: models, losses or the training loop.
"""

import json
from pathlib import Path

import torch

from gptkit.data.chat import pad_batch
from gptkit.data.text import iter_jsonl
from gptkit.errors import DataError
from gptkit.tokenizer import ROLES, render_chat

LOGBOOK = "logbook"
TOYWORLDS = ("toyworld", "toyworld-ja")


def load_preference_pairs(source: str, *, include_synthetic: bool = True) -> list[tuple]:
    """(prompt, chosen, rejected) triples from the logbook or a TRL preference JSONL file."""
    if source == LOGBOOK:
        return logbook_pairs(include_synthetic=include_synthetic)
    if source in TOYWORLDS:
        raise DataError("the toy world holds no rankings: give --data logbook or a preference JSONL file "
                        "(`gptkit quickstart --feedback` ranks toy-world answers into the logbook)")
    return [pair for _, pair in read_preference_file(source)]


def read_preference_file(path) -> list[tuple[int, tuple]]:
    """(line number, (prompt, chosen, rejected)) for each row of a TRL preference JSONL file, in
    any of the three forms; DataError naming file:line:field at the first bad row."""
    path = Path(path).expanduser()
    rows = [(line_no, parse_preference(obj, path, line_no)) for line_no, obj in iter_jsonl(path)]
    if not rows:
        raise DataError("no preference pairs in file", path=path)
    return rows


def load_prompts(source: str, *, include_synthetic: bool = True) -> list:
    """Distinct prompts (first-seen order) to roll out a policy on: those of a preference source,
    or the toy world's ranking prompts when source is `toyworld` (or `toyworld-ja`)."""
    if source in TOYWORLDS:
        from gptkit.data import world

        return [task.question for task in world.world(world.parse(source)[0]).rank_prompts()]
    pairs = load_preference_pairs(source, include_synthetic=include_synthetic)
    distinct: dict[str, object] = {}
    for prompt, _, _ in pairs:
        distinct.setdefault(prompt_key(prompt), prompt)
    return list(distinct.values())


def logbook_pairs(*, include_synthetic: bool = True, logbook_path=None) -> list[tuple]:
    """Every pair every non-deleted ranking in the logbook implies, oldest ranking first."""
    from gptkit.store import open_logbook, rankings_to_pairs

    with open_logbook(logbook_path) as lb:
        rankings = lb.rankings(include_synthetic=include_synthetic)
    pairs = [(r["prompt"], chosen, rejected) for r in rankings for chosen, rejected in rankings_to_pairs(r)]
    if not pairs:
        which = "" if include_synthetic else " (synthetic rankings excluded)"
        raise DataError(f"the logbook holds no ranked pairs yet{which}: rank some answers with `gptkit rank`, "
                        "or give a preference JSONL file")
    return pairs


def parse_preference(obj, path, line: int) -> tuple:
    """One JSONL row -> (prompt, chosen, rejected); DataError naming the field otherwise."""
    if not isinstance(obj, dict):
        raise DataError('expected an object {"prompt", "chosen", "rejected"}', path=path, line=line)
    for key in ("chosen", "rejected"):
        if key not in obj:
            raise DataError("missing", path=path, line=line, field=key)
    if "prompt" not in obj:
        return _implicit_prompt(obj, path, line)
    prompt = obj["prompt"]
    if isinstance(prompt, list):
        _check_messages(prompt, path, line, "prompt")
        if not prompt:
            raise DataError("expected text or a non-empty list of messages", path=path, line=line, field="prompt")
        prompt = _prompt_from_messages(prompt)
    elif not isinstance(prompt, str):
        raise DataError("expected text or a list of messages", path=path, line=line, field="prompt")
    return prompt, _answer(obj["chosen"], path, line, "chosen"), _answer(obj["rejected"], path, line, "rejected")


def _check_messages(messages: list, path, line: int, field: str) -> None:
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise DataError(f"expected role one of {', '.join(ROLES)}", path=path, line=line, field=f"{field}[{i}].role")
        if not isinstance(m.get("content"), str):
            raise DataError("expected a string", path=path, line=line, field=f"{field}[{i}].content")


def _answer(value, path, line: int, field: str) -> str:
    """An answer given as text, or as messages whose last one is the assistant's answer."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        _check_messages(value, path, line, field)
        if value[-1]["role"] == "assistant":
            return value[-1]["content"]
        raise DataError("the last message must be the assistant's answer", path=path, line=line, field=field)
    raise DataError("expected text or a list of messages ending with the assistant's", path=path, line=line, field=field)


def _implicit_prompt(obj: dict, path, line: int) -> tuple:
    """TRL's implicit-prompt rows: two whole conversations; their shared start is the prompt."""
    chosen, rejected = obj["chosen"], obj["rejected"]
    if not (isinstance(chosen, list) and isinstance(rejected, list)):
        raise DataError("missing (needed unless chosen and rejected are whole conversations)",
                        path=path, line=line, field="prompt")
    answers = _answer(chosen, path, line, "chosen"), _answer(rejected, path, line, "rejected")
    if len(chosen) < 2 or rejected[:-1] != chosen[:-1]:
        raise DataError("chosen and rejected must share the conversation before their last message",
                        path=path, line=line, field="rejected")
    return _prompt_from_messages(chosen[:-1]), *answers


def _prompt_from_messages(messages: list[dict]):
    """Checked messages -> the prompt: one user turn is its text, anything longer stays messages."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def prompt_messages(prompt) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def prompt_key(prompt) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def encode_answer(tokenizer, prompt, answer: str, max_len: int) -> tuple[list[int], list[int]]:
    """(ids, mask) of prompt + answer, mask on the answer and its <|end|>; at most max_len tokens."""
    ids, mask = render_chat(tokenizer, prompt_messages(prompt) + [{"role": "assistant", "content": answer}])
    return ids[:max_len], mask[:max_len]


def encode_prompt(tokenizer, prompt) -> list[int]:
    """The ids that ask a chat model for an answer to `prompt`."""
    return render_chat(tokenizer, prompt_messages(prompt), add_generation_prompt=True)[0]


def encode_pairs(tokenizer, pairs: list[tuple], max_len: int) -> list[tuple]:
    """[(chosen (ids, mask), rejected (ids, mask))]; pairs that state no preference after the
    cut to max_len tokens (identical, or no answer token left) are dropped."""
    out = []
    for prompt, chosen, rejected in pairs:
        c, r = encode_answer(tokenizer, prompt, chosen, max_len), encode_answer(tokenizer, prompt, rejected, max_len)
        if c[0] != r[0] and any(c[1][1:]) and any(r[1][1:]):
            out.append((c, r))
    return out


def split_by_prompt(items: list, prompt_of, val_every: int = 10) -> tuple[list, list]:
    """(train, val): the items of every `val_every`-th distinct prompt (first-seen order, the first
    included) are held out, so answers to one prompt never sit on both sides. With one distinct
    prompt there is nothing to hold out: val is empty (callers skip validation and say so)."""
    keys = list(dict.fromkeys(prompt_key(prompt_of(item)) for item in items))
    if len(keys) < 2:
        return items, []
    held = set(keys[::val_every])
    train = [item for item in items if prompt_key(prompt_of(item)) not in held]
    val = [item for item in items if prompt_key(prompt_of(item)) in held]
    return train, val


def encode_split(tokenizer, pairs: list[tuple], max_len: int, source) -> tuple[list, list, str | None]:
    """(train, held-out) `encode_pairs` of `pairs` split by prompt (`split_by_prompt`), and why
    none is held out (None when some are), for the caller to skip validation rather than validate
    on training pairs. DataError when no pair states a preference."""
    train_raw, val_raw = split_by_prompt(pairs, lambda pair: pair[0])
    train, val = encode_pairs(tokenizer, train_raw, max_len), encode_pairs(tokenizer, val_raw, max_len)
    if not train:
        raise DataError(f"none of the {len(pairs)} pairs states a preference (identical answers or empty ones)", path=source)
    if val:
        return train, val, None
    return train, val, (f"none of the {len(pairs)} pairs can be held out (they answer one prompt)" if not val_raw
                        else "no held-out pair states a preference once cut to the context")


def sample_pair_batch(encoded: list[tuple], batch_size: int, generator: torch.Generator, pad_id: int):
    """`batch_size` random pairs -> pair_batch; drawn only from `generator` (exact resume)."""
    picks = torch.randint(0, len(encoded), (batch_size,), generator=generator).tolist()
    return pair_batch([encoded[i] for i in picks], pad_id)


def pair_batch(pairs: list[tuple], pad_id: int) -> dict:
    """Chosen rows first, then rejected rows, padded together (2B rows):

    ids (2B, L) whole sequences and last (2B,) the index of each row's last real token (what a
    reward model reads); x, y, mask (2B, L-1) as `pad_batch` makes them (next-token inputs,
    targets, answer-token mask: what sequence log-probs sum over).
    """
    examples = [c for c, _ in pairs] + [r for _, r in pairs]
    x, y, mask = pad_batch(examples, pad_id)
    ids = torch.full((len(examples), x.size(1) + 1), pad_id, dtype=torch.long)
    for row, (seq, _) in enumerate(examples):
        ids[row, : len(seq)] = torch.tensor(seq)
    last = torch.tensor([len(seq) - 1 for seq, _ in examples], dtype=torch.long)
    return {"ids": ids, "x": x, "y": y, "mask": mask, "last": last}
