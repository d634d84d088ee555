"""Fit `p(m | c, x)` of agents known only through a collected corpus (`LearnedMessageModel`).

The corpus is a collection (`translator.translate.colors.collection`, or `training.colors.import_messages` for agents built
elsewhere): columns `colors` (listener order), `target`, `message` and `game_id`. Whole games are
held out for validation (10% by default, `translator.games.split.split_by_game`); the
model is trained by maximum likelihood with early stopping on the validation NLL
(`training.loop.fit`, so it runs under `accelerate` on a CPU or GPUs alike).

- continuous: the mean `μ(c, x)` minimises the squared error (the Gaussian MLE of the mean for any
  fixed σ); afterwards σ is the MLE of the residual std on the validation games;
- discrete: teacher-forced NLL of the symbols, EOS included.

`compare_beliefs` measures how close a model's beliefs come to a reference's (the exact model of
our own agents); the numbers are in `translator/models/colors/learned_speaker.py`'s docstring.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, TensorDataset

from training.loop import fit
from translator.games.colors.corpus import load_rounds
from translator.games.colors.inputs import check_colors, check_targets
from translator.games.split import split_by_game
from translator.models.channels import ChannelConfig, check_message
from translator.models.colors.agents import Agents
from translator.models.colors.learned_speaker import LearnedMessageModel, LearnedSpeakerConfig
from translator.models.colors.message_model import ExactMessageModel, beliefs_from_log_probs, row_log_probs
from translator.translate.colors.collection import collect

REQUIRED_COLUMNS = ("colors", "target", "message", "game_id")


@dataclass
class LearnedSpeakerArgs:
    seed: int = 0
    color_dim: int = 128
    hidden_dim: int = 128
    batch_size: int = 256
    lr: float = 3e-3
    max_epochs: int = 12  # the cosine schedule spans these; early stopping may end sooner
    patience: int = 3
    val_fraction: float = 0.1  # of the corpus's games, held out for early stopping and σ
    max_steps: int | None = None  # cap on optimiser steps, for quick tests

    def __post_init__(self):
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            raise ValueError("batch_size, max_epochs and patience must be >= 1")


def corpus_tensors(dataset, channel: ChannelConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(colors (N, 3, 3), targets (N,), messages)` of a collected corpus, checked against `channel`."""
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise ValueError(f"corpus: missing column(s) {', '.join(missing)}; a collected corpus has {', '.join(REQUIRED_COLUMNS)}")
    if len(dataset) == 0:
        raise ValueError("corpus: no rounds")
    try:
        colors = check_colors(_column(dataset, "colors"))
        targets = check_targets(_column(dataset, "target"), len(colors))
        raw = _column(dataset, "message")
        if raw.dtype == object:  # messages of different lengths
            rows = [np.asarray(r).reshape(-1) for r in raw]
            if not channel.discrete:
                raise ValueError(f"messages: the continuous channel expects {channel.dim} numbers per message, "
                                 f"got lengths {sorted({len(r) for r in rows})}")
            width = max(len(r) for r in rows)
            raw = np.stack([np.pad(r, (0, width - len(r))) for r in rows])  # pad with EOS (0)
        messages = check_message(channel, raw, len(colors))
    except ValueError as e:
        raise ValueError(f"corpus: {e}") from None
    return colors, targets, messages


def _column(dataset, name: str) -> np.ndarray:
    """A column as one numpy array (fast; `torch.as_tensor` on nested lists is not)."""
    return np.asarray(dataset.with_format("numpy")[name][:])


def _loss(model: LearnedMessageModel, batch) -> torch.Tensor:
    """Mean NLL of a batch up to constants: squared error of standardised messages (continuous)."""
    colors, targets, messages = batch
    h = model.hidden(colors, targets)
    if model.channel.discrete:
        return -model.channel_module.log_prob(h, messages).mean()
    goal = (messages - model.offset) / model.scale
    return ((model.standardized_mean(h) - goal) ** 2).mean()


