"""Templates: schema validation (file:line:field errors), lookup, and exact rendering."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit.errors import TemplateError
from gptkit.prompting.answers import extract_answer, normalize_answer
from gptkit.prompting.templates import (
    DEFAULT_SAMPLING,
    SHIPPED_DIR,
    list_templates,
    load_template,
    parse_template,
    render_base,
    render_chat_messages,
    render_prompt,
    required_variables,
    template_origin,
)

SMALL = """\
name: small
system: You are terse.
instructions: Answer with the city only.
examples:
  - question: What is the capital of Japan?
    answer: Tokyo
  - question: What is the capital of Italy?
    answer: Rome
prompt: "What is the capital of {country}?"
variables:
  country: France
"""

COT = """\
name: cot
examples:
  - question: What is 23 + 45?
    reasoning: "23 + 45: 3 + 5 = 8, 2 + 4 = 6, so 23 + 45 = 68. The answer is 68."
    answer: "68"
prompt: "{question}"
chain_of_thought:
  exemplars: true
  trigger: Let's think step by step.
self_consistency: {samples: 5, temperature: 0.7}
answer:
  regex: '(?m)The answer is (.+?)\\.?$'
  normalize: [number]
sampling: {temperature: 0.2, top_k: 40, max_tokens: 64}
stop: ["\\n\\n"]
"""


# ---- rendering -----------------------------------------------------------------------------


def test_small_template_fields():
    t = parse_template(SMALL)
    assert t.name == "small" and t.variables == {"country": "France"}
    assert required_variables(t) == {"country"}
    assert t.sampling == DEFAULT_SAMPLING and t.stop == () and t.source is None
    assert t.answer_regex is None and t.sc_samples is None and not t.cot_exemplars


def test_render_base_exact():
    t = parse_template(SMALL)
    assert render_base(t, {}) == (
        "Answer with the city only.\n"
        "Q: What is the capital of Japan?\nA: Tokyo\n"
        "Q: What is the capital of Italy?\nA: Rome\n"
        "Q: What is the capital of France?\nA:"
    )
    assert render_base(t, {"country": "Kenya"}).endswith("Q: What is the capital of Kenya?\nA:")


def test_render_chat_messages_exact():
    t = parse_template(SMALL)
    assert render_chat_messages(t, {"country": "Kenya"}) == [
        {"role": "system", "content": "You are terse.\n\nAnswer with the city only."},
        {"role": "user", "content": "What is the capital of Japan?"},
        {"role": "assistant", "content": "Tokyo"},
        {"role": "user", "content": "What is the capital of Italy?"},
        {"role": "assistant", "content": "Rome"},
        {"role": "user", "content": "What is the capital of Kenya?"},
    ]


def test_render_chain_of_thought_exact():
    t = parse_template(COT)
    question = "When I was 6, my sister was half my age. Now I am 70. How old is my sister?"
    assert render_base(t, {"question": question}) == (
        "Q: What is 23 + 45?\nA: 23 + 45: 3 + 5 = 8, 2 + 4 = 6, so 23 + 45 = 68. The answer is 68.\n"
        f"Q: {question}\nA: Let's think step by step."
    )
    assert render_chat_messages(t, {"question": question}) == [
        {"role": "user", "content": "What is 23 + 45?"},
        {"role": "assistant", "content": "23 + 45: 3 + 5 = 8, 2 + 4 = 6, so 23 + 45 = 68. The answer is 68."},
        {"role": "user", "content": f"{question}\nLet's think step by step."},
    ]
    assert (t.sc_samples, t.sc_temperature) == (5, 0.7)
    assert t.sampling == {"temperature": 0.2, "top_k": 40, "top_p": None, "max_tokens": 64, "seed": 0}
    assert t.stop == ("\n\n",)


def test_examples_show_answers_without_cot_exemplars():
    t = parse_template(COT.replace("exemplars: true", "exemplars: false").replace(
        "regex: '(?m)The answer is (.+?)\\.?$'", "regex: null"))
    assert "Q: What is 23 + 45?\nA: 68\nQ:" in render_base(t, {"question": "q"})


def test_raw_layout_is_the_bare_prompt():
    t = parse_template("name: r\ninstructions: Be kind.\nprompt: Explain {topic}.\n"
                       "variables: {topic: the moon landing}\nbase_layout: raw\nsystem: S\n")
    assert render_base(t, {}) == "Be kind.\nExplain the moon landing."
    assert render_chat_messages(t, {}) == [{"role": "system", "content": "S\n\nBe kind."},
                                           {"role": "user", "content": "Explain the moon landing."}]


def test_minimal_template_defaults():
    t = parse_template("name: m\n")
    assert t.prompt == "{question}" and required_variables(t) == {"question"}
    assert render_base(t, {"question": "Hi?"}) == "Q: Hi?\nA:"
    assert render_chat_messages(t, {"question": "Hi?"}) == [{"role": "user", "content": "Hi?"}]


def test_literal_braces_and_block_scalars():
    t = parse_template('name: b\nprompt: |\n  {{ "key": "{value}" }}\n')
    assert required_variables(t) == {"value"}
    assert render_prompt(t, {"value": "v"}) == '{ "key": "v" }'


def test_missing_variable_names_it():
    t = parse_template(SMALL.replace("variables:\n  country: France\n", ""))
    with pytest.raises(TemplateError, match=r"field 'variables.country'.*'country'"):
        render_base(t, {})
    with pytest.raises(TemplateError, match="country"):
        render_chat_messages(t, {"other": "x"})


def test_variable_values_must_be_text():
    with pytest.raises(TemplateError, match="variables.country"):
        render_base(parse_template(SMALL), {"country": None})


@given(st.text())
@settings(max_examples=200, deadline=None)
def test_variable_values_are_inserted_verbatim(value):
    # User text is ordinary text: braces, "{a.__class__}", format specs are never interpreted.
    t = parse_template('name: v\nprompt: "<{a}|{b}>"\n')
    assert render_prompt(t, {"a": value, "b": "{a.__class__}"}) == f"<{value}|{{a.__class__}}>".strip()


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_any_prompt_loads_or_fails_as_template_error(prompt):
    text = yaml.safe_dump({"name": "p", "prompt": prompt}, allow_unicode=True)
    try:
        t = parse_template(text)
    except TemplateError as err:
        assert str(err).startswith("<string>:")
        return
    values = {name: "x" for name in required_variables(t)}
    assert render_base(t, values).startswith("Q: ")
    assert render_chat_messages(t, values)[-1]["role"] == "user"


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_any_text_loads_or_fails_as_template_error(text):
    try:
        parse_template(text)
    except TemplateError:
        pass


# ---- validation: every error is one line naming file, line and field ------------------------

BAD = [
    # (yaml, line, field or None, words in the message)
    ("name: bad\nprompt: x\npromt: y\n", 3, "promt", "did you mean 'prompt'"),
    ("name: bad\nchain_of_thought:\n  exemplars: false\n  triger: go\n", 4, "chain_of_thought.triger",
     "did you mean 'trigger'"),
    ("name: bad\nexamples:\n  - question: q\n    answer: a\n  - question: q\n    anser: a\n", 6,
     "examples[1].anser", "did you mean 'answer'"),
    ("name: bad\nexamples:\n  - question: q\n    answer: a\n  - question: q\n", 5, "examples[1].answer",
     "missing"),
    ("name: bad\nexamples: 5\n", 2, "examples", "expected a list"),
    ("name: bad\nexamples:\n  - just text\n", 3, "examples[0]", "expected a mapping"),
    ("name: bad\nexamples:\n  - question: q\n    answer: 68\n", 4, "examples[0].answer", "put it in quotes"),
    ("name: bad\nsystem: [a]\n", 2, "system", "expected text"),
    ("name: bad\nself_consistency:\n  samples: ten\n  temperature: 0.7\n", 3, "self_consistency.samples",
     "integer from 1 to 256"),
    ("name: bad\nself_consistency:\n  samples: true\n  temperature: 0.7\n", 3, "self_consistency.samples",
     "integer from 1 to 256"),
    ("name: bad\nself_consistency:\n  samples: 100000000\n  temperature: 0.7\n", 3, "self_consistency.samples",
     "integer from 1 to 256"),
    ("name: bad\nsampling:\n  temperature: .nan\n", 3, "sampling.temperature", ">= 0"),
    ("name: bad\nsampling:\n  max_tokens: 100000000000000000000\n", 3, "sampling.max_tokens", "from 1 to 65536"),
    ("name: bad\nsampling:\n  seed: 100000000000000000000\n", 3, "sampling.seed", "from 0 to"),
    ("name: bad\nself_consistency:\n  samples: 3\n", 2, "self_consistency.temperature", "missing"),
    ("name: bad\nsampling:\n  max_tokens: 8\n  temperature: -1\n", 4, "sampling.temperature", ">= 0"),
    ("name: bad\nsampling:\n  top_p: 1.5\n", 3, "sampling.top_p", "(0, 1]"),
    ("name: bad\nstop: \"\\n\"\n", 2, "stop", "expected a list"),
    ("name: bad\nstop:\n  - x\n  - ''\n", 4, "stop[1]", "non-empty"),
    ("name: bad\nchain_of_thought:\n  exemplars: yes please\n", 3, "chain_of_thought.exemplars", "true or false"),
    ("name: bad\nbase_layout: chat\n", 2, "base_layout", "qa or raw"),
    ("name: bad\n\nanswer:\n  regex: 'The answer is (\\d+'\n", 4, "answer.regex", "invalid regular expression"),
    ("name: bad\nanswer:\n  regex: 'The answer is \\d+'\n", 3, "answer.regex", "exactly one capture group"),
    ("name: bad\nanswer:\n  regex: '(a)(b)'\n", 3, "answer.regex", "found 2"),
    ("name: bad\nanswer:\n  normalize:\n    - strip\n    - lowercase\n", 5, "answer.normalize[1]",
     "did you mean 'lower'"),
    ("name: bad\nprompt: '{a.__class__}'\n", 2, "prompt", "plain variable name"),
    ("name: bad\nprompt: '{a[0]}'\n", 2, "prompt", "plain variable name"),
    ("name: bad\nprompt: '{}'\n", 2, "prompt", "plain variable name"),
    ("name: bad\nprompt: '{0}'\n", 2, "prompt", "plain variable name"),
    ("name: bad\nprompt: '{a!r}'\n", 2, "prompt", "conversions"),
    ("name: bad\nprompt: '{a:>10}'\n", 2, "prompt", "format specs"),
    ("name: bad\nprompt: '{a'\n", 2, "prompt", "literal braces"),
    ("name: bad\nprompt: 'a } b'\n", 2, "prompt", "literal braces"),
    ("name: bad\nprompt: '{question}'\nvariables:\n  questoin: x\n", 4, "variables.questoin",
     "did you mean 'question'"),
    ("name: bad\nvariables:\n  question: 70\n", 3, "variables.question", "put it in quotes"),
    ("name: bad\nprompt: x\nname: again\n", 3, "name", "duplicate key (first on line 1)"),
    ("name: other\n", 1, "name", "must match the file name 'bad.yaml'"),
    ("description: no name\n", 1, "name", "missing"),
    ("name: bad\nbase_layout: raw\nexamples:\n  - {question: q, answer: a}\n", 3, "examples", "raw"),
    ("name: bad\nchain_of_thought:\n  exemplars: true\n", 3, "chain_of_thought.exemplars", "no examples"),
    ("name: bad\nchain_of_thought: {exemplars: true}\nexamples:\n  - question: q\n    answer: a\n", 4,
     "examples[0].reasoning", "missing"),
    ("name: bad\nanswer: {regex: 'The answer is (\\d+)'}\nexamples:\n  - question: q\n    answer: Tokyo\n", 5,
     "examples[0].answer", "reads None"),
    ("name: bad\nchain_of_thought: {exemplars: true}\nanswer: {regex: 'The answer is (\\d+)'}\nexamples:\n"
     "  - question: q\n    answer: '7'\n    reasoning: 3 + 4 = 7. The answer is 8.\n", 7, "examples[0].reasoning",
     "reads '8'"),
]


@pytest.mark.parametrize("text, line, field, words", BAD, ids=[f"{b[2]}:{b[3]}" for b in BAD])
def test_validation_error_names_file_line_field(tmp_path, text, line, field, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        load_template(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: field '{field}': "), message
    assert words in message, message


BAD_DOCUMENT = [
    ("name: bad\nprompt: x\nfoo: a: b\n", 3, "malformed YAML"),
    ("name: bad\n\tprompt: x\n", 2, "malformed YAML"),
    ("name: bad\n---\nname: again\n", 2, "malformed YAML"),
    ("name: bad\nprompt: !!python/object/apply:os.system [echo hi]\n", 2, "malformed YAML"),
    ("- name\n- bad\n", 1, "expected a mapping"),
    ("\n\njust text\n", 3, "expected a mapping"),
    ("", 1, "expected a mapping"),
]


@pytest.mark.parametrize("text, line, words", BAD_DOCUMENT)
def test_document_errors_name_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        load_template(path)
    assert str(info.value).startswith(f"{path}:{line}: {words}"), str(info.value)


def test_parse_template_names_its_source():
    with pytest.raises(TemplateError, match=r"^cli:3: field 'promt'"):
        parse_template("name: x\n\npromt: y\n", source="cli")


def test_unreadable_files(tmp_path):
    with pytest.raises(TemplateError, match="missing.yaml: no such file"):
        load_template(tmp_path / "missing.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: bin\nprompt: \xff\xfe\n")
    with pytest.raises(TemplateError, match="UTF-8"):
        load_template(binary)


def test_alias_bombs_stay_cheap():
    lines = ["name: bomb", "x0: &a0 [q, q, q, q, q, q, q, q, q, q]"]
    lines += [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(TemplateError, match=r"<string>:\d+: YAML expands to more than 100,000 values") as err:
        parse_template("\n".join(lines) + "\n")
    assert len(str(err.value)) < 200
    few = ["name: few", "x0: &a0 [q, q]", "x1: [*a0, *a0]"]  # aliases that stay small pass this check
    with pytest.raises(TemplateError, match="field 'x0': unknown key"):
        parse_template("\n".join(few) + "\n")
    with pytest.raises(TemplateError, match="refers to the value that contains it"):
        parse_template("name: loop\nexamples: &a [*a]\n")


def test_prompt_list_flags_a_bad_template_and_lists_the_rest(isolated_home):
    user = isolated_home / "prompts"
    user.mkdir(parents=True)
    (user / "fine.yaml").write_text("name: fine\n", encoding="utf-8")
    (user / "broken.yaml").write_text("name: broken\nsampling: {top_k: 0}\n", encoding="utf-8")
    os.mkfifo(user / "pipe.yaml")  # would block a plain read forever
    problems = []
    names = [t.name for t in list_templates(problems)]
    assert "fine" in names and "broken" not in names and len(names) == len(list(SHIPPED_DIR.glob("*.yaml"))) + 1
    assert sorted(Path(str(p).split(":")[0]).name for p in problems) == ["broken.yaml", "pipe.yaml"]
    assert "is a pipe" in " ".join(map(str, problems))
    with pytest.raises(TemplateError):
        list_templates()


# ---- lookup --------------------------------------------------------------------------------


def test_load_by_name_shipped_then_user(isolated_home):
    user = isolated_home / "prompts"
    user.mkdir(parents=True)
    (user / "mine.yaml").write_text("name: mine\nprompt: '{x}'\nvariables: {x: hello}\n", encoding="utf-8")
    (user / "few-shot.yaml").write_text("name: few-shot\n", encoding="utf-8")
    assert load_template("mine").source == user / "mine.yaml"
    assert load_template("few-shot").source == SHIPPED_DIR / "few-shot.yaml"  # shipped wins
    assert load_template(user / "few-shot.yaml").examples == ()  # the user's is reachable by path
    listed = [(t.name, t.source.parent) for t in list_templates()]
    assert ("mine", user) in listed and ("few-shot", user) in listed and ("few-shot", SHIPPED_DIR) in listed
    assert listed.index(("plain", SHIPPED_DIR)) < listed.index(("mine", user))


def test_the_projects_prompts_folder_comes_between_shipped_and_yours(isolated_home, tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "prompts").mkdir(parents=True)
    monkeypatch.chdir(project)
    (project / "prompts" / "ours.yaml").write_text("name: ours\nprompt: '{x}'\nvariables: {x: a}\n", encoding="utf-8")
    user = isolated_home / "prompts"
    user.mkdir(parents=True)
    (user / "ours.yaml").write_text("name: ours\nprompt: 'mine {x}'\nvariables: {x: b}\n", encoding="utf-8")
    assert load_template("ours").source == project / "prompts" / "ours.yaml"
    origins = [(t.name, template_origin(t)) for t in list_templates()]
    assert origins.index(("plain", "shipped")) < origins.index(("ours", "project")) < origins.index(("ours", "yours"))
    assert template_origin(load_template(user / "ours.yaml")) == "yours"
    result = subprocess.run([sys.executable, "-m", "gptkit", "prompt", "list", "--json"], capture_output=True,
                            text=True, env={**os.environ, "GPTKIT_HOME": str(isolated_home)}, check=True)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(r["name"], r["from"]) for r in rows} >= {("ours", "project"), ("ours", "yours"), ("few-shot", "shipped")}


def test_unknown_name_suggests():
    with pytest.raises(TemplateError, match="no template named 'few-shots' \\(did you mean 'few-shot'\\?\\)"):
        load_template("few-shots")


# ---- the shipped library -------------------------------------------------------------------

SHIPPED = sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))


def test_library_has_the_documented_templates():
    expected = {"plain", "instructions", "few-shot", "chain-of-thought", "self-consistency", "moon-landing",
                "sister-age", "moon-landing-ja", "sister-age-ja", "few-shot-ja", "chain-of-thought-ja"}
    assert expected <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_template_loads_and_renders(name):
    t = load_template(name)
    assert t.name == name and t.description
    assert required_variables(t) <= set(t.variables)  # runnable with defaults alone
    base, messages = render_base(t, {}), render_chat_messages(t, {})
    for value in t.variables.values():
        assert value in base and value in messages[-1]["content"]
    assert messages[-1]["role"] == "user"
    assert [m["role"] for m in messages if m["role"] != "system"] == ["user", "assistant"] * len(t.examples) + ["user"]
    if t.base_layout == "qa":
        assert base.count("Q: ") == len(t.examples) + 1
    # the template reads back the answers its own examples teach
    for ex in t.examples:
        shown = ex.reasoning if t.cot_exemplars else ex.answer
        assert extract_answer(shown, t.answer_regex, t.normalize) == normalize_answer(ex.answer, t.normalize)


def test_shipped_techniques():
    cot, sc = load_template("chain-of-thought"), load_template("self-consistency")
    assert cot.cot_exemplars and cot.cot_trigger is None and cot.sc_samples is None  # few-shot CoT (Wei et al.)
    assert load_template("sister-age").cot_trigger == "Let's think step by step."
    step = load_template("step-by-step")  # zero-shot chain of thought (Kojima et al.), what assistants are asked
    assert step.cot_trigger == "Think step by step." and not step.examples and step.sc_samples is None
    assert (sc.sc_samples, sc.sc_temperature) == (10, 0.7) and sc.cot_trigger == step.cot_trigger
    assert render_chat_messages(sc, {"question": "Q?"}) == render_chat_messages(step, {"question": "Q?"})
    # the Japanese table is the English one in the world's Japanese forms
    cot_ja, step_ja, sc_ja = (load_template(f"{n}-ja")
                              for n in ("chain-of-thought", "step-by-step", "self-consistency"))
    assert cot_ja.cot_exemplars and cot_ja.cot_trigger is None and len(cot_ja.examples) == 4
    assert step_ja.cot_trigger == sc_ja.cot_trigger == "ステップごとに考えましょう。" and not step_ja.examples
    assert (sc_ja.sc_samples, sc_ja.sc_temperature, sc_ja.sampling["top_k"]) == (10, 0.7, 20)
    sister = load_template("sister-age")
    assert "Now I am 70" in sister.variables["question"] and sister.cot_exemplars
    assert extract_answer("6 / 2 = 3, 70 - 3 = 67. The answer is 67.\n\nQ: more", sister.answer_regex,
                          sister.normalize) == "67"
    assert extract_answer("70 - 3 = 67 歳です。答えは 67 です。", load_template("sister-age-ja").answer_regex,
                          load_template("sister-age-ja").normalize) == "67"
    few = load_template("few-shot")
    assert extract_answer(" 34\nQ: What is 2 + 3?", few.answer_regex, few.normalize) == "34"
    # an assistant's one-line reasoning: the number that ends the line is the answer
    assert extract_answer("Ben is 12, so Tom is 12 + 3 = 15. The answer is 15.", few.answer_regex, few.normalize) == "15"
    assert render_base(load_template("moon-landing"), {}) == "Explain the moon landing to a 6 year old."


def test_docstring_schema_is_a_valid_template():
    from gptkit.prompting import templates

    doc = templates.__doc__
    block = doc[doc.index("\n    name: cot"):doc.index("\nExamples must agree")]
    t = parse_template(textwrap.dedent(block))
    assert t.name == "cot" and t.cot_exemplars and t.sc_samples == 10 and t.stop == ("\n\n", "\nQ:")
    assert render_base(t, {}).endswith("Q: What is 12 + 34?\nA: Let's think step by step.")


def test_every_package_and_the_shipped_templates_are_installed():
    tomllib = pytest.importorskip("tomllib")
    root = SHIPPED_DIR.parent
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(root).parts) for p in (root / "gptkit").rglob("__init__.py")}
    assert set(config["packages"]) == on_disk | {"gptkit.prompts"}  # a new subpackage must be listed
    assert config["package-dir"]["gptkit.prompts"] == SHIPPED_DIR.name and SHIPPED_DIR == root / "prompts"


NUMBER_WORDS = {word: n for n, word in enumerate(
    "no one two three four five six seven eight nine ten".split())} | {"a": 1, "an": 1}


def claimed_examples(description: str) -> list[int]:
    """Every count of examples a description states: "Four solved questions", "no examples",
    "解答例を3つ" (a number, then within a few words example/question/解答例/例)."""
    import re

    english = re.findall(r"\b(\w+) (?:\w+ ){0,2}(?:examples?|questions)\b", description, flags=re.IGNORECASE)
    counts = [NUMBER_WORDS[w.lower()] if w.lower() in NUMBER_WORDS else int(w) for w in english
              if w.lower() in NUMBER_WORDS or w.isdigit()]
    return counts + [int(n) for n in re.findall(r"例を?(\d+)つ", description)]


def test_shipped_descriptions_count_their_examples_right():
    stated = {}
    for t in list_templates():
        if template_origin(t) != "shipped":
            continue
        for count in claimed_examples(t.description):
            stated[t.name] = count
            assert count == len(t.examples), f"{t.name}: says {count} examples, has {len(t.examples)}: {t.description}"
    # the claims this test reads (so a reworded description cannot slip past it unread)
    assert stated.items() >= {("few-shot", 4), ("chain-of-thought", 4), ("few-shot-ja", 4), ("instructions", 0)}
