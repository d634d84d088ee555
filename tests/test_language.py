"""Language metrics on constructed languages with known values."""

import math

import numpy as np
import pytest

from eval.language import (
    analyse,
    bosdis,
    color_attributes,
    entropy,
    levenshtein,
    mutual_information,
    posdis,
    strip_eos,
    topographic_similarity,
)

RNG = np.random.default_rng(0)
# Every combination of two attributes (8 x 4 values), repeated: a complete, balanced meaning space.
ATTRS = np.array([(a, b) for a in range(8) for b in range(4)] * 20)


def compositional(attrs):
    """Position 0 names attribute 0 (symbols 1-8), position 1 names attribute 1 (symbols 9-12)."""
    return np.stack([attrs[:, 0] + 1, attrs[:, 1] + 9], axis=1)


def test_entropy_and_mi_values():
    assert entropy(["a", "b"]) == pytest.approx(1.0)
    assert entropy(["a"] * 7) == 0.0
    assert entropy(list(range(8))) == pytest.approx(3.0)
    x = [0, 1, 2, 3] * 10
    assert mutual_information(x, x) == pytest.approx(2.0)
    assert mutual_information(x, [0] * 40) == 0.0
    assert mutual_information([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="2 xs but 3 ys"):
        mutual_information([0, 1], [0, 1, 2])


def test_compositional_code_is_perfectly_disentangled():
    m = compositional(ATTRS)
    assert posdis(ATTRS, m) == pytest.approx(1.0)
    assert bosdis(ATTRS, m, vocab_size=13) == pytest.approx(1.0)
    # Hamming distance of meanings vs messages: identical orderings.
    md = np.array([(a != b).sum() for i, a in enumerate(ATTRS[:64]) for b in ATTRS[i + 1 : 64]], dtype=float)
    sd = np.array([(a != b).sum() for i, a in enumerate(m[:64]) for b in m[i + 1 : 64]], dtype=float)
    assert topographic_similarity(md, sd) == pytest.approx(1.0)


def test_holistic_code_is_not_positionally_disentangled():
    # Each meaning gets an arbitrary 2-symbol name: informative but not compositional.
    names = RNG.permutation(32)
    code = names[ATTRS[:, 0] * 4 + ATTRS[:, 1]]
    m = np.stack([code // 6 + 1, code % 6 + 1], axis=1)
    assert posdis(ATTRS, m) < 0.5
    assert mutual_information(strip_eos(m), [tuple(a) for a in ATTRS]) == pytest.approx(5.0)


def test_random_code_scores_near_zero():
    m = RNG.integers(1, 10, size=(len(ATTRS), 3))
    assert posdis(ATTRS, m) < 0.1
    assert bosdis(ATTRS, m, vocab_size=10) < 0.1
    md = RNG.random(500)
    sd = RNG.random(500)
    assert abs(topographic_similarity(md, sd)) < 0.15


def test_constant_code_has_no_information():
    m = np.ones((len(ATTRS), 3), dtype=int)
    assert entropy(strip_eos(m)) == 0.0
    assert mutual_information(strip_eos(m), [tuple(a) for a in ATTRS]) == 0.0
    assert posdis(ATTRS, m) == 0.0
    assert bosdis(ATTRS, m, vocab_size=4) == 0.0
    assert topographic_similarity(RNG.random(10), np.zeros(10)) == 0.0


def test_strip_eos_and_levenshtein():
    assert strip_eos(np.array([[3, 0, 5], [1, 2, 4]])) == [(3,), (1, 2, 4)]
    assert levenshtein((1, 2, 3), (1, 3)) == 1
    assert levenshtein((), (1, 2)) == 2
    assert levenshtein((1, 2), (2, 1)) == 2


def test_color_attributes_respect_hue_wraparound():
    a = color_attributes(np.array([[0, 10, 50], [359.9, 99, 50], [360, 100, 50], [185, 50, 50]]))
    assert a.tolist() == [[0, 0], [11, 3], [0, 3], [6, 2]]


def test_analyse_discrete_compositional_colour_code():
    hsl = np.stack([RNG.uniform(0, 360, 600), RNG.uniform(0, 100, 600), np.full(600, 50.0)], axis=1)
    attrs = color_attributes(hsl)
    # 12 hue sectors -> symbols 1-12, 4 saturation bands -> symbols 13-16, then end of message.
    m = np.stack([attrs[:, 0] + 1, attrs[:, 1] + 13, np.zeros(600, int)], axis=1)
    out = analyse(m, hsl, discrete=True, vocab_size=17)
    # Sampled attributes are not exactly independent, so the gap is a little under 1.
    assert out["posdis"] == pytest.approx(1.0, abs=0.03) and out["bosdis"] == pytest.approx(1.0, abs=0.03)
    assert out["mutual_information"] == pytest.approx(out["target_entropy"])
    # Edit distances take only the values 0-2, so the rank correlation is modest, but far above a random code's.
    assert out["topographic_similarity"] > 0.2
    shuffled = analyse(RNG.permutation(m), hsl, discrete=True, vocab_size=17)
    assert abs(shuffled["topographic_similarity"]) < 0.05
    assert shuffled["mutual_information"] < out["mutual_information"] / 2


def test_analyse_continuous_messages_track_colour():
    hsl = np.stack([RNG.uniform(0, 360, 400), RNG.uniform(20, 100, 400), np.full(400, 50.0)], axis=1)
    h = np.deg2rad(hsl[:, 0])
    z = np.stack([np.cos(h), np.sin(h), hsl[:, 1] / 100], axis=1) + RNG.normal(0, 0.01, (400, 3))
    out = analyse(z, hsl, discrete=False)
    assert out["topographic_similarity"] > 0.5
    assert 0 < out["mutual_information"] <= out["entropy"] <= math.log2(64) + 1e-9
    noise = analyse(RNG.normal(size=(400, 3)), hsl, discrete=False)
    assert abs(noise["topographic_similarity"]) < 0.1
    assert noise["mutual_information"] < out["mutual_information"]
