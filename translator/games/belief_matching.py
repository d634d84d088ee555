"""Belief matching for any game on the `Game` protocol (Andreas et al. 2017): a message means what
it makes a listener believe about the speaker's hidden state.

A game brings two models of its speaker, each a log-likelihood of what could be said given the
speaker's observation: the agents' `p(z | o)` and the people's `p(u | o)`. For something said in a
live state, the game's `sample_hidden` gives the support (states that keep all the listener sees,
the true one first); over it `beta(z)[x] ∝ p(z | o(x))` and `beta(u)[x] ∝ p(u | o(x))`. A translation
is the candidate whose belief diverges least from the source's (`beliefs.choose`). The driving
game's belief translator is this matcher with its agents' Gaussian channel and its English speaker;
a new game gets belief translation from its two likelihoods (docs/new_game.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from translator.games.base import Game
from translator.games.beliefs import Choice, choose, divergence

# (support observations (B, N, ...), what the caller passes along) -> (B, N, C) log-likelihoods
Likelihood = Callable[[torch.Tensor, Any], torch.Tensor]


@dataclass
class BeliefMatcher:
    """The support of a belief from `game`, and the choice among candidates by divergence.

    `samples`: states per episode in the support (a game that enumerates its hidden states takes
    None). `criterion`: `kl` compares KL(source ‖ candidate), as the paper does."""

    game: Game
    samples: int | None = None
    seed: int = 0
    criterion: str = "kl"
    rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def support(self, state: Any, speaker: int, rng: np.random.Generator | None = None) -> torch.Tensor:
        """(B, N, ...) the speaker's observation in each support state of each episode, its own
        state first. Draws from the matcher's generator, which advances, unless `rng` is given."""
        fresh = self.game.sample_hidden(state, speaker, self.samples, self.rng if rng is None else rng)
        obs = np.asarray(self.game.observe(fresh, speaker))
        batch = len(self.game.observe(state, speaker))
        return torch.from_numpy(obs.reshape(batch, len(obs) // batch, *obs.shape[1:]))

    def support_each(self, state: Any, speaker: int, take: Callable[[Any, int], Any]) -> torch.Tensor:
        """`support`, each episode's states drawn from a generator seeded with `seed` alone: an
        episode's translation does not depend on the others of its batch. `take(state, i)`: episode i."""
        batch = len(self.game.observe(state, speaker))
        return torch.cat([self.support(take(state, i), speaker, np.random.default_rng(self.seed)) for i in range(batch)])

    def divergences(self, source: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """(B, C) the divergence of each candidate's belief from the source's, over the support.
        `source`: (B, N) or (B, N, C) log-likelihoods; `candidates`: (B, N, C)."""
        src = torch.log_softmax(source if source.dim() == 3 else source[..., None], dim=1)
        return divergence(src, torch.log_softmax(candidates, dim=1), self.criterion, dim=1)

    def choose(self, source: torch.Tensor, candidates: torch.Tensor, alternatives: int = 3) -> Choice:
        """The candidate of least divergence per episode, with its runners-up."""
        return choose(self.divergences(source, candidates), alternatives=alternatives)
