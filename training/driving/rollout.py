"""Self-play episodes of the driving agents, differentiable end to end (for training).

Both cars run through one batched forward pass per step (parameters are shared). Each car hears its
partner's message of the previous step through the noisy channel; gradients flow through that
channel, so a listener's loss shapes the speaker's messages (as in the paper's continuous channel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from translator.games.driving.agents import DrivingAgent
from translator.games.driving.env import MAX_STEPS, N_CARS, DriveState, step_cars
from translator.games.driving.game import observe


@dataclass
class Trajectory:
    """Tensors of shape (T, 2B), cars 0 then 1 along the second axis."""

    logp: torch.Tensor
    value: torch.Tensor
    entropy: torch.Tensor
    reward: torch.Tensor  # each car's share of the team reward (credit assignment)
    acting: torch.Tensor  # the car was driving in a live episode
    final: DriveState
    total_reward: np.ndarray  # (B,)


def both_cars(state: DriveState) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([observe(state, k) for k in range(N_CARS)]))


def swap(x: torch.Tensor) -> torch.Tensor:
    """What each car hears: the other car's half of the batch."""
    b = x.shape[0] // 2
    return torch.cat([x[b:], x[:b]])


def rollout(
    agent: DrivingAgent,
    state: DriveState,
    generator: torch.Generator,
    greedy: bool = False,
    max_steps: int = MAX_STEPS,
    crash_penalty: float = 0.0,
) -> Trajectory:
    """One batch of episodes. `crash_penalty` is taken from each car's share on a crash on top of
    the game's own penalty: a training signal only (`total_reward` stays the game's reward)."""
    b = state.batch
    h = agent.initial_state(2 * b)
    heard = torch.zeros(2 * b, agent.config.message_size)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("logp", "value", "entropy", "reward", "acting")}
    total = np.zeros(b)
    for _ in range(max_steps):
        logits, value, message, h = agent.step(both_cars(state), heard, h)
        dist = torch.distributions.Categorical(logits=logits)
        action = logits.argmax(dim=1) if greedy else torch.multinomial(dist.probs, 1, generator=generator).squeeze(1)
        acting = torch.from_numpy(np.concatenate([~state.done[:, k] & ~state.over for k in range(N_CARS)]))
        before = state.crashed
        state, reward, shares = step_cars(state, action.numpy().reshape(N_CARS, b).T, max_steps)
        shares = shares - crash_penalty * (state.crashed & ~before)[:, None]
        total += reward
        heard = swap(agent.channel(message, generator))
        out["logp"].append(dist.log_prob(action))
        out["value"].append(value)
        out["entropy"].append(dist.entropy())
        out["reward"].append(torch.from_numpy(shares.T.reshape(-1)).float())
        out["acting"].append(acting.float())
        if state.over.all():
            break
    stacked = {k: torch.stack(v) for k, v in out.items()}
    return Trajectory(**stacked, final=state, total_reward=total)