@torch.no_grad()
def _residual_ms(model: LearnedMessageModel, colors, targets, messages, batch_size: int = 4096) -> float:
    """Continuous: mean over rounds and dimensions of `(m - μ(c, x))²`, in message units."""
    model.eval()
    dev = model.device
    total = 0.0
    for s in range(0, len(targets), batch_size):
        sl = slice(s, s + batch_size)
        mu = model.mean(model.hidden(colors[sl].to(dev), targets[sl].to(dev)))
        total += ((messages[sl].to(dev) - mu) ** 2).sum().item()
    return total / messages.numel()


@torch.no_grad()
def _discrete_nll(model: LearnedMessageModel, colors, targets, messages, batch_size: int = 4096) -> float:
    """Discrete: mean `-log p(m | c, x)` per round, in nats."""
    model.eval()
    dev = model.device
    total = 0.0
    for s in range(0, len(targets), batch_size):
        sl = slice(s, s + batch_size)
        h = model.hidden(colors[sl].to(dev), targets[sl].to(dev))
        total -= model.channel_module.log_prob(h, messages[sl].to(dev)).sum().item()
    return total / len(targets)


def gaussian_nll(mean_square: float, dim: int) -> float:
    """NLL per message of an isotropic Gaussian whose σ² is the MLE `mean_square`: `dim/2 · log(2πe σ²)`."""
    return 0.5 * dim * (math.log(2 * math.pi * max(mean_square, 1e-300)) + 1)


def fit_message_model(
    dataset,
    channel: ChannelConfig | dict,
    args: LearnedSpeakerArgs | None = None,
    accelerator: Accelerator | None = None,
) -> LearnedMessageModel:
    """Fit `p(m | c, x)` to a collected corpus (a `datasets.Dataset`); returns the model on the CPU.

    `channel` says how to read the `message` column (continuous `(N, dim)` floats; discrete
    `(N, L)` symbol ids, L <= max_len). Validation: `args.val_fraction` of the games, by `game_id`.
    The same seed, corpus and arguments give the same weights.
    """
    args = args or LearnedSpeakerArgs()
    channel = ChannelConfig.from_dict(channel)
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    start = time.perf_counter()
    colors, targets, messages = corpus_tensors(dataset, channel)
    train_idx, val_idx = split_by_game([str(g) for g in dataset["game_id"]], args.val_fraction, seed=args.seed, what="corpus")
    tr = [t[train_idx] for t in (colors, targets, messages)]
    va = [t[val_idx] for t in (colors, targets, messages)]

    set_seed(args.seed)
    model = LearnedMessageModel(LearnedSpeakerConfig(channel, args.color_dim, args.hidden_dim))
    if not channel.discrete:
        # standardise: per-dimension offset, one scale (keeps the Gaussian isotropic)
        offset = tr[2].mean(0)
        scale = ((tr[2] - offset) ** 2).mean().sqrt().clamp_min(1e-8)
        model.offset.copy_(offset)
        model.scale.copy_(scale)

    def validate(m: LearnedMessageModel) -> dict[str, float]:
        if channel.discrete:
            return {"val_nll": _discrete_nll(m, *va)}
        ms = _residual_ms(m, *va)
        return {"val_nll": gaussian_nll(ms, channel.dim), "val_noise": math.sqrt(ms)}

    g = torch.Generator().manual_seed(args.seed)
    loader = DataLoader(TensorDataset(*tr), batch_size=args.batch_size, shuffle=True, generator=g)
    result = fit(model, loader, _loss, validate, "val_nll", False, accelerator, lr=args.lr, max_epochs=args.max_epochs,
                 patience=args.patience, max_steps=args.max_steps, desc=f"message model ({channel.kind})")
    model = accelerator.unwrap_model(model).cpu().eval()

    stats: dict[str, float] = {}
    if not channel.discrete:
        val_ms, train_ms = _residual_ms(model, *va), _residual_ms(model, *tr)
        model.config.noise = max(math.sqrt(val_ms), 1e-6)  # the MLE of σ on held-out games
        stats = {"noise": model.config.noise, "train_residual_std": math.sqrt(train_ms),
                 "val_nll": gaussian_nll(val_ms, channel.dim)}
    else:
        stats = {"val_nll": _discrete_nll(model, *va), "train_nll": _discrete_nll(model, *tr)}
    model.fit_info = {
        "args": asdict(args),
        "channel": channel.to_dict(),
        "data": {"train_rounds": len(train_idx), "val_rounds": len(val_idx),
                 "validation": f"{args.val_fraction:.0%} of the corpus's games"},
        "best_epoch": result.best_epoch,
        **stats,
        "history": result.history,
        "seconds": time.perf_counter() - start,
    }
    return model


