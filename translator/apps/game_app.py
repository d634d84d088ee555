"""`GameApp`: one game as the apps see it (what `evaluate`, `translate`, `serve`, `demo` and
`import-messages` need of it). Its own module, so that a game's entry can build one without
importing the registry (translator/apps/games.py) that imports every entry."""

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
