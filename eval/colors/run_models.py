"""The models of a run that evaluation loads: the English bundle and the evaluation listener (the
judge), each with an error naming the command that trains it when it is missing."""

from __future__ import annotations

from pathlib import Path

from translator.models.colors.cnn_listener import EvaluationListener
from translator.models.colors.english import EnglishModels
from translator.storage.bundle import BundleError


def load_english(run: str | Path) -> EnglishModels:
    path = Path(run) / "english"
    if not path.is_dir():
        raise BundleError(f"{run}: no English bundle at {path} (train one with `neuralese train english --out {run}`)")
    return EnglishModels.from_pretrained(path)


def eval_listener_dir(run: Path) -> Path:
    """Where the run's evaluation listener is; `BundleError` naming the command that trains it."""
    path = run / "eval_listener"
    if not (path / "config.json").is_file():
        raise BundleError(f"{run}: no evaluation listener at {path} (train one with `neuralese train eval-listener --out {run}`)")
    return path


def load_eval_listener(run: Path) -> EvaluationListener:
    return EvaluationListener.from_pretrained(eval_listener_dir(run))
