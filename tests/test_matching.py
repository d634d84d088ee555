"""Belief matching algebra: the vectorised divergences equal the per-candidate loop; choices obey the prior."""

import pytest
import torch

from translator.translate import matching
from translator.translate.matching import CRITERIA, CandidateBeliefs, choose, divergence, divergence_loop


def _beliefs(n, k, seed):
    return torch.softmax(torch.randn(n, k, 3, generator=torch.Generator().manual_seed(seed)) * 3, dim=-1)


@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("weights_on", ["source", "candidate"])
def test_vectorised_divergence_equals_loop(criterion, weights_on):
    p, q = _beliefs(5, 7, 0), _beliefs(11, 7, 1)
    w = torch.softmax(torch.randn(5 if weights_on == "source" else 11, 7), dim=-1)
    fast = divergence(p, q, w, weights_on, criterion)
    assert fast.shape == (5, 11)
    assert torch.allclose(fast, divergence_loop(p, q, w, weights_on, criterion), atol=1e-5)
    assert (fast >= 0).all()


def test_identical_beliefs_have_zero_divergence_and_are_chosen():
    p = _beliefs(4, 6, 2)
    cands = torch.cat([_beliefs(8, 6, 3), p])  # the sources themselves are candidates 8..11
    d = divergence(p, cands, torch.full((4, 6), 1 / 6))
    ch = choose(d)
    assert ch.index.tolist() == [8, 9, 10, 11]
    assert torch.allclose(ch.divergence, torch.zeros(4), atol=1e-5)
    assert (ch.alternative_divergence >= ch.divergence[:, None]).all()


def test_naturalness_prior_only_within_margin():
    d = torch.tensor([[0.0, 0.05, 1.0]])
    nat = torch.tensor([-5.0, -1.0, 0.0])
    assert choose(d, nat, weight=1.0, margin=0.1).index.item() == 1  # within margin, more natural
    assert choose(d, nat, weight=1.0, margin=0.01).index.item() == 0  # outside margin: meaning wins
    assert choose(d, nat, weight=0.0, margin=0.1).index.item() == 0


def test_unknown_criterion_is_refused():
    with pytest.raises(ValueError, match="criterion"):
        divergence(_beliefs(1, 2, 0), _beliefs(1, 2, 1), torch.ones(1, 2) / 2, criterion="jsd")


@pytest.mark.parametrize("criterion", CRITERIA)
def test_candidate_tables_give_the_divergences_in_full_and_at_chosen_candidates(criterion, monkeypatch):
    source, cands = _beliefs(6, 5, 4), _beliefs(20, 5, 5)
    w = torch.softmax(torch.randn(6, 5, generator=torch.Generator().manual_seed(6)), dim=-1)
    table = CandidateBeliefs(cands)
    full = table.source_weighted(source, w, criterion)
    assert torch.allclose(full, divergence(source, cands, w, "source", criterion), atol=1e-5)
    index = torch.randint(0, 20, (6, 7), generator=torch.Generator().manual_seed(7))
    const, v = table.source_parts(source, w, criterion)
    assert torch.allclose(table.source_weighted_at(const, v, index, criterion), full.gather(1, index), atol=1e-5)
    monkeypatch.setattr(matching, "GATHER_ELEMENTS", 1)  # one row at a time
    assert torch.allclose(table.source_weighted_at(const, v, index, criterion), full.gather(1, index), atol=1e-5)
