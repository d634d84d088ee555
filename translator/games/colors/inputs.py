"""Validation of the game inputs every model takes: contexts, targets, screen orders.

Each check returns a clean tensor or raises `ValueError` saying what is wrong, so that bad input
from a user (or a request) never reaches a model as a confusing shape error.
"""

from __future__ import annotations

import torch


def check_colors(colors, n: int | None = None) -> torch.Tensor:
    """HSL contexts as a `(N, 3, 3)` float tensor; `n`, when given, is the expected number of rows."""
    c = torch.as_tensor(colors, dtype=torch.float32)
    if c.ndim != 3 or c.shape[1:] != (3, 3):
        raise ValueError(f"colours: expected shape (N, 3, 3) of HSL triples, got {tuple(c.shape)}")
    if n is not None and len(c) != n:
        raise ValueError(f"colours: {len(c)} contexts for {n} rows")
    if not torch.isfinite(c).all():
        raise ValueError("colours: NaN or infinite values")
    return c


def check_targets(targets, n: int | None = None) -> torch.Tensor:
    """Target indices as a `(N,)` long tensor of values 0-2."""
    t = torch.as_tensor(targets)
    if t.ndim != 1 or (n is not None and len(t) != n):
        raise ValueError(f"targets: expected shape ({'N' if n is None else n},), got {tuple(t.shape)}")
    if torch.is_floating_point(t) and not (torch.isfinite(t).all() and (t == t.round()).all()):
        raise ValueError("targets: expected whole numbers")
    t = t.long()
    if len(t) and (t.min() < 0 or t.max() > 2):
        raise ValueError("targets: each target must be 0, 1 or 2 (a colour index)")
    return t


def check_speaker_order(order, n: int) -> torch.Tensor:
    """Speaker screen positions as a `(N, 3)` long tensor, each row a permutation of 0, 1, 2."""
    o = torch.as_tensor(order)
    if o.shape != (n, 3):
        raise ValueError(f"speaker_order: expected shape ({n}, 3), got {tuple(o.shape)}")
    if torch.is_floating_point(o) and not torch.isfinite(o).all():
        raise ValueError("speaker_order: NaN or infinite values")
    o = o.long()
    if n and not (torch.sort(o, dim=1).values == torch.arange(3)).all():
        raise ValueError("speaker_order: each row must be a permutation of 0, 1, 2")
    return o
