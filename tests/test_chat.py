"""gptkit chat and gptkit log: the REPL driven through prompt-toolkit's pipe input, with tiny real
checkpoints (random weights: the answers are gibberish, the plumbing is what is tested) and a
real logbook in the test's own GPTKIT_HOME."""

import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.cells import cell_len
from rich.console import Console

from gptkit import paths
from gptkit.cli import cli
from gptkit.errors import UsageError
from gptkit.prompting.answers import majority_vote
from gptkit.prompting.templates import load_template, render_base, render_chat_messages
from gptkit.store import open_logbook
from gptkit.tokenizer import load_tokenizer, render_chat
from gptkit.ui.chat_commands import ChatCompleter, handle, parse_pick
from gptkit.ui.chat_repl import run_repl
from gptkit.ui.chat_session import ChatSession, extract_vote_answer
from gptkit.ui.render import displayable, show_vote, visible_prompt

MAX_TOKENS = 6  # random tiny models never stop on their own; keep every answer short


@pytest.fixture
def ckpts(tiny_checkpoints, monkeypatch):
    """The tiny checkpoints, reachable by name ("base", "assistant")."""
    monkeypatch.setenv("GPTKIT_CHECKPOINTS", str(tiny_checkpoints["base"].parent.parent))
    return tiny_checkpoints


def new_session(names, *, width=100, terminal=False, file=None, **kwargs) -> ChatSession:
    console = Console(file=file or io.StringIO(), width=width, force_terminal=terminal, color_system=None)
    session = ChatSession(names, console=console, **kwargs)
    session.settings.max_tokens = MAX_TOKENS
    return session


def drive(session: ChatSession, *lines: str, raw: str | None = None) -> str:
    """Type `lines` (each ended by Enter) into the real prompt-toolkit loop; returns the new output."""
    out = session.console.file
    start = len(out.getvalue())
    with create_pipe_input() as pipe:
        pipe.send_text(raw if raw is not None else "".join(line + "\r" for line in lines))
        pipe.close()
        run_repl(session, input=pipe, output=DummyOutput())
    text = out.getvalue()[start:]
    assert "internal error" not in text and "Traceback" not in text, text
    return text


def logged(kind: str | None = None) -> list[dict]:
    with open_logbook() as logbook:
        return list(reversed(logbook.recent(limit=1000, kind=kind)))


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error: ")]


# ---- assistant, base and compare turns --------------------------------------------------------


def test_assistant_turns_keep_the_conversation_and_land_in_the_logbook(ckpts):
    session = new_session(["assistant"])
    assert session.mode == "assistant"
    drive(session, "hello", "and you?")
    assert [m["role"] for m in session.messages] == ["user", "assistant", "user", "assistant"]
    first, second = logged("chat")
    assert first["session_id"] == second["session_id"] is not None
    assert (first["checkpoint"], first["mode"], first["prompt"]) == ("assistant/step-000001", "assistant", "hello")
    assert first["output"] == session.messages[1]["content"]
    for row in (first, second):
        assert row["settings"]["max_tokens"] == MAX_TOKENS and row["settings"]["temperature"] == 0.8
        assert isinstance(row["seed"], int) and row["settings"]["seed"] == row["seed"]
    # the second turn saw the whole conversation, rendered with the chat format
    assert second["rendered_prompt"].startswith("<|endoftext|><|user|>hello<|end|><|assistant|>")
    assert second["rendered_prompt"].endswith("<|user|>and you?<|end|><|assistant|>")


def test_a_logged_seed_reproduces_the_answer(ckpts):
    drive(new_session(["assistant"]), "Tell me a story")
    [first] = logged("chat")
    again = new_session(["assistant"])
    drive(again, f"/set seed {first['seed']}", "Tell me a story", "/clear", "Tell me a story")
    repeats = logged("chat")[1:]
    assert [r["output"] for r in repeats] == [first["output"]] * 2
    assert [r["seed"] for r in repeats] == [first["seed"]] * 2


def test_base_mode_continues_the_document(ckpts):
    session = new_session(["base"])
    assert session.mode == "base"
    out = drive(session, "Once upon a time")
    [row] = logged("chat")
    assert row["rendered_prompt"] == "<|endoftext|>Once upon a time"
    assert row["mode"] == "base" and session.messages == []
    assert "Once upon a time" in out


