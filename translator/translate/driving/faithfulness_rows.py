"""Labelled faithfulness rows of driving translations, from episodes played on logged games' starts.

A row is one translated message heard by a car still driving: its features (what the belief
translator knows, `faithfulness.Reading`) and its label, a one-step counterfactual in the
listening car's state (docs/metrics.md, "Driving faithfulness"):

- R→H: an agent drives one car and its messages, translated to English, go to the model-human
  driver in the other car. Label: the model-human driver's action hearing the English equals the
  action of the agent in the listener's seat (its recurrent state kept by a shadow agent hearing
  every original message) hearing the message.
- H→R: a person's logged car speaks, its utterances translated to messages for the agent in the
  other car. Label: the agent's action hearing the translated message equals the model-human
  driver's action, in the same seat, hearing the utterance.

`extras`: other translations of the same message in the same state, for fitting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from translator.games.driving.agents import DrivingAgent
from translator.games.driving.collection import logged_starts_parked
from translator.games.driving.english import HumanDriver
from translator.games.driving.env import MAX_STEPS, N_CARS, DriveState
from translator.games.driving.game import logged_starts, observe
from translator.games.driving.logs import LoggedGame
from translator.games.driving.play import AgentDriver, ReplayDriver, Said, play
from translator.games.driving.translate import BeliefTranslator
from translator.translate.driving.faithfulness import (
    CONTEXT_FEATURES,
    FEATURES,
    Reading,
    context_features,
    read_english,
    read_neuralese,
)

BELIEF = "belief"
Translate = Callable[[Any, DriveState, int], Any]  # (source, state, speaker car) -> translations


@dataclass
class Rows:
    """Rows of one translator: features `(N, F)`, labels `(N,)` bool, the game index of each row."""

    features: list[torch.Tensor] = field(default_factory=list)
    labels: list[torch.Tensor] = field(default_factory=list)
    games: list[np.ndarray] = field(default_factory=list)

    def add(self, features: torch.Tensor, labels: torch.Tensor, games: np.ndarray) -> None:
        self.features.append(features)
        self.labels.append(labels)
        self.games.append(games)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        if not self.labels:
            return (
                torch.zeros(0, len(FEATURES) + len(CONTEXT_FEATURES)),
                torch.zeros(0, dtype=torch.bool),
                np.zeros(0, dtype=np.int64),
            )
        return torch.cat(self.features), torch.cat(self.labels), np.concatenate(self.games)


@dataclass
class Heard:
    """What reaches the listening car: the played translation, the source, every read translation
    `{name: (translations, Reading)}`, and which episodes' speakers were driving when it was said."""

    played: Any
    source: Any
    read: dict[str, tuple[Any, Reading]]
    active: np.ndarray
    context: torch.Tensor  # the listening car's `context_features` where it was said

    def features(self, reading: Reading) -> torch.Tensor:
        return torch.cat([reading.features(), self.context], 1)


def _last(old: list[str], texts: Sequence[str]) -> list[str]:
    """The chat window: the partner's last non-empty utterance."""
    return [t if t.strip() else o for t, o in zip(texts, old)]


def _human_actions(driver: HumanDriver, obs: torch.Tensor, last: list[str]) -> torch.Tensor:
    with torch.no_grad():
        return driver.logits(obs, driver.bag(last)).argmax(1)


class HumanListener:
    """R→H listener: the model-human driver acts on the English; a shadow agent in the same seat,
    hearing the original messages, gives the agent's action for each row's label."""

    def __init__(self, driver: HumanDriver, agent: DrivingAgent, rows: dict[str, Rows], games: np.ndarray):
        self.driver, self.agent, self.rows, self.game_ids = driver, agent, rows, games

    def reset(self, batch: int) -> None:
        self.last, self.h = [""] * batch, self.agent.initial_state(batch)

    def act(self, state: DriveState, car: int, heard: Heard | None) -> tuple[np.ndarray, list[str]]:
        obs = torch.from_numpy(observe(state, car))
        z = heard.source if heard is not None else torch.zeros(state.batch, self.agent.config.message_size)
        with torch.no_grad():
            logits, _, _, self.h = self.agent.step(obs, z, self.h)
        if heard is not None:
            keep = heard.active & ~state.done[:, car] & ~state.over
            for name, (texts, reading) in heard.read.items():
                same = _human_actions(self.driver, obs, _last(self.last, texts)) == logits.argmax(1)
                self.rows[name].add(heard.features(reading)[keep], same[keep], self.game_ids[keep])
            self.last = _last(self.last, heard.played)
        return _human_actions(self.driver, obs, self.last).numpy(), [""] * state.batch


