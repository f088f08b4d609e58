"""The leaderboard: battles from rankings, the Bradley–Terry fit, bootstrap intervals, the CLI."""

import json
import math
import random

import pytest
from click.testing import CliRunner

from gptkit.cli import cli
from gptkit.leaderboard import Battle, build_leaderboard, fit_ratings, leaderboard_table, ranking_battles
from gptkit.store import open_logbook

STRENGTH = {"strong": 1.5, "middle": 0.5, "weak": -1.0}  # true log-strengths


def simulated_battles(n: int, seed: int, tie_rate: float = 0.1) -> list[Battle]:
    """Battles drawn from a known Bradley–Terry world, with some ties."""
    rng = random.Random(seed)
    names = sorted(STRENGTH)
    battles = []
    for _ in range(n):
        a, b = rng.sample(names, 2)
        if rng.random() < tie_rate:
            battles.append(Battle(a, b, 0.5))
            continue
        p = 1 / (1 + math.exp(STRENGTH[b] - STRENGTH[a]))
        battles.append(Battle(a, b, 1.0 if rng.random() < p else 0.0))
    return battles


def test_known_ordering_is_recovered_with_intervals():
    battles = simulated_battles(600, seed=1)
    rows = build_leaderboard(battles, samples=300, seed=0)
    assert [r.checkpoint for r in rows] == ["strong", "middle", "weak"]
    assert [r.rank for r in rows] == [1, 2, 3]
    for row in rows:
        assert row.ci_low <= row.rating <= row.ci_high
        assert row.battles == row.wins + row.ties + row.losses
    assert sum(r.battles for r in rows) == 2 * len(battles)
    assert abs(sum(r.rating for r in rows) / 3 - 1000) < 1e-6  # the Elo anchor: mean 1000
    # With 600 battles the strong and the weak checkpoints are told apart with confidence.
    assert rows[0].ci_low > rows[2].ci_high
    # Same battles and seed, same table; another seed moves only the intervals.
    assert build_leaderboard(battles, samples=300, seed=0) == rows
    other = build_leaderboard(battles, samples=300, seed=1)
    assert [r.rating for r in other] == [r.rating for r in rows] and other != rows


def test_two_models_match_the_closed_form():
    # Without ties, the MLE gap is log(wins/losses); the weak ridge prior shifts it by well under a point.
    ratings = fit_ratings([Battle("a", "b", 1.0)] * 30 + [Battle("b", "a", 1.0)] * 10)
    assert ratings["a"] - ratings["b"] == pytest.approx(400 * math.log10(3), abs=1.0)
    # A tie is half a win each: one win and two ties is 2 wins to 1.
    ratings = fit_ratings([Battle("a", "b", 1.0)] * 10 + [Battle("a", "b", 0.5)] * 20)
    assert ratings["a"] - ratings["b"] == pytest.approx(400 * math.log10(2), abs=1.0)


def test_unbeaten_checkpoint_gets_a_finite_rating():
    rows = build_leaderboard([Battle("a", "b", 1.0)] * 5, samples=50)
    assert rows[0].checkpoint == "a" and math.isfinite(rows[0].rating) and rows[0].win_rate == 1.0
    assert rows[1].win_rate == 0.0
    assert build_leaderboard([Battle("a", "b", 1.0)], samples=0)[0].ci_low is None


def ranking(status, items, deleted=None):
    return {"status": status, "deleted": deleted,
            "items": [{"checkpoint": c, "rank": r, "text": t} for t, c, r in items]}


def test_battles_come_from_pairs_of_different_checkpoints():
    rankings = [
        ranking("ranked", [("x", "A", 2), ("y", "B", 1), ("z", "A", 2), ("w", "B", 3)]),
        ranking("ranked", [("x", "A", 1), ("y", None, 2)]),  # imported answers have no checkpoint
        ranking("all_bad", [("x", "A", None), ("y", "B", None)]),
        ranking("ranked", [("x", "A", 1), ("y", "B", 2)], deleted="2024-01-01"),
    ]
    battles = ranking_battles(rankings)
    # (x,y): B wins; (x,w): A wins; (y,z): B wins; (z,w): A wins; same-checkpoint pairs are no battle.
    assert battles == [Battle("A", "B", 0.0), Battle("A", "B", 1.0), Battle("B", "A", 1.0), Battle("A", "B", 1.0)]
    tie = ranking_battles([ranking("ranked", [("x", "A", 1), ("y", "B", 1)])])
    assert tie == [Battle("A", "B", 0.5)]


def test_table_lists_every_checkpoint():
    from rich.console import Console

    rows = build_leaderboard(simulated_battles(100, seed=2), samples=20)
    console = Console(width=120, record=True)
    console.print(leaderboard_table(rows, n_battles=100))
    text = console.export_text()
    for name in STRENGTH:
        assert name in text
    assert "half a win" in text and "95% CI" in text


def test_leaderboard_command(tmp_path):
    runner = CliRunner()
    empty = runner.invoke(cli, ["leaderboard"]).output
    assert "no battles yet: rank answers from two or more checkpoints" in empty and "gptkit rank -m A -m B" in empty
    with open_logbook() as lb:
        lb.log_ranking("p", [{"text": "a", "checkpoint": "m/step-1"}, {"text": "b", "checkpoint": "m/step-1"}],
                       [2, 1], rater="ann")
    one_model = runner.invoke(cli, ["leaderboard"]).output
    assert "the logbook holds 1 ranking, each of answers from one checkpoint, and a battle needs two" in one_model
    assert "gptkit rank -m A -m B" in one_model
    with open_logbook() as lb:
        lb.undo_last_ranking()
        for i in range(12):
            good, bad = ("m/step-2", "m/step-1") if i % 4 else ("m/step-1", "m/step-2")
            lb.log_ranking(f"p{i}", [{"text": "a", "checkpoint": bad}, {"text": "b", "checkpoint": good}],
                           [2, 1], rater="ann", synthetic=i == 0)
    result = runner.invoke(cli, ["leaderboard", "--json", "--samples", "100"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["checkpoint"] for r in rows] == ["m/step-2", "m/step-1"]
    assert rows[0]["wins"] == 9 and rows[0]["losses"] == 3 and rows[0]["win_rate"] == 0.75
    assert rows[0]["ci_low"] <= rows[0]["rating"] <= rows[0]["ci_high"]
    real_only = [json.loads(line) for line in runner.invoke(
        cli, ["leaderboard", "--json", "--no-synthetic", "--samples", "0"]).output.splitlines()]
    assert real_only[0]["battles"] == 11 and real_only[0]["ci_low"] is None
    table = runner.invoke(cli, ["leaderboard", "--samples", "50"])
    assert table.exit_code == 0 and "m/step-2" in table.output and "rating" in table.output
