"""`import_messages`: a user's JSON Lines file of rounds -> a collected corpus (docs/message_schema.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from training.colors.import_messages import MAX_LINE_BYTES, import_messages, read_messages
from training.colors.learned_speaker import LearnedSpeakerArgs, fit_message_model
from translator.games.colors.corpus import CorpusError, load_rounds
from translator.games.colors.record import features
from translator.models.channels import MAX_DIM, MAX_LEN, MAX_VOCAB, ChannelConfig
from translator.models.colors.agents import Agents
from translator.translate.colors.collection import collect, load_collection

torch.set_num_threads(1)

COLS = [[248, 92, 50], [226, 81, 50], [283, 87, 50]]
FAR = [[249, 25, 50], [54, 53, 50], [129, 66, 50]]
COLUMNS = {
    "round_id", "game_id", "condition", "colors", "speaker_order", "target", "message", "message_length",
    "message_log_prob", "agent_choice", "agent_correct", "utterance", "human_click", "human_outcome",
}  # fmt: skip


def write_lines(path: Path, lines: list) -> Path:
    """Each item a dict (dumped as JSON) or a raw string (written as it is)."""
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def good(**over) -> dict:
    rec = {"colors": COLS, "target": 1, "message": [0.5, -1.25, 2.0]}
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not ...}


def test_continuous_file_round_trips(tmp_path):
    lines = [
        good(game_id="g1", utterance="the darker blue one", agent_choice=1, human_click=0, condition="close"),
        good(game_id="g1", colors=FAR, target=0, message=[1, 0.0, 3e-2], speaker_order=[2, 0, 1]),
        good(round_id="solo"),
    ]
    ds = import_messages(write_lines(tmp_path / "m.jsonl", lines), tmp_path / "out")
    loaded, info = load_collection(tmp_path / "out")
    assert len(loaded) == len(ds) == 3 and set(loaded.column_names) == COLUMNS
    assert loaded.features == features(discrete=False)
    assert info["rounds"] == 3 and info["games"] == 2 and info["channel"] == "continuous"
    assert info["channel_config"]["dim"] == 3 and info["channel_inferred"] and info["source"].endswith("m.jsonl")
    a, b, c = loaded
    assert a["colors"] == [[float(x) for x in col] for col in COLS] and a["target"] == 1
    assert a["message"] == [0.5, -1.25, 2.0] and a["message_length"] == 3 and math.isnan(a["message_log_prob"])
    assert (a["round_id"], a["game_id"], a["condition"]) == ("g1/1", "g1", "close")
    assert (a["agent_choice"], a["agent_correct"], a["human_click"], a["human_outcome"]) == (1, True, 0, False)
    assert a["utterance"] == "the darker blue one" and a["speaker_order"] == [0, 1, 2]
    assert b["round_id"] == "g1/2" and b["message"] == [1.0, 0.0, 0.03] and b["speaker_order"] == [2, 0, 1]
    assert b["condition"] == "far"  # derived from the colours
    assert (c["round_id"], c["game_id"]) == ("solo", "line-3")
    assert (c["agent_choice"], c["agent_correct"], c["human_click"], c["utterance"]) == (-1, False, -1, "")


def test_discrete_file_is_padded_and_inferred(tmp_path):
    lines = [good(message=[3, 7, 0]), "", good(message=[5], game_id=4), good(message=[9, 0, 2, 2], round_id=17)]
    ds, channel = read_messages(write_lines(tmp_path / "d.jsonl", lines))
    assert channel.discrete and channel.vocab_size == 10 and channel.max_len == 4
    assert ds.features == features(discrete=True)
    assert ds["message"] == [[3, 7, 0, 0], [5, 0, 0, 0], [9, 0, 0, 0]]  # canonical: EOS after the end
    assert ds["message_length"] == [3, 2, 2]
    assert ds["round_id"] == ["line-1/1", "4/1", "17"] and ds["game_id"] == ["line-1", "4", "line-4"]
    # a given channel is kept (and checked)
    given = ChannelConfig(kind="reinforce", vocab_size=16, max_len=4)
    _, ch = read_messages(tmp_path / "d.jsonl", channel=given)
    assert ch == given


def test_our_own_collection_survives_export_and_import(game_slice, tmp_path):
    """Agents' messages written out as JSON Lines and read back give the same corpus."""
    from training.colors.agents import AgentTrainArgs, train_agents

    agents: Agents = train_agents(load_rounds(game_slice(0, 4)), AgentTrainArgs.for_channel("gumbel", steps=5, batch_size=16,
                                                                                            eval_every=0, progress=False))
    ours = collect(agents, load_rounds(game_slice(0, 6)))
    path = write_lines(tmp_path / "export.jsonl", [
        {k: r[k] for k in ("round_id", "game_id", "condition", "colors", "speaker_order", "target", "message", "utterance")}
        for r in ours
    ])  # fmt: skip
    back = import_messages(path, tmp_path / "back", channel=agents.channel)
    assert back.features == ours.features
    for col in ("round_id", "game_id", "condition", "colors", "speaker_order", "target", "message", "message_length", "utterance"):
        assert back[col] == ours[col], col
    # and a message model can be fitted to it directly
    model = fit_message_model(back, agents.channel, LearnedSpeakerArgs(color_dim=16, hidden_dim=16, max_epochs=1))
    assert model.log_prob_grid(torch.tensor(back["message"][:3]), torch.tensor(back["colors"][:2])).shape == (3, 2, 3)


