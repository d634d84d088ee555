"""Play a batch of driving episodes with any two drivers and a relay between them.

A driver is an agent, a person's logged game replayed, or the model-human driver. Each step every
driver acts on its own observation and what it heard, and says something (a neuralese vector or
English text). A relay turns what one car said into what the other hears: unchanged, translated,
or silenced. This one loop serves self-play, silent play and both translation directions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from translator.games.driving.agents import DrivingAgent
from translator.games.driving.english import HumanDriver
from translator.games.driving.env import N_CARS, DriveState, step
from translator.games.driving.game import observe
from translator.games.driving.logs import LoggedGame


class Driver(Protocol):
    def reset(self, batch: int) -> None: ...

    def act(self, state: DriveState, car: int, heard: Any) -> tuple[np.ndarray, Any]:
        """`(actions (B,), what the car says)` given what it heard from the other car."""
        ...


@dataclass
class Said:
    """A robot's message with what a translator needs to read it: the noisy vector sent, and the
    speaker's recurrent state and input message before the step (its context)."""

    z: torch.Tensor
    h: torch.Tensor
    heard: torch.Tensor
    mean: torch.Tensor | None = None  # the message before channel noise


class AgentDriver:
    """A trained agent, greedy actions, messages through the noisy channel (seeded)."""

    def __init__(self, agent: DrivingAgent, seed: int = 0):
        self.agent, self.gen = agent, torch.Generator().manual_seed(seed)

    def reset(self, batch: int) -> None:
        self.h = self.agent.initial_state(batch)

    def act(self, state: DriveState, car: int, heard: Any) -> tuple[np.ndarray, Said]:
        if heard is None:
            heard = torch.zeros(state.batch, self.agent.config.message_size)
        with torch.no_grad():
            obs = torch.from_numpy(observe(state, car))
            logits, _, message, h = self.agent.step(obs, heard, self.h)
        said = Said(self.agent.channel(message, self.gen), self.h, heard, message)
        self.h = h
        return logits.argmax(1).numpy(), said


class ReplayDriver:
    """A person's logged actions and utterances, one logged game per episode; after its log ends
    the car stays. Optionally a shadow agent runs along the person's observations, so that
    translators can read the person's situation the way the agent speaker would."""

    def __init__(self, games: Sequence[LoggedGame], shadow: DrivingAgent | None = None):
        self.games, self.shadow = games, shadow

    def reset(self, batch: int) -> None:
        self.t = 0
        self.h = self.shadow.initial_state(batch) if self.shadow is not None else None

    def act(self, state: DriveState, car: int, heard: Any) -> tuple[np.ndarray, tuple[list[str], Said | None]]:
        t = self.t
        actions = np.array([g.actions[t, car] if t < g.steps else 0 for g in self.games])
        texts = [g.messages[t][car] if t < g.steps else "" for g in self.games]
        context = None
        if self.shadow is not None:
            heard = heard if isinstance(heard, torch.Tensor) else torch.zeros(state.batch, self.shadow.config.message_size)
            with torch.no_grad():
                _, _, message, h = self.shadow.step(torch.from_numpy(observe(state, car)), heard, self.h)
            context, self.h = Said(message, self.h, heard), h
        self.t += 1
        return actions, (texts, context)


class ModelHumanDriver:
    """The behaviour-cloned driver: acts on its observation and the last English it heard."""

    def __init__(self, model: HumanDriver):
        self.model = model

    def reset(self, batch: int) -> None:
        self.last = [""] * batch

    def act(self, state: DriveState, car: int, heard: Any) -> tuple[np.ndarray, list[str]]:
        if heard is not None:
            self.last = [h if h.strip() else old for h, old in zip(heard, self.last)]
        with torch.no_grad():
            logits = self.model.logits(torch.from_numpy(observe(state, car)), self.model.bag(self.last))
        return logits.argmax(1).numpy(), [""] * state.batch


Relay = Callable[[Any, DriveState, int], Any]  # (what car k said, state before the step, k) -> heard


def unchanged(said: Any, state: DriveState, car: int) -> Any:
    return said.z if isinstance(said, Said) else said


@dataclass
class Outcome:
    reward: np.ndarray  # (B,)
    success: np.ndarray
    crash: np.ndarray
    final: DriveState


def play(state: DriveState, drivers: Sequence[Driver], relays: Sequence[Relay], max_steps: int) -> Outcome:
    """Run the batch to its end. `relays[k]` carries car k's words to the other car."""
    for d in drivers:
        d.reset(state.batch)
    heard: list[Any] = [None] * N_CARS
    total = np.zeros(state.batch)
    for _ in range(max_steps):
        acted = [drivers[k].act(state, k, heard[k]) for k in range(N_CARS)]
        heard = [relays[1 - k](acted[1 - k][1], state, 1 - k) for k in range(N_CARS)]
        state, reward = step(state, np.stack([a for a, _ in acted], axis=1), max_steps)
        total += reward
        if state.over.all():
            break
    return Outcome(total, state.success, state.crashed, state)
