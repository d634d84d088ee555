"""Models of the agent speaker `p(m | c, x)`: what beliefs about agent messages are computed from.

A belief over the target needs `log p(m | c, x)` for every message, context and target (docs/method.md
§4), and translation asks for it on a grid, so the one method every message model has is

    log_prob_grid(messages (N, ...), colors (K, 3, 3)) -> (N, K, 3)

with colours in listener order. `ExactMessageModel` wraps our own agents, whose speaker gives it
exactly; `translator.models.colors.learned_speaker.LearnedMessageModel` is fitted to a collected corpus, for agents
known only through what they said. For the continuous channel both are Gaussians around `μ(c, x)`
and also expose `means(colors)` and `noise`: the grid is then one matrix product
(`gaussian_log_prob_grid`), which is what makes context-free translation fast."""

from __future__ import annotations

import math
from typing import Protocol

import torch

from translator.games.colors.inputs import check_colors
from translator.models.channels import EOS, ChannelConfig, DiscreteChannel, canonical_symbols, check_message
from translator.models.colors.agents import Agents
from translator.storage.bundle import inference


class MessageModel(Protocol):
    channel: ChannelConfig

    def log_prob_grid(self, messages: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
        """`(N, K, 3)`: `log p(messages[n] | colors[k], target x)`."""
        ...


def gaussian_log_prob_grid(z: torch.Tensor, means: torch.Tensor, noise: float) -> torch.Tensor:
    """Isotropic Gaussian log-densities of `z (N, D)` around `means (K, 3, D)`: `(N, K, 3)`.

    `‖z - μ‖² = ‖z‖² - 2 z·μ + ‖μ‖²`: one `(N, D) @ (D, 3K)` product instead of a loop.
    """
    k, _, d = means.shape
    mu = means.reshape(k * 3, d)
    sq = (z * z).sum(-1, keepdim=True) - 2 * z @ mu.T + (mu * mu).sum(-1)[None]
    s2 = noise * noise
    return (-0.5 * d * math.log(2 * math.pi * s2) - sq.clamp_min(0) / (2 * s2)).reshape(len(z), k, 3)


class ContextGrid:
    """`log p(m | c_k, x)` over one fixed set of contexts, `(N, K, 3)`: for a Gaussian model the
    speaker's means in those contexts are computed once, here, instead of on every call."""

    def __init__(self, model: MessageModel, contexts: torch.Tensor):
        self.model, self.contexts = model, contexts
        means = getattr(model, "means", None)
        self.means = means(contexts) if means is not None and not model.channel.discrete else None
        if self.means is not None:  # for `flat_relative`: log p up to the terms in ‖z‖², as one addmm
            mu, s2 = self.means.flatten(0, 1), model.noise**2  # (3K, D)
            self._weights, self._bias = (mu / s2).T.contiguous(), -(mu * mu).sum(-1) / (2 * s2)

    def __call__(self, messages: torch.Tensor) -> torch.Tensor:
        if self.means is None:
            return self.model.log_prob_grid(messages, self.contexts)
        return gaussian_log_prob_grid(messages.float(), self.means, self.model.noise)

    def flat_relative(self, messages: torch.Tensor) -> torch.Tensor:
        """`(N, K·3)`: `log p(m | c_k, x)` plus a constant per message (flat index `3k + x`), for
        callers that only compare a message's values with each other. For a Gaussian model the
        terms in `‖z‖²` drop out, which leaves one `addmm`, several times faster than the grid."""
        if self.means is None:
            return self(messages).flatten(1)
        return torch.addmm(self._bias, messages.float(), self._weights)


def beliefs_from_log_probs(log_probs: torch.Tensor) -> torch.Tensor:
    """`β[x] ∝ p(m | c, x) p(x | c)` with a uniform prior over the three colours: softmax over x."""
    return torch.softmax(log_probs, dim=-1)


class ExactMessageModel:
    """`p(m | c, x)` from our own agent speaker (exact for every channel)."""

    def __init__(self, agents: Agents, batch_size: int = 8192):
        self.agents, self.channel, self.batch_size = agents, agents.channel, batch_size
        self.speaker = agents.speaker

    @property
    def noise(self) -> float:
        return self.channel.noise

    def save_pretrained(self, directory) -> None:
        self.agents.save_pretrained(directory)

    @classmethod
    def from_pretrained(cls, directory) -> ExactMessageModel:
        return cls(Agents.from_pretrained(directory))

    @torch.no_grad()
    def means(self, colors) -> torch.Tensor:
        """Continuous channel: the speaker's mean message `μ(c, x)`, `(K, 3, dim)`. (The speaker's
        message does not depend on its screen order, so listener order serves as its order.)"""
        if self.channel.discrete:
            raise ValueError(f"means: the {self.channel.kind} channel is discrete; use log_prob_grid")
        colors = check_colors(colors)
        sp = inference(self.agents.speaker)
        step = max(1, self.batch_size // 3)
        out = [sp.channel.mean(hidden_every_target(sp, colors[s : s + step])) for s in range(0, len(colors), step)]
        return torch.cat(out).reshape(len(colors), 3, -1)

    @torch.no_grad()
    def log_prob_grid(self, messages, colors) -> torch.Tensor:
        colors = check_colors(colors)
        m = check_message(self.channel, messages)
        if not self.channel.discrete:
            return gaussian_log_prob_grid(m, self.means(colors), self.noise)
        return discrete_log_prob_grid(self.agents.speaker, m, colors, self.batch_size)


def hidden_every_target(speaker, colors: torch.Tensor) -> torch.Tensor:
    """The speaker's state for every (context, target), `(3K, H)`, row `3k + x`: one context encoding
    per context where the speaker has `hidden_every_target`, else its `hidden` on repeated inputs."""
    own = getattr(speaker, "hidden_every_target", None)
    if callable(own):
        return own(colors)
    return speaker.hidden(colors.repeat_interleave(3, dim=0), torch.arange(3).repeat(len(colors)))


@torch.no_grad()
def discrete_log_prob_grid(speaker, symbols: torch.Tensor, colors: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
    """`(N, K, 3)` for discrete messages under a speaker with `hidden(colors, targets)` and a channel.

    Messages repeat a lot (a small vocabulary), so each distinct message is scored once, and the
    distinct messages share their prefixes' decoder steps (`log_prob_all`), `batch_size`
    (context, target) rows at a time.
    """
    uniq, inverse = torch.unique(symbols, dim=0, return_inverse=True)
    hidden = hidden_every_target(speaker, colors)  # (3K, H)
    parts = [speaker.channel.log_prob_all(hidden[s : s + batch_size], uniq) for s in range(0, len(hidden), batch_size)]
    out = torch.cat(parts, dim=1) if parts else torch.zeros(len(uniq), 0)
    return out.reshape(len(uniq), len(colors), 3)[inverse]


@torch.no_grad()
def row_log_probs(model: MessageModel, messages, colors) -> torch.Tensor:
    """`(N, 3)`: `log p(messages[n] | colors[n], x)`, each message in its own context.

    The one implementation for every `MessageModel`: a model with its own batched `row_log_probs`
    (`LearnedMessageModel`) is asked directly; otherwise the Gaussian means (continuous), the agent
    speaker's decoder (discrete), or, for any other model, the diagonal of one small grid per message.
    """
    colors = check_colors(colors)
    m = check_message(model.channel, messages, len(colors))
    own = getattr(model, "row_log_probs", None)
    if callable(own):
        return own(m, colors)
    if not model.channel.discrete:  # continuous: Gaussian around each row's own means
        mu = model.means(colors)  # (N, 3, D)
        d, s2 = mu.shape[-1], model.noise**2
        return -0.5 * d * math.log(2 * math.pi * s2) - ((m[:, None] - mu) ** 2).sum(-1) / (2 * s2)
    if hasattr(model, "speaker"):  # our agents, or a learned model built on the same decoder
        sp = inference(model.speaker)
        return sp.channel.log_prob(hidden_every_target(sp, colors), m.repeat_interleave(3, dim=0)).reshape(-1, 3)
    # any other MessageModel: the diagonal of small grids
    return torch.cat([model.log_prob_grid(m[i : i + 1], colors[i : i + 1])[0] for i in range(len(m))])


@torch.no_grad()
def most_likely_messages(model: MessageModel, colors) -> torch.Tensor:
    """The message the speaker would most likely send for each target of each context: `(N, 3, ...)`.

    These are the agent's own words for a context, the natural candidates when translating English
    into neuralese in context. Continuous: the mean; a model with its own `most_likely_messages`
    (a learned discrete speaker: beam search) is asked; our discrete agents: their greedy message.
    """
    colors = check_colors(colors)
    if not model.channel.discrete:
        return model.means(colors)
    own = getattr(model, "most_likely_messages", None)
    if callable(own):
        return own(colors)
    if hasattr(model, "speaker"):
        sp = inference(model.speaker)
        v = sp.channel.speak(hidden_every_target(sp, colors), sample=False).value
        return v.reshape(len(colors), 3, *v.shape[1:])
    raise ValueError(f"{type(model).__name__} cannot propose messages (no means, speaker or most_likely_messages)")


@torch.no_grad()
def beam_search(decoder: DiscreteChannel, hidden: torch.Tensor, width: int = 8) -> torch.Tensor:
    """The most likely message under an autoregressive decoder for each speaker state, `(B, max_len)`.

    Beam search keeps the `width` most likely prefixes of every row; a prefix that has said EOS is
    a whole message: it stays in the beam with its score (further steps add EOS at no cost, as
    `log_prob` counts symbols up to the first EOS). `width=1` is greedy decoding. The result is
    canonical (EOS after the end), so its `log_prob` is the score it was chosen by.
    """
    if width < 1:
        raise ValueError(f"beam width must be >= 1, got {width}")
    b, length, vocab = len(hidden), decoder.config.max_len, decoder.config.vocab_size
    h, inp = decoder._start(hidden.repeat_interleave(width, dim=0))
    scores = torch.full((b, width), -math.inf, device=hidden.device)
    scores[:, 0] = 0.0  # one live prefix per row at first: the empty one
    symbols = torch.zeros(b, width, 0, dtype=torch.long, device=hidden.device)
    ended = torch.zeros(b, width, dtype=torch.bool, device=hidden.device)
    after_end = torch.full((vocab,), -math.inf, device=hidden.device)
    after_end[EOS] = 0.0
    for _ in range(length):
        h, logits = decoder._step_logits(h, inp)
        logp = torch.log_softmax(logits, dim=-1).reshape(b, width, vocab)
        logp = torch.where(ended[..., None], after_end, logp)
        scores, flat = (scores[..., None] + logp).reshape(b, width * vocab).topk(width, dim=1)
        beam, sym = flat // vocab, flat % vocab
        symbols = torch.cat([symbols.gather(1, beam[..., None].expand(-1, -1, symbols.shape[2])), sym[..., None]], dim=2)
        ended = ended.gather(1, beam) | (sym == EOS)
        rows = (beam + torch.arange(b, device=hidden.device)[:, None] * width).reshape(-1)
        h, inp = h[rows], decoder.embed[sym.reshape(-1)]
    best = scores.argmax(dim=1)
    return canonical_symbols(symbols[torch.arange(b), best])
