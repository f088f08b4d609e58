"""`gptkit chat` typed through a Japanese input method: full-width commands, arguments and picks
("／ｓｅｔ　ｔｅｍｐｅｒａｔｕｒｅ　０．５", "２＞１"), prompts kept exactly as typed, multi-line Japanese pasted
or typed with the newline key, and Japanese in /undo's notice and /help. Driven through the real
prompt-toolkit loop with pipe input, on the tiny random checkpoints.
"""

import io

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.cells import cell_len
from rich.console import Console

from gptkit.store import open_logbook
from gptkit.ui.chat_commands import ChatCompleter, handle, parse_pick, typed_form
from gptkit.ui.chat_repl import run_repl
from gptkit.ui.chat_session import ChatSession
from gptkit.ui.rank import parse_ordering

MAX_TOKENS = 4


@pytest.fixture
def ckpts(tiny_checkpoints, monkeypatch):
    monkeypatch.setenv("GPTKIT_CHECKPOINTS", str(tiny_checkpoints["base"].parent.parent))
    return tiny_checkpoints


def new_session(names) -> ChatSession:
    session = ChatSession(names, console=Console(file=io.StringIO(), width=100, color_system=None))
    session.settings.max_tokens = MAX_TOKENS
    return session


def drive(session: ChatSession, raw: str) -> str:
    """Send `raw` keys to the real prompt-toolkit loop; returns what the session printed."""
    out = session.console.file
    start = len(out.getvalue())
    with create_pipe_input() as pipe:
        pipe.send_text(raw)
        pipe.close()
        run_repl(session, input=pipe, output=DummyOutput())
    text = out.getvalue()[start:]
    assert "internal error" not in text and "Traceback" not in text, text
    return text


def user_messages(session: ChatSession) -> list[str]:
    return [m["content"] for m in session.messages if m["role"] == "user"]


def test_full_width_commands_and_arguments_work_as_typed_by_an_ime(ckpts):
    session = new_session(["assistant"])
    out = drive(session, "／ｓｅｔ　ｔｅｍｐｅｒａｔｕｒｅ　０．５\r"
                         "／ＳＥＴ ｍａｘ＿ｔｏｋｅｎｓ　３\r"
                         "／ｍｏｄｅ　ｂａｓｅ\r"
                         "／ｈｅｌｐ\r")
    assert "error" not in out, out
    assert session.settings.temperature == 0.5 and session.settings.max_tokens == 3
    assert session.mode == "base"
    assert "/template NAME|off" in out  # /help's list


def test_a_full_width_unknown_command_is_named_in_its_ascii_form(ckpts):
    session = new_session(["assistant"])
    assert not handle(session, "／ｔｅｍｐ　１")
    assert "unknown command /temp" in session.console.file.getvalue()


def test_prompts_and_free_text_arguments_are_never_normalised(ckpts):
    session = new_session(["assistant"])
    system = "あなたは丁寧なアシスタントです！ＡＢＣ　ｶﾀｶﾅ"
    prompt = "ＡＢＣって何ですか？　１２３　ｶﾀｶﾅ"
    drive(session, f"／ｓｙｓｔｅｍ　{system}\r{prompt}\r")
    assert session.system == system
    assert user_messages(session) == [prompt]
    with open_logbook() as logbook:
        assert [r["prompt"] for r in logbook.recent(kind="chat")] == [prompt]
    drive(session, "／ｓｙｓｔｅｍ　ｏｆｆ\r")
    assert session.system is None


def test_full_width_picks_and_orderings_after_regen(ckpts):
    session = new_session(["assistant"])
    out = drive(session, "日本の首都は？\r／ｒｅｇｅｎ　２\r２＞１\r")
    assert "ranking #1 saved (2>1)" in out, out
    with open_logbook() as logbook:
        [ranking] = logbook.rankings()
    assert ranking["ranks"] == [2, 1] and ranking["prompt"] == "日本の首都は？"
    out = drive(session, "／ｒｅｇｅｎ　３\r　３\r")  # an ideographic space before the pick
    assert "continuing with answer 3" in out, out


@pytest.mark.parametrize("typed,ranks", [("２＞１＝３", [2, 1, 2]), ("３　＞　２　＞　１", [3, 2, 1]), ("1＞2=3", [1, 2, 2])])
def test_orderings_read_full_width_digits_and_signs(typed, ranks):
    assert parse_ordering(typed, 3) == ranks
    assert parse_pick(typed_form(typed), 3) == (int(typed_form(typed).strip()[0]) - 1, ranks)


