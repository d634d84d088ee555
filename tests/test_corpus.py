"""`translator.games.colors.corpus.load_rounds`: the bundled files, both CSV layouts, and every bad-input case."""

from __future__ import annotations

from collections import Counter

import pytest

from translator.games.colors.corpus import (
    CONDITIONS,
    MESSAGE_SEPARATOR,
    CorpusError,
    Round,
    contexts_tensor,
    load_rounds,
    split_games,
)

PATCHES = ("click", "alt1", "alt2")


@pytest.fixture(scope="module")
def train_rounds(data_paths):
    return load_rounds(data_paths["train"])


def record(header: list[str], row: list[str]) -> dict[str, str]:
    return dict(zip(header, row))


def expected_round(rec: dict[str, str]) -> dict:
    """What a round must look like, computed independently from one raw CSV record."""
    by_listener = sorted(PATCHES, key=lambda p: int(rec[p + "LocL"]))
    return {
        "colors": tuple(tuple(float(rec[p + f]) for f in ("ColH", "ColS", "ColL")) for p in by_listener),
        "target": [rec[p + "Status"] for p in by_listener].index("target"),
        "click": int(rec["clickLocL"]) - 1,
        "speaker_order": tuple(int(rec[p + "LocS"]) - 1 for p in by_listener),
        "outcome": rec["outcome"] == "true",
    }


# -- the bundled corpus ----------------------------------------------------------------------------


def test_bundled_train_loads(train_rounds):
    assert len(train_rounds) == 15681
    assert len({r.game_id for r in train_rounds}) == 316
    assert all(isinstance(r, Round) for r in train_rounds)
    assert {r.condition for r in train_rounds} == set(CONDITIONS)
    # README: human listener accuracy on train is 0.886
    assert sum(r.outcome for r in train_rounds) / len(train_rounds) == pytest.approx(0.886, abs=5e-4)
    assert len({r.round_id for r in train_rounds}) == len(train_rounds)


def test_bundled_dev_loads(data_paths):
    dev = load_rounds(data_paths["dev"])
    assert len(dev) == 15687
    assert len({r.game_id for r in dev}) == 317
    assert sum(r.outcome for r in dev) / len(dev) == pytest.approx(0.904, abs=5e-4)


def test_target_is_the_target_patch_not_the_click(train_rounds, train_table):
    header, rows = train_table
    # First row of train.csv: the listener clicked distr2 (listener position 1); target at position 2.
    first = train_rounds[0]
    assert (first.game_id, first.round_num, first.outcome) == ("1124-1", 1, False)
    assert first.colors == ((248.0, 92.0, 50.0), (226.0, 81.0, 50.0), (283.0, 87.0, 50.0))
    assert first.target == 1 and first.click == 0
    assert first.speaker_order == (2, 0, 1)
    assert first.text == "The darker blue one"

    wrong = [r for r in train_rounds if not r.outcome]
    assert len(wrong) > 1000  # about 11% of the rounds
    assert all(r.target != r.click for r in wrong)
    assert all(r.target == r.click for r in train_rounds if r.outcome)


def test_rounds_match_raw_records_in_listener_order(train_rounds, train_table):
    header, rows = train_table
    assert len(rows) == len(train_rounds)
    for row, rnd in list(zip(rows, train_rounds))[:500]:
        exp = expected_round(record(header, row))
        got = {k: getattr(rnd, k) for k in exp}
        assert got == exp, rnd.round_id


def test_target_position_is_not_informative(train_rounds):
    # Listener-screen order: the target is spread over all three positions (not always first).
    counts = Counter(r.target for r in train_rounds)
    assert set(counts) == {0, 1, 2}
    assert min(counts.values()) / len(train_rounds) > 0.3


def test_contexts_tensor_and_split_games(train_rounds):
    some = train_rounds[:10]
    c = contexts_tensor(some)
    assert c.shape == (10, 3, 3)
    assert c[0].tolist() == [list(x) for x in some[0].colors]
    rest, held = split_games(train_rounds[:2000], 0.25, seed=3)
    games_rest, games_held = {r.game_id for r in rest}, {r.game_id for r in held}
    assert not games_rest & games_held
    assert len(rest) + len(held) == 2000
    n_games = len(games_rest | games_held)
    assert len(games_held) == round(0.25 * n_games)
    again_rest, again_held = split_games(train_rounds[:2000], 0.25, seed=3)
    assert again_held == held and again_rest == rest


