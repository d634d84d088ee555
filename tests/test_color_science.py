"""The agents' colour science (HSL → sRGB → CIELAB, CIEDE2000) against colour-science, a
well-kept reference library whose CIEDE2000 is itself tested on Sharma et al.'s published pairs.

Ours is written in torch because context sampling calls it on whole batches during training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from translator.games.colors.difference import ciede2000, color_distance, hsl_to_rgb, rgb_to_lab

colour = pytest.importorskip("colour", reason="colour-science is a dev dependency (pip install -e '.[dev]')")
D65 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]


def _lab_pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = np.c_[rng.uniform(0, 100, n), rng.uniform(-128, 128, n), rng.uniform(-128, 128, n)]
    b = a + rng.normal(0, 10, a.shape) * rng.choice([0.1, 1, 5], size=(n, 1))
    # edge cases of the formula: zero chroma on either side, hues either side of the 0/360 wrap
    a[:50, 1:] = 0
    b[50:100, 1:] = 0
    a[100:150, 1:], b[100:150, 1:] = [[5.0, -0.01]], [[5.0, 0.01]]
    return a, b


def test_ciede2000_matches_the_reference_library():
    a, b = _lab_pairs(20_000, seed=0)
    ours = ciede2000(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_allclose(ours, colour.delta_E(a, b, method="CIE 2000"), atol=1e-9)


def test_ciede2000_is_symmetric_and_zero_on_identical_colours():
    a, b = (torch.tensor(x) for x in _lab_pairs(2_000, seed=1))
    torch.testing.assert_close(ciede2000(a, b), ciede2000(b, a))
    assert ciede2000(a, a).abs().max().item() == 0.0


def test_hsl_to_rgb_and_rgb_to_lab_match_the_reference_library():
    rng = np.random.default_rng(2)
    hsl = np.c_[rng.uniform(0, 360, 5_000), rng.uniform(0, 100, 5_000), rng.uniform(0, 100, 5_000)]
    rgb = colour.HSL_to_RGB(hsl / [360, 100, 100])
    np.testing.assert_allclose(hsl_to_rgb(torch.tensor(hsl)).numpy(), rgb, atol=1e-12)
    lab = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb), illuminant=D65)
    # sRGB's matrix rounded to 7 digits (ours) against the one derived from the primaries (theirs)
    np.testing.assert_allclose(rgb_to_lab(torch.tensor(rgb)).numpy(), lab, atol=0.05)


def test_color_distance_of_corpus_colours_matches_the_reference_library():
    rng = np.random.default_rng(3)
    hsl1 = np.c_[rng.uniform(0, 360, 2_000), rng.uniform(0, 100, 2_000), np.full(2_000, 50.0)]
    hsl2 = np.c_[(hsl1[:, 0] + rng.normal(0, 20, 2_000)) % 360, rng.uniform(0, 100, 2_000), np.full(2_000, 50.0)]

    def lab(hsl: np.ndarray) -> np.ndarray:
        return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(colour.HSL_to_RGB(hsl / [360, 100, 100])), illuminant=D65)

    ref = colour.delta_E(lab(hsl1), lab(hsl2), method="CIE 2000")
    ours = color_distance(torch.tensor(hsl1), torch.tensor(hsl2)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=0.01, atol=0.05)  # the Lab difference above, carried through
