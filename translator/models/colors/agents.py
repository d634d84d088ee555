"""The agent pair of the colour game: speaker `A_s(z | c, x)` and listener `A_l(x | z, c)`.

Speaker and listener see the three colours each in its own screen order, so position carries no
information between them and messages must describe colours. Both encode each colour together with
the other two (`ContextEncoder`); the channel (`translator.models.channels`) turns the speaker's state into
a message. The listener is `learned` (its own encoder and scorer) or `bayes`: the exact posterior
under the speaker, `A_l(x | m, c) ∝ p(m | c, x)`, with no weights of its own for choosing.

Optional `reconstruction`: the listener also guesses the target's colour from the message alone,
which pulls the code from relational ("the one that differs") towards saying what the target looks
like, the only thing a context-free translation can carry. Optional `absolute_first_symbol`
(discrete): the first symbol depends on the target's colour alone and means the same in every context.

Bundle (`RUN/agents/<kind>/`): `config.json` (kind "neuralese.agents", game, channel, file hashes),
`speaker/`, `listener/`, `training.json`; `checkpoint/` while training (not part of the bundle)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translator.games.colors.corpus import GAME
from translator.games.colors.features import COLOR_DIM, ContextEncoder, color_features
from translator.games.colors.inputs import check_colors, check_speaker_order, check_targets
from translator.models.channels import (
    ChannelConfig,
    DiscreteChannel,
    GumbelChannel,
    Message,
    ReinforceChannel,
    check_message,
    make_channel,
    make_encoder,
)
from translator.storage.atomic import atomic_bundle_dir
from translator.storage.bundle import Bundled, BundleError, inference, read_composite, write_composite

KIND = "neuralese.agents"
KEEP = ("checkpoint",)  # entries beside the bundle's files that a save carries over
LISTENER_KINDS = ("learned", "bayes")


@dataclass
class AgentConfig:
    """Shared by speaker and listener (each bundle stores its own copy)."""

    channel: ChannelConfig = field(default_factory=ChannelConfig)
    color_dim: int = 128  # per-colour context encoding
    hidden_dim: int = 128  # speaker state / listener message encoding
    # the listener also guesses the target's colour from the message alone (a training aid:
    # `AgentTrainArgs.reconstruction_weight`); bundles without the head load without it
    reconstruction: bool = False
    listener: str = "learned"  # or "bayes": the posterior under the speaker (module docstring)
    # discrete channels: the first symbol depends on the target's colour alone, the context joins
    # from the second symbol on (`AbsoluteFirstSymbol`), so that symbol means the same in any context
    absolute_first_symbol: bool = False

    def __post_init__(self):
        if isinstance(self.channel, dict):  # read back from JSON
            self.channel = ChannelConfig.from_dict(self.channel)
        if self.listener not in LISTENER_KINDS:
            raise ValueError(f"listener kind {self.listener!r} is unknown; valid kinds: {', '.join(LISTENER_KINDS)}")
        if self.listener == "bayes" and self.channel.kind == "continuous" and self.channel.noise == 0:
            raise ValueError("a bayes listener needs channel noise > 0: without noise p(z | c, x) is a point mass")
        if self.absolute_first_symbol and not self.channel.discrete:
            raise ValueError("absolute_first_symbol needs a discrete channel (gumbel or reinforce)")


def to_speaker_order(colors: torch.Tensor, speaker_order: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rearrange listener-order colours `(B, 3, 3)` onto the speaker's screen; also move the target.

    `speaker_order[b, i]` is where listener colour `i` sits on the speaker's screen.
    """
    out = torch.empty_like(colors)
    out.scatter_(1, speaker_order[..., None].expand(-1, -1, colors.shape[-1]), colors)
    return out, speaker_order.gather(1, targets[:, None]).squeeze(1)


