"""The driving game's interface: observations hide the other car, starts and fresh states are valid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from translator.games.base import Game
from translator.games.driving.game import BASE_SIZE, DrivingGame, hidden, logged_starts, observe, sample_hidden, template_starts
from translator.games.driving.maps import MAPS

DATA = Path(__file__).resolve().parents[1] / "data" / "driving"


def test_driving_fulfils_the_game_protocol():
    game: Game = DrivingGame(DATA)
    assert game.n_agents == 2 and game.listener_kind == "action"


def test_an_observation_does_not_change_with_the_other_car():
    rng = np.random.default_rng(0)
    s = template_starts(64, rng)
    moved = sample_hidden(s, 1, 1, rng)  # car 1 redrawn anywhere, car 0 kept
    assert (observe(moved, 0) == observe(s, 0)).all()
    assert not (observe(moved, 1) == observe(s, 1)).all()


def test_observation_one_hot_fields_and_zero_once_done():
    s = template_starts(8, np.random.default_rng(1))
    obs = observe(s, 0)
    assert (obs[:, :BASE_SIZE].sum(axis=1) == 4).all()  # map, position, goal, heading (not done)
    done = s.take(np.arange(8))
    done.done[:, 0] = True
    assert (observe(done, 0) == 0).all()


def test_template_starts_use_the_maps_start_and_goal_cells():
    s = template_starts(500, np.random.default_rng(2))
    for i in range(s.batch):
        m = MAPS[s.map_id[i]]
        cars = {(int(r), int(c), int(h)) for (r, c), h in zip(s.pos[i], s.heading[i])}
        assert len(cars) == 2 and cars <= set(m.starts)
        assert {tuple(g) for g in s.goal[i].tolist()} <= set(m.goals)


def test_every_logged_start_is_a_template_start():
    game = DrivingGame(DATA)
    games = game.logs("train") + game.logs("dev")
    s = logged_starts(games)
    for i in range(s.batch):
        m = MAPS[s.map_id[i]]
        assert {(int(r), int(c), int(h)) for (r, c), h in zip(s.pos[i], s.heading[i])} <= set(m.starts)
        assert {tuple(g) for g in s.goal[i].tolist()} <= set(m.goals)


def test_fresh_hidden_states_keep_the_listener_and_lie_on_the_road():
    rng = np.random.default_rng(3)
    s = template_starts(10, rng)
    fresh = sample_hidden(s, 0, 20, rng)
    assert fresh.batch == 200
    assert (hidden(fresh, 1) == np.repeat(hidden(s, 1), 20, axis=0)).all()
    for i in range(fresh.batch):
        assert MAPS[fresh.map_id[i]].road[tuple(fresh.pos[i, 0])]


def test_english_episodes_carry_the_logged_utterances_and_rewards():
    episodes = DrivingGame(DATA).english("dev")
    assert len(episodes) == 80 and sum(len(e.steps) for e in episodes) == 748
    assert sum(m is not None for e in episodes for s in e.steps for m in s.messages) == 582
    assert all(e.steps[-1].ended for e in episodes)
    assert np.mean([e.reward for e in episodes]) > 1.0
