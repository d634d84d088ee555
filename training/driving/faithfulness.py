"""Fit the driving faithfulness models on held-out *training* games (never the evaluated games).

The training logs are split by game (`split_games`, a quarter held out, as
`bench/driving_translation_probe.py` splits them): the direct translator's paired corpus is built
from the rest; every held-out game is played twice per direction with the belief translator
(translating as the Python API does), and each heard message gives one labelled row per
translator (belief, direct, random, silent) read in the same state, so that the models also cover
what the other translators say (`translator/translate/driving/faithfulness_rows.py`). One logistic
regression per direction and mode; the `faithful` threshold is chosen on the belief translator's
own rows for `PRECISION`. Labels and features: docs/metrics.md ("Driving faithfulness").
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from training.driving.english import split_games
from training.faithfulness import threshold_for_precision
from translator.games.driving.agents import DrivingAgent
from translator.games.driving.english import HumanDriver, HumanSpeaker
from translator.games.driving.logs import LoggedGame, read_logs
from translator.games.driving.translators import build_translators, driving_dir, run_info
from translator.models.logistic import fit_logistic
from translator.translate.driving.faithfulness import FEATURES, FOLDER, PRECISION, DrivingFaithfulness
from translator.translate.driving.faithfulness_rows import (
    BELIEF,
    Rows,
    english_of,
    english_rows,
    neuralese_of,
    neuralese_rows,
)
from translator.translate.faithfulness import FlagModel

LABELS = (
    "One step, in the listening car's state: R→H, the model-human driver's action hearing the English equals the "
    "agent's action (in that seat) hearing the message; H→R, the agent's action hearing the translated message equals "
    "the model-human driver's action hearing the utterance. Held-out training games."
)
OTHERS = ("direct", "random", "silent")


@dataclass
class DrivingFaithfulnessArgs:
    held_out: float = 0.25  # share of the training games whose episodes give the labels
    precision: float = PRECISION
    l2: float = 1e-3
    seed: int = 0


def fit_direction(rows: dict[str, Rows], precision: float, l2: float) -> tuple[dict[str, FlagModel], dict[str, float]]:
    """The in-context and context-free models of one direction, and its baseline rates."""
    parts = [rows[name].tensors() for name in rows]
    x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    own_x, own_y, _ = rows[BELIEF].tensors()
    models = {}
    for mode, cols in (("in_context", x.shape[1]), ("context_free", len(FEATURES))):
        logistic = fit_logistic(x[:, :cols], y.double(), l2)
        prob = logistic.predict(own_x[:, :cols])
        models[mode] = FlagModel(logistic, threshold_for_precision(prob, own_y, precision), precision, len(own_y))
    silent = (x[:, FEATURES.index("source_silent")] > 0) | (x[:, FEATURES.index("translation_silent")] > 0)
    rate = lambda m: float(y[m].float().mean()) if m.any() else float(y.float().mean())  # noqa: E731
    return models, {"prior": float(y.float().mean()), "silent": rate(silent), "spoken": rate(~silent)}


def fit_driving_faithfulness(
    agent: DrivingAgent,
    speaker: HumanSpeaker,
    driver: HumanDriver,
    train_games: Sequence[LoggedGame],
    args: DrivingFaithfulnessArgs | None = None,
) -> DrivingFaithfulness:
    """The models of both directions from a held-out share of `train_games`."""
    args = args or DrivingFaithfulnessArgs()
    torch.manual_seed(args.seed)
    fit, held = split_games(train_games, held_out=args.held_out, seed=args.seed)
    trs = build_translators(agent, speaker, fit, args.seed)
    b = trs[BELIEF]
    english = english_rows(b, agent, driver, held, BELIEF, {n: english_of(trs[n]) for n in OTHERS}, args.seed)
    neuralese = neuralese_rows(b, agent, driver, held, BELIEF, {n: neuralese_of(trs[n]) for n in OTHERS}, args.seed)
    models, baselines, training = {}, {}, {"games": len(held), "seed": args.seed, "held_out": args.held_out}
    for direction, rows in (("to_english", english), ("to_neuralese", neuralese)):
        models[direction], baselines[direction] = fit_direction(rows, args.precision, args.l2)
        training[direction] = {
            "rows": sum(len(r.tensors()[1]) for r in rows.values()),
            "belief_rows": len(rows[BELIEF].tensors()[1]),
        }
    return DrivingFaithfulness(models, LABELS, baselines, training)


def train_faithfulness(
    out: Path,
    agent: DrivingAgent,
    speaker: HumanSpeaker,
    driver: HumanDriver,
    train_games: Sequence[LoggedGame],
    args: DrivingFaithfulnessArgs | None = None,
) -> DrivingFaithfulness:
    """Fit and save the bundle under `out/faithfulness` (a run's driving folder)."""
    model = fit_driving_faithfulness(agent, speaker, driver, train_games, args)
    model.save_pretrained(out / FOLDER)
    return model


def main(argv: list[str] | None = None) -> None:
    """`python -m training.driving.faithfulness --run RUN`: fit and save the bundle of a trained run."""
    p = argparse.ArgumentParser(description="Fit a driving run's faithfulness models on held-out training games.")
    p.add_argument("--run", required=True, type=Path, help="a run (RUN/driving/ or RUN holding the driving bundles)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    base = driving_dir(a.run, ("agents", "english_speaker", "english_driver"))
    info = run_info(base)
    model = train_faithfulness(
        base,
        DrivingAgent.from_pretrained(base / "agents"),
        HumanSpeaker.from_pretrained(base / "english_speaker"),
        HumanDriver.from_pretrained(base / "english_driver"),
        read_logs(info.train),
        DrivingFaithfulnessArgs(seed=info.seed),
    )
    print({"out": str(base / FOLDER), "training": model.training, "baselines": model.baselines})


if __name__ == "__main__":
    main()
