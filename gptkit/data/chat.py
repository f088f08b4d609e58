"""Conversations for supervised fine-tuning: JSONL in, padded (x, y, loss_mask) batches out.

Accepted lines (validated one by one; a bad line is reported as file:line and field):
- `{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}` (OpenAI/TRL):
  an optional system message first, then user and assistant turns alternating, user first; at
  least one assistant turn, and no assistant turn empty (it would teach the model to say nothing)
- `{"prompt": "...", "completion": "..."}` (one user turn, one assistant answer, not empty)

Every conversation becomes `(ids, mask)` through `tokenizer.render_chat`, the single place where
chat structure meets tokens, so the loss covers the assistant's tokens and their end-of-turn.
"""

from pathlib import Path

import torch

from gptkit.data.text import iter_jsonl
from gptkit.errors import DataError
from gptkit.tokenizer import ROLES, render_chat


def parse_conversation(obj, path, line: int) -> list[dict]:
    if not isinstance(obj, dict):
        raise DataError("expected a JSON object", path=path, line=line)
    if "messages" in obj:
        messages = obj["messages"]
        if not isinstance(messages, list) or not messages:
            raise DataError("expected a non-empty list of {role, content}", path=path, line=line, field="messages")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ROLES:
                raise DataError(f"expected role one of {', '.join(ROLES)}", path=path, line=line, field=f"messages[{i}].role")
            if not isinstance(m.get("content"), str):
                raise DataError("expected a string", path=path, line=line, field=f"messages[{i}].content")
        if not any(m["role"] == "assistant" for m in messages):
            raise DataError("no assistant message: nothing to learn from", path=path, line=line, field="messages")
        start = 1 if messages[0]["role"] == "system" else 0
        for i, m in enumerate(messages[start:], start=start):
            expected = "user" if (i - start) % 2 == 0 else "assistant"
            if m["role"] != expected:
                raise DataError(f"expected a {expected} message here (a system message first if any, then user and "
                                f"assistant turns alternating, user first), got {m['role']}", path=path, line=line,
                                field=f"messages[{i}].role")
            if expected == "assistant" and not m["content"].strip():
                raise DataError("an empty assistant turn (it would teach the model to answer nothing)", path=path,
                                line=line, field=f"messages[{i}].content")
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    if "prompt" in obj or "completion" in obj:
        for key in ("prompt", "completion"):
            if not isinstance(obj.get(key), str):
                raise DataError("expected a string", path=path, line=line, field=key)
        if not obj["completion"].strip():
            raise DataError("empty (it would teach the model to answer nothing)", path=path, line=line,
                            field="completion")
        return [{"role": "user", "content": obj["prompt"]}, {"role": "assistant", "content": obj["completion"]}]
    raise DataError('expected {"messages": [...]} or {"prompt": ..., "completion": ...}', path=path, line=line)


def load_conversations(spec: str) -> list[list[dict]]:
    """Conversations from a JSONL file, or the toy world's when spec is `toyworld` (or `toyworld-ja`)."""
    from gptkit.data import world

    named = world.parse(spec)
    if named and named[1] is None:
        return world.world(named[0]).sft_conversations()
    path = Path(spec).expanduser()
    conversations = [parse_conversation(obj, path, line_no) for line_no, obj in iter_jsonl(path)]
    if not conversations:
        raise DataError("no conversations in file", path=path)
    return conversations


def encode_conversations(tokenizer, conversations: list[list[dict]], max_len: int) -> list[tuple[list[int], list[int]]]:
    """(ids, mask) per conversation, cut to max_len + 1 tokens; ones with nothing to learn are dropped."""
    out = []
    for messages in conversations:
        ids, mask = render_chat(tokenizer, messages)
        ids, mask = ids[: max_len + 1], mask[: max_len + 1]
        if any(mask[1:]):
            out.append((ids, mask))
    return out


def split_examples(examples: list, val_fraction: float = 0.05) -> tuple[list, list]:
    """Every 20th example to validation (at least one when there are two or more)."""
    step = max(2, round(1 / val_fraction))
    val = examples[::step] if len(examples) > 1 else []
    train = [e for i, e in enumerate(examples) if i % step != 0] if val else examples
    return train, val or train


def pad_batch(examples: list[tuple[list[int], list[int]]], pad_id: int):
    """(x, y, loss_mask) tensors (B, T) where T is the longest example minus one."""
    T = max(len(ids) for ids, _ in examples) - 1
    x = torch.full((len(examples), T), pad_id, dtype=torch.long)
    y = torch.full((len(examples), T), pad_id, dtype=torch.long)
    loss_mask = torch.zeros((len(examples), T), dtype=torch.float32)
    for row, (ids, mask) in enumerate(examples):
        n = len(ids) - 1
        x[row, :n] = torch.tensor(ids[:-1])
        y[row, :n] = torch.tensor(ids[1:])
        loss_mask[row, :n] = torch.tensor(mask[1:], dtype=torch.float32)  # predict token i+1: train where it is masked in
    return x, y, loss_mask


def sample_batch(examples: list, batch_size: int, generator: torch.Generator, pad_id: int):
    picks = torch.randint(0, len(examples), (batch_size,), generator=generator).tolist()
    return pad_batch([examples[i] for i in picks], pad_id)
