"""Train the English side: tokenizer, listener `H_l`, speaker `H_s`, then calibrate the listener.

Validation (early stopping and the calibration temperature) uses held-out *training* games by
default, so the dev games stay untouched for reporting. Pass `val_rounds` to use another file.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from training.calibration import calibrate
from training.loop import FitResult, fit
from translator.games.colors.corpus import Round, split_games, to_dataset
from translator.models.colors.english import EnglishModels
from translator.models.colors.listener import EnglishListener, ListenerConfig
from translator.models.colors.speaker import EnglishSpeaker, SpeakerConfig
from translator.models.tokenizer import PAD, Tokenizer, pad_batch
from translator.settings.checks import float_in, int_in, non_negative_int, positive_int


@dataclass
class EnglishTrainArgs:
    seed: int = field(default=0, metadata={"help": "random seed: fixes the whole run", "type": non_negative_int})
    vocab_size: int = field(default=1000, metadata={"help": "SentencePiece vocabulary size", "type": int_in(8)})
    max_len: int = 48
    batch_size: int = field(default=64, metadata={"help": "rounds per batch", "type": positive_int})
    lr: float = 2e-3
    # the cosine schedule spans the epochs; early stopping may end sooner
    listener_epochs: int = field(default=10, metadata={"help": "listener epochs; cosine schedule, early stopping", "type": positive_int})
    speaker_epochs: int = field(default=6, metadata={"help": "speaker epochs; cosine schedule, early stopping", "type": positive_int})
    patience: int = 3
    val_fraction: float = 0.1  # of training games, when no validation file is given
    judge_share: float = field(default=0.0, metadata={
        "help": "leave this share of the training games (after validation) to the evaluation listener: "
                "whole games, split with --seed; 0: train on all of them", "type": float_in(0, 0.9), "metavar": "F"})
    max_steps: int | None = field(default=None, metadata={"help": "stop each model after this many steps (quick runs)",
                                                          "type": positive_int})


def english_dataset(rounds: list[Round], tokenizer: Tokenizer, max_len: int):
    """`datasets.Dataset` with token ids added to the round columns."""
    ds = to_dataset(rounds)
    return ds.map(lambda b: {"input_ids": tokenizer.encode(b["text"], max_len)}, batched=True)


def collate(rows: list[dict]) -> dict[str, torch.Tensor]:
    tokens, lengths = pad_batch([r["input_ids"] for r in rows])
    return {
        "tokens": tokens,
        "lengths": lengths,
        "colors": torch.tensor([r["colors"] for r in rows], dtype=torch.float32),
        "target": torch.tensor([r["target"] for r in rows], dtype=torch.long),
    }


def batches(ds, batch_size: int) -> list[dict[str, torch.Tensor]]:
    return [collate([ds[j] for j in range(i, min(i + batch_size, len(ds)))]) for i in range(0, len(ds), batch_size)]


def listener_loss(model, b) -> torch.Tensor:
    return F.cross_entropy(model(b["tokens"], b["lengths"], b["colors"]), b["target"])


def speaker_nll(model, b, reduction: str = "mean") -> torch.Tensor:
    lp = model.token_log_probs(b["tokens"], b["lengths"], b["colors"], b["target"])
    n_tokens = (b["lengths"] + 1).sum()
    return -lp.sum() / n_tokens if reduction == "mean" else -lp.sum()


@torch.no_grad()
def listener_logits(model: EnglishListener, val: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    logits = torch.cat([model(b["tokens"], b["lengths"], b["colors"]) for b in val])
    return logits, torch.cat([b["target"] for b in val])


def train_english(
    train_rounds: list[Round],
    val_rounds: list[Round] | None = None,
    args: EnglishTrainArgs | None = None,
    accelerator: Accelerator | None = None,
    jobs: int = 1,
) -> EnglishModels:
    """Fit tokenizer, listener and speaker; returns the calibrated bundle (not yet saved).

    The listener and the speaker share only the tokenizer and each starts from `set_seed(seed)`, so
    with `jobs >= 2` the speaker trains in a process of its own (same torch thread count) beside the
    listener, with the same result as one after the other.
    """
    args = args or EnglishTrainArgs()
    accelerator = accelerator or Accelerator()
    set_seed(args.seed)
    val_source = "file"
    if val_rounds is None:
        train_rounds, val_rounds = split_games(train_rounds, args.val_fraction, seed=args.seed)
        val_source = f"{args.val_fraction:.0%} of training games"
    if args.judge_share:
        train_rounds = split_games(train_rounds, args.judge_share, seed=args.seed)[0]
    start = time.perf_counter()
    tok = Tokenizer.train([r.text for r in train_rounds], args.vocab_size)
    if jobs >= 2:
        with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=torch.set_num_threads,
                                 initargs=(torch.get_num_threads(),)) as pool:
            later = pool.submit(_speaker_state, tok.model_proto, train_rounds, val_rounds, args)
            listener, lres, calibration = fit_listener(tok, train_rounds, val_rounds, args, accelerator)
            state, sres = later.result()
        speaker = EnglishSpeaker(SpeakerConfig(vocab_size=tok.vocab_size, max_len=args.max_len))
        speaker.load_state_dict(state)
    else:
        listener, lres, calibration = fit_listener(tok, train_rounds, val_rounds, args, accelerator)
        speaker, sres = fit_speaker(tok, train_rounds, val_rounds, args, accelerator)
    training = {
        "args": asdict(args),
        "data": {"train_rounds": len(train_rounds), "val_rounds": len(val_rounds), "validation": val_source}
        | ({"left_to_judge": f"{args.judge_share:.0%} of the other training games"} if args.judge_share else {}),
        "tokenizer": {"vocab_size": tok.vocab_size},
        "listener": {"best_epoch": lres.best_epoch, "val_accuracy": lres.best_score, "seconds": lres.seconds,
                     "temperature": listener.config.temperature, "calibration": calibration, "history": lres.history},
        "speaker": {"best_epoch": sres.best_epoch, "val_perplexity": sres.best_score, "seconds": sres.seconds,
                    "history": sres.history},
        "seconds": time.perf_counter() - start,
    }
    return EnglishModels(tok, listener.cpu(), speaker.cpu(), training)


def _data(tok: Tokenizer, train_rounds: list[Round], val_rounds: list[Round], args: EnglishTrainArgs):
    """A fresh, seeded training loader and the validation batches."""
    train_ds = english_dataset(train_rounds, tok, args.max_len)
    val = batches(english_dataset(val_rounds, tok, args.max_len), 512)
    g = torch.Generator().manual_seed(args.seed)
    return DataLoader(train_ds, batch_size=args.batch_size, shuffle=True, collate_fn=collate, generator=g), val


def fit_listener(tok: Tokenizer, train_rounds: list[Round], val_rounds: list[Round], args: EnglishTrainArgs,
                 accelerator: Accelerator) -> tuple[EnglishListener, FitResult, str]:
    """The listener, trained with early stopping on validation accuracy, then temperature-calibrated
    (`training.calibration.calibrate`; the third value says how)."""
    loader, val = _data(tok, train_rounds, val_rounds, args)
    set_seed(args.seed)
    listener = EnglishListener(ListenerConfig(vocab_size=tok.vocab_size, max_len=args.max_len))

    def validate_listener(m) -> dict[str, float]:
        logits, y = listener_logits(m, val)
        return {"val_accuracy": (logits.argmax(-1) == y).float().mean().item(), "val_nll": F.cross_entropy(logits, y).item()}

    res = fit(listener, loader, listener_loss, validate_listener, "val_accuracy", True, desc="listener", max_epochs=args.listener_epochs,
              accelerator=accelerator, lr=args.lr, patience=args.patience, max_steps=args.max_steps)
    listener = accelerator.unwrap_model(listener)
    logits, y = listener_logits(listener, val)
    listener.config.temperature, calibration = calibrate(logits, y, "English listener")
    return listener, res, calibration


def fit_speaker(tok: Tokenizer, train_rounds: list[Round], val_rounds: list[Round], args: EnglishTrainArgs,
                accelerator: Accelerator) -> tuple[EnglishSpeaker, FitResult]:
    """The speaker, trained with early stopping on validation perplexity."""
    loader, val = _data(tok, train_rounds, val_rounds, args)
    set_seed(args.seed)
    speaker = EnglishSpeaker(SpeakerConfig(vocab_size=tok.vocab_size, max_len=args.max_len))

    @torch.no_grad()
    def validate_speaker(m) -> dict[str, float]:
        m.eval()
        nll = sum(speaker_nll(m, b, "sum").item() for b in val)
        n = sum((b["lengths"] + 1).sum().item() for b in val)
        return {"val_perplexity": math.exp(nll / n)}

    res = fit(speaker, loader, speaker_nll, validate_speaker, "val_perplexity", False, desc="speaker", max_epochs=args.speaker_epochs,
              accelerator=accelerator, lr=args.lr, patience=args.patience, max_steps=args.max_steps)
    return accelerator.unwrap_model(speaker), res


def _speaker_state(model_proto: bytes, train_rounds, val_rounds, args: EnglishTrainArgs) -> tuple[dict, FitResult]:
    """`fit_speaker` in a worker process: its weights go back to the parent (in memory)."""
    speaker, res = fit_speaker(Tokenizer(model_proto), train_rounds, val_rounds, args, Accelerator())
    return speaker.cpu().state_dict(), res


def save_english(models: EnglishModels, out: str | Path, accelerator: Accelerator | None = None) -> Path:
    """Write the bundle to `out/english` (only the main process writes)."""
    path = Path(out) / "english"
    if accelerator is None or accelerator.is_main_process:
        models.save_pretrained(path)
    return path


__all__ = ["EnglishTrainArgs", "train_english", "save_english", "PAD"]
