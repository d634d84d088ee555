"""The driving Python API on a tiny run built here: belief translation of an agent's own message
in a logged state equals the evaluation's translator on that state (any step, either car, any
batch); direct, random and silent answer in the result type; bad records are refused by field."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from translator.games.driving.agents import DrivingAgent
from translator.games.driving.logs import read_logs
from translator.games.driving.play import ReplayDriver
from translator.games.driving.translators import build_translators
from translator.storage.bundle import BundleError
from translator.translate.driving.api import DrivingTranslator, RecordError

DATA = Path(__file__).resolve().parents[1] / "data" / "driving"
SEED = 3  # the tiny run's seed (tests/conftest.py)


@pytest.fixture(scope="module")
def run(tiny_driving_run) -> Path:
    return tiny_driving_run


def _car(state, car: int) -> dict:
    return {
        "cell": state.pos[0, car].tolist(),
        "heading": int(state.heading[0, car]),
        "goal": state.goal[0, car].tolist(),
        "done": bool(state.done[0, car]),
    }


def _logged_messages(agent: DrivingAgent, n_games: int = 3):
    """(record, state, car, Said) for every driving car at every step of a few dev games: the
    agent's own message (a shadow agent along the logged states) with its recurrent context."""
    games = read_logs(DATA / "dev.jsonl")[:n_games]
    out = []
    for game in games:
        drivers = [ReplayDriver([game], agent), ReplayDriver([game], agent)]
        for d in drivers:
            d.reset(1)
        heard = [None, None]
        for t in range(game.steps):
            state = game.state(t)
            acted = [drivers[k].act(state, k, heard[k]) for k in (0, 1)]
            for car in (0, 1):
                said = acted[car][1][1]
                if not state.done[0, car]:
                    rec = {"map": game.map_id, "car": _car(state, car), "other": _car(state, 1 - car), "message": said.z[0].tolist(),
                           "heard": said.heard[0].tolist(), "recurrent": said.h[0].tolist()}  # fmt: skip
                    out.append((rec, state, car, said))
            heard = [acted[1][1][1].z, acted[0][1][1].z]
    return out


def test_belief_translation_equals_the_evaluations_translator(run):
    tr = DrivingTranslator.from_run(run, "belief")
    speaker = tr.inner.c.speaker
    train = read_logs(run / "driving" / "train.jsonl")
    evaluation = build_translators(tr.agent, speaker, train, SEED)["belief"]  # as `neuralese evaluate` builds it
    cases = _logged_messages(tr.agent)
    assert len(cases) > 20 and len(tr.inner.utterances) > 1
    api = tr.to_english([rec for rec, *_ in cases])  # one batch: each row as if alone
    for (_, state, car, said), got in zip(cases, api):
        evaluation.c.matcher.rng = np.random.default_rng(SEED)  # as built: its first draw
        assert got.translation == evaluation.to_english(said, state, car)[0]
        assert (
            got.divergence is not None and got.divergence >= 0 and len(got.alternatives) == min(3, len(tr.inner.utterances) - 1)
        )
        assert all(a.divergence >= got.divergence for a in got.alternatives)
    rec, state, car, said = cases[5]
    utter = {k: v for k, v in rec.items() if k != "message"} | {"utterance": "going north"}
    z = tr.to_neuralese([utter])[0].translation
    evaluation.c.matcher.rng = np.random.default_rng(SEED)
    assert z == evaluation.to_neuralese(["going north"], said, state, car)[0].tolist()


def test_a_record_translates_the_same_in_any_batch(run):
    tr = DrivingTranslator.from_run(run)
    records = [rec for rec, *_ in _logged_messages(tr.agent, 2)]
    together = tr.to_english(records)
    alone = [tr.to_english([r])[0] for r in reversed(records)][::-1]
    assert [t.translation for t in together] == [t.translation for t in alone]
    assert [t.divergence for t in together] == pytest.approx([t.divergence for t in alone], rel=1e-4, abs=1e-6)


def test_every_kind_answers_in_the_result_type(run):
    records = [rec for rec, *_ in _logged_messages(DrivingAgent.from_pretrained(run / "driving" / "agents"), 1)][:4]
    utterances = [
        {k: v for k, v in r.items() if k != "message"} | {"utterance": u} for r, u in zip(records, ["", "stop", "left", "zzz"])
    ]
    for kind in ("belief", "direct", "random", "silent"):
        tr = DrivingTranslator.from_run(run / "driving", kind)
        english = tr.to_english(records)
        messages = tr.to_neuralese(utterances)
        assert len(english) == len(messages) == 4
        assert all(isinstance(t.translation, str) for t in english)
        assert all(len(t.translation) == 64 and np.isfinite(t.translation).all() for t in messages)
        assert all(set(t.to_json()) == {"translation", "divergence", "faithful", "faithfulness", "alternatives"} for t in english)
        if kind == "silent":
            assert [t.translation for t in english] == [""] * 4 and all(not any(t.translation) for t in messages)
        if kind != "belief":
            assert all(t.divergence is None for t in english + messages)


def test_bad_records_are_refused_naming_row_and_field(run):
    tr = DrivingTranslator.from_run(run)
    good = {"map": 0, "car": {"cell": [6, 5], "heading": "N", "goal": [0, 3]}, "message": [0.1] * 64}
    with pytest.raises(RecordError, match=r"^line 2: message: expected 64 numbers, got 16"):
        tr.to_english([good, good | {"message": [0.1] * 16}])
    with pytest.raises(RecordError, match=r"^line 1: recurrent: expected 16 numbers, got 128"):
        tr.to_english([good | {"recurrent": [0.0] * 128}])  # the run's agent has 16 recurrent units
    with pytest.raises(RecordError, match=r"^line 1: utterance: missing"):
        tr.to_neuralese([{k: v for k, v in good.items() if k != "message"}])
    with pytest.raises(ValueError, match="expected a sequence"):
        tr.to_english(good)
    assert tr.to_english([]) == []


def test_from_run_names_what_is_missing(run, tmp_path):
    with pytest.raises(ValueError, match="translator 'seq2seq': expected one of belief, direct, random, silent"):
        DrivingTranslator.from_run(run, "seq2seq")
    shutil.copytree(run / "driving" / "agents", tmp_path / "agents")
    with pytest.raises(BundleError, match="english_speaker missing"):
        DrivingTranslator.from_run(tmp_path)
