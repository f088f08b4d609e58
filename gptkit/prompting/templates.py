r"""Prompt templates: the YAML schema, its validation, and rendering for base and chat models.

Owns: loading a template (a path, or a name looked up in the shipped library prompts/, then
in the current project's ./prompts/, then in $GPTKIT_HOME/prompts/), validating it with
one-line `TemplateError`s that name file:line and field, and rendering it as a document
prefix (base model) or as chat messages (assistant model). Must not know: tokenizers, token
ids, models, sampling code, the logbook. Validation is most of this module's length: every
mistake gets its own line number and field.

Schema (only `name` is required; `key: null` means the same as leaving the key out; the
whitespace around text values is ignored). This block is itself a valid template:

    name: cot                  # [A-Za-z0-9][A-Za-z0-9_-]*; in a file it must equal the file stem
    description: Worked examples, then the question.    # one line, for listings
    system: You are a careful tutor.   # chat only: the system message (base models have none)
    instructions: Solve the problem.   # before the examples (chat: appended to the system message)
    examples:                  # few-shot examples
      - question: What is 23 + 45?     # required
        answer: "68"           # required: the final answer alone
        reasoning: "23 + 45: 3 + 5 = 8, 2 + 4 = 6, so 23 + 45 = 68. The answer is 68."
                               # the worked answer, shown instead when chain_of_thought.exemplars
    prompt: "{question}"       # default "{question}"; the only text with {variables}: plain
                               #   names only; "{{" and "}}" are literal braces
    variables:                 # defaults (text); each must be used in prompt
      question: What is 12 + 34?
    base_layout: qa            # qa (default) | raw; see render_base. raw allows no examples or trigger
    chain_of_thought:
      exemplars: true          # examples show their reasoning (each must have one); default false
      trigger: Let's think step by step.   # text that starts the model's answer
    self_consistency:          # sample this many answers at this temperature, majority-vote them
      samples: 10              # integer >= 1; both keys required
      temperature: 0.7         # number > 0
    answer:
      regex: '(?m)The answer is (.+?)\.?$'  # exactly one capture group; null: the first non-blank line
      normalize: [number]      # applied in order: strip | lower | strip_punct | number
    sampling: {temperature: 0.0, top_k: null, top_p: null, max_tokens: 128, seed: 0}  # the defaults
    stop: ["\n\n", "\nQ:"]     # non-empty texts where generation stops

Examples must agree with `answer`: extracting from each example's shown answer (its reasoning
when chain_of_thought.exemplars is true) must give its `answer`, normalised, so a template
reads back the very format it teaches.
"""

import difflib
import math
import re
import string
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from gptkit import paths
from gptkit.errors import DataError, TemplateError
from gptkit.files import excerpt, parse_yaml, read_text
from gptkit.limits import MAX_NEW_TOKENS, MAX_SAMPLES, MAX_SEED, MAX_TOP_K
from gptkit.prompting.answers import NORMALIZATIONS, answer_regex_problem, extract_answer, normalize_answer


def _shipped_dir() -> Path:
    """The shipped templates: gptkit/prompts/ once installed (pyproject maps the top-level
    prompts/ folder there); in a source checkout or an editable install, prompts/ itself."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "prompts"
    return installed if installed.is_dir() else package.parent / "prompts"


SHIPPED_DIR = _shipped_dir()
MAX_TEMPLATE_BYTES = 1 << 20  # a template is a page of YAML; anything this big is a mistake
DEFAULT_SAMPLING = {"temperature": 0.0, "top_k": None, "top_p": None, "max_tokens": 128, "seed": 0}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_TOP_KEYS = ("name", "description", "system", "instructions", "examples", "prompt", "variables",
             "base_layout", "chain_of_thought", "self_consistency", "answer", "sampling", "stop")


@dataclass(frozen=True)
class Example:
    question: str
    answer: str
    reasoning: str = ""


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    system: str | None
    instructions: str
    examples: tuple[Example, ...]
    prompt: str
    variables: dict[str, str]
    cot_exemplars: bool
    cot_trigger: str | None
    sc_samples: int | None
    sc_temperature: float | None
    answer_regex: str | None
    normalize: tuple[str, ...]
    sampling: dict  # DEFAULT_SAMPLING with the template's values; self-consistency uses sc_temperature
    stop: tuple[str, ...]
    source: Path | None = None
    base_layout: str = "qa"


# ---- loading ---------------------------------------------------------------------------------


def user_dir() -> Path:
    return paths.home() / "prompts"


def template_folders() -> list[tuple[str, Path]]:
    """Where names are looked up, in order: (origin, folder). Shipped first, then the current
    project's ./prompts, then $GPTKIT_HOME/prompts; a folder listed twice counts once."""
    out: list[tuple[str, Path]] = []
    for origin, folder in (("shipped", SHIPPED_DIR), ("project", Path.cwd() / "prompts"), ("yours", user_dir())):
        if all(folder.resolve() != seen.resolve() for _, seen in out):
            out.append((origin, folder))
    return out


