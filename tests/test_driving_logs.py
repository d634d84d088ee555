"""The log reader names file, line and field for malformed lines and impossible states."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from translator.games.driving.logs import LogError, read_logs

DATA = Path(__file__).resolve().parents[1] / "data" / "driving"


def _good() -> dict:
    with open(DATA / "dev.jsonl", encoding="utf-8") as f:
        return json.loads(f.readline())


def _write(tmp_path, records, raw=None):
    path = tmp_path / "games.jsonl"
    lines = [json.dumps(r) for r in records] + ([raw] if raw else [])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_every_game_with_its_messages():
    games = read_logs(DATA / "train.jsonl")
    assert len(games) == 222 and sum(g.steps for g in games) == 1628
    said = sum(bool(m.strip()) for g in games for pair in g.messages for m in pair)
    assert said == 1058


def test_bad_json_names_the_line(tmp_path):
    with pytest.raises(LogError, match=r"games.jsonl:2: line: not valid JSON"):
        read_logs(_write(tmp_path, [_good()], raw="{oops"))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r["log"][2]["cars"][1].__setitem__("dir", 7), r"log\[2\]\.cars\[1\]\.dir: expected an integer in 0..3, got 7"),
        (lambda r: r["log"][0]["cars"][0].__setitem__("pos", [9, 1]), r"log\[0\]\.cars\[0\]\.pos: \[9, 1\] is off the board"),
        (lambda r: r["log"][0]["cars"][0].__setitem__("goal", [0, 0]), r"log\[0\]\.cars\[0\]\.goal: \[0, 0\] is not a road cell"),
        (lambda r: r["log"][1][0].__setitem__("action", 5), r"log\[1\]\[0\]\.action: expected an integer in 0..3"),
        (lambda r: r["log"][1][1].pop("action"), r"log\[1\]\[1\]\.action: missing"),
        (lambda r: r["log"][0]["road"][0].__setitem__(0, 1.0), r"log\[0\]\.road: is not one of the five maps"),
        (lambda r: r["log"].pop(), r"log: expected state, step, state"),
        (lambda r: r["log"][0]["cars"][1].__setitem__("done", "no"), r"log\[0\]\.cars\[1\]\.done: expected true or false"),
    ],
)
def test_malformed_fields_are_named(tmp_path, edit, message):
    record = _good()
    edit(record)
    with pytest.raises(LogError, match=r"games.jsonl:1: " + message):
        read_logs(_write(tmp_path, [record]))


def test_a_done_car_driving_again_is_impossible(tmp_path):
    record = _good()
    states = record["log"][0::2]
    k = next(i for i, s in enumerate(states) if s["cars"][0]["done"] or s["cars"][1]["done"])
    car = 0 if states[k]["cars"][0]["done"] else 1
    states[k]["cars"][car]["done"] = True
    if k + 1 < len(states):
        states[k + 1]["cars"][car].update(done=False, pos=states[k]["cars"][car]["goal"])
        with pytest.raises(LogError, match=rf"log\[{2 * k + 2}\]\.cars\[{car}\]\.done: a car that was done is driving again"):
            read_logs(_write(tmp_path, [record]))
