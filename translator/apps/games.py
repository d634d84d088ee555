"""The games the apps know, by name: what `evaluate`, `translate`, `serve` and `demo` need of each.

A game's library side is its `Game` (translator/games/base.py); its app side is one `GameApp`
here: how to recognise its data files, evaluate a file against a run, stream-translate with a run's
translator, serve that translator over HTTP, and the demo's steps. The commands look a game up by
name (`--game`) or by its data file and never name a game themselves. The colour game is the
default: a file no other game recognises is a colour corpus. `register` adds a user's game.

An entry is a `GameApp` (translator/apps/game_app.py) in `translator/apps/<game>/entry.py`; it
imports its game's code inside its functions, so that `neuralese --help` and the parser stay free
of torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from translator.apps.game_app import GameApp, StreamFn

__all__ = ["DEFAULT", "GameApp", "StreamFn", "evaluate_file", "for_file", "get", "names", "register", "unregister"]

_GAMES: dict[str, GameApp] = {}
DEFAULT = "colors"


def register(app: GameApp, replace: bool = False) -> None:
    """Make `app` known to every command; `ValueError` when the name is taken (unless `replace`)."""
    if app.name in _GAMES and not replace:
        raise ValueError(f"game {app.name!r} is already registered")
    if not app.name or app.name == "all":
        raise ValueError(f"game name {app.name!r}: give a name other than '' and 'all'")
    _GAMES[app.name] = app


def unregister(name: str) -> None:
    """Forget a game (the built-in ones too): for tests and for a user's own game."""
    _GAMES.pop(name, None)


def names() -> tuple[str, ...]:
    """Every registered game's name, in the order of registration (the colour game first)."""
    return tuple(_GAMES)


def get(name: str) -> GameApp:
    if name not in _GAMES:
        raise ValueError(f"game {name!r}: expected one of {', '.join(_GAMES)}")
    return _GAMES[name]


def for_file(path: str | Path) -> GameApp:
    """The game whose data `path` is: the first other game that recognises it, else the colour game."""
    for app in _GAMES.values():
        if app.name != DEFAULT and app.recognises(Path(path)):
            return app
    return get(DEFAULT)


def evaluate_file(
    run: str | Path, data: str | Path, out: str | Path, games: int | None = None, plays: str | Path | None = None, jobs: int = 1
) -> dict:
    """`neuralese evaluate`: score `run` on `data` with the evaluation of the game the file belongs to."""
    return for_file(data).evaluate(run, data, out, games=games, plays=plays, jobs=jobs)


def served_games(run: str | Path, name: str) -> dict[str, Any]:
    """Each game other than the colour game whose bundles the run holds: its served translator."""
    out = {}
    for app in _GAMES.values():
        if app.name != DEFAULT and app.holds is not None and app.served is not None and app.holds(Path(run)):
            out[app.name] = app.served(Path(run), name)
    return out


def holds_other_game(run: str | Path) -> bool:
    """The run holds the bundles of a game other than the colour game (which may then be absent)."""
    return any(app.name != DEFAULT and app.holds is not None and app.holds(Path(run)) for app in _GAMES.values())


def demo_steps(game: str, out: Path, data: Path, quick: bool, jobs: int, seeds: int) -> list:
    """The demo's steps for `game` ("all": every registered game's, in the order of registration)."""
    chosen = list(_GAMES.values()) if game == "all" else [get(game)]
    return [s for app in chosen if app.demo_steps is not None for s in app.demo_steps(out, data, quick, jobs, seeds)]


def add_import_options(parser: argparse.ArgumentParser) -> None:
    """The games' own options of `import-messages` (the colour game's are the command's own)."""
    for app in _GAMES.values():
        if app.import_options is not None:
            app.import_options(parser)


def add_game_commands(sub: argparse._SubParsersAction) -> None:
    """The games' own commands (`neuralese driving`) on the CLI's sub-parsers."""
    for app in _GAMES.values():
        if app.commands is not None:
            app.commands(sub)


def _register_builtin() -> None:
    from translator.apps.colors.entry import COLORS
    from translator.apps.driving.entry import DRIVING

    register(COLORS)
    register(DRIVING)


_register_builtin()
