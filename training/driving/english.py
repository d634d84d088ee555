"""Fit the English models of the drivers (speaker and behaviour-cloned driver) on training logs.

Examples are every step of every car still driving: its own observation, what its driver typed
that step, what it did, and the partner's most recent utterance before that step (what the chat
showed). 10% of the training games are held out for early stopping; dev is never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from translator.games.driving.english import (
    HumanDriver,
    HumanDriverConfig,
    HumanSpeaker,
    HumanSpeakerConfig,
    utterance_classes,
    word_vocabulary,
)
from translator.games.driving.env import N_CARS
from translator.games.driving.game import observe
from translator.games.driving.logs import LoggedGame


@dataclass
class Examples:
    obs: np.ndarray  # (N, OBS_SIZE)
    said: list[str]
    action: np.ndarray  # (N,)
    heard: list[str]  # partner's most recent non-empty utterance before the step ("" if none)


def examples(games: Sequence[LoggedGame]) -> Examples:
    obs, said, action, heard = [], [], [], []
    for g in games:
        last = ["", ""]
        for t in range(g.steps):
            state = g.state(t)
            for k in range(N_CARS):
                if not g.done[t, k]:
                    obs.append(observe(state, k)[0])
                    said.append(g.messages[t][k])
                    action.append(int(g.actions[t, k]))
                    heard.append(last[1 - k])
            last = [m if m.strip() else old for m, old in zip(g.messages[t], last)]
    return Examples(np.array(obs, np.float32), said, np.array(action), heard)


def split_games(games: Sequence[LoggedGame], held_out: float = 0.1, seed: int = 0) -> tuple[list, list]:
    order = np.random.default_rng(seed).permutation(len(games))
    n = max(1, int(round(held_out * len(games))))
    return [games[i] for i in order[n:]], [games[i] for i in order[:n]]


def _fit(model: nn.Module, loss_fn, epochs: int, lr: float = 3e-3) -> tuple[float, int]:
    """Full-batch Adam; keeps the weights of the best held-out loss. Returns (best loss, epoch)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    best, best_epoch, best_state = float("inf"), -1, None
    for epoch in range(epochs):
        model.train()
        opt.zero_grad()
        loss_fn(True).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            held = float(loss_fn(False))
        if held < best:
            best, best_epoch, best_state = held, epoch, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return best, best_epoch


def train_speaker(train: Examples, held: Examples, epochs: int = 400, seed: int = 0) -> tuple[HumanSpeaker, dict]:
    torch.manual_seed(seed)
    model = HumanSpeaker(HumanSpeakerConfig(classes=utterance_classes(train.said)))
    data = {
        True: (torch.from_numpy(train.obs), torch.tensor([model.class_of(u) for u in train.said])),
        False: (torch.from_numpy(held.obs), torch.tensor([model.class_of(u) for u in held.said])),
    }

    def loss_fn(is_train: bool) -> torch.Tensor:
        x, y = data[is_train]
        return nn.functional.nll_loss(model.log_probs(x), y)

    best, epoch = _fit(model, loss_fn, epochs)
    return model.eval(), {"held_out_nll": round(best, 4), "best_epoch": epoch, "classes": len(model.config.classes)}


def train_driver(train: Examples, held: Examples, epochs: int = 400, seed: int = 0) -> tuple[HumanDriver, dict]:
    torch.manual_seed(seed)
    model = HumanDriver(HumanDriverConfig(words=word_vocabulary(train.said)))
    data = {
        True: (torch.from_numpy(train.obs), model.bag(train.heard), torch.from_numpy(train.action)),
        False: (torch.from_numpy(held.obs), model.bag(held.heard), torch.from_numpy(held.action)),
    }

    def loss_fn(is_train: bool) -> torch.Tensor:
        x, h, y = data[is_train]
        return nn.functional.cross_entropy(model.logits(x, h), y)

    best, epoch = _fit(model, loss_fn, epochs)
    with torch.no_grad():
        x, h, y = data[False]
        acc = float((model.logits(x, h).argmax(1) == y).float().mean())
    return model.eval(), {
        "held_out_nll": round(best, 4),
        "held_out_accuracy": round(acc, 4),
        "best_epoch": epoch,
        "words": len(model.config.words),
    }
