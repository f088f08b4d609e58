"""Experiments: case files and their errors, seeds, lock-step voting, scoring, the logbook,
result files, and the `gptkit prompt` commands (list, show, run)."""

import csv
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptkit.checkpoint import load_checkpoint
from gptkit.errors import DataError, UsageError
from gptkit.prompting.experiment import (
    SC_DEFAULT_TEMPERATURE,
    Case,
    answer_case,
    case_seed,
    check_cases,
    expected_for,
    load_cases,
    render_for,
    run_experiment,
    sampling_for,
    toyworld_cases,
    write_results,
)
from gptkit.prompting.templates import parse_template, render_base, render_chat_messages
from gptkit.store import open_logbook
from gptkit.tokenizer import render_chat

QUICK = """\
name: quick
prompt: "{question}"
sampling: {max_tokens: 4}
"""
QUICK_SC = """\
name: quick-sc
prompt: "{question}"
sampling: {max_tokens: 4}
self_consistency: {samples: 3, temperature: 1.0}
"""
QUESTIONS = ["What is the capital of France?", "What is 2 + 3?", "How old is Ken?"]


def make_cases(expected=("Paris", "5", "12")) -> list[Case]:
    return [Case(id=f"c{i}", variables={"question": q}, expected=e) for i, (q, e) in enumerate(zip(QUESTIONS, expected))]


@pytest.fixture(scope="module")
def loaded(tiny_checkpoints):
    return [load_checkpoint(tiny_checkpoints[kind]) for kind in ("base", "assistant")]


@pytest.fixture(scope="module")
def templates():
    return [parse_template(QUICK), parse_template(QUICK_SC)]


def without_id(result) -> list[dict]:
    return [{k: v for k, v in row.to_dict().items() if k != "experiment_id"} for row in result.rows]


# ---- cases -----------------------------------------------------------------------------------


def test_yaml_and_jsonl_cases_load_with_defaults(tmp_path):
    path = tmp_path / "cases.yaml"
    path.write_text(textwrap.dedent("""\
        - id: france
          question: What is the capital of France?
          expected: Paris
          kind: capital
        - vars: {question: "What is 2 + 3?", name: Ken}
          expected: 5
        - question: "  How old is Ken?  "
          vars: {name: Ken}
          expected: 12.5
    """))
    cases = load_cases(path)
    assert [c.id for c in cases] == ["france", "2", "3"]
    assert cases[0] == Case(id="france", variables={"question": "What is the capital of France?"}, expected="Paris",
                            kind="capital", source=f"{path}:1")
    assert cases[1].variables == {"question": "What is 2 + 3?", "name": "Ken"} and cases[1].expected == "5"
    assert cases[2].variables == {"name": "Ken", "question": "How old is Ken?"} and cases[2].expected == "12.5"
    assert cases[2].source == f"{path}:7"
    assert [c.id for c in load_cases(path, kind="capital")] == ["france"]
    assert [c.id for c in load_cases(path, limit=2)] == ["france", "2"]

    jsonl = tmp_path / "cases.jsonl"
    jsonl.write_text('{"question": "Q1", "expected": "A1"}\n\n{"id": 7, "question": "Q2", "expected": "A2"}\n')
    cases = load_cases(jsonl)
    assert [(c.id, c.variables["question"], c.expected, c.source) for c in cases] == [
        ("1", "Q1", "A1", f"{jsonl}:1"), ("7", "Q2", "A2", f"{jsonl}:3")]


YAML_ERRORS = [
    ("- question: Q\n", 1, "expected", "missing"),
    ("- question: Q\n  expected: A\n- question: Q2\n  expectd: B\n", 3, "expectd", "did you mean 'expected'"),
    ("- question: ''\n  expected: A\n", 1, "question", "non-empty text"),
    ("- question: Q\n  expected: true\n", 1, "expected", "got bool"),
    ("- question: Q\n  expected: A\n  vars: [1, 2]\n", 1, "vars", "mapping"),
    ("- expected: A\n", 1, "question", "give question (or vars)"),
    ("- question: Q\n  vars: {question: Q}\n  expected: A\n", 1, "question", "given twice"),
    ("- id: a\n  question: Q\n  expected: A\n- id: a\n  question: Q\n  expected: A\n", 4, "id", "duplicate id"),
    ("question: Q\nexpected: A\n", 1, None, "expected a list of cases"),
    ("- question: Q\n  expected: [A\n", 3, None, "malformed YAML"),
    ("- just a string\n", 1, None, "expected a mapping"),
]


