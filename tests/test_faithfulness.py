"""The faithfulness probability: the calibrator, its metrics, its side file, and every surface that carries it."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from eval.faithfulness import auroc, binary_ece, faithfulness_report
from training.faithfulness import threshold_for_precision
from translator.apps.stream import translate_batch
from translator.models.logistic import Logistic, fit_logistic
from translator.storage.bundle import FORMAT_VERSION, BundleError, read_json, write_json
from translator.translate.colors.api import Translator
from translator.translate.colors.belief import BeliefTranslator
from translator.translate.colors.faithfulness_reading import english_features, neuralese_features
from translator.translate.faithfulness import FEATURES, FILE, agreement_features, attach, load

torch.set_num_threads(1)


# -- the calibrator and the metrics ------------------------------------------------------------------


def test_logistic_recovers_a_known_relation():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 3, generator=g) * torch.tensor([1.0, 2.0, 0.5]) + torch.tensor([0.0, 1.0, -1.0])
    true_w, true_b = torch.tensor([1.5, -0.5, 2.0]), 0.3
    p = torch.sigmoid(x @ true_w + true_b)
    y = torch.bernoulli(p, generator=g)
    fit = fit_logistic(x, y, l2=0.0)
    # back from standardised features to the raw ones
    w = torch.tensor(fit.weights) / torch.tensor(fit.scale)
    b = fit.bias - (torch.tensor(fit.mean) * w).sum().item()
    assert w.tolist() == pytest.approx(true_w.tolist(), abs=0.08)
    assert b == pytest.approx(true_b, abs=0.08)
    assert (fit.predict(x) - p).abs().max().item() < 0.03


def test_logistic_takes_soft_labels_and_refuses_bad_input():
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fit = fit_logistic(x, torch.tensor([0.5, 0.5, 0.5, 0.5]), l2=0.0)
    assert fit.predict(x).tolist() == pytest.approx([0.5] * 4, abs=1e-4)
    with pytest.raises(ValueError, match=r"labels in \[0, 1\]"):
        fit_logistic(x, torch.tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r"expected shape \(N, 1\)"):
        fit.predict(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="scale"):
        Logistic([0.0], [0.0], [1.0], 0.0)


def test_auroc_by_hand():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of the 4 pairs are ordered right
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert auroc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)  # a tie counts half
    assert auroc([0.9, 0.1], [1, 0]) == 1.0 and auroc([0.1, 0.9], [1, 0]) == 0.0
    assert auroc([0.3, 0.4], [1, 1]) is None


def test_ece_by_hand():
    # bin 0.1: outcomes 0 and 1 (mean 0.5), off by 0.4, half the rows; bin 0.9: both 1, off by 0.1
    assert binary_ece([0.1, 0.1, 0.9, 0.9], [0, 1, 1, 1]) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert binary_ece([0.25, 0.75, 0.75, 0.75, 0.25, 0.75, 0.75, 0.25], [0, 1, 1, 1, 0, 1, 0, 1]) == pytest.approx(
        3 / 8 * (1 / 3 - 0.25) + 5 / 8 * 0.05
    )
    assert binary_ece([1.0, 0.0], [1, 0]) == 0.0


def test_report_by_hand():
    r = faithfulness_report([0.9, 0.8, 0.6, 0.2], [1, 1, 0, 0], threshold=0.7, precision=0.95)
    assert r["flagged"] == 0.5 and r["accuracy_flagged"] == 1.0 and r["accuracy_unflagged"] == 0.0
    assert r["auroc"] == 1.0 and r["threshold"] == 0.7 and r["precision"] == 0.95
    assert r["ece"] == pytest.approx((0.1 + 0.2 + 0.6 + 0.2) / 4)


def test_threshold_is_the_lowest_with_the_precision():
    prob = torch.tensor([0.95, 0.9, 0.85, 0.8, 0.7, 0.6])
    right = torch.tensor([1, 1, 1, 0, 1, 0], dtype=torch.bool)
    # running precision from the top: 1, 1, 1, .75, .8, .67
    assert threshold_for_precision(prob, right, 0.8) == pytest.approx(0.7)
    assert threshold_for_precision(prob, right, 0.9) == pytest.approx(0.85)
    assert threshold_for_precision(prob, torch.zeros(6, dtype=torch.bool), 0.5) == 1.0
    # never cut between equal probabilities
    assert threshold_for_precision(torch.tensor([0.9, 0.9, 0.5]), torch.tensor([True, False, True]), 0.6) == pytest.approx(0.5)


def test_agreement_features_by_hand():
    p, q = torch.tensor([[0.5, 0.3, 0.2]]), torch.tensor([[0.2, 0.6, 0.2]])
    f = agreement_features(p, q)[0].tolist()
    sym_kl = 0.3 * math.log(0.5 / 0.2) - 0.3 * math.log(0.3 / 0.6)
    want = [math.log(0.2 / 0.8), math.log(0.32 / 0.68), 0.0, math.log(0.6 / 0.4), math.log1p(sym_kl)]
    assert f == pytest.approx(want, abs=1e-5)
    # over contexts: the weighted means of the parts, then the transforms
    both = agreement_features(torch.stack([p, q], 1), torch.stack([q, q], 1), torch.tensor([[1.0, 3.0]]))[0]
    assert both[0].item() == pytest.approx(math.log((0.25 * 0.2 + 0.75 * 0.6) / (1 - 0.25 * 0.2 - 0.75 * 0.6)), abs=1e-5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 50), min_size=6, max_size=6), st.integers(0, 3))
def test_agreement_features_are_finite_for_any_beliefs(logits, zeros):
    z = torch.tensor(logits).reshape(2, 3)
    z[0, :zeros] = -1e9  # beliefs with exact zeros
    p = torch.softmax(z, -1)
    f = agreement_features(p[:1], p[1:])
    assert f.shape == (1, len(FEATURES)) and torch.isfinite(f).all()
    assert 0 <= Logistic([0.0] * 5, [1.0] * 5, [1.0] * 5, 0.0).predict(f).item() <= 1


# -- the translator's models ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rows(tiny_pairs):
    sel = tiny_pairs.select(range(40))
    return torch.tensor(sel["message"]), torch.tensor(sel["colors"], dtype=torch.float32), list(sel["utterance"])


def test_the_build_fits_all_four_models(tiny_belief_translator):
    f = tiny_belief_translator.faithfulness
    assert f is not None
    for direction in ("to_english", "to_neuralese"):
        for in_context in (True, False):
            m = f.get(direction, in_context)
            assert m is not None and m.rounds > 0 and 0 <= m.threshold <= 1 and m.precision == 0.95


@pytest.mark.parametrize("in_context", [True, False])
def test_translations_carry_the_probability_any_translation_would_get(tiny_belief_translator, rows, in_context):
    """The translator's own probabilities are those of reading its translations afresh
    (`faithfulness_reading`, what the evaluation uses for every translator), and `faithful` is the
    probability at or above the threshold (and the message one the agents would send)."""
    t = tiny_belief_translator
    messages, colors, texts = rows
    c = colors if in_context else None
    eng = t.to_english(messages, c)
    model = t.faithfulness.get("to_english", in_context)
    again = model.probability(english_features(t, messages, eng.translations, c))
    assert torch.allclose(eng.faithfulness, again, atol=1e-4)
    assert ((eng.faithfulness >= 0) & (eng.faithfulness <= 1)).all()
    likely = t.message_log_prob(messages, c) >= t.config.message_floor(in_context)
    assert torch.equal(eng.faithful, (eng.faithfulness >= model.threshold) & likely)
    neu = t.to_neuralese(texts, c)
    again = t.faithfulness.get("to_neuralese", in_context).probability(neuralese_features(t, texts, neu.translations, c))
    assert torch.allclose(neu.faithfulness, again, atol=1e-4)


def test_in_context_probability_tracks_whether_the_listener_agrees(tiny_belief_translator, rows):
    """Translations that the English listener reads as the agents do get higher probabilities than
    random English: the probability means what it says."""
    t = tiny_belief_translator
    messages, colors, _ = rows
    good = t.to_english(messages, colors).faithfulness
    odd = [
        t.candidates[i]
        for i in torch.randint(len(t.candidates), (len(messages),), generator=torch.Generator().manual_seed(0)).tolist()
    ]
    bad = t.faithfulness.get("to_english", True).probability(english_features(t, messages, odd, colors))
    assert good.mean() > bad.mean() + 0.1


# -- the side file ----------------------------------------------------------------------------------


def test_saved_bundle_round_trips_the_models(saved_belief_translator, tiny_belief_translator):
    assert FILE in read_json(saved_belief_translator / "config.json")["files"]
    loaded = BeliefTranslator.from_pretrained(saved_belief_translator)
    assert loaded.faithfulness == tiny_belief_translator.faithfulness
    data = read_json(saved_belief_translator / FILE)
    assert data["kind"] == "neuralese.faithfulness" and data["format_version"] == 1


def test_a_tampered_calibrator_is_refused(saved_belief_translator, tmp_path):
    d = tmp_path / "belief"
    shutil.copytree(saved_belief_translator, d)
    data = read_json(d / FILE)
    data["models"]["to_english"]["in_context"]["threshold"] = 0.0  # everything faithful
    (d / FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"faithfulness\.json: content does not match the sha256"):
        BeliefTranslator.from_pretrained(d)


def test_a_bad_calibrator_names_the_file(saved_belief_translator, tmp_path):
    d = tmp_path / "belief"
    shutil.copytree(saved_belief_translator, d)
    data = read_json(d / FILE)
    data["models"]["to_english"]["in_context"]["logistic"]["weights"] = [1.0]
    write_json(d / FILE, data)
    from translator.storage.bundle import reseal

    reseal(d)  # sealed on purpose: the content itself is wrong
    with pytest.raises(
        BundleError, match=r"^[^:]*faithfulness\.json: bad faithfulness model .*one entry per feature \(5, 5, 1\)"
    ):
        BeliefTranslator.from_pretrained(d)


def test_a_bundle_without_it_falls_back_to_the_divergence_flag(saved_belief_translator, tmp_path, rows):
    d = tmp_path / "belief"
    shutil.copytree(saved_belief_translator, d)
    config = read_json(d / "config.json")
    del config["files"][FILE]
    write_json(d / "config.json", config)
    (d / FILE).unlink()
    t = BeliefTranslator.from_pretrained(d)
    assert t.faithfulness is None and load(d) is None
    messages, colors, _ = rows
    out = t.to_english(messages, colors)
    assert out.faithfulness is None
    assert torch.equal(
        out.faithful,
        (out.divergence <= t.config.threshold("to_english", True))
        & (t.message_log_prob(messages, colors) >= t.config.message_floor(True)),
    )
    assert Translator.from_pretrained(d).to_english([messages[0].tolist()])[0].faithfulness is None


def test_attach_seals_a_format_1_bundle(saved_belief_translator, tiny_belief_translator, tmp_path):
    d = tmp_path / "belief"
    shutil.copytree(saved_belief_translator, d)
    config = read_json(d / "config.json")
    del config["files"]
    config["format_version"] = 1
    write_json(d / "config.json", config)
    (d / FILE).unlink()
    assert BeliefTranslator.from_pretrained(d).faithfulness is None
    attach(d, tiny_belief_translator.faithfulness)
    config = read_json(d / "config.json")
    assert config["format_version"] == FORMAT_VERSION and FILE in config["files"] and "tables.safetensors" in config["files"]
    assert BeliefTranslator.from_pretrained(d).faithfulness == tiny_belief_translator.faithfulness


# -- the surfaces ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def translator(saved_belief_translator) -> Translator:
    return Translator.from_pretrained(saved_belief_translator)


def test_api_results_carry_the_probability(translator, rows):
    messages, colors, texts = rows
    for c in (colors[:5].tolist(), None):
        for r in translator.to_english(messages[:5].tolist(), c) + translator.to_neuralese(texts[:5], c):
            assert r.faithfulness is not None and 0 <= r.faithfulness <= 1
            assert r.to_json()["faithfulness"] == r.faithfulness


def test_stream_records_carry_the_probability(translator, rows):
    messages, colors, _ = rows
    lines = [json.dumps({"message": messages[i].tolist(), "context": colors[i].tolist()}) for i in range(3)]
    lines.append(json.dumps({"message": messages[3].tolist()}))
    records = translate_batch(translator, "english", list(enumerate(lines, 1)))
    want = translator.to_english(messages[:3].tolist(), colors[:3].tolist()) + translator.to_english([messages[3].tolist()])
    assert [r["faithfulness"] for r in records] == pytest.approx([w.faithfulness for w in want], abs=1e-6)
    assert all(0 <= r["faithfulness"] <= 1 for r in records)


def test_service_results_carry_the_probability(saved_belief_translator, tmp_path, rows):
    from fastapi.testclient import TestClient

    from translator.apps.service import create_app

    run = tmp_path / "run"
    shutil.copytree(saved_belief_translator, run / "translators" / "continuous" / "belief")
    messages, colors, texts = rows
    with TestClient(create_app(run)) as client:
        items = [{"message": messages[0].tolist(), "context": colors[0].tolist()}, {"message": messages[1].tolist()}]
        got = client.post("/v1/translate", json={"channel": "continuous", "to": "english", "items": items}).json()["results"]
        items = [{"utterance": texts[2], "context": colors[2].tolist()}]
        got += client.post("/v1/translate", json={"channel": "continuous", "to": "neuralese", "items": items}).json()["results"]
    assert all(0 <= r["faithfulness"] <= 1 for r in got)
    t = Translator.from_pretrained(saved_belief_translator)
    assert got[0]["faithfulness"] == pytest.approx(
        t.to_english([messages[0].tolist()], [colors[0].tolist()])[0].faithfulness, abs=1e-6
    )
    schema = TestClient(create_app(run)).get("/openapi.json").json()
    assert "faithfulness" in schema["components"]["schemas"]["Result"]["properties"]


def test_report_of_a_perfect_and_a_useless_probability():
    y = np.array([1, 1, 0, 1, 0, 1])
    assert faithfulness_report(y * 0.98 + 0.01, y, 0.5, 0.95)["auroc"] == 1.0
    assert faithfulness_report(np.full(6, 0.6), y, 0.5, 0.95)["auroc"] == 0.5
