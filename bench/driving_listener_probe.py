"""Probe: a model-human driver that listens, as the R->H listener of the driving game (never dev).

The behaviour-cloned driver follows its route almost whatever it hears, so R->H cannot tell
translators apart. This probe tries a driver that reads the partner's words for where the
partner is: Bayesian inference through an English speaker model p(u | partner's observation)
over fresh partner states on the road (never the true one), the partner's next move predicted by
the cloned policy, and each action scored `log p_BC(a) - caution * P(crash | a)`; `oracle` tells
it the partner's true state instead (the ceiling of what any message could tell it).
The training logs are split in halves by game (seed 0): translators consult a speaker fitted on
half A, the listener one fitted on half B. Prints the listener beside the replayed people of half
A hearing their own words (per caution), then R->H on half A's starts for every translator and
the oracle. Result and reading: docs/driving.md ("A listener that reads where the partner is").

    python bench/driving_listener_probe.py --run RUN/driving [--caution 0,2,8] [--translators]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eval.driving.evaluate import summary
from training.driving.english import examples, split_games, train_speaker
from translator.games.driving.agents import DrivingAgent
from translator.games.driving.collection import logged_starts_parked
from translator.games.driving.english import HumanDriver, HumanSpeaker
from translator.games.driving.env import MAX_STEPS, N_ACTIONS, N_CARS, DriveState, occupancy, step
from translator.games.driving.game import logged_starts, observe, sample_hidden
from translator.games.driving.logs import read_logs
from translator.games.driving.play import AgentDriver, ReplayDriver, play
from translator.games.driving.translators import build_translators
from translator.storage.bundled_data import bundled


class ListeningDriver:
    """`act(state, car, heard)` as every driver of `translator.games.driving.play`."""

    def __init__(
        self,
        driver: HumanDriver,
        speaker: HumanSpeaker,
        caution: float = 4.0,
        samples: int = 48,
        seed: int = 0,
        oracle: bool = False,
    ):
        self.driver, self.speaker = driver.eval(), speaker.eval()
        self.caution, self.samples, self.seed, self.oracle = caution, samples, seed, oracle

    def reset(self, batch: int) -> None:
        self.last = [""] * batch
        self.rng = np.random.default_rng(self.seed)

    def act(self, state: DriveState, car: int, heard: Any) -> tuple[np.ndarray, list[str]]:
        now = list(heard) if heard is not None else [""] * state.batch
        self.last = [h if h.strip() else old for h, old in zip(now, self.last)]
        with torch.no_grad():
            logits = self.driver.logits(torch.from_numpy(observe(state, car)), self.driver.bag(self.last))
        score = torch.log_softmax(logits, dim=1).numpy() - self.caution * self.hazard(state, car, now)
        return score.argmax(1), [""] * state.batch

    def hazard(self, state: DriveState, car: int, heard: Sequence[str]) -> np.ndarray:
        """(B, 4) the probability that each of `car`'s actions crashes into the partner, under the
        driver's belief about the partner given what it just heard."""
        partner = 1 - car
        if self.oracle:
            fresh, n = state, 1
        else:
            fresh, n = sample_hidden(state, partner, self.samples, self.rng), self.samples
        weight = self.belief(fresh, partner, heard, n) if not self.oracle else np.ones((state.batch, 1))
        weight = weight * (~state.done[:, partner] | ~self.oracle)[:, None]
        with torch.no_grad():
            obs = torch.from_numpy(observe(fresh, partner))
            moves = torch.softmax(self.driver.logits(obs, self.driver.bag([""] * fresh.batch)), dim=1).numpy()
        crash = np.zeros((state.batch, N_ACTIONS))
        for a in range(N_ACTIONS):
            for b in range(N_ACTIONS):
                actions = np.zeros((fresh.batch, 2), np.int64)
                actions[:, car], actions[:, partner] = a, b
                after, _ = step(fresh, actions, max_steps=10**9)
                hit = (after.crashed & ~fresh.crashed) * moves[:, b]
                crash[:, a] += (hit.reshape(state.batch, n) * weight).sum(axis=1)
        return crash

    def belief(self, fresh: DriveState, partner: int, heard: Sequence[str], n: int) -> np.ndarray:
        """(B, n) posterior over the fresh partner states given each utterance heard; states where
        the partner would overlap the listening car are impossible."""
        with torch.no_grad():
            logp = self.speaker.log_probs(torch.from_numpy(observe(fresh, partner))).numpy()
        cls = np.repeat([self.speaker.class_of(u) for u in heard], n)
        logp = logp[np.arange(fresh.batch), cls].reshape(-1, n)
        overlap = (occupancy(fresh.pos, fresh.heading, ~fresh.done) > 1).any(axis=(1, 2)).reshape(-1, n)
        w = np.where(overlap, 0.0, np.exp(logp - logp.max(axis=1, keepdims=True)))
        return w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)