def test_compare_sends_one_prompt_and_seed_to_every_checkpoint_side_by_side(ckpts):
    session = new_session(["base", "assistant"], width=90)
    assert session.mode == "compare"
    out = drive(session, "日本の首都はどこですか")
    assert "base/step-000001 · base" in out and "assistant/step-000001 · assistant" in out
    assert out.count("tok/s") == 2
    base, assistant = logged("chat")
    assert {base["mode"], assistant["mode"]} == {"compare"} and base["seed"] == assistant["seed"]
    assert base["rendered_prompt"] == "<|endoftext|>日本の首都はどこですか"
    assert assistant["rendered_prompt"] == "<|endoftext|><|user|>日本の首都はどこですか<|end|><|assistant|>"
    # wide characters keep the panels' borders aligned: every panel line spans the full width
    panel_lines = [line for line in out.splitlines() if line and line[0] in "╭│╰"]
    assert panel_lines and {cell_len(line) for line in panel_lines} == {90}


def test_compare_command_and_mode_switches(ckpts):
    session = new_session(["assistant"])
    drive(session, "/compare base", "hi", "/mode assistant", "solo")
    assert session.names == ["assistant", "base"]
    rows = logged("chat")
    assert [r["mode"] for r in rows] == ["compare", "compare", "assistant"]
    assert rows[-1]["checkpoint"] == "assistant/step-000001"


def test_mode_assistant_answers_with_the_assistant_and_refuses_a_lone_base_model(ckpts):
    session = new_session(["base", "assistant"])
    drive(session, "/mode assistant", "hi", "/mode base", "hello")
    chat, document = logged("chat")
    assert chat["mode"] == "assistant" and chat["checkpoint"] == "assistant/step-000001"
    assert chat["rendered_prompt"].endswith("<|user|>hi<|end|><|assistant|>")
    assert document["mode"] == "base" and document["checkpoint"] == "base/step-000001"
    lone = new_session(["base"])
    out = drive(lone, "/mode assistant")
    assert len(error_lines(out)) == 1 and "is a base model" in out and "/model NAME" in out
    assert lone.mode == "base" and lone.names == ["base"]


def test_compare_streams_into_a_live_display_on_a_terminal(ckpts):
    session = new_session(["base", "assistant"], terminal=True)
    out = drive(session, "hello")
    assert "base/step-000001 · base" in out and "assistant/step-000001 · assistant" in out
    assert len(logged("chat")) == 2


def test_template_renders_the_first_turn_and_brings_its_stops_and_sampling(ckpts):
    template = load_template("few-shot")
    session = new_session(["assistant"])
    drive(session, "/template few-shot", "/set max_tokens 6", "What is the capital of Peru?", "And Chile?")
    first, second = logged("chat")
    tok = load_tokenizer(ckpts["assistant"])
    messages = render_chat_messages(template, {"question": "What is the capital of Peru?"})
    ids, _ = render_chat(tok, messages, add_generation_prompt=True)
    assert first["rendered_prompt"] == visible_prompt(tok, ids, for_terminal=False).plain
    assert first["template"] == "few-shot" and first["settings"]["stop"] == ["\n"]
    assert first["settings"]["temperature"] == 0.0 and first["seed"] == 0  # the template's defaults
    assert second["rendered_prompt"].endswith("<|user|>And Chile?<|end|><|assistant|>")  # later turns: plain
    drive(session, "/mode base", "What is the capital of Peru?")
    base_row = logged("chat")[-1]
    document = render_base(template, {"question": "What is the capital of Peru?"})
    assert base_row["rendered_prompt"] == "<|endoftext|>" + document


def test_template_off_restores_the_settings_the_template_changed(ckpts):
    session = new_session(["assistant"])
    before = session.settings.temperature, session.settings.seed
    out = drive(session, "/template few-shot", "/set max_tokens 9", "/template off", "hello", "/regen 3")
    s = session.settings
    assert (s.temperature, s.seed) == before == (0.8, None)  # back: /regen gives k different answers again
    assert s.max_tokens == 9  # changed by the user after the template: kept
    assert "template off · back to temperature 0.8, max_tokens" not in out  # max_tokens was the user's
    assert "template off · back to temperature 0.8, seed random" in out
    alternatives = [row["output"] for row in logged("chat") if row["extra"].get("regen")]
    assert len(alternatives) == 3 and len(set(alternatives)) > 1 and logged("chat")[-1]["seed"] != 0


