"""Read the human driving logs (JSON Lines, `data/driving/*.jsonl`) into arrays, checking them.

Each line is one game: `{"game_id": str, "log": [state, step, state, ..., state]}` (see the data
card). A malformed line or an impossible state raises `LogError` naming `file:line` and the field,
e.g. `train.jsonl:12: log[4].cars[1].dir: expected 0..3, got 7`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from translator.games.driving.env import N_ACTIONS, N_CARS, DriveState, new_state
from translator.games.driving.maps import MAPS, SIZE, map_id_of


class LogError(ValueError):
    """A log line that cannot be read; the message names file, line and field."""


@dataclass(frozen=True)
class LoggedGame:
    """One human game. T steps; states have T + 1 entries."""

    game_id: str
    source: str  # "file:line"
    map_id: int
    pos: np.ndarray  # (T+1, 2, 2)
    heading: np.ndarray  # (T+1, 2)
    goal: np.ndarray  # (2, 2)
    done: np.ndarray  # (T+1, 2) bool
    actions: np.ndarray  # (T, 2)
    messages: tuple[tuple[str, str], ...]  # (T,) what each car's driver typed, "" for nothing
    park: bool  # done cars stay at their goal (first server version)

    @property
    def steps(self) -> int:
        return int(self.actions.shape[0])

    def state(self, t: int) -> DriveState:
        """The logged state before step `t` as a batch of one."""
        s = new_state([self.map_id], self.pos[t][None], self.heading[t][None], self.goal[None], self.done[t][None], self.park)
        return s


def _fail(where: str, field: str, what: str) -> LogError:
    return LogError(f"{where}: {field}: {what}")


def _int(value: Any, where: str, field: str, lo: int, hi: int) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise _fail(where, field, f"expected an integer in {lo}..{hi}, got {value!r}")
    return value


def _cell(value: Any, where: str, field: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2 or any(type(v) is not int for v in value):
        raise _fail(where, field, f"expected [row, col] integers, got {value!r}")
    return value[0], value[1]


def _car(car: Any, where: str, field: str, map_id: int) -> tuple[tuple[int, int], int, tuple[int, int], bool]:
    if not isinstance(car, dict):
        raise _fail(where, field, f"expected an object, got {type(car).__name__}")
    for key in ("pos", "dir", "goal", "done"):
        if key not in car:
            raise _fail(where, f"{field}.{key}", "missing")
    done = car["done"]
    if type(done) is not bool:
        raise _fail(where, f"{field}.done", f"expected true or false, got {done!r}")
    heading = _int(car["dir"], where, f"{field}.dir", 0, 3)
    goal = _cell(car["goal"], where, f"{field}.goal")
    if not (0 <= goal[0] < SIZE and 0 <= goal[1] < SIZE and MAPS[map_id].road[goal]):
        raise _fail(where, f"{field}.goal", f"{list(goal)} is not a road cell of map {map_id}")
    pos = _cell(car["pos"], where, f"{field}.pos")
    on_board = 0 <= pos[0] < SIZE and 0 <= pos[1] < SIZE
    if not on_board and not (done and pos == (-1, -1)):
        raise _fail(where, f"{field}.pos", f"{list(pos)} is off the board" + ("" if done else " for a car still driving"))
    if done and on_board and pos != goal:
        raise _fail(where, f"{field}.pos", f"a done car must be at its goal {list(goal)} or off the board, got {list(pos)}")
    return pos, heading, goal, done


def _state(entry: Any, where: str, field: str, map_id: int | None) -> tuple[int, list]:
    if not isinstance(entry, dict):
        raise _fail(where, field, f"expected a state object, got {type(entry).__name__}")
    if "road" not in entry or "cars" not in entry:
        raise _fail(where, field, "a state needs 'road' and 'cars'")
    road = entry["road"]
    if not (
        isinstance(road, list)
        and len(road) == SIZE
        and all(isinstance(r, list) and len(r) == SIZE and all(type(v) in (int, float) for v in r) for r in road)
    ):
        raise _fail(where, f"{field}.road", "expected 8 rows of 8 numbers")
    found = map_id_of(np.array(road, dtype=float))
    if found is None:
        raise _fail(where, f"{field}.road", "is not one of the five maps")
    if map_id is not None and found != map_id:
        raise _fail(where, f"{field}.road", f"the map changed during the game ({map_id} -> {found})")
    cars = entry["cars"]
    if not isinstance(cars, list) or len(cars) != N_CARS:
        raise _fail(where, f"{field}.cars", f"expected {N_CARS} cars")
    return found, [_car(c, where, f"{field}.cars[{i}]", found) for i, c in enumerate(cars)]


def _step(entry: Any, where: str, field: str) -> tuple[list[int], list[str]]:
    if not isinstance(entry, list) or len(entry) != N_CARS:
        raise _fail(where, field, f"expected a step: a list of {N_CARS} {{action, message}} objects")
    actions, messages = [], []
    for i, e in enumerate(entry):
        if not isinstance(e, dict) or "action" not in e:
            raise _fail(where, f"{field}[{i}].action", "missing")
        actions.append(_int(e["action"], where, f"{field}[{i}].action", 0, N_ACTIONS - 1))
        msg = e.get("message", "")
        if not isinstance(msg, str):
            raise _fail(where, f"{field}[{i}].message", f"expected text, got {type(msg).__name__}")
        messages.append(msg)
    return actions, messages


def _parked(done: np.ndarray, pos: np.ndarray) -> bool:
    """Whether a car done in one state is still on the board in the next (first server version)."""
    was_done = done[:-1]
    still_on = (pos[1:] >= 0).all(axis=-1)
    return bool((was_done & still_on).any())


def parse_game(record: Any, where: str) -> LoggedGame:
    """One JSON line (already decoded) as a `LoggedGame`; `where` is "file:line" for errors."""
    if not isinstance(record, dict):
        raise _fail(where, "line", "expected a JSON object")
    game_id, log = record.get("game_id"), record.get("log")
    if not isinstance(game_id, str):
        raise _fail(where, "game_id", f"expected text, got {game_id!r}")
    if not isinstance(log, list) or len(log) < 3 or len(log) % 2 == 0:
        raise _fail(where, "log", "expected state, step, state, ... ending with a state (odd length >= 3)")
    map_id, cars = None, []
    for i in range(0, len(log), 2):
        map_id, state_cars = _state(log[i], where, f"log[{i}]", map_id)
        cars.append(state_cars)
    steps = [_step(log[i], where, f"log[{i}]") for i in range(1, len(log), 2)]
    pos = np.array([[c[0] for c in s] for s in cars], dtype=np.int64)
    goal = np.array([[c[2] for c in s] for s in cars], dtype=np.int64)
    done = np.array([[c[3] for c in s] for s in cars], dtype=bool)
    for t in range(1, len(cars)):
        for k in range(N_CARS):
            if (goal[t, k] != goal[0, k]).any():
                raise _fail(where, f"log[{2 * t}].cars[{k}].goal", "the goal changed during the game")
            if done[t - 1, k] and not done[t, k]:
                raise _fail(where, f"log[{2 * t}].cars[{k}].done", "a car that was done is driving again")
    return LoggedGame(
        game_id=game_id,
        source=where,
        map_id=int(map_id),
        pos=pos,
        heading=np.array([[c[1] for c in s] for s in cars], dtype=np.int64),
        goal=goal[0],
        done=done,
        actions=np.array([a for a, _ in steps], dtype=np.int64),
        messages=tuple((m[0], m[1]) for _, m in steps),
        park=_parked(done, pos),
    )


def read_logs(path: str | Path) -> list[LoggedGame]:
    """Every game of a JSON Lines log file, in file order; `LogError` on the first bad line."""
    path = Path(path)
    games = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise LogError(f"{where}: line: not valid JSON ({e.msg} at column {e.colno})") from None
            games.append(parse_game(record, where))
    return games
