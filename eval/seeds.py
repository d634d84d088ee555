"""Metrics of a run trained with several seeds: one `metrics.json` that holds the mean over seeds.

A multi-seed run is a directory of complete runs `seed-S/` (`neuralese demo --seeds N`). The
aggregate keeps the layout of one seed's metrics so that every reader works unchanged: each number
is the mean over seeds, each list of numbers (a `ci95`) the mean of its entries, and beside every
`accuracy` (or, without one, `agreement`) `seed_spread` holds its max − min across seeds. A key
that not every seed has is left out; a value that is not a number (a file name, a gallery text)
or a list whose length differs between seeds (reliability bins) is the first seed's. `seeds` lists
each seed's own metrics with its `seed`.

The interval over games of a mean is the mean of the seeds' bootstrap intervals: a little wider
than a bootstrap of the mean itself, since the seeds' errors on the same games are correlated.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from pathlib import Path

from translator.storage.bundle import BundleError, read_json

SEED_DIR = re.compile(r"seed-(\d+)")
SPREAD_OF = ("accuracy", "agreement")  # the first of these a report holds gets a `seed_spread`


def seed_runs(run: str | Path) -> list[tuple[int, Path]]:
    """`(seed, directory)` of every `seed-S/` run inside `run` that holds English models, by seed."""
    found = []
    for d in Path(run).iterdir() if Path(run).is_dir() else []:
        m = SEED_DIR.fullmatch(d.name)
        if m and (d / "english").is_dir():
            found.append((int(m.group(1)), d))
    return sorted(found)


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _mean(values: Sequence) -> object:
    """The mean of one value across seeds (recursively for dicts and lists)."""
    first = values[0]
    if isinstance(first, dict) and all(isinstance(v, dict) for v in values):
        return _mean_dict(values)
    if isinstance(first, list) and all(isinstance(v, list) and len(v) == len(first) for v in values):
        return [_mean([v[i] for v in values]) for i in range(len(first))]
    if all(_number(v) for v in values):
        if all(isinstance(v, int) for v in values) and len(set(values)) == 1:
            return first  # a count every seed shares (rounds, games)
        return math.fsum(values) / len(values)
    return first


def _mean_dict(dicts: Sequence[dict]) -> dict:
    keys = [k for k in dicts[0] if all(k in d for d in dicts)]
    out = {k: _mean([d[k] for d in dicts]) for k in keys}
    for key in SPREAD_OF:
        values = [d.get(key) for d in dicts]
        if all(_number(v) for v in values):
            finite = [v for v in values if math.isfinite(v)]
            out["seed_spread"] = max(finite) - min(finite) if len(finite) == len(values) else float("nan")
            break
    return out


def aggregate(per_seed: Sequence[tuple[int, dict]]) -> dict:
    """One metrics dict from each seed's `(seed, metrics)`: means, `seed_spread`, and `seeds`."""
    if not per_seed:
        raise ValueError("no seeds to aggregate")
    metrics = [m for _, m in per_seed]
    out = _mean_dict(metrics)
    out["seeds"] = [{"seed": seed, **m} for seed, m in per_seed]
    return out


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def newest_mtime(directory: Path) -> float:
    """The latest modification time of any file under `directory` (0 when it has none)."""
    return max((p.stat().st_mtime for p in directory.rglob("*") if p.is_file()), default=0.0)


def is_current(metrics_path: Path, seed_run: Path, data_sha256: str, rounds: int) -> bool:
    """Whether `metrics_path` holds an evaluation of `seed_run` on the same data that is newer than
    every file of the run: then evaluating again would give the same numbers."""
    if not metrics_path.is_file():
        return False
    try:
        data = read_json(metrics_path).get("data", {})
    except (OSError, BundleError):
        return False
    same = data.get("sha256") == data_sha256 and data.get("rounds") == rounds
    return same and metrics_path.stat().st_mtime > newest_mtime(seed_run)
