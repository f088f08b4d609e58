"""Experiments: templates x checkpoints x cases -> scored, logged results.

Owns: test cases (read from YAML or JSONL with file:line:field errors, or taken from the toy
world's held-out tasks), rendering a template the way a checkpoint reads it (a document for a
base model, a chat for an assistant or policy), answering one case (generate, extract, vote),
and running the whole matrix: every row goes to the logbook the moment it exists, and the
result comes back as rows plus an accuracy summary per template x checkpoint; `write_results`
saves them as JSONL or CSV.

Contract:
- One case is answered with ONE generation call: k samples decoded in lock-step from one
  prefill (k = `samples`, else the template's self_consistency.samples, else 1). k = 1 uses
  the template's sampling (greedy by default); k > 1 samples at the template's self-consistency
  temperature (or its sampling temperature when > 0, else `SC_DEFAULT_TEMPERATURE`).
- Seeds: the sampling seed of case i is `case_seed(seed, i)`, a hash of the experiment seed and
  the case's index alone, so a cell's result never depends on which other templates,
  checkpoints or cases ran before it, and the same seed reproduces a run exactly.
- `expected` is normalised with the template's normalisations before exact/contains scoring
  (for regex scoring it is the pattern, untouched).

Must not know: Click, Rich, or the terminal (the CLI prints; `on_result` reports progress).
Torch is imported only when something is generated, so importing this module stays cheap.
It runs past ~400 lines because case files get the same file:line:field errors as templates;
that validation is a third of the module and belongs with the only code that reads cases.
"""

import csv
import difflib
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


from gptkit.checkpoint import GENERATIVE_KINDS, Checkpoint
from gptkit.errors import DataError, TemplateError, UsageError
from gptkit.prompting.answers import (
    SCORE_METHODS,
    Vote,
    compile_user_regex,
    extract_answer,
    majority_vote,
    normalize_answer,
    score,
)
from gptkit.data.text import iter_jsonl
from gptkit.files import atomic_writer, excerpt, parse_yaml, read_text
from gptkit.prompting.templates import (
    Template,
    load_template,
    render_base,
    render_chat_messages,
    render_prompt,
    required_variables,
)

SC_DEFAULT_TEMPERATURE = 0.7  # --samples K on a greedy template: Wang et al. sample at 0.5-0.7
CASE_KEYS = ("id", "question", "vars", "expected", "kind")
RESULT_SUFFIXES = (".jsonl", ".csv")
MAX_CASES_BYTES = 64 << 20  # a YAML case file is read whole and composed node by node


# ---- cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    variables: dict[str, str]  # the template's {variables}; "question" for the usual one
    expected: str
    kind: str | None = None
    source: str | None = None  # "file:line", for error messages


def load_cases(spec: str | Path, *, kind: str | None = None, limit: int | None = None) -> list[Case]:
    """Cases from `toyworld`, `toyworld:KIND` (or `toyworld-ja`, `toyworld-ja:KIND`: the same
    world in Japanese), a .yaml/.yml file or a .jsonl file; then only those of `kind` (when
    given), then the first `limit`."""
    from gptkit.data import world

    text = str(spec)
    named = world.parse(text)
    if named:
        lang, kind_in_spec = named
        cases = toyworld_cases(lang)
        if kind_in_spec:
            cases = _of_kind(cases, kind_in_spec, text)
    else:
        cases = _read_case_file(Path(spec))
    if kind is not None:
        cases = _of_kind(cases, kind, text)
    return cases[:limit] if limit is not None else cases


def toyworld_cases(lang: str = "en") -> list[Case]:
    """The toy world's held-out eval tasks, kinds interleaved (capital, age, arithmetic, two-hop,
    hop-1, hop-2, capital, ...) so that the first N cases cover every kind evenly."""
    from gptkit.data.world import spec_for, world

    toyworld, name = world(lang), spec_for(lang)
    by_kind: dict[str, list] = {}
    for task in toyworld.eval_tasks() + toyworld.reasoning_tasks():
        by_kind.setdefault(task.kind, []).append(task)
    cases = []
    for n in range(max((len(tasks) for tasks in by_kind.values()), default=0)):
        for kind, tasks in by_kind.items():
            if n < len(tasks):
                cases.append(Case(id=f"{kind}-{n + 1}", variables={"question": tasks[n].question},
                                  expected=tasks[n].answer, kind=kind, source=f"{name} {kind} #{n + 1}"))
    return cases


