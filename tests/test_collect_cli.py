"""`neuralese train agents`, `neuralese collect`, and the agents section of `neuralese evaluate`."""

from __future__ import annotations

import json
import shutil

import pytest

from translator.apps.cli import main
from translator.games.colors.corpus import load_rounds
from translator.translate.colors.collection import load_collection

COLUMNS = {
    "round_id", "game_id", "condition", "colors", "speaker_order", "target", "message", "message_length",
    "message_log_prob", "agent_choice", "agent_correct", "utterance", "human_click", "human_outcome",
}  # fmt: skip


@pytest.fixture(scope="module")
def agents_run(game_slice, saved_english, tmp_path_factory):
    """A run with an English bundle and briefly trained continuous and gumbel agents."""
    run = tmp_path_factory.mktemp("agents") / "run"
    shutil.copytree(saved_english, run / "english")
    for channel in ("continuous", "gumbel"):
        main(["train", "agents", "--channel", channel, "--train", str(game_slice(0, 30)), "--out", str(run),
              "--steps", "150", "--batch-size", "64", "--threads", "1"])  # fmt: skip
    return run


def test_collect_schema_and_row_count(agents_run, game_slice, tmp_path):
    data = game_slice(60, 70)
    out = tmp_path / "pairs"
    main(["collect", "--agents", str(agents_run / "agents" / "continuous"), "--data", str(data), "--out", str(out)])
    ds, info = load_collection(out)
    rounds = load_rounds(data)
    assert len(ds) == len(rounds) == info["rounds"] and info["channel"] == "continuous"
    assert set(ds.column_names) == COLUMNS
    row = ds[0]
    assert row["round_id"] == rounds[0].round_id and row["utterance"] == rounds[0].text
    assert len(row["message"]) == 64 and isinstance(row["message_log_prob"], float)
    assert all(c == (a == t) for c, a, t in zip(ds["agent_correct"], ds["agent_choice"], ds["target"]))
    # Briefly trained agents already beat chance clearly on unseen games.
    assert sum(ds["agent_correct"]) / len(ds) > 0.6


def test_collect_is_deterministic_for_a_seed(agents_run, game_slice, tmp_path):
    data = game_slice(60, 64)
    for name in ("a", "b"):
        main(["collect", "--agents", str(agents_run / "agents" / "gumbel"), "--data", str(data), "--out", str(tmp_path / name)])
    a, _ = load_collection(tmp_path / "a")
    b, _ = load_collection(tmp_path / "b")
    assert a["message"] == b["message"]
    assert all(0 < n <= 3 for n in a["message_length"])


def test_evaluate_reports_agents_and_language(agents_run, game_slice, tmp_path):
    main(["evaluate", "--run", str(agents_run), "--data", str(game_slice(60, 66)), "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["agents"]) == {"continuous", "gumbel"}
    for channel, rep in metrics["agents"].items():
        lo, hi = rep["ci95"]
        assert lo <= rep["accuracy"] <= hi and rep["accuracy"] > 0.5, channel
        assert set(rep["by_condition"]) == {"far", "split", "close"}
        lang = rep["language"]
        assert lang["entropy"] > 0 and 0 <= lang["mutual_information"] <= lang["entropy"] + 1e-9
        assert -1 <= lang["topographic_similarity"] <= 1
    assert "posdis" in metrics["agents"]["gumbel"]["language"]
    assert "posdis" not in metrics["agents"]["continuous"]["language"]
    assert "agents R/R (gumbel)" in (tmp_path / "report.md").read_text()


def test_collect_with_missing_agents_fails_cleanly(game_slice, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["collect", "--agents", str(tmp_path / "nope"), "--data", str(game_slice(0, 2)), "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    assert "nope" in capsys.readouterr().err
