"""Driving faithfulness: labels as defined (one step, in the listening car's state), a fitted
probability monotone in the divergence, the bundle round-trips and refuses a changed file, the
API, stream and service carry a float probability with the bundle (null without), and fitting on
a tiny run is deterministic for a seed."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from training.driving.english import word_vocabulary
from training.driving.faithfulness import DrivingFaithfulnessArgs, fit_direction, fit_driving_faithfulness
from translator.apps.games import evaluate_file as evaluate
from translator.apps.service import create_app
from translator.apps.stream import run_stream
from translator.games.driving.agents import DrivingAgent, DrivingAgentConfig
from translator.games.driving.english import HumanDriver, HumanDriverConfig, HumanSpeaker
from translator.games.driving.env import N_ACTIONS
from translator.games.driving.env import new_state as make_state
from translator.games.driving.logs import read_logs
from translator.storage.bundle import BundleError, reseal
from translator.translate.driving.api import DrivingTranslator
from translator.translate.driving.faithfulness import (
    CONTEXT_FEATURES,
    FEATURES,
    FOLDER,
    MODELS_FILE,
    DrivingFaithfulness,
    Reading,
)
from translator.translate.driving.faithfulness_rows import AgentListener, Heard, HumanListener, Rows

DATA = Path(__file__).resolve().parents[1] / "data" / "driving"
WIDTH = len(FEATURES) + len(CONTEXT_FEATURES)
CAR = {"cell": [6, 5], "heading": "N", "goal": [0, 3]}
OTHER = {"cell": [1, 2], "heading": "S", "goal": [3, 0]}


class GoDriver:
    """A model-human driver that goes forward (1) when the last utterance says "go", else stays (0)."""

    def bag(self, texts):
        return torch.tensor([[float("go" in t)] for t in texts])

    def logits(self, obs, heard):
        return torch.cat([1 - heard, heard, torch.zeros(len(heard), N_ACTIONS - 2)], 1)


class SignAgent:
    """An agent that goes forward when the heard message's first number is positive, else stays."""

    class config:
        message_size, hidden = 2, 1

    def initial_state(self, batch):
        return torch.zeros(batch, 1)

    def step(self, obs, heard, h):
        go = (heard[:, :1] > 0).float()
        return torch.cat([1 - go, go, torch.zeros(len(go), N_ACTIONS - 2)], 1), h[:, 0], heard, h

    def channel(self, message, generator=None):
        return message


def _reading(n: int) -> Reading:
    flat = torch.full((n, 4), -float(np.log(4)))
    return Reading(
        torch.rand(n, 5), torch.rand(n), flat, flat, torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    )


def _state(n: int = 2):
    return make_state([0] * n, [[[1, 2], [3, 6]]] * n, [[2, 3]] * n, [[[0, 3], [3, 0]]] * n)


def test_r_to_h_label_is_the_model_human_hearing_english_against_the_agent_hearing_the_message():
    rows = {"go": Rows(), "quiet": Rows()}
    listener = HumanListener(GoDriver(), SignAgent(), rows, np.array([10, 11]))
    listener.reset(2)
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # episode 0: the agent would go; episode 1: it would stay
    heard = Heard(["go", "go"], z, {"go": (["go", "go"], _reading(2)), "quiet": (["", ""], _reading(2))},
                  np.array([True, True]), torch.zeros(2, len(CONTEXT_FEATURES)))  # fmt: skip
    actions, _ = listener.act(_state(), 1, heard)
    assert rows["go"].tensors()[1].tolist() == [True, False]  # "go" → forward: agrees only where the agent goes
    assert rows["quiet"].tensors()[1].tolist() == [False, True]  # silence → stays: agrees only where the agent stays
    assert actions.tolist() == [1, 1] and rows["go"].tensors()[2].tolist() == [10, 11]
    assert rows["go"].tensors()[0].shape == (2, WIDTH)