# ---- hints, never tracebacks ------------------------------------------------------------------


def test_bad_values_and_unknown_commands_get_one_line_hints(ckpts):
    session = new_session(["assistant"])
    commands = ["/set temperature hot", "/set top_p 2", "/set colour red", "/set max_tokens", "/frobnicate",
                "/vot 3", "/mode chatty", "/regen", "/tokens", "/undo", "/load /no/such/file.json",
                "/template nosuch", "/model nosuch", "/vars =x", "/vote 0"]
    out = drive(session, *commands)
    errors = error_lines(out)
    assert len(errors) == len(commands), out
    assert "did you mean /vote?" in out and "temperature: expected a number >= 0, got 'hot'" in out
    assert session.settings.temperature == 0.8 and session.mode == "assistant" and logged() == []


def test_text_that_looks_like_markup_or_controls_is_shown_as_text(ckpts):
    session = new_session(["assistant"])
    out = drive(session, "/template few-shot", "/vars question=[/x]", "/system [bold]hi[/nope]", "/show",
                "/model [/x]", "[/x] is a closing tag")
    assert "question='[/x]'" in out and "'[bold]hi[/nope]'" in out
    assert len(error_lines(out)) == 1  # /model: no such checkpoint, said as text
    assert displayable("a\x1b[2Jb\x07\n\tc") == "a\ufffd[2Jb\ufffd\n\tc"


def test_a_vote_histogram_shows_answers_that_look_like_markup(ckpts):
    from gptkit.textgen import TextResult

    console = Console(file=io.StringIO(), width=100)
    results = [TextResult(text=t, tokens=[1], finish_reason="stop", prompt_tokens=1, seconds=0.1)
               for t in ("[/x]", "[/x]", "\x1b")]
    answers = ["[/x]", "[/x]", None]
    show_vote(console, "title", results, answers, majority_vote(answers))
    out = console.file.getvalue()
    assert out.count("[/x]") >= 3 and "\x1b" not in out and "67%" in out


def test_a_tied_vote_says_it_is_a_tie():
    from gptkit.textgen import TextResult

    console = Console(file=io.StringIO(), width=200)
    answers = ["Oslo", "Lima", "Rome"]
    results = [TextResult(text=t, tokens=[1], finish_reason="stop", prompt_tokens=1, seconds=0.1) for t in answers]
    show_vote(console, "title", results, answers, majority_vote(answers))
    out = console.file.getvalue()
    assert "tie: 3 answers have 1 of 3 votes each (Oslo, Lima, Rome); the one sampled first wins" in out
    assert "answer Oslo · agreement 33%" in out
    console = Console(file=io.StringIO(), width=200)
    majority = ["Oslo", "Lima", "Oslo"]
    show_vote(console, "title", results[:2] + results[:1], majority, majority_vote(majority))
    assert "tie" not in console.file.getvalue()


def test_compare_hints_name_checkpoints_that_exist(ckpts):
    out = drive(new_session(["assistant"]), "/compare")
    assert error_lines(out) == ["error: /compare: give two or more checkpoints, e.g. /compare assistant base"]


def test_commands_change_a_session_only_through_its_methods():
    """chat_commands parses and calls; chat_session owns the state. An assignment to a session
    attribute (or into one) in the commands module would bring the old knot back."""
    import ast

    import gptkit.ui.chat_commands as commands

    tree = ast.parse(Path(commands.__file__).read_text(encoding="utf-8"))
    targets = [t for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))
               for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]

    def roots(target):
        while isinstance(target, (ast.Attribute, ast.Subscript)):
            target = target.value
        return target

    writes = [ast.unparse(t) for t in targets if isinstance(t, (ast.Attribute, ast.Subscript))
              and isinstance(roots(t), ast.Name) and roots(t).id == "session"]
    mutators = [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute) and node.func.attr in ("append", "pop", "update", "clear")
                and isinstance(roots(node.func.value), ast.Name) and roots(node.func.value).id == "session"
                and isinstance(node.func.value, ast.Attribute)]
    assert writes == [] and mutators == []


# ---- /show, /tokens ---------------------------------------------------------------------------


