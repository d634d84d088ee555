"""The games each self-play step plays: corpus rounds in a shuffled order, epoch after epoch, and
freshly sampled contexts. Both are functions of the seed and the step (or a two-integer cursor),
so a resumed run draws exactly what an uninterrupted one would."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from accelerate import Accelerator

from translator.games.colors.corpus import Round
from translator.games.colors.sampling import sample_contexts


def fingerprint(rounds: Sequence[Round]) -> str:
    """A hash of the rounds' contexts and targets (a checkpoint resumes only on the same rounds)."""
    h = hashlib.sha1()
    for r in rounds:
        h.update(f"{r.round_id}|{r.colors}|{r.target}|{r.speaker_order}\n".encode())
    return h.hexdigest()


class CorpusStream:
    """Corpus rounds in a fresh shuffled order each epoch; the position is two integers."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch, self.cursor = n, seed, 0, 0
        self._perm: torch.Tensor | None = None

    def _permutation(self) -> torch.Tensor:
        if self._perm is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._perm = torch.randperm(self.n, generator=g)
        return self._perm

    def take(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            perm = self._permutation()
            part = perm[self.cursor : self.cursor + k]
            out.append(part)
            self.cursor += len(part)
            k -= len(part)
            if self.cursor >= self.n:
                self.epoch, self.cursor, self._perm = self.epoch + 1, 0, None
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


class FreshContexts:
    """Freshly sampled games, drawn a block of `steps_per_block` steps at a time.

    Rejection sampling has a high fixed cost per call, so blocks of steps are drawn at once. Block
    k comes from its own generator seeded with (seed, k): a step's games depend on the step alone,
    so resuming needs no sampler state.
    """

    def __init__(self, per_step: int, seed: int, steps_per_block: int = 128):
        self.per_step, self.seed, self.steps_per_block = per_step, seed, steps_per_block
        self._block, self._games = -1, {}

    def at(self, step: int) -> dict[str, torch.Tensor]:
        block, offset = divmod(step, self.steps_per_block)
        if block != self._block:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + 7_777_777 + block)
            games = sample_contexts(self.per_step * self.steps_per_block, g)
            self._block, self._games = block, {k: games[k] for k in ("colors", "targets", "speaker_order")}
        sl = slice(offset * self.per_step, (offset + 1) * self.per_step)
        return {k: v[sl] for k, v in self._games.items()}


def step_batch(
    batch_size: int,
    fresh_fraction: float,
    corpus: dict[str, torch.Tensor],
    stream: CorpusStream | None,
    fresh: FreshContexts,
    step: int,
    accelerator: Accelerator,
) -> dict[str, torch.Tensor]:
    """One step's games for this process (every process draws the global batch, keeps its part)."""
    world, rank = accelerator.num_processes, accelerator.process_index
    per = batch_size
    n_fresh = per if stream is None else round(per * fresh_fraction)
    parts = []
    if n_fresh < per:
        idx = stream.take((per - n_fresh) * world)[rank * (per - n_fresh) : (rank + 1) * (per - n_fresh)]
        parts.append({k: v[idx] for k, v in corpus.items()})
    if n_fresh:
        games = fresh.at(step)
        sl = slice(rank * n_fresh, (rank + 1) * n_fresh)
        parts.append({k: v[sl] for k, v in games.items()})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
