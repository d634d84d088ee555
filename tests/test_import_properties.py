"""Property-based tests of the import reader (`training.colors.import_messages.read_messages`).

Hypothesis writes hostile JSON Lines files: near-valid rounds with fields swapped for any JSON
value (wrong types, NaN and infinities, integers beyond any float, deep nesting, lone surrogates,
unknown and missing fields, huge messages), raw bytes (bad UTF-8, byte-order marks, blank and
whitespace lines). Whatever the file, the reader either accepts it, one record per non-blank line,
each fitting the channel, or raises one `CorpusError` naming the file, a line of it and the field;
nothing else escapes and nothing takes long.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from training.colors.import_messages import REQUIRED, read_messages
from translator.games.colors.corpus import CorpusError
from translator.models.channels import MAX_LEN, check_message

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SPECIAL = st.sampled_from([10**400, -(10**400), 2**63, 2**1000, float("nan"), float("inf"), -float("inf"), 1e308, -0.0, True, "1", None])
scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
           | SPECIAL)  # fmt: skip
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                           max_leaves=12)
hsl = st.tuples(st.floats(0, 360), st.floats(0, 100), st.integers(0, 100)).map(list)
symbols = st.lists(st.integers(0, 40), min_size=0, max_size=MAX_LEN + 2)
texts = st.text(max_size=12) | st.sampled_from(["\ud800", "g\udfff", "", "  ", "far", "Close ", "\x00", "\u2028"])


@st.composite
def spoiled(draw, valid: st.SearchStrategy) -> list:
    """A valid list with one element (or one element of an element) swapped for any JSON value."""
    value = draw(valid)
    if value:
        i = draw(st.integers(0, len(value) - 1))
        if isinstance(value[i], list) and value[i] and draw(st.booleans()):
            value[i][draw(st.integers(0, len(value[i]) - 1))] = draw(SPECIAL | scalars)
        else:
            value[i] = draw(SPECIAL | json_values)
    return value


# each field: (a valid value, a hostile one)
FIELDS = {
    "colors": (st.lists(hsl, min_size=3, max_size=3),
               spoiled(st.lists(hsl, min_size=3, max_size=3)) | st.lists(hsl, max_size=4) | st.tuples(st.floats(-10, 370), st.floats(-5, 105),
                                                                                             st.floats(-5, 105)).map(lambda c: [c] * 3)),
    "target": (st.integers(0, 2), st.integers(-1, 3) | SPECIAL | scalars),
    "message": (None, spoiled(symbols) | st.sampled_from([[1] * 100_000, [0.5] * 5_000, [4095, 4096], [10**30], []]) | json_values),
    "game_id": (st.integers(0, 3) | st.text(min_size=1, max_size=4), texts | json_values),
    "round_id": (st.integers(0, 5) | st.text(min_size=1, max_size=4), texts | json_values),
    "condition": (st.sampled_from(["far", "split", "close", " Far "]), st.sampled_from(["medium", ""]) | json_values),
    "utterance": (st.text(max_size=12), texts | json_values),
    "speaker_order": (st.permutations([0, 1, 2]), spoiled(st.permutations([0, 1, 2])) | json_values),
    "agent_choice": (st.integers(0, 2), st.integers(-2, 3) | scalars),
    "human_click": (st.integers(0, 2), st.integers(-2, 3) | scalars),
    "meta": (st.dictionaries(st.text(max_size=4), json_values, max_size=3), json_values),
}
MESSAGES = {"discrete": symbols.filter(bool), "continuous": st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=3)}


@st.composite
def records(draw, kind: str = "discrete") -> dict:
    """A round of a file of `kind` messages: required fields mostly present, all valid but at most
    one (so that the hostile value is the one the reader meets, in a quarter of the rounds), now and
    then an unknown field."""
    optional = sorted(set(FIELDS) - set(REQUIRED))
    # (hypothesis draws the ends of an integer range often: test a middle value for a rare event)
    keys = [k for k in REQUIRED if draw(st.integers(0, 15)) != 7] + draw(st.lists(st.sampled_from(optional), unique=True, max_size=5))
    bad = draw(st.sampled_from(keys)) if draw(st.integers(0, 3)) == 1 else None
    rec = {k: draw(FIELDS[k][1] if k == bad else MESSAGES[kind] if k == "message" else FIELDS[k][0]) for k in keys}
    if draw(st.integers(0, 49)) == 25:
        rec["gameid"] = draw(json_values)
    return rec


def dump(rec: dict, ascii_only: bool) -> bytes:
    # NaN/Infinity tokens allowed; a lone surrogate in a non-ASCII dump becomes bytes that are not UTF-8
    return json.dumps(rec, ensure_ascii=ascii_only).encode("utf-8", errors="surrogatepass")


raw_lines = st.sampled_from([
    b"", b"   ", b"\t\r", b"\xef\xbb\xbf", b"[" * 50_000, b"{" * 3000, b"1" * 5000, b"1e999", b"NaN", b"null", b"[]", b"{}",
    b'{"colors": ', b"\xff\xfe{}", b"\xc3\x28",
]) | st.binary(max_size=30)  # fmt: skip
lines = st.lists(st.one_of(st.builds(dump, records(), st.booleans()), raw_lines), min_size=1, max_size=6)
channels = st.none() | st.sampled_from([{"kind": "continuous"}, {"vocab_size": 32}, {"kind": "gumbel", "vocab_size": 41, "max_len": MAX_LEN}])


def non_blank_lines(content: bytes) -> int:
    """Non-blank lines as the reader counts them (it stops at the first bad line, so only accepted files matter)."""
    parts = content.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    return sum(bool(p.decode("utf-8-sig" if i == 0 else "utf-8").strip()) for i, p in enumerate(parts))


def check(path: Path, content: bytes, channel) -> None:
    path.write_bytes(content)
    try:
        ds, ch = read_messages(path, channel)
    except CorpusError as e:
        n = content.count(b"\n") + (not content.endswith(b"\n"))
        assert e.path == str(path) and (e.line is None or 1 <= e.line <= n), str(e)
        assert str(e).startswith(f"{path}:{e.line}:" if e.line is not None else f"{path}:"), str(e)
        assert e.field is None or isinstance(e.field, str)
        assert e.line is not None or "empty file" in str(e)
        event(f"refused: {e.field}")
        return
    event("accepted")
    assert len(ds) == non_blank_lines(content) > 0
    check_message(ch, ds["message"])  # every message fits the channel it was read with
    c = torch.tensor(ds["colors"])
    assert c.shape == (len(ds), 3, 3) and bool(torch.isfinite(c).all()) and c.min() >= 0 and c[..., 0].max() <= 360
    assert len(set(ds["round_id"])) == len(ds) and all(0 <= t <= 2 for t in ds["target"])
    assert all(math.isnan(x) for x in ds["message_log_prob"])


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@SETTINGS
@given(lines=lines, channel=channels)
def test_any_file_is_read_whole_or_refused_at_a_line(workdir, lines, channel):
    check(workdir / "agents.jsonl", b"\n".join(lines) + b"\n", channel)


@SETTINGS
@given(kind=st.sampled_from(sorted(MESSAGES)), bom=st.booleans(), crlf=st.booleans(), channel=channels, data=st.data())
def test_near_valid_rounds(workdir, kind, bom, crlf, channel, data):
    """Mostly well-formed JSON objects, with a BOM and Windows line ends now and then."""
    recs = data.draw(st.lists(records(kind), min_size=1, max_size=5))
    body = (b"\r\n" if crlf else b"\n").join(dump(r, True) for r in recs) + b"\n"
    check(workdir / "rounds.jsonl", (b"\xef\xbb\xbf" if bom else b"") + body, channel)


@SETTINGS
@given(ids=st.lists(symbols.filter(bool), min_size=1, max_size=8), games=st.lists(st.integers(0, 2), min_size=8, max_size=8))
def test_valid_discrete_files_are_accepted_exactly(workdir, ids, games):
    """Every well-formed discrete file is accepted, its messages stored canonically (EOS after the first EOS)."""
    recs = [{"colors": [[10, 50, 50], [200, 80, 40], [120, 30, 60]], "target": i % 3, "message": m, "game_id": games[i]}
            for i, m in enumerate(ids)]
    path = workdir / "ok.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    if any(len(m) > MAX_LEN for m in ids):
        with pytest.raises(CorpusError, match="max_len 64"):
            read_messages(path)
        return
    ds, ch = read_messages(path)
    assert ch.max_len == max(map(len, ids)) and ch.vocab_size == max(2, max(max(m) for m in ids) + 1)
    for stored, m in zip(ds["message"], ids):
        end = m.index(0) + 1 if 0 in m else len(m)
        assert stored == m[:end] + [0] * (ch.max_len - end)