# -- the public filteredCorpus.csv layout (one row per message) ------------------------------------

FILTERED_HEADER = [
    "", "gameid", "msgTime", "roundNum", "condition", "role", "workerid_uniq", "contents",
    *(p + f for p in PATCHES for f in ("Status", "ColH", "ColS", "ColL", "LocS", "LocL")),
    "outcome", "clkTime", "source",
]  # fmt: skip


def per_message_rows(header, rows, messages):
    """Rows in the filteredCorpus layout: `messages` is a list of (row index, role, text)."""
    out = []
    for n, (i, role, text) in enumerate(messages):
        rec = record(header, rows[i])
        rec.update(
            {
                "": str(n + 1),
                "msgTime": str(1459000000000 + 1000 * n),
                "role": role,
                "workerid_uniq": f"w{n % 2}",
                "contents": text,
                "clkTime": "1459000009999",
                "source": "human",
            }
        )
        out.append([rec[c] for c in FILTERED_HEADER])
    return out


@pytest.fixture()
def filtered_messages(train_table):
    header, rows = train_table
    # rows 0..3 are rounds 1..4 of game 1124-1; round 3 (row 2) had two speaker messages.
    assert rows[2][header.index("contents")] == "Medium pink ~ the medium dark one"
    return [
        (0, "speaker", "The darker blue one"),
        (0, "listener", "this one?"),
        (1, "speaker", "purple"),
        (2, "speaker", "Medium pink"),
        (2, "listener", "which one, the pink?"),
        (2, "speaker", "the medium dark one"),
        (3, "listener", "ready"),
        (3, "speaker", "lime"),
    ]


def test_filtered_corpus_layout(tmp_path, train_table, train_rounds, write_csv, filtered_messages):
    header, rows = train_table
    path = write_csv(tmp_path / "filteredCorpus.csv", FILTERED_HEADER, per_message_rows(header, rows, filtered_messages))
    rounds = load_rounds(path)
    assert [r.round_id for r in rounds] == ["1124-1/1", "1124-1/2", "1124-1/3", "1124-1/4"]
    assert rounds[2].text == "Medium pink" + MESSAGE_SEPARATOR + "the medium dark one"
    assert [r.text for r in rounds] == ["The darker blue one", "purple", "Medium pink ~ the medium dark one", "lime"]
    assert not any("?" in r.text or "ready" in r.text for r in rounds)  # listener messages dropped
    # Everything else agrees with the round-per-row layout.
    assert rounds == train_rounds[:4]


def test_filtered_corpus_disagreeing_colours_raise(tmp_path, train_table, write_csv, filtered_messages):
    header, rows = train_table
    table = per_message_rows(header, rows, filtered_messages)
    table[5][FILTERED_HEADER.index("alt1ColH")] = "17"  # second speaker message of round 3 (line 7)
    path = write_csv(tmp_path / "filteredCorpus.csv", FILTERED_HEADER, table)
    with pytest.raises(CorpusError, match="disagrees with line 5") as info:
        load_rounds(path)
    assert info.value.line == 7
    assert str(path) in str(info.value) and "1124-1/3" in str(info.value)


def test_filtered_corpus_round_without_speaker_text(tmp_path, train_table, write_csv, filtered_messages):
    header, rows = train_table
    table = per_message_rows(header, rows, filtered_messages)
    table[2][FILTERED_HEADER.index("contents")] = "  "  # round 2's only speaker message (line 4)
    path = write_csv(tmp_path / "filteredCorpus.csv", FILTERED_HEADER, table)
    with pytest.raises(CorpusError, match="no speaker text") as info:
        load_rounds(path)
    assert (info.value.line, info.value.field) == (4, "contents")


# -- bad input -------------------------------------------------------------------------------------


@pytest.fixture()
def small_table(train_table):
    """Header and the first 5 rows (lines 2-6) of train.csv, as fresh lists to mutate."""
    header, rows = train_table
    return list(header), [list(r) for r in rows[:5]]


def set_field(header, rows, line, field, value):
    rows[line - 2][header.index(field)] = value


