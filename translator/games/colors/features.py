"""Colour features for the colour reference game.

Colours arrive as HSL (hue 0-360, saturation and lightness 0-100). A network needs features in
which hue is circular (359 and 1 are neighbours), so we use the Fourier features of Monroe et al.
(2017): cos/sin of integer combinations of hue, saturation and lightness. Hue enters with a full
turn (2π) per integer frequency, so every feature is periodic in hue with period 360.
"""

from __future__ import annotations

import colorsys
import math
from itertools import product

import torch

# Frequencies (hue, saturation, lightness); 27 combinations, each giving a cos and a sin.
_FREQS = torch.tensor(list(product(range(3), repeat=3)), dtype=torch.float32)

COLOR_DIM = 2 * len(_FREQS)


def color_features(hsl: torch.Tensor) -> torch.Tensor:
    """Map HSL colours `(..., 3)` to Fourier features `(..., COLOR_DIM)`."""
    h = hsl[..., 0:1] / 360.0
    s = hsl[..., 1:2] / 100.0
    lum = hsl[..., 2:3] / 100.0
    freqs = _FREQS.to(hsl.device)
    # Hue gets 2π (circular); saturation and lightness live on [0, 1] and need no wrap-around.
    phase = 2 * math.pi * h * freqs[:, 0] + math.pi * (s * freqs[:, 1] + lum * freqs[:, 2])
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


def hsl_to_rgb(h: float, s: float, lum: float) -> tuple[float, float, float]:
    """HSL (0-360, 0-100, 0-100) to RGB in [0, 1], for drawing swatches in reports."""
    return colorsys.hls_to_rgb((h % 360) / 360.0, lum / 100.0, s / 100.0)


class ContextEncoder(torch.nn.Module):
    """Encode each of the three colours *together with the other two*.

    Comparatives ("the darker blue") only make sense relative to the other patches, so colour i is
    encoded as an MLP of (i, j, k), averaged over the two orders of the other two: the result does
    not depend on how the distractors happen to be ordered.
    """

    def __init__(self, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(3 * COLOR_DIM, hidden),
            torch.nn.GELU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, hidden),
            torch.nn.GELU(),
        )

    def forward(self, hsl: torch.Tensor) -> torch.Tensor:
        """`(B, 3, 3)` HSL colours to `(B, 3, hidden)`."""
        f = color_features(hsl)
        x = f[:, _ORDERS.to(f.device)].flatten(2)  # (B, 6, 3F): all six orders, one MLP call
        return self.mlp(x).unflatten(1, (3, 2)).mean(2)

    def encode_one(self, hsl: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """`forward(hsl)[b, index[b]]`, `(B, hidden)`, running only the two orders that colour needs."""
        f = color_features(hsl)
        rows = _ORDERS.to(f.device).view(3, 2, 3)[index]  # (B, 2, 3): colour index[b] first
        x = f.gather(1, rows.flatten(1)[..., None].expand(-1, -1, f.shape[-1])).view(len(f), 2, -1)
        return self.mlp(x).mean(1)


# Colour i followed by the other two in both orders: rows 2i and 2i + 1.
_ORDERS = torch.tensor([(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)])
