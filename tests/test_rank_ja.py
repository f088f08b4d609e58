"""`gptkit rank` typed through a Japanese input method: full-width orderings and commands
("２＞１＝３", "ｎ　メモ", "ｑ"), notes and typed prompts kept exactly as written, and Japanese
prompts and answers on screen. Driven through prompt-toolkit pipe input on the tiny checkpoints.
"""

import io

import pytest
from prompt_toolkit import PromptSession
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from gptkit.store import open_logbook
from gptkit.ui.rank import RankPrompt, RankSession, load_rank_prompts, parse_ordering, typed_form


@pytest.fixture(scope="module")
def loaded(tiny_checkpoints):
    from gptkit.checkpoint import load_checkpoint

    return [load_checkpoint(tiny_checkpoints["base"]), load_checkpoint(tiny_checkpoints["assistant"])]


def run_session(checkpoints, prompts, keys: str, k=3):
    screen = io.StringIO()
    with create_pipe_input() as pipe, open_logbook() as logbook:
        pipe.send_text(keys)
        pipe.close()
        session = RankSession(logbook, checkpoints=checkpoints, prompts=prompts, k=k, rater="ja",
                              console=Console(file=screen, width=100),
                              ask=PromptSession(input=pipe, output=DummyOutput()).prompt, max_tokens=4, seed=3)
        saved = session.run()
    return saved, screen.getvalue()


def test_full_width_orderings_and_commands_from_an_input_method(loaded):
    prompts = [RankPrompt("日本の首都はどこですか？"), RankPrompt("猫は何と鳴きますか？")]
    keys = ("？\n"                      # help, full-width question mark
            "ｎ　答え３はＡＢＣで丁寧\n"  # a note: the command folds, the text stays as typed
            "２＞１＝３\n"               # ranked, with a tie
            "ｂ\n"                       # all bad
            "富士山の高さは？\n"          # a typed prompt, kept as typed
            "３＞２＞１\n"
            "ｑ\n")
    saved, screen = run_session(loaded, prompts, keys)
    assert "order the answers best first" in screen and "日本の首都はどこですか？" in screen
    assert len(saved) == 3
    with open_logbook() as logbook:
        first, bad, typed = logbook.rankings()
    assert first["ranks"] == [2, 1, 2] and first["note"] == "答え３はＡＢＣで丁寧"
    assert bad["status"] == "all_bad"
    assert typed["prompt"] == "富士山の高さは？" and typed["ranks"] == [3, 2, 1]


def test_only_full_width_forms_fold():
    assert typed_form("／ｓｅｔ　ｔｅｍｐｅｒａｔｕｒｅ　０．５") == "/set temperature 0.5"
    assert typed_form("ｶﾀｶﾅ²") == "ｶﾀｶﾅ²"  # half-width katakana and superscripts are not what an IME means by ASCII
    assert parse_ordering("２＞１＝３", 3) == [2, 1, 2]


def test_a_japanese_txt_prompts_file(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("日本の首都はどこですか？\n　\n猫は何と鳴きますか？\n日本の首都はどこですか？\n", encoding="utf-8")
    assert [p.text for p in load_rank_prompts(str(path))] == ["日本の首都はどこですか？", "猫は何と鳴きますか？"]