@torch.no_grad()
def compare_beliefs(reference, model, messages, colors) -> dict[str, float]:
    """How close `model`'s beliefs come to `reference`'s on rounds (each message in its own context).

    Belief = softmax over x of `log p(m | c, x)` (`beliefs_from_log_probs`). Returns the mean
    `KL(reference ‖ model)` in nats, the fraction of rounds whose most likely x agrees, and the
    mean total-variation distance.
    """
    ref = beliefs_from_log_probs(row_log_probs(reference, messages, colors)).double()
    got = beliefs_from_log_probs(row_log_probs(model, messages, colors)).double()
    log_ratio = torch.log(ref.clamp_min(1e-300)) - torch.log(got.clamp_min(1e-300))
    kl = torch.where(ref > 0, ref * log_ratio, torch.zeros_like(ref)).sum(-1)
    return {
        "kl": kl.mean().item(),
        "argmax_agreement": (ref.argmax(-1) == got.argmax(-1)).double().mean().item(),
        "total_variation": (0.5 * (ref - got).abs().sum(-1)).mean().item(),
        "rounds": len(ref),
    }


def measure_against_exact(agents_dir: str, data: str = "data/colors_in_context/train.csv", held_out: float = 0.1,
                          seed: int = 0, args: LearnedSpeakerArgs | None = None) -> dict:
    """Collect our own agents' messages on `data`, fit a model on all but `held_out` of the games and
    compare its beliefs with the exact ones on the held-out rounds (the numbers in the docstring of
    `translator/models/colors/learned_speaker.py`)."""
    agents = Agents.from_pretrained(agents_dir)
    ds = collect(agents, load_rounds(data))
    rest, held = split_by_game([str(g) for g in ds["game_id"]], held_out, seed=0)  # fixed: the same rounds for every seed
    args = args or LearnedSpeakerArgs(seed=seed)
    model = fit_message_model(ds.select(rest), agents.channel, args)
    test = ds.select(held)
    colors, targets, messages = corpus_tensors(test, agents.channel)
    exact = ExactMessageModel(agents)
    out = compare_beliefs(exact, model, messages, colors)
    for name, m in (("exact", exact), ("learned", model)):
        out[f"{name}_target_accuracy"] = (row_log_probs(m, messages, colors).argmax(-1) == targets).double().mean().item()
    out.update(channel=agents.channel.kind, fit_seconds=model.fit_info["seconds"], best_epoch=model.fit_info["best_epoch"])
    if not agents.channel.discrete:
        out["noise"] = model.noise
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="How close do learned beliefs come to exact ones for our own agents?")
    parser.add_argument("agents", nargs="+", help="agents bundles, e.g. runs/demo/agents/continuous")
    parser.add_argument("--data", default="data/colors_in_context/train.csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    cli = parser.parse_args()
    torch.set_num_threads(cli.threads)
    for path in cli.agents:
        print(json.dumps(measure_against_exact(path, cli.data, seed=cli.seed)), flush=True)
