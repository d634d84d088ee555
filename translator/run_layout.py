"""Where a run directory keeps its translators: `RUN/translators/<channel>/<name>/`.

Torch-free on purpose: the command line resolves paths with it before (or without) loading a model,
so that `neuralese --help` and the parent process of `neuralese translate --workers N` start fast.
"""

from __future__ import annotations

import re
from pathlib import Path

DIRECTIONS = ("english", "neuralese")
TRANSLATORS_DIR = "translators"
DEFAULT_NAME = "belief"
CONFIG_FILE = "config.json"  # every bundle's config (translator.bundle uses this name)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def check_name(what: str, name: str) -> str:
    """`name` if it is a plain name (no path separators), else `ValueError`."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{what} {name!r}: expected a plain name (letters, digits, '_', '-', '.')")
    return name


def run_channels(run: str | Path, name: str = DEFAULT_NAME) -> list[str]:
    """Channels of a run that have a translator `name`: `RUN/translators/<channel>/<name>/config.json`."""
    root = Path(run) / TRANSLATORS_DIR
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if _NAME.match(d.name) and (d / name / CONFIG_FILE).is_file())


def translator_dir(run: str | Path, channel: str, name: str = DEFAULT_NAME, existing: bool = True) -> Path:
    """`RUN/translators/<channel>/<name>` (plain names only); with `existing`, checked to hold a
    bundle, the error naming the channels the run has (to read one; `existing=False` to write one)."""
    check_name("channel", channel)
    check_name("translator", name)
    d = Path(run) / TRANSLATORS_DIR / channel / name
    if existing and not (d / CONFIG_FILE).is_file():
        have = run_channels(run, name)
        raise ValueError(
            f"unknown channel {channel!r}: {d} holds no translator bundle; "
            f"channels with a {name!r} translator in {run}: {', '.join(have) if have else 'none'}"
        )
    return d
