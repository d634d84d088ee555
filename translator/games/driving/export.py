"""Our own agents' self-play as a foreign agent's episode file: what `import-messages --game driving` reads.

Plays `episodes` seeded starts with the agent in both cars (`play.AgentDriver`) and keeps, for
every car of every episode still running, the line the import format holds (translator/games/
driving/episodes.py: the speaker's state, the partner, the message it sent through its noisy
channel, what it heard, its action) beside what only we know: the agent's context (`Said`) and the
state. Tests and `bench/driving_import_probe.py` use it to compare translation through a model
fitted to the file with translation through the agent's own channel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from translator.games.driving.agents import DrivingAgent
from translator.games.driving.env import MAX_STEPS, DriveState
from translator.games.driving.game import template_starts
from translator.games.driving.maps import HEADINGS
from translator.games.driving.play import AgentDriver, Said, play, unchanged


@dataclass
class SpokenStep:
    line: dict[str, Any]  # the episode file's line
    state: DriveState  # the state it was said in (a batch of one)
    car: int
    said: Said  # the agent's message with its context (rows of one)


def _car(state: DriveState, i: int, car: int) -> dict[str, Any]:
    return {
        "cell": state.pos[i, car].tolist(),
        "heading": HEADINGS[int(state.heading[i, car])],
        "goal": state.goal[i, car].tolist(),
        "done": bool(state.done[i, car]),
    }


class _Recording(AgentDriver):
    """An `AgentDriver` that keeps every step of every running episode."""

    def __init__(self, agent: DrivingAgent, seed: int, prefix: str, out: list[SpokenStep]):
        super().__init__(agent, seed)
        self.prefix, self.out = prefix, out

    def reset(self, batch: int) -> None:
        super().reset(batch)
        self.t = 0

    def act(self, state: DriveState, car: int, heard: Any) -> tuple[np.ndarray, Said]:
        actions, said = super().act(state, car, heard)
        for i in np.flatnonzero(~state.over):
            line = {"episode": f"{self.prefix}{i}", "step": self.t, "speaker": car, "map": int(state.map_id[i]),
                    "car": _car(state, i, car), "other": _car(state, i, 1 - car), "message": said.z[i].tolist(),
                    "heard": said.heard[i].tolist(), "action": int(actions[i])}  # fmt: skip
            one = Said(said.z[i : i + 1], said.h[i : i + 1], said.heard[i : i + 1], said.mean[i : i + 1])
            self.out.append(SpokenStep(line, state.take([i]), car, one))
        self.t += 1
        return actions, said


def self_play_steps(agent: DrivingAgent, episodes: int, seed: int, prefix: str = "e") -> list[SpokenStep]:
    """Every car-step of `episodes` self-play episodes from starts drawn with `seed`, in play order."""
    out: list[SpokenStep] = []
    drivers = [_Recording(agent, seed, prefix, out), _Recording(agent, seed + 1, prefix, out)]
    with torch.no_grad():
        play(template_starts(episodes, np.random.default_rng(seed)), drivers, [unchanged, unchanged], MAX_STEPS)
    return out


def write_episode_file(path: str | Path, steps: list[SpokenStep]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for s in steps:
            f.write(json.dumps(s.line) + "\n")