def test_show_prints_the_exact_prompt_and_its_token_count(ckpts):
    session = new_session(["assistant"])
    out = drive(session, "/system Be brief.", "hello", "/show")
    tok = load_tokenizer(ckpts["assistant"])
    ids, _ = render_chat(tok, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
                         add_generation_prompt=True)
    assert f"{len(ids)} tokens" in out
    assert "<|endoftext|><|system|>Be brief.<|end|><|user|>hello<|end|><|assistant|>" in out
    assert logged("chat")[0]["extra"]["prompt_tokens"] == len(ids)


def test_show_previews_a_templates_prompt_before_the_first_turn(ckpts):
    session = new_session(["assistant"])
    out = drive(session, "/template few-shot", "/show")
    template = load_template("few-shot")
    tok = load_tokenizer(ckpts["assistant"])
    ids, _ = render_chat(tok, render_chat_messages(template, {}), add_generation_prompt=True)
    assert "prompt preview with the template's question" in out and f"{len(ids)} tokens" in out


def test_checkpoints_load_in_the_background_once_the_prompt_is_shown(ckpts):
    session = new_session(["base", "assistant"])
    drive(session, raw="")
    deadline = time.monotonic() + 60
    while not (session.cache.is_loaded("base") and session.cache.is_loaded("assistant")):
        assert time.monotonic() < deadline, "the checkpoints never loaded"
        time.sleep(0.05)
    assert session.checkpoint("base") is session.checkpoint("base")  # loaded once, then cached


def test_tokens_colours_the_last_exchange(ckpts):
    session = new_session(["assistant"])
    out = drive(session, "hello", "/tokens")
    [row] = logged("chat")
    assert f"{row['extra']['prompt_tokens']} prompt tokens (dim) + {row['tokens']} answer tokens" in out


def test_tokens_show_where_each_answer_token_ends(ckpts):
    from gptkit.ui.render import TOKEN_STYLES, colored_tokens

    tok = load_tokenizer(ckpts["assistant"])
    ids = tok.encode("hello world, hello moon")
    text = colored_tokens(tok, ids, [0, 0] + [1] * (len(ids) - 2))
    styles = [str(span.style) for span in text.spans]
    assert len(styles) == len(ids)
    answer = styles[2:]
    assert all("green" in st for st in answer)
    assert all(TOKEN_STYLES[i % 2] in st for i, st in enumerate(styles))  # neighbours never share a shade


# ---- /regen, picks and rankings ---------------------------------------------------------------


def test_regen_pick_with_an_ordering_saves_a_ranking(ckpts):
    session = new_session(["assistant"])
    out = drive(session, "Say something", "/regen 3", "2>1=3")
    assert "ranking #1 saved" in out
    alternatives = [r for r in logged("chat") if r["extra"].get("regen")]
    assert [r["extra"]["regen"] for r in alternatives] == [1, 2, 3]
    with open_logbook() as logbook:
        [ranking] = logbook.rankings()
    assert ranking["rater"] == "chat" and ranking["prompt"] == "Say something"
    assert ranking["ranks"] == [2, 1, 2]
    assert [item["text"] for item in ranking["items"]] == [r["output"] for r in alternatives]
    assert session.messages[-1]["content"] == alternatives[1]["output"]  # the conversation goes on with 2


def test_a_plain_pick_continues_without_a_ranking_and_a_bad_one_stays_open(ckpts):
    session = new_session(["assistant"])
    out = drive(session, "Say something", "/regen 2", "3>1", "2")
    assert len(error_lines(out)) == 1 and "the answers are 1-2" in out
    second = [r for r in logged("chat") if r["extra"].get("regen") == 2][0]
    assert session.messages[-1]["content"] == second["output"]
    with open_logbook() as logbook:
        assert logbook.rankings() == []
    drive(session, "/regen 2", "next question")  # anything else leaves the pick: the answer stays
    assert session.pending is None and session.messages[-2]["content"] == "next question"


@given(st.permutations(list(range(1, 6))), st.lists(st.booleans(), min_size=4, max_size=4))
def test_orderings_parse_into_ranks(order, ties):
    text = str(order[0]) + "".join(("=" if tie else ">") + str(n) for tie, n in zip(ties, order[1:]))
    best, ranks = parse_pick(text, 5)
    assert best == order[0] - 1
    expected = [1]
    for tie in ties:
        expected.append(expected[-1] + (0 if tie else 1))
    assert [ranks[n - 1] for n in order] == expected


