"""The driving environment: every logged human transition replays, and the reward arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from translator.games.driving.env import new_state, step
from translator.games.driving.logs import read_logs
from translator.games.driving.replay import replay_games, replay_transitions

DATA = Path(__file__).resolve().parents[1] / "data" / "driving"
N, E, S, W = 0, 1, 2, 3
STAY, FWD, LEFT, RIGHT = 0, 1, 2, 3


def one(pos, heading, goal, done=(False, False), map_id=3, park=False):
    return new_state([map_id], [pos], [heading], [goal], [done], park)


@pytest.mark.parametrize("split, transitions", [("train", 1628), ("dev", 748)])
def test_every_logged_transition_is_reproduced(split, transitions):
    games = read_logs(DATA / f"{split}.jsonl")
    check = replay_transitions(games)
    assert check.transitions == transitions
    assert check.reproduced == transitions, check.mismatches[:5]


def test_replayed_games_end_where_the_logs_end_with_the_logged_success():
    games = read_logs(DATA / "dev.jsonl")
    out = replay_games(games)
    assert list(out.steps) == [g.steps for g in games]
    assert out.success.mean() == pytest.approx(71 / 80)
    assert out.crash.sum() == 10


def test_parked_done_cars_are_exactly_the_first_server_version():
    games = read_logs(DATA / "train.jsonl")
    parked = {g.game_id[:10] for g in games if g.park}
    assert parked == {"2017-01-22"} and sum(g.park for g in games) == 36


def test_forward_towards_goal_earns_progress_minus_step_cost():
    s = one([[6, 4], [1, 3]], [N, S], [[0, 4], [7, 3]])
    nxt, r = step(s, np.array([[FWD, STAY]]))
    assert nxt.pos[0].tolist() == [[5, 4], [1, 3]]
    assert r[0] == pytest.approx(-0.01 + 0.1 * 1)


def test_turns_move_one_cell_in_the_new_heading_and_clamp_at_the_edge():
    s = one([[4, 1], [0, 4]], [E, N], [[3, 0], [7, 3]])
    nxt, _ = step(s, np.array([[LEFT, FWD]]))
    assert nxt.pos[0].tolist() == [[3, 1], [0, 4]] and nxt.heading[0].tolist() == [N, N]
    nxt, _ = step(s, np.array([[RIGHT, STAY]]))
    assert nxt.pos[0, 0].tolist() == [5, 1] and nxt.heading[0, 0] == S


def test_each_off_road_cell_costs_half():
    # map 3: (5, 1) is off road; a car at (4, 1) heading east turns right to (5, 1) facing south,
    # its tail at (4, 1) is on the road: one off-road cell, and one cell further from goal (4, 7)
    s = one([[4, 1], [0, 4]], [E, N], [[4, 7], [7, 3]])
    _, r = step(s, np.array([[RIGHT, STAY]]))
    assert r[0] == pytest.approx(-0.01 - 0.5 + 0.1 * (6 - 7))
    # head and tail both off road: two cells
    s = one([[5, 1], [0, 4]], [S, N], [[4, 7], [7, 3]])
    _, r = step(s, np.array([[FWD, STAY]]))
    assert r[0] == pytest.approx(-0.01 - 0.5 * 2 + 0.1 * (7 - 8))


def test_reaching_the_goal_pays_one_and_no_progress_for_that_car():
    s = one([[1, 4], [6, 4]], [N, N], [[0, 4], [0, 4]])
    nxt, r = step(s, np.array([[FWD, FWD]]))
    assert nxt.done[0].tolist() == [True, False]
    assert r[0] == pytest.approx(-0.01 + 1.0 + 0.1 * 1)  # the second car's step counts, the first's not
    assert not nxt.over[0]


def test_a_done_car_leaves_the_board_or_stays_parked_and_occupies_nothing():
    s = one([[0, 4], [2, 4]], [N, N], [[0, 4], [0, 3]], done=(True, False))
    left, _ = step(s, np.array([[STAY, FWD]]))
    assert left.pos[0, 0].tolist() == [-1, -1]
    parked, r = step(one([[0, 4], [2, 4]], [N, N], [[0, 4], [0, 3]], done=(True, False), park=True), np.array([[STAY, FWD]]))
    assert parked.pos[0, 0].tolist() == [0, 4]
    nxt, r = step(parked, np.array([[STAY, FWD]]))  # drives onto the parked car's cell: no crash
    assert not nxt.crashed[0] and nxt.pos[0, 1].tolist() == [0, 4]


def test_two_cars_on_one_cell_crash_and_end_the_episode():
    # heads meet at (3, 4): the car from the south and the car from the east
    s = one([[4, 4], [3, 5]], [N, W], [[0, 4], [3, 0]])
    nxt, r = step(s, np.array([[FWD, FWD]]))
    assert nxt.crashed[0] and nxt.over[0]
    assert r[0] == pytest.approx(-0.01 - 2.0 + 0.1 * 2)
    again, r2 = step(nxt, np.array([[FWD, FWD]]))
    assert r2[0] == 0.0 and again.pos.tolist() == nxt.pos.tolist()


def test_a_head_on_a_tail_is_a_crash():
    s = one([[4, 4], [4, 6]], [W, W], [[4, 0], [3, 0]])  # car 1's head moves onto car 0's tail cell (4, 5)
    nxt, _ = step(s, np.array([[STAY, FWD]]))
    assert nxt.crashed[0]


def test_the_episode_ends_at_the_step_limit():
    s = one([[6, 4], [1, 3]], [N, S], [[0, 4], [7, 3]])
    for _ in range(3):
        s, _ = step(s, np.array([[STAY, STAY]]), max_steps=3)
    assert s.over[0] and not s.crashed[0] and s.t[0] == 3


def test_bad_actions_are_refused_with_the_shape_or_range():
    s = one([[6, 4], [1, 3]], [N, S], [[0, 4], [7, 3]])
    with pytest.raises(ValueError, match="shape"):
        step(s, np.array([FWD, FWD]))
    with pytest.raises(ValueError, match="0..3"):
        step(s, np.array([[4, 0]]))