class AbsoluteFirstSymbol(DiscreteChannel):
    """A discrete channel whose first symbol depends on the target's colour alone.

    The speaker state it reads is `[absolute, in context]` `(B, 2 * hidden_dim)`. The decoder starts
    from the absolute half; after the first symbol the in-context half is added to its state, so
    the rest of the message may still tell this context's colours apart. The decoder state carries
    the in-context part still to be added beside it (`(B, 2 * hidden_dim)`, zeros once added), so
    every method of `DiscreteChannel` (speaking, teacher forcing, the prefix trie) works unchanged.
    """

    def __init__(self, config: ChannelConfig, hidden_dim: int):
        super().__init__(config, hidden_dim)
        self.context = nn.Linear(hidden_dim, hidden_dim)

    def _start(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        absolute, in_context = hidden.chunk(2, dim=-1)
        h, inp = super()._start(absolute)
        return torch.cat([h, self.context(in_context)], dim=-1), inp

    def _step_logits(self, h: torch.Tensor, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state, pending = h.chunk(2, dim=-1)
        state, logits = super()._step_logits(state, inp)
        return torch.cat([state + pending, torch.zeros_like(pending)], dim=-1), logits


class AbsoluteFirstGumbel(AbsoluteFirstSymbol, GumbelChannel):
    pass


class AbsoluteFirstReinforce(AbsoluteFirstSymbol, ReinforceChannel):
    pass


def _speaker_channel(config: AgentConfig) -> nn.Module:
    if not config.absolute_first_symbol:
        return make_channel(config.channel, config.hidden_dim)
    kind = {"gumbel": AbsoluteFirstGumbel, "reinforce": AbsoluteFirstReinforce}[config.channel.kind]
    return kind(config.channel, config.hidden_dim)


class AgentSpeaker(nn.Module, Bundled):
    """`A_s(z | c, x)`: colours in the speaker's screen order and the target's index there."""

    bundle_kind = "neuralese.agent_speaker"
    config_class = AgentConfig

    def __init__(self, config: AgentConfig):
        super().__init__()
        self.config = config
        c = config
        self.colors = ContextEncoder(c.color_dim)
        self.state = nn.Sequential(nn.Linear(c.color_dim, c.hidden_dim), nn.GELU(), nn.Linear(c.hidden_dim, c.hidden_dim))
        self.channel = _speaker_channel(c)
        if c.absolute_first_symbol:  # the target's colour alone
            self.absolute = nn.Sequential(nn.Linear(COLOR_DIM, c.hidden_dim), nn.GELU(), nn.Linear(c.hidden_dim, c.hidden_dim))

    def hidden(self, colors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Speaker state `(B, hidden_dim)` (`absolute_first_symbol`: `(B, 2 * hidden_dim)`, the
        target's colour alone, then in context) from speaker-order colours `(B, 3, 3)` and targets."""
        state = self.state(self.colors.encode_one(colors, targets))
        return self._with_absolute(state, colors[torch.arange(len(targets), device=colors.device), targets])

    def hidden_every_target(self, colors: torch.Tensor) -> torch.Tensor:
        """`hidden` for each colour of each context as the target, `(3B, hidden_dim)`, row `3i + x` for
        context i and target x: the contexts are encoded once, not once per target."""
        return self._with_absolute(self.state(self.colors(colors).flatten(0, 1)), colors.flatten(0, 1))

    def _with_absolute(self, state: torch.Tensor, target_colors: torch.Tensor) -> torch.Tensor:
        if not self.config.absolute_first_symbol:
            return state
        return torch.cat([self.absolute(color_features(target_colors)), state], dim=-1)

    def forward(self, colors, targets, sample: bool = True, generator: torch.Generator | None = None, every_target: bool = False):
        """A `Message` for each round.

        `every_target=True` (training with a bayes listener) returns `(message, log p(message | c, x)
        (B, 3) for every colour x)`, encoding each context once for both; `colors` and `targets`
        may then be in any screen order (the speaker's state does not depend on it)."""
        if not every_target:
            return self.channel.speak(self.hidden(colors, targets), sample=sample, generator=generator)
        h = self.hidden_every_target(colors)
        message = self.channel.speak(h[3 * torch.arange(len(targets), device=h.device) + targets], sample=sample, generator=generator)
        return message, self._log_prob_rows(h, message)

    def log_prob(self, colors, targets, message: Message | torch.Tensor) -> torch.Tensor:
        return self.channel.log_prob(self.hidden(colors, targets), message)

    def log_prob_every_target(self, colors: torch.Tensor, message: Message | torch.Tensor) -> torch.Tensor:
        """`(B, 3)`: `log p(m_b | c_b, x)` for each colour x of each context, colours in any order
        (the state does not depend on it). Differentiable in the message where it carries
        gradients (continuous `z`, gumbel's straight-through one-hots)."""
        return self._log_prob_rows(self.hidden_every_target(colors), message)

    def _log_prob_rows(self, hidden_every_target: torch.Tensor, message: Message | torch.Tensor) -> torch.Tensor:
        repeated = repeat_message(message, 3)  # row 3i + x, as hidden_every_target
        return self.channel.log_prob(hidden_every_target, repeated).view(-1, 3)


def repeat_message(message: Message | torch.Tensor, k: int) -> Message | torch.Tensor:
    """Each message `k` times in a row (row `k i + j` is message i)."""
    if not isinstance(message, Message):
        return message.repeat_interleave(k, 0)
    r = lambda t: None if t is None else t.repeat_interleave(k, 0)  # noqa: E731
    return Message(r(message.value), r(message.log_prob), r(message.entropy), r(message.length), r(message.onehot))


class AgentListener(nn.Module, Bundled):
    """`A_l(x | z, c)`: logits `(B, 3)` over the colours in the listener's screen order.

    A `bayes` listener scores with its speaker (`attach`, done by `Agents`); it has weights only
    for the reconstruction head, when there is one.
    """

    bundle_kind = "neuralese.agent_listener"
    config_class = AgentConfig

    def __init__(self, config: AgentConfig):
        super().__init__()
        self.config = config
        c = config
        self._speaker: tuple[AgentSpeaker, ...] = ()  # a tuple: not a submodule, so not in this bundle
        # (the order modules are created in fixes the initial weights: keep it)
        if c.listener == "learned":
            self.colors = ContextEncoder(c.color_dim)
        if c.listener == "learned" or c.reconstruction:
            self.message = make_encoder(c.channel, c.hidden_dim)
        if c.listener == "learned":
            self.proj = nn.Linear(c.hidden_dim, c.color_dim)
            self.score = nn.Sequential(nn.Linear(c.hidden_dim + 2 * c.color_dim, c.color_dim), nn.GELU(), nn.Linear(c.color_dim, 1))
        self.reconstruct = nn.Linear(c.hidden_dim, COLOR_DIM) if c.reconstruction else None

    def attach(self, speaker: AgentSpeaker) -> None:
        """Give a `bayes` listener the speaker whose posterior it is."""
        self._speaker = (speaker,)

    def _posterior(self, message: Message | torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
        if not self._speaker:
            raise ValueError("a bayes listener needs its speaker: load both with Agents.from_pretrained")
        return self._speaker[0].log_prob_every_target(colors, message)

    def _score(self, u: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
        g = self.colors(colors)  # (B, 3, C)
        pair = torch.cat([u[:, None].expand(-1, 3, -1), g, self.proj(u)[:, None] * g], dim=-1)
        return self.score(pair).squeeze(-1)

    def forward(self, message: Message | torch.Tensor, colors: torch.Tensor, reconstruct: bool = False):
        """Logits `(B, 3)`; with `reconstruct`, also the target colour's features `(B, COLOR_DIM)`
        as guessed from the message alone (inside `forward`, so that DDP sees the head's gradients)."""
        if reconstruct and self.reconstruct is None:
            raise ValueError("this listener has no reconstruction head (AgentConfig.reconstruction is off)")
        u = self.message(message) if self.config.listener == "learned" or reconstruct else None  # (B, H)
        logits = self._posterior(message, colors) if self.config.listener == "bayes" else self._score(u, colors)
        return (logits, self.reconstruct(u)) if reconstruct else logits


class Agents:
    """Speaker and listener together, with input checking and a bundle format.

    Every method takes colours in *listener* screen order (as `Round.colors`), each round's
    `speaker_order` and target index, exactly as the corpus gives them.
    """

    def __init__(self, speaker: AgentSpeaker, listener: AgentListener, training: dict[str, Any] | None = None):
        if speaker.config.channel != listener.config.channel:
            raise ValueError("speaker and listener use different channels")
        self.speaker, self.listener = speaker, listener
        if listener.config.listener == "bayes":
            listener.attach(speaker)
        self.training = training or {}

    @classmethod
    def create(cls, config: AgentConfig | None = None) -> Agents:
        config = config or AgentConfig()
        return cls(AgentSpeaker(config), AgentListener(config))

    @property
    def channel(self) -> ChannelConfig:
        return self.speaker.config.channel

    # -- bundle -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        with atomic_bundle_dir(directory, keep=KEEP) as d:
            self.speaker.save_pretrained(d / "speaker")
            self.listener.save_pretrained(d / "listener")
            write_composite(d, KIND, GAME, self.training, channel=asdict(self.channel))

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> Agents:
        d = Path(directory)
        config, training = read_composite(d, KIND, GAME)
        try:
            channel = ChannelConfig.from_dict(config.get("channel"))
        except (TypeError, ValueError) as e:
            raise BundleError(f"{d / 'config.json'}: bad channel config ({e})") from None
        try:
            speaker = AgentSpeaker.from_pretrained(d / "speaker", device)
            listener = AgentListener.from_pretrained(d / "listener", device)
        except ValueError as e:  # a bad channel config inside a part
            if isinstance(e, BundleError):
                raise
            raise BundleError(f"{d}: {e}") from None
        for name, m in (("speaker", speaker), ("listener", listener)):
            if m.config.channel != channel:
                raise BundleError(f"{d / name}: channel {asdict(m.config.channel)} does not match the bundle's {asdict(channel)}")
        return cls(speaker, listener, training)

    @property
    def device(self) -> torch.device:
        return next(self.speaker.parameters()).device

    def _inputs(self, colors, speaker_order, targets) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.as_tensor(targets)
        if t.ndim != 1:
            raise ValueError(f"targets: expected a 1-d sequence of target indices, got shape {tuple(t.shape)}")
        n = len(t)
        c = check_colors(colors, n)
        sc, st = to_speaker_order(c, check_speaker_order(speaker_order, n), check_targets(t, n))
        return sc.to(self.device), st.to(self.device)

    # -- models -----------------------------------------------------------------------------
    @torch.no_grad()
    def speak(self, colors, speaker_order, targets, sample: bool = True, generator: torch.Generator | None = None) -> Message:
        """Messages for rounds, `Message.value` `(N, dim)` or `(N, max_len)`; `sample=False`: most likely.

        Results live on the agents' device; `generator`, when given, must be on that device too.
        """
        sc, st = self._inputs(colors, speaker_order, targets)
        inference(self.speaker)
        return self.speaker(sc, st, sample=sample, generator=generator)

    @torch.no_grad()
    def message_log_prob(self, colors, speaker_order, targets, messages) -> torch.Tensor:
        """Exact `log p(m | c, x)` of each row's message under the speaker, `(N,)`."""
        sc, st = self._inputs(colors, speaker_order, targets)
        m = check_message(self.channel, messages, len(st)).to(self.device)
        inference(self.speaker)
        return self.speaker.log_prob(sc, st, m)

    @torch.no_grad()
    def listen(self, messages, colors) -> torch.Tensor:
        """`A_l(x | m, c)`: `(N, 3)` probabilities over the colours in listener order."""
        value = messages.value if isinstance(messages, Message) else messages
        m = check_message(self.channel, value).to(self.device)
        c = check_colors(colors, len(m)).to(self.device)
        inference(self.listener)
        inference(self.speaker)  # a bayes listener asks it
        return torch.softmax(self.listener(m, c), dim=-1)

    @staticmethod
    def round_inputs(rounds: Sequence) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(colors, speaker_order, targets)` tensors of `Round`s."""
        return (
            torch.tensor([r.colors for r in rounds], dtype=torch.float32).reshape(-1, 3, 3),
            torch.tensor([r.speaker_order for r in rounds], dtype=torch.long).reshape(-1, 3),
            torch.tensor([r.target for r in rounds], dtype=torch.long),
        )
