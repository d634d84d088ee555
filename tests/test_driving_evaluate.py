"""`neuralese evaluate` on a driving file: it is recognised, scored with the run's driving bundles,
and writes every key the issue lists; a run without driving bundles is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from eval.driving.run import driving_dir, is_driving_file
from training.driving.english import examples, split_games, train_driver, train_speaker
from translator.apps.games import evaluate_file as evaluate
from translator.games.driving.agents import DrivingAgent, DrivingAgentConfig
from translator.games.driving.logs import read_logs
from translator.storage.bundle import BundleError

DATA = Path(__file__).resolve().parents[1] / "data" / "driving"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    base = tmp_path_factory.mktemp("run") / "driving"
    games = read_logs(DATA / "train.jsonl")[:40]
    fit, held = split_games(games)
    a, b = examples(fit), examples(held)
    train_speaker(a, b, epochs=5)[0].save_pretrained(base / "english_speaker")
    train_driver(a, b, epochs=5)[0].save_pretrained(base / "english_driver")
    DrivingAgent(DrivingAgentConfig(hidden=16)).save_pretrained(base / "agents")
    DrivingAgent(DrivingAgentConfig(hidden=16, silent=True)).save_pretrained(base / "agents_silent")
    train = base / "train_small.jsonl"
    train.write_text("".join((DATA / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:30]))
    (base / "run.json").write_text(json.dumps({"train": str(train), "seed": 0}))
    return base.parent


def test_a_driving_file_is_recognised_and_a_colour_file_is_not(tmp_path):
    assert is_driving_file(DATA / "dev.jsonl")
    colours = Path(__file__).resolve().parents[1] / "data" / "colors_in_context" / "dev.csv"
    assert not is_driving_file(colours)
    other = tmp_path / "x.jsonl"
    other.write_text('{"message": [0.1]}\n')
    assert not is_driving_file(other)


def test_evaluate_writes_every_driving_key(run, tmp_path):
    metrics = evaluate(run, DATA / "dev.jsonl", tmp_path / "out", games=6)
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written.keys() == metrics.keys()
    for key in ("driving.people", "driving.agents", "driving.agents_silent"):
        m = written[key]
        assert m["games"] == 6 and 0 <= m["success"] <= 1 and 0 <= m["crash"] <= 1
        assert m["ci95_success"][0] <= m["success"] <= m["ci95_success"][1]
        assert set(m["per_map"]) <= {"0", "1", "2", "3", "4"}
    for name in ("belief", "direct", "random", "silent"):
        for way in ("to_neuralese", "to_english"):
            m = written[f"driving.translation.continuous.{name}.{way}"]
            assert m["games"] == 6 and m["episodes"] == 12  # each game twice, the person/robot as either car
    replay = written["driving.replay"]
    assert replay["reproduced"] == replay["transitions"] > 0
    assert (tmp_path / "out" / "report.md").read_text().count("driving.") >= 10


def test_people_numbers_are_the_logs_own(run, tmp_path):
    """H/H does not depend on the run: the logged outcome of the first games."""
    games = read_logs(DATA / "dev.jsonl")[:6]
    metrics = evaluate(run, DATA / "dev.jsonl", tmp_path / "o", games=6)
    done = sum(bool(g.done[-1].all()) for g in games) / 6
    assert metrics["driving.people"]["success"] == pytest.approx(done, abs=1e-4)


def test_a_run_without_driving_bundles_is_refused(tmp_path):
    with pytest.raises(BundleError, match="agents"):
        driving_dir(tmp_path)
