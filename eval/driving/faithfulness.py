"""How well the driving faithfulness probability predicts errors, on held-out games (dev).

For each translator (belief as the Python API translates, direct, random, silent) the R→H and H→R
episodes are played on the games' starts with that translator, and each heard message gives a row:
the probability from the run's faithfulness models and the label, as defined for fitting
(`translator/translate/driving/faithfulness_rows.py`). `metrics.json` holds under
`driving.faithfulness.<direction>`: the report over every translator's rows with the partner car
known (`in_context`) and without it (`context_free`), per translator, the cheating baselines (the
held-out prior as a constant; the held-out rate of silent and spoken rows, "silence only"; the
divergence alone, for its AUROC), and `translation_matters`: the share of belief-played states
where the four translations do not all get the same label (where a translation can be wrong at all).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from eval.faithfulness import auroc, binary_ece, faithfulness_report
from translator.games.driving.agents import DrivingAgent
from translator.games.driving.english import HumanDriver
from translator.games.driving.logs import LoggedGame
from translator.translate.driving.faithfulness import FEATURES, DrivingFaithfulness
from translator.translate.driving.faithfulness_rows import (
    BELIEF,
    english_of,
    english_rows,
    neuralese_of,
    neuralese_rows,
)

KINDS = ("belief", "direct", "random", "silent")


def _rows(direction: str, played: str, translators: dict, agent, driver, games, seed: int, extras: bool) -> dict:
    b = translators[BELIEF]
    if direction == "to_english":
        others = {n: english_of(t) for n, t in translators.items() if n != BELIEF and (extras or n == played)}
        return english_rows(b, agent, driver, games, played, others, seed)
    others = {n: neuralese_of(t) for n, t in translators.items() if n != BELIEF and (extras or n == played)}
    return neuralese_rows(b, agent, driver, games, played, others, seed)


def _auroc_ci(prob: np.ndarray, label: np.ndarray, games: np.ndarray, samples: int = 200, seed: int = 0) -> list[float] | None:
    """95% interval of the AUROC, resampling whole games."""
    ids = np.unique(games)
    rng = np.random.default_rng(seed)
    where = {g: np.flatnonzero(games == g) for g in ids}
    values = []
    for _ in range(samples):
        rows = np.concatenate([where[g] for g in rng.choice(ids, size=len(ids))])
        a = auroc(prob[rows], label[rows])
        if a is not None:
            values.append(a)
    return [round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)] if values else None


def _baselines(model: DrivingFaithfulness, direction: str, x: torch.Tensor, y: np.ndarray) -> dict:
    rates = model.baselines[direction]
    prior = np.full(len(y), rates["prior"])
    silent = ((x[:, FEATURES.index("source_silent")] > 0) | (x[:, FEATURES.index("translation_silent")] > 0)).numpy()
    silence = np.where(silent, rates["silent"], rates["spoken"])
    divergence = -x[:, FEATURES.index("log1p_divergence")].numpy()
    return {
        "prior": {"auroc": auroc(prior, y), "ece": binary_ece(prior, y), "probability": rates["prior"]},
        "silence": {"auroc": auroc(silence, y), "ece": binary_ece(silence, y), "silent_rows": float(silent.mean())},
        "divergence": {"auroc": auroc(divergence, y)},
    }


def _matters(rows: dict) -> float:
    """Share of states (aligned rows) whose label differs between the translations read there."""
    labels = torch.stack([r.tensors()[1] for r in rows.values()], 1)
    return float((labels.any(1) & ~labels.all(1)).float().mean()) if len(labels) else 0.0


def driving_faithfulness(
    model: DrivingFaithfulness,
    translators: dict,
    agent: DrivingAgent,
    driver: HumanDriver,
    games: Sequence[LoggedGame],
    seed: int = 0,
) -> dict:
    """`{"driving.faithfulness.to_english": ..., "driving.faithfulness.to_neuralese": ...}` on `games`."""
    out = {}
    for direction in ("to_english", "to_neuralese"):
        xs, ys, gs, by = [], [], [], {}
        for name in KINDS:
            rows = _rows(direction, name, translators, agent, driver, games, seed, extras=name == BELIEF)
            x, y, g = rows[name].tensors()
            prob = model.probability(direction, x).numpy()
            m = model.get(direction, True)
            by[name] = {
                **faithfulness_report(prob, y.numpy(), m.threshold, m.precision),
                "rows": len(y),
                "agreement": float(y.float().mean()),
            }
            if name == BELIEF:
                matters = _matters(rows)
            xs.append(x), ys.append(y.numpy()), gs.append(g)
        x, y, g = torch.cat(xs), np.concatenate(ys), np.concatenate(gs)
        report = {}
        for mode, inside in (("in_context", True), ("context_free", False)):
            prob = model.probability(direction, x, torch.full((len(y),), inside)).numpy()
            m = model.get(direction, inside)
            report[mode] = {
                **faithfulness_report(prob, y, m.threshold, m.precision),
                "ci95_auroc": _auroc_ci(prob, y, g, seed=seed),
            }
        out[f"driving.faithfulness.{direction}"] = {
            **report["in_context"],
            "context_free": report["context_free"],
            "by_translator": by,
            "baselines": _baselines(model, direction, x, y),
            "translation_matters": round(matters, 4),
            "rows": len(y),
            "agreement": float(y.mean()),
            "games": len(games),
        }
    return out


def table(metrics: dict) -> str:
    """The faithfulness lines of a driving evaluation ("" when it has none)."""
    if not any(key.startswith("driving.faithfulness.") for key in metrics):
        return ""
    rows = [f"{'':34s} {'auroc':>6s} {'ece':>6s} {'cf auroc':>8s} {'prior':>6s} {'silence':>7s} {'flag acc':>8s} {'unflag':>6s}"]
    for key, m in metrics.items():
        if key.startswith("driving.faithfulness."):
            f = lambda v: "  none" if v is None else f"{v:6.3f}"  # noqa: E731
            base = m["baselines"]
            rows.append(
                f"{key:34s} {f(m['auroc'])} {f(m['ece'])} {f(m['context_free']['auroc']):>8s} {f(base['prior']['auroc'])} "
                f"{f(base['silence']['auroc']):>7s} {f(m['accuracy_flagged']):>8s} {f(m['accuracy_unflagged'])}"
            )
    return "\n".join(rows)
