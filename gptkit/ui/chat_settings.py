"""What a chat is set to, and the file /save writes.

`ChatSettings` (temperature, top_k, top_p, max_tokens, seed, samples, stats) and `SETTINGS`, the
one parser per setting that both /set and a loaded file go through, so a value a person cannot
type cannot come in from a file either. `read_saved_chat` checks a /save file field by field
(a DataError naming the field) before a session trusts any of it.

Must not know: models, the logbook, the terminal.
"""

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from gptkit.errors import DataError, GptkitError, UsageError
from gptkit.files import read_json
from gptkit.prompting.templates import load_template

MODES = ("base", "assistant", "compare")
MAX_SAMPLES = 256  # the most answers /regen or /vote draws at once
CHAT_FORMAT = "gptkit-chat"  # the "format" field of a file written by /save


# ---- settings ---------------------------------------------------------------------------------


def parse_number(name: str, value: str, *, integer: bool, ok, expected: str, off: bool = False):
    if off and value.lower() in ("off", "none", "random"):
        return None
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or not ok(number):
        raise UsageError(f"{name}: expected {expected}{' or off' if off else ''}, got '{value}'")
    return number


def _switch(name: str, value: str) -> bool:
    if value.lower() in ("on", "true", "yes", "1"):
        return True
    if value.lower() in ("off", "false", "no", "0"):
        return False
    raise UsageError(f"{name}: expected on or off, got '{value}'")


SETTINGS = {  # name: text -> value (UsageError when it does not fit)
    "temperature": lambda v: parse_number("temperature", v, integer=False, ok=lambda x: x >= 0,
                                          expected="a number >= 0"),
    "top_k": lambda v: parse_number("top_k", v, integer=True, ok=lambda x: x >= 1, expected="an integer >= 1",
                                    off=True),
    "top_p": lambda v: parse_number("top_p", v, integer=False, ok=lambda x: 0 < x <= 1,
                                    expected="a number in (0, 1]", off=True),
    "max_tokens": lambda v: parse_number("max_tokens", v, integer=True, ok=lambda x: 1 <= x <= 1_000_000,
                                         expected="an integer 1-1000000"),
    "seed": lambda v: parse_number("seed", v, integer=True, ok=lambda x: 0 <= x < 2**63,
                                   expected="an integer 0 to 2**63-1 (or random)", off=True),
    "samples": lambda v: parse_number("samples", v, integer=True, ok=lambda x: 1 <= x <= MAX_SAMPLES,
                                      expected=f"an integer 1-{MAX_SAMPLES}"),
    "stats": lambda v: _switch("stats", v),
}
TEMPLATE_SETTINGS = ("temperature", "top_k", "top_p", "max_tokens", "seed")  # what a template's sampling sets


@dataclass
class ChatSettings:
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    max_tokens: int = 256
    seed: int | None = None  # None: each turn draws a seed (and logs it)
    samples: int = 3  # k for /regen, and for /vote when the template sets none
    stats: bool = False

    def shown(self, name: str) -> str:
        """One setting as a person types it: "0.8", "off", "random", "on"."""
        value = getattr(self, name)
        if value is None:
            return "random" if name == "seed" else "off"
        return ("on" if value else "off") if isinstance(value, bool) else str(value)

    def text(self) -> str:
        """Every setting on one line, as /set and /show print it."""
        return " · ".join(f"{name} {self.shown(name)}" for name in dataclasses.asdict(self))


# ---- saved chats --------------------------------------------------------------------------------


def template_ref(template) -> str:
    """The template's name when the name finds this very file again, else its path."""
    try:
        found = load_template(template.name).source == template.source
    except GptkitError:
        found = False
    return template.name if found else str(template.source)


MAX_CHAT_BYTES = 64 * 2**20  # a saved chat is text; anything larger is not one


def _expect(data: dict, key: str, kinds, what: str, path: Path):
    value = data.get(key)
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
        raise DataError(f"expected {what}, got {type(value).__name__}", path=path, field=key)
    return value


def read_saved_chat(path: Path) -> dict:
    """A file written by /save, checked field by field (DataError naming the field)."""
    data = read_json(path, max_bytes=MAX_CHAT_BYTES)  # regular files only, nesting bounded: a DataError otherwise
    if not isinstance(data, dict) or data.get("format") != CHAT_FORMAT:
        raise DataError(f'not a saved gptkit chat (expected "format": "{CHAT_FORMAT}")', path=path)
    names = _expect(data, "checkpoints", list, "a list of checkpoint names", path)
    if not names or not all(isinstance(n, str) for n in names):
        raise DataError("expected a non-empty list of checkpoint names", path=path, field="checkpoints")
    if data.get("mode") not in MODES:
        raise DataError(f"expected one of {', '.join(MODES)}", path=path, field="mode")
    _expect(data, "template", (str, type(None)), "a template name or null", path)
    _expect(data, "system", (str, type(None)), "text or null", path)
    variables = _expect(data, "vars", dict, "an object of variables", path)
    if not all(isinstance(v, str) for v in variables.values()):
        raise DataError("expected text values", path=path, field="vars")
    messages = _expect(data, "messages", list, "a list of messages", path)
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                or not isinstance(m.get("content"), str):
            raise DataError("expected {\"role\": system|user|assistant, \"content\": text}", path=path,
                            field=f"messages[{i}]")
    settings = ChatSettings()
    for name, value in _expect(data, "settings", dict, "an object of settings", path).items():
        if name not in SETTINGS:
            raise DataError(f"unknown setting (expected one of {', '.join(SETTINGS)})", path=path,
                            field=f"settings.{name}")
        text = "off" if value is None else ("on" if value is True else "off" if value is False else str(value))
        try:
            setattr(settings, name, SETTINGS[name](text))
        except UsageError as e:
            raise DataError(str(e), path=path, field=f"settings.{name}") from None
    return {**data, "settings": settings}
