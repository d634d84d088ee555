"""Belief matching's game-free core: divergences between beliefs over a shared support, and the
choice of the candidate whose belief diverges least, with its runners-up.

A belief is a distribution over the speaker's hidden state, evaluated on a support of states both
beliefs share (the colour game: its three targets; driving: fresh states that keep what the
listener sees). Every game's translator compares beliefs through `kl` / `divergence` and picks
through `choose`; what a belief is made from (the agents' channel, the English models) is the game's.
It sits with the games, below the models, so that a game's own translator can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CRITERIA = ("kl", "reverse_kl", "symmetric")


def kl(log_p: torch.Tensor, log_q: torch.Tensor, dim: int = 1, p: torch.Tensor | None = None) -> torch.Tensor:
    """KL(p ‖ q) = Σ p (log p − log q) over the support dimension `dim`, broadcasting `log_p`
    against `log_q`. `p`: the probabilities themselves where the caller holds them (used as they
    are, so a clamped log beside exact probabilities gives the caller's numbers); else `exp(log_p)`."""
    p = log_p.exp() if p is None else p
    return (p * (log_p - log_q)).sum(dim)


def divergence(
    log_p: torch.Tensor,
    log_q: torch.Tensor,
    criterion: str = "kl",
    dim: int = -1,
    p: torch.Tensor | None = None,
    q: torch.Tensor | None = None,
) -> torch.Tensor:
    """`kl` = KL(p ‖ q), `reverse_kl` = KL(q ‖ p), `symmetric` = their sum, over `dim`, never below 0."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion {criterion!r} is unknown; valid: {', '.join(CRITERIA)}")
    parts = []
    if criterion in ("kl", "symmetric"):
        parts.append(kl(log_p, log_q, dim, p))
    if criterion in ("reverse_kl", "symmetric"):
        parts.append(kl(log_q, log_p, dim, q))
    return (parts[0] + parts[1] if len(parts) == 2 else parts[0]).clamp_min(0)


@dataclass
class Choice:
    """Chosen candidate per source row, its divergence, and the next-best alternatives."""

    index: torch.Tensor  # (N,) long
    divergence: torch.Tensor  # (N,)
    alternatives: torch.Tensor  # (N, A) long, best first (the choice itself excluded)
    alternative_divergence: torch.Tensor  # (N, A)


def choose(
    div: torch.Tensor, naturalness: torch.Tensor | None = None, weight: float = 0.0, margin: float = 0.0, alternatives: int = 3
) -> Choice:
    """Pick a candidate per row of `div (N, U)`.

    Plain matching takes the smallest divergence. With a naturalness prior (`weight > 0`, docs/method.md
    §5) the choice is among candidates within `margin` of the row's best divergence, the one
    minimising `divergence − weight · naturalness` (naturalness: the English speaker's mean
    per-token log-likelihood, higher = more like what a person says). The margin keeps the prior
    from trading meaning for fluency.
    """
    best = div.min(dim=1, keepdim=True).values
    score = div.clone()
    if weight > 0 and naturalness is not None:
        score = score - weight * naturalness.to(div.dtype)  # (U,) or per row (N, U)
        score = score.masked_fill(div > best + margin, float("inf"))
    idx = score.argmin(dim=1)
    chosen = div.gather(1, idx[:, None]).squeeze(1)
    a = max(0, min(alternatives, div.shape[1] - 1))
    alt_div, alt = div.scatter(1, idx[:, None], float("inf")).topk(a, dim=1, largest=False)
    return Choice(idx, chosen, alt, alt_div)
