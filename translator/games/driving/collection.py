"""What the translators are built from: the agents' messages in self-play (candidate messages for
English -> neuralese) and a paired corpus (the agent's and the person's messages in the same
logged states, for the direct baseline), made by running the agent alongside the training games.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from translator.games.driving.agents import DrivingAgent
from translator.games.driving.english import HumanSpeaker
from translator.games.driving.env import MAX_STEPS, DriveState
from translator.games.driving.game import logged_starts, template_starts
from translator.games.driving.logs import LoggedGame
from translator.games.driving.play import AgentDriver, ReplayDriver, Said, play


def message_pool(agent: DrivingAgent, episodes: int = 200, size: int = 1000, seed: int = 0) -> torch.Tensor:
    """(size, 64) messages (before channel noise) that driving cars sent in self-play."""
    sent: list[torch.Tensor] = []

    def keep(said: Said, state: DriveState, car: int) -> torch.Tensor:
        driving = torch.from_numpy(~state.done[:, car] & ~state.over)
        sent.append(said.mean[driving])
        return said.z

    rng = np.random.default_rng(seed)
    play(template_starts(episodes, rng), [AgentDriver(agent, seed), AgentDriver(agent, seed + 1)], [keep, keep], MAX_STEPS)
    pool = torch.cat(sent)
    return pool[torch.from_numpy(rng.permutation(len(pool))[:size])]


def paired_corpus(agent: DrivingAgent, speaker: HumanSpeaker, games: Sequence[LoggedGame]) -> tuple[torch.Tensor, torch.Tensor]:
    """`(z (P, 64), utterance class (P,))`: the shadow agent's message and the person's utterance
    for every step of every driving car in `games` (states replayed from the logs)."""
    zs, cls = [], []
    drivers = [ReplayDriver(games, agent), ReplayDriver(games, agent)]

    def pair(said: tuple, state: DriveState, car: int) -> torch.Tensor:
        texts, ctx = said
        driving = ~state.done[:, car] & ~state.over
        for i in np.flatnonzero(driving):
            zs.append(ctx.z[i])
            cls.append(speaker.class_of(texts[i]))
        return ctx.z

    longest = max(g.steps for g in games)
    play(logged_starts_parked(games), drivers, [pair, pair], longest)
    return torch.stack(zs), torch.tensor(cls)


def logged_starts_parked(games: Sequence[LoggedGame]) -> DriveState:
    state = logged_starts(games)
    state.park[:] = [g.park for g in games]
    return state
