"""Text in, text out, on top of the id-only engine.

Owns the three text-level concerns of generation: turning a prompt into ids the way the
checkpoint expects (a document for a base model, a chat turn for an assistant), stop strings,
and incremental decoding for streaming (never emitting half a UTF-8 character, and holding back
text that might be the start of a stop string).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from gptkit.engine import SamplingParams
from gptkit.engine import generate as generate_ids
from gptkit.tokenizer import render_chat


@dataclass
class TextResult:
    text: str
    tokens: list[int]
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int
    seconds: float


def prompt_ids(tokenizer, kind: str, prompt: str | list[dict]) -> list[int]:
    """A base model continues a document; an assistant (or policy) answers a chat."""
    if isinstance(prompt, list):
        return render_chat(tokenizer, prompt, add_generation_prompt=True)[0]
    if kind == "base":
        return tokenizer.encode_document(prompt)
    return render_chat(tokenizer, [{"role": "user", "content": prompt}], add_generation_prompt=True)[0]


def stop_ids_for(tokenizer) -> tuple[int, ...]:
    """End of turn for assistants, end of document for base models: either ends a generation."""
    return (tokenizer.end_id, tokenizer.bos_id)


def cut_at_stop(text: str, stop_strings: tuple[str, ...]) -> tuple[str, bool]:
    """(text before the earliest stop string, whether one was found)."""
    cut = min((i for i in (text.find(s) for s in stop_strings if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _held_back(text: str, stop_strings: tuple[str, ...]) -> int:
    """How many trailing characters could still grow into a stop string."""
    hold = 0
    for s in stop_strings:
        for n in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:n]):
                hold = max(hold, n)
                break
    return hold


def generate_text(
    model,
    tokenizer,
    ids: list[int],
    params: SamplingParams,
    *,
    num_samples: int = 1,
    stop_strings: tuple[str, ...] = (),
    on_text: Callable[[int, str], None] | None = None,
) -> list[TextResult]:
    """Generate `num_samples` continuations of `ids` in lock-step; `on_text(row, delta)` streams."""
    stop_strings = tuple(s for s in stop_strings if s)
    emitted = [0] * num_samples
    stopped = [False] * num_samples

    def decoded(tokens: list[int]) -> str:
        text = tokenizer.decode(tokens)
        return text[:-1] if text.endswith("\ufffd") else text  # wait for the rest of a UTF-8 character

    def should_stop(row: int, tokens: list[int]) -> bool:
        if not stop_strings:
            return False
        text, found = cut_at_stop(decoded(tokens), stop_strings)
        stopped[row] = found
        return found

    # Never an empty answer: asked "...France?", a base model most often ends the document right
    # there (as the last question of a quiz sheet does); one token in, it shows what it would add.
    params = replace(params, min_new_tokens=max(1, params.min_new_tokens))
    rows: list[list[int]] = [[] for _ in range(num_samples)]
    reasons = ["length"] * num_samples
    start = time.perf_counter()
    stop_ids = stop_ids_for(tokenizer)
    for step in generate_ids(model, ids, params, n_vocab=tokenizer.n_vocab, num_samples=num_samples,
                         stop_ids=stop_ids, should_stop=should_stop if stop_strings else None):
        for r, t in enumerate(step):
            if t is None:
                continue
            if t in stop_ids:
                reasons[r] = "stop"
                continue
            rows[r].append(t)
            if on_text is not None:
                text, found = cut_at_stop(decoded(rows[r]), stop_strings)
                upto = len(text) if found else len(text) - _held_back(text, stop_strings)
                if upto > emitted[r]:
                    on_text(r, text[emitted[r]:upto])
                    emitted[r] = upto
    seconds = time.perf_counter() - start
    results = []
    for r in range(num_samples):
        text, found = cut_at_stop(tokenizer.decode(rows[r]), stop_strings)
        if on_text is not None and len(text) > emitted[r]:
            on_text(r, text[emitted[r]:])
        reason = "stop" if found or stopped[r] else reasons[r]
        results.append(TextResult(text=text, tokens=rows[r], finish_reason=reason, prompt_tokens=len(ids), seconds=seconds))
    return results


def generate(ckpt, prompts, params: SamplingParams, *, k: int = 1, seeds=None, stop: tuple[str, ...] = (),
             on_text=None, as_document: bool | None = None) -> list[list[TextResult]]:
    """Per prompt, k TextResults (one prompt at a time; the batched engine replaces this)."""
    seeds = list(seeds) if seeds is not None else [params.seed] * len(prompts)
    out = []
    for i, prompt in enumerate(prompts):
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], int):
            ids = prompt
        else:
            ids = prompt_ids(ckpt.tokenizer, "base" if as_document else ckpt.kind, prompt)
        results = generate_text(ckpt.model, ckpt.tokenizer, ids, replace(params, seed=seeds[i]), num_samples=k,
                                stop_strings=stop)
        for r in results:
            r.prompt_truncated = max(0, len(ids) - (ckpt.model.config.block_size - min(params.max_new_tokens, ckpt.model.config.block_size // 2)))
        out.append(results)
    return out