def _of_kind(cases: list[Case], kind: str, spec: str) -> list[Case]:
    kept = [c for c in cases if c.kind == kind]
    if not kept:
        kinds = sorted({c.kind for c in cases if c.kind})
        raise UsageError(f"{spec}: no cases of kind '{kind}'"
                         + (f" (kinds here: {', '.join(kinds)})" if kinds else " (its cases have no kind field)"))
    return kept


def _read_case_file(path: Path) -> list[Case]:
    if path.suffix not in (".yaml", ".yml", ".jsonl"):
        raise UsageError(f"{path}: cases must be `toyworld`, `toyworld:KIND`, `toyworld-ja[:KIND]`, a .yaml/.yml or a .jsonl file")
    if path.suffix == ".jsonl":
        items = [(item, line) for line, item in iter_jsonl(path)]
    else:
        items = _yaml_items(read_text(path, max_bytes=MAX_CASES_BYTES), path)
    cases, seen = [], {}
    for position, (item, line) in enumerate(items, start=1):
        case = _case_from_item(item, position, path, line)
        if case.id in seen:
            raise DataError(f"duplicate id {excerpt(case.id)} (first on line {seen[case.id]})", path=path, line=line, field="id")
        seen[case.id] = line
        cases.append(case)
    if not cases:
        raise DataError("no cases in the file", path=path)
    return cases


def _yaml_items(text: str, path: Path) -> list[tuple[object, int]]:
    """(item, line) for each entry of the top-level list."""
    data, root = parse_yaml(text, path=path)
    if data is None:
        return []
    if not isinstance(data, list):
        raise DataError("expected a list of cases (- question: ...  expected: ...) at the top level",
                        path=path, line=root.start_mark.line + 1)
    return [(item, node.start_mark.line + 1) for item, node in zip(data, root.value)]


def _case_text(value, path: Path, line: int, field_name: str) -> str:
    # Numbers are welcome where a person naturally writes them (expected: 16); YAML's true/false are not.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        got = "empty text" if isinstance(value, str) else type(value).__name__
        raise DataError(f"expected non-empty text, got {got}", path=path, line=line, field=field_name)
    return value.strip()


def _case_from_item(item, position: int, path: Path, line: int) -> Case:
    if not isinstance(item, dict):
        raise DataError(f"expected a mapping with question (or vars) and expected, got {type(item).__name__}",
                        path=path, line=line)
    for key in item:
        if key not in CASE_KEYS:
            close = difflib.get_close_matches(str(key), CASE_KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(CASE_KEYS)}"
            raise DataError(f"unknown key ({hint})", path=path, line=line, field=str(key))
    raw_vars = item.get("vars") or {}
    if not isinstance(raw_vars, dict):
        raise DataError(f"expected a mapping of variable names to text, got {type(raw_vars).__name__}",
                        path=path, line=line, field="vars")
    variables = {}
    for name, value in raw_vars.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise DataError(f"{excerpt(name)} is not a variable name", path=path, line=line, field="vars")
        variables[name] = _case_text(value, path, line, f"vars.{name}")
    if item.get("question") is not None:
        if "question" in variables:
            raise DataError("given twice: as question and as vars.question", path=path, line=line, field="question")
        variables["question"] = _case_text(item["question"], path, line, "question")
    if not variables:
        raise DataError("missing; give question (or vars)", path=path, line=line, field="question")
    if item.get("expected") is None:
        raise DataError("missing; expected text (the right answer)", path=path, line=line, field="expected")
    case_id = _case_text(item["id"], path, line, "id") if item.get("id") is not None else str(position)
    kind = _case_text(item["kind"], path, line, "kind") if item.get("kind") is not None else None
    return Case(id=case_id, variables=variables, expected=_case_text(item["expected"], path, line, "expected"),
                kind=kind, source=f"{path}:{line}")


def check_cases(templates: Sequence[Template], cases: Sequence[Case], score_method: str = "exact") -> None:
    """Fail before any generation when a case cannot run: a template variable it lacks, or a
    regex `expected` that does not compile."""
    if score_method not in SCORE_METHODS:
        raise UsageError(f"unknown scoring method {excerpt(score_method)}; expected one of: {', '.join(SCORE_METHODS)}")
    for case in cases:
        if not case.expected.strip():
            raise DataError(f"case {case.id}: expected answer is empty", path=case.source, field="expected")
        for t in templates:
            missing = sorted(required_variables(t) - set(t.variables) - set(case.variables))
            if missing:
                raise DataError(f"case {case.id}: template '{t.name}' needs variable '{missing[0]}'; give it in vars",
                                path=case.source, field="vars")
        if score_method == "regex":
            compile_user_regex(case.expected, field="expected", path=case.source)


