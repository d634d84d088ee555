"""The shortlists of `translator/models/colors/prerank.py`. In context, the bilinear stand-in for the English
listener approximates its beliefs closely; context-free, the low-rank stand-in for the candidate
table ranks as the exact divergences do. In both, the exact re-scoring of the shortlist finds the
candidate an exhaustive search over every candidate would (measured values in comments)."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from training.colors.translators import split_pairs
from translator.models.colors.message_model import beliefs_from_log_probs, row_log_probs
from translator.models.colors.prerank import LowRankDivergence
from translator.translate.matching import pointwise_divergence


@pytest.fixture(scope="module")
def held_rounds(tiny_belief_translator, tiny_pairs) -> tuple[torch.Tensor, torch.Tensor]:
    build = tiny_belief_translator.training["build"]
    held = split_pairs(tiny_pairs, build["val_fraction"], build["seed"])[1]
    return torch.tensor(held["message"]), torch.tensor(held["colors"], dtype=torch.float32)


def _exact_beliefs(t, colors: torch.Tensor) -> torch.Tensor:
    """Every candidate's exact listener belief in every row's context, `(N, U, 3)`."""
    g = t.english.encode_colors(colors)
    a, p = t._cand_parts
    every = torch.arange(len(t.candidates)).expand(len(colors), -1)
    return t.english.listen_parts((a[every], p[every]), g)


def test_ranker_beliefs_are_distributions_close_to_the_listeners(tiny_belief_translator, held_rounds):
    t = tiny_belief_translator
    _, colors = held_rounds
    rough = t._ranker.beliefs(t.english.encode_colors(colors))
    exact = _exact_beliefs(t, colors)
    assert rough.shape == exact.shape == (len(colors), len(t.candidates), 3)
    assert torch.allclose(rough.sum(-1), torch.ones(rough.shape[:2]), atol=1e-5) and (rough >= 0).all()
    # fresh contexts, never fitted on: mean |Δp| 0.004 here (the listener is nearly linear in its colour code)
    assert (rough - exact).abs().mean() < 0.06
    assert t._ranker.relative_residual < 0.05  # on the stored contexts; 1e-3 for the demo translator


def test_shortlist_holds_the_exhaustive_best(tiny_belief_translator, held_rounds):
    """In context, re-scoring the ranker's shortlist gives what scoring every candidate exactly gives."""
    t = tiny_belief_translator
    messages, colors = held_rounds
    source = beliefs_from_log_probs(row_log_probs(t.message_model, messages, colors))[:, None]
    exhaustive = pointwise_divergence(source, _exact_beliefs(t, colors), t.config.criterion)
    plain = t.to_english(messages, colors, prior=False)
    agree = torch.isclose(plain.divergence, exhaustive.min(1).values, atol=1e-5).float().mean().item()
    assert agree > 0.95  # 1.0 here, with a shortlist of 16 of 300 candidates

    every = copy.copy(t)
    every.config = dataclasses.replace(t.config, shortlist=len(t.candidates))
    full = every.to_english(messages, colors, prior=False)
    assert torch.allclose(full.divergence, exhaustive.min(1).values, atol=1e-5)


@pytest.mark.parametrize("criterion", ["kl", "reverse_kl", "symmetric"])
def test_ranker_divergence_is_the_pointwise_divergence_of_its_beliefs(tiny_belief_translator, held_rounds, criterion):
    t = tiny_belief_translator
    messages, colors = held_rounds
    source = beliefs_from_log_probs(row_log_probs(t.message_model, messages, colors))
    g = t.english.encode_colors(colors)
    want = pointwise_divergence(source[:, None], t._ranker.beliefs(g), criterion)
    assert torch.allclose(t._ranker.divergence(source, g, criterion), want, atol=1e-4)


def _with(t, **config):
    """The translator `t` with other config values (its tables and models shared)."""
    return type(t)(dataclasses.replace(t.config, **config), t.english, t.message_model, t.tables, t.candidates, t.training)


def test_context_free_shortlist_finds_the_exhaustive_pick(tiny_belief_translator, held_rounds):
    """Context-free, the low-rank stand-in's shortlist re-scored exactly picks what scoring every candidate picks,
    one message at a time as in a batch."""
    messages, _ = held_rounds
    exhaustive = _with(tiny_belief_translator, context_free_shortlist=0)
    shortlisted = _with(tiny_belief_translator, context_free_rank=24, context_free_shortlist=32)  # of 300 candidates, 112 columns
    assert exhaustive._cf_ranker is None and shortlisted._cf_ranker is not None
    want, got = exhaustive.to_english(messages), shortlisted.to_english(messages)
    same = sum(a == b for a, b in zip(want.translations, got.translations)) / len(messages)
    assert same > 0.95  # 1.0 here
    picked = [i for i, (a, b) in enumerate(zip(want.translations, got.translations)) if a == b]
    assert torch.allclose(got.divergence[picked], want.divergence[picked], atol=1e-5)  # re-scored exactly
    assert [shortlisted.to_english(messages[i : i + 1]).translations[0] for i in range(20)] == got.translations[:20]


def test_low_rank_ranker_is_deterministic_and_leaves_the_global_rng_alone(tiny_belief_translator):
    state = torch.random.get_rng_state()
    a, b = (_with(tiny_belief_translator, context_free_rank=24)._cf_ranker for _ in range(2))
    assert torch.equal(a.a, b.a) and torch.equal(a.b, b.b)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_full_rank_ranker_ranks_as_the_exact_divergences(tiny_belief_translator, held_rounds):
    t = tiny_belief_translator
    table = t._cands.columns(t.config.criterion)
    lp = t.context_log_probs(held_rounds[0])
    source, weights = beliefs_from_log_probs(lp), t.context_weights(lp)
    const, v = t._cands.source_parts(source, weights, t.config.criterion)
    ranker = LowRankDivergence(table, v, rank=table.shape[1])
    exact = t._cands.source_weighted(source, weights, t.config.criterion)
    top = ranker.shortlist(v, 10)
    assert top.shape == (len(v), 10) and (top.diff(dim=1) > 0).all()  # index order
    tenth = exact.topk(10, dim=1, largest=False).values[:, -1:]
    assert (exact.gather(1, top) <= tenth + 1e-4).all()