def test_vars_take_an_ideographic_space_and_keep_their_values(ckpts):
    session = new_session(["assistant"])
    drive(session, "／ｔｅｍｐｌａｔｅ　ｓｉｓｔｅｒ－ａｇｅ\r")
    assert session.template is not None and session.template.name == "sister-age"
    var = sorted(session.template.variables)[0]
    full_width_name = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in var)
    drive(session, f"／ｖａｒｓ　{full_width_name}＝東京タワー＆ＡＢＣ\r")
    assert session.vars == {var: "東京タワー＆ＡＢＣ"}  # the name is read, the value kept as typed
    out = drive(session, f"／ｖａｒｓ　{full_width_name}＝東京　ＡＢＣ\r")
    assert "expected name=value pairs, got 'ＡＢＣ'" in out  # an ideographic space ends a pair, like a space


def test_full_width_commands_complete(ckpts):
    completer = ChatCompleter()

    def complete(text):
        return [(c.text, c.start_position) for c in completer.get_completions(Document(text), CompleteEvent())]

    assert complete("／ｔｅ") == [("/template", -3)]
    assert complete("／ｓｅｔ　ｓｔ") == [("stats", -2)]


def test_pasted_japanese_lines_arrive_as_one_message(ckpts):
    session = new_session(["assistant"])
    pasted = "一行目です。\r\n二行目です。\r\n三行目：東京"
    drive(session, f"\x1b[200~{pasted}\x1b[201~\r")  # a terminal's bracketed paste, then Enter
    assert user_messages(session) == ["一行目です。\n二行目です。\n三行目：東京"]


def test_the_newline_key_adds_a_line_and_enter_sends(ckpts):
    session = new_session(["assistant"])
    drive(session, "こんにちは\x1b\r元気ですか？\r")  # Esc+Enter (Alt+Enter) adds a line; Enter sends
    assert user_messages(session) == ["こんにちは\n元気ですか？"]
    out = drive(session, "／ｈｅｌｐ\r")
    assert "Esc+Enter (Alt+Enter) adds a line" in out and "pasted lines stay one message" in out


def test_undo_notice_cuts_japanese_by_cells(ckpts):
    session = new_session(["assistant"])
    long = "日本の首都は東京です。" * 10
    out = drive(session, f"{long}\r／ｕｎｄｏ\r")
    notice = next(line for line in out.splitlines() if line.startswith("undone: "))
    assert "日本の首都" in notice and notice.endswith("…'")
    assert session.messages == []


def test_show_wraps_a_japanese_system_message_instead_of_cutting_it(ckpts):
    session = ChatSession(["assistant"], console=Console(file=io.StringIO(), width=60, color_system=None))
    session.settings.max_tokens = MAX_TOKENS
    system = "あなたは日本語で丁寧に答えるアシスタントです。必ず敬語を使い、短く答えてください。"
    out = drive(session, f"／ｓｙｓｔｅｍ　{system}\r日本の首都は？\r／ｓｈｏｗ\r")
    table = out[out.index(" checkpoints"):out.index("prompt of the last turn")]
    assert "…" not in table and system in "".join(table.split()).replace("system'", "")
    assert all(cell_len(line) <= 60 for line in out.splitlines())


def test_checkpoint_names_fold_only_when_no_checkpoint_has_the_name_as_typed(tiny_checkpoints, tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "checkpoints"
    for name in ("assistant", "実験１"):  # a run named with a full-width digit, as a Japanese user may
        shutil.copytree(tiny_checkpoints["assistant"].parent, root / name)
    monkeypatch.setenv("GPTKIT_CHECKPOINTS", str(root))
    session = new_session(["assistant"])
    drive(session, "／ｍｏｄｅｌ　実験１\r")
    assert session.names == ["実験１"]
    drive(session, "／ｍｏｄｅｌ　ａｓｓｉｓｔａｎｔ\r")
    assert session.names == ["assistant"]
    drive(session, "／ｃｏｍｐａｒｅ　実験１　ａｓｓｉｓｔａｎｔ\r")
    assert session.names == ["実験１", "assistant"] and session.mode == "compare"
