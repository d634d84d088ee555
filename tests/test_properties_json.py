"""Property-based tests of the two JSON doors: the stream's line reader and the service's request parser.

Generated lines and request bodies mix valid rows with hostile ones: deep nesting, sizes near the
caps, bad UTF-8, byte-order marks, NUL bytes, lone surrogates, NaN, infinities, 1e308, -0, huge
integers, wrong types, unknown and missing fields. The stream must answer each non-blank line
exactly once, in order, with a translation or one error record, and the output must stay strict
JSON in UTF-8; the service must answer every body with a translation per item or one 4xx whose
detail names the place, never a 5xx. The bugs these found are pinned as explicit examples.
"""

from __future__ import annotations

import io
import json
import re
import threading
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import translator.apps.stream as stream
from translator.apps.stream import run_stream, run_stream_parallel
from translator.translate.colors.api import Translator

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
DIM = 64  # the test translator's continuous channel
EDGE_NUMBERS = [float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 3.5e38, 10**40, 5e-324, -0.0, 0, 2**63, True]
EDGE_TEXT = ["\ud800", "a\udfffb", "\x00", "", " ", "\u2028", "\ufeff", "x" * 300, "blue"]
JUNK = [b"\x00", b"\xff", b"\xed\xa0\x80", b"\xc3", b"\xef\xbb\xbf", b"[", b"]", b"{", b'"', b",", b"NaN", b"\r"]
FIELDS = ("message", "utterance", "context", "id")

numbers = st.sampled_from(EDGE_NUMBERS) | st.floats() | st.integers()
texts = st.sampled_from(EDGE_TEXT) | st.text(max_size=20)
json_values = st.recursive(st.none() | numbers | texts,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=3), max_leaves=8)  # fmt: skip
messages = st.lists(st.floats(-2, 2, width=32), min_size=DIM, max_size=DIM)
contexts = st.lists(st.tuples(st.integers(0, 360), st.integers(0, 100), st.integers(0, 100)).map(list), min_size=3, max_size=3)


def _strict(text: str) -> Any:
    """Parse strict JSON: NaN and Infinity are refused."""

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def translator(saved_belief_translator) -> Translator:
    tr = Translator.from_pretrained(saved_belief_translator)
    assert tr.channel.kind == "continuous" and tr.channel.dim == DIM
    return tr


# -- generated input ---------------------------------------------------------------------------------

ROW_DAMAGE = ["none", "none", "value", "element", "edge", "field", "drop", "deep"]


@st.composite
def rows(draw, to: str = "english", damages: tuple[str, ...] = tuple(ROW_DAMAGE)) -> tuple[dict[str, Any], bool]:
    """`(row, is it valid as drawn)`: a valid row, or one with a field damaged, missing or added."""
    row: dict[str, Any] = {"message": draw(messages)} if to == "english" else {"utterance": draw(st.sampled_from(["blue", "the dark one"]))}
    if draw(st.booleans()):
        row["context"] = draw(contexts)
    if draw(st.booleans()):
        row["id"] = draw(st.text(max_size=5) | st.integers(-(2**31), 2**31) | st.floats(allow_nan=False, allow_infinity=False))
    damage = draw(st.sampled_from(damages))
    key = "message" if damage == "edge" and to == "english" else draw(st.sampled_from(sorted(row)))
    if damage == "value":
        row[key] = draw(json_values)
    elif damage in ("element", "edge") and isinstance(row[key], list):
        row[key][draw(st.integers(0, len(row[key]) - 1))] = draw(json_values if damage == "element" else st.sampled_from(EDGE_NUMBERS))
    elif damage == "field":
        row[draw(texts.filter(lambda k: k not in FIELDS))] = draw(json_values)
    elif damage == "drop":
        del row[key]
    elif damage == "deep":
        row[key] = json.loads("[" * 200 + "]" * 200)  # the deepest the encoder takes; deeper lines are drawn as bytes
    return row, damage == "none" or (damage in ("element", "edge") and not isinstance(row[key], list))


@st.composite
def lines(draw, to: str = "english") -> tuple[bytes, bool]:
    """`(one input line without its newline, is it valid as drawn)`."""
    row, ok = draw(rows(to))
    raw = json.dumps(row, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    ok = ok and b"\xed" not in raw and b"NaN" not in raw and b"Infinity" not in raw
    kind = draw(st.sampled_from(["as is", "as is", "as is", "junk", "cut", "deep", "blank", "not an object"]))
    if kind == "junk":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from(JUNK) | st.binary(max_size=3).filter(lambda b: b"\n" not in b)) + raw[at:]
    elif kind == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif kind == "deep":
        depth = draw(st.integers(500, 6000))
        raw = b"[" * depth + b"]" * depth
    elif kind == "blank":
        raw = draw(st.sampled_from([b"", b" ", b"\t", b"\r"]))
    elif kind == "not an object":
        raw = json.dumps(draw(json_values)).encode("utf-8", "surrogatepass")
    return raw, ok and kind == "as is"