def test_h_to_r_label_is_the_agent_hearing_the_translation_against_the_model_human_hearing_the_utterance():
    rows = {"plus": Rows(), "minus": Rows()}
    listener = AgentListener(SignAgent(), GoDriver(), rows, np.array([0, 1]), seed=0)
    listener.reset(2)
    plus, minus = torch.tensor([[1.0, 0.0]] * 2), torch.tensor([[-1.0, 0.0]] * 2)
    heard = Heard(plus, ["go", ""], {"plus": (plus, _reading(2)), "minus": (minus, _reading(2))},
                  np.array([True, False]), torch.zeros(2, len(CONTEXT_FEATURES)))  # fmt: skip
    actions, _ = listener.act(_state(), 1, heard)
    assert rows["plus"].tensors()[1].tolist() == [True]  # episode 1's speaker was not driving: no row
    assert rows["minus"].tensors()[1].tolist() == [False]
    assert actions.tolist() == [1, 1]  # the agent acts on the played translation


def _synthetic_rows(n: int = 600, seed: int = 0) -> dict[str, Rows]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, WIDTH, generator=g)
    x[:, 0] = torch.rand(n, generator=g) * 3  # log1p divergence
    y = torch.rand(n, generator=g) < torch.sigmoid(3 - 2.5 * x[:, 0])
    rows = {"belief": Rows(), "random": Rows()}
    half = n // 2
    rows["belief"].add(x[:half], y[:half], np.arange(half))
    rows["random"].add(x[half:], y[half:], np.arange(half))
    return rows


def _model(seed: int = 0) -> DrivingFaithfulness:
    models, rates = {}, {}
    for direction in ("to_english", "to_neuralese"):
        models[direction], rates[direction] = fit_direction(_synthetic_rows(seed=seed), 0.9, 1e-3)
    return DrivingFaithfulness(models, "synthetic", rates, {"games": 0})


def test_probability_falls_as_the_divergence_grows_the_threshold_meets_its_precision_and_fits_repeat():
    model, rows = _model(), _synthetic_rows()
    assert _model().models == model.models  # the same rows fit the same models
    grid = torch.full((7, WIDTH), 0.5)
    grid[:, 0] = torch.linspace(0, 3, 7)
    for inside in (True, False):
        p = model.probability("to_english", grid, torch.full((7,), inside))
        assert (p[1:] < p[:-1]).all() and 0 < float(p.min()) < float(p.max()) < 1
    x, y, _ = rows["belief"].tensors()
    m = model.get("to_english", True)
    flagged = m.probability(x) >= m.threshold
    assert flagged.any() and float(y[flagged].float().mean()) >= 0.9
    assert model.baselines["to_english"]["prior"] == pytest.approx(
        float(torch.cat([r.tensors()[1] for r in rows.values()]).float().mean())
    )


def test_the_bundle_round_trips_and_refuses_a_changed_file(tmp_path: Path):
    model = _model()
    model.save_pretrained(tmp_path / "f")
    back = DrivingFaithfulness.from_pretrained(tmp_path / "f")
    x = torch.rand(5, WIDTH)
    assert torch.equal(back.probability("to_neuralese", x), model.probability("to_neuralese", x))
    assert back.get("to_english", False).threshold == model.get("to_english", False).threshold
    side = tmp_path / "f" / MODELS_FILE
    original = side.read_text()
    side.write_text(original.replace('"labels": "synthetic"', '"labels": "synthetic, edited"'))
    with pytest.raises(BundleError, match=r"models\.json: content does not match the sha256"):
        DrivingFaithfulness.from_pretrained(tmp_path / "f")
    data = json.loads(original)
    data["features"] = data["features"][:-1]
    side.write_text(json.dumps(data))
    reseal(tmp_path / "f")  # a deliberate edit, sealed: caught by the features check
    with pytest.raises(BundleError, match=r"models\.json: features .* are not this version's"):
        DrivingFaithfulness.from_pretrained(tmp_path / "f")


