"""Temperature scaling (Guo et al. 2017): one scalar that makes a classifier's probabilities honest.

A temperature fitted on a handful of rounds says nothing (one misclassified round drives it to
thousands: uniform probabilities), so `calibrate` fits one only on `MIN_ROUNDS` held-out rounds or
more, keeps it within `T_RANGE`, and says why when it does not use the fitted value.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

MIN_ROUNDS = 100  # held-out rounds needed to fit a temperature
T_RANGE = (0.05, 20.0)  # beyond these the probabilities are all but one-hot or uniform


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 200) -> float:
    """The temperature `T > 0` minimising the NLL of `softmax(logits / T)` on held-out data."""
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")
    logits, labels = logits.detach().float(), labels.detach()

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.exp().item())


def calibrate(logits: torch.Tensor, labels: torch.Tensor, what: str = "listener") -> tuple[float, str]:
    """`(temperature, how it was chosen)`: fitted on the held-out rounds given, when there are at
    least `MIN_ROUNDS`, and clamped into `T_RANGE`; else 1 (uncalibrated). Warns unless fitted as is."""
    n, (lo, hi) = len(labels), T_RANGE
    if n < MIN_ROUNDS:
        note = f"not calibrated: {n} validation round(s), fewer than the {MIN_ROUNDS} a temperature needs; temperature 1"
        warnings.warn(f"{what}: {note} (give more games, or a --dev file)", stacklevel=2)
        return 1.0, note
    t = fit_temperature(logits, labels)
    if lo <= t <= hi:
        return t, f"fitted on {n} validation rounds"
    clamped = min(max(t, lo), hi)
    note = f"fitted on {n} validation rounds: {t:.4g}, outside [{lo:g}, {hi:g}], clamped to {clamped:g}"
    warnings.warn(f"{what}: {note}", stacklevel=2)
    return clamped, note
