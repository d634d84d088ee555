"""The record of play: one set of column types for every collection, checked when it is loaded,
and the typed view (`PlayedRounds`) that gives the same tensors as reading the columns by hand."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
import torch
from datasets import Dataset, List, Value, load_from_disk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training.colors.import_messages import import_messages
from translator.games.colors.record import COLUMNS, PlayedRounds, RecordError, conform, features
from translator.translate.colors.collection import DATASET_INFO_FILE, load_collection, save_collection

HSL = [[10.0, 50.0, 50.0], [120.0, 40.5, 60.0], [240.0, 50.0, 25.25]]


def rounds(discrete: bool, n: int = 5) -> dict[str, list]:
    """`n` rounds as plain columns (what `Dataset.from_dict` types as the record's types)."""
    message = (
        [[(i + j) % 7 for j in range(3)] for i in range(n)] if discrete else [[0.1 * i - 0.37, 1.0 / (i + 3)] for i in range(n)]
    )
    return {
        "round_id": [f"g{i // 2}/{i}" for i in range(n)], "game_id": [f"g{i // 2}" for i in range(n)],
        "condition": [("far", "split", "close")[i % 3] for i in range(n)],
        "colors": [[[h + i, s, light] for h, s, light in HSL] for i in range(n)], "speaker_order": [[2, 0, 1]] * n,
        "target": [i % 3 for i in range(n)], "message": message, "message_length": [3 if discrete else 2] * n,
        "message_log_prob": [-0.5 * i for i in range(n)], "agent_choice": [(i + 1) % 3 for i in range(n)],
        "agent_correct": [False] * n, "utterance": [f"the {i} one" for i in range(n)],
        "human_click": [i % 3 for i in range(n)], "human_outcome": [True] * n,
    }  # fmt: skip


def info(discrete: bool) -> dict:
    return {"channel": "gumbel" if discrete else "continuous", "rounds": 5}


@pytest.mark.parametrize("discrete", [False, True])
def test_the_features_round_trip_through_save_and_load(tmp_path, discrete):
    ds = Dataset.from_dict(rounds(discrete), features=features(discrete))
    save_collection(ds, tmp_path / "pairs", info(discrete))
    assert load_from_disk(str(tmp_path / "pairs")).features == features(discrete)  # as written on disk
    loaded, _ = load_collection(tmp_path / "pairs")
    assert loaded.features == features(discrete) and list(loaded.features) == list(COLUMNS)
    assert loaded.to_dict() == ds.to_dict()


def test_a_collection_saved_without_the_record_types_is_cast(tmp_path):
    """Castable types (narrower integers, integer colours, float32 messages) load as the record's."""
    cols = rounds(False)
    cols["colors"] = [[[int(x) for x in c] for c in ctx] for ctx in cols["colors"]]  # whole numbers: int64 in Arrow
    ds = Dataset.from_dict(cols).cast_column("target", Value("int32")).cast_column("message", List(Value("float32")))
    assert ds.features["colors"] == List(List(Value("int64")))
    ds.save_to_disk(str(tmp_path / "pairs"))  # as an older release left it: no record types
    (tmp_path / "pairs" / "collection.json").write_text(json.dumps(info(False)))
    loaded, _ = load_collection(tmp_path / "pairs")
    assert loaded.features == features(False)
    assert loaded["colors"] == [[[float(int(x)) for x in c] for c in ctx] for ctx in rounds(False)["colors"]]
    assert loaded["target"] == cols["target"]


@pytest.mark.parametrize(("column", "values", "needs"), [
    ("target", ["0", "1", "2", "0", "1"], "Value('int64')"),
    ("message", [[0.5, 1.5, 2.0]] * 5, "a discrete channel's message"),
    ("colors", [["red", "green", "blue"]] * 5, "List(List(Value('float64')))"),
    ("agent_correct", [0, 1, 0, 1, 0], "Value('bool')"),
])  # fmt: skip
def test_a_wrong_column_type_is_refused_naming_file_and_column(tmp_path, column, values, needs):
    cols = {**rounds(True), column: values}
    Dataset.from_dict(cols).save_to_disk(str(tmp_path / "pairs"))
    (tmp_path / "pairs" / "collection.json").write_text(json.dumps(info(True)))
    with pytest.raises(
        RecordError,
        match=re.escape(f"{tmp_path / 'pairs' / DATASET_INFO_FILE}: column '{column}' holds ") + ".*" + re.escape(needs),
    ):
        load_collection(tmp_path / "pairs")


def test_a_missing_or_unknown_column_is_refused_naming_it(tmp_path):
    cols = rounds(False)
    with pytest.raises(RecordError, match=r"here: no column 'utterance'"):
        conform(Dataset.from_dict({k: v for k, v in cols.items() if k != "utterance"}), False, "here")
    with pytest.raises(RecordError, match=r"here: column 'score' is not part of a record of play"):
        conform(Dataset.from_dict({**cols, "score": [1.0] * 5}), False, "here")
    with pytest.raises(RecordError, match=rf"{tmp_path / 'out'}: no column 'target'"):
        save_collection(Dataset.from_dict({k: v for k, v in cols.items() if k != "target"}), tmp_path / "out", info(False))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("discrete", [False, True])
def test_the_view_gives_the_tensors_read_by_hand(discrete):
    ds = Dataset.from_dict(rounds(discrete, 9), features=features(discrete)).select([7, 1, 4, 4, 0])  # a selection, reordered
    view = PlayedRounds.of(ds)
    messages = torch.tensor(ds["message"])
    assert torch.equal(view.messages, messages) and view.messages.dtype == (torch.int64 if discrete else torch.float32)
    assert torch.equal(view.colors, torch.tensor(ds["colors"], dtype=torch.float32)) and view.colors.dtype == torch.float32
    assert torch.equal(view.targets, torch.tensor(ds["target"])) and view.targets.dtype == torch.int64
    assert torch.equal(view.speaker_order, torch.tensor(ds["speaker_order"]))
    assert torch.equal(view.agent_choices, torch.tensor(ds["agent_choice"]))
    assert view.utterances == ds["utterance"] and view.game_ids == ds["game_id"] and view.round_ids == ds["round_id"]
    assert view.conditions == ds["condition"] and view.discrete == discrete and len(view) == 5
    part = view.subset([3, 0])
    assert torch.equal(part.messages, messages[[3, 0]]) and part.utterances == [ds["utterance"][3], ds["utterance"][0]]
    assert PlayedRounds.of(view) is view


def test_the_view_of_no_rounds_has_the_shapes_of_its_columns():
    view = PlayedRounds.of(Dataset.from_dict(rounds(False, 3), features=features(False)).select([]))
    assert view.colors.shape == (0, 3, 3) and view.targets.shape == (0,) and view.utterances == []


def _line(draw, discrete: bool) -> dict:
    message = (
        draw(st.lists(st.integers(0, 9), min_size=1, max_size=3))
        if discrete
        else draw(st.lists(st.floats(-1e3, 1e3).map(lambda x: x + 0.5), min_size=4, max_size=4))
    )
    rec = {
        "colors": draw(
            st.lists(st.tuples(st.floats(0, 360), st.floats(0, 100), st.integers(0, 100)).map(list), min_size=3, max_size=3)
        ),
        "target": draw(st.integers(0, 2)),
        "message": message,
    }
    for name, value in (
        ("utterance", st.text(max_size=8)),
        ("condition", st.sampled_from(["far", "split", "close"])),
        ("agent_choice", st.integers(0, 2)),
        ("human_click", st.integers(0, 2)),
        ("speaker_order", st.permutations([0, 1, 2])),
        ("game_id", st.integers(0, 3)),
    ):
        if draw(st.booleans()):
            rec[name] = draw(value)
    return rec


@st.composite
def files(draw) -> tuple[bool, list[dict]]:
    discrete = draw(st.booleans())
    return discrete, [_line(draw, discrete) for _ in range(draw(st.integers(1, 6)))]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files())
def test_any_import_of_valid_lines_has_exactly_the_record_features(file):
    discrete, lines = file
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "rounds.jsonl"
        src.write_text("".join(json.dumps(dict(rec, round_id=f"r{i}")) + "\n" for i, rec in enumerate(lines)))
        ds = import_messages(src, Path(tmp) / "pairs")
        assert ds.features == features(discrete)
        loaded, _ = load_collection(Path(tmp) / "pairs")
        assert loaded.features == features(discrete) and len(loaded) == len(lines)
        assert PlayedRounds.of(loaded).messages.dtype == (torch.int64 if discrete else torch.float32)
