"""Metrics of a multi-seed run (`eval.seeds`, `neuralese evaluate` on `RUN/seed-S/`): means over
seeds, `seed_spread` beside every accuracy and agreement, each seed's own metrics, reuse of an
evaluation that is still current, and the report's `mean ± spread`."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eval.colors.report import format_table
from eval.colors.translation_report import fmt_acc, fmt_agreement
from eval.evaluate import evaluate
from eval.seeds import aggregate, file_sha256, is_current, seed_runs


def _acc(a: float, lo: float, hi: float, rounds: int = 10) -> dict:
    return {
        "accuracy": a,
        "ci95": [lo, hi],
        "rounds": rounds,
        "by_condition": {c: {"accuracy": a, "ci95": [lo, hi], "rounds": rounds} for c in ("far", "split", "close")},
    }


def _metrics(a: float, agreement: float, extra: bool = False) -> dict:
    m = {
        "data": {
            "file": "dev.csv",
            "sha256": "abc",
            "rounds": 30,
            "games": 3,
            "by_condition": {"far": 10, "split": 10, "close": 10},
        },
        "human": _acc(0.9, 0.8, 0.95),
        "human_listener": {
            **_acc(0.8, 0.7, 0.9),
            "ece": 0.02,
            "ece_uncalibrated": 0.04,
            "temperature": 1.5,
            "nll": 0.5,
            "mean_confidence": 0.8,
            "reliability": {
                "calibrated": [{"confidence": 0.5, "accuracy": 0.5, "count": 30}],
                "uncalibrated": [{"confidence": 0.5, "accuracy": 0.5, "count": 30}],
            },
        },
        "translation": {
            "gumbel": {
                "belief": {
                    "to_english": {
                        **_acc(a, a - 0.1, a + 0.1),
                        "bleu": 1.0,
                        "transplanted": {"agreement": agreement, "ci95": [agreement - 0.2, agreement + 0.2], "rounds": 30},
                    },
                    "to_neuralese": _acc(a / 2, a / 2 - 0.1, a / 2 + 0.1),
                }
            }
        },
    }
    if extra:
        m["translation"]["gumbel"]["only_here"] = {"to_english": _acc(0.5, 0.4, 0.6)}
    return m


def test_two_seeds_average_to_their_mean_with_the_spread_beside_each_accuracy_and_agreement():
    out = aggregate([(0, _metrics(0.8, 0.6, extra=True)), (1, _metrics(0.6, 0.7))])
    en = out["translation"]["gumbel"]["belief"]["to_english"]
    assert en["accuracy"] == pytest.approx(0.7) and en["seed_spread"] == pytest.approx(0.2)
    assert en["ci95"] == pytest.approx([0.6, 0.8])  # the mean of the seeds' intervals
    assert en["by_condition"]["close"]["accuracy"] == pytest.approx(0.7)
    assert en["by_condition"]["close"]["seed_spread"] == pytest.approx(0.2)
    assert en["transplanted"]["agreement"] == pytest.approx(0.65) and en["transplanted"]["seed_spread"] == pytest.approx(0.1)
    neu = out["translation"]["gumbel"]["belief"]["to_neuralese"]
    assert neu["accuracy"] == pytest.approx(0.35) and neu["seed_spread"] == pytest.approx(0.1)
    assert out["human"]["accuracy"] == pytest.approx(0.9) and out["human"]["seed_spread"] == 0.0
    assert out["data"]["rounds"] == 30 and isinstance(out["data"]["rounds"], int)  # shared counts stay counts
    assert out["data"]["file"] == "dev.csv"
    assert "only_here" not in out["translation"]["gumbel"]  # not every seed has it: no mean
    assert [s["seed"] for s in out["seeds"]] == [0, 1]
    assert out["seeds"][1]["translation"]["gumbel"]["belief"]["to_english"]["accuracy"] == 0.6
    assert "only_here" in out["seeds"][0]["translation"]["gumbel"]
    json.dumps(out, allow_nan=False)  # plain JSON


def test_a_seed_without_a_number_gives_no_spread_and_text_is_the_first_seeds():
    a, b = _metrics(0.8, 0.6), _metrics(0.6, 0.7)
    b["data"]["file"] = "elsewhere.csv"
    b["translation"]["gumbel"]["belief"]["to_english"]["accuracy"] = float("nan")
    out = aggregate([(3, a), (5, b)])
    en = out["translation"]["gumbel"]["belief"]["to_english"]
    assert math.isnan(en["accuracy"]) and math.isnan(en["seed_spread"])
    assert out["data"]["file"] == "dev.csv"
    with pytest.raises(ValueError, match="no seeds"):
        aggregate([])


finite = st.floats(0, 1, allow_nan=False)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=6))
def test_means_lie_between_the_seeds_and_the_spread_is_max_minus_min(values):
    out = aggregate([(i, _metrics(a, g)) for i, (a, g) in enumerate(values)])
    accs, agrees = [a for a, _ in values], [g for _, g in values]
    en = out["translation"]["gumbel"]["belief"]["to_english"]
    assert min(accs) - 1e-12 <= en["accuracy"] <= max(accs) + 1e-12
    assert en["seed_spread"] == pytest.approx(max(accs) - min(accs))
    assert en["transplanted"]["seed_spread"] == pytest.approx(max(agrees) - min(agrees))
    assert len(out["seeds"]) == len(values)


def test_the_report_shows_mean_plus_minus_spread_beside_the_interval():
    out = aggregate([(0, _metrics(0.8, 0.6)), (1, _metrics(0.6, 0.7))])
    en = out["translation"]["gumbel"]["belief"]["to_english"]
    assert fmt_acc(en) == "0.700 ± 0.200 [0.600, 0.800]"
    assert fmt_agreement(en["transplanted"]) == "0.650 ± 0.100 [0.450, 0.850]"
    assert fmt_acc(_metrics(0.8, 0.6)["human"]) == "0.900 [0.800, 0.950]"  # one seed: no spread
    assert "0.900 ± 0.000 [0.800, 0.950]" in format_table(out)


def _seed_run(root: Path, seed: int) -> Path:
    d = root / f"seed-{seed}"
    (d / "english").mkdir(parents=True)
    (d / "english" / "config.json").write_text("{}")
    return d


def test_seed_runs_are_the_seed_directories_that_hold_english_models(tmp_path):
    for s in (10, 2):
        _seed_run(tmp_path, s)
    (tmp_path / "seed-7").mkdir()  # no English models: not a run
    (tmp_path / "seed-x" / "english").mkdir(parents=True)
    assert seed_runs(tmp_path) == [(2, tmp_path / "seed-2"), (10, tmp_path / "seed-10")]
    assert seed_runs(tmp_path / "missing") == []


def test_an_evaluation_is_current_only_on_the_same_data_and_when_newer_than_the_run(tmp_path):
    run = _seed_run(tmp_path, 0)
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"data": {"sha256": "abc", "rounds": 30}}))
    os.utime(run / "english" / "config.json", (1_000, 1_000))
    assert is_current(path, run, "abc", 30)
    assert not is_current(path, run, "abd", 30) and not is_current(path, run, "abc", 29)
    os.utime(run / "english" / "config.json")  # the run changed after the evaluation
    os.utime(path, (2_000, 2_000))
    assert not is_current(path, run, "abc", 30)
    path.write_text("not json")
    assert not is_current(path, run, "abc", 30) and not is_current(tmp_path / "none.json", run, "abc", 30)


def test_evaluate_on_a_multi_seed_run_writes_the_mean_and_reuses_current_seed_evaluations(tmp_path, game_slice):
    from translator.games.colors.corpus import load_rounds

    data = game_slice(0, 2)
    sha, rounds = file_sha256(data), len(load_rounds(data))
    run, out = tmp_path / "run", tmp_path / "eval"
    for seed, (a, g) in enumerate([(0.8, 0.6), (0.6, 0.7)]):
        _seed_run(run, seed)
        os.utime(run / f"seed-{seed}" / "english" / "config.json", (1_000, 1_000))
        m = _metrics(a, g)
        m["data"].update(sha256=sha, rounds=rounds)
        (out / f"seed-{seed}").mkdir(parents=True)
        (out / f"seed-{seed}" / "metrics.json").write_text(json.dumps(m))
    metrics = evaluate(run, data, out)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["translation"]["gumbel"]["belief"]["to_english"]["accuracy"] == pytest.approx(0.7)
    assert saved["translation"]["gumbel"]["belief"]["to_english"]["seed_spread"] == pytest.approx(0.2)
    assert [s["seed"] for s in saved["seeds"]] == [0, 1] and metrics["data"]["rounds"] == rounds
    report = (out / "report.md").read_text()
    assert "Mean over 2 seeds (0, 1)" in report and "0.700 ± 0.200 [0.600, 0.800]" in report
