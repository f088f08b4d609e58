"""The English README stays true to the code it documents: the chat's slash commands, the rank syntax."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"### {title}\n")
    return README[start:README.index("\n### ", start + 1)]


def test_every_chat_command_is_documented_and_every_documented_one_exists():
    from gptkit.ui.chat_commands import COMMANDS

    documented = set(re.findall(r"`/(\w+)", section("In the chat")))
    assert documented == set(COMMANDS) - {"exit"}
    assert "`/help` lists them" in section("In the chat")


def test_the_rank_syntax_is_the_one_the_session_reads():
    from gptkit.ui.rank import HELP, parse_ordering

    text = section("Ranking")
    assert parse_ordering("2>1=4>3", 4) == [2, 1, 3, 2] and "`2>1=4>3` means 2 is\nbest, 1 and 4 tie, 3 is worst" in text
    for key in ("b", "s", "u", "n", "q", "?"):
        assert f"`{key}" in text and re.search(rf"(^|\s){re.escape(key)}[, ]", HELP, flags=re.MULTILINE)
