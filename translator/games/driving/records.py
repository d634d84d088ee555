"""A driving message as a typed record: what a translator needs to read one message said in play.

One JSON object per line (docs/driving.md, "Translating a message"):
  {"map": 0, "car": {"cell": [6, 5], "heading": "N", "goal": [0, 3], "done": false},
   "message": [64 numbers]}            to English; or "utterance": "going north" to neuralese
Optional: "other" (the partner car, same fields; the speaker's observation never includes it),
"heard" (the partner's last message the speaker heard; zeros when absent), "recurrent" (the
speaker's recurrent state before the step; zeros when absent: the first step of an episode) and
"id" (echoed). `parse_record` checks every field and raises `RecordError` naming line and field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from translator.games.driving.env import N_CARS, DriveState, new_state
from translator.games.driving.maps import HEADINGS, MAPS, SIZE

MAX_UTTERANCE_CHARS = 2000
CAR_FIELDS = ("cell", "heading", "goal", "done")
SOURCE_FIELD = {"english": "message", "neuralese": "utterance"}
OPTIONAL_FIELDS = ("other", "heard", "recurrent", "id")


class RecordError(ValueError):
    """A driving record that cannot be read: `line` (or None), `field` (a dotted path) and what is wrong."""

    def __init__(self, line: int | None, field: str, problem: str, id: Any = None):
        self.line, self.field, self.problem, self.id = line, field, problem, id
        self.detail = f"{field}: {problem}" if field else problem
        super().__init__(self.detail if line is None else f"line {line}: {self.detail}")


@dataclass(frozen=True)
class CarState:
    """One car: head cell (row, col), heading 0..3 (N, E, S, W), goal cell, done flag; a done car's
    cell may be (-1, -1), off the board."""

    cell: tuple[int, int]
    heading: int
    goal: tuple[int, int]
    done: bool = False


@dataclass(frozen=True)
class DrivingRecord:
    """One checked record. `source` is the message (floats) or the utterance; `heard` and
    `recurrent` are the speaker's context (None: zeros)."""

    map_id: int
    car: CarState
    source: tuple[float, ...] | str
    other: CarState | None = None
    heard: tuple[float, ...] | None = None
    recurrent: tuple[float, ...] | None = None
    id: Any = None


def _is_int(v: Any) -> bool:
    return type(v) is int


