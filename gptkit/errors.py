"""User-facing errors: one small hierarchy.

Anything a user can cause (a missing file, a malformed line, a wrong checkpoint, a bad option
value) raises a `GptkitError` with a message that names the file/line/field and says what was
expected. `cli.py` turns these into one clean line on stderr and a non-zero exit; nothing else
does. Our own invariants stay plain asserts.
"""


class GptkitError(Exception):
    """Base class: the message is shown to the user as is."""

    exit_code = 1


class DataError(GptkitError):
    """Input data (text, JSONL, YAML) is missing, unreadable or malformed."""

    def __init__(self, message: str, *, path=None, line: int | None = None, field: str | None = None):
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
            where += ": "
        if field:
            where += f"field '{field}': "
        super().__init__(where + message)
        self.path, self.line, self.field = path, line, field


class CheckpointError(GptkitError):
    """A checkpoint is missing, truncated, corrupted, foreign or of the wrong kind."""


class TokenizerError(GptkitError):
    """A tokenizer cannot be loaded or trained."""


class TemplateError(DataError):
    """A prompt template is invalid (unknown key, wrong type, missing variable, bad regex)."""


class UsageError(GptkitError):
    """An option value or combination that cannot work."""

    exit_code = 2


class TrainingError(GptkitError):
    """A training run had to stop (for example a NaN loss); the last good checkpoint is kept."""


class WriteError(GptkitError):
    """A file could not be written (a full disk, a read-only folder); `reason` says why in a few words."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: cannot write ({reason})")
        self.path, self.reason = path, reason


class Interrupted(GptkitError):
    """The user pressed Ctrl-C; what could be kept was saved (the message says where)."""

    exit_code = 130  # 128 + SIGINT, the shell's convention
