"""`training.length_batches.LengthBatches`: every row once, batches of similar length, a seed fixes
the order and each epoch draws a new one."""

from __future__ import annotations

import pytest
import torch

from training.length_batches import LengthBatches


def test_every_row_once_in_batches_of_similar_length():
    lengths = [((i * 7) % 23) + 1 for i in range(1000)]
    batches = list(LengthBatches(lengths, 32, torch.Generator().manual_seed(0), window=4))
    assert len(batches) == len(LengthBatches(lengths, 32, torch.Generator())) == 32
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 8  # a random batch spans about 22
    assert list(LengthBatches(lengths, 32, torch.Generator().manual_seed(0), window=4)) == batches


def test_each_epoch_a_new_order_covering_everything():
    lengths = [1, 9, 2, 8, 3, 7, 4, 6, 5, 5, 1]
    s = LengthBatches(lengths, batch_size=3, generator=torch.Generator().manual_seed(0), window=2)
    epochs = [list(s) for _ in range(3)]
    for batches in epochs:
        assert len(batches) == len(s) == 4
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert len({str(e) for e in epochs}) > 1


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        LengthBatches([1, 2], 0, torch.Generator())
