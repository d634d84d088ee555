"""`translator.games.accuracy` and `eval.metrics`: bootstrap intervals, per-condition accuracy, calibration error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval.metrics import expected_calibration_error, reliability
from translator.games.accuracy import accuracy_report, agreement_report, bootstrap_ci


def width(ci: list[float]) -> float:
    return ci[1] - ci[0]


def test_bootstrap_ci_contains_the_mean_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = (rng.random(300) < 0.7).astype(float)
    lo, hi = bootstrap_ci(x)
    assert lo <= x.mean() <= hi
    assert 0.0 <= lo < hi <= 1.0
    # about +-1.96 standard errors
    se = math.sqrt(x.mean() * (1 - x.mean()) / len(x))
    assert width([lo, hi]) == pytest.approx(2 * 1.96 * se, rel=0.2)
    assert bootstrap_ci(x, seed=0) == [lo, hi]
    assert bootstrap_ci(x, seed=1) != [lo, hi]


def test_bootstrap_ci_narrows_with_more_data():
    rng = np.random.default_rng(1)
    small = (rng.random(100) < 0.6).astype(float)
    large = (rng.random(4000) < 0.6).astype(float)
    assert width(bootstrap_ci(large)) < width(bootstrap_ci(small)) / 4


def test_constant_data_gives_a_point_interval():
    assert bootstrap_ci([1.0] * 20) == [1.0, 1.0]
    assert bootstrap_ci([0, 0, 0], groups=["a", "b", "b"]) == [0.0, 0.0]


def test_empty_data_gives_nan():
    lo, hi = bootstrap_ci([])
    assert math.isnan(lo) and math.isnan(hi)


def test_game_clustered_interval_is_wider_for_correlated_games():
    rng = np.random.default_rng(2)
    games = np.repeat([f"g{i:02d}" for i in range(40)], 20)
    per_game = rng.random(40) < 0.7  # every round of a game right, or every round wrong
    correct = np.repeat(per_game, 20).astype(float)
    rounds_ci = bootstrap_ci(correct)
    games_ci = bootstrap_ci(correct, groups=games)
    assert games_ci[0] <= correct.mean() <= games_ci[1]
    assert width(games_ci) > 2.5 * width(rounds_ci)


def test_singleton_groups_equal_round_resampling():
    x = (np.random.default_rng(3).random(50) < 0.5).astype(float)
    groups = [f"r{i:03d}" for i in range(50)]  # sorted names: group i is round i
    assert bootstrap_ci(x, groups=groups, seed=5) == bootstrap_ci(x, seed=5)


def test_unequal_game_sizes_weight_rounds_not_games():
    # game a: 1 round right; game b: 9 rounds wrong. Every resample mixes whole games, and the
    # interval is of the round-level mean, so it spans 0 .. 1 with mass near 0.1.
    x = [1.0] + [0.0] * 9
    lo, hi = bootstrap_ci(x, groups=["a"] + ["b"] * 9, n=2000)
    assert lo == 0.0 and hi == pytest.approx(1.0)


def test_accuracy_report_by_hand():
    correct = [True, False, True, True, False, True, True]
    conditions = ["far", "far", "split", "split", "close", "close", "close"]
    games = ["g1", "g2", "g1", "g2", "g1", "g2", "g3"]
    rep = accuracy_report(correct, conditions, games)
    assert set(rep) == {"accuracy", "ci95", "rounds", "by_condition"}
    assert rep["accuracy"] == pytest.approx(5 / 7)
    assert rep["rounds"] == 7
    assert list(rep["by_condition"]) == ["far", "split", "close"]
    expected = {"far": (0.5, 2), "split": (1.0, 2), "close": (2 / 3, 3)}
    for cond, (acc, n) in expected.items():
        sub = rep["by_condition"][cond]
        assert set(sub) == {"accuracy", "ci95", "rounds"}
        assert sub["accuracy"] == pytest.approx(acc)
        assert sub["rounds"] == n
        assert sub["ci95"][0] <= sub["accuracy"] <= sub["ci95"][1]
    assert rep["by_condition"]["split"]["ci95"] == [1.0, 1.0]
    assert rep["ci95"][0] <= rep["accuracy"] <= rep["ci95"][1]


def test_accuracy_report_omits_absent_conditions():
    rep = accuracy_report([True, False], ["far", "far"], ["g", "g"])
    assert list(rep["by_condition"]) == ["far"]
    assert rep["accuracy"] == 0.5


def test_agreement_report_is_the_accuracy_report_renamed():
    agree = [True, False, True, True, False, True, True]
    conditions = ["far", "far", "split", "split", "close", "close", "close"]
    games = ["g1", "g2", "g1", "g2", "g1", "g2", "g3"]
    acc, rep = accuracy_report(agree, conditions, games), agreement_report(agree, conditions, games)
    assert set(rep) == {"agreement", "ci95", "rounds", "by_condition"}
    assert (rep["agreement"], rep["ci95"], rep["rounds"]) == (acc["accuracy"], acc["ci95"], acc["rounds"]) == (5 / 7, acc["ci95"], 7)
    for cond, part in rep["by_condition"].items():
        assert part == {"agreement": acc["by_condition"][cond]["accuracy"], "ci95": acc["by_condition"][cond]["ci95"],
                        "rounds": acc["by_condition"][cond]["rounds"]}  # fmt: skip


def calibrated_case() -> tuple[np.ndarray, np.ndarray]:
    """Rows whose top probability equals the accuracy of the rows sharing it."""
    probs, labels = [], []
    for conf, n, n_right in ((0.8, 10, 8), (0.6, 10, 6), (0.5, 4, 2), (1.0, 3, 3)):
        rest = (1 - conf) / 2
        for i in range(n):
            probs.append([conf, rest, rest])
            labels.append(0 if i < n_right else 1 + i % 2)
    return np.array(probs), np.array(labels)


def test_ece_is_zero_when_perfectly_calibrated():
    probs, labels = calibrated_case()
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)


def test_ece_is_large_when_overconfident():
    probs = np.tile([0.98, 0.01, 0.01], (100, 1))
    labels = np.array([0, 1] * 50)  # half right at 98% confidence
    assert expected_calibration_error(probs, labels) == pytest.approx(0.48)


def test_ece_by_hand_two_bins():
    probs = np.array([[0.9, 0.05, 0.05]] * 4 + [[0.2, 0.6, 0.2]] * 4)
    labels = np.array([0, 0, 1, 2] + [1, 1, 1, 1])  # 0.9 conf at 50%, 0.6 conf at 100%
    assert expected_calibration_error(probs, labels) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)


def test_reliability_bins():
    probs, labels = calibrated_case()
    bins = reliability(probs, labels)
    assert sum(b["count"] for b in bins) == len(labels)
    for b in bins:
        assert b["lo"] < b["confidence"] <= b["hi"] + 1e-9
        assert b["accuracy"] == pytest.approx(b["confidence"])
    assert [b["count"] for b in bins] == [4, 10, 10, 3]
