"""Where a run directory keeps its translators: `RUN/translators/<channel>/<name>/`.

`translator_path` names the directory to write a translator to; `find_translator` finds one to
read, with an error that says what the run holds instead. Torch-free on purpose: the command line
resolves paths with it before (or without) loading a model, so that `neuralese --help` and the
parent process of `neuralese translate --workers N` start fast.
"""

from __future__ import annotations

import re
from pathlib import Path

DIRECTIONS = ("english", "neuralese")  # what a translation is into (`--to`)
TRANSLATORS_DIR = "translators"
DEFAULT_NAME = "belief"
CONFIG_FILE = "config.json"  # every bundle's header (translator.storage.bundle reads and writes it)
LEGACY_PAIR_FILE = "translator.json"  # the header of a seq2seq pair of bundle formats 1-2
HEADER_FILES = (CONFIG_FILE, LEGACY_PAIR_FILE)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def check_name(what: str, name: str) -> str:
    """`name` if it is a plain name (no path separators), else `ValueError`."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{what} {name!r}: expected a plain name (letters, digits, '_', '-', '.')")
    return name


def has_header(directory: Path) -> bool:
    """Whether `directory` holds a bundle (its header file is there)."""
    return any((directory / name).is_file() for name in HEADER_FILES)


def run_channels(run: str | Path, name: str = DEFAULT_NAME) -> list[str]:
    """Channels of a run that have a translator `name`: `RUN/translators/<channel>/<name>/`."""
    root = Path(run) / TRANSLATORS_DIR
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if _NAME.match(d.name) and has_header(d / name))


def channel_translators(channel_dir: Path) -> list[str]:
    """Names of the translators stored in a channel directory, sorted."""
    if not channel_dir.is_dir():
        return []
    return sorted(d.name for d in channel_dir.iterdir() if _NAME.match(d.name) and has_header(d))


def translator_path(run: str | Path, channel: str, name: str = DEFAULT_NAME) -> Path:
    """`RUN/translators/<channel>/<name>`, to write a translator to (plain names only)."""
    return Path(run) / TRANSLATORS_DIR / check_name("channel", channel) / check_name("translator", name)


def find_translator(run: str | Path, channel: str, name: str = DEFAULT_NAME) -> Path:
    """`RUN/translators/<channel>/<name>`, checked to hold a translator bundle; the error says what
    is there instead: no such channel (naming the channels the run has) or no such translator
    (naming the channel's)."""
    d = translator_path(run, channel, name)
    if has_header(d):
        return d
    if d.parent.is_dir():
        raise ValueError(
            f"channel {channel!r} has no translator {name!r} ({d} holds no translator bundle); "
            f"translators of this channel that can be served: {', '.join(channel_translators(d.parent)) or 'none'}"
        )
    have = run_channels(run, name)
    raise ValueError(
        f"unknown channel {channel!r}: {d} holds no translator bundle; "
        f"channels with a {name!r} translator in {run}: {', '.join(have) if have else 'none'}"
    )
