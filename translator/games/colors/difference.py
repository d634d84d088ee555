"""Perceptual colour difference: HSL → sRGB → CIELAB (D65) and CIEDE2000 (Sharma et al. 2005).

Written in torch so that context sampling scores whole batches of proposals at once; the tests
check it against the colour-science library.
"""

from __future__ import annotations

import torch


def hsl_to_rgb(hsl: torch.Tensor) -> torch.Tensor:
    """HSL `(..., 3)` (0-360, 0-100, 0-100) to RGB `(..., 3)` in [0, 1]."""
    h = (hsl[..., 0] % 360) / 60.0
    s, lum = hsl[..., 1] / 100.0, hsl[..., 2] / 100.0
    c = (1 - (2 * lum - 1).abs()) * s
    x = c * (1 - (h % 2 - 1).abs())
    z = torch.zeros_like(h)
    sector = h.floor().clamp(0, 5).long()
    table = torch.stack(
        [torch.stack(v, -1) for v in ((c, x, z), (x, c, z), (z, c, x), (z, x, c), (x, z, c), (c, z, x))], dim=-2
    )  # (..., 6, 3)
    rgb = table.gather(-2, sector[..., None, None].expand(*sector.shape, 1, 3)).squeeze(-2)
    return rgb + (lum - c / 2)[..., None]


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] to CIELAB (D65)."""
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = torch.tensor(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]], dtype=rgb.dtype
    )
    xyz = lin @ m.T / torch.tensor([0.95047, 1.0, 1.08883], dtype=rgb.dtype)
    f = torch.where(xyz > 216 / 24389, xyz.clamp_min(1e-12) ** (1 / 3), (24389 / 27 * xyz + 16) / 116)
    return torch.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """CIEDE2000 colour difference between Lab colours `(..., 3)` (Sharma et al. 2005)."""
    L1, a1, b1 = lab1.unbind(-1)
    L2, a2, b2 = lab2.unbind(-1)
    cbar = (torch.hypot(a1, b1) + torch.hypot(a2, b2)) / 2
    g = 0.5 * (1 - torch.sqrt(cbar**7 / (cbar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    h1p = torch.rad2deg(torch.atan2(b1, a1p)) % 360
    h2p = torch.rad2deg(torch.atan2(b2, a2p)) % 360
    zero = c1p * c2p == 0
    dh = h2p - h1p
    dh = torch.where(dh > 180, dh - 360, torch.where(dh < -180, dh + 360, dh))
    dh = torch.where(zero, torch.zeros_like(dh), dh)
    d_l, d_c = L2 - L1, c2p - c1p
    d_h = 2 * torch.sqrt(c1p * c2p) * torch.sin(torch.deg2rad(dh) / 2)
    lbar, cbarp, hs = (L1 + L2) / 2, (c1p + c2p) / 2, h1p + h2p
    hbar = torch.where((h1p - h2p).abs() > 180, torch.where(hs < 360, (hs + 360) / 2, (hs - 360) / 2), hs / 2)
    hbar = torch.where(zero, hs, hbar)
    t = (
        1
        - 0.17 * torch.cos(torch.deg2rad(hbar - 30))
        + 0.24 * torch.cos(torch.deg2rad(2 * hbar))
        + 0.32 * torch.cos(torch.deg2rad(3 * hbar + 6))
        - 0.20 * torch.cos(torch.deg2rad(4 * hbar - 63))
    )
    dtheta = 30 * torch.exp(-(((hbar - 275) / 25) ** 2))
    rc = 2 * torch.sqrt(cbarp**7 / (cbarp**7 + 25.0**7))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / torch.sqrt(20 + (lbar - 50) ** 2)
    sc, sh = 1 + 0.045 * cbarp, 1 + 0.015 * cbarp * t
    rt = -torch.sin(torch.deg2rad(2 * dtheta)) * rc
    return torch.sqrt((d_l / sl) ** 2 + (d_c / sc) ** 2 + (d_h / sh) ** 2 + rt * (d_c / sc) * (d_h / sh))


def color_distance(hsl1: torch.Tensor, hsl2: torch.Tensor) -> torch.Tensor:
    """Perceptual (CIEDE2000) distance between HSL colours."""
    return ciede2000(rgb_to_lab(hsl_to_rgb(hsl1.double())), rgb_to_lab(hsl_to_rgb(hsl2.double()))).to(hsl1.dtype)
