"""Evaluate the driving game on held-out human games (dev): people, agents, and translations.

- H/H: the people's logged games replayed through the environment (reward, success, crash).
- R/R: the agents from each held-out game's start state; silent R/R: agents trained hearing zeros;
  and the talking agents with their channel cut at test time (do they use what they hear?).
- H->R: one car replays the person's logged actions; its utterances, translated to neuralese, go
  to the agent driving the other car (each game twice: the person as either car).
- R->H: an agent drives one car; its messages, translated to English, go to the model-human
  driver in the other car (each game twice). The agent hears nothing back.
Each number comes with a 95% bootstrap interval over games and a break-down per map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from translator.games.driving.agents import DrivingAgent
from translator.games.driving.collection import logged_starts_parked
from translator.games.driving.english import HumanDriver
from translator.games.driving.env import MAX_STEPS, N_CARS, DriveState
from translator.games.driving.game import logged_starts
from translator.games.driving.logs import LoggedGame
from translator.games.driving.play import AgentDriver, ModelHumanDriver, ReplayDriver, Said, play, unchanged
from translator.games.driving.replay import replay_games, replay_transitions
from translator.games.driving.translate import BeliefContext


def bootstrap(values: np.ndarray, groups: np.ndarray, samples: int = 1000, seed: int = 0) -> list[float]:
    """95% interval of the mean of `values`, resampling whole groups (games)."""
    ids = np.unique(groups)
    per = {g: values[groups == g] for g in ids}
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(samples):
        pick = rng.choice(ids, size=len(ids))
        means.append(np.concatenate([per[g] for g in pick]).mean())
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def summary(reward: np.ndarray, success: np.ndarray, crash: np.ndarray, maps: np.ndarray, games: np.ndarray) -> dict:
    out = {
        "reward": round(float(reward.mean()), 4),
        "success": round(float(success.mean()), 4),
        "crash": round(float(crash.mean()), 4),
        "ci95_success": bootstrap(success.astype(float), games),
        "games": int(len(np.unique(games))),
        "episodes": int(len(reward)),
    }
    out["per_map"] = {
        str(m): {
            "success": round(float(success[maps == m].mean()), 4),
            "reward": round(float(reward[maps == m].mean()), 4),
            "crash": round(float(crash[maps == m].mean()), 4),
            "episodes": int((maps == m).sum()),
        }
        for m in np.unique(maps)
    }
    return out


@dataclass(frozen=True)
class Played:
    """Episodes of one protocol, each with its map and the index of its logged game."""

    reward: np.ndarray
    success: np.ndarray
    crash: np.ndarray
    maps: np.ndarray
    games: np.ndarray

    def summary(self) -> dict:
        return summary(self.reward, self.success, self.crash, self.maps, self.games)


def people(games: Sequence[LoggedGame]) -> tuple[dict, dict]:
    """H/H summary and the replay check `{transitions, reproduced}`."""
    out = replay_games(games)
    maps, ids = np.array([g.map_id for g in games]), np.arange(len(games))
    check = replay_transitions(games)
    return summary(out.reward, out.success, out.crash, maps, ids), {
        "transitions": check.transitions,
        "reproduced": check.reproduced,
    }


def cut(said: Said, state: DriveState, car: int) -> torch.Tensor:
    """A relay that delivers zeros: the talking agents with their channel cut at test time."""
    return torch.zeros_like(said.z)


def agents(agent: DrivingAgent, games: Sequence[LoggedGame], seed: int = 0, messages_cut: bool = False) -> dict:
    """R/R from each game's start state (the agent's own silence setting applies)."""
    state = logged_starts(games)
    relay = cut if messages_cut else unchanged
    out = play(state, [AgentDriver(agent, seed), AgentDriver(agent, seed + 1)], [relay, relay], MAX_STEPS)
    return summary(out.reward, out.success, out.crash, state.map_id, np.arange(len(games)))


def human_to_robot(agent: DrivingAgent, translator, games: Sequence[LoggedGame], seed: int = 0) -> dict:
    """H->R: the person's car replays the log; `translator.to_neuralese` carries its words."""
    return play_human_to_robot(agent, translator, games, seed).summary()


