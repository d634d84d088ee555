"""Driving agents that must talk: one recurrent policy drives either car (parameters shared).

At every step a car reads its own observation and its partner's last message, updates a GRU
state, and outputs action logits, a value estimate and a message. Each action's logit also scores
that action's own features (would the car stay on the road, get closer to its goal) with weights
the GRU state modulates: a plain recurrent policy learned to ignore the state and stay put. Messages are continuous as in the
paper: 64 numbers, L2-normalised, with Gaussian noise (std 0.3) added on the channel, so gradients
flow from the listener's loss into the speaker. A silent agent (`silent=True`) always hears zeros.
Bundled as `config.json` (kind, format_version, config) + `model.safetensors`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from translator.games.driving.env import N_ACTIONS
from translator.games.driving.game import LOOKAHEAD, OBS_SIZE
from translator.storage.bundle import Bundled


@dataclass
class DrivingAgentConfig:
    hidden: int = 128
    message_size: int = 64
    noise: float = 0.3
    silent: bool = False
    obs_size: int = OBS_SIZE


class DrivingAgent(Bundled, nn.Module):
    """`step(obs, heard, h) -> (logits, value, message_mean, h)` for a batch of cars."""

    bundle_kind = "driving_agent"
    config_class = DrivingAgentConfig
    bundle_keep = ("checkpoint", "training.json")  # training writes both beside the bundle

    def __init__(self, config: DrivingAgentConfig):
        super().__init__()
        self.config = config
        self.encode = nn.Sequential(nn.Linear(config.obs_size + config.message_size, config.hidden), nn.ReLU())
        self.cell = nn.GRUCell(config.hidden, config.hidden)
        self.policy = nn.Linear(config.hidden, N_ACTIONS)
        self.value = nn.Linear(config.hidden, 1)
        self.speak = nn.Linear(config.hidden, config.message_size)
        self.action_weights = nn.Parameter(torch.zeros(LOOKAHEAD))
        self.gate = nn.Linear(config.hidden, LOOKAHEAD)

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.config.hidden, device=self.policy.weight.device)

    def check_message(self, heard: torch.Tensor) -> None:
        if heard.dim() != 2 or heard.shape[1] != self.config.message_size:
            raise ValueError(f"message: expected shape (batch, {self.config.message_size}), got {tuple(heard.shape)}")

    def step(self, obs: torch.Tensor, heard: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self.check_message(heard)
        if self.config.silent:
            heard = torch.zeros_like(heard)
        h = self.cell(self.encode(torch.cat([obs, heard], dim=1)), h)
        message = F.normalize(self.speak(h), dim=1)
        features = obs[:, -N_ACTIONS * LOOKAHEAD :].reshape(-1, N_ACTIONS, LOOKAHEAD)
        logits = self.policy(h) + (features * (self.action_weights + self.gate(h)).unsqueeze(1)).sum(-1)
        return logits, self.value(h).squeeze(1), message, h

    def channel(self, message: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The message as the partner receives it: with the channel's Gaussian noise."""
        noise = torch.randn(message.shape, generator=generator, device=message.device) * self.config.noise
        return message + noise
