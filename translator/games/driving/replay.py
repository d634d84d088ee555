"""Replay logged human games through the environment: every transition, and whole games.

`replay_transitions` steps every logged state with the logged actions (all transitions of all games
in one batch) and compares the result with the next logged state: the test that the environment is
the game people played. `replay_games` plays each game from its start with the logged actions and
returns its reward, success and crash as the environment scores them (the H/H numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from translator.games.driving.env import DriveState, new_state, step
from translator.games.driving.logs import LoggedGame


@dataclass(frozen=True)
class ReplayCheck:
    transitions: int
    reproduced: int
    mismatches: tuple[str, ...]  # "file:line step t" of each transition not reproduced


def _before(games: Sequence[LoggedGame]) -> tuple[DriveState, list[tuple[LoggedGame, int]]]:
    index = [(g, t) for g in games for t in range(g.steps)]
    state = new_state(
        [g.map_id for g, _ in index],
        np.array([g.pos[t] for g, t in index]).reshape(-1, 2, 2),
        np.array([g.heading[t] for g, t in index]).reshape(-1, 2),
        np.array([g.goal for g, _ in index]).reshape(-1, 2, 2),
        np.array([g.done[t] for g, t in index]).reshape(-1, 2),
        np.array([g.park for g, _ in index], dtype=bool),
    )
    return state, index


def replay_transitions(games: Sequence[LoggedGame]) -> ReplayCheck:
    """Step every logged state with its logged actions; count next states reproduced exactly."""
    state, index = _before(games)
    if not index:
        return ReplayCheck(0, 0, ())
    actions = np.array([g.actions[t] for g, t in index])
    # the human server had no step limit: never let the limit end a logged game
    nxt, _ = step(state, actions, max_steps=10**9)
    want_pos = np.array([g.pos[t + 1] for g, t in index])
    want_heading = np.array([g.heading[t + 1] for g, t in index])
    want_done = np.array([g.done[t + 1] for g, t in index])
    ok = (nxt.pos == want_pos).all(axis=(1, 2)) & (nxt.heading == want_heading).all(axis=1) & (nxt.done == want_done).all(axis=1)
    bad = tuple(f"{g.source} step {t}" for (g, t), good in zip(index, ok) if not good)
    return ReplayCheck(len(index), int(ok.sum()), bad)


@dataclass(frozen=True)
class ReplayOutcome:
    reward: np.ndarray  # (G,) total reward of each game
    success: np.ndarray  # (G,) both cars done at the end
    crash: np.ndarray  # (G,) ended by a crash
    steps: np.ndarray  # (G,) steps the environment ran (ends at the first crash or both done)


def replay_games(games: Sequence[LoggedGame], max_steps: int = 10**9) -> ReplayOutcome:
    """Play every game from its start with the logged actions, all games in one batch."""
    n = len(games)
    state = new_state(
        [g.map_id for g in games],
        np.array([g.pos[0] for g in games]).reshape(n, 2, 2),
        np.array([g.heading[0] for g in games]).reshape(n, 2),
        np.array([g.goal for g in games]).reshape(n, 2, 2),
        np.array([g.done[0] for g in games]).reshape(n, 2),
        np.array([g.park for g in games], dtype=bool),
    )
    total = np.zeros(n)
    longest = max((g.steps for g in games), default=0)
    for t in range(longest):
        actions = np.array([g.actions[min(t, g.steps - 1)] if t < g.steps else (0, 0) for g in games]).reshape(n, 2)
        state, reward = step(state, actions, max_steps=max_steps)
        total += reward
    return ReplayOutcome(total, state.success, state.crashed, state.t.copy())
