"""The driving environment, vectorised over a batch of episodes (numpy).

Rules as on the game server the human logs were recorded with (a test replays every logged
transition): both cars move at once; action 0 stays, 1 moves forward, 2 / 3 turn left / right and
move one cell that way; positions are clamped to the board. A car is two cells long (head at `pos`,
tail behind). A car whose head reaches its goal is done and inert: parked at its goal or off the
board, `pos = (-1, -1)` (`park` chooses; the server changed between versions). Cars swapping cells
in one step do not crash.

Reward per step, shared: -0.01; -0.5 per car cell off the road; +1 per car reaching its goal;
+0.1 x the decrease of Manhattan distance to the goal of the cars still driving; -2 on a crash (a
cell occupied twice), which ends the episode, as do both cars done or `max_steps`."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from translator.games.driving.maps import DELTAS, ROADS, SIZE

N_CARS = 2
N_ACTIONS = 4
MAX_STEPS = 20  # the paper's episode limit; the longest human game has 31 steps
STEP_COST = 0.01
OFF_ROAD = 0.5
GOAL_BONUS = 1.0
PROGRESS = 0.1
CRASH = 2.0


@dataclass(frozen=True)
class DriveState:
    """A batch of B episodes. Arrays: map_id (B,), pos (B, 2, 2) row/col, heading (B, 2),
    goal (B, 2, 2), done (B, 2) bool, t (B,) steps taken, over (B,) episode ended,
    crashed (B,) ended by a crash, park (B,) done cars stay at their goal."""

    map_id: np.ndarray
    pos: np.ndarray
    heading: np.ndarray
    goal: np.ndarray
    done: np.ndarray
    t: np.ndarray
    over: np.ndarray
    crashed: np.ndarray
    park: np.ndarray

    @property
    def batch(self) -> int:
        return int(self.map_id.shape[0])

    def take(self, index: np.ndarray | slice) -> DriveState:
        """The episodes at `index` (a sub-batch)."""
        return DriveState(**{k: getattr(self, k)[index] for k in self.__dataclass_fields__})

    @property
    def success(self) -> np.ndarray:
        """(B,) both cars at their goals."""
        return self.done.all(axis=1)


def new_state(map_id, pos, heading, goal, done=None, park=False) -> DriveState:
    """A batch of fresh episodes from arrays (lists are accepted)."""
    map_id = np.asarray(map_id, dtype=np.int64)
    b = map_id.shape[0]
    pos = np.asarray(pos, dtype=np.int64).reshape(b, N_CARS, 2)
    done = np.zeros((b, N_CARS), bool) if done is None else np.asarray(done, bool).reshape(b, N_CARS)
    return DriveState(
        map_id=map_id,
        pos=pos,
        heading=np.asarray(heading, dtype=np.int64).reshape(b, N_CARS),
        goal=np.asarray(goal, dtype=np.int64).reshape(b, N_CARS, 2),
        done=done,
        t=np.zeros(b, np.int64),
        over=done.all(axis=1),
        crashed=np.zeros(b, bool),
        park=np.broadcast_to(np.asarray(park, bool), (b,)).copy(),
    )


def move(pos: np.ndarray, heading: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each car's head goes and which way it faces after `action` (no other rule applied)."""
    turn = np.where(action == 2, -1, np.where(action == 3, 1, 0))
    new_heading = (heading + turn) % 4
    moves = (action != 0)[..., None]
    new_pos = np.clip(pos + moves * DELTAS[new_heading], 0, SIZE - 1)
    return new_pos, new_heading


def occupancy(pos: np.ndarray, heading: np.ndarray, active: np.ndarray) -> np.ndarray:
    """(B, 8, 8) how many active car cells (head and on-board tail) lie on each cell."""
    b = pos.shape[0]
    grid = np.zeros((b, SIZE, SIZE), np.int64)
    tail = pos - DELTAS[heading]
    rows = np.arange(b)
    for car in range(pos.shape[1]):
        on = active[:, car]
        np.add.at(grid, (rows[on], pos[on, car, 0], pos[on, car, 1]), 1)
        t = tail[:, car]
        inside = on & (t >= 0).all(axis=1) & (t < SIZE).all(axis=1)
        np.add.at(grid, (rows[inside], t[inside, 0], t[inside, 1]), 1)
    return grid


def distance(pos: np.ndarray, goal: np.ndarray) -> np.ndarray:
    return np.abs(pos - goal).sum(axis=-1)


def step(state: DriveState, actions: np.ndarray, max_steps: int = MAX_STEPS) -> tuple[DriveState, np.ndarray]:
    """`(next_state, reward)` for a batch after both cars take `actions` (B, 2) in 0..3."""
    nxt, reward, _ = step_cars(state, actions, max_steps)
    return nxt, reward


def _check(state: DriveState, actions: np.ndarray) -> np.ndarray:
    actions = np.asarray(actions)
    if actions.shape != (state.batch, N_CARS):
        raise ValueError(f"actions: expected shape {(state.batch, N_CARS)}, got {actions.shape}")
    if actions.size and (actions.min() < 0 or actions.max() >= N_ACTIONS):
        raise ValueError(f"actions: expected values in 0..{N_ACTIONS - 1}, got {actions.min()}..{actions.max()}")
    return actions


def step_cars(state: DriveState, actions: np.ndarray, max_steps: int = MAX_STEPS) -> tuple[DriveState, np.ndarray, np.ndarray]:
    """`step`, plus each car's share of the reward (B, 2) for credit assignment in training: its own
    off-road cells, progress and goal, half the step cost and half the crash penalty. The shares sum
    to the team reward except when both cars stand on one off-road cell (a crash)."""
    actions = _check(state, actions)
    live = ~state.over
    driving = ~state.done & live[:, None]
    pos, heading = move(state.pos, state.heading, actions)
    pos = np.where(driving[..., None], pos, state.pos)
    heading = np.where(driving, heading, state.heading)
    arrived = driving & (pos == state.goal).all(axis=-1)
    road = ROADS[state.map_id]
    grid = occupancy(pos, heading, driving)
    off_road = ((grid > 0) & ~road).sum(axis=(1, 2))
    crash = (grid > 1).any(axis=(1, 2))
    own_off = np.stack(
        [
            ((occupancy(pos[:, k : k + 1], heading[:, k : k + 1], driving[:, k : k + 1]) > 0) & ~road).sum(axis=(1, 2))
            for k in range(N_CARS)
        ],
        axis=1,
    )
    still = driving & ~arrived
    progress = (distance(state.pos, state.goal) - distance(pos, state.goal)) * still
    reward = -STEP_COST - OFF_ROAD * off_road + GOAL_BONUS * arrived.sum(axis=1) + PROGRESS * progress.sum(axis=1) - CRASH * crash
    shares = -(STEP_COST + CRASH * crash[:, None]) / N_CARS - OFF_ROAD * own_off + GOAL_BONUS * arrived + PROGRESS * progress
    done = state.done | arrived
    leaving = state.done & ~state.park[:, None] & live[:, None]
    pos = np.where(leaving[..., None], -1, pos)
    t = state.t + live
    over = state.over | crash | done.all(axis=1) | (t >= max_steps)
    nxt = replace(state, pos=pos, heading=heading, done=done, t=t, over=over, crashed=state.crashed | (crash & live))
    return nxt, np.where(live, reward, 0.0), np.where(live[:, None], shares, 0.0)
