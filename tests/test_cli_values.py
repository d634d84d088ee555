"""Numeric options are checked while the arguments are parsed; `translate` names why it cannot
serve a translator. Nothing here loads a model."""

from __future__ import annotations

import json

import pytest

from translator.apps.cli import build_parser
from translator.storage.run_layout import find_translator

BAD = [
    (["evaluate", "--run", "r", "--data", "d", "--out", "o", "--games", "-3"], "--games: expected an integer >= 1, got '-3'"),
    (["evaluate", "--run", "r", "--data", "d", "--out", "o", "--games", "0"], "--games: expected an integer >= 1, got '0'"),
    (["evaluate", "--run", "r", "--data", "d", "--out", "o", "--jobs", "two"], "--jobs: expected an integer >= 1, got 'two'"),
    (["translate", "--run", "r", "--channel", "c", "--to", "english", "--max-wait-ms", "-5"], "--max-wait-ms: expected a number >= 0"),
    (["translate", "--run", "r", "--channel", "c", "--to", "english", "--max-wait-ms", "nan"], "--max-wait-ms: expected a number >= 0"),
    (["translate", "--run", "r", "--channel", "c", "--to", "english", "--batch-size", "0"], "--batch-size: expected an integer >= 1"),
    (["serve", "--run", "r", "--port", "70000"], "--port: expected an integer in [0, 65535]"),
    (["serve", "--run", "r", "--batch-wait-ms", "-1"], "--batch-wait-ms: expected a number >= 0"),
    (["train", "agents", "--channel", "gumbel", "--train", "t", "--out", "o", "--temperature", "0"], "--temperature: expected a number > 0"),
    (["train", "agents", "--channel", "gumbel", "--train", "t", "--out", "o", "--vocab-size", "1"], "--vocab-size: expected an integer >= 2"),
    (["train", "agents", "--channel", "continuous", "--train", "t", "--out", "o", "--noise", "-0.1"], "--noise: expected a number >= 0"),
    (["train", "translator", "--kind", "belief", "--pairs", "p", "--out", "o", "--contexts", "0"], "--contexts: expected an integer >= 1"),
    (["train", "translator", "--kind", "belief", "--pairs", "p", "--out", "o", "--speaker-samples", "-1"], "expected an integer >= 0"),
    (["train", "english", "--train", "t", "--out", "o", "--seed", "-1"], "--seed: expected an integer >= 0, got '-1'"),
    (["demo", "--jobs", "0"], "--jobs: expected an integer >= 1, got '0'"),
    (["demo", "--seeds", "0"], "--seeds: expected an integer >= 1, got '0'"),
]


@pytest.mark.parametrize("argv, fragment", BAD)
def test_bad_numbers_are_refused_by_the_parser(argv, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2 and fragment in capsys.readouterr().err


def test_good_numbers_pass():
    args = build_parser().parse_args(["translate", "--run", "r", "--channel", "c", "--to", "english", "--max-wait-ms", "0",
                                      "--batch-size", "1", "--workers", "2"])
    assert (args.max_wait_ms, args.batch_size, args.workers) == (0.0, 1, 2)
    assert build_parser().parse_args(["evaluate", "--run", "r", "--data", "d", "--out", "o", "--games", "1"]).games == 1


def test_translate_finds_any_translator_and_names_why_one_cannot_be_served(tmp_path):
    channel = tmp_path / "translators" / "continuous"
    (channel / "belief").mkdir(parents=True)
    (channel / "belief" / "config.json").write_text("{}")
    (channel / "seq2seq_belief").mkdir()
    (channel / "seq2seq_belief" / "translator.json").write_text(json.dumps({"kind": "neuralese.seq2seq_pair"}))
    assert find_translator(tmp_path, "continuous") == channel / "belief"
    # a seq2seq pair (here with the header of bundle formats 1-2) is served like any translator
    assert find_translator(tmp_path, "continuous", "seq2seq_belief") == channel / "seq2seq_belief"
    with pytest.raises(ValueError, match="channel 'continuous' has no translator 'direct'.*can be served: belief, seq2seq_belief"):
        find_translator(tmp_path, "continuous", "direct")
    with pytest.raises(ValueError, match="unknown channel 'gumbel'.*'belief' translator in .*: continuous"):
        find_translator(tmp_path, "gumbel")
