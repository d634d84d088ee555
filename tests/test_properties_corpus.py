"""Property-based tests of the corpus loader (`translator.games.colors.corpus.load_rounds`) on hostile files.

A few valid rows of train.csv are damaged at random (a cell set to an edge value, a column lost, a
byte-order mark, stray or cut bytes) and loaded. Whatever the damage, the loader either returns
rounds that obey the corpus's invariants or raises one `CorpusError` that names the file (and the
line, where there is one); never another exception.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translator.games.colors.corpus import CorpusError, Round, load_rounds

ROWS = 4  # valid rows the damage starts from
SETTINGS = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

EDGE_CELLS = ["", " ", "nan", "NaN", "inf", "-Infinity", "1e308", "-1e308", "1e400", "-0", "0", "5e-324", "9" * 5000, "1_0",
              "\x00", "1", "2", "3", "4", "true", "false", "target", "distr1", "distr2", "far", "CLOSE", "\u2028", "é", '"', "a,b",
              "line\nbreak", "\r"]  # fmt: skip
cells = st.sampled_from(EDGE_CELLS) | st.text(max_size=12)


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _load(data: bytes) -> tuple[Path, list[Round] | CorpusError]:
    with tempfile.NamedTemporaryFile(suffix=".csv", delete=False) as f:
        f.write(data)
    path = Path(f.name)
    try:
        return path, load_rounds(path)
    except CorpusError as e:
        return path, e
    finally:
        path.unlink()


def _check_rounds(rounds: list[Round], n_rows: int) -> None:
    assert 0 < len(rounds) <= n_rows
    for r in rounds:
        assert r.game_id and r.text and r.condition in ("far", "split", "close")
        assert all(math.isfinite(x) for c in r.colors for x in c) and len(r.colors) == 3
        assert all(0 <= h <= 360 and 0 <= s <= 100 and 0 <= lum <= 100 for h, s, lum in r.colors)
        assert r.target in (0, 1, 2) and r.click in (0, 1, 2) and sorted(r.speaker_order) == [0, 1, 2]


def _check_error(e: CorpusError, path: Path, lines: int) -> None:
    assert str(e).startswith(f"{path}:") and e.path == str(path)
    assert e.line is None or 1 <= e.line <= lines + 1, (e.line, lines)


@SETTINGS
@given(data=st.data())
def test_a_damaged_cell_is_read_or_named(train_table, data):
    """One cell set to an edge value: rounds, or an error on that row's line (or a later duplicate's)."""
    header, rows = list(train_table[0]), [list(r) for r in train_table[1][:ROWS]]
    r = data.draw(st.integers(0, ROWS - 1), label="row")
    c = data.draw(st.integers(0, len(header) - 1), label="column")
    rows[r][c] = data.draw(cells, label="value")
    path, out = _load(_csv(header, rows))
    if isinstance(out, CorpusError):
        _check_error(out, path, ROWS + 1)
        assert out.line is not None and out.line >= 2 + r, str(out)  # rows before the damage were fine
        assert out.field is None or out.field in header
    else:
        _check_rounds(out, ROWS)


@SETTINGS
@given(data=st.data())
def test_damaged_bytes_are_read_or_named(train_table, data):
    """A BOM, stray bytes (NUL, bad UTF-8, quotes), a cut, a lost or doubled column: never a crash."""
    header, rows = list(train_table[0]), [list(r) for r in train_table[1][:ROWS]]
    if data.draw(st.booleans(), label="drop a column"):
        i = data.draw(st.integers(0, len(header) - 1))
        header, rows = header[:i] + header[i + 1 :], [row[:i] + row[i + 1 :] for row in rows]
    if data.draw(st.booleans(), label="double a column"):
        i = data.draw(st.integers(0, len(header) - 1))
        header, rows = header + [header[i]], [row + [row[i]] for row in rows]
    raw = _csv(header, rows)
    if data.draw(st.booleans(), label="BOM"):
        raw = b"\xef\xbb\xbf" + raw
    for _ in range(data.draw(st.integers(0, 3), label="insertions")):
        at = data.draw(st.integers(0, len(raw)))
        junk = data.draw(st.sampled_from([b"\x00", b"\xff", b"\xed\xa0\x80", b"\xc3", b'"', b",", b"\r", b"\n", b"\xef\xbb\xbf"])
                         | st.binary(max_size=4))  # fmt: skip
        raw = raw[:at] + junk + raw[at:]
    if data.draw(st.booleans(), label="cut"):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    path, out = _load(raw)
    if isinstance(out, CorpusError):
        _check_error(out, path, raw.count(b"\n") + raw.count(b"\r") + 1)
    else:
        _check_rounds(out, ROWS)
