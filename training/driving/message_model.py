"""Fit the message model of a foreign driving agent on its imported steps (`DrivingMessageModel`).

Examples are the steps of cars still driving (a done car's observation is all zeros: it says
nothing of where the car is): the speaker's observation and the message it sent. Whole episodes
are split 80 / 10 / 10 (seeded): the model is fitted by the Gaussian likelihood (mean and
per-dimension spread together, full-batch Adam) on the first part, the epoch with the best
likelihood on the second is kept, and the third is held out for the reported numbers: the model's
NLL and that of a constant Gaussian (the training messages' mean and spread, reading no
observation), the baseline it must beat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from translator.games.driving.episodes import ForeignStep
from translator.games.driving.game import observe
from translator.games.driving.message_model import DrivingMessageModel, DrivingMessageModelConfig, gaussian_log_prob
from translator.games.driving.records import to_state


@dataclass
class MessageModelArgs:
    seed: int = 0
    width: int = 64
    layers: int = 2
    epochs: int = 300
    lr: float = 3e-3
    weight_decay: float = 1e-2

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"message model: epochs >= 1, lr > 0 and weight_decay >= 0 expected, got {self}")


@dataclass
class Examples:
    obs: torch.Tensor  # (N, OBS_SIZE)
    z: torch.Tensor  # (N, D)
    episode: list[str]


def examples(steps: Sequence[ForeignStep]) -> Examples:
    """The steps of cars still driving, as (observation, message) pairs."""
    driving = [s for s in steps if not s.record.car.done]
    if not driving:
        raise ValueError("episodes: no step of a car still driving; the message model has nothing to learn from")
    obs = observe(to_state([s.record for s in driving]), 0)
    z = torch.tensor([s.record.source for s in driving], dtype=torch.float32)
    return Examples(torch.from_numpy(obs), z, [s.episode for s in driving])


def split_episodes(episodes: Sequence[str], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (fit, choose, test): about 80 / 10 / 10% of the episodes, each part whole episodes."""
    names = sorted(set(episodes))
    if len(names) < 3:
        raise ValueError(f"episodes: {len(names)} episode(s) with a car driving; at least 3 are needed (fit, choose, test)")
    order = np.random.default_rng(seed).permutation(len(names))
    n = max(1, round(0.1 * len(names)))
    part = {names[i]: 1 for i in order[:n]} | {names[i]: 2 for i in order[n : 2 * n]}
    which = np.array([part.get(e, 0) for e in episodes])
    return tuple(np.flatnonzero(which == k) for k in range(3))  # type: ignore[return-value]


def _nll(z: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> float:
    return float(-gaussian_log_prob(z, mean, log_std).mean())


def fit_message_model(steps: Sequence[ForeignStep], args: MessageModelArgs | None = None) -> tuple[DrivingMessageModel, dict]:
    """The fitted model and its report: held-out NLL (nats per message, and per dimension) of the
    model and of the constant baseline, the sizes of the three parts, the epoch kept."""
    args = args or MessageModelArgs()
    ex = examples(steps)
    fit, choose, test = split_episodes(ex.episode, args.seed)
    torch.manual_seed(args.seed)
    model = DrivingMessageModel(DrivingMessageModelConfig(ex.z.shape[1], args.width, args.layers))
    with torch.no_grad():  # start from the constant model: the mean message and its spread
        model.net[-1].bias.copy_(ex.z[fit].mean(0))
        model.log_std.copy_(ex.z[fit].std(0).clamp_min(1e-4).log())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    best, best_epoch, best_state = float("inf"), -1, None
    for epoch in range(args.epochs):
        model.train()
        opt.zero_grad()
        (-model.log_prob(ex.z[fit], ex.obs[fit]).mean()).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            chosen = float(-model.log_prob(ex.z[choose], ex.obs[choose]).mean())
        if chosen < best:
            best, best_epoch, best_state = chosen, epoch, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    d = ex.z.shape[1]
    with torch.no_grad():
        held = _nll(ex.z[test], model.means(ex.obs[test]), model.log_std)
        const_mean, const_log_std = ex.z[fit].mean(0), ex.z[fit].std(0).clamp_min(1e-4).log()
        constant = _nll(ex.z[test], const_mean.expand_as(ex.z[test]), const_log_std)
    report = {
        "held_out_nll": round(held, 4),
        "held_out_nll_per_dim": round(held / d, 4),
        "constant_nll": round(constant, 4),
        "constant_nll_per_dim": round(constant / d, 4),
        "choose_nll": round(best, 4),
        "best_epoch": best_epoch,
        "examples": {"fit": len(fit), "choose": len(choose), "test": len(test)},
        "episodes": len(set(ex.episode)),
        "mean_std": round(float(model.std.detach().mean()), 4),
        "args": asdict(args),
    }
    return model, report
