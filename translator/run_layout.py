"""Where a run directory keeps its translators: `RUN/translators/<channel>/<name>/`.

Torch-free on purpose: the command line resolves paths with it before (or without) loading a model,
so that `neuralese --help` and the parent process of `neuralese translate --workers N` start fast.
"""

from __future__ import annotations

import re
from pathlib import Path

DIRECTIONS = ("english", "neuralese")  # what a translation is into (`--to`)
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


PAIR_FILE = "translator.json"  # a seq2seq pair's marker (one model per direction under it)


def translator_dir(run: str | Path, channel: str, name: str = DEFAULT_NAME, existing: bool = True) -> Path:
    """`RUN/translators/<channel>/<name>` (plain names only). With `existing` (to read one), checked
    to hold a bundle that `Translator` serves; the error says what is there instead: no such channel
    (naming the channels the run has), no such translator (naming the channel's), or a seq2seq pair,
    which translates through its own classes only. `existing=False` to write one."""
    check_name("channel", channel)
    check_name("translator", name)
    channel_dir = Path(run) / TRANSLATORS_DIR / channel
    d = channel_dir / name
    if not existing or (d / CONFIG_FILE).is_file():
        return d
    served = _served(channel_dir)
    if (d / PAIR_FILE).is_file():
        raise ValueError(f"translator {name!r} of channel {channel!r} ({d}) is a seq2seq pair, which translate and serve "
                         f"cannot load (they serve belief and direct translators); this channel has: {', '.join(served) or 'none'}")
    if channel_dir.is_dir():
        raise ValueError(f"channel {channel!r} has no translator {name!r} ({d} holds no translator bundle); "
                         f"translators of this channel that can be served: {', '.join(served) or 'none'}")
    have = run_channels(run, name)
    raise ValueError(
        f"unknown channel {channel!r}: {d} holds no translator bundle; "
        f"channels with a {name!r} translator in {run}: {', '.join(have) if have else 'none'}"
    )


def _served(channel_dir: Path) -> list[str]:
    """Names of the translators in a channel directory that `Translator` can load (a config.json)."""
    if not channel_dir.is_dir():
        return []
    return sorted(d.name for d in channel_dir.iterdir() if _NAME.match(d.name) and (d / CONFIG_FILE).is_file())
