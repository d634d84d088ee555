"""A message model `p(m | c, x)` learned from what agents said: "bring your own agents".

Agents built elsewhere are known only through a corpus of rounds (context, target, message).
Beliefs (docs/method.md §4) need `log p(m | c, x)` for any message, context and target, so we fit
a model of the foreign speaker by maximum likelihood (`training.colors.learned_speaker`) and use it
wherever `ExactMessageModel` would go (the same `MessageModel` protocol).

- Continuous: an isotropic Gaussian `m ~ N(μ(c, x), σ² I)`, as Andreas et al. (2017); `μ` predicts
  standardised messages (no scale or centring assumed) and `σ` is the maximum-likelihood residual
  std on held-out games, which also absorbs the error of `μ` and keeps beliefs from over-confidence.
- Discrete: an autoregressive GRU decoder over the symbols (as `translator.models.channels`), trained by
  teacher-forced maximum likelihood, summed up to and including the first EOS.

Bundle: `config.json` (kind "neuralese.learned_message_model", channel, sizes, noise),
`model.safetensors`, `training.json`. How close it comes to exact beliefs: docs/decisions.md."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translator.games.colors.features import ContextEncoder
from translator.games.colors.inputs import check_colors, check_targets
from translator.models.channels import ChannelConfig, check_message, make_channel
from translator.models.colors.message_model import beam_search, discrete_log_prob_grid, gaussian_log_prob_grid
from translator.storage.atomic import atomic_bundle_dir
from translator.storage.bundle import TRAINING_FILE, TRAINING_KIND, Bundled, BundleError, read_training, write_side_file

KIND = "neuralese.learned_message_model"


@dataclass
class LearnedSpeakerConfig:
    """What a `LearnedMessageModel` is: its channel, layer sizes and (continuous) fitted noise."""

    channel: ChannelConfig = field(default_factory=ChannelConfig)
    color_dim: int = 128  # per-colour context encoding
    hidden_dim: int = 128  # speaker state
    noise: float = 1.0  # continuous: the fitted isotropic std σ, in message units

    def __post_init__(self):
        if isinstance(self.channel, dict):  # read back from JSON
            self.channel = ChannelConfig.from_dict(self.channel)
        if not isinstance(self.channel, ChannelConfig):
            raise ValueError(f"channel: expected a ChannelConfig or a mapping, got {type(self.channel).__name__}")
        if self.color_dim < 1 or self.hidden_dim < 1:
            raise ValueError(f"color_dim and hidden_dim must be >= 1, got {self.color_dim}, {self.hidden_dim}")
        if not (isinstance(self.noise, (int, float)) and 0 < self.noise < math.inf):
            raise ValueError(f"noise must be a finite number > 0, got {self.noise!r}")
        self.noise = float(self.noise)


class LearnedMessageModel(nn.Module, Bundled):
    """`p(m | c, x)` fitted to a corpus; a `MessageModel` (see `translator.models.colors.message_model`).

    Inputs everywhere are colours in *listener* order (the foreign speaker's own screen order is
    unknown; the context encoder is symmetric in the distractors).
    """

    bundle_kind = KIND
    config_class = LearnedSpeakerConfig

    def __init__(self, config: LearnedSpeakerConfig, fit_info: dict[str, Any] | None = None, batch_size: int = 8192):
        super().__init__()
        self.config, self.fit_info, self.batch_size = config, fit_info or {}, batch_size
        c = config
        self.colors = ContextEncoder(c.color_dim)
        self.state = nn.Sequential(nn.Linear(c.color_dim, c.hidden_dim), nn.GELU(), nn.Linear(c.hidden_dim, c.hidden_dim))
        if c.channel.discrete:
            self.channel_module = make_channel(c.channel, c.hidden_dim)
        else:
            self.head = nn.Linear(c.hidden_dim, c.channel.dim)
            # m ≈ offset + scale · head(state): set from the training messages by the fit
            self.register_buffer("offset", torch.zeros(c.channel.dim))
            self.register_buffer("scale", torch.ones(()))

    # -- what the protocol needs --------------------------------------------------------------
    @property
    def channel(self) -> ChannelConfig:
        return self.config.channel

    @property
    def noise(self) -> float:
        """Continuous: the fitted isotropic std σ of the messages around `μ(c, x)`."""
        return self.config.noise

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def hidden(self, colors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Speaker state `(B, hidden_dim)` from colours `(B, 3, 3)` and target indices `(B,)`."""
        g = self.colors(colors)
        tgt = g.gather(1, targets[:, None, None].expand(-1, 1, g.shape[-1])).squeeze(1)
        return self.state(tgt)

    def standardized_mean(self, hidden: torch.Tensor) -> torch.Tensor:
        """Continuous: the mean in standardised units, `(m - offset) / scale`."""
        return self.head(hidden)

    def mean(self, hidden: torch.Tensor) -> torch.Tensor:
        """Continuous: `μ(c, x)` in message units, `(B, dim)`."""
        return self.offset + self.scale * self.head(hidden)

    def _require_continuous(self, what: str) -> None:
        if self.channel.discrete:
            raise ValueError(f"{what}: the {self.channel.kind} channel is discrete; use log_prob_grid")

    @torch.no_grad()
    def means(self, colors) -> torch.Tensor:
        """Continuous channel: the learned mean message `μ(c, x)`, `(K, 3, dim)`."""
        self._require_continuous("means")
        colors = check_colors(colors).to(self.device)
        k = len(colors)
        c, t = colors.repeat_interleave(3, dim=0), torch.arange(3, device=self.device).repeat(k)
        self.eval()
        out = [self.mean(self.hidden(c[s : s + self.batch_size], t[s : s + self.batch_size])) for s in range(0, len(t), self.batch_size)]
        return torch.cat(out).reshape(k, 3, -1).cpu()

    @torch.no_grad()
    def log_prob_grid(self, messages, colors) -> torch.Tensor:
        """`(N, K, 3)`: `log p(messages[n] | colors[k], target x)`."""
        colors = check_colors(colors)
        m = check_message(self.channel, messages)
        if not self.channel.discrete:
            return gaussian_log_prob_grid(m, self.means(colors), self.noise)
        self.eval()
        return discrete_log_prob_grid(_SpeakerView(self), m.to(self.device), colors.to(self.device), self.batch_size)

    @torch.no_grad()
    def log_prob(self, messages, colors, targets) -> torch.Tensor:
        """`(N,)`: `log p(messages[n] | colors[n], targets[n])`, one context per message."""
        m = check_message(self.channel, messages).to(self.device)
        c = check_colors(colors, len(m)).to(self.device)
        t = check_targets(targets, len(m)).to(self.device)
        self.eval()
        out = []
        for s in range(0, len(m), self.batch_size):
            sl = slice(s, s + self.batch_size)
            h = self.hidden(c[sl], t[sl])
            if self.channel.discrete:
                out.append(self.channel_module.log_prob(h, m[sl]))
            else:
                d, s2 = self.channel.dim, self.noise**2
                out.append(-0.5 * d * math.log(2 * math.pi * s2) - ((m[sl] - self.mean(h)) ** 2).sum(-1) / (2 * s2))
        return torch.cat(out).cpu() if out else torch.zeros(0)

    def row_log_probs(self, messages, colors) -> torch.Tensor:
        """`(N, 3)`: `log p(messages[n] | colors[n], x)` for each x, each message in its own context.

        The fast path `translator.models.colors.message_model.row_log_probs` takes for this model: one batched
        decoder pass over the `3N` (message, context, target) rows instead of a grid per message.
        """
        m = check_message(self.channel, messages)
        c = check_colors(colors, len(m))
        rep = torch.arange(3).repeat(len(m))
        return self.log_prob(m.repeat_interleave(3, dim=0), c.repeat_interleave(3, dim=0), rep).reshape(len(m), 3)

    @torch.no_grad()
    def most_likely_messages(self, colors, width: int = 8) -> torch.Tensor:
        """The most likely message for each target of each context, `(K, 3, ...)`: the mean
        (continuous) or the beam-search best (discrete, `translator.models.colors.message_model.beam_search`)."""
        if not self.channel.discrete:
            return self.means(colors)
        colors = check_colors(colors).to(self.device)
        k = len(colors)
        c, t = colors.repeat_interleave(3, dim=0), torch.arange(3, device=self.device).repeat(k)
        self.eval()
        out = [beam_search(self.channel_module, self.hidden(c[s : s + self.batch_size], t[s : s + self.batch_size]), width)
               for s in range(0, len(t), self.batch_size)]
        return torch.cat(out).reshape(k, 3, -1).cpu() if out else torch.zeros(0, 3, self.channel.max_len, dtype=torch.long)

    # -- bundle -------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        with atomic_bundle_dir(directory) as d:
            if self.fit_info:
                write_side_file(d / TRAINING_FILE, TRAINING_KIND, self.fit_info)
            super().save_pretrained(d)  # its config.json, written last, records training.json too

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> LearnedMessageModel:
        directory = Path(directory)
        if not directory.is_dir():
            raise BundleError(f"{directory}: no such bundle directory")
        try:
            model = super().from_pretrained(directory, device)
        except BundleError:
            raise
        except ValueError as e:  # a bad channel config or noise inside config.json
            raise BundleError(f"{directory / 'config.json'}: bad config ({e})") from None
        model.fit_info = read_training(directory)
        return model


class _SpeakerView:
    """What `discrete_log_prob_grid` reads of a speaker: `hidden(colors, targets)` and `channel.log_prob_all`."""

    def __init__(self, model: LearnedMessageModel):
        self.hidden, self.channel = model.hidden, model.channel_module
