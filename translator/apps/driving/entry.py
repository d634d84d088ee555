"""The driving game's entry in the apps' game registry (translator/apps/games.py).

A driving file is JSON Lines of logged games (`eval/driving/run.py`); its stream and its HTTP route
(`POST /v1/driving/translate`, translator/apps/driving/service.py) read one driving record per item
with the run's `DrivingTranslator`; its demo is one step, `neuralese driving`, its own command.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import IO, Any

from translator.apps.driving.import_messages import add_driving_import_options, import_driving
from translator.apps.game_app import GameApp, StreamFn


def recognises(path: Path) -> bool:
    from eval.driving.run import is_driving_file  # deferred: heavy import (torch)

    return is_driving_file(path)


def evaluate(
    run: str | Path, data: str | Path, out: str | Path, games: int | None = None, plays: str | Path | None = None, jobs: int = 1
) -> dict:
    """The run's driving bundles scored on the logged games of `data` (`plays` and `jobs` do not apply)."""
    from eval.driving.run import evaluate_driving
    from eval.evaluate import prepare_out

    return evaluate_driving(run, data, prepare_out(out), games=games)


def stream(args: argparse.Namespace) -> StreamFn:
    """The run's driving translator (`RUN/driving` or RUN), loaded before any input is read."""
    if args.workers > 1:
        raise ValueError("--workers: the driving game translates in one process")
    from translator.apps.stream import run_stream
    from translator.translate.driving.api import DrivingTranslator  # deferred: heavy import (torch)

    translator = DrivingTranslator.from_run(args.run, args.translator)

    def translate(inp: IO[bytes], out: IO[str]) -> Any:
        return run_stream(translator, args.to, inp, out, args.batch_size, args.max_wait_ms / 1000)  # type: ignore[arg-type]

    return translate


def holds(run: Path) -> bool:
    """The run holds a driving agent and English speaker (in `RUN/driving/` or RUN), or is a
    foreign agent's import folder (`import-messages --game driving`)."""
    from translator.games.driving.imported import is_import

    if is_import(run):
        return True
    base = run / "driving" if (run / "driving" / "agents").is_dir() else run
    return (base / "agents").is_dir() and (base / "english_speaker").is_dir()


def served(run: Path, name: str) -> Any:
    """The run's driving translator: `name` when it is a driving kind, else belief."""
    from translator.games.driving.translators import KINDS
    from translator.storage.run_layout import DEFAULT_NAME
    from translator.translate.driving.api import DrivingTranslator

    return DrivingTranslator.from_run(run, name if name in KINDS else DEFAULT_NAME)


def routes(app: Any, translator: Any, max_batch: int, describe: Any) -> None:
    from translator.apps.driving.service import add_driving_routes  # deferred: only for a run with the driving game

    add_driving_routes(app, translator, max_batch, describe)


def demo_steps(out: Path, data: Path, quick: bool, jobs: int, seeds: int) -> list:
    """One step of three processes: the English models beside the talking and silent agents (seed 0 whatever `seeds`)."""
    from translator.apps.demo import Step

    argv = ["driving", "--out", f"{out}/driving", "--data", str(data / "driving")] + (["--quick"] if quick else [])
    return [Step("driving", argv, threads=None, outputs=[f"{out}/driving/metrics.json"])]


def commands(sub: argparse._SubParsersAction) -> None:
    from translator.apps.driving.cli import add_driving_commands

    add_driving_commands(sub)


DRIVING = GameApp(name="driving", recognises=recognises, evaluate=evaluate, stream=stream, holds=holds, served=served,
                  routes=routes, demo_steps=demo_steps, commands=commands,
                  import_options=add_driving_import_options, import_messages=import_driving)  # fmt: skip
