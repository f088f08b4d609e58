"""The logbook: one SQLite file holding everything a person may want to look at again.

Owns `$GPTKIT_HOME/logbook.db` (see `paths.logbook_path`): generations and chat turns, chat
sessions, rankings with their items, experiment results; one listing of them all as entries of
a kind (`entries`: chat, vote, generate, rank, experiment), and the JSONL ways in and out of it
(every entry; rankings as ranked lists, as (chosen, rejected) pairs, as TRL preference rows; TRL
files coming in are read by data/preferences.py, the one reader of them).

Contract:
- Nothing acknowledged is ever lost. WAL journal, synchronous=FULL, and every write is its own
  transaction committed before the call returns, so a SIGKILL right after a call loses nothing.
  Undoing a ranking only stamps `deleted`; no row is ever physically removed.
- The schema moves forward by numbered migrations (`MIGRATIONS`, version in PRAGMA user_version),
  each applied in one transaction. A newer file than this code knows is refused, not touched.
- `ranking_items.rank` is 1 for best, ties share a rank, NULL when the ranking is all_bad/skipped.
  `rankings_to_pairs` is the one place a ranking becomes (better, worse) pairs.

It knows nothing about models, tokenizers or the terminal: it stores text, numbers and JSON.
It is one module of ~480 lines on purpose: one database module, migrations and exports included.
"""

import functools
import json
import sqlite3
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from gptkit import paths
from gptkit.errors import DataError, GptkitError, UsageError

