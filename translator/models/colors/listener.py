"""English listener `H_l(target | utterance, context)`: which of three colours a person means.

A bidirectional GRU reads the utterance; each colour is encoded together with the other two
(`ContextEncoder`); an MLP scores every (utterance, colour) pair. `forward` returns raw logits;
`probs` divides them by the calibration temperature fitted after training, so that the
probabilities mean what they say (translation compares beliefs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from translator.games.colors.features import ContextEncoder
from translator.storage.bundle import Bundled


@dataclass
class ListenerConfig:
    vocab_size: int
    embed_dim: int = 128
    hidden_dim: int = 256
    color_dim: int = 256
    dropout: float = 0.4
    temperature: float = 1.0  # calibration, fitted on held-out training games
    max_len: int = 48  # utterances are cut to this many tokens


class EnglishListener(nn.Module, Bundled):
    bundle_kind = "neuralese.english_listener"
    config_class = ListenerConfig

    def __init__(self, config: ListenerConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=0)
        self.rnn = nn.GRU(c.embed_dim, c.hidden_dim, batch_first=True, bidirectional=True)
        self.colors = ContextEncoder(c.color_dim, c.dropout)
        self.drop = nn.Dropout(c.dropout)
        self.utt_proj = nn.Linear(2 * c.hidden_dim, c.color_dim)
        self.score = nn.Sequential(
            nn.Linear(2 * c.hidden_dim + 2 * c.color_dim, c.color_dim),
            nn.GELU(),
            nn.Dropout(c.dropout),
            nn.Linear(c.color_dim, 1),
        )

    def encode_utterance(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`(B, T)` token ids and `(B,)` lengths to `(B, 2 * hidden)`."""
        packed = pack_padded_sequence(
            self.drop(self.embed(tokens)), lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        _, h = self.rnn(packed)  # (2, B, H): final forward and backward states
        return torch.cat([h[0], h[1]], dim=-1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
        """Uncalibrated logits `(B, 3)` over the colours (HSL `(B, 3, 3)`)."""
        u = self.drop(self.encode_utterance(tokens, lengths))
        g = self.colors(colors)  # (B, 3, C)
        u3 = u.unsqueeze(1).expand(-1, 3, -1)
        pair = torch.cat([u3, g, self.utt_proj(u).unsqueeze(1) * g], dim=-1)
        return self.score(pair).squeeze(-1)

    def score_pairs(self, u: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Logits for utterance encodings `u (..., 2H)` against colour encodings `g (..., C)`, broadcast.

        The same function as `forward`'s scoring MLP, with the first layer split by input block so
        that `u`'s and `g`'s parts are computed once each: scoring U utterances against J colours
        costs one `(U·J, C) @ (C, C)` product instead of re-running the GRU U·J times. This is what
        makes candidate beliefs over hundreds of contexts affordable.
        """
        return self.score_parts(*self.utterance_parts(u), g)

    def utterance_parts(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The context-free parts of the scoring MLP's first layer for encodings `u (..., 2H)`:
        `(u W_u + b, utt_proj(u))`, each `(..., C)`. A translator computes them once per candidate."""
        w_u = self.score[0].weight[:, : u.shape[-1]]
        return u @ w_u.T + self.score[0].bias, self.utt_proj(u)

    def score_parts(self, a: torch.Tensor, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Logits from `utterance_parts` `(a, p)` and colour encodings `g (..., C)`, broadcast."""
        first, rest = self.score[0], self.score[1:]
        dc = g.shape[-1]
        w_g, w_p = first.weight[:, -2 * dc : -dc], first.weight[:, -dc:]
        pre = (p * g) @ w_p.T  # the only per-pair product
        if torch.is_grad_enabled():
            pre = pre + a + g @ w_g.T
        else:  # in place: the pair tensor is the big one
            pre.add_(a).add_(g @ w_g.T)
        return rest(pre).squeeze(-1)

    def probs(self, tokens: torch.Tensor, lengths: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
        """Calibrated belief over the three colours, `(B, 3)`, rows summing to 1."""
        return torch.softmax(self(tokens, lengths, colors) / self.config.temperature, dim=-1)
