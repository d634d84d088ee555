"""Train a sequence-to-sequence translator (`translator.translate.colors.seq2seq`) on parallel pairs.

Pairs are `(message, utterance[, colours])` rows: the co-occurrence pairs of a collection (agents
and people playing the same rounds, `translator.translate.colors.collection`) or belief-matched pairs. Validation (early
stopping) uses whole held-out *training* games by default (`val_fraction` of the games in
`Pairs.game_ids`), so the dev games stay untouched for reporting; pass `val` to use other pairs.

Batches are grouped by length (shuffled chunks sorted by utterance length): most utterances are a
few tokens and a few run to dozens, so random batches would be mostly padding. How the defaults
were chosen: docs/decisions.md.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from training.length_batches import LengthBatches
from training.loop import fit
from translator.games.colors.inputs import check_colors
from translator.games.split import split_by_game
from translator.models.channels import ChannelConfig, check_message
from translator.models.colors.message_model import MessageModel
from translator.models.tokenizer import Tokenizer, pad_batch
from translator.translate.colors.seq2seq import IGNORE, Seq2SeqConfig, Seq2SeqTranslator


@dataclass
class Seq2SeqTrainArgs:
    seed: int = 0
    epochs: int = 6  # the cosine schedule spans these; early stopping may end sooner
    batch_size: int = 64
    lr: float = 2e-3
    patience: int = 2
    val_fraction: float = 0.1  # of training games, when no validation pairs are given
    vocab_size: int = 1000  # of the tokenizer trained here when none is given
    max_steps: int | None = None  # cap on optimiser steps, for quick tests
    val_batch_size: int = 512


@dataclass
class Pairs:
    """Parallel training pairs: row i is `messages[i]` beside `texts[i]` (in context `colors[i]`)."""

    messages: torch.Tensor  # (N, dim) float or (N, L) symbol ids
    texts: list[str]
    colors: torch.Tensor | None = None  # (N, 3, 3) HSL, listener order
    game_ids: list[str] | None = None  # for the validation split by game

    def __post_init__(self):
        self.texts = list(self.texts)
        n = len(self.texts)
        self.messages = torch.as_tensor(self.messages)
        if self.messages.ndim != 2 or len(self.messages) != n:
            raise ValueError(f"pairs: {n} texts but messages of shape {tuple(self.messages.shape)}")
        if self.colors is not None:
            self.colors = check_colors(self.colors, n)
        if self.game_ids is not None:
            self.game_ids = list(self.game_ids)
            if len(self.game_ids) != n:
                raise ValueError(f"pairs: {n} texts but {len(self.game_ids)} game ids")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: Sequence[int]) -> Pairs:
        idx = torch.as_tensor(list(index), dtype=torch.long)
        return Pairs(
            self.messages[idx],
            [self.texts[i] for i in idx.tolist()],
            None if self.colors is None else self.colors[idx],
            None if self.game_ids is None else [self.game_ids[i] for i in idx.tolist()],
        )

    def split_games(self, fraction: float, seed: int = 0) -> tuple[Pairs, Pairs]:
        """`(rest, held_out)`: about `fraction` of the games held out whole (`split_by_game`)."""
        if self.game_ids is None:
            raise ValueError("pairs: no game ids to hold out whole games for validation; give validation pairs")
        rest, held = split_by_game(self.game_ids, fraction, seed, what="pairs")
        return self.subset(rest), self.subset(held)

    @classmethod
    def from_collection(cls, ds) -> Pairs:
        """Pairs `(message, utterance, colours, game)` of a collected corpus (`translator.translate.colors.collection`)."""
        cols = ds.select_columns(["message", "colors"]).with_format("torch")[:]
        return cls(cols["message"], list(ds["utterance"]), cols["colors"].float(), list(ds["game_id"]))


class _Encoded:
    """Pairs as padded tensors the model reads: sources, targets (labels or vectors), colours."""

    def __init__(self, model: Seq2SeqTranslator, pairs: Pairs):
        c = model.config
        messages = check_message(c.channel, pairs.messages, len(pairs))
        ids = model.tokenizer.encode(pairs.texts, c.max_text_len)
        keep = [i for i, x in enumerate(ids) if x]  # an empty utterance teaches nothing
        self.dropped = len(pairs) - len(keep)
        ids = [ids[i] for i in keep]
        messages = messages[keep]
        self.colors = pairs.colors[keep] if (c.use_context and pairs.colors is not None) else None
        if c.use_context and self.colors is None:
            raise ValueError("pairs: the translator reads the context but the pairs have no colours")
        self.text_source = c.direction == "to_neuralese"
        if c.direction == "to_english":
            self.source = messages
            tokens, lengths = pad_batch(ids, eos=True)
            pos = torch.arange(tokens.shape[1])
            self.target = torch.where(pos < lengths[:, None], tokens, torch.full_like(tokens, IGNORE))
            self.lengths = lengths
        else:
            self.source, self.lengths = pad_batch(ids)
            self.target = model.target_labels(messages)

    def __len__(self) -> int:
        return len(self.source)

    def batch(self, idx) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(idx, dtype=torch.long)
        source, target = self.source[idx], self.target[idx]
        if self.text_source:  # cut the padding every row of the batch has
            source = source[:, : max(1, int(self.lengths[idx].max()))]
        if not torch.is_floating_point(target):
            target = target[:, : max(1, int((target != IGNORE).sum(1).max()))]
        out = {"source": source, "target": target}
        if self.colors is not None:
            out["colors"] = self.colors[idx]
        return out


def train_seq2seq(
    train: Pairs,
    config: Seq2SeqConfig,
    val: Pairs | None = None,
    tokenizer: Tokenizer | None = None,
    args: Seq2SeqTrainArgs | None = None,
    accelerator: Accelerator | None = None,
    message_model: MessageModel | None = None,
) -> Seq2SeqTranslator:
    """Train a translator from scratch on `train`; returns it (CPU, eval mode) with `training_info`.

    `config` says the direction, channel, context use and sizes (`text_vocab_size` is taken from
    the tokenizer). With no `tokenizer`, one is trained on the training texts. With no `val`,
    `args.val_fraction` of the training games are held out for early stopping. `message_model` is
    where a `belief_input` translator reads beliefs from (bundled with it).
    """
    args = args or Seq2SeqTrainArgs()
    accelerator = accelerator or Accelerator()
    start = time.perf_counter()
    val_source = "given pairs"
    if val is None:
        train, val = train.split_games(args.val_fraction, seed=args.seed)
        val_source = f"{args.val_fraction:.0%} of training games"
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"need training and validation pairs, got {len(train)} and {len(val)}")
    if tokenizer is None:
        tokenizer = Tokenizer.train(train.texts, args.vocab_size)
    config = dataclasses.replace(config, channel=ChannelConfig.from_dict(config.channel), text_vocab_size=tokenizer.vocab_size)

    set_seed(args.seed)
    model = Seq2SeqTranslator(config, tokenizer, message_model=message_model)
    train_enc, val_enc = _Encoded(model, train), _Encoded(model, val)
    if len(train_enc) == 0 or len(val_enc) == 0:
        raise ValueError("no training or validation pairs left after dropping empty texts")
    loader = DataLoader(
        range(len(train_enc)),
        batch_sampler=LengthBatches(train_enc.lengths.tolist(), args.batch_size, torch.Generator().manual_seed(args.seed)),
        collate_fn=train_enc.batch,
    )
    val_batches = [val_enc.batch(idx) for idx in LengthBatches(val_enc.lengths.tolist(), args.val_batch_size, torch.Generator().manual_seed(0), window=10**9)]

    def loss_fn(m, b) -> torch.Tensor:
        return m(b["source"], b["target"], b.get("colors"))

    @torch.no_grad()
    def validate(m: Seq2SeqTranslator) -> dict[str, float]:
        m.eval()
        total, count = 0.0, 0.0
        for b in val_batches:
            b = {k: v.to(m.device) for k, v in b.items()}
            loss, n = m.losses(b["source"], b["target"], b.get("colors"))
            total, count = total + loss.sum().item(), count + n.sum().item()
        scores = {"val_loss": total / max(count, 1.0)}
        if not config.regression:
            scores["val_perplexity"] = math.exp(min(scores["val_loss"], 50.0))
        return scores

    res = fit(model, loader, loss_fn, validate, "val_loss", False, accelerator, lr=args.lr, max_epochs=args.epochs,
              patience=args.patience, max_steps=args.max_steps, desc=f"seq2seq {config.direction}")
    model = accelerator.unwrap_model(model).cpu().eval()
    best = next(h for h in res.history if h["epoch"] == res.best_epoch)
    model.training_info = {
        "args": asdict(args),
        "data": {"train_pairs": len(train_enc), "val_pairs": len(val_enc), "validation": val_source,
                 "dropped_empty_texts": train_enc.dropped + val_enc.dropped},
        "best_epoch": res.best_epoch,
        "val_loss": res.best_score,
        **({"val_perplexity": best["val_perplexity"]} if "val_perplexity" in best else {}),
        "loss": "mean squared error per coordinate" if config.regression else "negative log-likelihood per token",
        "history": res.history,
        "fit_seconds": res.seconds,
        "seconds": time.perf_counter() - start,
    }
    return model


__all__ = ["Pairs", "Seq2SeqTrainArgs", "train_seq2seq"]
