"""Driving translators and the English models: shapes, candidates, baselines, and the evaluation's
metric shape, on small untrained models (behaviour numbers come from the demo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from eval.driving import evaluate as ev
from training.driving.english import examples, split_games, train_driver, train_speaker
from translator.games.driving.agents import DrivingAgent, DrivingAgentConfig
from translator.games.driving.collection import message_pool, paired_corpus
from translator.games.driving.english import OTHER, SILENCE, HumanSpeaker, normalise, utterance_classes
from translator.games.driving.game import template_starts
from translator.games.driving.logs import read_logs
from translator.games.driving.play import AgentDriver
from translator.games.driving.translate import (
    BeliefContext,
    BeliefTranslator,
    DirectTranslator,
    RandomTranslator,
    SilentTranslator,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "driving"


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    games = read_logs(DATA / "train.jsonl")
    fit, held = split_games(games[:60])
    a, b = examples(fit), examples(held)
    speaker, _ = train_speaker(a, b, epochs=30)
    driver, info = train_driver(a, b, epochs=30)
    agent = DrivingAgent(DrivingAgentConfig(hidden=16)).eval()
    return games[:20], speaker, driver, agent


def test_utterances_are_normalised_into_classes():
    assert normalise("Going North!!  ok?") == "going north ok"
    classes = utterance_classes(["Left", "left.", "stop", ""])
    assert classes == [SILENCE, OTHER, "left"]


def test_speaker_bundle_round_trips_and_maps_rare_text_to_other(tmp_path, models):
    _, speaker, _, _ = models
    speaker.save_pretrained(tmp_path / "s")
    again = HumanSpeaker.from_pretrained(tmp_path / "s")
    assert again.config.classes == speaker.config.classes
    assert again.class_of("zzz never said") == again.class_of(OTHER)
    assert again.class_of("") == 0


def _said(agent, batch=5):
    state = template_starts(batch, np.random.default_rng(0))
    driver = AgentDriver(agent, 0)
    driver.reset(batch)
    _, said = driver.act(state, 0, None)
    return state, said


def test_belief_translation_both_ways(models):
    games, speaker, _, agent = models
    pool = message_pool(agent, episodes=10, size=50)
    tr = BeliefTranslator(BeliefContext(agent, speaker, samples=16), pool)
    state, said = _said(agent)
    english = tr.to_english(said, state, 0)
    assert len(english) == 5 and all(u in speaker.config.classes and u != OTHER for u in english)
    z = tr.to_neuralese(["going north", "", "wait", "left", "at goal"], said, state, 0)
    assert z.shape == (5, 64)
    assert all(any(torch.equal(row, p) for p in pool) for row in z)  # chosen among the agents' messages


def test_direct_random_and_silent_baselines(models):
    games, speaker, _, agent = models
    z, cls = paired_corpus(agent, speaker, games)
    assert len(z) == len(cls) == sum(int((~g.done[: g.steps]).sum()) for g in games)
    state, said = _said(agent)
    direct = DirectTranslator(speaker, z, cls)
    assert all(u != OTHER for u in direct.to_english(said, state, 0))
    assert direct.to_neuralese(["left", "xyz"], said, state, 0).shape == (2, 64)
    rnd = RandomTranslator(speaker, z[:30])
    assert len(rnd.to_english(said, state, 0)) == 5
    assert SilentTranslator().to_english(said, state, 0) == [""] * 5
    assert SilentTranslator().to_neuralese(["hi"], said, state, 0).abs().sum() == 0


def test_evaluation_metrics_have_the_agreed_shape(models):
    games, speaker, driver, agent = models
    people, replay = ev.people(games)
    assert replay == {"transitions": sum(g.steps for g in games), "reproduced": sum(g.steps for g in games)}
    for m in (
        people,
        ev.agents(agent, games),
        ev.agents(agent, games, messages_cut=True),
        ev.human_to_robot(agent, SilentTranslator(), games),
        ev.robot_to_human(agent, driver, SilentTranslator(), games),
    ):
        assert {"reward", "success", "crash", "ci95_success", "games"} <= set(m)
        assert m["games"] == len(games) and m["ci95_success"][0] <= m["success"] <= m["ci95_success"][1]


def test_belief_agreement_is_a_share(models):
    games, speaker, _, agent = models
    context = BeliefContext(agent, speaker, samples=8)
    for tr in (SilentTranslator(), BeliefTranslator(BeliefContext(agent, speaker, samples=8), message_pool(agent, 5, 20))):
        assert 0.0 <= ev.belief_agreement(context, tr, agent, games[:5]) <= 1.0