RAW = '{"colors": ' + json.dumps(COLS) + ', "target": 0, "message": MSG}'  # JSON that json.dumps would not write
BAD = [
    # (lines, bad line number, field, message fragment)
    (['{"colors": [[1, 2, 3]'], 1, None, "not valid JSON"),
    ([good(), "[1, 2]"], 2, None, "JSON object"),
    ([good(), good(colors=...)], 2, "colors", "missing"),
    ([good(target=...)], 1, "target", "missing"),
    ([good(), good(), good(message=...)], 3, "message", "missing"),
    ([good(colors="red")], 1, "colors", "3 HSL triples"),
    ([good(colors=[[1, 2, 3], [1, 2, 3]])], 1, "colors", "3 HSL triples"),
    ([good(colors=[[1, 2, 3], [1, 2], [1, 2, 3]])], 1, "colors", "colour 1"),
    ([good(colors=[[1, 2, 3], [1, "2", 3], [1, 2, 3]])], 1, "colors", "expected a number"),
    ([good(), good(colors=[[400, 2, 3], [1, 2, 3], [1, 2, 3]])], 2, "colors", "hue 400 is outside [0, 360]"),
    ([good(colors=[[1, 2, 3], [1, 2, 3], [1, 2, -1]])], 1, "colors", "lightness -1 is outside [0, 100]"),
    (['{"colors": [[NaN, 2, 3], [1, 2, 3], [1, 2, 3]], "target": 0, "message": [0.5]}'], 1, "colors", "finite"),
    ([good(target=3)], 1, "target", "not 0, 1 or 2"),
    ([good(target=-1)], 1, "target", "not 0, 1 or 2"),
    ([good(target=1.0)], 1, "target", "integer"),
    ([good(target="1")], 1, "target", "integer"),
    ([good(target=True)], 1, "target", "integer"),
    ([good(), good(message="hello")], 2, "message", "list of numbers"),
    ([good(message=[])], 1, "message", "empty message"),
    ([good(), 'ok'], 2, None, "not valid JSON"),
    ([good(), good(), RAW.replace("MSG", "[0.5, Infinity, 1.0]")], 3, "message", "finite"),
    ([RAW.replace("MSG", "[NaN, 0.5, 1.0]")], 1, "message", "finite"),
    ([good(), good(), good(), good(message=[0.5, 1.0])], 4, "message", "dim 3"),
    ([good(message=[1, 2]), good(message=[0.5, 1.5])], 2, "message", "integers"),
    ([good(message=[1, -2])], 1, "message", "negative"),
    ([good(message=[1, True])], 1, "message", "expected a number"),
    ([good(speaker_order=[0, 0, 1])], 1, "speaker_order", "permutation"),
    ([good(condition="medium")], 1, "condition", "far, split, close"),
    ([good(agent_choice=5)], 1, "agent_choice", "not 0, 1 or 2"),
    ([good(human_click="left")], 1, "human_click", "integer"),
    ([good(game_id=[1])], 1, "game_id", "string"),
    ([good(utterance=3)], 1, "utterance", "string"),
    ([good(gameid="g1")], 1, "gameid", "unknown field"),
    ([good(round_id="a"), good(round_id="b"), good(round_id="a")], 3, "round_id", "first on line 1"),
]


@pytest.mark.parametrize("lines, line, field, fragment", BAD)
def test_bad_input_names_file_line_and_field(tmp_path, lines, line, field, fragment):
    path = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(CorpusError) as info:
        import_messages(path, tmp_path / "out")
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), line, field), str(err)
    assert fragment in str(err) and str(err).startswith(f"{path}:{line}:")
    assert not (tmp_path / "out").exists()  # nothing written


