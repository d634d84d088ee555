"""The foreign driving episode file: every line is read or refused naming file, line and field;
wrong sizes, NaN, unknown fields, impossible states, repeated keys and steps out of order are
refused with the line that broke them (hypothesis for any value in any field)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translator.games.driving.episodes import EpisodeError, read_episodes

CAR = {"cell": [6, 5], "heading": "N", "goal": [0, 3], "done": False}
OTHER = {"cell": [4, 1], "heading": "E", "goal": [3, 0], "done": False}


def _step(episode="e1", step=0, size=4, **extra) -> dict:
    return {"episode": episode, "step": step, "map": 0, "car": dict(CAR), "message": [0.5] * size, **extra}


def _write(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def _refused(tmp_path: Path, lines: list) -> EpisodeError:
    with pytest.raises(EpisodeError) as info:
        read_episodes(_write(tmp_path / "agent.jsonl", lines))
    return info.value


def test_a_good_file_reads_whole_and_normalised(tmp_path):
    lines = [_step(), _step(speaker=1, car=OTHER, other=CAR, heard=[0.1] * 4, action=2, id=7), "", _step(step=1, action=0)]
    steps = read_episodes(_write(tmp_path / "agent.jsonl", lines))
    assert [(s.episode, s.step, s.speaker, s.line) for s in steps] == [("e1", 0, 0, 1), ("e1", 0, 1, 2), ("e1", 1, 0, 4)]
    assert steps[1].record.heard == (0.1,) * 4 and steps[1].action == 2 and steps[1].record.id == 7
    assert steps[1].to_json()["car"] == {"cell": [4, 1], "heading": "E", "goal": [3, 0], "done": False}
    again = read_episodes(_write(tmp_path / "again.jsonl", [s.to_json() for s in steps]))
    assert [s.record for s in again] == [s.record for s in steps]


BAD = [
    ([_step(), _step(step=1, size=5)], 2, "message", "expected 4 numbers (the size of line 1's message), got 5"),
    ([_step(size=0)], 1, "message", "expected 1..4096 numbers, got 0"),
    ([_step(size=4097)], 1, "message", "expected 1..4096 numbers, got 4097"),
    ([_step(heard=[0.0] * 3)], 1, "heard", "expected 4 numbers, got 3"),
    (
        ['{"episode": "e1", "step": 0, "map": 0, "car": {"cell": [6, 5], "heading": "N", "goal": [0, 3]}, "message": [1, NaN]}'],
        1,
        "message[1]",
        "NaN or infinite",
    ),
    ([_step(), _step(step=1, colour=3)], 2, "colour", "unknown field"),
    ([_step(car={**CAR, "speed": 1})], 1, "car.speed", "unknown field"),
    ([_step(recurrent=[0.0] * 4)], 1, "recurrent", "unknown field"),
    ([_step(car={**CAR, "cell": [8, 1]})], 1, "car.cell", "off the 8x8 board"),
    ([_step(car={**CAR, "goal": [0, 0]})], 1, "car.goal", "not a road cell of map 0"),
    ([_step(car={**CAR, "done": True})], 1, "car.cell", "a done car is at its goal [0, 3] or off the board"),
    ([_step(other={**OTHER, "cell": [6, 5]})], 1, "other.cell", "two cars in one cell is a crash"),
    ([_step(), _step(step=1, car={**CAR, "goal": [3, 0]})], 2, "car.goal", "the goal changed during episode 'e1'"),
    ([_step(car={**CAR, "cell": [-1, -1], "done": True}), _step(step=1)], 2, "car.done", "is driving again"),
    ([_step(), _step(step=1, map=1, car={**CAR, "goal": [0, 4]})], 2, "map", "episode 'e1' is on map 0 (line 1), not 1"),
    ([_step(), _step()], 2, "step", "already on line 1; give `speaker`"),
    ([_step(step=2), _step(step=1)], 2, "step", "step 1 after step 2 (line 1)"),
    ([_step(step=-1)], 1, "step", "expected an integer >= 0"),
    ([_step(speaker=2)], 1, "speaker", "expected 0 or 1"),
    ([_step(action=4)], 1, "action", "expected an action 0..3"),
    ([_step(episode="")], 1, "episode", "non-empty string"),
    ([{k: v for k, v in _step().items() if k != "message"}], 1, "message", "missing"),
    ([_step(), "{not json"], 2, "", "not valid JSON"),
]


@pytest.mark.parametrize(("lines", "line", "field", "problem"), BAD)
def test_a_bad_line_is_refused_naming_file_line_and_field(tmp_path, lines, line, field, problem):
    e = _refused(tmp_path, lines)
    assert (e.line, e.field) == (line, field)
    assert problem in e.problem
    assert str(e).startswith(f"agent.jsonl:{line}: {field + ': ' if field else ''}")


def test_an_empty_or_missing_file_is_refused(tmp_path):
    assert "no steps" in str(_refused(tmp_path, [""]))
    with pytest.raises(EpisodeError, match="no such file"):
        read_episodes(tmp_path / "absent.jsonl")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-20, 20) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=16,
)
PATHS = [("episode",), ("step",), ("speaker",), ("map",), ("car",), ("car", "cell"), ("car", "heading"), ("car", "goal"),
         ("car", "done"), ("message",), ("message", 2), ("heard",), ("other",), ("other", "cell"), ("action",), ("id",), ("extra",)]  # fmt: skip


def _replaced(path: tuple, value) -> dict:
    record = _step(heard=[0.0] * 4, other=dict(OTHER), action=1)
    node = record
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return record


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), value=json_values)
def test_any_value_in_any_field_reads_or_is_named(tmp_path, path, value):
    """The second line carries the change; the first fixes the message size."""
    file = tmp_path / "agent.jsonl"
    try:
        file.write_text(json.dumps(_step()) + "\n" + json.dumps(_replaced(path, value)) + "\n", encoding="utf-8")
    except ValueError:  # a value JSON cannot write (a lone surrogate in a key)
        return
    try:
        steps = read_episodes(file)
    except EpisodeError as e:
        assert e.line == 2 and str(e).startswith("agent.jsonl:2: ")
        assert e.field.split(".")[0].split("[")[0] in {*(p[0] for p in PATHS), ""}
    else:
        assert len(steps) == 2 and len(steps[1].record.source) == 4


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=60))
def test_any_bytes_read_or_are_named(tmp_path, raw):
    file = tmp_path / "agent.jsonl"
    file.write_bytes(json.dumps(_step()).encode() + b"\n" + raw)
    try:
        steps = read_episodes(file)
    except EpisodeError as e:
        assert 2 <= e.line <= 2 + raw.count(b"\n") and str(e).startswith(f"agent.jsonl:{e.line}: ")
    else:
        assert 1 <= len(steps) <= 2
