"""Where things live on disk.

- GPTKIT_HOME (default ~/.gptkit): the logbook database, the token-shard cache, chat history.
- Checkpoints: ./checkpoints by default (GPTKIT_CHECKPOINTS overrides), one folder per run.

This module only computes paths; it never creates files except the folders it is asked for.
"""

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("GPTKIT_HOME") or Path.home() / ".gptkit").expanduser()


def checkpoints_dir() -> Path:
    return Path(os.environ.get("GPTKIT_CHECKPOINTS") or "checkpoints").expanduser()


def logbook_path() -> Path:
    return home() / "logbook.db"


def cache_dir() -> Path:
    return home() / "cache"


def history_path(name: str) -> Path:
    return home() / f"{name}_history"


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
