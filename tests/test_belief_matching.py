"""`BeliefMatcher` on a game it was not written for: a toy game whose speaker knows one of K boxes,
agents that name box h by an arbitrary code and people who name it by a word. Matching beliefs
over the game's own support must recover which code means which word, whatever the codes are."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from translator.games.belief_matching import BeliefMatcher
from translator.games.driving.game import DrivingGame, observe


@dataclass
class Boxes:
    h: np.ndarray  # (B,) the box the speaker knows


class BoxGame:
    """Speaker (0) sees its box one-hot; the listener (1) sees nothing of it."""

    name, n_agents, listener_kind = "boxes", 2, "choice"

    def __init__(self, k: int):
        self.k = k

    def start_states(self, n: int, rng: np.random.Generator) -> Boxes:
        return Boxes(rng.integers(self.k, size=n))

    def observe(self, state: Boxes, agent: int) -> np.ndarray:
        return np.eye(self.k, dtype=np.float32)[state.h] if agent == 0 else np.zeros((len(state.h), 1), np.float32)

    def hidden(self, state: Boxes, agent: int) -> np.ndarray:
        return state.h[:, None]

    def sample_hidden(self, state: Boxes, agent: int, n: int | None, rng: np.random.Generator) -> Boxes:
        return Boxes(np.tile(np.arange(self.k), len(state.h)))  # every box once per episode

    def step(self, state, actions):  # pragma: no cover - not played here
        raise NotImplementedError

    def english(self, split: str) -> list:  # pragma: no cover - not read here
        return []


def _models(k: int, code: np.ndarray, noise: float = 0.3):
    """Agents say `code[h]` (a one-hot of another index, plus noise); people say word h 80% of the time."""
    means = torch.eye(k)[torch.from_numpy(code)]  # (K, K): box -> mean message
    words = torch.full((k, k), 0.2 / max(1, k - 1)).fill_diagonal_(0.8).log()  # (box, word)

    def agent_log_lik(obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # z (B, M, K) -> (B, N, M)
        return -(torch.cdist(means[obs.argmax(-1)], z) ** 2) / (2 * noise**2)

    def english_log_lik(obs: torch.Tensor) -> torch.Tensor:  # (B, N, words)
        return words[obs.argmax(-1)]

    return means, agent_log_lik, english_log_lik


@settings(max_examples=25, deadline=None)
@given(k=st.integers(2, 7), seed=st.integers(0, 2**16))
def test_matching_recovers_what_each_code_means(k: int, seed: int):
    rng = np.random.default_rng(seed)
    code = rng.permutation(k)
    means, agent_log_lik, english_log_lik = _models(k, code)
    game = BoxGame(k)
    state = game.start_states(12, rng)
    matcher = BeliefMatcher(game)
    obs = matcher.support(state, 0)
    assert obs.shape == (12, k, k)
    said = means[torch.from_numpy(state.h)] + 0.05 * torch.from_numpy(rng.standard_normal((12, k))).float()
    to_english = matcher.choose(agent_log_lik(obs, said[:, None]), english_log_lik(obs)).index
    assert to_english.tolist() == state.h.tolist()  # the word for the box the code stands for
    words = torch.from_numpy(rng.integers(k, size=12))
    pool = means.expand(12, -1, -1)  # candidates: every code
    u_lik = english_log_lik(obs)[torch.arange(12), :, words]
    to_neuralese = matcher.choose(u_lik, agent_log_lik(obs, pool)).index
    assert to_neuralese.tolist() == words.tolist()  # code j of the pool is box j's code


def test_the_divergence_is_zero_only_for_the_same_belief():
    matcher = BeliefMatcher(BoxGame(3))
    source = torch.tensor([[0.0, -1.0, -2.0]])  # (B=1, N=3)
    candidates = torch.stack([source[0] + 5.0, source[0].flip(0)], dim=-1)[None]  # (1, 3, 2)
    div = matcher.divergences(source, candidates)
    assert div[0, 0].item() == 0.0  # a constant shift is the same belief
    assert div[0, 1].item() > 0.5


def test_drivings_support_starts_with_the_true_state_and_each_episode_alone():
    game = DrivingGame()
    state = game.start_states(5, np.random.default_rng(0))
    matcher = BeliefMatcher(game, samples=16, seed=3)
    obs = matcher.support(state, 1)
    assert obs.shape[:2] == (5, 16)
    assert torch.equal(obs[:, 0], torch.from_numpy(observe(state, 1)))
    assert not torch.equal(obs[:, 1], obs[:, 0])
    each = matcher.support_each(state, 1, lambda s, i: s.take([i]))
    alone = matcher.support_each(state.take([3]), 1, lambda s, i: s.take([i]))
    assert torch.equal(each[3], alone[0])  # an episode's support does not depend on its batch
