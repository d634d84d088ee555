"""Hold out whole games, never single rounds: rounds of one game share a pair of players, so a
split by round would let what a pair says leak from training into validation. Every split of the
colour game (English models, agents, translators, message models) goes through `split_by_game`."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def split_by_game(game_ids: Sequence[str], fraction: float, seed: int = 0, what: str = "the data") -> tuple[list[int], list[int]]:
    """Row indices `(rest, held_out)`, about `fraction` of the distinct games held out whole (at
    least one), chosen by a permutation seeded with `seed`; `ValueError` naming `what` when there
    are fewer than two games."""
    games = sorted(set(game_ids))
    if len(games) < 2:
        raise ValueError(f"{what}: cannot hold out whole games for validation from {len(games)} game(s); give validation data")
    perm = torch.randperm(len(games), generator=torch.Generator().manual_seed(seed)).tolist()
    held = {games[i] for i in perm[: max(1, round(fraction * len(games)))]}
    inside = [g in held for g in game_ids]
    return [i for i, h in enumerate(inside) if not h], [i for i, h in enumerate(inside) if h]
