"""The five road maps of the driving game, with the cells where cars start and where goals are.

Each map is an 8x8 grid: '#' off-road, '.' road, 'N'/'E'/'S'/'W' a start cell (road) with the
heading a car starts in, 'G' a goal cell (road). These are the maps of the human games (every
logged game's road, starts and goals are one of these; a test checks it). Directions: 0 north,
1 east, 2 south, 3 west; row numbers grow southwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 8
HEADINGS = "NESW"
# (row, col) step of one cell forward for each heading.
DELTAS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)

_TEMPLATES = (
    # 0: four-way crossing, two-lane roads both ways
    "##.G####|##S.####|##..####|G.....W.|.E.....G|####..##|####.N##|####G.##",
    # 1: T-junction with a one-lane southern road
    "####G###|####.###|####.###|G.....W.|.E.....G|####.###|####N###|####.###",
    # 2: three-way junction, no eastern road
    "###.G###|###S.###|###..###|G....###|.E...###|###..###|###.N###|###G.###",
    # 3: four-way crossing, vertical road at columns 3-4
    "###.G###|###S.###|###..###|G.....W.|.E.....G|###..###|###.N###|###G.###",
    # 4: a three-lane road northwards
    "##GGG###|##...###|##...###|##...###|##...###|##...###|##NNN###|##...###",
)


@dataclass(frozen=True)
class RoadMap:
    """One map: road mask, start cells with headings, goal cells."""

    map_id: int
    road: np.ndarray  # (8, 8) bool
    starts: tuple[tuple[int, int, int], ...]  # (row, col, heading)
    goals: tuple[tuple[int, int], ...]


def _parse(map_id: int, text: str) -> RoadMap:
    rows = text.split("|")
    assert len(rows) == SIZE and all(len(r) == SIZE for r in rows), text
    road = np.array([[ch != "#" for ch in row] for row in rows])
    starts = tuple((r, c, HEADINGS.index(ch)) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch in HEADINGS)
    goals = tuple((r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch == "G")
    return RoadMap(map_id, road, starts, goals)


MAPS: tuple[RoadMap, ...] = tuple(_parse(i, t) for i, t in enumerate(_TEMPLATES))
ROADS = np.stack([m.road for m in MAPS])  # (5, 8, 8) bool


def map_id_of(road: np.ndarray) -> int | None:
    """The id of the map whose road mask is `road` (8x8 of 0/1), or None."""
    road = np.asarray(road) > 0.5
    for m in MAPS:
        if np.array_equal(m.road, road):
            return m.map_id
    return None