def _cell(value: Any, field: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2 or not all(_is_int(v) for v in value):
        raise ValueError(f"{field}: expected [row, col], two integers, got {_show(value)}")
    if not all(0 <= v < SIZE for v in value):
        raise ValueError(f"{field}: {value} is off the {SIZE}x{SIZE} board (rows and columns 0..{SIZE - 1})")
    return value[0], value[1]


def _heading(value: Any, field: str) -> int:
    if isinstance(value, str) and value in HEADINGS and len(value) == 1:
        return HEADINGS.index(value)
    if _is_int(value) and 0 <= value < len(HEADINGS):
        return value
    raise ValueError(f"{field}: expected one of {', '.join(HEADINGS)} or 0..3, got {_show(value)}")


def _car(value: Any, field: str, map_id: int) -> CarState:
    if not isinstance(value, dict):
        raise ValueError(f"{field}: expected an object with {', '.join(CAR_FIELDS)}, got {_show(value)}")
    unknown = sorted(set(value) - set(CAR_FIELDS), key=str)
    if unknown:
        raise ValueError(f"{field}.{unknown[0]}: unknown field; a car has {', '.join(CAR_FIELDS)}")
    for name in CAR_FIELDS[:3]:
        if name not in value:
            raise ValueError(f"{field}.{name}: missing")
    done = value.get("done", False)
    if not isinstance(done, bool):
        raise ValueError(f"{field}.done: expected true or false, got {_show(done)}")
    left = done and value["cell"] == [-1, -1]  # a finished car that left the board (as in the logs)
    cell = (-1, -1) if left else _cell(value["cell"], f"{field}.cell")
    goal = _cell(value["goal"], f"{field}.goal")
    if not MAPS[map_id].road[goal]:
        raise ValueError(f"{field}.goal: {list(goal)} is not a road cell of map {map_id}")
    return CarState(cell, _heading(value["heading"], f"{field}.heading"), goal, done)


def _vector(value: Any, field: str, size: int) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{field}: expected a list of {size} numbers, got {_show(value)}")
    if len(value) != size:
        raise ValueError(f"{field}: expected {size} numbers, got {len(value)}")
    bad = next((i for i, v in enumerate(value) if isinstance(v, bool) or not isinstance(v, (int, float))), None)
    if bad is not None:
        raise ValueError(f"{field}[{bad}]: expected a number, got {_show(value[bad])}")
    out = []
    for i, v in enumerate(value):
        try:
            x = float(v)
        except OverflowError:
            x = math.inf
        if not math.isfinite(x):
            raise ValueError(f"{field}[{i}]: NaN or infinite")
        out.append(x)
    return tuple(out)


def _utterance(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f'utterance: expected a string ("" for silence), got {_show(value)}')
    if len(value) > MAX_UTTERANCE_CHARS:
        raise ValueError(f"utterance: {len(value)} characters, more than the limit of {MAX_UTTERANCE_CHARS}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"utterance: not valid Unicode (a lone surrogate at character {e.start})") from None
    return value


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _id(obj: dict) -> Any:
    rid = obj.get("id")
    if rid is None or (
        isinstance(rid, (str, int, float)) and not isinstance(rid, bool) and (not isinstance(rid, float) or math.isfinite(rid))
    ):
        return rid
    raise ValueError("id: expected a string or a finite number")


def parse_record(obj: Any, to: str, line: int | None = None, message_size: int = 64, hidden_size: int = 128) -> DrivingRecord:
    """A checked `DrivingRecord` from one decoded JSON value, for direction `to` (english: a
    message in; neuralese: an utterance in); `RecordError` naming `line` and the field otherwise."""
    if to not in SOURCE_FIELD:
        raise ValueError(f"direction {to!r}: expected english or neuralese")
    if not isinstance(obj, dict):
        raise RecordError(line, "", f"expected a JSON object, got {_show(obj)}")
    rid = None
    try:
        rid = _id(obj)
        return _parse(obj, to, message_size, hidden_size, rid)
    except RecordError:
        raise
    except ValueError as e:
        field, _, problem = str(e).partition(": ")
        raise RecordError(line, field, problem, rid) from None


def _parse(obj: dict, to: str, message_size: int, hidden_size: int, rid: Any) -> DrivingRecord:
    source_field = SOURCE_FIELD[to]
    allowed = ("map", "car", source_field, *OPTIONAL_FIELDS)
    unknown = sorted(set(obj) - set(allowed), key=str)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field; a record to {to} has {', '.join(allowed)}")
    for name in ("map", "car", source_field):
        if name not in obj:
            raise ValueError(f"{name}: missing")
    map_id = obj["map"]
    if not _is_int(map_id) or not 0 <= map_id < len(MAPS):
        raise ValueError(f"map: expected a map id 0..{len(MAPS) - 1}, got {_show(map_id)}")
    car = _car(obj["car"], "car", map_id)
    other = _car(obj["other"], "other", map_id) if obj.get("other") is not None else None
    if to == "english":
        source: tuple[float, ...] | str = _vector(obj["message"], "message", message_size)
    else:
        source = _utterance(obj["utterance"])
    heard = _vector(obj["heard"], "heard", message_size) if obj.get("heard") is not None else None
    recurrent = _vector(obj["recurrent"], "recurrent", hidden_size) if obj.get("recurrent") is not None else None
    return DrivingRecord(map_id, car, source, other, heard, recurrent, rid)


def to_state(records: Sequence[DrivingRecord]) -> DriveState:
    """The records as a batch of states, the speaker as car 0; an absent partner is a finished car
    off the board (it enters no observation of the speaker)."""
    cars = [(r.car, r.other) for r in records]
    pos = [[c.cell, o.cell if o else (-1, -1)] for c, o in cars]
    heading = [[c.heading, o.heading if o else 0] for c, o in cars]
    goal = [[c.goal, o.goal if o else c.goal] for c, o in cars]
    done = [[c.done, o.done if o else True] for c, o in cars]
    state = new_state(
        [r.map_id for r in records], np.array(pos).reshape(-1, N_CARS, 2), heading, np.array(goal).reshape(-1, N_CARS, 2), done
    )
    return replace(state, over=np.zeros(len(records), bool))
