"""Belief matching over a model of the agent's channel instead of the agent itself.

`BeliefContext` (translate.py) reads beliefs about the speaker's state off the agent's own
speaker: its mean message in each fresh state and its Gaussian channel noise. For an agent known
only through its messages, `ModelBeliefContext` reads them off any `MessageChannel`, something that
gives a mean message for each observation and a noise scale (a `DrivingMessageModel` fitted to
imported episodes). The fresh states and the English side are `BeliefContext`'s own, so both
translate the same record over the same states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from translator.games.driving.play import Said
from translator.games.driving.translate import BeliefContext


class MessageChannel(Protocol):
    """The agent's message for an observation: `means(obs (..., F)) -> (..., D)`, and `std` the
    channel's noise (a scalar or one per dimension, the same in every state)."""

    std: torch.Tensor

    def means(self, obs: torch.Tensor) -> torch.Tensor: ...


@dataclass
class ModelBeliefContext(BeliefContext):
    """`BeliefContext` whose `agent` is a `MessageChannel` (its context `ctx` is not read)."""

    agent: MessageChannel  # type: ignore[assignment]

    def agent_means(self, obs: torch.Tensor, ctx: Said) -> torch.Tensor:
        """(B, N, D) the modelled mean message for each fresh state."""
        with torch.no_grad():
            return self.agent.means(obs)

    def agent_log_lik(self, z: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """(B, N, M) log p(z | state), up to a constant, of each of M messages z (B, M, D)."""
        with torch.no_grad():
            std = self.agent.std
            sq = torch.cdist(means / std, z / std) ** 2
        return -sq / 2
