"""Held-out evaluation of a checkpoint on toy-world tasks: ask, score, count.

A base model is asked in the toy world's answer-key form ("Q: ...\\nA:", stopping at the end of
the line), an assistant or policy in a chat turn; answers are judged against the task's exact
answer by `prompting.answers.answer_is_right`. Used by the quickstart and the feedback demo so
both report the same figure the same way.
"""

from gptkit.prompting.answers import answer_is_right


def answer_region(text: str) -> str:
    """The model's answer to one question: up to a blank line or the next 'Q:' line."""
    text = text.strip()
    for cut in ("\n\n", "\nQ:", "\nQ "):
        if cut in text:
            text = text[: text.index(cut)]
    return text.strip()


def is_correct(task, output: str) -> bool:
    """Right when the answer region (see `answer_region`) gives the task's exact answer."""
    return answer_is_right(answer_region(output), task.answer)


def ask(ckpt, question: str, *, as_document: bool, max_tokens: int = 64, seed: int = 0, stop: tuple[str, ...] = (),
        temperature: float = 0.0) -> str:
    """One answer (greedy unless a temperature is given, then seeded): a document continuation, or a chat reply."""
    from gptkit.engine import SamplingParams
    from gptkit.textgen import generate_text, prompt_ids

    if as_document:
        ids = prompt_ids(ckpt.tokenizer, "base", question)
    else:
        ids = prompt_ids(ckpt.tokenizer, ckpt.kind, question)
    params = SamplingParams(temperature=temperature, top_k=40 if temperature else None, max_new_tokens=max_tokens, seed=seed)
    (result,) = generate_text(ckpt.model, ckpt.tokenizer, ids, params, stop_strings=stop)
    return result.text


def heldout_accuracy(ckpt, tasks, *, max_tokens: int | None = None) -> dict[str, list[int]]:
    """{kind: [correct, total]}; base models see the toy world's Q:/A: format, assistants a chat."""
    scores: dict[str, list[int]] = {}
    for task in tasks:
        if ckpt.kind == "base":
            # answer keys put each answer on the A: line, so the first newline ends it
            output = ask(ckpt, f"Q: {task.question}\nA:", as_document=True, max_tokens=max_tokens or 72, stop=("\n",))
        else:
            output = ask(ckpt, task.question, as_document=False, max_tokens=max_tokens or 96)
        cell = scores.setdefault(task.kind, [0, 0])
        cell[0] += is_correct(task, output)
        cell[1] += 1
    return scores


def question_rate(ckpt, questions: list[str]) -> float:
    """Share of bare questions the model 'answers' with more questions (toyworld.is_question_like)."""
    from gptkit.data.toyworld import is_question_like

    as_document = ckpt.kind == "base"
    hits = sum(is_question_like(ask(ckpt, q + "\n" if as_document else q, as_document=as_document, max_tokens=48))
               for q in questions)
    return hits / max(1, len(questions))
