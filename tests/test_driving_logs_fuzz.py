"""Property tests of the driving log reader: whatever a line holds, reading it either succeeds or
raises `LogError` naming the file and line (never another exception)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translator.games.driving.logs import LogError, parse_game, read_logs

DATA = Path(__file__).resolve().parents[1] / "data" / "driving"
GOOD = json.loads((DATA / "dev.jsonl").read_text(encoding="utf-8").splitlines()[0])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-20, 20) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=9) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _paths(value, prefix=()):
    """Every path to a value inside a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(GOOD) if p]


def _replaced(path: tuple, value) -> dict:
    record = json.loads(json.dumps(GOOD))
    node = record
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return record


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=json_values)
def test_any_field_replaced_reads_or_is_named(path, value):
    try:
        game = parse_game(_replaced(path, value), "games.jsonl:7")
    except LogError as e:
        assert str(e).startswith("games.jsonl:7: ")
    else:
        assert game.steps == (len(GOOD["log"]) - 1) // 2


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_any_json_line_reads_or_is_named(value):
    try:
        parse_game(value, "games.jsonl:3")
    except LogError as e:
        assert str(e).startswith("games.jsonl:3: ")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40).filter(lambda t: "\n" not in t and "\r" not in t))
def test_any_text_line_after_a_good_one_names_line_two(tmp_path, text):
    path = tmp_path / "games.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + text + "\n", encoding="utf-8")
    try:
        games = read_logs(path)
    except LogError as e:
        assert str(e).startswith("games.jsonl:2: ")
    else:
        assert len(games) in (1, 2)
