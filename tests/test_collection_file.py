"""`collection.json` carries its kind and format version, and a wrong one is refused by name."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from translator.storage.bundle import FORMAT_VERSION, BundleError
from translator.translate.colors.collection import COLLECTION_FILE, COLLECTION_KIND, load_collection, save_collection

INFO = {"agents": "runs/x/agents/continuous", "channel": "continuous", "rounds": 2}


def _ds() -> Dataset:
    """Two rounds of a continuous channel, as `Dataset.from_dict` types them (the record's types)."""
    return Dataset.from_dict({
        "round_id": ["g1/1", "g1/2"], "game_id": ["g1", "g1"], "condition": ["far", "close"],
        "colors": [[[10.0, 50.0, 50.0], [120.0, 50.0, 50.0], [240.0, 50.0, 50.0]]] * 2, "speaker_order": [[0, 1, 2]] * 2,
        "target": [0, 2], "message": [[0.5, -1.0], [1.5, 2.0]], "message_length": [2, 2], "message_log_prob": [-1.0, -2.0],
        "agent_choice": [0, 1], "agent_correct": [True, False], "utterance": ["blue", "red"], "human_click": [0, 2],
        "human_outcome": [True, True],
    })  # fmt: skip


def test_the_info_round_trips_and_the_file_names_its_kind(tmp_path):
    save_collection(_ds(), tmp_path / "pairs", INFO)
    raw = json.loads((tmp_path / "pairs" / COLLECTION_FILE).read_text())
    assert raw["kind"] == COLLECTION_KIND and raw["format_version"] == FORMAT_VERSION
    ds, info = load_collection(tmp_path / "pairs")
    assert info == INFO and ds["utterance"] == ["blue", "red"]


def test_a_file_written_before_it_had_a_kind_reads_as_it_is(tmp_path):
    save_collection(_ds(), tmp_path / "pairs", INFO)
    (tmp_path / "pairs" / COLLECTION_FILE).write_text(json.dumps(INFO))
    assert load_collection(tmp_path / "pairs")[1] == INFO


@pytest.mark.parametrize("change", [{"kind": "neuralese.texts"}, {"format_version": FORMAT_VERSION + 1}])
def test_another_kind_or_a_newer_format_is_refused_naming_the_file(tmp_path, change):
    save_collection(_ds(), tmp_path / "pairs", INFO)
    path = tmp_path / "pairs" / COLLECTION_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(BundleError, match=str(path)):
        load_collection(tmp_path / "pairs")