def speaker_on(games: list, seed: int):
    fit, held = split_games(games, held_out=0.1, seed=seed)
    return train_speaker(examples(fit), examples(held), seed=seed)


def with_person(listener, games: list) -> dict:
    """The listener beside each logged person (either car), hearing the person's own words."""
    outs = []
    for person in range(N_CARS):
        state = logged_starts_parked(games)
        drivers = [None, None]
        drivers[person], drivers[1 - person] = ReplayDriver(games), listener
        relays = [lambda said, st, car: said[0] if isinstance(said, tuple) else None] * 2
        outs.append(play(state, drivers, relays, max(MAX_STEPS, max(g.steps for g in games))))
    return merged(outs, games)


def merged(outs: list, games: list) -> dict:
    cat = lambda k: np.concatenate([getattr(o, k) for o in outs])  # noqa: E731
    maps = np.array([g.map_id for g in games] * len(outs))
    ids = np.concatenate([np.arange(len(games))] * len(outs))
    m = summary(cat("reward"), cat("success"), cat("crash"), maps, ids)
    return {k: m[k] for k in ("success", "crash", "reward", "ci95_success")}


def robot_to_listener(agent, listener, translator, games: list, seed: int) -> dict:
    outs = []
    for robot in range(N_CARS):
        drivers = [None, None]
        drivers[robot], drivers[1 - robot] = AgentDriver(agent, seed), listener
        relay_robot = lambda said, st, car: translator.to_english(said, st, car) if translator else None  # noqa: E731
        relays = [relay_robot, lambda *a: None] if robot == 0 else [lambda *a: None, relay_robot]
        outs.append(play(logged_starts(games), drivers, relays, MAX_STEPS))
    return merged(outs, games)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--caution", default="0,1,2,4,8")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--translators", action="store_true", help="also R->H for every translator at the last caution")
    a = p.parse_args()
    torch.set_num_threads(1)
    games = read_logs(bundled("driving") / "train.jsonl")
    half_b, half_a = split_games(games, held_out=0.5, seed=a.seed)
    consulted, _ = speaker_on(half_a, a.seed)
    judge, info = speaker_on(half_b, a.seed)
    print(json.dumps({"halves": [len(half_a), len(half_b)], "judge_speaker": info}), flush=True)
    driver = HumanDriver.from_pretrained(a.run / "english_driver")
    agent = DrivingAgent.from_pretrained(a.run / "agents")
    for c in [float(x) for x in a.caution.split(",")]:
        row = with_person(ListeningDriver(driver, judge, caution=c, seed=a.seed), half_a)
        print(json.dumps({"caution": c, "with_person": row}), flush=True)
    if not a.translators:
        return
    c = float(a.caution.split(",")[-1])
    trs = build_translators(agent, consulted, half_a, a.seed)
    for name, tr in [*trs.items(), ("none", None)]:
        row = robot_to_listener(agent, ListeningDriver(driver, judge, caution=c, seed=a.seed), tr, half_a, a.seed)
        print(json.dumps({"translator": name, "to_english": row}), flush=True)
    oracle = ListeningDriver(driver, judge, caution=c, seed=a.seed, oracle=True)
    print(json.dumps({"translator": "oracle", "to_english": robot_to_listener(agent, oracle, None, half_a, a.seed)}), flush=True)


if __name__ == "__main__":
    main()
