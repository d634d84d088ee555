"""The colour reference game behind the `Game` interface: a round is an episode of one step.

The speaker (agent 0) sees the three colours on its own screen with the target marked; the listener
(agent 1) sees them in its screen order, without the target, and picks one: reward 1 when it picks
the target, 0 otherwise, and the round ends. The speaker's hidden state, which beliefs are over, is
the target's index (in listener order). It takes three values, so the support a belief is compared
on is enumerated rather than sampled: the round with each colour as the target. Starts are corpus
rounds drawn with the caller's generator; the English side is the corpus's rounds, one episode each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from translator.games.base import Episode, Step
from translator.games.colors.corpus import Round, load_rounds
from translator.storage.bundled_data import bundled

SPEAKER, LISTENER = 0, 1
N_COLORS = 3
NO_ACTION = -1  # the speaker's entry in a record's actions: it talks, it does not act
NO_CHOICE = -1  # `ColorState.choice` before the listener has picked


@dataclass(frozen=True)
class ColorState:
    """A batch of B rounds. Arrays: colors (B, 3, 3) float32 HSL in listener order, target (B,)
    listener index of the target, speaker_order (B, 3) where listener colour i sits on the
    speaker's screen, choice (B,) the listener's pick (`NO_CHOICE` before it), over (B,)."""

    colors: np.ndarray
    target: np.ndarray
    speaker_order: np.ndarray
    choice: np.ndarray
    over: np.ndarray

    @property
    def batch(self) -> int:
        return len(self.target)

    def take(self, index: np.ndarray | slice) -> ColorState:
        """The rounds at `index` (a sub-batch)."""
        return ColorState(**{k: getattr(self, k)[index] for k in self.__dataclass_fields__})


def from_rounds(rounds: list[Round]) -> ColorState:
    """Corpus rounds as a batch of fresh states (no choice made yet)."""
    n = len(rounds)
    return ColorState(
        colors=np.array([r.colors for r in rounds], dtype=np.float32).reshape(n, N_COLORS, 3),
        target=np.array([r.target for r in rounds], dtype=np.int64),
        speaker_order=np.array([r.speaker_order for r in rounds], dtype=np.int64).reshape(n, N_COLORS),
        choice=np.full(n, NO_CHOICE, dtype=np.int64),
        over=np.zeros(n, dtype=bool),
    )


def observe(state: ColorState, agent: int) -> np.ndarray:
    """Speaker: (B, 3, 4) its screen's colours, HSL and a last column marking the target.
    Listener: (B, 3, 3) its screen's colours."""
    if agent == LISTENER:
        return state.colors.copy()
    if agent != SPEAKER:
        raise ValueError(f"agent {agent}: the colour game has agents 0 (speaker) and 1 (listener)")
    b = state.batch
    marked = np.concatenate([state.colors, np.zeros((b, N_COLORS, 1), np.float32)], axis=2)
    marked[np.arange(b), state.target, 3] = 1
    out = np.empty_like(marked)
    out[np.arange(b)[:, None], state.speaker_order] = marked  # listener colour i to speaker slot order[i]
    return out


def hidden(state: ColorState, agent: int) -> np.ndarray:
    """(B, 1) the target's listener index: what only the speaker knows."""
    if agent != SPEAKER:
        raise ValueError(f"agent {agent}: only the speaker (0) has a hidden state in the colour game")
    return state.target[:, None].copy()


def sample_hidden(state: ColorState, agent: int, n: int | None = None, rng: np.random.Generator | None = None) -> ColorState:
    """For each round, three copies (round-major, B*3) with the target set to colour 0, 1 and 2:
    the whole support of the speaker's hidden state; the listener's view is untouched."""
    hidden(state, agent)  # checks the agent
    if n is not None and n != N_COLORS:
        raise ValueError(f"n={n}: the colour game's hidden state has {N_COLORS} values, each given once (n=None or 3)")
    rep = state.take(np.repeat(np.arange(state.batch), N_COLORS))
    target = np.tile(np.arange(N_COLORS, dtype=np.int64), state.batch)
    return ColorState(rep.colors, target, rep.speaker_order, rep.choice, rep.over)


def step(state: ColorState, actions: np.ndarray) -> tuple[ColorState, np.ndarray, np.ndarray]:
    """The listener picks: `actions` (B, 2), the speaker's column ignored, or (B,) the choices.
    Reward 1.0 for the target, 0.0 otherwise; every round ends."""
    a = np.asarray(actions)
    if a.ndim not in (1, 2) or len(a) != state.batch or (a.ndim == 2 and a.shape[1] != 2):
        raise ValueError(f"actions: expected shape ({state.batch}, 2) or ({state.batch},), got {a.shape}")
    choice = a[:, LISTENER] if a.ndim == 2 else a
    if not np.issubdtype(choice.dtype, np.integer) or ((choice < 0) | (choice >= N_COLORS)).any():
        raise ValueError("actions: the listener's choice must be a colour index 0, 1 or 2")
    after = ColorState(state.colors, state.target, state.speaker_order, choice.astype(np.int64), np.ones(state.batch, bool))
    return after, (choice == state.target).astype(np.float64), after.over.copy()


def to_episode(r: Round) -> Episode[ColorState, int]:
    """A corpus round as a record: the speaker's utterance, the person's click and its reward."""
    before = from_rounds([r])
    after, reward, ended = step(before, np.array([[NO_ACTION, r.click]]))
    ep: Episode[ColorState, int] = Episode(r.round_id)
    ep.steps.append(Step(before, (r.text, None), (NO_ACTION, r.click), after, float(reward[0]), bool(ended[0])))
    return ep


class ColorGame:
    """`translator.games.base.Game` for the colour reference game (states are `ColorState` batches)."""

    name = "colors"
    n_agents = 2
    listener_kind = "choice"

    def __init__(self, data_dir: str | Path | None = None, start_split: str = "train"):
        self.data_dir = Path(data_dir) if data_dir is not None else bundled("colors_in_context")
        self.start_split = start_split
        self._rounds: dict[str, list[Round]] = {}

    def rounds(self, split: str) -> list[Round]:
        """The corpus rounds of `split` (`DATA_DIR/split.csv`), read once."""
        if split not in self._rounds:
            self._rounds[split] = load_rounds(self.data_dir / f"{split}.csv")
        return self._rounds[split]

    def start_states(self, n: int, rng: np.random.Generator) -> ColorState:
        """`n` rounds of the start split, drawn with replacement by `rng`."""
        rounds = self.rounds(self.start_split)
        return from_rounds([rounds[i] for i in rng.integers(len(rounds), size=n)])

    def observe(self, state: ColorState, agent: int) -> np.ndarray:
        return observe(state, agent)

    def hidden(self, state: ColorState, agent: int) -> np.ndarray:
        return hidden(state, agent)

    def sample_hidden(
        self, state: ColorState, agent: int, n: int | None = None, rng: np.random.Generator | None = None
    ) -> ColorState:
        return sample_hidden(state, agent, n, rng)

    def step(self, state: ColorState, actions: np.ndarray) -> tuple[ColorState, np.ndarray, np.ndarray]:
        return step(state, actions)

    def english(self, split: str) -> list[Episode[ColorState, int]]:
        return [to_episode(r) for r in self.rounds(split)]