@st.composite
def streams(draw, min_size: int = 1, max_size: int = 8) -> tuple[str, list[tuple[bytes, bool]], int]:
    """`(direction, lines, batch size)`."""
    to = draw(st.sampled_from(["english", "neuralese"]))
    return to, draw(st.lists(lines(to), min_size=min_size, max_size=max_size)), draw(st.integers(1, 4))


GOOD = json.dumps({"message": [0.25] * DIM, "context": [[10, 50, 50], [100, 50, 50], [200, 50, 50]]}).encode()
PINNED_STREAMS = [  # found by these properties, or reported: each ended the stream or lost lines
    ("english", [(GOOD, True), (b"[" * 5000 + b"]" * 5000, False), (GOOD, True)], 1),  # deep nesting: RecursionError
    ("english", [(GOOD, True), (b'{"message": [0.1], "id": "\\ud800"}', False), (b'{"\\udc00": 1}', False), (GOOD, True)], 4),
    ("neuralese", [(b'{"utterance": "\\ud800 blue"}', False), (b'{"utterance": "blue"}', True)], 2),  # tokenizer TypeError
    ("english", [(b'{"message": [0.1], "id": ' + b"9" * 5000 + b"}", False), (GOOD, True)], 2),  # int over 4300 digits
    ("english", [(GOOD, True), ('{"\u2028": null}'.encode(), False), (GOOD, True)], 1),  # a raw U+2028 split the record
]


# -- the stream ------------------------------------------------------------------------------------


def _records(text: str) -> list[dict[str, Any]]:
    text.encode("utf-8")  # what a UTF-8 stdout must take
    return [_strict(x) for x in text.splitlines()]


def _check_stream(drawn: list[tuple[bytes, bool]], text: str, stats) -> None:
    records = _records(text)
    answered = [(n, d) for n, d in enumerate(drawn, 1) if d[0].strip()]
    assert [r["line"] for r in records] == [n for n, _ in answered]  # one per non-blank line, in order
    for r, (_, (raw, ok)) in zip(records, answered):
        if "error" in r:
            assert not ok, (raw[:200], r)
            assert set(r) <= {"line", "id", "error"} and isinstance(r["error"], str) and r["error"]
        else:
            assert {"translation", "divergence", "faithful", "alternatives"} <= set(r)
    assert (stats.lines, stats.errors) == (len(records), sum("error" in r for r in records))


