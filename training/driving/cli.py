"""`neuralese driving`: the driving game end to end, for the project's command line.

Wiring (in translator/cli.py, after `add_live_commands(sub)`):
    from training.driving.cli import add_driving_commands
    add_driving_commands(sub)
Importing this module is cheap: torch and the models load only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "driving"
UPDATES = 800  # A2C updates per agent (training.driving.a2c.A2CConfig.updates)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo/driving"), help="output directory (default runs/demo/driving)")
    p.add_argument("--data", type=Path, default=DATA_DIR, help="folder with train.jsonl and dev.jsonl")
    p.add_argument("--updates", type=int, default=UPDATES, help=f"A2C updates per agent (default {UPDATES})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a small, fast version (smoke test; numbers mean nothing)")


def _run(args: argparse.Namespace) -> None:
    from training.driving.demo import run_from_args

    run_from_args(args)


def add_driving_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "driving",
        help="the driving game: replay check, English models, agents, translators, evaluation",
        description="Train everything for the driving game on data/driving/train.jsonl and evaluate on dev.jsonl "
        "(writes OUT/metrics.json and the bundles).",
    )
    add_arguments(p)
    p.set_defaults(func=_run)
