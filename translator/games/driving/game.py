"""The driving game behind the `Game` interface: starts, observations, hidden states, English logs.

Each car observes only the map, its own position, heading, goal and done flag (never the other
car): the features of the paper's code (a one-hot map id, position and goal as one-hot 8x8
planes, the done flag, a one-hot heading) plus what follows from them alone, to make learning fast:
the road as an 8x8 plane, the goal's offset, and for each action whether the car's two cells would
be on the road and how much closer to the goal it would be. All zeros once the car is done. The speaker's hidden
state, which beliefs are over, is its own position, heading and goal. Fresh states for belief
comparison keep the listener's car and redraw the speaker's car anywhere on the road.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from translator.games.base import Episode, Step
from translator.games.driving.env import MAX_STEPS, N_ACTIONS, N_CARS, DriveState, distance, move, new_state, step
from translator.games.driving.logs import LoggedGame, read_logs
from translator.games.driving.maps import DELTAS, MAPS, ROADS, SIZE
from translator.storage.bundled_data import bundled

N_MAPS = len(MAPS)
BASE_SIZE = N_MAPS + 2 * SIZE * SIZE + 1 + 4
LOOKAHEAD = 3  # features per action, last in the observation
OBS_SIZE = BASE_SIZE + SIZE * SIZE + 2 + LOOKAHEAD * N_ACTIONS
SUPPORT = 48  # states a belief is compared on, by default (`DrivingGame.sample_hidden`)


def observe(state: DriveState, car: int) -> np.ndarray:
    """(B, OBS_SIZE) float32 features of what `car` sees."""
    b = state.batch
    obs = np.zeros((b, OBS_SIZE), np.float32)
    rows = np.arange(b)
    active = ~state.done[:, car]
    r = rows[active]
    pos, goal = state.pos[active, car], state.goal[active, car]
    obs[r, state.map_id[active]] = 1
    obs[r, N_MAPS + pos[:, 0] * SIZE + pos[:, 1]] = 1
    obs[r, N_MAPS + SIZE * SIZE + goal[:, 0] * SIZE + goal[:, 1]] = 1
    obs[r, N_MAPS + 2 * SIZE * SIZE + 1 + state.heading[active, car]] = 1
    obs[r, BASE_SIZE : BASE_SIZE + SIZE * SIZE] = ROADS[state.map_id[active]].reshape(len(r), SIZE * SIZE)
    obs[r, BASE_SIZE + SIZE * SIZE : BASE_SIZE + SIZE * SIZE + 2] = (goal - pos) / SIZE
    obs[r, BASE_SIZE + SIZE * SIZE + 2 :] = _lookahead(state.map_id[active], pos, state.heading[active, car], goal)
    return obs


def _lookahead(map_id: np.ndarray, pos: np.ndarray, heading: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """(n, 3 * N_ACTIONS): per action, head on road, tail on road (or off board), distance gain."""
    feats = []
    road = ROADS[map_id]
    rows = np.arange(len(map_id))
    for a in range(N_ACTIONS):
        p, h = move(pos, heading, np.full(len(map_id), a))
        tail = p - DELTAS[h]
        inside = ((tail >= 0) & (tail < SIZE)).all(axis=1)
        t = np.clip(tail, 0, SIZE - 1)
        feats += [road[rows, p[:, 0], p[:, 1]], ~inside | road[rows, t[:, 0], t[:, 1]], distance(pos, goal) - distance(p, goal)]
    return np.stack(feats, axis=1).astype(np.float32)


def template_starts(n: int, rng: np.random.Generator, maps: Sequence[int] | None = None) -> DriveState:
    """`n` starts drawn as the game server drew them: a map, two different start cells (each with
    its heading) and, independently for each car, one of the map's goal cells."""
    maps = list(range(N_MAPS)) if maps is None else list(maps)
    map_id = rng.choice(maps, size=n)
    pos = np.zeros((n, N_CARS, 2), np.int64)
    heading = np.zeros((n, N_CARS), np.int64)
    goal = np.zeros((n, N_CARS, 2), np.int64)
    for i, m in enumerate(map_id):
        starts, goals = MAPS[m].starts, MAPS[m].goals
        picks = rng.choice(len(starts), size=N_CARS, replace=False)
        for car, k in enumerate(picks):
            pos[i, car], heading[i, car] = starts[k][:2], starts[k][2]
            goal[i, car] = goals[rng.integers(len(goals))]
    return new_state(map_id, pos, heading, goal)