def _in_thread(fn, *args, timeout: float = 120) -> Any:
    """`fn(*args)` with a bound on its time: a hang fails the test instead of stalling it."""
    out: dict[str, Any] = {}
    t = threading.Thread(target=lambda: out.update(value=fn(*args)), daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the stream did not finish"
    return out["value"]


def _pinned(cases):
    def pin(test):
        for case in cases:
            test = example(case=case)(test)
        return test

    return pin


@SETTINGS
@_pinned(PINNED_STREAMS)
@given(case=streams())
def test_stream_answers_every_line_once_in_order(translator, case):
    to, drawn, batch_size = case
    out = io.StringIO()
    stats = _in_thread(run_stream, translator, to, io.BytesIO(b"\n".join(raw for raw, _ in drawn) + b"\n"), out, batch_size)
    _check_stream(drawn, out.getvalue(), stats)


@settings(SETTINGS, max_examples=1)
@_pinned([(to, [d for case in PINNED_STREAMS if case[0] == to for d in case[1]], 3) for to in ("english", "neuralese")])
@given(case=streams(min_size=20, max_size=40))
def test_stream_with_worker_processes_answers_every_line_once_in_order(saved_belief_translator, case):
    to, drawn, batch_size = case
    out = io.StringIO()
    stats = _in_thread(run_stream_parallel, saved_belief_translator, to, io.BytesIO(b"\n".join(raw for raw, _ in drawn)), out, 2, batch_size)
    _check_stream(drawn, out.getvalue(), stats)


@SETTINGS
@given(size=st.integers(480, 540), newline=st.booleans())
def test_the_line_cap_holds_to_the_byte(translator, size, newline):
    """A line of up to `MAX_LINE_BYTES` bytes (newline not counted) is read, a longer one is an error;
    the lines around it are answered either way."""
    line = b'{"utterance": "blue"}'
    line += b" " * (size - len(line))  # JSON allows trailing spaces
    inp = b'{"utterance": "green"}\n' + line + b'\n{"utterance": "red"}' + (b"\n" if newline else b"")
    out = io.StringIO()
    with mock.patch.object(stream, "MAX_LINE_BYTES", 512):
        _in_thread(run_stream, translator, "neuralese", io.BytesIO(inp), out)
    records = _records(out.getvalue())
    assert [r["line"] for r in records] == [1, 2, 3] and "error" not in records[0] and "error" not in records[2]
    assert ("error" in records[1]) == (size > 512)
    if size > 512:
        assert records[1]["error"] == "line longer than 512 bytes"


# -- the service's request parser --------------------------------------------------------------------

MAX_BATCH, MAX_BODY = 6, 6000
BODY_DAMAGE = ["none", "item", "edge", "value", "field", "drop", "not an object", "junk", "cut", "deep", "huge", "content type"]
# where a 4xx detail points: the body, an item or a top-level field by name, or the limit it broke
PLACE = re.compile(r"^(body|items|channel|to|unknown channel|batch of \d+ items|request body larger)\b|^[^:]+: Extra inputs")


@pytest.fixture(scope="module")
def client(translator):
    from fastapi.testclient import TestClient

    from translator.apps.service import create_app

    app = create_app(translators={"continuous": translator}, max_batch=MAX_BATCH, max_body=MAX_BODY)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@st.composite
def bodies(draw) -> tuple[bytes, str, bool]:
    """`(body, content type, is it valid as drawn)`: a valid request with at most one thing wrong."""
    to = draw(st.sampled_from(["english", "english", "neuralese"]))
    n = draw(st.integers(0, MAX_BATCH + 1))
    damage = draw(st.sampled_from(BODY_DAMAGE))
    hit = draw(st.integers(0, max(n - 1, 0)))
    drawn = [draw(rows(to, (damage,) if damage in ("edge",) and i == hit else tuple(ROW_DAMAGE) if damage == "item" and i == hit else ("none",)))
             for i in range(n)]  # fmt: skip
    body: dict[str, Any] = {"channel": "continuous", "to": to, "items": [r for r, _ in drawn]}
    ok = all(v for _, v in drawn) and n <= MAX_BATCH
    key = draw(st.sampled_from(sorted(body)))
    if damage == "value":
        body[key] = draw(json_values)
    elif damage == "field":
        body[draw(texts.filter(lambda k: k not in body))] = draw(json_values)
    elif damage == "drop":
        del body[key]
    data = json.dumps(body if damage != "not an object" else draw(json_values), ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if damage == "junk":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(JUNK) | st.binary(max_size=3)) + data[at:]
    elif damage == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "deep":
        data = data.replace(b'"items": [', b'"items": ' + b"[" * 3000, 1) + b"]" * 3000
    elif damage == "huge":
        data = data[:-1] + b" " * draw(st.integers(MAX_BODY - len(data) - 20, MAX_BODY - len(data) + 20)) + b"}"
    ctype = draw(st.sampled_from(["text/plain", "", "application/json; charset=utf-8"])) if damage == "content type" else "application/json"
    ok = ok and damage in ("none", "huge", "item", "edge", "content type") and ctype != "text/plain" and len(data) <= MAX_BODY
    return data, ctype, ok and b"\xed" not in data and b"NaN" not in data and b"Infinity" not in data


def _body(items: list[dict[str, Any]]) -> bytes:
    return json.dumps({"channel": "continuous", "to": "english", "items": items}).encode()


PINNED_BODIES = [  # found by these properties, or reported
    (_body([{"message": [0.25] * DIM}, {"message": [1e308] * DIM}]), "application/json", False),  # 500: float32 overflow
    (_body([{"message": [0.25] * DIM, "id": True}]), "application/json", False),  # true was read as the id 1
]


@settings(SETTINGS, max_examples=150)
@_pinned(PINNED_BODIES)
@given(case=bodies())
def test_service_answers_every_body_with_results_or_one_4xx(client, case):
    body, ctype, ok = case
    r = client.post("/v1/translate", content=body, headers={"content-type": ctype} if ctype else {})
    assert r.status_code in (200, 400, 413, 422), (r.status_code, r.text[:300])
    answer = _strict(r.text)
    if len(body) > MAX_BODY:
        assert r.status_code == 413
    if r.status_code == 200:
        sent = json.loads(body)
        assert len(answer["results"]) == len(sent["items"])
        assert [x.get("id") for x in answer["results"]] == [it.get("id") for it in sent["items"]]  # echoed as sent
    else:
        assert not ok, (body[:300], r.text[:300])
        assert isinstance(answer["detail"], str) and PLACE.search(answer["detail"]), answer["detail"]
    assert client.get("/healthz").json()["queued_rows"] == 0