def test_orderings_that_cannot_be_a_ranking_are_refused():
    assert parse_pick(" 2 ", 3) == (1, None)
    for bad in ("4", "1>1", "1>2", "0>1>2", "a>b", ">"):
        with pytest.raises(UsageError):
            parse_pick(bad, 3)


# ---- /vote ------------------------------------------------------------------------------------


def test_vote_shows_a_histogram_and_logs_the_majority(ckpts):
    session = new_session(["assistant"])
    out = drive(session, "What is 2 + 3?", "/vote 5")
    assert "█" in out and "agreement" in out and "5 samples" in out
    [row] = logged("vote")
    assert row["extra"]["n"] == 5 and len(row["extra"]["samples"]) == 5
    answers = [extract_vote_answer(text, None) for text in row["extra"]["samples"]]
    assert row["extra"]["answers"] == answers
    assert row["output"] == (majority_vote(answers).answer or "")
    assert row["settings"]["samples"] == 5 and row["settings"]["temperature"] == 0.8


def test_vote_uses_the_templates_question_regex_and_temperature(ckpts):
    session = new_session(["base"])
    out = drive(session, "/template self-consistency", "/set max_tokens 6", "/vote 3")
    assert "3 samples at temperature 0.7" in out
    [row] = logged("vote")
    assert row["prompt"] == load_template("self-consistency").variables["question"]
    assert row["template"] == "self-consistency"


def test_vote_extraction_defaults():
    assert extract_vote_answer("so. The answer is 42. Then", None) == "42"
    assert extract_vote_answer("\n  Paris  \nmore", None) == "Paris"
    assert extract_vote_answer("The answer is 0042", load_template("sister-age")) == "42"


# ---- /undo, /clear, /save, /load --------------------------------------------------------------


def test_undo_forgets_the_last_exchange(ckpts):
    session = new_session(["assistant"])
    drive(session, "first", "second", "/undo")
    assert [m["content"] for m in session.messages if m["role"] == "user"] == ["first"]
    out = drive(session, "/undo", "/undo")
    assert session.messages == [] and len(error_lines(out)) == 1


def test_save_and_load_round_trip(ckpts, tmp_path):
    session = new_session(["assistant"])
    path = tmp_path / "chat.json"
    drive(session, "/template few-shot", "/vars question=Why?", "/system Be kind.", "/set top_k 5",
          "/set max_tokens 7", "/set stats on", "hello", f"/save {path}")
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["checkpoints"] == ["assistant"] and saved["template"] == "few-shot"
    restored = new_session(["base"])
    out = drive(restored, f"/load {path}")
    assert "loaded" in out
    for attribute in ("messages", "settings", "names", "mode", "vars", "system"):
        assert getattr(restored, attribute) == getattr(session, attribute), attribute
    assert restored.template.name == "few-shot"


def test_save_never_replaces_a_file_it_did_not_write_without_overwrite(ckpts, tmp_path):
    path = tmp_path / "notes.json"
    path.write_text("my own notes")
    session = new_session(["assistant"])
    out = drive(session, "hello", f"/save {path}")
    assert error_lines(out) == [f"error: /save: {path} exists; /save {path} --overwrite replaces it"]
    assert path.read_text() == "my own notes"
    out = drive(session, f"/save {path} --overwrite", "again", f"/save {path}")  # its own file: no question
    assert error_lines(out) == [] and len(json.loads(path.read_text())["messages"]) == 4


def test_a_failed_save_leaves_the_old_file_whole(ckpts, tmp_path, monkeypatch):
    path = tmp_path / "chat.json"
    session = new_session(["assistant"])
    drive(session, "hello", f"/save {path}")
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", full_disk)
    out = drive(session, "more", f"/save {path}")
    assert error_lines(out) == [f"error: /save: cannot write {path} (No space left on device); nothing was changed "
                                "there"]
    assert path.read_bytes() == before


def test_load_names_the_bad_field(ckpts, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": "gptkit-chat", "version": 1, "checkpoints": ["assistant"],
                                "mode": "assistant", "template": None, "vars": {}, "system": None,
                                "settings": {"temperature": -1}, "messages": []}), encoding="utf-8")
    session = new_session(["assistant"])
    out = drive(session, f"/load {path}")
    assert error_lines(out) == [f"error: {path}: field 'settings.temperature': temperature: expected a number >= 0, "
                                "got '-1'"]


