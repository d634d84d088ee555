"""`split_by_game`: whole games held out, about the asked share, the same for the same seed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translator.games.split import split_by_game

game_ids = st.lists(st.sampled_from([f"g{i}" for i in range(12)]), min_size=2, max_size=60).filter(lambda g: len(set(g)) >= 2)


@settings(max_examples=200, deadline=None)
@given(ids=game_ids, fraction=st.floats(0.01, 0.99), seed=st.integers(0, 2**31 - 1))
def test_every_row_once_and_games_whole(ids, fraction, seed):
    rest, held = split_by_game(ids, fraction, seed)
    assert sorted(rest + held) == list(range(len(ids)))
    assert {ids[i] for i in rest}.isdisjoint({ids[i] for i in held})
    n_games = len(set(ids))
    assert len({ids[i] for i in held}) == max(1, round(fraction * n_games))
    assert split_by_game(ids, fraction, seed) == (rest, held)


def test_values_fixed_by_the_seed():
    ids = [f"g{i // 3}" for i in range(30)]  # 10 games of 3 rounds
    rest, held = split_by_game(ids, 0.2, seed=0)
    assert len(held) == 6 and held == sorted(held)
    assert split_by_game(ids, 0.2, seed=1) != (rest, held)


def test_one_game_is_an_error_naming_the_data():
    with pytest.raises(ValueError, match=r"pairs: cannot hold out whole games for validation from 1 game\(s\)"):
        split_by_game(["a", "a"], 0.5, what="pairs")