@pytest.mark.parametrize("text,line,field,message", YAML_ERRORS)
def test_yaml_case_errors_name_file_line_and_field(tmp_path, text, line, field, message):
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        load_cases(path)
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert (err.value.field == field) and message in str(err.value)


@pytest.mark.parametrize("text,line,message", [
    ('{"question": "Q", "expected": "A"}\n{"question": "Q2", "expected": \n', 2, "invalid JSON"),
    ('{"question": "Q", "expected": "A"}\n\n["Q", "A"]\n', 3, "expected a mapping"),
    ('{"question": "Q", "expected": "", "id": 1}\n', 1, "field 'expected': expected non-empty text"),
])
def test_jsonl_case_errors_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "cases.jsonl"
    path.write_text(text)
    with pytest.raises(DataError, match=re.escape(message)) as err:
        load_cases(path)
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_case_sources_that_cannot_work(tmp_path):
    with pytest.raises(UsageError, match="a .yaml/.yml or a .jsonl file"):
        load_cases(tmp_path / "cases.txt")
    with pytest.raises(DataError, match="missing.yaml: no such file"):
        load_cases(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(DataError, match="no cases"):
        load_cases(tmp_path / "empty.yaml")
    (tmp_path / "ok.jsonl").write_text('{"question": "Q", "expected": "A"}\n')
    with pytest.raises(UsageError, match="its cases have no kind field"):
        load_cases(tmp_path / "ok.jsonl", kind="age")


# NEL, LS and PS are line breaks to YAML, and PyYAML's dumper writes them unescaped, so its own
# round trip folds them; they are left out of the YAML leg's alphabet.
case_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x85\u2028\u2029"),
                    min_size=1, max_size=30).filter(lambda s: s.strip())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(case_text, case_text), min_size=1, max_size=5))
def test_any_text_round_trips_through_yaml_and_jsonl(tmp_path, rows):
    items = [{"question": q, "expected": e} for q, e in rows]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(items, allow_unicode=True), encoding="utf-8")
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items),
                                      encoding="utf-8")
    for name in ("c.yaml", "c.jsonl"):
        cases = load_cases(tmp_path / name)
        assert [(c.variables["question"], c.expected) for c in cases] == [(q.strip(), e.strip()) for q, e in rows]


def test_toyworld_cases_interleave_kinds_and_filter():
    from gptkit.data.toyworld import eval_tasks, reasoning_tasks

    cases = toyworld_cases()
    tasks = eval_tasks() + reasoning_tasks()
    assert len(cases) == len(tasks)
    two_hop = load_cases("toyworld:two-hop")
    assert len(two_hop) >= 300 and [c.expected for c in two_hop] == [t.answer for t in tasks if t.kind == "two-hop"]
    kinds = sorted({t.kind for t in tasks})
    assert sorted(c.kind for c in load_cases("toyworld", limit=len(kinds))) == kinds  # every kind in the first N
    age = load_cases("toyworld:age", limit=5)
    assert [c.id for c in age] == [f"age-{i}" for i in range(1, 6)]
    age_tasks = [t for t in tasks if t.kind == "age"][:5]
    assert [(c.variables["question"], c.expected) for c in age] == [(t.question, t.answer) for t in age_tasks]
    assert load_cases("toyworld", kind="age", limit=5) == age
    with pytest.raises(UsageError, match="kinds here: "):
        load_cases("toyworld:weather")


def test_check_cases_fails_before_generating(tmp_path):
    t = parse_template('name: ask\nprompt: "{name}, {question}"\n')
    path = tmp_path / "cases.yaml"
    path.write_text("- question: Q\n  expected: A\n")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:1: field 'vars': case 1: template 'ask' needs variable 'name'"):
        check_cases([t], load_cases(path))
    check_cases([t], [Case(id="1", variables={"question": "Q", "name": "Ken"}, expected="A")])
    with pytest.raises(DataError, match="invalid regular expression"):
        check_cases([t], [Case(id="1", variables={"question": "Q", "name": "K"}, expected="(")], "regex")
    with pytest.raises(DataError, match="case e: expected answer is empty"):
        check_cases([t], [Case(id="e", variables={"question": "Q", "name": "K"}, expected=" ")])
    with pytest.raises(UsageError, match="unknown scoring method"):
        check_cases([t], [], "fuzzy")


