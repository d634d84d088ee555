"""A small logistic regression in torch: `p = sigmoid(w · standardised(x) + b)`.

The faithfulness calibrator (`translator/translate/faithfulness.py`) maps a handful of features to a
probability. Fitting is full-batch L-BFGS on the mean binary cross-entropy plus a light L2 penalty
on the weights (not the bias), on standardised features; a few thousand rows fit in well under a
second. Labels may be soft (in [0, 1]). Deterministic: no sampling anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Logistic:
    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float

    def __post_init__(self):
        n = len(self.weights)
        if len(self.mean) != n or len(self.scale) != n:
            raise ValueError(
                f"mean, scale and weights must have one entry per feature ({len(self.mean)}, {len(self.scale)}, {n})"
            )
        if any(s <= 0 for s in self.scale):
            raise ValueError("scale: every entry must be positive")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """`(N,)` log-odds of features `x (N, F)`."""
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.ndim != 2 or x.shape[1] != len(self.weights):
            raise ValueError(f"features: expected shape (N, {len(self.weights)}), got {tuple(x.shape)}")
        z = (x - torch.tensor(self.mean, dtype=torch.float64)) / torch.tensor(self.scale, dtype=torch.float64)
        return z @ torch.tensor(self.weights, dtype=torch.float64) + self.bias

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """`(N,)` probabilities, float32."""
        return torch.sigmoid(self.logits(x)).float()


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3, steps: int = 200) -> Logistic:
    """Fit `Logistic` to features `x (N, F)` and labels `y (N,)` in [0, 1]."""
    x, y = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    if x.ndim != 2 or y.shape != (len(x),) or not len(x):
        raise ValueError(f"expected features (N, F) and labels (N,), N > 0; got {tuple(x.shape)} and {tuple(y.shape)}")
    if not torch.isfinite(x).all() or not ((y >= 0) & (y <= 1)).all():
        raise ValueError("features must be finite and labels in [0, 1]")
    mean, scale = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    z = (x - mean) / scale
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    prior = y.mean().clamp(1e-4, 1 - 1e-4)
    b = torch.log(prior / (1 - prior)).clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=steps, tolerance_grad=1e-10, tolerance_change=1e-12, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return Logistic(mean.tolist(), scale.tolist(), w.detach().tolist(), float(b.detach()))
