"""Train the evaluation listener: a CNN listener, other seed, shared tokenizer.

Validation (early stopping and the calibration temperature) uses held-out *training* games
(`val_fraction` of them, split with this listener's own seed), so the dev games stay untouched for
reporting. The tokenizer is the English bundle's, so both listeners read the same pieces.

By default it trains on the same games as the English models. `games_fraction` trains it on a
share of the training games instead (whole games, `corpus.split_games` with `games_seed`;
`games_part="rest"` takes the other games of the same split; `"judge"` the share of those that
`train english --judge-share` leaves out), so that the judge and the listener the translators
consult are trained on disjoint games: a translation cannot pass by exploiting what both
memorised of the same games.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from training.calibration import fit_temperature
from training.colors.english import batches, collate, english_dataset, listener_logits, listener_loss
from training.length_batches import LengthBatches
from training.loop import fit
from translator.games.colors.corpus import Round, split_games
from translator.models.colors.cnn_listener import DIRECTORY, CNNListener, CNNListenerConfig, EvaluationListener
from translator.models.tokenizer import Tokenizer
from translator.settings.checks import float_in, non_negative_int, positive_int


@dataclass
class EvalListenerArgs:
    seed: int = field(default=1, metadata={"help": "random seed (not the English listener's, which is 0)", "type": non_negative_int})
    max_len: int = 48
    embed_dim: int = 128
    kernel_sizes: list[int] = field(default_factory=lambda: [1, 2, 3])  # utterances average 4 pieces
    channels: int = 128
    color_dim: int = 256
    dropout: float = 0.3
    batch_size: int = 128
    lr: float = 3e-3
    # the cosine schedule spans the epochs; early stopping may end sooner
    epochs: int = field(default=8, metadata={"help": "epochs (early stopping)", "type": positive_int})
    patience: int = 3
    val_fraction: float = 0.1  # of training games
    max_steps: int | None = field(default=None, metadata={"help": "cap on optimiser steps (quick runs)", "type": positive_int})
    games_fraction: float | None = field(default=None, metadata={
        "help": "train on about this share of the training games only (whole games, split with --games-seed); default: all",
        "type": float_in(0, 1, low_open=True), "metavar": "F"})
    games_seed: int = field(default=0, metadata={"help": "seed of that split", "type": non_negative_int})
    games_part: str = field(default="held", metadata={
        "help": "'held': the F share of the split; 'rest': the other games; 'judge': the --judge-share of the other games "
                "that `train english --judge-share` leaves out", "choices": ("held", "rest", "judge")})
    judge_share: float = field(default=0.5, metadata={
        "help": "with --games-part judge: the share of the other games (the English models' --judge-share)",
        "type": float_in(0, 0.9, low_open=True), "metavar": "F"})

    def __post_init__(self):
        if self.games_fraction is not None and not 0 < self.games_fraction < 1:
            raise ValueError(f"games_fraction must be between 0 and 1 (exclusive), got {self.games_fraction}")
        if self.games_part not in ("held", "rest", "judge"):
            raise ValueError(f"games_part must be 'held', 'rest' or 'judge', got {self.games_part!r}")


def select_games(rounds: list[Round], args: EvalListenerArgs) -> list[Round]:
    """The training rounds of the games the listener trains on (`args.games_*`; all by default)."""
    if args.games_fraction is None:
        return rounds
    rest, held = split_games(rounds, args.games_fraction, seed=args.games_seed)
    if args.games_part == "judge":  # what `train english --judge-share` leaves out of its games
        return split_games(rest, args.judge_share, seed=args.games_seed)[1]
    return held if args.games_part == "held" else rest


def train_eval_listener(
    train_rounds: list[Round],
    tokenizer: Tokenizer,
    args: EvalListenerArgs | None = None,
    accelerator: Accelerator | None = None,
) -> EvaluationListener:
    """Fit and calibrate a `CNNListener` on `train_rounds`; returns the bundle (not yet saved)."""
    args = args or EvalListenerArgs()
    accelerator = accelerator or Accelerator()
    start = time.perf_counter()
    set_seed(args.seed)
    games = select_games(train_rounds, args)
    train_rounds, val_rounds = split_games(games, args.val_fraction, seed=args.seed)
    train_ds = english_dataset(train_rounds, tokenizer, args.max_len)
    val = batches(english_dataset(val_rounds, tokenizer, args.max_len), 512)
    g = torch.Generator().manual_seed(args.seed)
    sampler = LengthBatches([len(x) for x in train_ds["input_ids"]], args.batch_size, g)
    loader = DataLoader(train_ds, batch_sampler=sampler, collate_fn=collate)

    set_seed(args.seed)
    config = CNNListenerConfig(
        vocab_size=tokenizer.vocab_size,
        embed_dim=args.embed_dim,
        kernel_sizes=list(args.kernel_sizes),
        channels=args.channels,
        color_dim=args.color_dim,
        dropout=args.dropout,
        max_len=args.max_len,
    )
    model = CNNListener(config)

    def validate(m) -> dict[str, float]:
        logits, y = listener_logits(m, val)
        return {"val_accuracy": (logits.argmax(-1) == y).float().mean().item(), "val_nll": F.cross_entropy(logits, y).item()}

    res = fit(
        model, loader, listener_loss, validate, "val_accuracy", True, accelerator=accelerator, lr=args.lr,
        max_epochs=args.epochs, patience=args.patience, max_steps=args.max_steps, desc="eval listener",
    )
    model = accelerator.unwrap_model(model)
    logits, y = listener_logits(model, val)
    model.config.temperature = fit_temperature(logits, y)
    calibrated_nll = F.cross_entropy(logits / model.config.temperature, y).item()

    training = {
        "args": asdict(args),
        "architecture": "cnn",
        "data": {"train_rounds": len(train_rounds), "val_rounds": len(val_rounds),
                 "games": len({r.game_id for r in games}),
                 "subset": "all training games" if args.games_fraction is None else
                           f"{args.games_part} part of split_games({args.games_fraction}, seed={args.games_seed})"
                           + (f", then its {args.judge_share:.0%} left to the judge" if args.games_part == "judge" else ""),
                 "validation": f"{args.val_fraction:.0%} of training games (seed {args.seed})"},
        "tokenizer": {"vocab_size": tokenizer.vocab_size},
        "listener": {"best_epoch": res.best_epoch, "val_accuracy": res.best_score, "seconds": res.seconds,
                     "temperature": model.config.temperature, "val_nll_calibrated": calibrated_nll, "history": res.history},
        "seconds": time.perf_counter() - start,
    }
    return EvaluationListener(tokenizer, model.cpu().eval(), training)


def save_eval_listener(model: EvaluationListener, run_dir: str | Path, accelerator: Accelerator | None = None) -> Path:
    """Write the bundle to `run_dir/eval_listener` (only the main process writes)."""
    path = Path(run_dir) / DIRECTORY
    if accelerator is None or accelerator.is_main_process:
        model.save_pretrained(path)
    return path


__all__ = ["EvalListenerArgs", "select_games", "train_eval_listener", "save_eval_listener"]
