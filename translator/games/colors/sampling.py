"""Fresh colour-game contexts sampled like the corpus's, with its three conditions.

Monroe et al. (2017) drew colours uniformly (lightness fixed at 50) and sorted contexts by the
CIEDE2000 distance between patches with a threshold θ = 20: *far* = all pairs at least θ apart,
*split* = the target within θ of one distractor and both at least θ from the other, *close* =
all pairs within θ. Patches closer than about 4 are not in the corpus (indistinguishable).
Agent training mixes these contexts with the corpus's; evaluation scores beliefs over them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from translator.games.colors.corpus import CONDITIONS
from translator.games.colors.difference import color_distance

THETA = 20.0
MIN_DIST = 4.0
_NEAR_HUE, _NEAR_SAT = 60.0, 60.0  # proposal for a colour near another (accepted by distance)


def _uniform_colors(n: int, g: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return torch.stack([torch.floor(u[:, 0] * 360), torch.round(u[:, 1] * 100), torch.full((n,), 50.0, dtype=torch.float64)], -1)


def _near_colors(base: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    u = torch.rand(len(base), 2, generator=g, dtype=torch.float64) * 2 - 1
    h = torch.round(base[:, 0] + _NEAR_HUE * u[:, 0]) % 360
    s = torch.round(base[:, 1] + _NEAR_SAT * u[:, 1]).clamp(0, 100)
    return torch.stack([h, s, base[:, 2]], -1)


def _propose(condition: str, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` proposals `(n, 3, 3)` with the target first, and whether each one is accepted."""
    t = _uniform_colors(n, g)
    if condition == "far":
        a, b = _uniform_colors(n, g), _uniform_colors(n, g)
    elif condition == "split":
        a, b = _near_colors(t, g), _uniform_colors(n, g)
    elif condition == "close":
        a, b = _near_colors(t, g), _near_colors(t, g)
    else:
        raise ValueError(f"condition {condition!r} is not one of {', '.join(CONDITIONS)}")
    d_ta, d_tb, d_ab = color_distance(t, a), color_distance(t, b), color_distance(a, b)
    ok = torch.stack([d_ta, d_tb, d_ab], -1) >= MIN_DIST
    if condition == "far":
        ok = ok & (torch.stack([d_ta, d_tb, d_ab], -1) >= THETA)
    elif condition == "split":
        ok = ok & (d_ta < THETA)[:, None] & (d_tb >= THETA)[:, None] & (d_ab >= THETA)[:, None]
    else:
        ok = ok & (torch.stack([d_ta, d_tb, d_ab], -1) < THETA)
    return torch.stack([t, a, b], 1).float(), ok.all(-1)


def sample_contexts(n: int, generator: torch.Generator, conditions: Sequence[str] = CONDITIONS) -> dict:
    """Fresh games: `colors` `(n, 3, 3)` in listener order, `targets`, `speaker_order`, `conditions`.

    Each game's condition is uniform over `conditions`; colours have hue uniform in [0, 360),
    saturation uniform in [0, 100] (whole numbers, like the corpus) and lightness 50. Listener and
    speaker screen orders are independent uniform permutations.
    """
    conds = [conditions[i] for i in torch.randint(len(conditions), (n,), generator=generator).tolist()]
    colors = torch.empty(n, 3, 3)
    for cond in sorted(set(conds)):  # sorted: set order varies between processes (hash seed)
        idx = [i for i, c in enumerate(conds) if c == cond]
        got: list[torch.Tensor] = []
        have = 0
        while have < len(idx):
            proposals, ok = _propose(cond, 4 * (len(idx) - have) + 16, generator)
            got.append(proposals[ok])
            have += int(ok.sum())
        colors[idx] = torch.cat(got)[: len(idx)]
    listener_order = torch.argsort(torch.rand(n, 3, generator=generator), dim=1)  # listener slot -> patch
    colors = colors.gather(1, listener_order[..., None].expand(-1, -1, 3))
    targets = (listener_order == 0).long().argmax(1)  # patch 0 is the target
    speaker_order = torch.argsort(torch.rand(n, 3, generator=generator), dim=1)
    return {"colors": colors, "targets": targets, "speaker_order": speaker_order, "conditions": conds}
