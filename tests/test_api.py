"""The scripting API: its documented example runs, it imports without torch, and it gives the
same answers as the experiment code the CLI uses."""

import contextlib
import io
import subprocess
import sys
import textwrap

import pytest

from gptkit import api
from gptkit.errors import CheckpointError, UsageError
from gptkit.prompting.experiment import Case, case_seed


@pytest.fixture
def named_checkpoints(tiny_checkpoints, monkeypatch):
    """The tiny base and assistant runs, reachable by the names "base" and "assistant"."""
    monkeypatch.setenv("GPTKIT_CHECKPOINTS", str(tiny_checkpoints["base"].parent.parent))
    return tiny_checkpoints


def documented_example() -> str:
    """The indented code block at the top of the module docstring."""
    intro = api.__doc__.split("\nContract:")[0]
    block = "\n".join(line for line in intro.splitlines() if line.startswith("    ") or not line.strip())
    assert "from gptkit import api" in block and "api.run_experiment(" in block
    return textwrap.dedent(block).strip()


def test_documented_example_runs(named_checkpoints):
    out = io.StringIO()
    namespace = {}
    with contextlib.redirect_stdout(out):
        exec(compile(documented_example(), "gptkit.api example", "exec"), namespace)
    printed = out.getvalue().splitlines()
    assert printed[0] == f"{namespace['prompt'].text} {len(namespace['prompt'].ids)}".splitlines()[0]
    assert namespace["v"].n == 8 and len(namespace["v"].texts) == 8
    assert namespace["result"].summary[0].total == 3
    assert printed[-1] == str([(c.template, c.correct, c.total) for c in namespace["result"].summary])
    from gptkit.store import open_logbook

    with open_logbook() as book:
        assert len(book.experiment_results(namespace["result"].experiment_id)) == 6


def test_importing_the_api_does_not_import_torch():
    code = "import sys, gptkit.api; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_render_generate_and_vote(named_checkpoints):
    ckpt = api.load("assistant", device="cpu")
    assert ckpt.kind == "assistant"
    rendered = api.render("few-shot", ckpt, question="What is the capital of Peru?")
    assert rendered.prompt[-1] == {"role": "user", "content": "What is the capital of Peru?"}
    assert ckpt.tokenizer.decode(rendered.ids) == rendered.text

    texts = api.generate(ckpt, rendered, n=3, temperature=1.0, max_tokens=6, seed=1)
    assert len(texts) == 3 and texts == api.generate(ckpt, rendered, n=3, temperature=1.0, max_tokens=6, seed=1)
    assert texts != api.generate(ckpt, rendered, n=3, temperature=1.0, max_tokens=6, seed=2)
    assert api.generate(ckpt, rendered.prompt, n=3, temperature=1.0, max_tokens=6, seed=1) == texts  # messages
    (first,) = api.generate(ckpt, "What is 2 + 3?", temperature=0, max_tokens=8, stop=["e"])
    assert "e" not in first

    template = api.load_template("self-consistency")
    vote = api.vote(ckpt, template, k=4, seed=7, question="What is 2 + 3?")
    assert isinstance(vote, api.Vote) and vote.n == 4 and len(vote.texts) == len(vote.answers) == 4
    # The API's vote is the experiment's cell: same seed, same samples.
    result = api.run_experiment([template], [ckpt], [Case(id="q", variables={"question": "What is 2 + 3?"},
                                                          expected="5")], samples=4, seed=0)
    again = api.vote(ckpt, template, k=4, seed=case_seed(0, 0), question="What is 2 + 3?")
    assert list(again.texts) == result.rows[0].outputs and again.answer == result.rows[0].extracted


def test_api_errors_are_typed(named_checkpoints, tiny_checkpoints):
    ckpt = api.load(tiny_checkpoints["base"], device="cpu")
    with pytest.raises(UsageError):
        api.generate(ckpt, "hi", n=0)
    with pytest.raises(UsageError):
        api.vote(ckpt, "few-shot", k=0)
    with pytest.raises(CheckpointError):
        api.load("nowhere")