def target_patch(header, row) -> str:
    return next(p for p in PATCHES if row[header.index(p + "Status")] == "target")


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("alt1ColH", "blue", "not a number"),
        ("clickColH", "361", "outside \\[0, 360\\]"),
        ("alt2ColH", "-0.5", "outside \\[0, 360\\]"),
        ("alt2ColS", "100.5", "outside \\[0, 100\\]"),
        ("clickColL", "nan", "not a finite number"),
        ("condition", "medium", "not one of far, split, close"),
        ("outcome", "maybe", "not true/false"),
        ("contents", "", "empty text"),
        ("contents", "   ", "empty text"),
        ("clickLocL", "4", "not 1, 2 or 3"),
        ("roundNum", "2.5", "not a whole number"),
        ("gameid", " ", "empty"),
    ],
)
def test_bad_field_raises_with_file_line_field(tmp_path, small_table, write_csv, field, value, match):
    header, rows = small_table
    set_field(header, rows, 4, field, value)
    path = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(CorpusError, match=match) as info:
        load_rounds(path)
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), 4, field)
    assert str(err).startswith(f"{path}:4: field '{field}':")


def test_hue_bounds_are_inclusive(tmp_path, small_table, write_csv):
    header, rows = small_table
    set_field(header, rows, 2, "clickColH", "360")
    set_field(header, rows, 3, "alt1ColH", "0")
    rounds = load_rounds(write_csv(tmp_path / "ok.csv", header, rows))
    assert 360.0 in [c[0] for c in rounds[0].colors]
    assert 0.0 in [c[0] for c in rounds[1].colors]


def test_round_without_target_raises(tmp_path, small_table, write_csv):
    header, rows = small_table
    patch = target_patch(header, rows[1])
    set_field(header, rows, 3, patch + "Status", "distr1")
    path = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(CorpusError, match="no patch with status 'target'") as info:
        load_rounds(path)
    assert (info.value.line, info.value.field) == (3, "clickStatus")
    assert str(path) in str(info.value)


def test_two_targets_raise(tmp_path, small_table, write_csv):
    header, rows = small_table
    other = next(p for p in PATCHES if p != target_patch(header, rows[3]))
    set_field(header, rows, 5, other + "Status", "target")
    with pytest.raises(CorpusError, match="once each") as info:
        load_rounds(write_csv(tmp_path / "bad.csv", header, rows))
    assert info.value.line == 5


def test_missing_column_raises(tmp_path, small_table, write_csv):
    header, rows = small_table
    i = header.index("alt2ColS")
    path = write_csv(tmp_path / "bad.csv", header[:i] + header[i + 1 :], [r[:i] + r[i + 1 :] for r in rows])
    with pytest.raises(CorpusError, match="missing column\\(s\\) alt2ColS") as info:
        load_rounds(path)
    assert (info.value.line, info.value.field) == (1, None)
    assert str(info.value).startswith(f"{path}:1:")


@pytest.mark.parametrize("extra", [True, False])
def test_wrong_field_count_raises_instead_of_shifting(tmp_path, small_table, write_csv, extra):
    header, rows = small_table
    row = rows[2]  # line 4
    i = header.index("clickColS")
    rows[2] = row[:i] + ["12"] + row[i:] if extra else row[:i] + row[i + 1 :]
    path = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(CorpusError, match=f"expected {len(header)} fields, found {len(header) + (1 if extra else -1)}") as info:
        load_rounds(path)
    assert (info.value.line, info.value.field) == (4, None)
    assert str(path) in str(info.value)


def corrupt_line(path, line: int, edit) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[line - 1] = edit(lines[line - 1])
    path.write_text("".join(lines), encoding="utf-8")


def test_unbalanced_quote_in_a_field_raises_at_the_corrupt_row(tmp_path, small_table, write_csv):
    header, rows = small_table
    path = write_csv(tmp_path / "bad.csv", header, rows)
    # An opening quote that never closes: the csv reader glues the rest of the file into this record.
    corrupt_line(path, 4, lambda s: s.replace(",close,", ',"close,', 1))
    with pytest.raises(CorpusError, match="malformed CSV") as info:
        load_rounds(path)
    assert info.value.line == 4
    assert str(path) in str(info.value)