def test_bad_input_against_a_given_channel(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [good(message=[3, 1]), good(message=[3, 40])])
    with pytest.raises(CorpusError) as info:
        read_messages(path, channel=ChannelConfig(kind="gumbel", vocab_size=32, max_len=3))
    assert (info.value.line, info.value.field) == (2, "message") and "out of range" in str(info.value)
    with pytest.raises(CorpusError) as info:
        read_messages(path, channel=ChannelConfig(kind="gumbel", vocab_size=64, max_len=1))
    assert (info.value.line, info.value.field) == (1, "message") and "max_len" in str(info.value)
    with pytest.raises(CorpusError) as info:
        read_messages(path, channel=ChannelConfig(kind="continuous", dim=3))
    assert (info.value.line, info.value.field) == (1, "message") and "dim 3" in str(info.value)


def test_empty_missing_and_undecodable_files(tmp_path):
    for content in ("", "\n  \n"):
        (tmp_path / "e.jsonl").write_text(content)
        with pytest.raises(CorpusError, match="empty file") as info:
            import_messages(tmp_path / "e.jsonl", tmp_path / "out")
        assert info.value.line is None
    with pytest.raises(CorpusError, match="no such file"):
        import_messages(tmp_path / "missing.jsonl", tmp_path / "out")
    (tmp_path / "latin.jsonl").write_bytes((json.dumps(good()) + "\n").encode() + b'{"utterance": "caf\xe9"}\n')
    with pytest.raises(CorpusError, match="UTF-8") as info:
        import_messages(tmp_path / "latin.jsonl", tmp_path / "out")
    assert info.value.line == 2


def test_channel_size_is_capped(tmp_path):
    """A message far beyond any real channel is refused on its line, before it is padded or stored."""
    cases = [
        ([good(message=[1] * 100_000)], "100000 symbols, more than the longest message supported (max_len 64)"),
        ([good(message=[0.5] * (MAX_DIM + 1))], f"{MAX_DIM + 1} numbers, more than the largest continuous channel supported"),
        ([good(message=[3]), good(message=[10**30])], f"out of range for the largest vocabulary supported ({MAX_VOCAB} symbols"),
    ]
    for lines, fragment in cases:
        path = write_lines(tmp_path / "big.jsonl", lines)
        with pytest.raises(CorpusError) as info:
            read_messages(path)
        assert (info.value.line, info.value.field) == (len(lines), "message") and fragment in str(info.value), str(info.value)
    _, ch = read_messages(write_lines(tmp_path / "ok.jsonl", [good(message=[1] * MAX_LEN), good(message=[MAX_VOCAB - 1])]))
    assert (ch.max_len, ch.vocab_size) == (MAX_LEN, MAX_VOCAB)
    with pytest.raises(ValueError, match="max_len must be in"):
        ChannelConfig(kind="gumbel", max_len=MAX_LEN + 1)


def test_a_partly_given_channel_fixes_its_fields_and_infers_the_rest(tmp_path):
    """Vocabulary 32 declared: id 31 is accepted although the file's largest id is 30."""
    path = write_lines(tmp_path / "d.jsonl", [good(message=[30, 2]), good(message=[5], game_id="g")])
    _, inferred = read_messages(path)
    assert inferred.vocab_size == 31  # what the data alone says
    ds = import_messages(path, tmp_path / "out", channel={"vocab_size": 32})
    ds2 = import_messages(write_lines(tmp_path / "e.jsonl", [good(message=[31])]), None, channel={"vocab_size": 32})
    _, info = load_collection(tmp_path / "out")
    assert info["channel_config"] == {"kind": "gumbel", "vocab_size": 32, "max_len": 2, "embed_dim": 64, "temperature": 0.5}
    assert info["channel_inferred"] == ["max_len"] and ds["message"] == [[30, 2], [5, 0]] and ds2["message"] == [[31]]
    with pytest.raises(CorpusError) as err:
        read_messages(path, channel={"kind": "reinforce", "max_len": 1})
    assert (err.value.line, err.value.field) == (1, "message") and "max_len 1" in str(err.value)
    cont = import_messages(write_lines(tmp_path / "c.jsonl", [good()]), tmp_path / "c", channel={"kind": "continuous"})
    _, info = load_collection(tmp_path / "c")
    assert info["channel_config"] == {"kind": "continuous", "dim": 3, "noise": 0.3} and info["channel_inferred"] == ["dim"]
    assert len(cont) == 1
    for bad, fragment in (({"dim": 3, "vocab_size": 8}, "give its kind"), ({"vocab_size": 99999}, "vocab_size must be in"),
                          ({"max_len": "3"}, "must be an integer"), ({"colour": 1}, "unknown field")):
        with pytest.raises(ValueError, match=fragment):
            read_messages(path, channel=bad)