# ---- seeds, sampling, expected ---------------------------------------------------------------


@given(seed=st.integers(-2**40, 2**40), index=st.integers(0, 10**6))
def test_case_seed_is_a_pure_function_that_fits_torch_and_sqlite(seed, index):
    assert case_seed(seed, index) == case_seed(seed, index)
    assert 0 <= case_seed(seed, index) < 2**63
    assert case_seed(seed, index) != case_seed(seed, index + 1)
    assert case_seed(seed, index) != case_seed(seed + 1, index)


def test_sampling_for_chooses_k_and_temperature(templates):
    quick, quick_sc = templates
    assert sampling_for(quick) == {"samples": 1, "temperature": 0.0, "top_k": None, "top_p": None, "max_tokens": 4,
                                   "stop": []}
    assert sampling_for(quick_sc)["samples"] == 3 and sampling_for(quick_sc)["temperature"] == 1.0
    assert sampling_for(quick_sc, 1)["temperature"] == 0.0  # one sample: the template's own (greedy) sampling
    assert sampling_for(quick, 5) == {**sampling_for(quick), "samples": 5, "temperature": SC_DEFAULT_TEMPERATURE}
    warm = parse_template('name: warm\nsampling: {temperature: 0.3}\n')
    assert sampling_for(warm, 4)["temperature"] == 0.3


def test_expected_is_normalised_like_the_answers():
    numbers = parse_template("name: n\nanswer: {normalize: [number]}\n")
    lower = parse_template("name: l\nanswer: {normalize: [strip_punct, lower]}\n")
    assert expected_for(numbers, "1,000", "exact") == "1000"
    assert expected_for(lower, " Paris. ", "exact") == "paris"
    assert expected_for(numbers, "Paris", "exact") == "Paris"  # erased by `number`: kept as written, scores wrong
    assert expected_for(lower, "^Par.s$", "regex") == "^Par.s$"  # a pattern is never normalised


# ---- running experiments ---------------------------------------------------------------------


def test_one_batched_generation_per_cell(loaded, templates, monkeypatch):
    """Every case of a template x checkpoint cell is generated in one call (k rows per case)."""
    import gptkit.textgen

    calls = []
    real = gptkit.textgen.generate

    def spy(ckpt, prompts, params, **kwargs):
        calls.append((len(prompts), kwargs["k"]))
        return real(ckpt, prompts, params, **kwargs)

    monkeypatch.setattr(gptkit.textgen, "generate", spy)
    result = run_experiment(templates, loaded[:1], make_cases(), seed=3)
    assert calls == [(3, 1), (3, 3)]
    calls.clear()
    run_experiment(templates[:1], loaded[:1], make_cases()[:1], samples=5)
    assert calls == [(1, 5)]
    sc_rows = [r for r in result.rows if r.template == "quick-sc"]
    assert all(len(r.outputs) == len(r.answers) == 3 for r in sc_rows)


def test_rows_summary_and_logbook(loaded, templates):
    seen = []
    result = run_experiment(templates, loaded, make_cases(), seed=5, on_result=seen.append)
    assert len(result.rows) == 2 * 2 * 3 and seen == result.rows
    assert [(r.checkpoint, r.template, r.case_id) for r in result.rows[:4]] == [
        ("base/step-000001", "quick", "c0"), ("base/step-000001", "quick", "c1"),
        ("base/step-000001", "quick", "c2"), ("base/step-000001", "quick-sc", "c0")]
    assert [(c.template, c.checkpoint, c.total, c.samples) for c in result.summary] == [
        ("quick", "base/step-000001", 3, 1), ("quick-sc", "base/step-000001", 3, 3),
        ("quick", "assistant/step-000001", 3, 1), ("quick-sc", "assistant/step-000001", 3, 3)]
    for row in result.rows:
        assert row.seed == case_seed(5, row.case_index)
        assert row.agreement == (max((n for _, n in row.votes), default=0) / len(row.outputs))
        assert row.output in row.outputs

    with open_logbook() as book:
        logged = book.experiment_results()
    assert len(logged) == len(result.rows)
    assert {r["experiment_id"] for r in logged} == {result.experiment_id}
    for entry, row in zip(logged, result.rows):
        assert (entry["template"], entry["checkpoint"], entry["case_id"], entry["seed"]) == (
            row.template, row.checkpoint, row.case_id, row.seed)
        assert entry["settings"]["samples"] == len(row.outputs) and entry["settings"]["experiment_seed"] == 5
        assert entry["settings"]["temperature"] == (1.0 if row.template == "quick-sc" else 0.0)
        assert entry["votes"] == {"counts": row.votes, "answers": row.answers, "outputs": row.outputs}
        assert entry["agreement"] == row.agreement and entry["correct"] == row.correct
        assert entry["output"] == row.output and entry["question"] == row.question


