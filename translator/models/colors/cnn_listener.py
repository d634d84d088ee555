"""Evaluation listener: a second English listener, of another architecture, that scores translations.

The translators consult `EnglishListener` (a biGRU); scoring them with the same model would reward
translations that exploit its quirks, so behaviour is scored by this one (docs/method.md §6): a
1-d CNN over token embeddings (several kernel widths, max-pooled), trained with another seed on the
same training games and sharing only the tokenizer. Each colour is encoded with the other two
(`ContextEncoder`) and an MLP scores every (utterance, colour) pair; probabilities divide the
logits by a temperature calibrated on held-out training games.

Bundle (`RUN/eval_listener/`): `config.json` (kind, format version, game), `tokenizer.model` (a
copy of the English bundle's), `listener/` (config.json + model.safetensors), `training.json`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translator.games.colors.corpus import GAME
from translator.games.colors.features import ContextEncoder
from translator.games.colors.inputs import check_colors
from translator.models.tokenizer import PAD, Tokenizer, pad_batch
from translator.storage.atomic import atomic_bundle_dir
from translator.storage.bundle import Bundled, BundleError, read_composite, write_composite

KIND = "neuralese.eval_listener"
DIRECTORY = "eval_listener"  # inside a run directory


@dataclass
class CNNListenerConfig:
    vocab_size: int
    embed_dim: int = 128
    kernel_sizes: list[int] = field(default_factory=lambda: [1, 2, 3])
    channels: int = 128  # filters per kernel width
    color_dim: int = 256
    dropout: float = 0.3
    temperature: float = 1.0  # calibration, fitted on held-out training games
    max_len: int = 48  # utterances are cut to this many tokens


class CNNListener(nn.Module, Bundled):
    """`(tokens, lengths, colours) -> logits (B, 3)`; the utterance encoding ignores padding.

    Every convolution is a "full" one (the utterance is padded with `k - 1` zero vectors on both
    sides) and the max over time only looks at outputs that touch a real token, so an utterance
    gets the same encoding whatever else is in its batch, and a one-token utterance still reaches
    every filter.
    """

    bundle_kind = "neuralese.cnn_listener"
    config_class = CNNListenerConfig

    def __init__(self, config: CNNListenerConfig):
        super().__init__()
        self.config = config
        c = config
        if not c.kernel_sizes or any(k < 1 for k in c.kernel_sizes):
            raise ValueError(f"kernel_sizes: expected positive widths, got {c.kernel_sizes!r}")
        self.embed = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=PAD)
        self.convs = nn.ModuleList(nn.Conv1d(c.embed_dim, c.channels, k, padding=k - 1) for k in c.kernel_sizes)
        self.drop = nn.Dropout(c.dropout)
        utt_dim = c.channels * len(c.kernel_sizes)
        self.utt = nn.Sequential(nn.Linear(utt_dim, c.color_dim), nn.GELU())
        self.colors = ContextEncoder(c.color_dim, c.dropout)
        self.score = nn.Sequential(
            nn.Linear(3 * c.color_dim, c.color_dim),
            nn.GELU(),
            nn.Dropout(c.dropout),
            nn.Linear(c.color_dim, 1),
        )

    def encode_utterance(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`(B, T)` token ids and `(B,)` lengths to `(B, color_dim)`."""
        lengths = lengths.to(tokens.device).clamp(min=1)
        # Zero the padding explicitly: PAD's embedding is zero, but only as long as nobody writes to it.
        mask = (torch.arange(tokens.shape[1], device=tokens.device) < lengths[:, None]).unsqueeze(-1)
        x = self.drop(self.embed(tokens) * mask).transpose(1, 2)  # (B, E, T)
        pooled = []
        for k, conv in zip(self.config.kernel_sizes, self.convs):
            h = torch.relu(conv(x))  # (B, C, T + k - 1)
            valid = torch.arange(h.shape[-1], device=h.device) < (lengths + k - 1)[:, None]
            pooled.append(h.masked_fill(~valid.unsqueeze(1), float("-inf")).amax(dim=-1))
        return self.utt(self.drop(torch.cat(pooled, dim=-1)))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
        """Uncalibrated logits `(B, 3)` over the colours (HSL `(B, 3, 3)`)."""
        u = self.drop(self.encode_utterance(tokens, lengths))
        g = self.colors(colors)  # (B, 3, C)
        u3 = u.unsqueeze(1).expand(-1, 3, -1)
        return self.score(torch.cat([u3, g, u3 * g], dim=-1)).squeeze(-1)

    def probs(self, tokens: torch.Tensor, lengths: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
        """Calibrated belief over the three colours, `(B, 3)`, rows summing to 1."""
        return torch.softmax(self(tokens, lengths, colors) / self.config.temperature, dim=-1)


class EvaluationListener:
    """Tokenizer + `CNNListener` as one bundle; plain texts and HSL colours in, probabilities out."""

    def __init__(self, tokenizer: Tokenizer, listener: CNNListener, training: dict[str, Any] | None = None):
        if listener.config.vocab_size != tokenizer.vocab_size:
            raise ValueError(f"listener vocabulary size {listener.config.vocab_size} does not match the tokenizer's {tokenizer.vocab_size}")
        self.tokenizer, self.listener = tokenizer, listener
        self.training = training or {}

    # -- bundle -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        with atomic_bundle_dir(directory) as d:
            self.tokenizer.save_pretrained(d)
            self.listener.save_pretrained(d / "listener")
            write_composite(d, KIND, GAME, self.training)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> EvaluationListener:
        d = Path(directory)
        _, training = read_composite(d, KIND, GAME)
        tok = Tokenizer.from_pretrained(d)
        listener = CNNListener.from_pretrained(d / "listener")
        if listener.config.vocab_size != tok.vocab_size:
            raise BundleError(f"{d / 'listener'}: vocabulary size {listener.config.vocab_size} does not match the tokenizer's {tok.vocab_size}")
        return cls(tok, listener, training)

    # -- inference --------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenise and pad utterances; empty ones are refused (they carry no meaning to score)."""
        if isinstance(texts, str):
            raise TypeError("texts: expected a sequence of strings, got one string")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"utterance {i}: expected a string, got {type(t).__name__}")
        ids = self.tokenizer.encode(list(texts), max_len=self.listener.config.max_len)
        for i, x in enumerate(ids):
            if not x:
                raise ValueError(f"utterance {i}: empty text")
        return pad_batch(ids)

    @torch.no_grad()
    def listen(self, texts: Sequence[str], colors, batch_size: int = 1024, calibrated: bool = True) -> torch.Tensor:
        """`(N, 3)` probabilities over the colours (HSL `(N, 3, 3)`, listener screen order)."""
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive number, got {batch_size}")
        colors = check_colors(colors, len(texts))
        tokens, lengths = self.encode(texts)
        self.listener.eval()
        device = next(self.listener.parameters()).device
        t = self.listener.config.temperature if calibrated else 1.0
        order = torch.argsort(lengths, stable=True)  # similar lengths together: little padding
        parts = []
        for s in range(0, len(texts), batch_size):
            idx = order[s : s + batch_size]
            n = int(lengths[idx].max())
            logits = self.listener(tokens[idx, :n].to(device), lengths[idx].to(device), colors[idx].to(device))
            parts.append(torch.softmax(logits.float() / t, dim=-1).cpu())
        if not parts:
            return torch.zeros(0, 3)
        return torch.cat(parts)[torch.argsort(order)]

    @property
    def temperature(self) -> float:
        return self.listener.config.temperature
