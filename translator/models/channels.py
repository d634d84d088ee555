"""Message channels for the agent speaker: continuous, Gumbel-Softmax and REINFORCE.

Each channel has a speaker side (`make_channel`: `speak`, the exact `log_prob` translation needs
(docs/method.md §4), and `policy_loss` where gradients cannot flow) and a listener side
(`make_encoder`: message → vector), since speaker and listener are separate bundles.

- `continuous`: `z = normalize(A_s(c, x)) + N(0, noise² I)`, reparameterised; Gaussian `log p`.
- `gumbel`: symbols drawn by the Gumbel-max trick (an exact sample of `softmax(logits)`), passed
  straight-through; `log p` is the sum of the symbol log-probabilities.
- `reinforce`: symbols sampled, nothing flows through them; `policy_loss` is REINFORCE with a
  running-mean baseline (a buffer, saved with the weights) and an entropy bonus.

Discrete messages are `(B, max_len)` symbol ids; symbol 0 is `EOS`. Length counts the symbols up
to and including the first `EOS` (`max_len` without one); the canonical form fills the positions
after it with `EOS`. The speaker is an autoregressive GRU decoder."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

EOS = 0
CHANNEL_KINDS = ("continuous", "gumbel", "reinforce")


# Upper bounds on a channel's size. Every message is padded to `max_len` and every translator
# table holds `dim` or `max_len` numbers per message and context, so a channel far beyond the
# sizes agents use (tens of dimensions or symbols) would only exhaust memory.
MAX_DIM = 4096  # continuous: values per message
MAX_LEN = 64  # discrete: symbols per message, EOS included
MAX_VOCAB = 4096  # discrete: symbols in the vocabulary, EOS included
KIND_FIELDS = {
    "continuous": ("kind", "dim", "noise"),
    "gumbel": ("kind", "vocab_size", "max_len", "embed_dim", "temperature"),
    "reinforce": ("kind", "vocab_size", "max_len", "embed_dim", "entropy_coef", "baseline_momentum"),
}


@dataclass
class ChannelConfig:
    """Hyper-parameters of a channel; fields a kind does not use are ignored by it (and not written
    by `to_dict`)."""

    kind: str = "continuous"
    # continuous
    dim: int = 64  # size of the vector z
    noise: float = 0.3  # std of the Gaussian noise added when sampling
    # discrete (gumbel, reinforce)
    vocab_size: int = 32  # including EOS (symbol 0)
    max_len: int = 3  # symbols per message, EOS included
    embed_dim: int = 64  # symbol embeddings of the speaker's decoder and the listener's reader
    temperature: float = 0.5  # gumbel: softmax temperature of the straight-through gradient
    entropy_coef: float = 0.002  # reinforce: weight of the entropy bonus
    baseline_momentum: float = 0.99  # reinforce: running mean of the reward

    def __post_init__(self):
        if self.kind not in CHANNEL_KINDS:
            raise ValueError(f"channel kind {self.kind!r} is unknown; valid kinds: {', '.join(CHANNEL_KINDS)}")
        for name, f in self.__dataclass_fields__.items():
            v, whole = getattr(self, name), f.type == "int"
            if name != "kind" and (isinstance(v, bool) or not isinstance(v, int if whole else (int, float))):
                raise ValueError(f"channel {name} must be {'an integer' if whole else 'a number'}, got {v!r}")
        if self.kind == "continuous":
            if not 1 <= self.dim <= MAX_DIM:
                raise ValueError(f"channel dim must be in [1, {MAX_DIM}], got {self.dim}")
            if not self.noise >= 0 or math.isinf(self.noise):
                raise ValueError(f"channel noise must be a finite number >= 0, got {self.noise}")
        else:
            if not 2 <= self.vocab_size <= MAX_VOCAB:
                raise ValueError(f"vocab_size must be in [2, {MAX_VOCAB}] (EOS plus at least one symbol), got {self.vocab_size}")
            if not 1 <= self.max_len <= MAX_LEN:
                raise ValueError(f"max_len must be in [1, {MAX_LEN}], got {self.max_len}")
            if not self.temperature > 0:
                raise ValueError(f"temperature must be > 0, got {self.temperature}")

    @property
    def discrete(self) -> bool:
        return self.kind != "continuous"

    def to_dict(self) -> dict:
        """The fields this kind uses (`from_dict` fills the others with their defaults)."""
        return {k: v for k, v in asdict(self).items() if k in KIND_FIELDS[self.kind]}

    def __eq__(self, other: object) -> bool:
        """The same channel: the fields its kind uses agree (a config written with all fields, whatever
        its unused ones hold, equals the same channel written with its kind's fields only)."""
        if not isinstance(other, ChannelConfig):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    @classmethod
    def from_dict(cls, data: dict | ChannelConfig) -> ChannelConfig:
        if isinstance(data, ChannelConfig):
            return data
        if not isinstance(data, dict):
            raise ValueError(f"channel config: expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"channel config: unknown field(s) {', '.join(unknown)}")
        return cls(**data)


@dataclass
class Message:
    """A batch of messages.

    `value`: `(B, dim)` float vectors (continuous) or `(B, max_len)` long symbol ids (discrete).
    `log_prob`, `entropy`: `(B,)`, exact log-probability of the message under the speaker and the
    entropy of the speaker's distribution (discrete: summed over the steps that were spoken).
    `length`: `(B,)` long (continuous: all `dim`). `onehot`: discrete only, `(B, max_len, vocab)`
    as the listener reads it: straight-through (carries gradients) for gumbel, detached for
    reinforce.
    """

    value: torch.Tensor
    log_prob: torch.Tensor
    entropy: torch.Tensor
    length: torch.Tensor
    onehot: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.value)

    def detach(self) -> Message:
        return Message(
            self.value.detach(), self.log_prob.detach(), self.entropy.detach(), self.length,
            None if self.onehot is None else self.onehot.detach(),
        )


# -- helpers ---------------------------------------------------------------------------------


def alive_mask(symbols: torch.Tensor) -> torch.Tensor:
    """`(B, L)` bool: position t is part of the message (no EOS strictly before t)."""
    is_eos = symbols == EOS
    before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()  # EOS count strictly before t
    return before == 0


def message_lengths(symbols: torch.Tensor) -> torch.Tensor:
    """Length of each message: symbols up to and including the first EOS, else `max_len`."""
    return alive_mask(symbols).sum(dim=1)


def canonical_symbols(symbols: torch.Tensor) -> torch.Tensor:
    """Fill every position after the first EOS with EOS (those positions are not in the message)."""
    return torch.where(alive_mask(symbols), symbols, torch.full_like(symbols, EOS))


def check_message(config: ChannelConfig, value, n: int | None = None) -> torch.Tensor:
    """Validate raw message values for `config`'s channel and return them as a tensor.

    Continuous: `(N, dim)` finite floats. Discrete: `(N, L)` integers in `[0, vocab_size)` with
    `1 <= L <= max_len`; shorter messages are padded with EOS, and the result is canonical.
    Raises `ValueError` naming what is wrong.
    """
    if isinstance(value, Message):
        value = value.value
    t = torch.as_tensor(value)
    if n is not None and (t.ndim == 0 or len(t) != n):
        raise ValueError(f"messages: expected {n} messages, got {0 if t.ndim == 0 else len(t)}")
    if not config.discrete:
        if t.ndim != 2 or t.shape[1] != config.dim:
            raise ValueError(f"messages: the continuous channel expects shape (N, {config.dim}), got {tuple(t.shape)}")
        if not torch.is_floating_point(t):
            t = t.float()
        if not torch.isfinite(t).all():
            raise ValueError("messages: NaN or infinite values in a continuous message")
        return t.float()
    if t.ndim != 2 or not 1 <= t.shape[1] <= config.max_len:
        raise ValueError(
            f"messages: the {config.kind} channel expects shape (N, L) of symbol ids with 1 <= L <= {config.max_len}, "
            f"got {tuple(t.shape)}"
        )
    if torch.is_floating_point(t):
        if not torch.isfinite(t).all():
            raise ValueError("messages: NaN or infinite values where symbol ids were expected")
        if not torch.equal(t, t.round()):
            raise ValueError("messages: symbol ids must be whole numbers")
    elif t.dtype == torch.bool or torch.is_complex(t):
        raise ValueError(f"messages: symbol ids must be integers, got dtype {t.dtype}")
    t = t.long()
    if t.numel() and (t.min() < 0 or t.max() >= config.vocab_size):
        bad = t[(t < 0) | (t >= config.vocab_size)][0].item()
        raise ValueError(f"messages: symbol id {bad} is out of range for a vocabulary of {config.vocab_size} (ids 0..{config.vocab_size - 1})")
    if t.shape[1] < config.max_len:
        t = F.pad(t, (0, config.max_len - t.shape[1]), value=EOS)
    return canonical_symbols(t)


# -- speaker side ----------------------------------------------------------------------------


class Channel(nn.Module):
    """Speaker side of a channel: the speaker's hidden state `(B, hidden_dim)` to a message."""

    kind: ClassVar[str]

    def __init__(self, config: ChannelConfig, hidden_dim: int):
        super().__init__()
        self.config, self.hidden_dim = config, hidden_dim

    def speak(self, hidden: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None) -> Message:
        """Send one message per row. `sample=False` gives the most likely message (no noise / argmax)."""
        raise NotImplementedError

    def log_prob(self, hidden: torch.Tensor, message: Message | torch.Tensor) -> torch.Tensor:
        """Exact `log p(m | c, x)` of given messages, `(B,)`."""
        raise NotImplementedError

    def policy_loss(self, message: Message, reward: torch.Tensor) -> torch.Tensor:
        """Extra speaker loss for a batch spoken with `speak(..., sample=True)`; 0 by default."""
        return message.log_prob.new_zeros(())


class ContinuousChannel(Channel):
    kind = "continuous"

    def __init__(self, config: ChannelConfig, hidden_dim: int):
        super().__init__(config, hidden_dim)
        self.proj = nn.Linear(hidden_dim, config.dim)

    def mean(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(hidden), dim=-1)

    def _log_density(self, z: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        d, s = self.config.dim, self.config.noise
        if s == 0:  # a point mass: density is infinite at the mean, zero elsewhere
            hit = torch.isclose(z, mu).all(dim=-1)
            return torch.where(hit, torch.full_like(z[:, 0], math.inf), torch.full_like(z[:, 0], -math.inf))
        return -0.5 * d * math.log(2 * math.pi * s * s) - ((z - mu) ** 2).sum(-1) / (2 * s * s)

    def _entropy(self, n: int, like: torch.Tensor) -> torch.Tensor:
        d, s = self.config.dim, self.config.noise
        h = 0.5 * d * math.log(2 * math.pi * math.e * s * s) if s > 0 else -math.inf
        return like.new_full((n,), h)

    def speak(self, hidden, sample=True, generator=None) -> Message:
        mu = self.mean(hidden)
        if sample and self.config.noise > 0:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + self.config.noise * eps  # reparameterised: gradients flow into mu
        else:
            z = mu
        n = len(z)
        length = torch.full((n,), self.config.dim, dtype=torch.long, device=z.device)
        return Message(z, self._log_density(z, mu), self._entropy(n, mu), length)

    def log_prob(self, hidden, message) -> torch.Tensor:
        z = message.value if isinstance(message, Message) else message
        return self._log_density(z, self.mean(hidden))


class DiscreteChannel(Channel):
    """Autoregressive GRU decoder over symbols; subclasses choose how a symbol is drawn."""

    def __init__(self, config: ChannelConfig, hidden_dim: int):
        super().__init__(config, hidden_dim)
        c = config
        self.init = nn.Linear(hidden_dim, hidden_dim)
        self.bos = nn.Parameter(torch.zeros(c.embed_dim))
        self.embed = nn.Parameter(torch.randn(c.vocab_size, c.embed_dim) * 0.1)
        self.cell = nn.GRUCell(c.embed_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, c.vocab_size)

    def _start(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.init(hidden))
        return h, self.bos.expand(len(hidden), -1)

    def _step_logits(self, h: torch.Tensor, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.cell(inp, h)
        return h, self.out(h)

    def _draw(self, logits: torch.Tensor, sample: bool, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: `(symbol ids (B,), one-hot as the listener reads it (B, V))`."""
        raise NotImplementedError

    def speak(self, hidden, sample=True, generator=None) -> Message:
        h, inp = self._start(hidden)
        symbols, onehots, log_probs, entropies = [], [], [], []
        for _ in range(self.config.max_len):
            h, logits = self._step_logits(h, inp)
            logp = F.log_softmax(logits, dim=-1)
            sym, onehot = self._draw(logits, sample, generator)
            symbols.append(sym)
            onehots.append(onehot)
            log_probs.append(logp.gather(1, sym[:, None]).squeeze(1))
            entropies.append(-(logp.exp() * logp).sum(-1))
            inp = onehot @ self.embed
        raw = torch.stack(symbols, dim=1)
        alive = alive_mask(raw)
        symbols = torch.where(alive, raw, torch.full_like(raw, EOS))
        mask = alive.to(hidden.dtype)
        onehot = torch.stack(onehots, dim=1) * mask[..., None]
        eos = F.one_hot(torch.full_like(raw, EOS), self.config.vocab_size).to(hidden.dtype)
        onehot = onehot + eos * (1 - mask[..., None])  # canonical: EOS after the end
        return Message(
            symbols,
            (torch.stack(log_probs, 1) * mask).sum(1),
            (torch.stack(entropies, 1) * mask).sum(1),
            alive.sum(1),
            onehot,
        )

    def step_log_probs(self, hidden: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        """Teacher-forced `(B, max_len, vocab)` log-probabilities of every symbol at every step."""
        return self._teacher_forced(hidden, self.embed[symbols])

    def _teacher_forced(self, hidden: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
        """`step_log_probs` given the embeddings `(B, L, embed_dim)` of the symbols read in turn."""
        h, inp = self._start(hidden)
        out = []
        for t in range(read.shape[1]):
            h, logits = self._step_logits(h, inp)
            out.append(F.log_softmax(logits, dim=-1))
            inp = read[:, t]
        return torch.stack(out, dim=1)

    def log_prob(self, hidden, message) -> torch.Tensor:
        if isinstance(message, Message) and message.onehot is not None:
            return self._log_prob_onehot(hidden, message.onehot, message.value)
        symbols = message.value if isinstance(message, Message) else message
        symbols = canonical_symbols(symbols.long())
        logp = self.step_log_probs(hidden, symbols).gather(2, symbols[..., None]).squeeze(2)
        return (logp * alive_mask(symbols).to(logp.dtype)).sum(1)

    def _log_prob_onehot(self, hidden: torch.Tensor, onehot: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        """`log_prob` teacher-forced on a message's one-hots `(B, max_len, vocab)`, so that gradients
        reach them (gumbel's straight-through); the same value as reading the symbol ids."""
        alive = alive_mask(symbols).to(onehot.dtype)
        logp = self._teacher_forced(hidden, torch.stack([onehot[:, t] @ self.embed for t in range(onehot.shape[1])], 1))
        total = onehot.new_zeros(len(onehot))
        for t in range(onehot.shape[1]):  # embedded and summed step by step: the same bits as reading the ids
            total = total + alive[:, t] * (onehot[:, t] * logp[:, t]).sum(-1)
        return total

    def log_prob_all(self, hidden: torch.Tensor, messages: torch.Tensor) -> torch.Tensor:
        """`(M, B)`: `log p(messages[m] | hidden[b])` for every pair, as `log_prob` gives it.

        Messages that share a prefix share the decoder steps that read it: the distinct messages
        are walked as a trie, depth first, so the decoder runs once per (prefix, row) instead of
        once per (message, symbol, row); several times fewer steps for a real code.
        """
        messages = canonical_symbols(messages.long())
        out = torch.zeros(len(messages), len(hidden), dtype=hidden.dtype, device=hidden.device)

        def visit(depth: int, h: torch.Tensor, inp: torch.Tensor, members: torch.Tensor) -> None:
            h, logits = self._step_logits(h, inp)
            logp = F.log_softmax(logits, dim=-1)  # (B, V)
            sym = messages[members, depth]
            out.index_add_(0, members, logp[:, sym].T)
            if depth + 1 == messages.shape[1]:
                return
            for s in sym.unique().tolist():
                if s != EOS:  # a message that said EOS here has ended
                    visit(depth + 1, h, self.embed[s].expand(len(h), -1), members[sym == s])

        if len(messages) and len(hidden):
            visit(0, *self._start(hidden), torch.arange(len(messages), device=messages.device))
        return out



class GumbelChannel(DiscreteChannel):
    """Gradients reach the speaker through the straight-through one-hots: no policy loss."""

    kind = "gumbel"

    def _draw(self, logits, sample, generator):
        if not sample:
            sym = logits.argmax(-1)
            return sym, F.one_hot(sym, self.config.vocab_size).to(logits.dtype)
        u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
        g = -torch.log((-torch.log(u.clamp(1e-20, 1.0))).clamp_min(1e-20))  # Gumbel(0, 1)
        y = logits + g
        sym = y.argmax(-1)  # Gumbel-max: an exact sample of softmax(logits)
        soft = torch.softmax(y / self.config.temperature, dim=-1)
        hard = F.one_hot(sym, self.config.vocab_size).to(logits.dtype)
        return sym, hard - soft.detach() + soft  # straight-through


class ReinforceChannel(DiscreteChannel):
    kind = "reinforce"

    def __init__(self, config: ChannelConfig, hidden_dim: int):
        super().__init__(config, hidden_dim)
        self.register_buffer("baseline", torch.zeros(()))
        self.register_buffer("baseline_steps", torch.zeros((), dtype=torch.long))

    def _draw(self, logits, sample, generator):
        with torch.no_grad():
            if sample:
                sym = torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=generator).squeeze(1)
            else:
                sym = logits.argmax(-1)
            return sym, F.one_hot(sym, self.config.vocab_size).to(logits.dtype)

    def policy_loss(self, message, reward):
        """REINFORCE with a running-mean baseline and an entropy bonus; updates the baseline."""
        reward = reward.detach()
        advantage = reward - self.baseline
        loss = -(advantage * message.log_prob).mean() - self.config.entropy_coef * message.entropy.mean()
        if self.training:
            with torch.no_grad():
                m = self.config.baseline_momentum
                # bias-corrected running mean: the first batch sets the baseline directly
                self.baseline_steps += 1
                w = max(1 - m, 1.0 / float(self.baseline_steps))
                self.baseline.mul_(1 - w).add_(w * reward.mean())
        return loss


_CHANNELS: dict[str, type[Channel]] = {c.kind: c for c in (ContinuousChannel, GumbelChannel, ReinforceChannel)}


def make_channel(config: ChannelConfig, hidden_dim: int) -> Channel:
    """The speaker side of `config.kind`'s channel, reading a `(B, hidden_dim)` speaker state."""
    if config.kind not in _CHANNELS:
        raise ValueError(f"channel kind {config.kind!r} is unknown; valid kinds: {', '.join(CHANNEL_KINDS)}")
    return _CHANNELS[config.kind](config, hidden_dim)


# -- listener side ---------------------------------------------------------------------------


class MessageEncoder(nn.Module):
    """Listener side of a channel: a message to a `(B, out_dim)` vector.

    Continuous: a linear map of `z`. Discrete: a GRU over the symbol embeddings (read from the
    message's one-hots, so straight-through gradients reach the speaker) that stops at the
    message's length.
    """

    def __init__(self, config: ChannelConfig, out_dim: int):
        super().__init__()
        self.config, self.out_dim = config, out_dim
        if config.discrete:
            self.embed = nn.Parameter(torch.randn(config.vocab_size, config.embed_dim) * 0.1)
            self.cell = nn.GRUCell(config.embed_dim, out_dim)
        else:
            self.proj = nn.Linear(config.dim, out_dim)

    def forward(self, message: Message | torch.Tensor) -> torch.Tensor:
        if not self.config.discrete:
            z = message.value if isinstance(message, Message) else message
            return self.proj(z)
        if isinstance(message, Message) and message.onehot is not None:
            onehot, symbols = message.onehot, message.value
        else:
            symbols = message.value if isinstance(message, Message) else message
            symbols = canonical_symbols(symbols.long())
            onehot = F.one_hot(symbols, self.config.vocab_size).to(self.embed.dtype)
        alive = alive_mask(symbols).to(onehot.dtype)
        x = onehot @ self.embed  # (B, L, E)
        h = x.new_zeros(len(x), self.out_dim)
        for t in range(x.shape[1]):
            a = alive[:, t : t + 1]
            h = a * self.cell(x[:, t], h) + (1 - a) * h
        return h


def make_encoder(config: ChannelConfig, out_dim: int) -> MessageEncoder:
    """The listener side of `config.kind`'s channel, producing `(B, out_dim)`."""
    if config.kind not in _CHANNELS:
        raise ValueError(f"channel kind {config.kind!r} is unknown; valid kinds: {', '.join(CHANNEL_KINDS)}")
    return MessageEncoder(config, out_dim)
