"""Both games on the one `Game` protocol: what each agent sees, the support beliefs are compared on,
seeded starts, the English corpus as records, and the colour game's reward."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translator.games.base import Game
from translator.games.colors.corpus import load_rounds
from translator.games.colors.game import NO_ACTION, ColorGame, from_rounds
from translator.games.driving.game import DrivingGame
from translator.games.driving.logs import read_logs

DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass
class Case:
    game: Game
    speaker: int
    listener: int
    n: int | None  # `sample_hidden`'s n
    utterances: Any  # split -> the people's messages, episode by episode, step by step


@cache
def _dev_rounds() -> list:
    return ColorGame(DATA / "colors_in_context").rounds("dev")


def _color_utterances(split: str) -> list[list[tuple[str | None, ...]]]:
    return [[(r.text, None)] for r in load_rounds(DATA / "colors_in_context" / f"{split}.csv")]


def _driving_utterances(split: str) -> list[list[tuple[str | None, ...]]]:
    games = read_logs(DATA / "driving" / f"{split}.jsonl")
    return [[tuple(m if m.strip() else None for m in said) for said in g.messages] for g in games]


CASES = {
    "colors": lambda: Case(ColorGame(DATA / "colors_in_context"), 0, 1, None, _color_utterances),
    "driving-car0": lambda: Case(DrivingGame(DATA / "driving"), 0, 1, 16, _driving_utterances),
    "driving-car1": lambda: Case(DrivingGame(DATA / "driving"), 1, 0, 16, _driving_utterances),
}


@pytest.fixture(params=sorted(CASES), scope="module")
def case(request) -> Case:
    return CASES[request.param]()


def _per_episode(array: np.ndarray, batch: int) -> np.ndarray:
    return array.reshape(batch, -1, *array.shape[1:])


def test_the_support_keeps_the_listeners_view_and_holds_the_true_state(case: Case):
    state = case.game.start_states(20, np.random.default_rng(0))
    support = case.game.sample_hidden(state, case.speaker, case.n, np.random.default_rng(1))
    seen = _per_episode(case.game.observe(support, case.listener), 20)
    assert (seen == case.game.observe(state, case.listener)[:, None]).all()
    hidden = _per_episode(case.game.hidden(support, case.speaker), 20)
    own = case.game.hidden(state, case.speaker)
    assert all((hidden[i] == own[i]).all(axis=-1).any() for i in range(20))
    # the support really varies what the listener cannot see: it is more than the true state
    assert all(len(np.unique(hidden[i], axis=0)) > 1 for i in range(20))


def test_the_hidden_state_never_reaches_the_listener(case: Case):
    """Across a support's states, the speaker's hidden state changes and its own view with it, the
    listener's view does not."""
    state = case.game.start_states(12, np.random.default_rng(2))
    support = case.game.sample_hidden(state, case.speaker, case.n, np.random.default_rng(3))
    listener = _per_episode(case.game.observe(support, case.listener), 12)
    speaker = _per_episode(case.game.observe(support, case.speaker), 12)
    assert (listener == listener[:, :1]).all()
    assert all(len(np.unique(speaker[i].reshape(len(speaker[i]), -1), axis=0)) > 1 for i in range(12))


def _fingerprint(game: Game, state: Any) -> list[np.ndarray]:
    return [game.observe(state, a) for a in range(game.n_agents)]


def test_start_states_are_seeded(case: Case):
    a = _fingerprint(case.game, case.game.start_states(30, np.random.default_rng(7)))
    b = _fingerprint(case.game, case.game.start_states(30, np.random.default_rng(7)))
    c = _fingerprint(case.game, case.game.start_states(30, np.random.default_rng(8)))
    assert all((x == y).all() for x, y in zip(a, b))
    assert not all(x.shape == z.shape and (x == z).all() for x, z in zip(a, c))


def test_english_episodes_carry_the_peoples_messages(case: Case):
    episodes = case.game.english("train")
    assert [[s.messages for s in e.steps] for e in episodes] == case.utterances("train")
    assert all(e.steps[-1].ended for e in episodes)


def test_the_colour_games_english_rewards_are_the_peoples_outcomes():
    game = ColorGame(DATA / "colors_in_context")
    rounds = game.rounds("dev")
    episodes = game.english("dev")
    assert [e.episode_id for e in episodes] == [r.round_id for r in rounds]
    assert [e.reward for e in episodes] == [float(r.click == r.target) for r in rounds]
    assert [e.steps[0].actions for e in episodes] == [(NO_ACTION, r.click) for r in rounds]
    assert np.mean([e.reward for e in episodes]) == pytest.approx(np.mean([r.outcome for r in rounds]), abs=0.01)


def test_the_colour_speaker_sees_its_own_screen_with_the_target_marked():
    game = ColorGame(DATA / "colors_in_context")
    rounds = _dev_rounds()[:50]
    state = from_rounds(rounds)
    seen = game.observe(state, 0)
    for i, r in enumerate(rounds):
        for colour, slot in enumerate(r.speaker_order):
            assert tuple(seen[i, slot, :3]) == pytest.approx(r.colors[colour])
            assert seen[i, slot, 3] == (colour == r.target)
    assert (game.observe(state, 1) == np.array([r.colors for r in rounds], np.float32)).all()


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_the_colour_reward_is_one_exactly_for_the_target(data):
    n = data.draw(st.integers(1, 12))
    targets = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    choices = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    state = from_rounds(_dev_rounds()[:n])
    state.target[:] = targets
    after, reward, ended = ColorGame().step(state, np.stack([np.full(n, NO_ACTION), choices], axis=1))
    assert (reward == (choices == targets)).all() and reward.dtype == np.float64
    assert ended.all() and (after.choice == choices).all()
    assert (ColorGame().step(state, choices)[1] == reward).all()  # the listener's choices alone


@pytest.mark.parametrize("bad", [[[0, 3]], [[0, -1]], [0.5], [[0, 1, 2]], [[[1]]]])
def test_the_colour_game_refuses_an_impossible_choice(bad):
    state = from_rounds(_dev_rounds()[:1])
    with pytest.raises(ValueError, match="actions"):
        ColorGame().step(state, np.array(bad))


def test_the_colour_support_is_enumerated():
    game = ColorGame(DATA / "colors_in_context")
    state = game.start_states(4, np.random.default_rng(0))
    assert game.hidden(game.sample_hidden(state, 0, None, np.random.default_rng(0)), 0).ravel().tolist() == [0, 1, 2] * 4
    with pytest.raises(ValueError, match="n=5"):
        game.sample_hidden(state, 0, 5, np.random.default_rng(0))
