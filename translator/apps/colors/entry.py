"""The colour game's entry in the apps' game registry (translator/apps/games.py).

Its evaluation is `eval/evaluate.py` (a corpus CSV, or a run of several seeds); its stream reads
the colour line format (a message or an utterance with an optional context of three colours) with
the translator of one channel, in one process or several; its demo is the whole colour pipeline.
Its HTTP routes (`/v1/translate`, the play page) are the service's own (translator/apps/service.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import IO, Any

from translator.apps.game_app import GameApp, StreamFn


def recognises(path: Path) -> bool:
    """A CSV file (either layout of the corpus; the colour game also takes any file no other game claims)."""
    return path.suffix.lower() == ".csv"


def evaluate(
    run: str | Path, data: str | Path, out: str | Path, games: int | None = None, plays: str | Path | None = None, jobs: int = 1
) -> dict:
    from eval.evaluate import evaluate as evaluate_colors  # deferred: heavy import (torch)

    return evaluate_colors(run, data, out, games=games, plays=plays, jobs=jobs)


def stream(args: argparse.Namespace) -> StreamFn:
    """The channel's translator (`--channel`, `--translator`), checked before any input is read."""
    from translator.apps.stream import run_stream, run_stream_parallel
    from translator.storage.run_layout import find_translator

    if args.channel is None:
        raise ValueError("--channel is required for the colour game")
    bundle = find_translator(args.run, args.channel, args.translator)

    def translate(inp: IO[bytes], out: IO[str]) -> Any:
        if args.workers > 1:
            return run_stream_parallel(bundle, args.to, inp, out, args.workers, args.batch_size, args.max_wait_ms / 1000,
                                       args.channel, args.threads or 1)  # fmt: skip
        from translator.translate.colors.api import Translator  # deferred: heavy import (torch), only for one process

        translator = Translator.from_pretrained(bundle, args.channel)
        return run_stream(translator, args.to, inp, out, args.batch_size, args.max_wait_ms / 1000)

    return translate


def demo_steps(out: Path, data: Path, quick: bool, jobs: int, seeds: int) -> list:
    from translator.apps.demo import color_steps, seeded_steps

    corpus = data / "colors_in_context"
    return color_steps(out, corpus, quick, jobs) if seeds == 1 else seeded_steps(out, corpus, quick, jobs, seeds)


COLORS = GameApp(name="colors", recognises=recognises, evaluate=evaluate, stream=stream, demo_steps=demo_steps)