# ---- rendering and answering one case --------------------------------------------------------


@dataclass(frozen=True)
class RenderedPrompt:
    prompt: str | list[dict]  # the document (base) or chat messages (assistant, policy)
    ids: list[int]  # exactly what the model reads
    text: str  # the ids decoded, special tokens written out


def render_for(t: Template, kind: str, tokenizer, variables: dict[str, str]) -> RenderedPrompt:
    """`t` filled with `variables`, rendered the way a checkpoint of `kind` reads it."""
    from gptkit.textgen import prompt_ids

    assert kind in GENERATIVE_KINDS, f"cannot prompt a {kind} checkpoint"
    prompt = render_base(t, variables) if kind == "base" else render_chat_messages(t, variables)
    ids = prompt_ids(tokenizer, kind, prompt)
    return RenderedPrompt(prompt=prompt, ids=ids, text=tokenizer.decode(ids))


def case_seed(seed: int, index: int) -> int:
    """The sampling seed of case `index`: a pure function of the two, < 2**63 (torch and SQLite)."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def sampling_for(t: Template, samples: int | None = None) -> dict:
    """The settings one case is answered with: samples (k), temperature, top_k, top_p,
    max_tokens, stop. See the module docstring for how k and the temperature are chosen."""
    k = samples if samples is not None else (t.sc_samples or 1)
    assert k >= 1, f"samples must be >= 1, got {k}"
    temperature = t.sampling["temperature"]
    if k > 1:
        temperature = t.sc_temperature or (temperature if temperature > 0 else SC_DEFAULT_TEMPERATURE)
    return {"samples": k, "temperature": temperature, "top_k": t.sampling["top_k"], "top_p": t.sampling["top_p"],
            "max_tokens": t.sampling["max_tokens"], "stop": list(t.stop)}


@dataclass(frozen=True)
class SampledVote(Vote):
    """A majority vote together with the samples it counted."""

    texts: tuple[str, ...] = ()  # every sample, in the engine's row order
    answers: tuple[str | None, ...] = ()  # the answer extracted from each sample (None: none found)
    prompt_truncated: int = 0  # prompt tokens dropped from the front to fit the model's context

    @property
    def representative(self) -> str:
        """The first sample that gave the winning answer (the first sample when none did)."""
        for text, answer in zip(self.texts, self.answers):
            if answer is not None and answer == self.answer:
                return text
        return self.texts[0] if self.texts else ""


def answer_case(ckpt: Checkpoint, t: Template, variables: dict[str, str], *, settings: dict,
                seed: int | None) -> SampledVote:
    """Generate `settings["samples"]` answers in one lock-step batch, extract each, vote."""
    return answer_cases(ckpt, t, [variables], settings=settings, seeds=[seed])[0]


def answer_cases(ckpt: Checkpoint, t: Template, variables: Sequence[dict[str, str]], *, settings: dict,
                 seeds: Sequence[int | None]) -> list[SampledVote]:
    """`answer_case` for many cases at once: the engine decodes them together, each case with
    its own seed, so every case's answers are the ones it would get alone."""
    from gptkit.engine import SamplingParams
    from gptkit.textgen import generate

    prompts = [render_for(t, ckpt.kind, ckpt.tokenizer, v).ids for v in variables]
    params = SamplingParams(temperature=settings["temperature"], top_k=settings["top_k"], top_p=settings["top_p"],
                            max_new_tokens=settings["max_tokens"])
    votes = []
    for results in generate(ckpt, prompts, params, k=settings["samples"], seeds=list(seeds),
                            stop=tuple(settings["stop"])):
        texts = tuple(r.text for r in results)
        answers = tuple(extract_answer(text, t.answer_regex, t.normalize) for text in texts)
        vote = majority_vote(list(answers))
        votes.append(SampledVote(**asdict(vote), texts=texts, answers=answers,
                                 prompt_truncated=results[0].prompt_truncated))
    return votes


def expected_for(t: Template, expected: str, score_method: str) -> str:
    """`expected` as the extracted answer is compared with it. A normalisation that erases it
    (number on "Paris") leaves it as written: the case then scores wrong instead of stopping
    the run, which is the truth about that template on that case."""
    if score_method == "regex":
        return expected
    return normalize_answer(expected, t.normalize).strip() or expected.strip()


