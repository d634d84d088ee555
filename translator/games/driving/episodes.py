"""Driving episodes of agents built elsewhere: a JSON Lines file, one car-step per line, checked.

Each line is what one car said at one step (docs/driving.md, "Importing a foreign agent"):
  {"episode": "e1", "step": 0, "map": 0, "car": {"cell": [6, 5], "heading": "N", "goal": [0, 3]},
   "message": [the agent's vector]}
optional: "speaker" (0 or 1, which car of the episode speaks; default 0), "heard", "other",
"action" (0-3), "id". The map, cars, message and heard are checked by the driving record's own
parser (`records.parse_record`); this module adds what only a file can get wrong: one message size
for the whole file, unique (episode, step, speaker) keys, steps in order within an episode, and
states no episode can reach. Every problem raises `EpisodeError` naming file, line and field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from translator.games.driving.env import N_ACTIONS, N_CARS
from translator.games.driving.maps import HEADINGS
from translator.games.driving.records import CarState, DrivingRecord, RecordError, parse_record

FORMAT = "neuralese.driving_episodes.jsonl/1"
FIELDS = ("episode", "step", "speaker", "map", "car", "message", "heard", "other", "action", "id")
REQUIRED = ("episode", "step", "map", "car", "message")
MAX_MESSAGE = 4096
MAX_LINE_BYTES = 1 << 20  # a step with two 4,096-number vectors is far smaller


class EpisodeError(RecordError):
    """A line of an episode file that cannot be read: `path`, `line`, `field` and what is wrong."""

    def __init__(self, path: str | Path, line: int | None, field: str, problem: str):
        super().__init__(line, field, problem)
        self.path = Path(path)
        where = f"{self.path.name}:{line}" if line is not None else str(self.path)
        ValueError.__init__(self, f"{where}: {self.detail}")


@dataclass(frozen=True)
class ForeignStep:
    """One checked line: the step's key, the speaker's record (its message as `source`), the action."""

    episode: str
    step: int
    speaker: int
    record: DrivingRecord
    action: int | None
    line: int

    def to_json(self) -> dict[str, Any]:
        """The line as written back (normalised: headings as letters, defaults filled in)."""
        r = self.record
        out: dict[str, Any] = {"episode": self.episode, "step": self.step, "speaker": self.speaker, "map": r.map_id}
        out["car"] = _car_json(r.car)
        out["message"] = list(r.source)
        for name, value in (("heard", r.heard), ("other", r.other), ("action", self.action), ("id", r.id)):
            if value is not None:
                out[name] = (
                    _car_json(value) if isinstance(value, CarState) else list(value) if isinstance(value, tuple) else value
                )
        return out


def _car_json(car: CarState) -> dict[str, Any]:
    return {"cell": list(car.cell), "heading": HEADINGS[car.heading], "goal": list(car.goal), "done": car.done}


class _Checker:
    """Checks lines in file order, remembering what later lines must agree with."""

    def __init__(self, path: Path):
        self.path = path
        self.size: int | None = None
        self.size_line = 0
        self.keys: dict[tuple[str, int, int], int] = {}
        self.last: dict[tuple[str, int], tuple[int, int, CarState]] = {}  # (episode, speaker) -> step, line, car
        self.maps: dict[str, tuple[int, int]] = {}  # episode -> map, line

    def fail(self, line: int, field: str, problem: str) -> EpisodeError:
        return EpisodeError(self.path, line, field, problem)

    def step(self, obj: Any, line: int) -> ForeignStep:
        if not isinstance(obj, dict):
            raise self.fail(line, "", f"expected a JSON object (one car-step per line), got {type(obj).__name__}")
        unknown = sorted(set(obj) - set(FIELDS), key=str)
        if unknown:
            raise self.fail(line, str(unknown[0]), f"unknown field; a step has {', '.join(FIELDS)}")
        for name in REQUIRED:
            if name not in obj:
                raise self.fail(line, name, "missing")
        episode, step, speaker = self._key(obj, line)
        self._message_size(obj["message"], line)
        record_fields = {k: v for k, v in obj.items() if k not in ("episode", "step", "speaker", "action")}
        try:
            record = parse_record(record_fields, "english", line, self.size or 1, hidden_size=0)
        except RecordError as e:
            raise self.fail(line, e.field, e.problem) from None
        action = obj.get("action")
        if action is not None and (type(action) is not int or not 0 <= action < N_ACTIONS):
            raise self.fail(
                line, "action", f"expected an action 0..{N_ACTIONS - 1} (stay, forward, left, right), got {action!r:.40}"
            )
        self._state(record, episode, step, speaker, line)
        return ForeignStep(episode, step, speaker, record, action, line)

    def _key(self, obj: dict, line: int) -> tuple[str, int, int]:
        episode = obj["episode"]
        if isinstance(episode, bool) or not isinstance(episode, (str, int)) or (isinstance(episode, str) and not episode.strip()):
            raise self.fail(line, "episode", f"expected a non-empty string or an integer, got {episode!r:.40}")
        step, speaker = obj["step"], obj.get("speaker", 0)
        if type(step) is not int or step < 0:
            raise self.fail(line, "step", f"expected an integer >= 0, got {step!r:.40}")
        if type(speaker) is not int or not 0 <= speaker < N_CARS:
            raise self.fail(line, "speaker", f"expected 0 or 1 (which car of the episode speaks), got {speaker!r:.40}")
        return str(episode), step, speaker

    def _message_size(self, message: Any, line: int) -> None:
        if not isinstance(message, list):
            raise self.fail(line, "message", f"expected a list of numbers, got {type(message).__name__}")
        if self.size is None:
            if not 1 <= len(message) <= MAX_MESSAGE:
                raise self.fail(line, "message", f"expected 1..{MAX_MESSAGE} numbers, got {len(message)}")
            self.size, self.size_line = len(message), line
        elif len(message) != self.size:
            raise self.fail(
                line, "message", f"expected {self.size} numbers (the size of line {self.size_line}'s message), got {len(message)}"
            )

    def _state(self, record: DrivingRecord, episode: str, step: int, speaker: int, line: int) -> None:
        key = (episode, step, speaker)
        if key in self.keys:
            hint = "" if speaker else "; give `speaker` (0 or 1) when both cars of an episode speak"
            raise self.fail(
                line, "step", f"episode {episode!r} step {step} speaker {speaker} already on line {self.keys[key]}{hint}"
            )
        self.keys[key] = line
        seen_map = self.maps.setdefault(episode, (record.map_id, line))
        if seen_map[0] != record.map_id:
            raise self.fail(line, "map", f"episode {episode!r} is on map {seen_map[0]} (line {seen_map[1]}), not {record.map_id}")
        car, other = record.car, record.other
        if car.done and car.cell not in ((-1, -1), car.goal):
            raise self.fail(
                line, "car.cell", f"a done car is at its goal {list(car.goal)} or off the board, got {list(car.cell)}"
            )
        if other is not None and not car.done and not other.done and other.cell == car.cell:
            raise self.fail(
                line,
                "other.cell",
                f"{list(car.cell)} is also the speaker's cell: two cars in one cell is a crash, which ends an episode",
            )
        last = self.last.get((episode, speaker))
        if last is not None:
            before, where, prev = last
            if step < before:
                raise self.fail(
                    line,
                    "step",
                    f"episode {episode!r} speaker {speaker}: step {step} after step {before} (line {where}); steps go in order",
                )
            if prev.goal != car.goal:
                raise self.fail(
                    line, "car.goal", f"the goal changed during episode {episode!r} ({list(prev.goal)} on line {where})"
                )
            if prev.done and not car.done:
                raise self.fail(line, "car.done", f"a car that was done (line {where}) is driving again")
        self.last[(episode, speaker)] = (step, line, car)


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    """`(line number, decoded JSON)` of each non-blank line; bad bytes or JSON name the line."""
    with path.open("rb") as f:
        for n, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise EpisodeError(path, n, "", f"line longer than {MAX_LINE_BYTES:,} bytes (one car-step per line)")
            try:
                text = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise EpisodeError(path, n, "", f"not UTF-8 text ({e.reason} at byte {e.start})") from None
            if not text.strip():
                continue
            try:
                yield n, json.loads(text)
            except (json.JSONDecodeError, RecursionError, ValueError) as e:
                problem = f"{e.msg} at column {e.colno}" if isinstance(e, json.JSONDecodeError) else str(e) or "nested too deeply"
                raise EpisodeError(path, n, "", f"not valid JSON ({problem})") from None


def read_episodes(path: str | Path) -> list[ForeignStep]:
    """Every line of an episode file, checked, in file order; `EpisodeError` on the first bad one."""
    path = Path(path)
    if not path.is_file():
        raise EpisodeError(path, None, "", "no such file")
    checker = _Checker(path)
    steps = [checker.step(obj, n) for n, obj in _lines(path)]
    if not steps:
        raise EpisodeError(path, None, "", "no steps (an empty file)")
    return steps


def message_size(steps: list[ForeignStep]) -> int:
    return len(steps[0].record.source)
