"""Held-out evaluation of a checkpoint on toy-world tasks: ask, score, count.

A base model is asked in the toy world's answer-key form ("Q: ...\\nA:", stopping at the end of
the line), an assistant or policy in a chat turn; answers are judged against the task's exact
answer by `prompting.answers.answer_is_right`. All questions of a call are generated together
(`textgen.generate` batches them). Used by the quickstart and the feedback demo so both report
the same figure the same way.
"""

from gptkit.prompting.answers import answer_is_right, answer_region  # noqa: F401 (answer_region: re-exported)


def is_correct(task, output: str) -> bool:
    """Right when the output's answer region gives the task's exact answer (`answer_is_right`)."""
    return answer_is_right(output, task.answer)


def ask(ckpt, questions: list[str], *, as_document: bool, max_tokens: int = 64, seed: int = 0,
        stop: tuple[str, ...] = (), temperature: float = 0.0) -> list[str]:
    """One answer per question (greedy unless a temperature is given, then seeded): document
    continuations, or chat replies."""
    from gptkit.engine import SamplingParams
    from gptkit.textgen import generate

    params = SamplingParams(temperature=temperature, top_k=40 if temperature else None, max_new_tokens=max_tokens,
                            seed=seed)
    return [results[0].text for results in generate(ckpt, questions, params, stop=stop, as_document=as_document)]


def heldout_accuracy(ckpt, tasks, *, max_tokens: int | None = None, lang: str = "en") -> dict[str, list[int]]:
    """{kind: [correct, total]}; base models see the toy world's answer-key format (its
    `QA_LABELS`: "Q: ...\nA:" in both languages), assistants a chat."""
    from gptkit.data.world import world

    if ckpt.kind == "base":
        # answer keys put each answer on the A: line, so the first newline ends it
        q, a = world(lang).QA_LABELS
        outputs = ask(ckpt, [f"{q}: {task.question}\n{a}:" for task in tasks], as_document=True,
                      max_tokens=max_tokens or 72, stop=("\n",))
    else:
        outputs = ask(ckpt, [task.question for task in tasks], as_document=False, max_tokens=max_tokens or 96)
    scores: dict[str, list[int]] = {}
    for task, output in zip(tasks, outputs):
        cell = scores.setdefault(task.kind, [0, 0])
        cell[0] += is_correct(task, output)
        cell[1] += 1
    return scores


def question_rate(ckpt, questions: list[str], lang: str = "en") -> float:
    """Share of bare questions the model 'answers' with more questions (toyworld.is_question_like)."""
    from gptkit.data.world import world

    is_question_like = world(lang).is_question_like

    as_document = ckpt.kind == "base"
    outputs = ask(ckpt, [q + "\n" if as_document else q for q in questions], as_document=as_document, max_tokens=48)
    return sum(map(is_question_like, outputs)) / max(1, len(questions))
