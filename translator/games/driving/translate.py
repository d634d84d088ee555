"""Translators for the driving channel: belief matching, direct (co-occurrence), random, silent.

Belief matching (Andreas et al. 2017): a message means what it makes a listener believe about the
speaker's hidden state (its position, heading and goal). For a message said in a live state we
draw fresh speaker states that keep everything the listener's car sees (`sample_hidden`, the true
state included) and compare beliefs over them:
  beta(z)[x] ~ p(z | x), the agent speaker's Gaussian channel around its message for state x (same
  recurrent state and input message: only the current observation changes);
  beta(u)[x] ~ p_H(u | x), the English speaker model.
Neuralese -> English picks the candidate utterance minimising KL(beta(z) || beta(u)); English ->
neuralese picks, among messages the agent produced in self-play, the one minimising
KL(beta(u) || beta(z)). Direct pairs the agent's and the person's messages said in the same logged
states and translates by nearest co-occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from translator.games.belief_matching import BeliefMatcher
from translator.games.driving.agents import DrivingAgent
from translator.games.driving.english import OTHER, HumanSpeaker
from translator.games.driving.env import DriveState
from translator.games.driving.game import DrivingGame
from translator.games.driving.play import Said


@dataclass
class BeliefContext:
    """The driving game's two speaker likelihoods over the support `BeliefMatcher` draws: the
    agent's Gaussian channel around its mean message, and the English speaker model."""

    agent: DrivingAgent
    speaker: HumanSpeaker
    samples: int = 48
    seed: int = 0

    def __post_init__(self) -> None:
        self.matcher = BeliefMatcher(DrivingGame(), self.samples, self.seed)
        self.candidates = [i for i, u in enumerate(self.speaker.config.classes) if u != OTHER]

    def states(self, state: DriveState, car: int) -> torch.Tensor:
        """(B, N, obs) observations of the speaker `car` in N fresh states; index 0 the true one."""
        return self.matcher.support(state, car)

    def states_each(self, state: DriveState, car: int) -> torch.Tensor:
        """`states`, with each episode's fresh states drawn from a generator seeded with `seed`
        alone: an episode's translation does not depend on the others in its batch."""
        return self.matcher.support_each(state, car, lambda s, i: s.take([i]))

    def agent_means(self, obs: torch.Tensor, ctx: Said) -> torch.Tensor:
        """(B, N, 64) the agent speaker's message for each fresh state, in its own context."""
        b, n, f = obs.shape
        with torch.no_grad():
            _, _, mean, _ = self.agent.step(
                obs.reshape(b * n, f), ctx.heard.repeat_interleave(n, 0), ctx.h.repeat_interleave(n, 0)
            )
        return mean.reshape(b, n, -1)

    def english_log_lik(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, N, C) log p_H(u | state) of each candidate utterance class in each of the N states."""
        with torch.no_grad():
            return self.speaker.log_probs(obs)[..., self.candidates]

    def english_beliefs(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, N, C) log belief over the N states for each candidate utterance class."""
        return torch.log_softmax(self.english_log_lik(obs), dim=1)

    def agent_log_lik(self, z: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """(B, N, M) log p(z | state), up to a constant, of each of M messages z (B, M, 64)."""
        sq = torch.cdist(means, z) ** 2  # (B, N, M)
        return -sq / (2 * self.agent.config.noise**2)

    def agent_beliefs(self, z: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """(B, N, M) log belief over the N states for each of M messages z (B, M, 64)."""
        return torch.log_softmax(self.agent_log_lik(z, means), dim=1)


class BeliefTranslator:
    def __init__(self, context: BeliefContext, pool: torch.Tensor):
        self.c, self.pool = context, pool  # pool: (M, 64) messages agents sent in self-play

    @property
    def utterances(self) -> list[str]:
        """The candidate utterances, in the order of `english_scores`' columns."""
        return [self.c.speaker.config.classes[i] for i in self.c.candidates]

    def english_scores(self, said: Said, obs: torch.Tensor) -> torch.Tensor:
        """(B, C) KL(beta(z) || beta(u)) for each candidate utterance, over the fresh states `obs`."""
        z_lik = self.c.agent_log_lik(said.z[:, None], self.c.agent_means(obs, said))
        return self.c.matcher.divergences(z_lik, self.c.english_log_lik(obs))

    def neuralese_scores(self, texts: list[str], context: Said, obs: torch.Tensor) -> torch.Tensor:
        """(B, M) KL(beta(u) || beta(z)) for each message of the pool, over the fresh states `obs`."""
        index = {c: i for i, c in enumerate(self.c.candidates)}
        cls = torch.tensor([index.get(self.c.speaker.class_of(t), 0) for t in texts])
        u_lik = self.c.english_log_lik(obs)[torch.arange(len(texts)), :, cls]
        pool = self.pool.expand(len(texts), -1, -1)
        return self.c.matcher.divergences(u_lik, self.c.agent_log_lik(pool, self.c.agent_means(obs, context)))

    def to_english(self, said: Said, state: DriveState, car: int) -> list[str]:
        best = self.english_scores(said, self.c.states(state, car)).argmin(dim=1)
        return [self.utterances[i] for i in best.tolist()]

    def to_neuralese(self, texts: list[str], context: Said, state: DriveState, car: int) -> torch.Tensor:
        return self.pool[self.neuralese_scores(texts, context, self.c.states(state, car)).argmin(dim=1)]


class DirectTranslator:
    """Co-occurrence: for a message, the utterance most often said beside its nearest agent
    messages in the same logged states; for an utterance, the mean agent message said beside it."""

    def __init__(self, speaker: HumanSpeaker, paired_z: torch.Tensor, paired_cls: torch.Tensor, k: int = 10):
        self.speaker, self.z, self.cls, self.k = speaker, paired_z, paired_cls, k
        n = len(speaker.config.classes)
        means = torch.zeros(n, paired_z.shape[1]).index_add_(0, paired_cls, paired_z)
        counts = torch.bincount(paired_cls, minlength=n).clamp(min=1)[:, None]
        overall = paired_z.mean(0, keepdim=True)
        self.means = torch.where(counts > 1, means / counts, overall)

    def to_english(self, said: Said, state: DriveState, car: int) -> list[str]:
        near = torch.cdist(said.z, self.z).topk(self.k, largest=False).indices  # (B, k)
        votes = self.cls[near]
        out = []
        for row in votes:
            counts = torch.bincount(row, minlength=len(self.speaker.config.classes))
            counts[self.speaker.class_of(OTHER)] = -1  # never a translation; all-rare neighbours give silence
            out.append(self.speaker.config.classes[int(counts.argmax())])
        return out

    def to_neuralese(self, texts: list[str], context: Said, state: DriveState, car: int) -> torch.Tensor:
        return self.means[torch.tensor([self.speaker.class_of(t) for t in texts])]


class RandomTranslator:
    def __init__(self, speaker: HumanSpeaker, pool: torch.Tensor, seed: int = 0):
        self.speaker, self.pool, self.rng = speaker, pool, np.random.default_rng(seed)
        self.candidates = [u for u in speaker.config.classes if u != OTHER]

    def to_english(self, said: Said, state: DriveState, car: int) -> list[str]:
        return [self.candidates[i] for i in self.rng.integers(len(self.candidates), size=state.batch)]

    def to_neuralese(self, texts: list[str], context: Said, state: DriveState, car: int) -> torch.Tensor:
        return self.pool[torch.from_numpy(self.rng.integers(len(self.pool), size=len(texts)))]


class SilentTranslator:
    def __init__(self, message_size: int = 64):
        self.message_size = message_size

    def to_english(self, said: Said, state: DriveState, car: int) -> list[str]:
        return [""] * state.batch

    def to_neuralese(self, texts: list[str], context: Said, state: DriveState, car: int) -> torch.Tensor:
        return torch.zeros(len(texts), self.message_size)
