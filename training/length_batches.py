"""Shuffled batches of rows of similar length, for the models that read utterances.

Utterances are short (4 pieces on average) but a few run to the 48-piece cut; padding every batch
to its longest member would make a model do several times the needed work. Each epoch shuffles all
rows, sorts each window of `window` batches by length, cuts it into batches and shuffles the
batches. Deterministic for a given generator state; a new order every epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthBatches(Sampler[list[int]]):
    """Batches of row indices of similar `lengths` (see the module's docstring)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, generator: torch.Generator, window: int = 50):
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive number, got {batch_size}")
        self.lengths = torch.as_tensor(list(lengths))
        self.batch_size, self.generator, self.window = batch_size, generator, window

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        perm = torch.randperm(len(self.lengths), generator=self.generator)
        span = self.batch_size * self.window
        out: list[list[int]] = []
        for s in range(0, len(perm), span):
            chunk = perm[s : s + span]
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)].tolist()
            out.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        for i in torch.randperm(len(out), generator=self.generator).tolist():
            yield out[i]
