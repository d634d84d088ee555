"""The game-free belief-matching core: KL over a shared support against torch's own, the criteria,
and the choice by least divergence with its runners-up; the colour game's divergences through it
are, bit for bit, the formula they stand for."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from translator.games.beliefs import CRITERIA, choose, divergence, kl
from translator.translate.matching import EPS, pointwise_divergence

shapes = st.tuples(st.integers(1, 4), st.integers(2, 9), st.integers(1, 5))


def _beliefs(seed: int, *shape: int) -> torch.Tensor:
    return torch.log_softmax(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 3, dim=1)


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 10_000))
def test_kl_over_the_support_is_torchs(shape, seed):
    b, n, k = shape
    log_p, log_q = _beliefs(seed, b, n, 1), _beliefs(seed + 1, b, n, k)
    want = torch.nn.functional.kl_div(log_q, log_p.expand(b, n, k), log_target=True, reduction="none").sum(1)
    assert torch.allclose(kl(log_p, log_q), want, atol=1e-5)
    assert (kl(log_p, log_p).abs() < 1e-6).all()


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 10_000))
def test_the_criteria(shape, seed):
    b, n, k = shape
    log_p, log_q = _beliefs(seed, b, n, k).transpose(1, 2), _beliefs(seed + 1, b, n, k).transpose(1, 2)
    forward, reverse = divergence(log_p, log_q, "kl"), divergence(log_p, log_q, "reverse_kl")
    assert torch.allclose(reverse, divergence(log_q, log_p, "kl"))
    assert torch.allclose(divergence(log_p, log_q, "symmetric"), forward + reverse, atol=1e-6)
    assert all((divergence(log_p, log_q, c) >= 0).all() for c in CRITERIA)
    with pytest.raises(ValueError, match="criterion 'js'"):
        divergence(log_p, log_q, "js")


@pytest.mark.parametrize("criterion", CRITERIA)
def test_the_colour_divergence_is_the_formula_bit_for_bit(criterion):
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(50, 1, 3, generator=g) * 6, -1)
    q = torch.softmax(torch.randn(1, 40, 3, generator=g) * 6, -1)
    lp, lq = p.clamp_min(EPS).log(), q.clamp_min(EPS).log()
    forward, reverse = (p * (lp - lq)).sum(-1), (q * (lq - lp)).sum(-1)
    want = {"kl": forward, "reverse_kl": reverse, "symmetric": forward + reverse}[criterion].clamp_min(0)
    assert torch.equal(pointwise_divergence(p, q, criterion), want)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.floats(0, 10, allow_nan=False), min_size=5, max_size=5), min_size=1, max_size=6))
def test_choose_takes_the_least_divergence_and_ranks_the_rest(rows):
    div = torch.tensor(rows, dtype=torch.float64)
    ch = choose(div, alternatives=3)
    assert torch.equal(ch.divergence, div.min(1).values)
    assert torch.equal(div.gather(1, ch.index[:, None])[:, 0], ch.divergence)
    assert (ch.alternatives != ch.index[:, None]).all()
    assert (ch.alternative_divergence[:, :-1] <= ch.alternative_divergence[:, 1:]).all()
    assert (ch.alternative_divergence >= ch.divergence[:, None]).all()


def test_the_prior_picks_the_most_natural_within_the_margin():
    div = torch.tensor([[0.10, 0.11, 0.50]])
    natural = torch.tensor([0.0, 1.0, 9.0])
    assert choose(div, natural, weight=1.0, margin=0.02).index.item() == 1  # 0.50 is outside the margin
    assert choose(div, natural, weight=0.0, margin=0.02).index.item() == 0