@pytest.fixture(scope="module")
def run_with_bundle(tiny_driving_run, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("faithful") / "run"
    shutil.copytree(tiny_driving_run, run)
    _model().save_pretrained(run / "driving" / FOLDER)
    return run


RECORDS = [
    {"map": 0, "car": CAR, "message": [0.125] * 64, "id": "a"},
    {"map": 0, "car": CAR, "other": OTHER, "message": [0.125] * 64},
]


def test_api_stream_and_service_carry_the_probability_with_the_bundle_and_null_without(tiny_driving_run, run_with_bundle):
    plain = DrivingTranslator.from_run(tiny_driving_run)
    assert [t.faithfulness for t in plain.to_english(RECORDS)] == [None, None]
    tr = DrivingTranslator.from_run(run_with_bundle)
    out = tr.to_english(RECORDS) + tr.to_neuralese([{"map": 0, "car": CAR, "utterance": "stop"}])
    assert all(isinstance(t.faithfulness, float) and 0 < t.faithfulness < 1 for t in out)
    assert out[0].translation == plain.to_english(RECORDS)[0].translation
    assert out[0].faithfulness != out[1].faithfulness  # the partner car known: the in-context model
    m = tr.faithfulness.get("to_english", False)
    assert out[0].faithful == (out[0].faithfulness >= m.threshold)
    sink = io.StringIO()
    run_stream(tr, "english", io.BytesIO((json.dumps(RECORDS[0]) + "\n").encode()), sink, batch_size=2)
    assert json.loads(sink.getvalue())["faithfulness"] == pytest.approx(out[0].faithfulness)
    with TestClient(create_app(run_with_bundle)) as client:
        body = client.post("/v1/driving/translate", json={"to": "english", "items": RECORDS}).json()
    assert [r["faithfulness"] for r in body["results"]] == pytest.approx([t.faithfulness for t in out[:2]])
    with TestClient(create_app(tiny_driving_run)) as client:
        body = client.post("/v1/driving/translate", json={"to": "english", "items": RECORDS}).json()
    assert [r["faithfulness"] for r in body["results"]] == [None, None]


@pytest.mark.slow
def test_fitting_on_a_tiny_run_is_deterministic_and_evaluate_reports_every_direction(tiny_driving_run, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(tiny_driving_run, run)
    base = run / "driving"
    agent, speaker = DrivingAgent.from_pretrained(base / "agents"), HumanSpeaker.from_pretrained(base / "english_speaker")
    train = read_logs(DATA / "train.jsonl")[:12]
    torch.manual_seed(0)
    driver = HumanDriver(HumanDriverConfig(words=word_vocabulary([m for g in train for s in g.messages for m in s]))).eval()
    args = DrivingFaithfulnessArgs(held_out=0.5, seed=1)
    first, second = (fit_driving_faithfulness(agent, speaker, driver, train, args) for _ in range(2))
    assert first.models == second.models and first.training == second.training
    assert first.training["games"] == 6
    assert first.training["to_english"]["rows"] == 4 * first.training["to_english"]["belief_rows"] > 0
    driver.save_pretrained(base / "english_driver")
    DrivingAgent(DrivingAgentConfig(hidden=16, silent=True)).save_pretrained(base / "agents_silent")
    first.save_pretrained(base / FOLDER)
    metrics = evaluate(run, DATA / "dev.jsonl", tmp_path / "out", games=3)
    for direction in ("to_english", "to_neuralese"):
        m = metrics[f"driving.faithfulness.{direction}"]
        assert set(m["by_translator"]) == {"belief", "direct", "random", "silent"} and m["games"] == 3
        assert 0 <= m["ece"] <= 1 and 0 <= m["translation_matters"] <= 1 and m["rows"] > 0
        assert m["baselines"]["prior"]["auroc"] in (0.5, None)
        assert m["rows"] == sum(t["rows"] for t in m["by_translator"].values())
    assert "driving.faithfulness.to_english" in (tmp_path / "out" / "report.md").read_text()
