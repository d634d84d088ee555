"""The `Translator` façade: loading any bundle kind, batch round trips, and input checks."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from translator.storage.bundle import BundleError
from translator.translate.colors.api import MAX_UTTERANCE_CHARS, Translation, Translator, UtteranceTruncated


@pytest.fixture(scope="module")
def translator(saved_belief_translator) -> Translator:
    return Translator.from_pretrained(saved_belief_translator)


@pytest.fixture(scope="module")
def rows(tiny_pairs):
    sel = tiny_pairs.select(range(12))
    return sel["message"], sel["colors"], sel["utterance"]


@pytest.fixture(scope="module")
def run_dir(saved_belief_translator, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("api") / "run"
    shutil.copytree(saved_belief_translator, run / "translators" / "continuous" / "belief")
    return run


def _check_result(r: Translation, n_alts: int) -> None:
    assert isinstance(r.faithful, bool) and r.untranslatable == (not r.faithful)
    assert r.divergence is None or (math.isfinite(r.divergence) and r.divergence >= 0)
    assert len(r.alternatives) == n_alts
    json.dumps(r.to_json(), allow_nan=False)  # strict JSON, as the CLI and the service send it


@pytest.mark.parametrize("in_context", [False, True])
def test_to_english_matches_the_bundle_translator(translator, tiny_belief_translator, rows, in_context):
    messages, colors, _ = rows
    got = translator.to_english(messages, colors if in_context else None)
    want = tiny_belief_translator.to_english(torch.tensor(messages), torch.tensor(colors) if in_context else None).rows()
    assert len(got) == len(messages)
    for g, w in zip(got, want):
        _check_result(g, tiny_belief_translator.config.alternatives)
        assert g.translation == w.translation and isinstance(g.translation, str)
        assert g.divergence == pytest.approx(w.divergence, rel=1e-5, abs=1e-6)
        assert g.faithful == w.faithful
        assert [a.translation for a in g.alternatives] == [a.translation for a in w.alternatives]


@pytest.mark.parametrize("in_context", [False, True])
def test_round_trip_message_english_message(translator, rows, in_context):
    messages, colors, _ = rows
    ctx = colors if in_context else None
    english = translator.to_english(messages, ctx)
    back = translator.to_neuralese([r.translation for r in english], ctx)
    assert len(back) == len(messages)
    for r in back:
        _check_result(r, len(r.alternatives))
        assert len(r.translation) == translator.channel.dim and all(math.isfinite(x) for x in r.translation)
    # the neuralese results are valid messages: they translate back without complaint
    assert len(translator.to_english([r.translation for r in back], ctx)) == len(messages)


def test_inputs_of_any_array_type_and_empty_batches(translator, rows):
    messages, colors, utterances = rows
    a = translator.to_english(torch.tensor(messages[:3]), torch.tensor(colors[:3]))
    b = translator.to_english([list(map(float, m)) for m in messages[:3]], colors[:3])
    assert [r.translation for r in a] == [r.translation for r in b]
    assert translator.to_english([]) == [] and translator.to_neuralese([], []) == []
    assert len(translator.to_neuralese(utterances[:2])) == 2


def test_from_run_and_unknown_channels(run_dir, rows):
    tr = Translator.from_run(run_dir, "continuous")
    assert tr.channel_name == "continuous" and tr.name == "belief"
    assert len(tr.to_english(rows[0][:2])) == 2
    with pytest.raises(ValueError, match=r"unknown channel 'gumbel'.*continuous"):
        Translator.from_run(run_dir, "gumbel")
    with pytest.raises(ValueError, match="channel 'continuous' has no translator 'direct'"):
        Translator.from_run(run_dir, "continuous", name="direct")
    for bad in ("../continuous", "continuous/belief", "", ".hidden"):
        with pytest.raises(ValueError, match="plain name"):
            Translator.from_run(run_dir, bad)


def test_from_pretrained_dispatches_on_kind(english_models, tiny_agents, tiny_pairs, tmp_path, rows):
    from training.colors.translators import build_direct_translator
    from translator.models.colors.message_model import ExactMessageModel

    build_direct_translator(english_models, ExactMessageModel(tiny_agents), tiny_pairs).save_pretrained(tmp_path / "direct")
    tr = Translator.from_pretrained(tmp_path / "direct")
    assert tr.name == "direct"
    out = tr.to_english(rows[0][:4], rows[1][:4])
    assert all(r.divergence is None and r.faithful for r in out)
    assert all(a.divergence is None for r in out for a in r.alternatives)
    json.dumps([r.to_json() for r in out], allow_nan=False)
    assert len(tr.to_neuralese(["the blue one"])[0].translation) == tr.channel.dim

    (tmp_path / "english_only").mkdir()
    english_models.save_pretrained(tmp_path / "english_only")
    with pytest.raises(BundleError, match="is not a translator"):
        Translator.from_pretrained(tmp_path / "english_only")
    with pytest.raises(BundleError, match="no such"):
        Translator.from_pretrained(tmp_path / "missing")


def test_bad_messages_name_the_row_and_the_problem(translator, rows):
    messages = [list(m) for m in rows[0][:3]]
    dim = translator.channel.dim
    cases = [
        (messages[:1] + [messages[1][:-1]], rf"messages\[1\]: .*expects {dim} numbers, got {dim - 1}"),
        (messages[:2] + [messages[2][:-1] + [float("nan")]], r"messages\[2\]: NaN or infinite"),
        ([messages[0][:-1] + [float("inf")]], r"messages\[0\]: NaN or infinite"),
        ([messages[0][:-1] + [10**400]], r"messages\[0\]: NaN or infinite"),
        ([messages[0][:-1] + [1e308]], r"messages\[0\]: values beyond float32's range"),  # infinite once a float32 tensor
        ([messages[0][:-1] + [-(10**39)]], r"messages\[0\]: values beyond float32's range"),
        ([messages[0][:-1] + ["0.5"]], r"messages\[0\]: expected numbers only"),
        ([messages[0][:-1] + [True]], r"messages\[0\]: expected numbers only"),
        (["abc"], r"messages\[0\]: expected a list"),
        ("abc", r"messages: expected a sequence"),
    ]
    for value, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            translator.to_english(value)


def test_bad_contexts_and_utterances(translator, rows):
    messages, colors, _ = rows
    with pytest.raises(ValueError, match=r"contexts: 2 contexts for 3 rows"):
        translator.to_english(messages[:3], colors[:2])
    with pytest.raises(ValueError, match=r"contexts\[0\]: expected three colours"):
        translator.to_english(messages[:1], [colors[0][:2]])
    with pytest.raises(ValueError, match=r"contexts\[0\]: NaN"):
        translator.to_english(messages[:1], [[[float("nan"), 50, 50], colors[0][1], colors[0][2]]])
    with pytest.raises(ValueError, match=r"contexts\[0\]: colour .* out of range"):
        translator.to_english(messages[:1], [[[400, 50, 50], colors[0][1], colors[0][2]]])
    for text, pattern in (("", "empty"), ("   ", "empty"), ("x" * (MAX_UTTERANCE_CHARS + 1), "more than the limit"), (7, "expected a string"),
                          ("blue \ud800", "not valid Unicode \\(a lone surrogate at character 5\\)")):
        with pytest.raises(ValueError, match=rf"utterances\[1\]: .*{pattern}"):
            translator.to_neuralese(["the blue one", text])
    assert len(translator.to_neuralese(["x" * MAX_UTTERANCE_CHARS])) == 1


def test_long_utterances_are_cut_with_a_warning_as_in_evaluation(translator, rows):
    """One policy: the English models read the first 48 tokens of any utterance; the API warns."""
    _, colors, _ = rows
    long = " ".join(["the darker blue one, not the greenish one on the left side"] * 5)  # 299 characters
    texts = ["the blue one", long]
    with pytest.warns(UtteranceTruncated, match="reads the first 48"):
        out = translator.to_neuralese(texts, colors[:2])
    same = translator.inner.to_neuralese(texts, torch.as_tensor(colors[:2], dtype=torch.float32))  # evaluation's path
    assert [o.translation for o in out] == same.translations.tolist()
    cut = translator.inner.english.tokenizer.encode([long], max_len=48)[0]
    assert translator.inner.english.encode([long])[0][0, :48].tolist() == cut  # what the listener reads