def test_a_bad_checkpoint_or_chat_file_is_refused_and_the_chat_goes_on(ckpts, tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "more"
    shutil.copytree(ckpts["assistant"].parent, root / "huge")
    meta_path = root / "huge" / ckpts["assistant"].name / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["n_layer"] = 100_000  # its weights hold 2 layers: refused from the header, nothing allocated
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "deep.json").write_text("[" * 100_000)
    os.mkfifo(tmp_path / "fifo.json")
    session = new_session(["assistant"])
    out = drive(session, "hello", f"/model {root / 'huge'}", f"/load {tmp_path / 'deep.json'}",
                f"/load {tmp_path / 'fifo.json'}", "still here?")
    errors = error_lines(out)
    assert len(errors) == 3 and "n_layer" in errors[0] and "nested too deeply" in errors[1] and "pipe" in errors[2]
    assert session.names == ["assistant"] and len(session.messages) == 4  # nothing changed, the chat went on


# ---- the context window -----------------------------------------------------------------------


@pytest.fixture
def short_context(ckpts, tmp_path_factory):
    """An assistant with a 64-token context, so a few turns overflow it."""
    import torch

    from gptkit.checkpoint import save_checkpoint
    from gptkit.model import GPT, config_for

    tok = load_tokenizer(ckpts["assistant"])
    torch.manual_seed(0)
    model = GPT(config_for("tiny", tok.n_vocab, block_size=64))
    save_checkpoint(ckpts["assistant"].parent.parent / "short", model=model, tokenizer=tok,
                    meta={"kind": "assistant", "step": 1, "tokens_seen": 0, "parent": None})
    return "short"


def test_a_full_context_drops_the_oldest_turns_with_a_notice(short_context):
    session = new_session([short_context])
    questions = [f"question number {n} about the capital of France" for n in range(5)]
    out = drive(session, *questions)
    assert "context full: the model no longer sees" in out
    budget = 64 - MAX_TOKENS
    assert all(row["extra"]["prompt_tokens"] <= budget for row in logged("chat"))
    seen = [m["content"] for m in session.context() if m["role"] == "user"]
    assert seen[-1] == questions[-1] and questions[0] not in seen
    assert session.context()[0]["role"] == "user"  # whole turns go: no orphaned answer is left first
    # The model's view shrank; the conversation did not.
    assert [m["content"] for m in session.messages if m["role"] == "user"] == questions


def test_load_ask_save_keeps_the_turns_the_context_dropped(short_context, tmp_path):
    path = tmp_path / "chat.json"
    earlier = [m for n in range(6) for m in ({"role": "user", "content": f"question {n} about the capital of France"},
                                             {"role": "assistant", "content": f"answer {n} is a long one, Paris"})]
    session = new_session([short_context])
    drive(session, "first")
    session.save(path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "messages": earlier}))
    session = new_session([short_context])
    out = drive(session, f"/load {path}", "one more question", f"/save {path}")
    assert "context full" in out and "saved 14 messages" in out
    assert json.loads(path.read_text())["messages"][:12] == earlier  # 12 + the new turn, nothing dropped
    assert len(session.context()) < 14


# ---- input handling ---------------------------------------------------------------------------


def test_multiline_blocks_and_escape_enter(ckpts):
    session = new_session(["assistant"])
    drive(session, raw='"""\rline one\rline two"""\rfirst\x1b\rsecond\r')
    users = [m["content"] for m in session.messages if m["role"] == "user"]
    assert users == ["line one\nline two", "first\nsecond"]


def test_ctrl_c_at_the_prompt_clears_and_ctrl_d_leaves(ckpts):
    session = new_session(["assistant"])
    drive(session, raw="typed but abandoned\x03hello\r\x04never sent\r")
    assert [m["content"] for m in session.messages if m["role"] == "user"] == ["hello"]
    assert paths.history_path("chat").is_file()
    assert "hello" in paths.history_path("chat").read_text(encoding="utf-8")


class InterruptedTerminal(io.StringIO):
    """Console output that raises KeyboardInterrupt (as Ctrl-C would) on the third write once armed."""

    armed, writes = False, 0

    def write(self, text):
        if self.armed:
            self.writes += 1
            if self.writes == 3:
                self.armed = False
                raise KeyboardInterrupt
        return super().write(text)


