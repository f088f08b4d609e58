"""Toy worlds by name: `toyworld` and `toyworld-ja` wherever a command takes the word."""

import json
import os
import subprocess
import sys

import pytest

from gptkit.data import toyworld, toyworld_ja, world
from gptkit.data.chat import load_conversations
from gptkit.data.preferences import load_prompts
from gptkit.errors import UsageError
from gptkit.prompting.experiment import load_cases
from gptkit.train.pretrain import load_pretrain_documents, tokenizer_split
from gptkit.ui.rank import load_rank_prompts


@pytest.mark.parametrize("spec, parsed", [
    ("toyworld", ("en", None)), ("toyworld-ja", ("ja", None)), ("toyworld:two-hop", ("en", "two-hop")),
    ("toyworld-ja:capital", ("ja", "capital")), ("toyworld-jp", None), ("logbook", None), ("data/toyworld", None),
])
def test_a_spec_names_a_world_and_maybe_a_kind(spec, parsed):
    assert world.parse(spec) == parsed


def test_every_reader_gives_the_japanese_world_for_its_name():
    assert world.world("ja") is toyworld_ja and world.world("en") is toyworld
    documents, key = load_pretrain_documents(["toyworld-ja"])
    assert documents[:50] == toyworld_ja.pretrain_documents()[:50] and key == "toyworld-ja-v1"
    assert load_pretrain_documents(["toyworld"])[1] == "toyworld-v1"
    assert (tokenizer_split(["toyworld-ja"]), tokenizer_split(["toyworld"]), tokenizer_split(["a.txt"])) == ("ja", "default", "default")
    assert load_conversations("toyworld-ja")[:5] == toyworld_ja.sft_conversations()[:5]
    assert load_prompts("toyworld-ja") == [t.question for t in toyworld_ja.rank_prompts()]
    assert [p.text for p in load_rank_prompts("toyworld-ja")] == [t.question for t in toyworld_ja.rank_prompts()]
    cases = load_cases("toyworld-ja:two-hop", limit=5)
    expected = [t for t in toyworld_ja.reasoning_tasks() if t.kind == "two-hop"][:5]
    assert [(c.variables["question"], c.expected, c.kind) for c in cases] == [(t.question, t.answer, "two-hop") for t in expected]
    assert cases[0].source == "toyworld-ja two-hop #1"
    with pytest.raises(UsageError, match="toyworld-ja:nope: no cases of kind 'nope'"):
        load_cases("toyworld-ja:nope")


def test_data_toyworld_writes_the_japanese_world(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gptkit", "data", "toyworld", "--lang", "ja", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    first = json.loads((tmp_path / "pretrain.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["text"] == toyworld_ja.pretrain_documents()[0]
    proc = subprocess.run([sys.executable, "-m", "gptkit", "data", "toyworld", "--lang", "fr", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert proc.returncode == 2 and "'fr' is not one of 'en', 'ja'" in proc.stderr and "Traceback" not in proc.stderr
