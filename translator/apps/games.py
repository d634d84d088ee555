"""The games the apps know, by name: what `evaluate`, `translate`, `serve` and `demo` need of each.

A game's library side is its `Game` (translator/games/base.py); its app side is one `GameApp`
here: how to recognise its data files, evaluate a file against a run, stream-translate with a run's
translator, serve that translator over HTTP, and the demo's steps. The commands look a game up by
name (`--game`) or by its data file and never name a game themselves. The colour game is the
default: a file no other game recognises is a colour corpus. `register` adds a user's game.

Entries import their game's code inside their functions, so that `neuralese --help` and the
parser stay free of torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

StreamFn = Callable[[IO[bytes], IO[str]], Any]  # (input, output) -> `StreamStats`


@dataclass(frozen=True)
class GameApp:
    """One game as the apps see it. Required: `name`, `recognises`, `evaluate`, `stream`; the rest
    are optional (a game without them is simply not served or not in the demo)."""

    name: str
    recognises: Callable[[Path], bool]  # a data file of this game (`neuralese evaluate --data`)
    evaluate: Callable[..., dict]  # (run, data, out, games=None, plays=None, jobs=1) -> metrics, written to out
    # `translate --game NAME`: checks the arguments and loads the run's translator before any
    # input is read, and returns the function that translates the stream (translator/apps/stream.py)
    stream: Callable[[argparse.Namespace], StreamFn]
    holds: Callable[[Path], bool] | None = None  # the run holds this game's bundles (`serve`)
    served: Callable[[Path, str], Any] | None = None  # (run, translator name) -> translator with `.kind`
    routes: Callable[..., None] | None = None  # (app, translator, max_batch, describe): its HTTP routes
    demo_steps: Callable[..., list] | None = None  # (out, data folder, quick, jobs, seeds) -> demo `Step`s
    commands: Callable[[argparse._SubParsersAction], None] | None = None  # its own `neuralese` commands
    # `import-messages --game NAME`: its options on that command, and its handler (default: the colour import)
    import_options: Callable[[argparse.ArgumentParser], None] | None = None
    import_messages: Callable[[argparse.Namespace], None] | None = None


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