def test_ctrl_c_during_an_answer_keeps_the_partial_answer(ckpts):
    out = InterruptedTerminal()
    session = new_session(["assistant"], file=out)
    session.settings.max_tokens = 40
    out.armed = True
    handle(session, "tell me everything")
    [row] = logged("chat")
    assert row["extra"]["finish_reason"] == "interrupted"
    assert session.messages[-1] == {"role": "assistant", "content": row["output"]}
    assert "interrupted" in out.getvalue()
    handle(session, "and then?")  # the chat goes on
    assert len(logged("chat")) == 2


def test_completion_of_commands_templates_checkpoints_and_settings(ckpts):
    completer = ChatCompleter()

    def complete(text):
        return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]

    assert complete("/te") == ["/template"]
    assert complete("/template sister") == ["sister-age", "sister-age-ja"]
    assert complete("/model ba") == ["base"]
    assert complete("/compare base as") == ["assistant"]
    assert complete("/set st") == ["stats"]
    assert complete("/set stats o") == ["on", "off"]
    assert complete("hello /te") == []


# ---- scripting and `gptkit log` ---------------------------------------------------------------


def test_piped_stdin_is_a_script(ckpts):
    script = "/set temperature hot\n/set seed 5\nhello\n/show\n/quit\nnever asked\n"
    proc = subprocess.run([sys.executable, "-m", "gptkit", "chat", "-m", "assistant", "--max-tokens", "5"],
                          input=script, capture_output=True, text=True, timeout=120, env=os.environ.copy())
    # The script goes on past a bad line, but the error is on stderr and the exit status says so.
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: temperature: expected a number >= 0, got 'hot'"
    assert "error" not in proc.stdout and "<|user|>hello<|end|><|assistant|>" in proc.stdout
    [row] = logged("chat")
    shown = displayable(row["output"]).expandtabs().strip()  # Rich expands tabs; control chars show as U+FFFD
    assert row["seed"] == 5 and shown in proc.stdout


def test_a_piped_script_without_errors_exits_0(ckpts):
    proc = subprocess.run([sys.executable, "-m", "gptkit", "chat", "-m", "assistant", "--max-tokens", "3"],
                          input="hello\n", capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_log_commands(ckpts, tmp_path):
    session = new_session(["assistant"])
    drive(session, "hello moon", "goodbye sun")
    runner = CliRunner(env={"COLUMNS": "160"})
    listing = runner.invoke(cli, ["log"])
    assert listing.exit_code == 0 and "hello moon" in listing.output and "goodbye sun" in listing.output
    found = runner.invoke(cli, ["log", "--search", "moon", "--json"])
    [entry] = [json.loads(line) for line in found.output.splitlines()]
    assert entry["prompt"] == "hello moon" and entry["kind"] == "chat"
    shown = runner.invoke(cli, ["log", "show", str(entry["id"])])
    assert shown.exit_code == 0 and "<|user|>hello moon<|end|><|assistant|>" in shown.output
    as_json = runner.invoke(cli, ["log", "show", str(entry["id"]), "--json"])
    assert json.loads(as_json.output) == entry
    assert runner.invoke(cli, ["log", "show", "999"]).exit_code == 2
    out = tmp_path / "chats.jsonl"
    assert runner.invoke(cli, ["log", "export", "--kind", "chat", str(out)]).exit_code == 0
    assert [json.loads(line)["prompt"] for line in out.read_text(encoding="utf-8").splitlines()] == [
        "hello moon", "goodbye sun"]
    healthy = runner.invoke(cli, ["log", "check"])
    assert healthy.exit_code == 0 and "logbook OK" in healthy.output


def test_log_check_fails_on_a_damaged_logbook(ckpts):
    drive(new_session(["assistant"]), "hello")
    conn = sqlite3.connect(paths.logbook_path())
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("UPDATE generations SET session_id = 'gone'")
    conn.commit()
    conn.close()
    result = CliRunner().invoke(cli, ["log", "check"])
    assert result.exit_code == 1 and "problem" in result.output


def test_importing_the_cli_does_not_import_torch():
    code = "import sys, gptkit.cli, gptkit.ui.chat_repl, gptkit.ui.chat_commands, gptkit.ui.chat_session; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