def test_configs_hold_only_their_kinds_fields_and_old_ones_still_load():
    assert set(ChannelConfig(kind="continuous", dim=8).to_dict()) == {"kind", "dim", "noise"}
    assert "dim" not in ChannelConfig(kind="gumbel").to_dict() and "temperature" not in ChannelConfig(kind="reinforce").to_dict()
    old = {"kind": "continuous", "dim": 8, "noise": 0.3, "vocab_size": 32, "max_len": 3, "embed_dim": 64, "temperature": 0.5,
           "entropy_coef": 0.002, "baseline_momentum": 0.99}  # as written before: every field
    assert ChannelConfig.from_dict(old) == ChannelConfig.from_dict(ChannelConfig.from_dict(old).to_dict())


HOSTILE = [
    # (raw line, field, message fragment): values Python's json reads but a corpus cannot hold
    ('{"colors": [[1e999, 2, 3], [1, 2, 3], [1, 2, 3]], "target": 0, "message": [0.5, 1.0, 2.0]}', "colors", "finite"),
    ('{"colors": [[' + "9" * 400 + ', 2, 3], [1, 2, 3], [1, 2, 3]], "target": 0, "message": [0.5, 1.0, 2.0]}', "colors", "finite"),
    ('{"colors": ' + json.dumps(COLS) + ', "target": 0, "message": [' + "9" * 400 + ']}', "message", "finite"),
    ('{"colors": ' + json.dumps(COLS) + ', "target": ' + "9" * 400 + ', "message": [0.5, 1.0, 2.0]}', "target", "not 0, 1 or 2"),
    ('{"colors": ' + json.dumps(COLS) + ', "target": 0, "message": [0.5, 1.0, 2.0], "utterance": "\\ud800 blue"}', "utterance", "surrogate"),
    ('{"colors": ' + json.dumps(COLS) + ', "target": 0, "message": [0.5, 1.0, 2.0], "game_id": "g\\udfff"}', "game_id", "surrogate"),
    ('{"colors": ' + json.dumps(COLS) + ', "target": 0, "message": [' + "1" * 5000 + ']}', None, "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, None, "not valid JSON"),
]


@pytest.mark.parametrize("raw, field, fragment", HOSTILE)
def test_hostile_values_are_errors_not_crashes(tmp_path, raw, field, fragment):
    path = write_lines(tmp_path / "h.jsonl", [good(), raw])
    with pytest.raises(CorpusError) as info:
        read_messages(path)
    assert (info.value.line, info.value.field) == (2, field) and fragment in str(info.value), str(info.value)


def test_a_line_too_long_is_refused_without_reading_it_whole(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_bytes((json.dumps(good()) + "\n").encode() + b'{"meta": "' + b"x" * MAX_LINE_BYTES + b'"}\n')
    with pytest.raises(CorpusError, match="line longer than") as info:
        read_messages(path)
    assert info.value.line == 2


def test_cli_declares_the_channel(tmp_path, capsys):
    from translator.apps.cli import main

    path = write_lines(tmp_path / "d.jsonl", [good(message=[30, 2])])
    (tmp_path / "ch.json").write_text('{"kind": "reinforce", "vocab_size": 16}')
    main(["import-messages", str(path), "--out", str(tmp_path / "a"), "--channel-config", str(tmp_path / "ch.json"), "--vocab-size", "32"])
    _, info = load_collection(tmp_path / "a")
    assert info["channel_config"]["kind"] == "reinforce" and info["channel_config"]["vocab_size"] == 32  # the flag wins
    assert "inferred from the data: max_len" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text('{"kind": "gumbel", "vocab_size": 1}')
    for argv, fragment in (([ "--channel-config", str(tmp_path / "bad.json")], "bad.json: vocab_size must be in [2"),
                           (["--channel-config", str(tmp_path / "none.json")], "cannot read the channel config"),
                           (["--max-len", "0"], "argument --max-len: expected an integer >= 1, got '0'")):
        with pytest.raises(SystemExit) as info:
            main(["import-messages", str(path), "--out", str(tmp_path / "b"), *argv])
        assert info.value.code == 2 and fragment in capsys.readouterr().err


def test_a_channel_equals_itself_written_with_its_kinds_fields_only():
    """Bundles compare channels: one saved with every field (unused ones set) is the same channel."""
    full = ChannelConfig(kind="continuous", dim=8, vocab_size=64, temperature=2.0)
    assert ChannelConfig.from_dict(full.to_dict()) == full and full != ChannelConfig(kind="continuous", dim=9)
    assert ChannelConfig(kind="gumbel") != ChannelConfig(kind="reinforce")