# One entry per schema version; entry n (0-based) moves a file from version n to n+1.
# Never edit a shipped entry: append a new one.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY, created TEXT NOT NULL, title TEXT, mode TEXT,
            checkpoints TEXT NOT NULL DEFAULT '[]')""",
        """CREATE TABLE generations (
            id INTEGER PRIMARY KEY, created TEXT NOT NULL, kind TEXT NOT NULL,
            session_id TEXT REFERENCES sessions(id), checkpoint TEXT, template TEXT, mode TEXT,
            prompt TEXT NOT NULL, rendered_prompt TEXT, output TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}', seed INTEGER, tokens INTEGER, seconds REAL,
            extra TEXT)""",
        "CREATE INDEX generations_kind ON generations(kind, id)",
        "CREATE INDEX generations_session ON generations(session_id, id)",
        """CREATE TABLE rankings (
            id INTEGER PRIMARY KEY, created TEXT NOT NULL, prompt TEXT NOT NULL,
            rater TEXT NOT NULL, synthetic INTEGER NOT NULL CHECK (synthetic IN (0, 1)),
            note TEXT, settings TEXT, seed INTEGER,
            status TEXT NOT NULL CHECK (status IN ('ranked', 'all_bad', 'skipped')),
            deleted TEXT)""",
        """CREATE TABLE ranking_items (
            ranking_id INTEGER NOT NULL REFERENCES rankings(id), position INTEGER NOT NULL,
            text TEXT NOT NULL, checkpoint TEXT, rank INTEGER CHECK (rank IS NULL OR rank >= 1),
            PRIMARY KEY (ranking_id, position))""",
        "CREATE INDEX rankings_rater ON rankings(rater, id)",
        """CREATE TABLE experiment_results (
            id INTEGER PRIMARY KEY, created TEXT NOT NULL, experiment_id TEXT NOT NULL,
            template TEXT, checkpoint TEXT, case_id TEXT, question TEXT, expected TEXT,
            output TEXT, extracted TEXT,
            correct INTEGER CHECK (correct IS NULL OR correct IN (0, 1)),
            votes TEXT, agreement REAL, settings TEXT, seed INTEGER)""",
        "CREATE INDEX experiment_results_experiment ON experiment_results(experiment_id, id)",
    ],
]

JSON_COLUMNS = {"settings", "extra", "checkpoints", "votes"}
BOOL_COLUMNS = {"synthetic", "correct"}
RANKING_STATUSES = ("ranked", "all_bad", "skipped")
EXPORT_FORMATS = ("ranked", "pairs", "trl")
RANK, EXPERIMENT = "rank", "experiment"  # the kinds of rankings and experiment rows among the entries
ENTRY_KINDS = ("chat", "vote", "generate", RANK, EXPERIMENT)  # every kind the logbook holds today


def _now() -> str:
    # Microseconds: entries of different tables are listed together in this order (`entries`).
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _to_json(value) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _row_to_dict(row: sqlite3.Row) -> dict:
    out = dict(row)
    for key in JSON_COLUMNS & out.keys():
        if out[key] is not None:
            out[key] = json.loads(out[key])
    for key in BOOL_COLUMNS & out.keys():
        if out[key] is not None:
            out[key] = bool(out[key])
    return out


def _write_jsonl(fp, rows) -> int:
    lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in rows]
    fp.writelines(lines)
    return len(lines)


def _ranked_item_pairs(ranking: dict) -> list[tuple[dict, dict]]:
    """(better item, worse item) for every strictly ordered pair, best-first."""
    if ranking["status"] != "ranked" or ranking.get("deleted"):
        return []
    items = sorted(ranking["items"], key=lambda item: (item["rank"], item["position"]))
    # Identical texts ranked apart state no preference (and teach a reward model nothing).
    return [(better, worse) for i, better in enumerate(items) for worse in items[i + 1:]
            if better["rank"] < worse["rank"] and better["text"] != worse["text"]]


def rankings_to_pairs(ranking: dict) -> list[tuple[str, str]]:
    """Every (better, worse) answer pair a ranking implies, as InstructGPT trains on.

    A ranking of k answers without ties gives k*(k-1)/2 pairs; tied answers give no pair
    between them; all_bad, skipped and undone rankings give none.
    """
    return [(better["text"], worse["text"]) for better, worse in _ranked_item_pairs(ranking)]


def _connect(path: Path) -> sqlite3.Connection:
    """A configured connection; refuses (untouched) a file that is not a logbook we understand."""
    conn = None
    try:
        paths.ensure_dir(path.parent)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so no write is left pending.
        conn = sqlite3.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        _schema_version(conn, path)  # the first read of the file: fails here if not SQLite
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":  # e.g. a network filesystem without shared memory
            raise GptkitError(f"{path}: cannot use a WAL journal here (got '{mode}')")
        return conn
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise GptkitError(f"{path}: cannot open the logbook: {exc}") from None
        raise


def _schema_version(conn: sqlite3.Connection, path: Path) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise GptkitError(
            f"{path}: logbook schema version {version} is newer than this gptkit "
            f"understands (up to {len(MIGRATIONS)}); upgrade gptkit to open it")
    return version


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    if _schema_version(conn, path) == len(MIGRATIONS):
        return
    with _transaction(conn):
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = _schema_version(conn, path)
        for number, steps in enumerate(MIGRATIONS[version:], start=version + 1):
            for sql in steps:
                conn.execute(sql)
            conn.execute(f"PRAGMA user_version = {number}")


@contextmanager
def _transaction(conn: sqlite3.Connection):
    """One write transaction, committed (and fsynced) before the block's caller returns."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _reported(method):
    """A Logbook method whose SQLite failures (a full disk, a damaged file, a number SQLite cannot
    store) are one-line GptkitErrors naming the logbook."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, OverflowError) as err:
            raise GptkitError(f"{self.path}: logbook {'read' if method.__name__ in _READS else 'write'} failed: "
                              f"{err}") from None

    return wrapper


_READS = {"recent", "entries", "kinds", "get", "rankings", "ranked_prompts", "experiment_results", "export_rankings",
          "export_entries"}


class Logbook:
    """One connection to the logbook file; use `open_logbook` or `with Logbook(path) as lb`."""

    def __init__(self, path):
        self.path = Path(path)
        self._conn = _connect(self.path)
        try:
            _migrate(self._conn, self.path)
        except sqlite3.Error as err:
            self._conn.close()
            raise GptkitError(f"{self.path}: cannot open the logbook: {err}") from None
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # ---- writes -------------------------------------------------------------------------------

    @_reported
    def log_generation(self, *, prompt: str, output: str, kind: str = "generate",
                       session_id: str | None = None, checkpoint: str | None = None,
                       template: str | None = None, mode: str | None = None,
                       rendered_prompt: str | None = None, settings: dict | None = None,
                       seed: int | None = None, tokens: int | None = None,
                       seconds: float | None = None, extra: dict | None = None) -> int:
        """Store one generation (kind "generate", "chat", "vote", ...); returns its id.

        `prompt` is the text as the user saw it, `rendered_prompt` what the model saw.
        A `session_id` must come from `start_session` (it is a foreign key).
        """
        settings = dict(settings or {})
        seed = settings.get("seed") if seed is None else seed
        with _transaction(self._conn) as conn:
            cursor = conn.execute(
                "INSERT INTO generations (created, kind, session_id, checkpoint, template, mode,"
                " prompt, rendered_prompt, output, settings, seed, tokens, seconds, extra)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_now(), kind, session_id, checkpoint, template, mode, prompt, rendered_prompt,
                 output, _to_json(settings), seed, tokens, seconds, _to_json(extra)))
        return cursor.lastrowid

    @_reported
    def start_session(self, mode: str, checkpoints: list[str], title: str | None = None) -> str:
        """Open a chat session; log its turns with kind="chat" and the returned session id."""
        session_id = uuid.uuid4().hex
        with _transaction(self._conn) as conn:
            conn.execute("INSERT INTO sessions (id, created, title, mode, checkpoints)"
                         " VALUES (?, ?, ?, ?, ?)",
                         (session_id, _now(), title, mode, _to_json(list(checkpoints))))
        return session_id

    @_reported
    def log_ranking(self, prompt: str, items: list[dict], ranks: list[int | None], *,
                    rater: str, synthetic: bool = False, note: str | None = None,
                    status: str = "ranked", settings: dict | None = None,
                    seed: int | None = None) -> int:
        """Store one ranking; `ranks[i]` ranks `items[i]` (as shown, position i); returns its id.

        items: [{"text": ..., "checkpoint": ...}]. ranks: 1 = best, ties share a rank; all None
        when status is "all_bad" or "skipped".
        """
        assert status in RANKING_STATUSES, f"status {status!r} not in {RANKING_STATUSES}"
        assert items and len(items) == len(ranks), f"{len(items)} items but {len(ranks)} ranks"
        if status == "ranked":
            assert all(isinstance(r, int) and r >= 1 for r in ranks), f"bad ranks {ranks}"
        else:
            assert all(r is None for r in ranks), f"a {status} ranking has no ranks: {ranks}"
        with _transaction(self._conn) as conn:
            ranking_id = conn.execute(
                "INSERT INTO rankings (created, prompt, rater, synthetic, note, settings, seed,"
                " status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (_now(), prompt, rater, int(bool(synthetic)), note, _to_json(settings), seed,
                 status)).lastrowid
            conn.executemany(
                "INSERT INTO ranking_items (ranking_id, position, text, checkpoint, rank)"
                " VALUES (?, ?, ?, ?, ?)",
                [(ranking_id, position, item["text"], item.get("checkpoint"), rank)
                 for position, (item, rank) in enumerate(zip(items, ranks))])
        return ranking_id

    @_reported
    def undo_last_ranking(self, rater: str | None = None) -> int | None:
        """Soft-delete the newest live ranking (of `rater`, if given); returns its id or None."""
        with _transaction(self._conn) as conn:
            row = conn.execute(
                "SELECT id FROM rankings WHERE deleted IS NULL AND (? IS NULL OR rater = ?)"
                " ORDER BY id DESC LIMIT 1", (rater, rater)).fetchone()
            if row is not None:
                conn.execute("UPDATE rankings SET deleted = ? WHERE id = ?", (_now(), row["id"]))
        return None if row is None else row["id"]

    @_reported
    def log_experiment_result(self, *, experiment_id: str, output: str,
                              checkpoint: str | None = None, template: str | None = None,
                              case_id: str | None = None, question: str | None = None,
                              expected: str | None = None, extracted: str | None = None,
                              correct: bool | None = None, votes: dict | list | None = None,
                              agreement: float | None = None, settings: dict | None = None,
                              seed: int | None = None) -> int:
        """Store one row of an experiment (template x checkpoint x case); returns its id."""
        with _transaction(self._conn) as conn:
            cursor = conn.execute(
                "INSERT INTO experiment_results (created, experiment_id, template, checkpoint,"
                " case_id, question, expected, output, extracted, correct, votes, agreement,"
                " settings, seed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_now(), experiment_id, template, checkpoint, case_id, question, expected,
                 output, extracted, None if correct is None else int(bool(correct)),
                 _to_json(votes), agreement, _to_json(settings), seed))
        return cursor.lastrowid

    @_reported
    def import_preferences(self, rows: list[tuple[int, tuple]], path) -> int:
        """Add preference rows read from the file `path` as rankings; returns the count.

        rows: [(line number, (prompt, chosen, rejected))], as `data.preferences.read_preference_file`
        reads any TRL file. A prompt must be text (one user turn): a ranking's prompt is, and a row
        must state a preference (chosen differs from rejected). All rows are checked first and
        imported in one transaction: all lines or none. Importing is idempotent: a pair already
        imported (from this file or another) is not added again; the count is of new pairs.
        """
        for line_number, (prompt, chosen, rejected) in rows:
            if not isinstance(prompt, str):
                raise DataError(f"a ranking's prompt is one user turn; this one has {len(prompt)} messages "
                                "(train on the file itself: --data FILE)", path=path, line=line_number, field="prompt")
            if chosen == rejected:
                raise DataError("the same text as chosen: the row states no preference", path=path, line=line_number,
                                field="rejected")
        with _transaction(self._conn) as conn:
            seen = {(r["prompt"], r["chosen"], r["rejected"]) for r in conn.execute(
                "SELECT r.prompt, c.text AS chosen, w.text AS rejected FROM rankings r"
                " JOIN ranking_items c ON c.ranking_id = r.id AND c.position = 0"
                " JOIN ranking_items w ON w.ranking_id = r.id AND w.position = 1"
                " WHERE r.rater = 'import' AND r.deleted IS NULL")}
            added = 0
            for line_number, (prompt, chosen, rejected) in rows:
                if (prompt, chosen, rejected) in seen:
                    continue
                seen.add((prompt, chosen, rejected))
                added += 1
                ranking_id = conn.execute(
                    "INSERT INTO rankings (created, prompt, rater, synthetic, note, status)"
                    " VALUES (?, ?, 'import', 0, ?, 'ranked')",
                    (_now(), prompt, f"imported from {path}:{line_number}")).lastrowid
                conn.executemany(
                    "INSERT INTO ranking_items (ranking_id, position, text, rank)"
                    " VALUES (?, ?, ?, ?)",
                    [(ranking_id, 0, chosen, 1), (ranking_id, 1, rejected, 2)])
        return added

    # ---- reads --------------------------------------------------------------------------------

    @_reported
    def recent(self, limit: int | None = 20, kind: str | None = None,
               search: str | None = None) -> list[dict]:
        """Newest generations first; `search` is a substring of prompt or output
        (case-insensitive for ASCII letters)."""
        sql, args = "SELECT * FROM generations WHERE (? IS NULL OR kind = ?)", [kind, kind]
        if search:
            sql += f" AND ({_LIKE.format('prompt')} OR {_LIKE.format('output')})"
            args += [_like_pattern(search)] * 2
        rows = self._conn.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, -1 if limit is None else limit])
        return [_row_to_dict(row) for row in rows]

    @_reported
    def entries(self, limit: int | None = 20, kind: str | None = None,
                search: str | None = None) -> list[dict]:
        """Newest first, of every kind the logbook holds (`ENTRY_KINDS`): generations under their
        own kind, live rankings as kind "rank" (answers best-first, as `export_entries` writes
        them) and experiment rows as kind "experiment". `search` is a substring of a prompt,
        question, answer, output or note (case-insensitive for ASCII letters)."""
        rows = []
        if kind not in (RANK, EXPERIMENT):
            rows += self.recent(limit, kind, search)
        if kind in (None, RANK):
            where, args = "r.deleted IS NULL", []
            if search:
                where += (f" AND ({_LIKE.format('r.prompt')} OR {_LIKE.format('r.note')} OR EXISTS (SELECT 1 FROM"
                          f" ranking_items i WHERE i.ranking_id = r.id AND {_LIKE.format('i.text')}))")
                args += [_like_pattern(search)] * 3
            rows += [{**_ranked_row(r), "kind": RANK} for r in self._rankings(where, args, limit)]
        if kind in (None, EXPERIMENT):
            sql, args = "SELECT * FROM experiment_results", []
            if search:
                sql += " WHERE " + " OR ".join(_LIKE.format(c) for c in ("question", "output", "template", "expected"))
                args += [_like_pattern(search)] * 4
            found = self._conn.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, -1 if limit is None else limit])
            rows += [{**_row_to_dict(row), "kind": EXPERIMENT} for row in found]
        rows.sort(key=lambda row: row["created"], reverse=True)
        return rows[:limit]

    @_reported
    def kinds(self) -> dict[str, int]:
        """How many entries of each kind `entries` lists: {"chat": 12, "rank": 3, ...}."""
        counts = {row[0]: row[1] for row in self._conn.execute("SELECT kind, COUNT(*) FROM generations GROUP BY kind")}
        counts[RANK] = self._conn.execute("SELECT COUNT(*) FROM rankings WHERE deleted IS NULL").fetchone()[0]
        counts[EXPERIMENT] = self._conn.execute("SELECT COUNT(*) FROM experiment_results").fetchone()[0]
        return {kind: n for kind, n in counts.items() if n}

    @_reported
    def get(self, entry_id: int, kind: str | None = None) -> dict | None:
        """One entry by id, or None: a generation, or with kind "rank" a ranking (undone ones
        too, stamped `deleted`) or with kind "experiment" an experiment row, as `entries` has them."""
        if kind == RANK:
            found = self._rankings("r.id = ?", [entry_id], None)
            return {**_ranked_row(found[0]), "kind": RANK, "deleted": found[0]["deleted"]} if found else None
        table = "experiment_results" if kind == EXPERIMENT else "generations"
        row = self._conn.execute(f"SELECT * FROM {table} WHERE id = ?", (entry_id,)).fetchone()
        return None if row is None else {**_row_to_dict(row), **({"kind": kind} if kind == EXPERIMENT else {})}


    @_reported
    def rankings(self, include_deleted: bool = False,
                 include_synthetic: bool = True) -> list[dict]:
        """Rankings oldest first, each with "items" (in shown order) and "ranks" (same order)."""
        where = " AND ".join(["1"] + (["r.deleted IS NULL"] if not include_deleted else [])
                             + (["r.synthetic = 0"] if not include_synthetic else []))
        return self._rankings(where, [], None)

    def _rankings(self, where: str, args: list, newest: int | None) -> list[dict]:
        """Rankings matching `where` (on `rankings r`), oldest first; only the `newest` N if given."""
        chosen = f"SELECT r.id FROM rankings r WHERE {where} ORDER BY r.id DESC LIMIT ?"
        args = [*args, -1 if newest is None else newest]
        rankings = {row["id"]: {**_row_to_dict(row), "items": [], "ranks": []}
                    for row in self._conn.execute(f"SELECT * FROM rankings WHERE id IN ({chosen}) ORDER BY id", args)}
        items = self._conn.execute(
            f"SELECT * FROM ranking_items WHERE ranking_id IN ({chosen}) ORDER BY ranking_id, position", args)
        for item in items:
            ranking = rankings[item["ranking_id"]]
            ranking["items"].append(
                {key: item[key] for key in ("position", "text", "checkpoint", "rank")})
            ranking["ranks"].append(item["rank"])
        return list(rankings.values())

    @_reported
    def ranked_prompts(self, rater: str | None = None, checkpoints: list[str] | None = None) -> set[str]:
        """Prompts already handled (ranked, all_bad or skipped; undone ones excluded), by `rater`
        if given; with `checkpoints`, only rankings of answers from exactly that set of checkpoints
        (in any order), as a ranking session records it in its settings."""
        rows = self._conn.execute(
            "SELECT prompt, settings FROM rankings WHERE deleted IS NULL"
            " AND (? IS NULL OR rater = ?)", (rater, rater))
        wanted = None if checkpoints is None else set(checkpoints)
        return {row["prompt"] for row in rows
                if wanted is None or set(json.loads(row["settings"] or "{}").get("checkpoints") or ()) == wanted}

    @_reported
    def experiment_results(self, experiment_id: str | None = None) -> list[dict]:
        rows = self._conn.execute(
            "SELECT * FROM experiment_results WHERE (? IS NULL OR experiment_id = ?)"
            " ORDER BY id", (experiment_id, experiment_id))
        return [_row_to_dict(row) for row in rows]

    def check(self) -> list[str]:
        """Problems found by SQLite's integrity and foreign-key checks; [] means healthy. A file
        too damaged for a check to run is itself the problem reported."""
        try:
            problems = [row[0] for row in self._conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
            problems += [f"{row[0]} row {row[1]}: missing parent in {row[2]}"
                         for row in self._conn.execute("PRAGMA foreign_key_check")]
        except sqlite3.DatabaseError as err:
            problems = [f"the database is damaged: {err}"]
        return problems

    # ---- exports ------------------------------------------------------------------------------

    @_reported
    def export_rankings(self, fp, format: str = "ranked", include_synthetic: bool = True) -> int:
        """Write live rankings as JSONL to the text file `fp`; returns the number of lines.

        "ranked": one object per ranking, answers best-first; "pairs": one object per implied
        (chosen, rejected) pair with checkpoints; "trl": exactly {"prompt","chosen","rejected"}.
        """
        if format not in EXPORT_FORMATS:
            raise UsageError(f"unknown export format '{format}'; "
                             f"expected one of {', '.join(EXPORT_FORMATS)}")
        rankings = self.rankings(include_synthetic=include_synthetic)
        if format == "ranked":
            rows = (_ranked_row(r) for r in rankings)
        elif format == "pairs":
            rows = ({"prompt": r["prompt"], "chosen": a["text"], "rejected": b["text"],
                     "chosen_checkpoint": a["checkpoint"], "rejected_checkpoint": b["checkpoint"],
                     "ranking_id": r["id"]}
                    for r in rankings for a, b in _ranked_item_pairs(r))
        else:
            rows = ({"prompt": r["prompt"], "chosen": chosen, "rejected": rejected}
                    for r in rankings for chosen, rejected in rankings_to_pairs(r))
        return _write_jsonl(fp, rows)

    @_reported
    def export_entries(self, fp, kind: str | None = None) -> int:
        """Write every entry of `kind` (default: all kinds), oldest first, as `entries` has them,
        as JSONL to the text file `fp`; returns the count."""
        return _write_jsonl(fp, reversed(self.entries(limit=None, kind=kind)))


def _like_pattern(search: str) -> str:
    """A LIKE pattern finding `search` as a substring (its own % and _ taken literally)."""
    return "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


_LIKE = "{} LIKE ? ESCAPE '\\'"  # .format(column), with a `_like_pattern` argument


def _ranked_row(ranking: dict) -> dict:
    """A ranking as one export object, its answers best-first (unranked ones in shown order)."""
    answers = sorted(ranking["items"], key=lambda item: (item["rank"] is None,
                                                         item["rank"] or 0, item["position"]))
    row = {k: v for k, v in ranking.items() if k not in ("items", "ranks", "deleted")}
    return {**row, "answers": answers}


def open_logbook(path=None) -> Logbook:
    """Open (creating and migrating if needed) the logbook at `path` or `paths.logbook_path()`."""
    return Logbook(paths.logbook_path() if path is None else path)
