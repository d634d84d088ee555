"""What a game provides to agents, English models, translators and evaluation.

A game is played in episodes of one or more steps. At each step every agent observes part of the
state, may send a message, and acts. The speaker's *hidden state* is what only it knows (the colour
game: which patch is the target; driving: its own position, heading and goal): beliefs, and so
translations, are distributions over it. Belief matching needs fresh states that agree with what
the listener sees, so a game samples those too. The English side comes from a corpus of people
playing the same game, read into the same typed records as agent play.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar

import numpy as np

State = TypeVar("State")
Obs = TypeVar("Obs")
Action = TypeVar("Action")

ListenerKind = Literal["choice", "action"]


@dataclass(frozen=True)
class Step(Generic[State, Action]):
    """One step of play: the state before, what each agent said (None: silent) and did, and after."""

    state: State
    messages: tuple[str | None, ...]
    actions: tuple[Action, ...]
    next_state: State
    reward: float
    ended: bool


@dataclass
class Episode(Generic[State, Action]):
    """A played episode (a colour round is an episode of one step), with where it came from."""

    episode_id: str
    steps: list[Step[State, Action]] = field(default_factory=list)

    @property
    def reward(self) -> float:
        return float(sum(s.reward for s in self.steps))


class Game(Protocol[State, Obs, Action]):
    """The contract a game fulfils. `State` is one episode's full state (a batch where vectorised)."""

    name: str
    n_agents: int
    listener_kind: ListenerKind  # "choice": pick one of the referents; "action": act in the world

    def start_states(self, n: int, rng: np.random.Generator) -> State:
        """`n` fresh episode starts (for self-play and for evaluation)."""
        ...

    def observe(self, state: State, agent: int) -> Obs:
        """What `agent` sees: never another agent's hidden state."""
        ...

    def hidden(self, state: State, agent: int) -> np.ndarray:
        """The speaker `agent`'s hidden state, encoded as integers: what beliefs are over."""
        ...

    def sample_hidden(self, state: State, agent: int, n: int | None, rng: np.random.Generator) -> State:
        """The support a belief over `agent`'s hidden state is compared on: per episode (episode-major)
        states that keep everything the *listener* (the other agent) sees, among them the episode's
        own. A hidden state of many values is sampled: `n` states, the own one first (driving). One
        of few values is enumerated, each value once, and `n` is None or that number (the colour
        game's three targets)."""
        ...

    def step(self, state: State, actions: np.ndarray) -> tuple[State, np.ndarray, np.ndarray]:
        """`(next_state, reward, ended)` after every agent acts (`actions`: (B, n_agents); an agent
        that does not act, such as the colour game's speaker, has its entry ignored)."""
        ...

    def english(self, split: str) -> Sequence[Episode[State, Action]]:
        """The human games of `split` ("train", "dev") as typed records, messages in English."""
        ...