class AgentListener(AgentDriver):
    """H→R listener: the agent acts on the translated message; the model-human driver in the same
    seat, hearing the utterance, gives the human action for each row's label."""

    def __init__(self, agent: DrivingAgent, driver: HumanDriver, rows: dict[str, Rows], games: np.ndarray, seed: int):
        super().__init__(agent, seed)
        self.driver, self.rows, self.game_ids = driver, rows, games

    def reset(self, batch: int) -> None:
        super().reset(batch)
        self.last = [""] * batch

    def act(self, state: DriveState, car: int, heard: Heard | None) -> tuple[np.ndarray, Said]:
        if heard is None:
            return super().act(state, car, None)
        obs = torch.from_numpy(observe(state, car))
        self.last = _last(self.last, heard.source)
        human = _human_actions(self.driver, obs, self.last)
        keep = heard.active & ~state.done[:, car] & ~state.over
        for name, (messages, reading) in heard.read.items():
            with torch.no_grad():
                logits, _, _, _ = self.agent.step(obs, messages.float(), self.h)
            self.rows[name].add(heard.features(reading)[keep], (logits.argmax(1) == human)[keep], self.game_ids[keep])
        return super().act(state, car, heard.played.float())


def english_rows(
    b: BeliefTranslator,
    agent: DrivingAgent,
    driver: HumanDriver,
    games: Sequence[LoggedGame],
    played: str,
    translators: dict[str, Translate],
    seed: int = 0,
) -> dict[str, Rows]:
    """R→H rows of every translator in `translators` (texts from `Said`), episodes driven by `played`
    (`BELIEF` needs no entry); each game twice, the agent as either car."""
    names = list(dict.fromkeys([played, *translators]))
    rows = {n: Rows() for n in names}
    ids = np.arange(len(games))

    def relay(said: Said, st: DriveState, car: int) -> Heard:
        obs = b.c.states_each(st, car)
        read = {}
        for name in names:
            texts = None if name == BELIEF else translators[name](said, st, car)
            reading = read_english(b, said, obs, texts)
            read[name] = ([b.utterances[i] for i in reading.scores.argmin(1).tolist()] if texts is None else texts, reading)
        return Heard(read[played][0], said.z, read, ~st.done[:, car] & ~st.over, context_features(st, car))

    for robot in range(N_CARS):
        drivers: list[Any] = [None, None]
        drivers[robot], drivers[1 - robot] = AgentDriver(agent, seed), HumanListener(driver, agent, rows, ids)
        relays: list[Any] = [None, None]
        relays[robot], relays[1 - robot] = relay, lambda said, st, car: None
        play(logged_starts(games), drivers, relays, MAX_STEPS)
    return rows


def neuralese_rows(
    b: BeliefTranslator,
    agent: DrivingAgent,
    driver: HumanDriver,
    games: Sequence[LoggedGame],
    played: str,
    translators: dict[str, Translate],
    seed: int = 0,
) -> dict[str, Rows]:
    """H→R rows of every translator in `translators` (messages from `(texts, context)`), episodes
    driven by `played`; each game twice, the person as either car (replayed open loop)."""
    names = list(dict.fromkeys([played, *translators]))
    rows = {n: Rows() for n in names}
    ids = np.arange(len(games))

    def relay(said: tuple, st: DriveState, car: int) -> Heard:
        texts, context = said
        obs = b.c.states_each(st, car)
        read = {}
        for name in names:
            messages = None if name == BELIEF else translators[name]((texts, context), st, car)
            reading = read_neuralese(b, texts, context, obs, messages)
            read[name] = (b.pool[reading.scores.argmin(1)] if messages is None else messages, reading)
        return Heard(read[played][0], texts, read, ~st.done[:, car] & ~st.over, context_features(st, car))

    for person in range(N_CARS):
        state = logged_starts_parked(games)
        drivers: list[Any] = [None, None]
        drivers[person] = ReplayDriver(games, shadow=agent)
        drivers[1 - person] = AgentListener(agent, driver, rows, ids, seed)
        relays: list[Any] = [None, None]
        relays[person], relays[1 - person] = relay, lambda said, st, car: said.z
        play(state, drivers, relays, max(MAX_STEPS, max(g.steps for g in games)))
    return rows


def english_of(translator: Any) -> Translate:
    """A driving translator's R→H call as a `Translate`."""
    return lambda said, st, car: translator.to_english(said, st, car)


def neuralese_of(translator: Any) -> Translate:
    """A driving translator's H→R call as a `Translate` (the source is `(texts, context)`)."""
    return lambda source, st, car: translator.to_neuralese(source[0], source[1], st, car)
