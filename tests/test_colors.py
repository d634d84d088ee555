"""Colour features (`translator.games.colors.features`): circular hue, finite values, distractor-order invariance."""

from __future__ import annotations

import pytest
import torch

from translator.games.colors.features import COLOR_DIM, ContextEncoder, color_features, hsl_to_rgb


def feats(*hsl: tuple[float, float, float]) -> torch.Tensor:
    return color_features(torch.tensor(hsl, dtype=torch.float32))


def test_shape_and_dim():
    assert COLOR_DIM == 54  # 27 frequency triples, cos and sin each
    assert color_features(torch.zeros(3)).shape == (COLOR_DIM,)
    assert color_features(torch.zeros(5, 3, 3)).shape == (5, 3, COLOR_DIM)
    assert color_features(torch.zeros(2, 4, 3, 3)).shape == (2, 4, 3, COLOR_DIM)


def test_values_are_finite_and_bounded():
    g = torch.Generator().manual_seed(0)
    hsl = torch.rand(1000, 3, generator=g) * torch.tensor([360.0, 100.0, 100.0])
    f = color_features(hsl)
    assert torch.isfinite(f).all()
    assert f.abs().max() <= 1.0 + 1e-6
    # cos^2 + sin^2 = 1 for each of the 27 frequencies
    cos, sin = f[:, : COLOR_DIM // 2], f[:, COLOR_DIM // 2 :]
    torch.testing.assert_close(cos**2 + sin**2, torch.ones_like(cos))


def test_zero_frequency_feature_is_constant():
    f = feats((10, 20, 30), (300, 90, 70))
    assert f[:, 0].tolist() == [1.0, 1.0]  # cos(0)
    assert f[:, COLOR_DIM // 2].tolist() == [0.0, 0.0]  # sin(0)


def test_hue_is_circular():
    a, b = feats((0, 60, 50)), feats((360, 60, 50))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    near = (feats((359.9, 60, 50)) - feats((0.1, 60, 50))).norm().item()
    far = (feats((0, 60, 50)) - feats((180, 60, 50))).norm().item()
    step = (feats((10, 60, 50)) - feats((10.2, 60, 50))).norm().item()
    assert near == pytest.approx(step, rel=1e-2)  # 359.9 -> 0.1 is as short as 10 -> 10.2
    assert near < 0.05
    assert far > 3.0
    assert far > 100 * near


def test_saturation_and_lightness_are_not_wrapped():
    # s = 0 and s = 100 are opposite ends, not neighbours.
    d = (feats((120, 0, 50)) - feats((120, 100, 50))).norm().item()
    assert d > 3.0


def test_hsl_to_rgb():
    assert hsl_to_rgb(0, 100, 50) == pytest.approx((1.0, 0.0, 0.0))
    assert hsl_to_rgb(120, 100, 50) == pytest.approx((0.0, 1.0, 0.0))
    assert hsl_to_rgb(360, 100, 50) == pytest.approx((1.0, 0.0, 0.0))
    assert hsl_to_rgb(200, 0, 50) == pytest.approx((0.5, 0.5, 0.5))


def test_context_encoder_is_invariant_to_distractor_order():
    torch.manual_seed(0)
    enc = ContextEncoder(hidden=32).eval()
    g = torch.Generator().manual_seed(1)
    hsl = torch.rand(16, 3, 3, generator=g) * torch.tensor([360.0, 100.0, 100.0])
    out = enc(hsl)
    assert out.shape == (16, 3, 32)
    swapped = enc(hsl[:, [0, 2, 1]])
    torch.testing.assert_close(swapped[:, 0], out[:, 0], atol=1e-6, rtol=0)  # colour 0 unchanged
    torch.testing.assert_close(swapped[:, 1], out[:, 2], atol=1e-6, rtol=0)  # 1 and 2 swap
    torch.testing.assert_close(swapped[:, 2], out[:, 1], atol=1e-6, rtol=0)
    # ... and it is fully permutation-equivariant
    perm = [2, 0, 1]
    torch.testing.assert_close(enc(hsl[:, perm]), out[:, perm], atol=1e-6, rtol=0)


def test_context_encoder_depends_on_the_context():
    torch.manual_seed(0)
    enc = ContextEncoder(hidden=32).eval()
    a = torch.tensor([[[200.0, 80, 50], [30, 80, 50], [100, 80, 50]]])
    b = a.clone()
    b[0, 1] = torch.tensor([205.0, 80, 50])  # a distractor close to colour 0 now
    assert not torch.allclose(enc(a)[0, 0], enc(b)[0, 0], atol=1e-4)


def test_encode_one_equals_the_full_encoding_at_that_colour():
    torch.manual_seed(0)
    enc = ContextEncoder(hidden=32).eval()
    hsl = torch.rand(20, 3, 3, generator=torch.Generator().manual_seed(2)) * torch.tensor([360.0, 100.0, 100.0])
    index = torch.arange(20) % 3
    torch.testing.assert_close(enc.encode_one(hsl, index), enc(hsl)[torch.arange(20), index], atol=1e-6, rtol=0)
