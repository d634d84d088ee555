"""`neuralese translate --game driving`: one result per driving record, in input order; a bad line
gets an error record naming its line and field and the stream goes on; results equal the API's."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translator.apps.live_cli import add_live_commands
from translator.apps.stream import run_stream
from translator.translate.driving.api import DrivingTranslator

CAR = {"cell": [6, 5], "heading": "N", "goal": [0, 3]}
GOOD = [
    {"map": 0, "car": CAR, "message": [0.125] * 64, "id": "a"},
    {"map": 3, "car": {"cell": [3, 6], "heading": "W", "goal": [7, 3]}, "message": [-0.1] * 64, "heard": [0.2] * 64},
    {"map": 4, "car": {"cell": [5, 3], "heading": 0, "goal": [0, 4], "done": False}, "message": [0.0] * 63 + [1.0]},
]


def _stream(tr: DrivingTranslator, to: str, lines: list[str]) -> list[dict]:
    out = io.StringIO()
    stats = run_stream(tr, to, io.BytesIO(("\n".join(lines) + "\n").encode()), out, batch_size=2)
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert stats.lines == len(records) and stats.errors == sum("error" in r for r in records)
    return records


@pytest.fixture(scope="module")
def silent(tiny_driving_run) -> DrivingTranslator:
    return DrivingTranslator.from_run(tiny_driving_run, "silent")


@pytest.fixture(scope="module")
def belief(tiny_driving_run) -> DrivingTranslator:
    return DrivingTranslator.from_run(tiny_driving_run, "belief")


def test_bad_lines_get_error_records_and_the_stream_goes_on(belief):
    lines = [
        json.dumps(GOOD[0]),
        json.dumps(GOOD[0] | {"message": [0.1] * 16, "id": 7}),
        "{not json",
        "",
        json.dumps(GOOD[1]),
        json.dumps(GOOD[1] | {"car": CAR | {"cell": [8, 1]}}),
        '{"map": 0, "car": {"cell": [6, 5], "heading": "N", "goal": [0, 3]}, "message": [NaN' + ", 0.0" * 63 + "]}",
        json.dumps(GOOD[2] | {"car": CAR | {"heading": "up"}}),
        json.dumps({"map": 0, "car": CAR, "utterance": "stop"}),
        "[1, 2]",
        json.dumps(GOOD[2]),
    ]
    records = _stream(belief, "english", lines)
    assert [r["line"] for r in records] == [1, 2, 3, 5, 6, 7, 8, 9, 10, 11]
    errors = {r["line"]: r["error"] for r in records if "error" in r}
    assert errors == {
        2: "message: expected 64 numbers, got 16",
        3: "not JSON (Expecting property name enclosed in double quotes at column 2)",
        6: "car.cell: [8, 1] is off the 8x8 board (rows and columns 0..7)",
        7: "message[0]: NaN or infinite",
        8: "car.heading: expected one of N, E, S, W or 0..3, got 'up'",
        9: "utterance: unknown field; a record to english has map, car, message, other, heard, recurrent, id",
        10: "expected a JSON object, got list",
    }
    assert next(r for r in records if r["line"] == 2)["id"] == 7  # the bad line's own id is echoed
    api = [t.to_json() for t in belief.to_english(GOOD)]
    good = [r for r in records if "error" not in r]
    assert [r["translation"] for r in good] == [a["translation"] for a in api]
    assert good[0]["id"] == "a" and all(
        r["divergence"] == pytest.approx(a["divergence"], rel=1e-4, abs=1e-6) for r, a in zip(good, api)
    )


def test_utterances_to_neuralese_for_every_kind(tiny_driving_run):
    lines = [json.dumps({"map": 0, "car": CAR, "utterance": u}) for u in ("going north", "", "stop")]
    lines.insert(1, json.dumps({"map": 0, "car": CAR, "utterance": ["stop"]}))
    for kind in ("belief", "direct", "random", "silent"):
        records = _stream(DrivingTranslator.from_run(tiny_driving_run, kind), "neuralese", lines)
        assert records[1] == {"line": 2, "error": 'utterance: expected a string ("" for silence), got list'}
        assert all(len(r["translation"]) == 64 for r in records if r["line"] != 2)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neuralese")
    add_live_commands(p.add_subparsers(dest="command", required=True))
    return p


def test_the_translate_command_reads_driving_records(tiny_driving_run, tmp_path: Path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([json.dumps(GOOD[0]), '{"map": 9}', json.dumps(GOOD[1])]) + "\n", encoding="utf-8")
    args = _parser().parse_args(["translate", "--game", "driving", "--run", str(tiny_driving_run), "--to", "english",
                                 "--input", str(src), "--translator", "silent"])  # fmt: skip
    args.func(args)
    captured = capsys.readouterr()
    out = [json.loads(x) for x in captured.out.splitlines()]
    assert [r.get("translation") for r in out] == ["", None, ""]
    assert out[1] == {"line": 2, "error": "car: missing"}
    assert "3 lines (1 errors)" in captured.err
    for argv, says in ((["--workers", "2"], "--workers: the driving game translates in one process"),
                       (["--translator", "seq2seq"], "translator 'seq2seq': expected one of")):  # fmt: skip
        args = _parser().parse_args(["translate", "--game", "driving", "--run", str(tiny_driving_run), "--to", "english", *argv])
        with pytest.raises(ValueError, match=says):
            args.func(args)
    args = _parser().parse_args(["translate", "--run", str(tiny_driving_run), "--to", "english"])
    with pytest.raises(ValueError, match="--channel is required for the colour game"):
        args.func(args)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(["map", "car", "message", "id", "x"]), inner, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(json_values | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20), max_size=6))
def test_any_lines_give_one_record_each_in_order(silent, values):
    lines = [v if isinstance(v, str) else json.dumps(v) for v in values] + [json.dumps(GOOD[0])]
    expected = [n for n, x in enumerate(lines, 1) if x.strip()]
    records = _stream(silent, "english", lines)
    assert [r["line"] for r in records] == expected
    assert records[-1]["translation"] == "" and all(("error" in r) != ("translation" in r) for r in records)