def load_template(path_or_name: str | Path) -> Template:
    """A template from a file path, or by name from the shipped library, then the project's
    ./prompts, then the user's folder. A shipped name always wins: a file of the same name
    elsewhere is reachable by path only."""
    is_name = isinstance(path_or_name, str) and _NAME.fullmatch(path_or_name) is not None
    if not is_name:
        return _load_file(Path(path_or_name))
    folders = [folder for _, folder in template_folders()]
    for folder in folders:
        candidate = folder / f"{path_or_name}.yaml"
        if candidate.is_file():
            return _load_file(candidate)
    known = sorted({p.stem for folder in folders for p in _yaml_files(folder)})
    close = difflib.get_close_matches(path_or_name, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(known)}"
    raise TemplateError(f"no template named '{path_or_name}' ({hint})")


def list_templates(problems: list[TemplateError] | None = None) -> list[Template]:
    """Every template of every folder of `template_folders`, in its order, each sorted by name.

    With a `problems` list, a file that does not load is appended to it as its error and left
    out, so one bad file of the user's does not hide the others; without one, it is raised."""
    templates = []
    for _, folder in template_folders():
        for path in _yaml_files(folder):
            try:
                templates.append(_load_file(path))
            except TemplateError as err:
                if problems is None:
                    raise
                problems.append(err)
    return templates


def template_origin(t: Template) -> str:
    """"shipped", "project" or "yours" for a listed template; "file" for one loaded by path."""
    where = t.source.parent.resolve() if t.source else None
    return next((origin for origin, folder in template_folders() if folder.resolve() == where), "file")


def _yaml_files(folder: Path) -> list[Path]:
    """The folder's *.yaml entries (a pipe or a folder among them is listed, to be refused by name)."""
    return sorted(folder.glob("*.yaml"), key=lambda p: p.stem) if folder.is_dir() else []


def _load_file(path: Path) -> Template:
    try:
        text = read_text(path, max_bytes=MAX_TEMPLATE_BYTES)
    except TemplateError:
        raise
    except DataError as err:  # the same message, as the template error it is
        raise TemplateError(str(err)) from None
    return replace(_parse(text, str(path), file_stem=path.stem), source=path)


def parse_template(text: str, source: str = "<string>") -> Template:
    """A template from YAML text; `source` names it in error messages."""
    return _parse(text, source, file_stem=None)


# ---- validation ------------------------------------------------------------------------------


@dataclass
class _Doc:
    """The file being validated: its name and the line of every key, for error messages."""

    source: str
    lines: dict[tuple, int] = field(default_factory=dict)

    def error(self, at: tuple, message: str, line: int | None = None) -> TemplateError:
        line_at = at
        while line_at and line_at not in self.lines:  # e.g. a missing key: point at its parent
            line_at = line_at[:-1]
        name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in at).lstrip(".")
        return TemplateError(message, path=self.source, line=line or self.lines.get(line_at, 1), field=name or None)


