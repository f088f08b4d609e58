"""The logbook against a real SQLite file in the per-test GPTKIT_HOME."""

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit import paths, store
from gptkit.data.preferences import load_preference_pairs, read_preference_file
from gptkit.errors import DataError, GptkitError, UsageError
from gptkit.store import open_logbook, rankings_to_pairs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def lb():
    with open_logbook() as logbook:
        yield logbook


def items(*texts):
    return [{"text": t, "checkpoint": f"ckpt-{t}"} for t in texts]


def table_names(path):
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


# ---- opening, pragmas, migrations -------------------------------------------------------------

def test_fresh_file_is_created_under_home_and_fully_migrated(isolated_home):
    assert not isolated_home.exists()
    with open_logbook() as logbook:
        assert logbook.path == isolated_home / "logbook.db" == paths.logbook_path()
        assert logbook._conn.execute("PRAGMA user_version").fetchone()[0] == len(store.MIGRATIONS)
        assert logbook.check() == []
    assert {"sessions", "generations", "rankings", "ranking_items",
            "experiment_results"} <= table_names(paths.logbook_path())


def test_pragmas_are_actually_set(lb):
    pragma = lambda name: lb._conn.execute(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
    assert pragma("journal_mode") == "wal"
    assert pragma("synchronous") == 2  # FULL
    assert pragma("foreign_keys") == 1
    assert pragma("busy_timeout") >= 1000


def test_pragmas_do_not_rely_on_build_defaults(monkeypatch):
    real_connect = sqlite3.connect

    def lax_connect(*args, **kwargs):  # a build whose defaults are the opposite of ours
        conn = real_connect(*args, **kwargs)
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA busy_timeout = 0")
        return conn

    monkeypatch.setattr(sqlite3, "connect", lax_connect)
    with open_logbook() as logbook:
        assert logbook._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert logbook._conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_reopen_keeps_data_and_does_not_remigrate():
    with open_logbook() as first:
        gen_id = first.log_generation(prompt="hi", output="hello")
        ranking_id = first.log_ranking("q", items("a", "b"), [1, 2], rater="me")
    with open_logbook() as again:
        assert again.get(gen_id)["output"] == "hello"
        assert [r["id"] for r in again.rankings()] == [ranking_id]


def test_migrations_run_in_one_transaction(tmp_path, monkeypatch):
    path = tmp_path / "book.db"
    open_logbook(path).close()
    broken = [["CREATE TABLE half_done (x)", "THIS IS NOT SQL"]]
    monkeypatch.setattr(store, "MIGRATIONS", store.MIGRATIONS + broken)
    with pytest.raises(GptkitError, match="cannot open the logbook: near \"THIS\": syntax error"):
        open_logbook(path)
    monkeypatch.undo()
    assert "half_done" not in table_names(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(store.MIGRATIONS)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "book.db"
    open_logbook(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 999")
    with pytest.raises(GptkitError, match=r"book\.db.*999.*newer"):
        open_logbook(path)


def test_non_sqlite_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.db"
    content = b"these are my notes, not a database\n" * 200
    path.write_bytes(content)
    with pytest.raises(GptkitError, match="notes.db"):
        open_logbook(path)
    assert path.read_bytes() == content


def test_unopenable_path_is_a_clean_error(tmp_path):
    (tmp_path / "a_folder.db").mkdir()
    with pytest.raises(GptkitError, match="a_folder.db"):
        open_logbook(tmp_path / "a_folder.db")


def test_check_reports_broken_foreign_keys(lb):
    raw = sqlite3.connect(lb.path)  # foreign keys are off by default on a raw connection
    raw.execute("INSERT INTO ranking_items (ranking_id, position, text, rank)"
                " VALUES (77, 0, 'x', 1)")
    raw.commit()
    raw.close()
    problems = lb.check()
    assert len(problems) == 1 and "ranking_items" in problems[0]


# ---- generations and sessions ----------------------------------------------------------------

def test_generation_round_trip(lb):
    fields = dict(kind="generate", checkpoint="base-1", template="cot", mode="base",
                  prompt="Explain the moon landing",
                  rendered_prompt="Q: Explain the moon landing\nA:",
                  output="月面着陸", settings={"temperature": 0.7, "top_k": 50, "seed": 11},
                  tokens=12, seconds=0.25, extra={"stop": ["\n"]})
    entry_id = lb.log_generation(**fields)
    got = lb.get(entry_id)
    assert {k: got[k] for k in fields} == fields
    assert got["seed"] == 11 and got["session_id"] is None and got["created"].endswith("+00:00")
    assert lb.get(entry_id + 1) is None


def test_chat_turns_belong_to_a_session(lb):
    session = lb.start_session("chat", ["sft-1"], title="moon")
    for turn in range(3):
        lb.log_generation(kind="chat", session_id=session, prompt=f"q{turn}", output=f"a{turn}")
    lb.log_generation(prompt="other", output="x")
    chats = lb.recent(kind="chat")
    assert [c["prompt"] for c in chats] == ["q2", "q1", "q0"]
    assert {c["session_id"] for c in chats} == {session}
    row = lb._conn.execute("SELECT * FROM sessions WHERE id = ?", (session,)).fetchone()
    assert (row["mode"], row["title"]) == ("chat", "moon")
    assert json.loads(row["checkpoints"]) == ["sft-1"]
    with pytest.raises(GptkitError, match="logbook write failed: FOREIGN KEY constraint failed"):
        lb.log_generation(kind="chat", session_id="no-such-session", prompt="q", output="a")


def test_recent_limit_order_and_search(lb):
    for n in range(5):
        lb.log_generation(prompt=f"prompt {n}", output=f"output {n}")
    lb.log_generation(prompt="100% sure", output="Apple_pie")
    assert [r["prompt"] for r in lb.recent(limit=2)] == ["100% sure", "prompt 4"]
    assert [r["prompt"] for r in lb.recent(search="prompt 3")] == ["prompt 3"]
    assert [r["output"] for r in lb.recent(search="output 1")] == ["output 1"]
    assert [r["prompt"] for r in lb.recent(search="APPLE")] == ["100% sure"]
    # LIKE wildcards in the query are literal text
    assert [r["prompt"] for r in lb.recent(search="0%")] == ["100% sure"]
    assert lb.recent(search="t_1") == [] and lb.recent(search="%") != []
    assert len(lb.recent(search="e_p")) == 1


def test_experiment_results_round_trip(lb):
    lb.log_experiment_result(experiment_id="e1", template="cot", checkpoint="c", case_id="1",
                             question="2+2?", expected="4", output="so 4", extracted="4",
                             correct=True, votes={"4": 3, "5": 1}, agreement=0.75,
                             settings={"samples": 4}, seed=1)
    lb.log_experiment_result(experiment_id="e2", output="x", correct=False)
    (row,) = lb.experiment_results("e1")
    assert row["correct"] is True and row["votes"] == {"4": 3, "5": 1} and row["agreement"] == 0.75
    assert [r["correct"] for r in lb.experiment_results()] == [True, False]


# ---- rankings ---------------------------------------------------------------------------------

def test_ranking_round_trip_with_ties(lb):
    ranking_id = lb.log_ranking("q", items("a", "b", "c", "d"), [2, 1, 2, 3], rater="ann",
                                note="close call", settings={"temperature": 1.0}, seed=5)
    (got,) = lb.rankings()
    assert got["id"] == ranking_id and got["ranks"] == [2, 1, 2, 3]
    assert [i["text"] for i in got["items"]] == ["a", "b", "c", "d"]
    assert got["items"][1]["checkpoint"] == "ckpt-b" and got["synthetic"] is False
    assert (got["note"], got["settings"], got["seed"]) == ("close call", {"temperature": 1.0}, 5)
    assert sorted(rankings_to_pairs(got)) == sorted(
        [("b", "a"), ("b", "c"), ("b", "d"), ("a", "d"), ("c", "d")])


def test_identical_answers_ranked_apart_give_no_pair():
    ranking = {"status": "ranked", "items": [
        {"position": 0, "text": "same", "checkpoint": None, "rank": 1},
        {"position": 1, "text": "same", "checkpoint": None, "rank": 2},
        {"position": 2, "text": "other", "checkpoint": None, "rank": 3}]}
    assert rankings_to_pairs(ranking) == [("same", "other"), ("same", "other")]


def test_all_bad_and_skipped_store_no_ranks_and_no_pairs(lb):
    lb.log_ranking("q1", items("a", "b"), [None, None], rater="ann", status="all_bad")
    lb.log_ranking("q2", items("a", "b"), [None, None], rater="ann", status="skipped")
    for ranking in lb.rankings():
        assert ranking["ranks"] == [None, None] and rankings_to_pairs(ranking) == []
    assert lb.ranked_prompts() == {"q1", "q2"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=7))
def test_pairs_are_exactly_the_strictly_ordered_pairs(ranks):
    texts = [f"answer {i}" for i in range(len(ranks))]
    ranking = {"status": "ranked", "deleted": None, "ranks": ranks,
               "items": [{"position": i, "text": t, "checkpoint": None, "rank": r}
                         for i, (t, r) in enumerate(zip(texts, ranks))]}
    expected = {(texts[i], texts[j]) for i in range(len(ranks)) for j in range(len(ranks))
                if ranks[i] < ranks[j]}
    pairs = rankings_to_pairs(ranking)
    assert set(pairs) == expected and len(pairs) == len(expected)


def test_undo_is_a_soft_delete_excluded_from_exports(lb):
    kept = lb.log_ranking("keep", items("a", "b"), [1, 2], rater="ann")
    other = lb.log_ranking("bob's", items("a", "b"), [2, 1], rater="bob")
    undone = lb.log_ranking("oops", items("x", "y"), [1, 2], rater="ann")
    assert lb.undo_last_ranking(rater="ann") == undone
    assert [r["id"] for r in lb.rankings()] == [kept, other]
    assert lb.ranked_prompts(rater="ann") == {"keep"}
    deleted = [r for r in lb.rankings(include_deleted=True) if r["id"] == undone]
    assert deleted[0]["deleted"] and [i["text"] for i in deleted[0]["items"]] == ["x", "y"]
    assert rankings_to_pairs(deleted[0]) == []
    for fmt in store.EXPORT_FORMATS:
        out = io.StringIO()
        lb.export_rankings(out, fmt)
        assert "oops" not in out.getvalue()
    assert lb.undo_last_ranking() == other
    assert lb.undo_last_ranking(rater="carol") is None
    assert lb._conn.execute("SELECT COUNT(*) FROM rankings").fetchone()[0] == 3


def test_synthetic_rankings_can_be_left_out(lb):
    lb.log_ranking("human", items("a", "b"), [1, 2], rater="ann")
    lb.log_ranking("robot", items("a", "b"), [1, 2], rater="judge", synthetic=True)
    assert [r["prompt"] for r in lb.rankings(include_synthetic=False)] == ["human"]
    assert [r["synthetic"] for r in lb.rankings()] == [False, True]


# ---- exports and imports ----------------------------------------------------------------------

def export_lines(lb, fmt):
    out = io.StringIO()
    count = lb.export_rankings(out, fmt)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(lines)
    return lines


def test_export_formats_parse_back(lb):
    lb.log_ranking("Why is the sky blue?", items("meh", "best", "bad"), [2, 1, 3], rater="ann")
    lb.log_ranking("空", items("u", "v"), [None, None], rater="ann", status="all_bad")
    ranked = export_lines(lb, "ranked")
    assert [a["text"] for a in ranked[0]["answers"]] == ["best", "meh", "bad"]
    assert ranked[1]["status"] == "all_bad" and ranked[1]["prompt"] == "空"
    pairs = export_lines(lb, "pairs")
    assert len(pairs) == 3 and pairs[0]["chosen"] == "best"
    assert pairs[0]["chosen_checkpoint"] == "ckpt-best"
    assert pairs[0]["rejected_checkpoint"] == "ckpt-meh"
    trl = export_lines(lb, "trl")
    assert all(set(row) == {"prompt", "chosen", "rejected"} for row in trl)
    assert {(r["chosen"], r["rejected"]) for r in trl} == {
        ("best", "meh"), ("best", "bad"), ("meh", "bad")}
    with pytest.raises(UsageError, match="csv"):
        lb.export_rankings(io.StringIO(), "csv")


def fill_every_kind(lb):
    """One entry of each kind, oldest first: generate, chat, rank (with a tie), experiment, vote."""
    lb.log_generation(prompt="a", output="1", settings={"seed": 1})
    lb.log_generation(kind="chat", session_id=lb.start_session("chat", []), prompt="b", output="2")
    lb.log_ranking("Name a moon.", items("Io", "Europa", "Titan"), [1, 1, 2], rater="ann",
                   settings={"checkpoints": ["ckpt-Io"]})
    lb.log_experiment_result(experiment_id="e1", template="few-shot", checkpoint="c", question="2+2?",
                             expected="4", output="A: 4", extracted="4", correct=True)
    lb.log_generation(kind="vote", prompt="c", output="3")


def test_entries_list_every_kind_newest_first(lb):
    fill_every_kind(lb)
    rows = lb.entries()
    assert [r["kind"] for r in rows] == ["vote", "experiment", "rank", "chat", "generate"]
    assert [r["kind"] for r in lb.entries(limit=2)] == ["vote", "experiment"]
    assert lb.kinds() == {"generate": 1, "chat": 1, "vote": 1, "rank": 1, "experiment": 1}
    [ranking] = lb.entries(kind="rank")
    assert ranking["prompt"] == "Name a moon." and [a["rank"] for a in ranking["answers"]] == [1, 1, 2]
    assert lb.get(ranking["id"], "rank") == {**ranking, "deleted": None}
    [row] = lb.entries(kind="experiment")
    assert (row["template"], row["correct"]) == ("few-shot", True) and lb.get(row["id"], "experiment") == row
    assert [r["kind"] for r in lb.entries(kind="generate")] == ["generate"]
    # search finds a ranking by its prompt or by any of its answers, an experiment row by its question
    assert [r["kind"] for r in lb.entries(search="moon")] == ["rank"]
    assert [r["kind"] for r in lb.entries(search="titan")] == ["rank"]
    assert [r["kind"] for r in lb.entries(search="2+2")] == ["experiment"]
    lb.undo_last_ranking()
    assert lb.entries(kind="rank") == [] and "rank" not in lb.kinds()


def test_export_covers_every_kind(lb):
    fill_every_kind(lb)
    out = io.StringIO()
    assert lb.export_entries(out, kind="chat") == 1
    (row,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert row["prompt"] == "b" and row["settings"] == {}
    out = io.StringIO()
    assert lb.export_entries(out) == 5
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [row["kind"] for row in rows] == ["generate", "chat", "rank", "experiment", "vote"]
    assert rows[0]["settings"] == {"seed": 1} and rows[2]["answers"][2]["text"] == "Titan"


def import_file(lb, path) -> int:
    """What `gptkit rank import` does: the one TRL reader, then the logbook."""
    return lb.import_preferences(read_preference_file(path), path)


def test_trl_import_round_trips_with_trl_export(lb, tmp_path):
    lb.log_ranking("p1", items("a", "b", "c"), [1, 2, 2], rater="ann")
    lb.log_ranking("p2 \"quoted\"\nnewline", items("x", "y"), [2, 1], rater="ann")
    lb.log_ranking("p3", items("line\u2028separator", "日本語"), [1, 2], rater="ann")
    exported = tmp_path / "prefs.jsonl"
    with exported.open("w", encoding="utf-8") as fp:
        lb.export_rankings(fp, "trl")
    with open_logbook(tmp_path / "other.db") as other:
        assert import_file(other, exported) == 4
        assert {r["rater"] for r in other.rankings()} == {"import"}
        assert all(r["ranks"] == [1, 2] for r in other.rankings())
        again = io.StringIO()
        other.export_rankings(again, "trl")
    assert again.getvalue() == exported.read_text(encoding="utf-8")


@pytest.mark.parametrize("bad_line, field", [
    ('{"prompt": "p", "chosen": "c"}', "rejected"),
    ('{"prompt": "p", "chosen": 3, "rejected": "r"}', "chosen"),
    ('["p", "c", "r"]', None),
    ('{"prompt": "p", "chosen": "c", "rejected": "r"', None),
])
def test_malformed_import_line_names_path_line_and_field(lb, tmp_path, bad_line, field):
    path = tmp_path / "prefs.jsonl"
    good = json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"})
    path.write_text(f"{good}\n\n{bad_line}\n{good}\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"prefs\.jsonl:3") as info:
        import_file(lb, path)
    assert info.value.line == 3 and info.value.field == field
    assert lb.rankings() == []  # all lines or none


def test_import_is_idempotent_and_refuses_rows_without_a_preference(lb, tmp_path):
    path = tmp_path / "prefs.jsonl"
    rows = [{"prompt": "p", "chosen": "c", "rejected": "r"}, {"prompt": "q", "chosen": "c", "rejected": "r"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows + rows[:1]), encoding="utf-8")
    assert import_file(lb, path) == 2  # a repeated row counts once
    assert import_file(lb, path) == 0  # importing the same file again adds nothing
    assert len(lb.rankings()) == 2
    same = tmp_path / "same.jsonl"
    same.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"prompt": "p", "chosen": "x", "rejected": "x"}) + "\n")
    with pytest.raises(DataError, match=r"same\.jsonl:2: field 'rejected': the same text as chosen"):
        import_file(lb, same)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty.jsonl: no preference pairs in file"):
        import_file(lb, empty)
    assert len(lb.rankings()) == 2


def test_check_reports_a_damaged_file_as_its_finding(tmp_path):
    path = tmp_path / "book.db"
    with open_logbook(path) as book:
        for i in range(300):
            book.log_generation(prompt="p" * 500, output="o" * 500)
    data = bytearray(path.read_bytes())
    for offset in range(3 * 4096, len(data), 4096):  # scribble over every page past the schema
        data[offset + 100: offset + 300] = b"\xff" * 200
    path.write_bytes(bytes(data))
    with open_logbook(path) as book:
        assert book.check() == ["the database is damaged: database disk image is malformed"]
        with pytest.raises(GptkitError, match="logbook read failed: database disk image is malformed"):
            book.export_entries(io.StringIO())


def test_import_of_missing_file_is_a_data_error(lb, tmp_path):
    with pytest.raises(DataError, match="nope.jsonl"):
        import_file(lb, tmp_path / "nope.jsonl")


USER, SYSTEM = {"role": "user", "content": "Hi?"}, {"role": "system", "content": "Be kind."}


def answer(text):
    return [{"role": "assistant", "content": text}]


def test_every_trl_form_imports_as_the_pairs_training_reads_from_the_file(lb, tmp_path):
    path = tmp_path / "prefs.jsonl"
    rows = [{"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."},
            {"prompt": [USER], "chosen": answer("Hey!"), "rejected": answer("No.")},
            {"chosen": [USER, *answer("Welcome!")], "rejected": [USER, *answer("Leave.")]}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert import_file(lb, path) == 3
    assert load_preference_pairs("logbook") == load_preference_pairs(str(path)) == [
        ("Hi?", "Hello!", "Go away."), ("Hi?", "Hey!", "No."), ("Hi?", "Welcome!", "Leave.")]


def test_a_prompt_longer_than_one_user_turn_is_refused_naming_its_line(lb, tmp_path):
    path = tmp_path / "prefs.jsonl"
    rows = [{"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."},
            {"prompt": [SYSTEM, USER], "chosen": answer("Hey!"), "rejected": answer("No.")}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"prefs\.jsonl:2: field 'prompt': a ranking's prompt is one user turn") as info:
        import_file(lb, path)
    assert info.value.line == 2 and lb.rankings() == []  # all lines or none


def test_rank_import_takes_the_conversational_form(tmp_path):
    from click.testing import CliRunner

    from gptkit.cli import cli

    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps({"prompt": [USER], "chosen": answer("Hey!"), "rejected": answer("No.")}) + "\n",
                    encoding="utf-8")
    result = CliRunner().invoke(cli, ["rank", "import", str(path)])
    assert result.exit_code == 0 and result.stdout == f"imported 1 preference pairs from {path}\n"
    path.write_text(json.dumps({"prompt": [USER], "chosen": "Hey!", "rejected": answer("No.")[0]}) + "\n",
                    encoding="utf-8")
    result = CliRunner().invoke(cli, ["rank", "import", str(path)])
    assert result.exit_code == 1 and result.stderr.splitlines() == [
        f"error: {path}:1: field 'rejected': expected text or a list of messages ending with the assistant's"]


# ---- durability -------------------------------------------------------------------------------

CHILD = """
from gptkit.store import open_logbook
lb = open_logbook()
for n in range(100000):
    items = [{"text": f"answer {n} {k}", "checkpoint": "c"} for k in range(3)]
    ranking_id = lb.log_ranking(f"prompt {n}", items, [1, 2, 2], rater="child")
    print(ranking_id, flush=True)
"""


def test_acknowledged_rankings_survive_sigkill(isolated_home):
    env = {**os.environ, "GPTKIT_HOME": str(isolated_home),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    acknowledged = []
    try:
        while len(acknowledged) < 40:
            line = child.stdout.readline()
            assert line, f"child died early: {child.stderr.read()}"
            acknowledged.append(int(line))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL  # killed mid-way, not finished
    acknowledged += [int(line) for line in child.stdout.read().split()]
    with open_logbook() as lb:
        stored = {r["id"]: r for r in lb.rankings()}
        assert lb.check() == []
    assert set(acknowledged) <= set(stored)
    assert all(stored[i]["ranks"] == [1, 2, 2] for i in acknowledged)
