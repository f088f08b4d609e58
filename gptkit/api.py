"""gptkit from Python: the functions the command line uses, for notebooks and scripts.

    from gptkit import api

    ckpt = api.load("assistant")                          # a name, NAME:STEP or a folder
    prompt = api.render("few-shot", ckpt, question="What is the capital of Peru?")
    print(prompt.text, len(prompt.ids))                   # exactly what the model reads
    print(api.generate(ckpt, "What is 2 + 3?", temperature=0, max_tokens=16))
    v = api.vote(ckpt, "self-consistency", k=8, question="What is 23 + 45?")
    print(v.answer, v.agreement, v.counts)                # majority answer and its share
    cases = api.load_cases("toyworld:capital", limit=3)   # or a .yaml/.jsonl file of cases
    result = api.run_experiment(["few-shot", "plain"], [ckpt], cases, seed=0)
    print([(c.template, c.correct, c.total) for c in result.summary])   # rows are logged

Contract: every function returns plain data (strings, lists, dataclasses), raises the typed
errors of `gptkit.errors` for anything a caller can get wrong. `run_experiment` writes every
row to the logbook, as `gptkit prompt run` does; `generate` and `vote` write nothing.
Importing this module does not import torch: torch loads on the first call that needs a model.
"""

from pathlib import Path

from gptkit.checkpoint import Checkpoint
from gptkit.errors import GptkitError, UsageError
from gptkit.prompting.answers import Vote
from gptkit.prompting.experiment import (
    Case,
    ExperimentResult,
    RenderedPrompt,
    ResultRow,
    SampledVote,
    load_cases,
    run_experiment,
    write_results,
)
from gptkit.prompting.templates import Template, list_templates, load_template

__all__ = [
    "Case", "Checkpoint", "ExperimentResult", "GptkitError", "RenderedPrompt", "ResultRow", "SampledVote",
    "Template", "Vote", "generate", "list_templates", "load", "load_cases", "load_template", "render",
    "run_experiment", "vote", "write_results",
]


def load(spec: str | Path, device: str = "auto") -> Checkpoint:
    """A checkpoint that can generate (base, assistant or policy), ready on `device`
    ("auto": CUDA, then MPS, then CPU)."""
    from gptkit.checkpoint import load_checkpoint
    from gptkit.device import pick_device
    from gptkit.prompting.experiment import GENERATIVE_KINDS

    dc = pick_device(device)
    return load_checkpoint(spec, device=dc.device, kinds=GENERATIVE_KINDS, dtype=dc.dtype)


def _template(template: Template | str | Path) -> Template:
    return template if isinstance(template, Template) else load_template(template)


def render(template: Template | str | Path, checkpoint: Checkpoint, **variables: str) -> RenderedPrompt:
    """`template` with `variables` filled, rendered as `checkpoint` reads it: `.prompt` (a document
    for a base model, chat messages for an assistant), `.ids` (the exact token ids) and `.text`
    (those ids decoded, special tokens written out)."""
    from gptkit.prompting.experiment import render_for

    return render_for(_template(template), checkpoint.kind, checkpoint.tokenizer, variables)


def generate(
    checkpoint: Checkpoint,
    prompt: str | list[dict] | RenderedPrompt,
    *,
    n: int = 1,
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    max_tokens: int = 128,
    seed: int | None = None,
    stop: tuple[str, ...] | list[str] = (),
) -> list[str]:
    """`n` continuations of `prompt`, decoded in lock-step from one prefill (temperature 0: greedy).

    A string is a document for a base model and one user turn for an assistant; a list of
    {"role", "content"} messages is a chat; a RenderedPrompt (from `render`) is used as is.
    Each text ends before the first of the `stop` strings.
    """
    from gptkit.engine import SamplingParams
    from gptkit.textgen import generate as generate_texts

    if n < 1:
        raise UsageError(f"n must be at least 1, got {n}")
    params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p, max_new_tokens=max_tokens, seed=seed)
    (results,) = generate_texts(checkpoint, [prompt.ids if isinstance(prompt, RenderedPrompt) else prompt], params,
                                k=n, stop=tuple(stop))
    return [r.text for r in results]


def vote(checkpoint: Checkpoint, template: Template | str | Path, k: int | None = None, *,
         seed: int | None = None, **variables: str) -> SampledVote:
    """Self-consistency: `k` answers to `template` (default: its self_consistency.samples, else 1)
    sampled in one lock-step batch, the answer extracted from each, then a majority vote.

    Returns a `Vote` (answer, counts, agreement, n, n_valid) that also holds `.texts` and
    `.answers`, one per sample. `seed` defaults to the template's sampling seed.
    """
    from gptkit.prompting.experiment import answer_case, sampling_for

    if k is not None and k < 1:
        raise UsageError(f"k must be at least 1, got {k}")
    t = _template(template)
    return answer_case(checkpoint, t, variables, settings=sampling_for(t, k),
                       seed=t.sampling["seed"] if seed is None else seed)
