"""Where the bundled corpora are: `data/` of the source tree, installed as package data
(`translator.data`), so that an installed package finds them as an editable one does."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def bundled(*parts: str) -> Path:
    """Path of a bundled file or folder, e.g. `bundled("colors_in_context", "dev.csv")`; `bundled()`: the data folder."""
    path = Path(str(files("translator.data").joinpath(*parts)))
    if not path.exists():
        raise FileNotFoundError(f"bundled data {'/'.join(parts)!r} is not installed (looked in {path.parent})")
    return path
