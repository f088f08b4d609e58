"""Which toy world a spec names: `toyworld` (English) or `toyworld-ja` (the same world in Japanese).

Both renderings carry the same facts, families, held-out rules and corpus sizes, and expose the
same functions (`pretrain_documents`, `sft_conversations`, `eval_tasks`, `reasoning_tasks`,
`rank_prompts`, `showcase_prompts`, `is_question_like`, `write_toyworld`), so every command that
takes the word `toyworld` takes `toyworld-ja` too, and `toyworld-ja:two-hop` picks one kind of
case, as `toyworld:two-hop` does.

Must not know: anything but the names; the worlds are imported only when asked for.
"""

import importlib

LANGS = ("en", "ja")
SPECS = {"toyworld": "en", "toyworld-ja": "ja"}  # the word on the command line -> its language
_MODULES = {"en": "gptkit.data.toyworld", "ja": "gptkit.data.toyworld_ja"}


def spec_for(lang: str) -> str:
    """The word that names the world in `lang`: "toyworld" or "toyworld-ja"."""
    return next(spec for spec, spec_lang in SPECS.items() if spec_lang == lang)


def parse(spec) -> tuple[str, str | None] | None:
    """(lang, kind or None) when `spec` names a toy world ("toyworld-ja:two-hop" -> ("ja",
    "two-hop")); None when it names something else (a file, the logbook)."""
    name, _, kind = str(spec).partition(":")
    if name not in SPECS:
        return None
    return SPECS[name], kind or None


def world(lang: str = "en"):
    """The toy world module for `lang`."""
    if lang not in _MODULES:
        raise ValueError(f"no toy world in language {lang!r} (have: {', '.join(LANGS)})")
    return importlib.import_module(_MODULES[lang])
