"""`neuralese evaluate` refuses a bad `--out` before any work, and names the channels it cannot score."""

from __future__ import annotations

import json

import pytest

from eval.colors.translation import evaluate_translation
from eval.evaluate import evaluate, prepare_out
from translator.apps.cli import main
from translator.models.channels import ChannelConfig
from translator.translate.colors.registry import BELIEF_KIND

MISSING_DATA = "no-such-file.csv"  # evaluate would fail on it, but only after the output check


def test_out_naming_a_file_is_refused_before_the_work(tmp_path):
    out = tmp_path / "metrics.json"
    out.write_text("{}")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        evaluate(tmp_path / "run", MISSING_DATA, out)
    assert out.read_text() == "{}"


def test_cli_exits_2_with_a_clear_message(tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("")
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--run", str(tmp_path), "--data", MISSING_DATA, "--out", str(out), "--jobs", "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("neuralese: error:") and f"{out}: exists and is not a directory" in err and "Traceback" not in err


def test_out_below_a_file_and_report_files_that_are_directories(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="cannot create the output directory"):
        prepare_out(tmp_path / "file" / "eval")
    (tmp_path / "eval" / "report.html").mkdir(parents=True)
    with pytest.raises(ValueError, match="report.html would be overwritten but is a directory"):
        prepare_out(tmp_path / "eval")


def test_a_fresh_or_existing_directory_is_accepted(tmp_path):
    assert prepare_out(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    (tmp_path / "a" / "b" / "metrics.json").write_text("{}")  # an earlier evaluation is overwritten
    assert prepare_out(tmp_path / "a" / "b").is_dir()


def test_a_channel_without_agents_is_named(tmp_path, capsys):
    belief = tmp_path / "translators" / "gumbel" / "belief"
    belief.mkdir(parents=True)  # a header that names its channel (the weights are never read)
    header = {"kind": BELIEF_KIND, "format_version": 3, "config": {"channel": ChannelConfig("gumbel").to_dict()}}
    (belief / "config.json").write_text(json.dumps(header))
    (tmp_path / "eval_listener").mkdir()
    (tmp_path / "eval_listener" / "config.json").write_text("{}")
    assert evaluate_translation(tmp_path, [], jobs=1) == ({}, [])
    err = capsys.readouterr().err
    assert "warning: channel gumbel not evaluated" in err and str(tmp_path / "agents" / "gumbel") in err