def play_human_to_robot(agent: DrivingAgent, translator, games: Sequence[LoggedGame], seed: int = 0) -> Played:
    """The episodes of `human_to_robot`, the person as either car."""
    results = []
    for person in range(N_CARS):
        state = logged_starts_parked(games)
        drivers = [None, None]
        drivers[person] = ReplayDriver(games, shadow=agent)
        drivers[1 - person] = AgentDriver(agent, seed)

        def relay_person(said: tuple, st: DriveState, car: int) -> object:
            texts, context = said
            return translator.to_neuralese(texts, context, st, car)

        def relay_robot(said: Said, st: DriveState, car: int) -> object:
            return said.z  # the shadow agent of the person hears the robot (keeps its context honest)

        relays = [relay_person, relay_robot] if person == 0 else [relay_robot, relay_person]
        longest = max(MAX_STEPS, max(g.steps for g in games))
        results.append(play(state, drivers, relays, longest))
    return _merge(results, games)


def robot_to_human(agent: DrivingAgent, driver: HumanDriver, translator, games: Sequence[LoggedGame], seed: int = 0) -> dict:
    """R->H: `translator.to_english` carries the agent's messages to the model-human driver."""
    return play_robot_to_human(agent, driver, translator, games, seed).summary()


def play_robot_to_human(
    agent: DrivingAgent, driver: HumanDriver, translator, games: Sequence[LoggedGame], seed: int = 0
) -> Played:
    """The episodes of `robot_to_human`, the agent as either car."""
    results = []
    for robot in range(N_CARS):
        state = logged_starts(games)
        drivers = [None, None]
        drivers[robot] = AgentDriver(agent, seed)
        drivers[1 - robot] = ModelHumanDriver(driver)

        def relay_robot(said: Said, st: DriveState, car: int) -> object:
            return translator.to_english(said, st, car)

        def relay_human(said: list, st: DriveState, car: int) -> object:
            return None  # the agent hears nothing from the model human

        relays = [relay_robot, relay_human] if robot == 0 else [relay_human, relay_robot]
        results.append(play(state, drivers, relays, MAX_STEPS))
    return _merge(results, games)


def _merge(results: list, games: Sequence[LoggedGame]) -> Played:
    maps = np.array([g.map_id for g in games] * len(results))
    ids = np.concatenate([np.arange(len(games))] * len(results))
    cat = lambda name: np.concatenate([getattr(r, name) for r in results])  # noqa: E731
    return Played(cat("reward"), cat("success"), cat("crash"), maps, ids)


def belief_agreement(
    context: BeliefContext, translator, agent: DrivingAgent, games: Sequence[LoggedGame], seed: int = 0
) -> float:
    """Share of the agents' messages (self-play from the games' starts, cars still driving) whose
    English translation makes the English speaker model believe in the same speaker state as the
    message does: the argmax of beta(u) and of beta(z) over the same fresh states coincide."""
    agree: list[np.ndarray] = []
    classes = context.speaker.config.classes

    def relay(said: Said, st: DriveState, car: int) -> torch.Tensor:
        texts = translator.to_english(said, st, car)
        obs = context.states(st, car)
        z_belief = context.agent_beliefs(said.z[:, None], context.agent_means(obs, said))[..., 0]
        cols = torch.tensor([context.candidates.index(classes.index(t)) if t in classes else 0 for t in texts])
        u_belief = context.english_beliefs(obs)[torch.arange(len(texts)), :, cols]
        driving = ~st.done[:, car] & ~st.over
        agree.append((z_belief.argmax(1) == u_belief.argmax(1)).numpy()[driving])
        return said.z

    play(logged_starts(games), [AgentDriver(agent, seed), AgentDriver(agent, seed + 1)], [relay, relay], MAX_STEPS)
    return round(float(np.concatenate(agree).mean()), 4)
