"""Transplanted contexts: each message (and each utterance) read in another round's context.

In its own round a translation can be right by recovering the agent's target and describing it,
without carrying what the message says (`eval.colors.blind` does exactly that). Read in another round's
context (round `i` in that of `perm[i]`, a seeded random cycle, so no round keeps its own), the
original target means nothing and what is left is what the message says about colours:

- R→H agreement: the evaluation listener's pick from the translation equals the agent listener's
  pick from the message, both in the transplanted context;
- H→R agreement: the agent listener's pick from the translated message equals the evaluation
  listener's pick from the utterance (`consulted_agreement`: with `H_l`, an optimistic reference).

In-context translators translate in the transplanted context; context-free ones are unchanged.
Conditions are the transplanted contexts'; intervals resample the games of the source rounds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from translator.games.accuracy import agreement_report
from translator.models.colors.english import EnglishModels

SEED = 0


def transplant_permutation(n: int, seed: int = SEED) -> np.ndarray:
    """`perm[i]`: the round whose context round `i`'s source is read in. A uniformly random single
    cycle through all rounds, so no round is mapped to itself (unless there is only one)."""
    order = np.random.default_rng(seed).permutation(n)
    perm = np.empty(n, dtype=np.int64)
    perm[order] = np.roll(order, -1)
    return perm


class ListenerPicks:
    """The evaluation listener's pick from each row's text in the row's context, each distinct
    `(row, text)` read once (translators often agree)."""

    def __init__(self, eval_listener, colors: torch.Tensor):
        self.eval_listener, self.colors = eval_listener, colors
        self._done: dict[tuple[int, str], int] = {}

    def __call__(self, texts: list[str]) -> torch.Tensor:
        todo = [i for i, t in enumerate(texts) if (i, t) not in self._done]
        if todo:
            picked = self.eval_listener.listen([texts[i] for i in todo], self.colors[torch.tensor(todo)]).argmax(-1)
            self._done.update({(i, texts[i]): int(p) for i, p in zip(todo, picked)})
        return torch.tensor([self._done[(i, t)] for i, t in enumerate(texts)], dtype=torch.long)


@dataclass
class Transplant:
    """One channel's evaluation rounds, each with the context its source is read in and the
    reference picks there. `usable`: rows whose utterance the English side can read (H→R)."""

    perm: torch.Tensor  # (N,)
    colors: torch.Tensor  # (N, 3, 3)
    conditions: list[str]
    games: list[str]
    usable: torch.Tensor  # (N,) bool
    agent_picks: torch.Tensor  # (N,): the agent listener, from each round's message
    english_picks: torch.Tensor  # (usable,): the evaluation listener, from each usable utterance
    consulted_picks: torch.Tensor  # (usable,): the consulted English listener, the same
    picks: ListenerPicks

    @classmethod
    def build(cls, ds: dict, messages: torch.Tensor, colors: torch.Tensor, usable: torch.Tensor, agents,
              english: EnglishModels, eval_listener, seed: int = SEED) -> Transplant:
        perm = torch.from_numpy(transplant_permutation(len(messages), seed))
        moved = colors[perm]
        texts = [t for t, u in zip(ds["utterance"], usable.tolist()) if u]
        return cls(
            perm=perm, colors=moved, conditions=[ds["condition"][j] for j in perm.tolist()], games=list(ds["game_id"]),
            usable=usable, agent_picks=agents.listen(messages, moved).argmax(-1),
            english_picks=eval_listener.listen(texts, moved[usable]).argmax(-1),
            consulted_picks=english.listen(texts, moved[usable]).argmax(-1), picks=ListenerPicks(eval_listener, moved),
        )  # fmt: skip

    def to_english(self, texts: list[str]) -> dict:
        """R→H agreement of translations made for (or regardless of) the transplanted contexts."""
        return agreement_report((self.picks(texts) == self.agent_picks).tolist(), self.conditions, self.games)

    def to_neuralese(self, messages: torch.Tensor, agents) -> dict:
        """H→R agreement of messages translated from the usable utterances."""
        picked = agents.listen(messages, self.colors[self.usable]).argmax(-1)
        keep = self.usable.tolist()
        cond = [c for c, u in zip(self.conditions, keep) if u]
        games = [g for g, u in zip(self.games, keep) if u]
        report = agreement_report((picked == self.english_picks).tolist(), cond, games)
        report["consulted_agreement"] = float((picked == self.consulted_picks).float().mean()) if len(picked) else float("nan")
        return report
