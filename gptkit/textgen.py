"""Text in, text out, on top of the id-only engine: THE way text is generated from a checkpoint.

`generate(ckpt, prompts, params, k=...)` is what every caller with a checkpoint uses (the CLI,
the API, chat, ranking, experiments), so defaults cannot drift between them. It owns the three
text-level concerns of generation: turning a prompt into ids the way the checkpoint expects (a
document for a base model, a chat turn for an assistant), stop strings, and incremental decoding
for streaming (never emitting half a UTF-8 character, and holding back text that might be the
start of a stop string). Many prompts go to the engine as one call, which batches them.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from gptkit.engine import SamplingParams, generate_many, pick_seed
from gptkit.tokenizer import render_chat

Prompt = str | list[dict] | list[int]  # text, chat messages, or token ids used as they are


@dataclass
class TextResult:
    text: str
    tokens: list[int]
    finish_reason: str  # "stop" | "length" ("interrupted": chat's Ctrl-C)
    prompt_tokens: int  # the rendered prompt's length
    seconds: float  # wall time of the whole call that produced it
    prompt_truncated: int = 0  # of prompt_tokens, how many were dropped from the front to fit the context
    seed: int | None = None  # the seed its prompt's samples were drawn with


def prompt_ids(tokenizer, kind: str, prompt: str | list[dict]) -> list[int]:
    """A base model continues a document; an assistant (or policy) answers a chat."""
    if isinstance(prompt, list):
        return render_chat(tokenizer, prompt, add_generation_prompt=True)[0]
    if kind == "base":
        return tokenizer.encode_document(prompt)
    return render_chat(tokenizer, [{"role": "user", "content": prompt}], add_generation_prompt=True)[0]


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


def render_prompt(ckpt, prompt: Prompt, as_document: bool | None = None) -> list[int]:
    """The ids `generate` feeds the model for `prompt` (see there for `as_document`)."""
    if isinstance(prompt, (list, tuple)) and prompt and all(isinstance(t, int) for t in prompt):
        return list(prompt)
    kind = ckpt.kind if as_document is None else "base" if as_document else "assistant"
    return prompt_ids(ckpt.tokenizer, kind, prompt)


def generate(
    ckpt,
    prompts: Sequence[Prompt],
    params: SamplingParams,
    *,
    k: int = 1,
    seeds: Sequence[int | None] | None = None,
    stop: tuple[str, ...] = (),
    on_text: Callable[[int, int, str], None] | None = None,
    as_document: bool | None = None,
) -> list[list[TextResult]]:
    """k continuations of each prompt, all prompts decoded together: result[i][j] is prompt i's sample j.

    A prompt is a string (a document for a base model, one user turn otherwise; `as_document`
    True makes it a document, False a user turn, whatever the checkpoint), a list of
    {"role", "content"} messages, or a list of token ids used as they are. `seeds[i]` is prompt
    i's seed (default: params.seed for every prompt; None draws one, reported in `.seed`).
    Each text ends before the first of the `stop` strings; `on_text(i, j, delta)` streams.
    """
    ids = [render_prompt(ckpt, p, as_document) for p in prompts]
    return generate_ids(ckpt.model, ckpt.tokenizer, ids, params, k=k, seeds=seeds, stop=stop, on_text=on_text)


def generate_ids(
    model,
    tokenizer,
    prompts: list[list[int]],
    params: SamplingParams,
    *,
    k: int = 1,
    seeds: Sequence[int | None] | None = None,
    stop: tuple[str, ...] = (),
    on_text: Callable[[int, int, str], None] | None = None,
) -> list[list[TextResult]]:
    """`generate` for prompts already rendered to ids, from a model and its tokenizer."""
    assert k >= 1, f"k must be at least 1, got {k}"
    stop = tuple(s for s in stop if s)
    seeds = [pick_seed(params.seed if s is None else s)
             for s in (seeds if seeds is not None else [params.seed] * len(prompts))]
    assert len(seeds) == len(prompts), f"{len(seeds)} seeds for {len(prompts)} prompts"
    end_ids = tokenizer.stop_ids
    streamed: dict[tuple[int, int], list[int]] = {}  # (prompt, sample) -> its tokens so far, when streaming
    emitted: dict[tuple[int, int], int] = {}  # characters already passed to on_text

    def decoded(tokens: list[int]) -> str:
        text = tokenizer.decode(tokens)
        return text[:-1] if text.endswith("\ufffd") else text  # wait for the rest of a UTF-8 character

    def should_stop(i: int, j: int, tokens: list[int]) -> bool:
        return cut_at_stop(decoded(tokens), stop)[1]

    def on_token(i: int, j: int, token: int) -> None:
        if token in end_ids:
            return
        tokens = streamed.setdefault((i, j), [])
        tokens.append(token)
        text, found = cut_at_stop(decoded(tokens), stop)
        upto = len(text) if found else len(text) - _held_back(text, stop)
        if upto > emitted.get((i, j), 0):
            on_text(i, j, text[emitted.get((i, j), 0):upto])
            emitted[(i, j)] = upto

    # Never an empty answer: asked "...France?", a base model most often ends the document right
    # there (as the last question of a quiz sheet does); one token in, it shows what it would add.
    params = replace(params, min_new_tokens=max(1, params.min_new_tokens))
    start = time.perf_counter()
    completions = generate_many(model, prompts, params, n_vocab=tokenizer.n_vocab, num_samples=k, seeds=seeds,
                                stop_ids=end_ids, should_stop=should_stop if stop else None,
                                on_token=on_token if on_text is not None else None)
    seconds = time.perf_counter() - start
    results = []
    for i, (ids, samples) in enumerate(zip(prompts, completions)):
        results.append([])
        for j, c in enumerate(samples):
            text, found = cut_at_stop(tokenizer.decode(c.tokens), stop)
            if on_text is not None and len(text) > emitted.get((i, j), 0):
                on_text(i, j, text[emitted.get((i, j), 0):])
            results[i].append(TextResult(text=text, tokens=c.tokens, finish_reason="stop" if found else c.finish_reason,
                                         prompt_tokens=len(ids), seconds=seconds, prompt_truncated=c.prompt_truncated,
                                         seed=seeds[i]))
    return results


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
    """One prompt's `num_samples` continuations, `on_text(sample, delta)` streaming: `generate_ids`
    for one prompt, kept for the callers that have not moved to `generate` yet."""
    return generate_ids(model, tokenizer, [ids], params, k=num_samples, stop=stop_strings,
                        on_text=None if on_text is None else (lambda _, j, delta: on_text(j, delta)))[0]
