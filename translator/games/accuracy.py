"""Accuracy and agreement with bootstrap intervals over whole games (or players), per condition."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from translator.games.colors.corpus import CONDITIONS


def bootstrap_ci(correct: Sequence[float], groups: Sequence[str] | None = None, n: int = 1000, seed: int = 0) -> list[float]:
    """95% percentile interval of the mean, resampling whole *groups* (games) when given.

    Rounds of one game share a pair of players, so they are not independent: resampling games
    gives honest (wider) intervals than resampling rounds.
    """
    x = np.asarray(correct, dtype=np.float64)
    if len(x) == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    if groups is None:
        means = x[rng.integers(0, len(x), size=(n, len(x)))].mean(axis=1)
    else:
        _, gid = np.unique(np.asarray(groups), return_inverse=True)
        sums, counts = np.bincount(gid, weights=x), np.bincount(gid)
        pick = rng.integers(0, len(sums), size=(n, len(sums)))
        means = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [float(lo), float(hi)]


def accuracy_report(correct: Sequence[bool], conditions: Sequence[str], games: Sequence[str], seed: int = 0) -> dict:
    """`{"accuracy", "ci95", "rounds", "by_condition": {cond: {"accuracy", "ci95", "rounds"}}}`."""
    x = np.asarray(correct, dtype=np.float64)
    cond, game = np.asarray(conditions), np.asarray(games)

    def one(mask: np.ndarray) -> dict:
        return {
            "accuracy": float(x[mask].mean()) if mask.any() else float("nan"),
            "ci95": bootstrap_ci(x[mask], game[mask], seed=seed),
            "rounds": int(mask.sum()),
        }

    report = one(np.ones(len(x), dtype=bool))
    report["by_condition"] = {c: one(cond == c) for c in CONDITIONS if (cond == c).any()}
    return report


def agreement_report(agree: Sequence[bool], conditions: Sequence[str], games: Sequence[str], seed: int = 0) -> dict:
    """`accuracy_report` of how often two picks agree, named as such:
    `{"agreement", "ci95", "rounds", "by_condition": {cond: {"agreement", "ci95", "rounds"}}}`."""
    report = accuracy_report(agree, conditions, games, seed)

    def rename(part: dict) -> dict:
        return {"agreement": part["accuracy"], "ci95": part["ci95"], "rounds": part["rounds"]}

    return {**rename(report), "by_condition": {c: rename(part) for c, part in report["by_condition"].items()}}