def test_unbalanced_quote_in_contents_raises(tmp_path, small_table, write_csv):
    header, rows = small_table
    path = write_csv(tmp_path / "bad.csv", header, rows)
    corrupt_line(path, 4, lambda s: s[: s.rindex(",") + 1] + '"' + s[s.rindex(",") + 1 :])
    with pytest.raises(CorpusError) as info:
        rounds = load_rounds(path)
        # what happens instead: 3 rounds, the third one's text holds lines 4-6 of the file
        assert len(rounds) == 5, [r.text for r in rounds]
    assert info.value.line == 4


def test_multiline_record_keeps_line_numbers_physical(tmp_path, small_table, write_csv):
    header, rows = small_table
    set_field(header, rows, 2, "contents", "blue\nthe dark one")  # record spans lines 2-3
    set_field(header, rows, 4, "alt1ColH", "x")  # 4th record, physical line 5
    path = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(CorpusError) as info:
        load_rounds(path)
    assert (info.value.line, info.value.field) == (5, "alt1ColH")


def test_duplicate_round_raises(tmp_path, small_table, write_csv):
    header, rows = small_table
    path = write_csv(tmp_path / "bad.csv", header, rows + [list(rows[1])])
    with pytest.raises(CorpusError, match="1124-1/2 appears twice \\(first on line 3\\)") as info:
        load_rounds(path)
    assert info.value.line == 7


def test_nonexistent_file_raises(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(CorpusError, match="no such file") as info:
        load_rounds(path)
    assert info.value.path == str(path) and info.value.line is None
    assert str(path) in str(info.value)


def test_directory_is_not_a_corpus(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        load_rounds(tmp_path)


def test_empty_file_raises(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(CorpusError, match="empty file") as info:
        load_rounds(path)
    assert str(path) in str(info.value)


def test_header_only_raises(tmp_path, small_table, write_csv):
    header, _ = small_table
    path = write_csv(tmp_path / "header.csv", header, [])
    with pytest.raises(CorpusError, match="no rounds"):
        load_rounds(path)


def test_blank_lines_are_skipped(tmp_path, small_table, write_csv):
    header, rows = small_table
    path = write_csv(tmp_path / "ok.csv", header, rows)
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    path.write_text(text.replace("\n", "\n\n", 2), encoding="utf-8")
    assert [r.round_num for r in load_rounds(path)] == [1, 2, 3, 4, 5]


def test_corpus_error_is_a_value_error():
    err = CorpusError("f.csv", "bad", line=3, field="x")
    assert isinstance(err, ValueError)
    assert str(err) == "f.csv:3: field 'x': bad"


def test_a_utf8_byte_order_mark_is_accepted(tmp_path, small_table, write_csv):
    """Excel's "CSV UTF-8" starts the file with a BOM: the first column is still `gameid`."""
    header, rows = small_table
    plain = write_csv(tmp_path / "plain.csv", header, rows)
    with_bom = tmp_path / "bom.csv"
    with_bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert load_rounds(with_bom) == load_rounds(plain)
    assert load_rounds(with_bom)[0].game_id == rows[0][header.index("gameid")]


def test_a_byte_that_is_not_utf8_is_reported_with_file_and_line(tmp_path, small_table, write_csv):
    header, rows = small_table
    path = write_csv(tmp_path / "latin1.csv", header, rows)
    data = path.read_bytes().splitlines(keepends=True)
    data[3] = data[3].replace(b"close", b"clos\xe9", 1)  # "closé" in Latin-1
    column = data[3].index(b"\xe9")
    path.write_bytes(b"".join(data))
    with pytest.raises(CorpusError) as info:
        load_rounds(path)
    assert info.value.line == 4 and info.value.path == str(path)
    assert str(info.value) == f"{path}:4: not UTF-8 text (invalid continuation byte at byte {column} of the line); save the file as UTF-8"
    # on the first line, after a BOM: the byte is counted from the start of the line, BOM included
    path.write_bytes(b"\xef\xbb\xbf\xff" + b"".join(data[1:]))
    with pytest.raises(CorpusError, match=r":1: not UTF-8 text \(invalid start byte at byte 3 of the line\)"):
        load_rounds(path)