def test_fixed_seed_reproduces_and_cells_are_independent(loaded, templates):
    first = run_experiment(templates, loaded, make_cases(), seed=11)
    again = run_experiment(templates, loaded, make_cases(), seed=11)
    assert without_id(first) == without_id(again)
    other = run_experiment(templates, loaded, make_cases(), seed=12)
    assert [r.outputs for r in other.rows] != [r.outputs for r in first.rows]  # the seed reaches the sampler
    # One cell alone, other templates and checkpoints absent (and in another order): the same rows.
    alone = run_experiment(templates[::-1], loaded[::-1][:1], make_cases(), seed=11)
    expected = [r for r in without_id(first) if r["checkpoint"] == loaded[1].name]
    assert sorted(without_id(alone), key=lambda r: (r["template"], r["case_id"])) == \
        sorted(expected, key=lambda r: (r["template"], r["case_id"]))


def test_scoring_follows_the_real_greedy_output(loaded, templates):
    quick = templates[0]
    probe = run_experiment([quick], loaded, make_cases(), seed=0)
    answers = [r.extracted for r in probe.rows]
    assert all(a is not None for a in answers), "the tiny models must say something on every case"
    for ckpt in loaded:
        got = [r.extracted for r in probe.rows if r.checkpoint == ckpt.name]
        right = run_experiment([quick], [ckpt], make_cases(got))
        assert right.summary[0].correct == 3 and right.summary[0].accuracy == 1.0
        wrong = run_experiment([quick], [ckpt], make_cases([a + " (no)" for a in got]))
        assert wrong.summary[0].correct == 0
        pattern = run_experiment([quick], [ckpt], make_cases(["^" + re.escape(a) + "$" for a in got]),
                                 score_method="regex")
        assert pattern.summary[0].correct == 3
        part = run_experiment([quick], [ckpt], make_cases([a[: max(1, len(a) // 2)] for a in got]),
                              score_method="contains")
        assert part.summary[0].correct == 3


def test_votes_match_answer_case_directly(loaded, templates):
    """The experiment's cell is `answer_case` with the case's seed: what the API's vote returns."""
    quick_sc = templates[1]
    result = run_experiment([quick_sc], loaded[1:], make_cases(), seed=4)
    for row, case in zip(result.rows, make_cases()):
        vote = answer_case(loaded[1], quick_sc, case.variables, settings=sampling_for(quick_sc),
                           seed=case_seed(4, row.case_index))
        assert list(vote.texts) == row.outputs and vote.answer == row.extracted and vote.n == 3


def test_experiment_refuses_what_cannot_work(loaded, templates, tiny_checkpoints):
    cases = make_cases()
    with pytest.raises(UsageError, match="given twice"):
        run_experiment([templates[0], templates[0]], loaded, cases)
    with pytest.raises(UsageError, match="given twice"):
        run_experiment(templates, loaded, cases + cases[:1])
    with pytest.raises(UsageError, match="at least one"):
        run_experiment(templates, loaded, [])
    with pytest.raises(UsageError, match="samples must be at least 1"):
        run_experiment(templates, loaded, cases, samples=0)
    with open_logbook() as book:
        assert book.experiment_results() == []  # nothing ran


def test_results_files_parse_back(loaded, templates, tmp_path):
    result = run_experiment(templates, loaded[:1], make_cases(), seed=2)
    assert write_results(result, tmp_path / "r.jsonl") == 6
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows == [r.to_dict() for r in result.rows]
    assert write_results(result, tmp_path / "r.csv") == 6
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as fp:
        table = list(csv.DictReader(fp))
    assert len(table) == 6
    for line, row in zip(table, result.rows):
        assert line["template"] == row.template and line["case_id"] == row.case_id
        assert json.loads(line["outputs"]) == row.outputs and json.loads(line["settings"]) == row.settings
        assert line["correct"] == str(row.correct) and int(line["seed"]) == row.seed
    with pytest.raises(UsageError, match=".jsonl or .csv"):
        write_results(result, tmp_path / "r.txt")


# ---- rendering and the command line ----------------------------------------------------------


def test_render_for_reads_like_the_checkpoint(loaded):
    t = parse_template('name: r\nsystem: Be brief.\nprompt: "{question}"\n')
    base, assistant = loaded
    variables = {"question": "Say <|end|> please"}
    rendered = render_for(t, "base", base.tokenizer, variables)
    assert rendered.prompt == render_base(t, variables)
    assert rendered.ids == base.tokenizer.encode_document(rendered.prompt)
    chat = render_for(t, "assistant", assistant.tokenizer, variables)
    assert chat.ids == render_chat(assistant.tokenizer, render_chat_messages(t, variables), add_generation_prompt=True)[0]
    assert chat.text.startswith("<|endoftext|><|system|>Be brief.<|end|><|user|>Say <|end|> please<|end|>")
    assert sum(assistant.tokenizer.is_special(i) for i in chat.ids) == 6  # typed "<|end|>" stays plain text


def gptkit(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "gptkit", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"gptkit {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli_env(tiny_checkpoints, tmp_path):
    root = tiny_checkpoints["base"].parent.parent
    (tmp_path / "quick.yaml").write_text(QUICK)
    (tmp_path / "quick-sc.yaml").write_text(QUICK_SC)
    cases = tmp_path / "cases.yaml"
    cases.write_text(yaml.safe_dump([{"id": f"c{i}", "question": q, "expected": "x"} for i, q in enumerate(QUESTIONS)]))
    return {"GPTKIT_CHECKPOINTS": str(root)}


def test_prompt_run_json_through_the_cli(cli_env, tmp_path):
    proc = gptkit("prompt", "run", "-t", tmp_path / "quick.yaml", "-t", tmp_path / "quick-sc.yaml", "-m", "base",
                  "-m", "assistant", "--cases", tmp_path / "cases.yaml", "--seed", 9, "--json",
                  "--out", tmp_path / "out.csv", env=cli_env)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    rows, summary = lines[:-1], lines[-1]
    assert len(rows) == 12 and {r["experiment_id"] for r in rows} == {summary["experiment_id"]}
    assert [len(r["outputs"]) for r in rows if r["template"] == "quick-sc"] == [3] * 6
    assert [(c["template"], c["checkpoint"], c["total"]) for c in summary["summary"]] == [
        ("quick", "base/step-000001", 3), ("quick-sc", "base/step-000001", 3),
        ("quick", "assistant/step-000001", 3), ("quick-sc", "assistant/step-000001", 3)]
    assert all(r["seed"] == case_seed(9, r["case_index"]) for r in rows)
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fp:
        assert [line["output"] for line in csv.DictReader(fp)] == [r["output"] for r in rows]
    with open_logbook() as book:  # the child process wrote to this test's GPTKIT_HOME
        assert len(book.experiment_results(summary["experiment_id"])) == 12

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Q", "expected": "A"}\n{"question": "Q"}\n')
    proc = gptkit("prompt", "run", "-t", "few-shot", "-m", "base", "--cases", bad, env=cli_env, check=False)
    assert proc.returncode == 1 and proc.stderr == f"error: {bad}:2: field 'expected': missing; expected text (the right answer)\n"


def test_prompt_show_counts_real_tokens_and_shows_special_ones(cli_env, loaded):
    from gptkit.prompting.templates import load_template

    t = load_template("few-shot")
    question = "What is the capital of Peru?"
    proc = gptkit("prompt", "show", "few-shot", "-m", "assistant", "--var", f"question={question}", "--json",
                  env=cli_env)
    shown = json.loads(proc.stdout)
    tok = loaded[1].tokenizer
    real = render_chat(tok, render_chat_messages(t, {"question": question}), add_generation_prompt=True)[0]
    assert shown["tokens"] == len(real) and shown["ids"] == real
    assert [shown["pieces"][i] for i in shown["special_positions"]][:3] == ["<|endoftext|>", "<|user|>", "<|end|>"]

    proc = gptkit("prompt", "show", "few-shot", "-m", "base", env=cli_env)
    real = loaded[0].tokenizer.encode_document(render_base(t, {}))
    header, body = proc.stdout.split("\n", 1)
    assert header.startswith(f"few-shot for base/step-000001 (base): {len(real)} tokens, 1 special")
    assert body == loaded[0].tokenizer.decode(real) + "\n"  # every token shown, nothing added