# ---- the experiment --------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultRow:
    experiment_id: str
    template: str
    checkpoint: str
    kind: str  # the checkpoint's kind
    case_id: str
    case_index: int
    question: str  # the template's prompt with the case's variables filled in
    expected: str  # as compared (normalised like the answers)
    extracted: str | None  # the voted answer
    correct: bool
    agreement: float
    votes: list  # [[answer, count], ...], most votes first
    answers: list  # one extracted answer (or None) per sample
    outputs: list  # one generated text per sample
    output: str  # the sample shown for this row (the first that gave the voted answer)
    seed: int
    settings: dict
    prompt_truncated: int = 0  # prompt tokens the model never saw (the prompt did not fit its context)

    def to_dict(self) -> dict:
        return asdict(self)


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% (z = 1.96) Wilson score interval for a proportion: unlike p +- z*se it stays inside
    [0, 1] and is honest at 0/n and n/n, which small evaluations hit often."""
    if total == 0:
        return 0.0, 1.0
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z / (1 + z * z / total) * (p * (1 - p) / total + z * z / (4 * total * total)) ** 0.5
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class CellSummary:
    template: str
    checkpoint: str
    correct: int
    total: int
    no_answer: int  # rows where no sample had an extractable answer
    mean_agreement: float
    samples: int
    unreadable: float = 0.0  # share of all samples whose answer could not be read
    truncated: int = 0  # rows whose prompt did not fit the model's context (front cut off)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.total)

    def to_dict(self) -> dict:
        low, high = self.interval
        return {**asdict(self), "accuracy": self.accuracy, "low": low, "high": high}


@dataclass
class ExperimentResult:
    experiment_id: str
    rows: list[ResultRow] = field(default_factory=list)
    summary: list[CellSummary] = field(default_factory=list)


def summarize(rows: Sequence[ResultRow], samples: int | None = None) -> list[CellSummary]:
    """One summary per template x checkpoint, in the order their first rows appear.

    With `samples` = k, each row is re-voted over its first k answers: the engine's samples are
    nested (sample j never depends on how many were drawn), so this is exactly what a run with
    `--samples k` gives, at no extra cost.
    """
    cells: dict[tuple[str, str], list[ResultRow]] = {}
    for row in rows:
        cells.setdefault((row.template, row.checkpoint), []).append(row)
    summary = []
    for (t, c), group in cells.items():
        votes = [majority_vote(r.answers[:samples]) for r in group]  # [:None] is every answer
        answers = [a for r in group for a in r.answers[:samples]]
        summary.append(CellSummary(
            template=t, checkpoint=c, total=len(group),
            correct=sum(score(v.answer, r.expected, r.settings["score"]) for v, r in zip(votes, group)),
            no_answer=sum(v.answer is None for v in votes), mean_agreement=sum(v.agreement for v in votes) / len(group),
            samples=samples or max(r.settings["samples"] for r in group),
            unreadable=sum(a is None for a in answers) / max(1, len(answers)),
            truncated=sum(r.prompt_truncated > 0 for r in group)))
    return summary


def _unique_names(names: list[str], what: str) -> None:
    for i, name in enumerate(names):
        if name in names[:i]:
            raise UsageError(f"{what} '{name}' given twice")


def _checkpoints(specs, device: str) -> list[Checkpoint]:
    from gptkit.checkpoint import load_checkpoint

    loaded, dc = [], None
    for spec in specs:
        if isinstance(spec, Checkpoint):
            if spec.kind not in GENERATIVE_KINDS:
                raise UsageError(f"{spec.name}: is a {spec.kind} checkpoint; expected {' or '.join(GENERATIVE_KINDS)}")
            loaded.append(spec)
            continue
        if dc is None:
            from gptkit.device import pick_device

            dc = pick_device(device)
        loaded.append(load_checkpoint(spec, device=dc.device, kinds=GENERATIVE_KINDS, dtype=dc.dtype))
    return loaded


def run_experiment(
    templates: Sequence[Template | str | Path],
    checkpoints: Sequence[Checkpoint | str | Path],
    cases: Sequence[Case],
    *,
    samples: int | None = None,
    seed: int = 0,
    score_method: str = "exact",
    on_result: Callable[[ResultRow], None] | None = None,
    logbook=None,
    device: str = "auto",
    vote_at: Sequence[int] = (),
) -> ExperimentResult:
    """Answer every case with every template on every checkpoint; score and log each row.

    Templates may be given as Template objects, names or paths; checkpoints as loaded
    Checkpoints or specs (loaded once each, on `device`). `samples` overrides every template's
    sample count. Rows go to `logbook` (default: the user's logbook) as they are produced, and
    to `on_result` (for progress) right after. Order: checkpoint, then template, then case.
    `vote_at` adds, for each voted cell, its summary at each smaller k (`summarize`).
    """
    templates = [t if isinstance(t, Template) else load_template(t) for t in templates]
    cases = list(cases)
    if not templates or not checkpoints or not cases:
        raise UsageError("an experiment needs at least one template, one checkpoint and one case")
    if samples is not None and samples < 1:
        raise UsageError(f"samples must be at least 1, got {samples}")
    _unique_names([t.name for t in templates], "template")
    _unique_names([c.id for c in cases], "case id")
    check_cases(templates, cases, score_method)
    checkpoints = _checkpoints(checkpoints, device)
    _unique_names([c.name for c in checkpoints], "checkpoint")

    from gptkit.store import open_logbook

    book = open_logbook() if logbook is None else logbook
    result = ExperimentResult(experiment_id=uuid.uuid4().hex)
    try:
        for ckpt in checkpoints:
            for t in templates:
                settings = {**sampling_for(t, samples), "score": score_method, "experiment_seed": seed}
                for row in _run_cell(result.experiment_id, ckpt, t, cases, settings, seed):
                    book.log_experiment_result(
                        experiment_id=row.experiment_id, output=row.output, checkpoint=row.checkpoint,
                        template=row.template, case_id=row.case_id, question=row.question, expected=row.expected,
                        extracted=row.extracted, correct=row.correct, agreement=row.agreement, seed=row.seed,
                        votes={"counts": row.votes, "answers": row.answers, "outputs": row.outputs},
                        settings=row.settings)
                    result.rows.append(row)
                    if on_result is not None:
                        on_result(row)
    finally:
        if logbook is None:
            book.close()
    result.summary = summarize(result.rows)
    if vote_at:  # each voted cell at every smaller k first, then at the run's own k
        cells = []
        for full in result.summary:
            group = [r for r in result.rows if (r.template, r.checkpoint) == (full.template, full.checkpoint)]
            cells += [summarize(group, k)[0] for k in sorted(set(vote_at)) if k < full.samples]
            cells.append(full)
        result.summary = cells
    return result


def _run_cell(experiment_id: str, ckpt: Checkpoint, t: Template, cases: Sequence[Case], settings: dict,
              seed: int) -> list[ResultRow]:
    """Every case of one template x checkpoint cell, generated together (`answer_cases`)."""
    questions = []
    for case in cases:
        try:
            questions.append(render_prompt(t, case.variables))
        except TemplateError as err:  # check_cases makes this rare; name the case all the same
            raise DataError(f"case {case.id}: {err}", path=case.source) from None
    seeds = [case_seed(seed, index) for index in range(len(cases))]
    votes = answer_cases(ckpt, t, [case.variables for case in cases], settings=settings, seeds=seeds)
    rows = []
    for index, (case, question, vote) in enumerate(zip(cases, questions, votes)):
        expected = expected_for(t, case.expected, settings["score"])
        rows.append(ResultRow(
            experiment_id=experiment_id, template=t.name, checkpoint=ckpt.name, kind=ckpt.kind, case_id=case.id,
            case_index=index, question=question, expected=expected, extracted=vote.answer,
            correct=score(vote.answer, expected, settings["score"]), agreement=vote.agreement,
            votes=[list(pair) for pair in vote.counts], answers=list(vote.answers), outputs=list(vote.texts),
            output=vote.representative, seed=seeds[index], settings=settings, prompt_truncated=vote.prompt_truncated))
    return rows


# ---- writing results -------------------------------------------------------------------------

CSV_COLUMNS = ("experiment_id", "template", "checkpoint", "kind", "case_id", "case_index", "question", "expected",
               "extracted", "correct", "agreement", "output", "seed", "votes", "answers", "outputs", "settings",
               "prompt_truncated")


def check_results_path(path: Path) -> None:
    """Refuse an output path whose format we cannot write, before any work is done."""
    if Path(path).suffix.lower() not in RESULT_SUFFIXES:
        raise UsageError(f"--out {path}: expected a .jsonl or .csv file name")


def write_results(result: ExperimentResult, path: Path) -> int:
    """Write the rows as JSONL (one object per row) or CSV (lists and settings as JSON text),
    chosen by the suffix; returns the number of rows."""
    path = Path(path)
    check_results_path(path)
    rows = [row.to_dict() for row in result.rows]
    with atomic_writer(path, newline="") as fp:
        if path.suffix.lower() == ".jsonl":
            fp.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        else:
            writer = csv.DictWriter(fp, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({key: json.dumps(row[key], ensure_ascii=False)
                                 if isinstance(row[key], (list, dict)) else row[key] for key in CSV_COLUMNS})
    return len(rows)
