"""The leaderboard: Bradley–Terry ratings of checkpoints from the rankings people made.

Owns the arena recipe (as in FastChat's Chatbot Arena, applied to your own checkpoints):

- Battles (`ranking_battles`): every pair of answers in one live, "ranked" ranking whose two
  answers come from different checkpoints. The better-ranked answer wins; a tie counts as HALF a
  win for each side (not skipped), so "these two are equally good" pulls ratings together.
  All-bad, skipped and undone rankings, and answers with no checkpoint (imported), give none.
- Ratings (`fit_ratings`): the Bradley–Terry maximum-likelihood fit, P(i beats j) =
  sigmoid(theta_i - theta_j), by Newton's method in numpy, with a weak ridge prior on theta
  (`RIDGE`) so a checkpoint that never lost still gets a finite rating. Reported on the Elo
  scale: 1000 + 400 * log10(e^theta); the ridge makes the ratings average 1000.
- Intervals (`build_leaderboard`): 95% percentile intervals from bootstrap resamples of the
  battles, seeded, so the same logbook and seed always print the same table.

Must not know the logbook's SQL or the terminal: it takes ranking dicts (as `Logbook.rankings`
returns them) and returns rows; `leaderboard_table` turns rows into a Rich table.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

RIDGE = 0.01  # Gaussian prior on theta: negligible once a checkpoint has a few battles
SCALE, BASE, ANCHOR = 400.0, 10.0, 1000.0  # Elo's conventions


@dataclass(frozen=True)
class Battle:
    model_a: str
    model_b: str
    score_a: float  # 1.0 a won, 0.5 tie, 0.0 b won


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    checkpoint: str
    rating: float
    ci_low: float | None  # None without bootstrap samples
    ci_high: float | None
    battles: int
    wins: int
    ties: int
    losses: int

    @property
    def win_rate(self) -> float:
        """Share of battles won, a tie counting half."""
        return (self.wins + 0.5 * self.ties) / self.battles if self.battles else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "win_rate": self.win_rate}


def ranking_battles(rankings: list[dict]) -> list[Battle]:
    """Every battle the rankings imply, in ranking order then shown order."""
    battles = []
    for ranking in rankings:
        if ranking["status"] != "ranked" or ranking.get("deleted"):
            continue
        items = [item for item in ranking["items"] if item.get("checkpoint") and item["rank"] is not None]
        for i, a in enumerate(items):
            for b in items[i + 1:]:
                if a["checkpoint"] == b["checkpoint"]:
                    continue
                score = 1.0 if a["rank"] < b["rank"] else 0.5 if a["rank"] == b["rank"] else 0.0
                battles.append(Battle(a["checkpoint"], b["checkpoint"], score))
    return battles


def _win_matrix(a: np.ndarray, b: np.ndarray, score: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    """wins[i, j] = (weighted) battles i won against j, ties adding half to both sides."""
    wins = np.zeros((n, n))
    np.add.at(wins, (a, b), weight * score)
    np.add.at(wins, (b, a), weight * (1.0 - score))
    return wins


def fit_strengths(wins: np.ndarray, ridge: float = RIDGE, max_iter: int = 100) -> np.ndarray:
    """Bradley–Terry log-strengths theta (n,) maximising sum wins[i,j] log sigmoid(theta_i - theta_j)
    - ridge/2 |theta|^2, by Newton's method (the objective is strictly concave)."""
    n = wins.shape[0]
    games = wins + wins.T
    theta = np.zeros(n)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(theta[None, :] - theta[:, None]))  # p[i, j] = P(i beats j)
        grad = (wins - games * p).sum(axis=1) - ridge * theta
        curvature = games * p * (1.0 - p)
        neg_hessian = np.diag(curvature.sum(axis=1)) - curvature + ridge * np.eye(n)
        step = np.linalg.solve(neg_hessian, grad)
        # Near-separable data (a checkpoint that always wins) makes early Newton steps huge.
        step = np.clip(step, -2.0, 2.0)
        theta += step
        if np.abs(step).max() < 1e-9:
            break
    return theta


def to_elo(theta: np.ndarray) -> np.ndarray:
    return ANCHOR + SCALE * theta / math.log(BASE)


def fit_ratings(battles: list[Battle]) -> dict[str, float]:
    """Elo-scale Bradley–Terry rating of every checkpoint in `battles`."""
    models, a, b, score = _encode(battles)
    theta = fit_strengths(_win_matrix(a, b, score, np.ones(len(score)), len(models)))
    return dict(zip(models, to_elo(theta).tolist()))


def _encode(battles: list[Battle]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    models = sorted({m for battle in battles for m in (battle.model_a, battle.model_b)})
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[battle.model_a] for battle in battles], dtype=np.int64)
    b = np.array([index[battle.model_b] for battle in battles], dtype=np.int64)
    score = np.array([battle.score_a for battle in battles], dtype=np.float64)
    return models, a, b, score


def build_leaderboard(battles: list[Battle], samples: int = 1000, seed: int = 0,
                      level: float = 0.95) -> list[LeaderboardRow]:
    """Rows best first: rating, a `level` bootstrap interval over `samples` resamples of the
    battles (none when samples is 0), and each checkpoint's record."""
    assert battles, "a leaderboard needs at least one battle"
    models, a, b, score = _encode(battles)
    n, count = len(models), len(battles)
    ratings = to_elo(fit_strengths(_win_matrix(a, b, score, np.ones(count), n)))
    low = high = None
    if samples > 0:
        rng = np.random.default_rng(seed)
        draws = np.empty((samples, n))
        for s in range(samples):
            weight = rng.multinomial(count, np.full(count, 1.0 / count)).astype(np.float64)
            draws[s] = to_elo(fit_strengths(_win_matrix(a, b, score, weight, n)))
        tail = (1.0 - level) / 2 * 100
        low, high = np.percentile(draws, [tail, 100 - tail], axis=0)
    record = {m: [0, 0, 0] for m in models}  # wins, ties, losses
    for battle in battles:
        outcome = 0 if battle.score_a == 1.0 else 1 if battle.score_a == 0.5 else 2
        record[battle.model_a][outcome] += 1
        record[battle.model_b][2 - outcome] += 1
    order = sorted(range(n), key=lambda i: (-ratings[i], models[i]))
    return [LeaderboardRow(rank=place, checkpoint=models[i], rating=float(ratings[i]),
                           ci_low=None if low is None else float(low[i]),
                           ci_high=None if high is None else float(high[i]),
                           battles=sum(record[models[i]]), wins=record[models[i]][0],
                           ties=record[models[i]][1], losses=record[models[i]][2])
            for place, i in enumerate(order, start=1)]


def leaderboard_table(rows: list[LeaderboardRow], n_battles: int):
    """A Rich table: rank, checkpoint, rating, 95% interval, battles, win rate."""
    from rich.table import Table

    table = Table(title="leaderboard", caption=(
        f"Bradley–Terry on {n_battles} battles (answer pairs from different checkpoints in one "
        "ranking; a tie is half a win each). Elo scale, mean 1000; 95% bootstrap intervals."))
    for name, justify in (("rank", "right"), ("checkpoint", "left"), ("rating", "right"),
                          ("95% CI", "right"), ("battles", "right"), ("win rate", "right")):
        table.add_column(name, justify=justify)
    for row in rows:
        interval = "-" if row.ci_low is None else f"{row.ci_low:.0f} to {row.ci_high:.0f}"
        table.add_row(str(row.rank), row.checkpoint, f"{row.rating:.0f}", interval,
                      str(row.battles), f"{row.win_rate:.0%}")
    return table
