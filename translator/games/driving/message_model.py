"""A learned model of a foreign driving agent's messages: p(z | the speaker's own observation).

An agent built elsewhere is known only through what it said (an imported episode file,
`translator/games/driving/episodes.py`). Belief matching needs, for every fresh speaker state, the
message the agent would send there and how much it varies: this model gives both, an MLP mean
`mu(obs)` (obs: `game.observe` of the speaking car) and a learned diagonal Gaussian spread `std`
(one number per message dimension, the same in every state, so it is the agent's channel noise
plus whatever the observation does not explain: its recurrent state, what it heard).
`ModelBeliefContext` (translator/games/driving/model_beliefs.py) puts it where belief matching
reads the agent's own channel. Bundle kind `driving_message_model`: `config.json` + safetensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from translator.games.driving.game import OBS_SIZE
from translator.storage.bundle import Bundled


@dataclass
class DrivingMessageModelConfig:
    message_size: int = 64
    width: int = 64
    layers: int = 2
    obs_size: int = OBS_SIZE

    def __post_init__(self) -> None:
        if self.message_size < 1 or self.width < 1 or self.layers < 1 or self.obs_size < 1:
            raise ValueError(f"message model config: sizes must be >= 1, got {self}")


class DrivingMessageModel(Bundled, nn.Module):
    """`means(obs (..., obs_size)) -> (..., message_size)`; `std` (message_size,); `log_prob(z, obs)`."""

    bundle_kind = "driving_message_model"
    config_class = DrivingMessageModelConfig

    def __init__(self, config: DrivingMessageModelConfig):
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = []
        size = config.obs_size
        for _ in range(config.layers):
            blocks += [nn.Linear(size, config.width), nn.ReLU()]
            size = config.width
        self.net = nn.Sequential(*blocks, nn.Linear(size, config.message_size))
        self.log_std = nn.Parameter(torch.zeros(config.message_size))

    @property
    def std(self) -> torch.Tensor:
        return self.log_std.exp()

    def means(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)

    def log_prob(self, z: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """(...,) log-density of messages `z` said in observations `obs` (nats)."""
        return gaussian_log_prob(z, self.means(obs), self.log_std)


def gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Diagonal Gaussian log-density, summed over the last dimension."""
    scaled = (z - mean) * torch.exp(-log_std)
    return -0.5 * (scaled**2).sum(-1) - log_std.sum() - 0.5 * z.shape[-1] * math.log(2 * math.pi)
