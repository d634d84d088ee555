"""The driving message record: good records read into the state the evaluation uses; every bad
field gives a `RecordError` naming line and field; any JSON at all gives that error or a record,
never another exception (property tests)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translator.games.driving.game import observe
from translator.games.driving.logs import read_logs
from translator.games.driving.records import CarState, DrivingRecord, RecordError, parse_record, to_state
from translator.storage.bundled_data import bundled

GOOD = {
    "map": 0,
    "car": {"cell": [6, 5], "heading": "N", "goal": [0, 3], "done": False},
    "other": {"cell": [4, 1], "heading": 1, "goal": [4, 7]},
    "message": [0.125] * 64,
    "heard": [0.0] * 64,
    "recurrent": [0.5] * 128,
    "id": "a-1",
}


def _with(path: tuple, value) -> dict:
    rec = copy.deepcopy(GOOD)
    node = rec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return rec


def test_a_good_record_reads_every_field():
    r = parse_record(GOOD, "english", 1)
    assert r == DrivingRecord(0, CarState((6, 5), 0, (0, 3), False), (0.125,) * 64, CarState((4, 1), 1, (4, 7), False),
                              (0.0,) * 64, (0.5,) * 128, "a-1")  # fmt: skip
    text = parse_record({"map": 4, "car": {"cell": [6, 2], "heading": 0, "goal": [0, 2]}, "utterance": ""}, "neuralese")
    assert text.source == "" and text.other is None and text.heard is None and text.recurrent is None


@pytest.mark.parametrize(
    ("path", "value", "field", "says"),
    [
        (("message",), [0.1] * 63, "message", "expected 64 numbers, got 63"),
        (("message",), [0.1] * 63 + [math.nan], "message[63]", "NaN"),
        (("message",), [0.1] * 63 + [True], "message[63]", "expected a number"),
        (("message",), "0.1 0.2", "message", "expected a list of 64 numbers"),
        (("heard",), [1.0] * 65, "heard", "expected 64 numbers, got 65"),
        (("recurrent",), [1.0] * 64, "recurrent", "expected 128 numbers, got 64"),
        (("car", "cell"), [8, 2], "car.cell", "off the 8x8 board"),
        (("car", "cell"), [-1, 2], "car.cell", "off the 8x8 board"),
        (("car", "cell"), [1.0, 2], "car.cell", "two integers"),
        (("car", "heading"), "up", "car.heading", "expected one of N, E, S, W or 0..3"),
        (("car", "heading"), 4, "car.heading", "expected one of N, E, S, W or 0..3"),
        (("car", "goal"), [0, 0], "car.goal", "[0, 0] is not a road cell of map 0"),
        (("car", "done"), "no", "car.done", "expected true or false"),
        (("car", "speed"), 3, "car.speed", "unknown field"),
        (("other", "goal"), [7, 7], "other.goal", "not a road cell"),
        (("map",), 5, "map", "expected a map id 0..4"),
        (("map",), True, "map", "expected a map id 0..4"),
        (("contxt",), 1, "contxt", "unknown field"),
        (("id",), [1], "id", "expected a string or a finite number"),
    ],
)
def test_each_bad_field_is_named_with_its_line(path, value, field, says):
    with pytest.raises(RecordError) as err:
        parse_record(_with(path, value), "english", 12)
    assert err.value.line == 12 and err.value.field == field
    assert str(err.value).startswith(f"line 12: {field}: ") and says in str(err.value)


def test_missing_fields_and_the_wrong_direction_are_named():
    for name in ("map", "car", "message"):
        rec = {k: v for k, v in GOOD.items() if k != name}
        with pytest.raises(RecordError, match=f"^line 3: {name}: missing"):
            parse_record(rec, "english", 3)
    with pytest.raises(RecordError, match="^line 2: message: unknown field; a record to neuralese"):
        parse_record(GOOD, "neuralese", 2)
    with pytest.raises(RecordError, match="utterance: expected a string"):
        parse_record({**{k: GOOD[k] for k in ("map", "car")}, "utterance": 3}, "neuralese", 2)
    with pytest.raises(RecordError, match="^line 9: expected a JSON object, got 3"):
        parse_record(3, "english", 9)


def test_a_finished_car_may_have_left_the_board():
    rec = parse_record(_with(("other",), {"cell": [-1, -1], "heading": 0, "goal": [4, 7], "done": True}), "english")
    assert rec.other == CarState((-1, -1), 0, (4, 7), True)
    with pytest.raises(RecordError, match="other.cell: .* off the 8x8 board"):
        parse_record(_with(("other",), {"cell": [-1, -1], "heading": 0, "goal": [4, 7]}), "english")


def test_the_id_of_a_bad_record_is_kept_for_its_error():
    with pytest.raises(RecordError) as err:
        parse_record(_with(("message",), []), "english", 1)
    assert err.value.id == "a-1"


def test_records_of_logged_states_give_the_logged_observation():
    game = read_logs(bundled("driving") / "dev.jsonl")[3]
    for t in range(game.steps):
        state = game.state(t)
        for car in (0, 1):
            if state.done[0, car]:
                continue
            rec = parse_record({
                "map": game.map_id,
                "car": {"cell": state.pos[0, car].tolist(), "heading": int(state.heading[0, car]), "goal": state.goal[0, car].tolist()},
                "utterance": game.messages[t][car],
            }, "neuralese", t + 1)  # fmt: skip
            assert np.array_equal(observe(to_state([rec]), 0), observe(state, car))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)
FIELD_PATHS = [("map",), ("car",), ("car", "cell"), ("car", "heading"), ("car", "goal"), ("car", "done"), ("other",),
               ("other", "cell"), ("message",), ("heard",), ("recurrent",), ("id",), ("extra",)]  # fmt: skip


def _only_records_or_record_errors(obj, to: str) -> None:
    try:
        rec = parse_record(obj, to, 5)
    except RecordError as e:
        assert e.line == 5 and str(e).startswith("line 5: ")
        return
    state = to_state([rec])  # a record that reads is a state the speaker can observe
    assert observe(state, 0).shape[0] == 1


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.sampled_from(["english", "neuralese"]))
def test_any_json_gives_a_record_or_a_record_error(obj, to):
    _only_records_or_record_errors(obj, to)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELD_PATHS), json_values)
def test_any_value_in_any_field_gives_a_record_or_a_record_error(path, value):
    _only_records_or_record_errors(_with(path, value), "english")


@settings(max_examples=100)
@given(st.lists(st.floats(), min_size=64, max_size=64))
def test_a_message_reads_exactly_when_finite(values):
    rec = _with(("message",), values)
    if all(math.isfinite(v) for v in values):
        assert parse_record(rec, "english").source == tuple(values)
    else:
        with pytest.raises(RecordError, match=r"message\[\d+\]: NaN or infinite"):
            parse_record(rec, "english")


def test_records_round_trip_through_json_text():
    assert parse_record(json.loads(json.dumps(GOOD)), "english") == parse_record(GOOD, "english")