def logged_starts(games: Sequence[LoggedGame]) -> DriveState:
    """The start states of logged games, one episode each (done cars leave the board)."""
    n = len(games)
    return new_state(
        [g.map_id for g in games],
        np.array([g.pos[0] for g in games]).reshape(n, 2, 2),
        np.array([g.heading[0] for g in games]).reshape(n, 2),
        np.array([g.goal for g in games]).reshape(n, 2, 2),
    )


def hidden(state: DriveState, car: int) -> np.ndarray:
    """(B, 5) the hidden state of `car`: row, col, heading, goal row, goal col."""
    return np.concatenate([state.pos[:, car], state.heading[:, car, None], state.goal[:, car]], axis=1)


def sample_hidden(state: DriveState, car: int, n: int, rng: np.random.Generator) -> DriveState:
    """For each episode, `n` copies (episode-major, B*n) with `car` redrawn: a random road cell,
    heading and goal of the same map, still driving. The other car is kept as it is."""
    rep = state.take(np.repeat(np.arange(state.batch), n))
    pos, heading, goal, done = rep.pos.copy(), rep.heading.copy(), rep.goal.copy(), rep.done.copy()
    for i, m in enumerate(rep.map_id):
        cells = np.argwhere(MAPS[m].road)
        pos[i, car] = cells[rng.integers(len(cells))]
        goal[i, car] = MAPS[m].goals[rng.integers(len(MAPS[m].goals))]
    heading[:, car] = rng.integers(4, size=rep.batch)
    done[:, car] = False
    return DriveState(rep.map_id, pos, heading, goal, done, rep.t, rep.over, rep.crashed, rep.park)


def to_episode(game: LoggedGame) -> Episode[DriveState, int]:
    """A logged game as typed records: the logged states, what each person typed and did."""
    ep: Episode[DriveState, int] = Episode(game.game_id)
    for t in range(game.steps):
        before = game.state(t)
        after, reward = step(before, game.actions[t][None], max_steps=10**9)
        msgs = tuple(m if m.strip() else None for m in game.messages[t])
        ep.steps.append(
            Step(before, msgs, tuple(int(a) for a in game.actions[t]), game.state(t + 1), float(reward[0]), bool(after.over[0]))
        )
    return ep


class DrivingGame:
    """`translator.games.base.Game` for driving (states are `DriveState` batches)."""

    name = "driving"
    n_agents = N_CARS
    listener_kind = "action"

    def __init__(self, data_dir: str | Path | None = None, max_steps: int = MAX_STEPS):
        self.data_dir = Path(data_dir) if data_dir is not None else bundled("driving")
        self.max_steps = max_steps

    def start_states(self, n: int, rng: np.random.Generator) -> DriveState:
        return template_starts(n, rng)

    def observe(self, state: DriveState, agent: int) -> np.ndarray:
        return observe(state, agent)

    def hidden(self, state: DriveState, agent: int) -> np.ndarray:
        return hidden(state, agent)

    def sample_hidden(self, state: DriveState, agent: int, n: int | None, rng: np.random.Generator) -> DriveState:
        """`n` states (48 when None) per episode, episode-major: its own state first, then `n - 1`
        drawn by `sample_hidden` (the order belief matching draws them in)."""
        n = SUPPORT if n is None else n
        fresh = sample_hidden(state, agent, n - 1, rng)
        out = state.take(np.repeat(np.arange(state.batch), n))
        drawn = np.arange(out.batch) % n != 0
        for name in ("pos", "heading", "goal", "done"):
            getattr(out, name)[drawn] = getattr(fresh, name)
        return out

    def step(self, state: DriveState, actions: np.ndarray) -> tuple[DriveState, np.ndarray, np.ndarray]:
        nxt, reward = step(state, actions, self.max_steps)
        return nxt, reward, nxt.over

    def logs(self, split: str) -> list[LoggedGame]:
        return read_logs(self.data_dir / f"{split}.jsonl")

    def english(self, split: str) -> list[Episode[DriveState, int]]:
        return [to_episode(g) for g in self.logs(split)]
