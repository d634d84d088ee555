"""`neuralese driving`: the driving game end to end, for the project's command line.

Importing this module is cheap: torch and the models load only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from translator.settings.checks import non_negative_int, positive_int

UPDATES = 2000  # A2C updates per agent (training.driving.a2c.A2CConfig.updates)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo/driving"), help="output directory (default runs/demo/driving)")
    p.add_argument("--data", type=Path, help="folder with train.jsonl and dev.jsonl (default: the bundled data/driving)")
    p.add_argument("--updates", type=positive_int, default=UPDATES, help=f"A2C updates per agent (default {UPDATES})")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0): fixes the whole run")
    p.add_argument("--quick", action="store_true", help="a small, fast version (smoke test; numbers mean nothing)")


def _run(args: argparse.Namespace) -> None:
    # deferred: heavy imports, loaded only when this command runs
    from translator.apps.driving.demo import run_from_args

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