def _record_lines(doc: _Doc, node: yaml.Node, at: tuple, seen: set[int]) -> None:
    # Aliases share node objects: visiting each once keeps a "billion laughs" file linear.
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise doc.error(at, f"keys must be plain text (line {key_node.start_mark.line + 1})")
            key, line = (*at, key_node.value), key_node.start_mark.line + 1
            if key in doc.lines:
                raise doc.error(key, f"duplicate key (first on line {doc.lines[key]})", line=line)
            doc.lines[key] = line
            _record_lines(doc, value_node, key, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines[(*at, index)] = item.start_mark.line + 1
            _record_lines(doc, item, (*at, index), seen)


def _describe(value) -> str:
    kinds = {bool: "true/false", int: "an integer", float: "a number", str: "text", list: "a list",
             dict: "a mapping", type(None): "nothing"}
    return kinds.get(type(value), type(value).__name__)


def _mapping(doc: _Doc, value, at: tuple, known: tuple | None, what: str = "a mapping") -> dict:
    """`value` as a mapping ({} for null) whose keys are all in `known` (None: any key)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error(at, f"expected {what}, got {_describe(value)}")
    for key in value:
        if known is not None and key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(known)}"
            raise doc.error((*at, str(key)), f"unknown key ({hint})")
    return value


def _list(doc: _Doc, value, at: tuple, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise doc.error(at, f"expected a list of {what}, got {_describe(value)}")
    return value


def _text(doc: _Doc, mapping: dict, at: tuple, key: str, default=None, required: bool = False):
    value = mapping.get(key)
    if value is None:
        if required:
            raise doc.error((*at, key), "missing; expected text")
        return default
    if not isinstance(value, str):
        hint = " (put it in quotes)" if isinstance(value, (bool, int, float)) else ""
        raise doc.error((*at, key), f"expected text, got {_describe(value)}{hint}")
    if required and not value.strip():
        raise doc.error((*at, key), "expected non-empty text")
    return value.strip()


def _number(doc: _Doc, mapping: dict, at: tuple, key: str, default, *, integer: bool, ok, expected: str):
    value = mapping.get(key)
    if value is None:
        return default
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or (isinstance(value, float) and not math.isfinite(value)) \
            or not ok(value):
        raise doc.error((*at, key), f"expected {expected}, got {excerpt(value)}")
    return value if integer else float(value)


def _parse_yaml(text: str, source: str) -> tuple[dict, _Doc]:
    """The top-level mapping and the line of every key in it."""
    data, root = parse_yaml(text, path=source, error=TemplateError)
    if not isinstance(data, dict):
        line = root.start_mark.line + 1 if root is not None else 1
        raise TemplateError(f"expected a mapping of template keys at the top level, got {_describe(data)}",
                            path=source, line=line)
    doc = _Doc(source)
    _record_lines(doc, root, (), set())
    return _mapping(doc, data, (), _TOP_KEYS), doc


def _parse_name(doc: _Doc, data: dict, file_stem: str | None) -> str:
    name = _text(doc, data, (), "name", required=True)
    if not _NAME.fullmatch(name):
        raise doc.error(("name",), "expected letters, digits, '-' or '_', starting with a letter or digit")
    if file_stem is not None and name != file_stem:
        raise doc.error(("name",), f"'{name}' must match the file name '{file_stem}.yaml'")
    return name


def _parse_examples(doc: _Doc, data: dict) -> tuple[Example, ...]:
    examples = []
    for i, item in enumerate(_list(doc, data.get("examples"), ("examples",), "examples")):
        at = ("examples", i)
        if not isinstance(item, dict):
            raise doc.error(at, f"expected a mapping with question and answer, got {_describe(item)}")
        ex = _mapping(doc, item, at, ("question", "answer", "reasoning"))
        examples.append(Example(question=_text(doc, ex, at, "question", required=True),
                                answer=_text(doc, ex, at, "answer", required=True),
                                reasoning=_text(doc, ex, at, "reasoning", default="")))
    return tuple(examples)


def _prompt_fields(doc: _Doc, prompt: str) -> list[str]:
    """The variable names in `prompt`. Only plain names: attribute/index access, conversions and
    format specs are rejected so a template can never reach into an object or run code."""
    try:
        parsed = list(string.Formatter().parse(prompt))
    except ValueError as err:
        raise doc.error(("prompt",), f"{err} (write {{{{ and }}}} for literal braces)") from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        written = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if not name.isidentifier():
            raise doc.error(("prompt",), f"{written}: expected a plain variable name like {{question}}")
        if conversion or spec:
            raise doc.error(("prompt",), f"{written}: conversions (!r) and format specs (:>10) are not allowed")
        names.append(name)
    return names


def _parse_variables(doc: _Doc, data: dict, fields: list[str]) -> dict[str, str]:
    defaults = _mapping(doc, data.get("variables"), ("variables",), None, "a mapping of variable defaults")
    for key in defaults:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise doc.error(("variables", str(key)), f"not used in prompt{hint}")
        if not isinstance(defaults[key], str):
            hint = " (put it in quotes)" if isinstance(defaults[key], (bool, int, float)) else ""
            raise doc.error(("variables", key), f"expected text, got {_describe(defaults[key])}{hint}")
    return dict(defaults)


def _parse_self_consistency(doc: _Doc, data: dict) -> tuple[int | None, float | None]:
    at = ("self_consistency",)
    if data.get("self_consistency") is None:
        return None, None
    sc = _mapping(doc, data["self_consistency"], at, ("samples", "temperature"))
    for key in ("samples", "temperature"):
        if sc.get(key) is None:
            raise doc.error((*at, key), "missing; self_consistency needs samples and temperature")
    samples = _number(doc, sc, at, "samples", None, integer=True, ok=lambda v: 1 <= v <= MAX_SAMPLES,
                      expected=f"an integer from 1 to {MAX_SAMPLES}")
    temperature = _number(doc, sc, at, "temperature", None, integer=False, ok=lambda v: v > 0,
                          expected="a number > 0")
    return samples, temperature


def _parse_answer(doc: _Doc, data: dict) -> tuple[str | None, tuple[str, ...]]:
    at = ("answer",)
    answer = _mapping(doc, data.get("answer"), at, ("regex", "normalize"))
    regex = _text(doc, answer, at, "regex")
    if regex is not None and (problem := answer_regex_problem(regex)):
        raise doc.error((*at, "regex"), problem)
    steps = _list(doc, answer.get("normalize"), (*at, "normalize"), "normalisation names")
    for i, step in enumerate(steps):
        if step not in NORMALIZATIONS:
            close = difflib.get_close_matches(str(step), NORMALIZATIONS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(NORMALIZATIONS)}"
            raise doc.error((*at, "normalize", i), f"unknown normalisation {excerpt(step)} ({hint})")
    return regex, tuple(steps)


def _parse_sampling(doc: _Doc, data: dict) -> dict:
    at = ("sampling",)
    given = _mapping(doc, data.get("sampling"), at, tuple(DEFAULT_SAMPLING))
    rules = {  # key: (integer, ok, expected)
        "temperature": (False, lambda v: v >= 0, "a number >= 0"),
        "top_k": (True, lambda v: 1 <= v <= MAX_TOP_K, f"an integer from 1 to {MAX_TOP_K}"),
        "top_p": (False, lambda v: 0 < v <= 1, "a number in (0, 1]"),
        "max_tokens": (True, lambda v: 1 <= v <= MAX_NEW_TOKENS, f"an integer from 1 to {MAX_NEW_TOKENS}"),
        "seed": (True, lambda v: 0 <= v <= MAX_SEED, f"an integer from 0 to {MAX_SEED}"),
    }
    return {key: _number(doc, given, at, key, DEFAULT_SAMPLING[key], integer=integer, ok=ok, expected=expected)
            for key, (integer, ok, expected) in rules.items()}


def _parse_stop(doc: _Doc, data: dict) -> tuple[str, ...]:
    stop = _list(doc, data.get("stop"), ("stop",), "texts")
    for i, item in enumerate(stop):
        if not isinstance(item, str) or not item:
            raise doc.error(("stop", i), f"expected non-empty text, got {excerpt(item)}")
    return tuple(stop)


def _check_consistency(doc: _Doc, t: Template) -> None:
    """Rules that span keys, checked once every key is valid on its own."""
    if t.base_layout == "raw" and t.examples:
        raise doc.error(("examples",), "base_layout: raw renders the prompt alone; use qa for examples")
    if t.base_layout == "raw" and t.cot_trigger:
        raise doc.error(("chain_of_thought", "trigger"), "base_layout: raw renders the prompt alone; use qa")
    if t.cot_exemplars and not t.examples:
        raise doc.error(("chain_of_thought", "exemplars"), "true, but there are no examples to show reasoning for")
    for i, ex in enumerate(t.examples):
        if t.cot_exemplars and not ex.reasoning:
            raise doc.error(("examples", i, "reasoning"), "missing; chain_of_thought.exemplars is true")
        # The template must read back the format it teaches, or every answer it gets is lost.
        key = "reasoning" if t.cot_exemplars else "answer"
        try:
            got = extract_answer(_shown_answer(t, ex), t.answer_regex, t.normalize)
        except TemplateError:
            raise
        except DataError as err:  # the regex ran out of time on this example: say where the template is
            raise doc.error(("answer", "regex"), str(err).removeprefix("field 'answer.regex': ")) from None
        want = normalize_answer(ex.answer, t.normalize)
        if got != want:
            raise doc.error(("examples", i, key), f"answer extraction reads {excerpt(got)} here, but the answer is {excerpt(want)}")


def _parse(text: str, source: str, file_stem: str | None) -> Template:
    data, doc = _parse_yaml(text, source)
    name = _parse_name(doc, data, file_stem)
    examples = _parse_examples(doc, data)
    prompt = _text(doc, data, (), "prompt", default="{question}")
    if not prompt:
        raise doc.error(("prompt",), "expected non-empty text")
    variables = _parse_variables(doc, data, _prompt_fields(doc, prompt))
    base_layout = _text(doc, data, (), "base_layout", default="qa")
    if base_layout not in ("qa", "raw"):
        raise doc.error(("base_layout",), f"expected qa or raw, got {excerpt(base_layout)}")
    cot = _mapping(doc, data.get("chain_of_thought"), ("chain_of_thought",), ("exemplars", "trigger"))
    exemplars = cot.get("exemplars", False)
    if exemplars is None:
        exemplars = False
    if not isinstance(exemplars, bool):
        raise doc.error(("chain_of_thought", "exemplars"), f"expected true or false, got {excerpt(exemplars)}")
    sc_samples, sc_temperature = _parse_self_consistency(doc, data)
    answer_regex, normalize = _parse_answer(doc, data)
    template = Template(
        name=name,
        description=_text(doc, data, (), "description", default=""),
        system=_text(doc, data, (), "system") or None,
        instructions=_text(doc, data, (), "instructions", default=""),
        examples=examples,
        prompt=prompt,
        variables=variables,
        cot_exemplars=exemplars,
        cot_trigger=_text(doc, cot, ("chain_of_thought",), "trigger") or None,
        sc_samples=sc_samples,
        sc_temperature=sc_temperature,
        answer_regex=answer_regex,
        normalize=normalize,
        sampling=_parse_sampling(doc, data),
        stop=_parse_stop(doc, data),
        base_layout=base_layout,
    )
    _check_consistency(doc, template)
    return template


# ---- rendering -------------------------------------------------------------------------------


def required_variables(t: Template) -> set[str]:
    """The variables `t.prompt` uses (with or without a default)."""
    return {name for _, name, _, _ in string.Formatter().parse(t.prompt) if name is not None}


class _Values(dict):
    """The mapping `format_map` reads: a field without a value is a TemplateError naming it."""

    def __init__(self, values: dict, template: Template):
        super().__init__(values)
        self.template = template

    def __missing__(self, name: str):
        raise TemplateError(f"no value for variable '{name}' used in prompt; pass it or give it a default",
                            path=self.template.source or f"template '{self.template.name}'",
                            field=f"variables.{name}")


def render_prompt(t: Template, variables: dict[str, str]) -> str:
    """`t.prompt` with its variables filled: `variables` over the template's defaults. Values are
    inserted as ordinary text (never re-formatted); unused extra variables are ignored."""
    values = {**t.variables, **variables}
    for name in required_variables(t):
        if name in values and not isinstance(values[name], str):
            raise TemplateError(f"expected text, got {_describe(values[name])}",
                                path=t.source or f"template '{t.name}'", field=f"variables.{name}")
    return t.prompt.format_map(_Values(values, t)).strip()


def _shown_answer(t: Template, ex: Example) -> str:
    return ex.reasoning if t.cot_exemplars else ex.answer


def render_base(t: Template, variables: dict[str, str]) -> str:
    """A document prefix for a base model, in the toy world's answer-key layout.

    qa layout: one line per part, as in the toy world's answer keys (no blank lines): the instructions, one "Q: question\\nA:
    answer" block per example (the reasoning instead of the answer when CoT exemplars are on),
    then "Q: prompt\\nA:" with no trailing space (the model writes " answer"), or "A: trigger"
    when a CoT trigger is set. raw layout: the instructions, a blank line, the prompt as is,
    so a base model shows what it does with a bare question. `system` is ignored.
    """
    query = render_prompt(t, variables)
    blocks = [t.instructions] if t.instructions else []
    if t.base_layout == "raw":
        return "\n".join([*blocks, query])
    blocks += [f"Q: {ex.question}\nA: {_shown_answer(t, ex)}" for ex in t.examples]
    blocks.append(f"Q: {query}\nA:" + (f" {t.cot_trigger}" if t.cot_trigger else ""))
    return "\n".join(blocks)


def render_chat_messages(t: Template, variables: dict[str, str]) -> list[dict]:
    """Chat messages for an assistant model: a system message (system, blank line,
    instructions; omitted when both are empty), each example as a user turn and an assistant
    turn, then the prompt as the last user turn, with the CoT trigger on its own line."""
    query = render_prompt(t, variables)
    system = "\n\n".join(part for part in (t.system, t.instructions) if part)
    messages = [{"role": "system", "content": system}] if system else []
    for ex in t.examples:
        messages.append({"role": "user", "content": ex.question})
        messages.append({"role": "assistant", "content": _shown_answer(t, ex)})
    messages.append({"role": "user", "content": query + (f"\n{t.cot_trigger}" if t.cot_trigger else "")})
    return messages
