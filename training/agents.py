"""Self-play training of the agent speaker and listener, with `accelerate`.

Each step plays one batch of colour games: contexts are the training corpus's rounds (in a
shuffled order, epoch after epoch) mixed with freshly sampled contexts of the same three
conditions (`sample_contexts`). The listener is trained with cross-entropy on the target; the
speaker gets the same gradient through the channel (continuous, gumbel) or learns from the
channel's `policy_loss` (REINFORCE, reward = the listener's log-probability of the target).

Checkpoints (`OUT/checkpoint/`, every `checkpoint_every` steps and at the end) hold everything a
run needs to continue exactly where it stopped, without pickle:

    agents/                    the agent bundle (weights as safetensors, config as JSON)
    optimizer.safetensors      Adam's state tensors; optimizer.json: hyper-parameters and layout
    rng-<process>.safetensors  the training generator (message noise) and torch's own
    state.json                 step, data cursor, Python/NumPy RNG states, args, history

Restarting with the same arguments and output directory resumes from the checkpoint; since the
data order and every random draw come from checkpointed state, a run killed and restarted ends
with the same weights, bit for bit, as one left alone (tested). Only the main process writes the
bundles; every process writes its own RNG file.
"""

from __future__ import annotations

import hashlib
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from translator.agents import LISTENER_KINDS, AgentConfig, AgentListener, Agents, AgentSpeaker, to_speaker_order
from translator.bundle import read_json, write_json
from translator.channels import ChannelConfig
from translator.colors import color_features
from translator.corpus import CONDITIONS, Round, split_games

# -- sampling fresh contexts -----------------------------------------------------------------
#
# Monroe et al. (2017) drew colours uniformly (lightness fixed at 50) and sorted contexts by the
# CIEDE2000 distance between patches with a threshold θ = 20: *far* = all pairs at least θ apart,
# *split* = the target within θ of one distractor and both at least θ from the other, *close* =
# all pairs within θ. Patches closer than about 4 are not in the corpus (indistinguishable). The
# bundled training rounds match: far min pair 19-20, split target-near 4-30, close max pair ≤ 21.

THETA = 20.0
MIN_DIST = 4.0
_NEAR_HUE, _NEAR_SAT = 60.0, 60.0  # proposal for a colour near another (accepted by distance)


def hsl_to_rgb(hsl: torch.Tensor) -> torch.Tensor:
    """HSL `(..., 3)` (0-360, 0-100, 0-100) to RGB `(..., 3)` in [0, 1]."""
    h = (hsl[..., 0] % 360) / 60.0
    s, lum = hsl[..., 1] / 100.0, hsl[..., 2] / 100.0
    c = (1 - (2 * lum - 1).abs()) * s
    x = c * (1 - (h % 2 - 1).abs())
    z = torch.zeros_like(h)
    sector = h.floor().clamp(0, 5).long()
    table = torch.stack(
        [torch.stack(v, -1) for v in ((c, x, z), (x, c, z), (z, c, x), (z, x, c), (x, z, c), (c, z, x))], dim=-2
    )  # (..., 6, 3)
    rgb = table.gather(-2, sector[..., None, None].expand(*sector.shape, 1, 3)).squeeze(-2)
    return rgb + (lum - c / 2)[..., None]


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] to CIELAB (D65)."""
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = torch.tensor([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
                     dtype=rgb.dtype)
    xyz = lin @ m.T / torch.tensor([0.95047, 1.0, 1.08883], dtype=rgb.dtype)
    f = torch.where(xyz > 216 / 24389, xyz.clamp_min(1e-12) ** (1 / 3), (24389 / 27 * xyz + 16) / 116)
    return torch.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """CIEDE2000 colour difference between Lab colours `(..., 3)` (Sharma et al. 2005)."""
    L1, a1, b1 = lab1.unbind(-1)
    L2, a2, b2 = lab2.unbind(-1)
    cbar = (torch.hypot(a1, b1) + torch.hypot(a2, b2)) / 2
    g = 0.5 * (1 - torch.sqrt(cbar**7 / (cbar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    h1p = torch.rad2deg(torch.atan2(b1, a1p)) % 360
    h2p = torch.rad2deg(torch.atan2(b2, a2p)) % 360
    zero = c1p * c2p == 0
    dh = h2p - h1p
    dh = torch.where(dh > 180, dh - 360, torch.where(dh < -180, dh + 360, dh))
    dh = torch.where(zero, torch.zeros_like(dh), dh)
    d_l, d_c = L2 - L1, c2p - c1p
    d_h = 2 * torch.sqrt(c1p * c2p) * torch.sin(torch.deg2rad(dh) / 2)
    lbar, cbarp, hs = (L1 + L2) / 2, (c1p + c2p) / 2, h1p + h2p
    hbar = torch.where((h1p - h2p).abs() > 180, torch.where(hs < 360, (hs + 360) / 2, (hs - 360) / 2), hs / 2)
    hbar = torch.where(zero, hs, hbar)
    t = (1 - 0.17 * torch.cos(torch.deg2rad(hbar - 30)) + 0.24 * torch.cos(torch.deg2rad(2 * hbar))
         + 0.32 * torch.cos(torch.deg2rad(3 * hbar + 6)) - 0.20 * torch.cos(torch.deg2rad(4 * hbar - 63)))
    dtheta = 30 * torch.exp(-(((hbar - 275) / 25) ** 2))
    rc = 2 * torch.sqrt(cbarp**7 / (cbarp**7 + 25.0**7))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / torch.sqrt(20 + (lbar - 50) ** 2)
    sc, sh = 1 + 0.045 * cbarp, 1 + 0.015 * cbarp * t
    rt = -torch.sin(torch.deg2rad(2 * dtheta)) * rc
    return torch.sqrt((d_l / sl) ** 2 + (d_c / sc) ** 2 + (d_h / sh) ** 2 + rt * (d_c / sc) * (d_h / sh))


def color_distance(hsl1: torch.Tensor, hsl2: torch.Tensor) -> torch.Tensor:
    """Perceptual (CIEDE2000) distance between HSL colours."""
    return ciede2000(rgb_to_lab(hsl_to_rgb(hsl1.double())), rgb_to_lab(hsl_to_rgb(hsl2.double()))).to(hsl1.dtype)


def _uniform_colors(n: int, g: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return torch.stack([torch.floor(u[:, 0] * 360), torch.round(u[:, 1] * 100), torch.full((n,), 50.0, dtype=torch.float64)], -1)


def _near_colors(base: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    u = torch.rand(len(base), 2, generator=g, dtype=torch.float64) * 2 - 1
    h = torch.round(base[:, 0] + _NEAR_HUE * u[:, 0]) % 360
    s = torch.round(base[:, 1] + _NEAR_SAT * u[:, 1]).clamp(0, 100)
    return torch.stack([h, s, base[:, 2]], -1)


def _propose(condition: str, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` proposals `(n, 3, 3)` with the target first, and whether each one is accepted."""
    t = _uniform_colors(n, g)
    if condition == "far":
        a, b = _uniform_colors(n, g), _uniform_colors(n, g)
    elif condition == "split":
        a, b = _near_colors(t, g), _uniform_colors(n, g)
    elif condition == "close":
        a, b = _near_colors(t, g), _near_colors(t, g)
    else:
        raise ValueError(f"condition {condition!r} is not one of {', '.join(CONDITIONS)}")
    d_ta, d_tb, d_ab = color_distance(t, a), color_distance(t, b), color_distance(a, b)
    ok = torch.stack([d_ta, d_tb, d_ab], -1) >= MIN_DIST
    if condition == "far":
        ok = ok & (torch.stack([d_ta, d_tb, d_ab], -1) >= THETA)
    elif condition == "split":
        ok = ok & (d_ta < THETA)[:, None] & (d_tb >= THETA)[:, None] & (d_ab >= THETA)[:, None]
    else:
        ok = ok & (torch.stack([d_ta, d_tb, d_ab], -1) < THETA)
    return torch.stack([t, a, b], 1).float(), ok.all(-1)


def sample_contexts(n: int, generator: torch.Generator, conditions: Sequence[str] = CONDITIONS) -> dict:
    """Fresh games: `colors` `(n, 3, 3)` in listener order, `targets`, `speaker_order`, `conditions`.

    Each game's condition is uniform over `conditions`; colours have hue uniform in [0, 360),
    saturation uniform in [0, 100] (whole numbers, like the corpus) and lightness 50. Listener and
    speaker screen orders are independent uniform permutations.
    """
    conds = [conditions[i] for i in torch.randint(len(conditions), (n,), generator=generator).tolist()]
    colors = torch.empty(n, 3, 3)
    for cond in sorted(set(conds)):  # sorted: set order varies between processes (hash seed)
        idx = [i for i, c in enumerate(conds) if c == cond]
        got: list[torch.Tensor] = []
        have = 0
        while have < len(idx):
            proposals, ok = _propose(cond, 4 * (len(idx) - have) + 16, generator)
            got.append(proposals[ok])
            have += int(ok.sum())
        colors[idx] = torch.cat(got)[: len(idx)]
    listener_order = torch.argsort(torch.rand(n, 3, generator=generator), dim=1)  # listener slot -> patch
    colors = colors.gather(1, listener_order[..., None].expand(-1, -1, 3))
    targets = (listener_order == 0).long().argmax(1)  # patch 0 is the target
    speaker_order = torch.argsort(torch.rand(n, 3, generator=generator), dim=1)
    return {"colors": colors, "targets": targets, "speaker_order": speaker_order, "conditions": conds}


# -- evaluation ------------------------------------------------------------------------------


@torch.no_grad()
def self_play_accuracy(agents: Agents, rounds: Sequence[Round], noise: bool = True, seed: int = 0, batch_size: int = 2048) -> torch.Tensor:
    """Whether the agent listener picks the target in each round, `(N,)` bool.

    The speaker speaks with its channel's noise on (`noise=True`: sampled messages, as in play)
    from a generator seeded with `seed`; the listener picks its most likely colour.
    """
    colors, order, targets = Agents.round_inputs(rounds)
    g = torch.Generator(device=agents.device).manual_seed(seed)
    out = []
    for s in range(0, len(targets), batch_size):
        sl = slice(s, s + batch_size)
        msg = agents.speak(colors[sl], order[sl], targets[sl], sample=noise, generator=g)
        out.append(agents.listen(msg, colors[sl]).argmax(-1).cpu() == targets[sl])
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)


def accuracy_by_condition(rounds: Sequence[Round], correct: torch.Tensor) -> dict[str, float]:
    """Mean of `correct` overall (`all`) and per condition."""
    out = {"all": correct.float().mean().item() if len(correct) else float("nan")}
    for cond in CONDITIONS:
        m = torch.tensor([r.condition == cond for r in rounds], dtype=torch.bool)
        if m.any():
            out[cond] = correct[m].float().mean().item()
    return out


# -- training --------------------------------------------------------------------------------


@dataclass
class AgentTrainArgs:
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    color_dim: int = 128
    hidden_dim: int = 128
    seed: int = 0
    batch_size: int = 128  # games per step and process
    steps: int = 1000
    lr: float = 2e-3
    lr_schedule: str = "cosine"  # "cosine": decay from lr to lr * lr_min_ratio over `steps`; or "constant"
    lr_min_ratio: float = 0.1
    fresh_fraction: float = 0.5  # of each batch: freshly sampled contexts; the rest corpus rounds
    eval_every: int = 250  # steps between self-play evaluations on the validation rounds (0: never)
    checkpoint_every: int = 250  # steps between checkpoints (0: only at the end)
    val_fraction: float = 0.05  # of training games held out for evaluation when no val_rounds are given
    grad_clip: float = 1.0
    # weight of the listener's guess of the target colour from the message alone (mean squared
    # error on its colour features; 0 = off): makes the code say what the target looks like,
    # which context-free translation needs (README, "Choices")
    reconstruction_weight: float = 0.0
    # discrete channels: the speaker's first symbol sees the target's colour alone (AgentConfig)
    absolute_first_symbol: bool = False
    # "learned" or "bayes": a listener that is the posterior under the speaker (translator.agents)
    listener: str = "learned"
    progress: bool = True  # tqdm progress bar

    def __post_init__(self):
        if isinstance(self.channel, dict):
            self.channel = ChannelConfig.from_dict(self.channel)
        if not 0 <= self.fresh_fraction <= 1:
            raise ValueError(f"fresh_fraction must be in [0, 1], got {self.fresh_fraction}")
        if self.batch_size < 1 or self.steps < 0:
            raise ValueError("batch_size must be >= 1 and steps >= 0")
        if self.reconstruction_weight < 0:
            raise ValueError(f"reconstruction_weight must be >= 0, got {self.reconstruction_weight}")
        if self.listener not in LISTENER_KINDS:
            raise ValueError(f"listener kind {self.listener!r} is unknown; valid kinds: {', '.join(LISTENER_KINDS)}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")

    def lr_at(self, step: int) -> float:
        """Learning rate of step `step` (0-based); a function of the step alone, so resuming needs no state."""
        if self.lr_schedule == "constant" or self.steps <= 1:
            return self.lr
        frac = min(step, self.steps - 1) / (self.steps - 1)
        return self.lr * (self.lr_min_ratio + (1 - self.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))

    @classmethod
    def for_channel(cls, kind: str, **overrides) -> AgentTrainArgs:
        """Tuned defaults per channel kind (see `CHANNEL_DEFAULTS`); keyword overrides win."""
        if kind not in CHANNEL_DEFAULTS:
            raise ValueError(f"channel kind {kind!r} is unknown; valid kinds: {', '.join(CHANNEL_DEFAULTS)}")
        preset = CHANNEL_DEFAULTS[kind]
        channel = overrides.pop("channel", None) or ChannelConfig(kind=kind, **preset["channel"])
        return cls(channel=channel, **{**preset["train"], **overrides})


# Settings tuned on held-out *training* games (never dev) so that self-play with noise on reaches
# >= 0.98 (continuous, gumbel) and >= 0.90 (reinforce); see README / training.json for numbers.
CHANNEL_DEFAULTS: dict[str, dict[str, dict]] = {
    "continuous": {"channel": {"dim": 64, "noise": 0.3},
                   "train": {"steps": 2000, "lr": 2e-3, "batch_size": 256, "reconstruction_weight": 1.0}},
    # discrete: an absolute first symbol and the reconstruction loss make the code say what the
    # target looks like, so that it translates out of context (docs/discrete_codes.md)
    "gumbel": {"channel": {"vocab_size": 32, "max_len": 3, "temperature": 1.0},
               "train": {"steps": 800, "lr": 2e-3, "batch_size": 256, "listener": "bayes",
                         "absolute_first_symbol": True, "reconstruction_weight": 1.0}},
    "reinforce": {"channel": {"vocab_size": 32, "max_len": 3, "entropy_coef": 0.002},
                  "train": {"steps": 2000, "lr": 2e-3, "batch_size": 256,
                            "absolute_first_symbol": True, "reconstruction_weight": 2.0}},
}

# Fields that may change between a run and its resumption without changing the result up to the
# step both reach (they only change what is logged or saved when). `steps` may change too (train
# longer) when the learning rate is constant; a cosine schedule depends on it.
_RESUMABLE_CHANGES = {"eval_every", "checkpoint_every", "progress"}


def _fingerprint(rounds: Sequence[Round]) -> str:
    h = hashlib.sha1()
    for r in rounds:
        h.update(f"{r.round_id}|{r.colors}|{r.target}|{r.speaker_order}\n".encode())
    return h.hexdigest()


class _CorpusStream:
    """Corpus rounds in a fresh shuffled order each epoch; the position is two integers."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch, self.cursor = n, seed, 0, 0
        self._perm: torch.Tensor | None = None

    def _permutation(self) -> torch.Tensor:
        if self._perm is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._perm = torch.randperm(self.n, generator=g)
        return self._perm

    def take(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            perm = self._permutation()
            part = perm[self.cursor : self.cursor + k]
            out.append(part)
            self.cursor += len(part)
            k -= len(part)
            if self.cursor >= self.n:
                self.epoch, self.cursor, self._perm = self.epoch + 1, 0, None
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


class _FreshContexts:
    """Freshly sampled games, drawn a block of `steps_per_block` steps at a time.

    Rejection sampling costs ~25 ms per call whatever its size (16,384 games take ~250 ms), so one
    call per step was half of a step's time. Block k comes from its own generator seeded with
    (seed, k): a step's games depend on the step alone, so resuming needs no sampler state.
    """

    def __init__(self, per_step: int, seed: int, steps_per_block: int = 128):
        self.per_step, self.seed, self.steps_per_block = per_step, seed, steps_per_block
        self._block, self._games = -1, {}

    def at(self, step: int) -> dict[str, torch.Tensor]:
        block, offset = divmod(step, self.steps_per_block)
        if block != self._block:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + 7_777_777 + block)
            games = sample_contexts(self.per_step * self.steps_per_block, g)
            self._block, self._games = block, {k: games[k] for k in ("colors", "targets", "speaker_order")}
        sl = slice(offset * self.per_step, (offset + 1) * self.per_step)
        return {k: v[sl] for k, v in self._games.items()}


def _batch(args: AgentTrainArgs, corpus: dict[str, torch.Tensor], stream: _CorpusStream | None, fresh: _FreshContexts,
           step: int, accelerator: Accelerator) -> dict[str, torch.Tensor]:
    """One step's games for this process (every process draws the global batch, keeps its part)."""
    world, rank = accelerator.num_processes, accelerator.process_index
    per = args.batch_size
    n_fresh = per if stream is None else round(per * args.fresh_fraction)
    parts = []
    if n_fresh < per:
        idx = stream.take((per - n_fresh) * world)[rank * (per - n_fresh) : (rank + 1) * (per - n_fresh)]
        parts.append({k: v[idx] for k, v in corpus.items()})
    if n_fresh:
        games = fresh.at(step)
        sl = slice(rank * n_fresh, (rank + 1) * n_fresh)
        parts.append({k: v[sl] for k, v in games.items()})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _save_optimizer(opt: torch.optim.Optimizer, directory: Path) -> None:
    sd = opt.state_dict()
    tensors, layout = {}, {}
    for pid, st in sd["state"].items():
        layout[str(pid)] = {}
        for name, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{name}"] = value.detach().contiguous().cpu()
                layout[str(pid)][name] = "tensor"
            else:
                layout[str(pid)][name] = value  # a plain number
    save_file(tensors, str(directory / "optimizer.safetensors"))
    write_json(directory / "optimizer.json", {"param_groups": sd["param_groups"], "state": layout})


def _load_optimizer(opt: torch.optim.Optimizer, directory: Path) -> None:
    meta = read_json(directory / "optimizer.json")
    tensors = load_file(str(directory / "optimizer.safetensors"))
    state = {}
    for pid, names in meta["state"].items():
        state[int(pid)] = {n: (tensors[f"{pid}.{n}"] if v == "tensor" else v) for n, v in names.items()}
    groups = meta["param_groups"]
    for grp in groups:
        if isinstance(grp.get("betas"), list):
            grp["betas"] = tuple(grp["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def _python_rng_state() -> dict:
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }


def _set_python_rng_state(data: dict) -> None:
    version, internal, gauss = data["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = data["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def _save_rng(g: torch.Generator, path: Path) -> None:
    tensors = {"generator": g.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    save_file(tensors, str(path))


def _load_rng(g: torch.Generator, path: Path) -> None:
    t = load_file(str(path))
    g.set_state(t["generator"])
    torch.set_rng_state(t["torch"])
    if torch.cuda.is_available():
        cuda = [t[f"cuda.{i}"] for i in range(torch.cuda.device_count()) if f"cuda.{i}" in t]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)


def _check_resumable(path: Path, saved: dict, args: AgentTrainArgs, fingerprint: str) -> None:
    now = asdict(args)
    old = saved.get("args", {})
    free = _RESUMABLE_CHANGES | ({"steps"} if args.lr_schedule == "constant" else set())
    diffs = [f"{k}: {old.get(k)!r} -> {now[k]!r}" for k in now if k not in free and old.get(k) != now[k]]
    if saved.get("data_fingerprint") != fingerprint:
        diffs.append("training rounds differ")
    if diffs:
        raise ValueError(
            f"{path}: checkpoint was written with other settings ({'; '.join(diffs)}); "
            "use another output directory or delete the checkpoint"
        )


def _step_loss(args: AgentTrainArgs, speaker, listener, raw_speaker: AgentSpeaker, b: dict[str, torch.Tensor],
               generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch's loss and the listener's logits: discrimination (cross-entropy on the target, plus
    the channel's policy loss) and the target colour's reconstruction."""
    if args.listener == "bayes" and args.reconstruction_weight == 0:
        # the listener is the speaker's posterior: one encoding of each context serves both
        msg, logits = speaker(b["colors"], b["targets"], sample=True, generator=generator, every_target=True)
        guess = None
    else:
        sc, st = to_speaker_order(b["colors"], b["speaker_order"], b["targets"])
        msg = speaker(sc, st, sample=True, generator=generator)
        if args.reconstruction_weight > 0:
            logits, guess = listener(msg, b["colors"], reconstruct=True)
        else:
            logits, guess = listener(msg, b["colors"]), None
    ce = F.cross_entropy(logits, b["targets"], reduction="none")
    loss, cost = ce.mean(), ce.detach()
    if guess is not None:
        target_colors = b["colors"][torch.arange(len(b["targets"]), device=logits.device), b["targets"]]
        features = color_features(target_colors)
        loss = loss + args.reconstruction_weight * F.mse_loss(guess, features)
        # REINFORCE's speaker learns the reconstruction only from its reward (nothing flows through symbols)
        cost = cost + args.reconstruction_weight * (guess.detach() - features).pow(2).mean(-1)
    loss = loss + raw_speaker.channel.policy_loss(msg, -cost)
    return loss, logits


def train_agents(
    train_rounds: Sequence[Round],
    args: AgentTrainArgs | None = None,
    out_dir: str | Path | None = None,
    accelerator: Accelerator | None = None,
    val_rounds: Sequence[Round] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> Agents:
    """Self-play training; resumes from `out_dir/checkpoint` when one is there.

    `val_rounds` (default: `args.val_fraction` of the training games, held out) are scored with
    `self_play_accuracy` every `eval_every` steps. With `out_dir`, checkpoints go to
    `out_dir/checkpoint` and the final bundle to `out_dir` itself. `on_step(step)` is called after
    every step (and its checkpoint), e.g. to stop a run early. Returns the trained agents (CPU).
    """
    args = args or AgentTrainArgs()
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    train_rounds = list(train_rounds)
    if val_rounds is None and args.val_fraction > 0 and len({r.game_id for r in train_rounds}) > 1:
        train_rounds, val_rounds = split_games(train_rounds, args.val_fraction, seed=args.seed)
        val_source = f"{args.val_fraction:.0%} of training games"
    else:
        val_source = "given" if val_rounds is not None else "none"
    val_rounds = list(val_rounds or [])
    fingerprint = _fingerprint(train_rounds)

    set_seed(args.seed)
    config = AgentConfig(channel=args.channel, color_dim=args.color_dim, hidden_dim=args.hidden_dim,
                         reconstruction=args.reconstruction_weight > 0, listener=args.listener,
                         absolute_first_symbol=args.absolute_first_symbol)
    speaker, listener = AgentSpeaker(config), AgentListener(config)
    opt = torch.optim.Adam([*speaker.parameters(), *listener.parameters()], lr=args.lr)
    g = torch.Generator().manual_seed(args.seed * 7919 + 17 + accelerator.process_index)
    stream = _CorpusStream(len(train_rounds), args.seed) if train_rounds and args.fresh_fraction < 1 else None
    n_fresh = args.batch_size if stream is None else round(args.batch_size * args.fresh_fraction)
    fresh = _FreshContexts(n_fresh * accelerator.num_processes, args.seed)
    colors, order, targets = Agents.round_inputs(train_rounds)
    corpus = {"colors": colors, "targets": targets, "speaker_order": order}

    ckpt = Path(out_dir) / "checkpoint" if out_dir is not None else None
    step, history, seconds = 0, [], 0.0
    if ckpt is not None and not (ckpt / "state.json").is_file() and (ckpt.parent / "checkpoint.old" / "state.json").is_file():
        ckpt.parent.joinpath("checkpoint.old").rename(ckpt)  # killed while swapping checkpoints
    if ckpt is not None and (ckpt / "state.json").is_file():
        saved = read_json(ckpt / "state.json")
        _check_resumable(ckpt / "state.json", saved, args, fingerprint)
        agents = Agents.from_pretrained(ckpt / "agents")
        speaker.load_state_dict(agents.speaker.state_dict())
        listener.load_state_dict(agents.listener.state_dict())
        _load_optimizer(opt, ckpt)
        _load_rng(g, ckpt / f"rng-{accelerator.process_index}.safetensors")
        _set_python_rng_state(saved["rng"])
        step, history, seconds = saved["step"], saved["history"], saved["seconds"]
        if stream is not None:
            stream.epoch, stream.cursor = saved["data"]["epoch"], saved["data"]["cursor"]
        if accelerator.is_main_process and args.progress:
            tqdm.write(f"resuming from {ckpt} at step {step}")

    if any(True for _ in listener.parameters()):
        speaker, listener, opt = accelerator.prepare(speaker, listener, opt)
    else:  # a bayes listener without a reconstruction head: nothing of its own to train (or wrap)
        speaker, opt = accelerator.prepare(speaker, opt)
    raw_speaker = accelerator.unwrap_model(speaker)
    accelerator.unwrap_model(listener).attach(raw_speaker)
    device = accelerator.device

    def current_agents() -> Agents:
        return Agents(accelerator.unwrap_model(speaker), accelerator.unwrap_model(listener))

    def evaluate() -> dict[str, float]:
        agents = current_agents()
        acc = accuracy_by_condition(val_rounds, self_play_accuracy(agents, val_rounds, noise=True, seed=args.seed))
        speaker.train()
        listener.train()
        return acc

    def checkpoint() -> None:
        assert ckpt is not None
        tmp, old = ckpt.parent / "checkpoint.tmp", ckpt.parent / "checkpoint.old"
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        _save_rng(g, tmp / f"rng-{accelerator.process_index}.safetensors")
        if accelerator.is_main_process:
            current_agents().save_pretrained(tmp / "agents")
            _save_optimizer(opt.optimizer if hasattr(opt, "optimizer") else opt, tmp)
            write_json(tmp / "state.json", {
                "step": step, "seconds": seconds, "history": history, "args": asdict(args),
                "data": {"epoch": stream.epoch if stream else 0, "cursor": stream.cursor if stream else 0},
                "data_fingerprint": fingerprint, "rng": _python_rng_state(),
            })
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            shutil.rmtree(old, ignore_errors=True)
            if ckpt.exists():
                ckpt.rename(old)
            tmp.rename(ckpt)
            shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    speaker.train()
    listener.train()
    bar = tqdm(total=args.steps, initial=min(step, args.steps), desc=f"agents ({args.channel.kind})",
               disable=None if args.progress and accelerator.is_local_main_process else True)
    params = [*speaker.parameters(), *listener.parameters()]
    last = {}
    while step < args.steps:
        t0 = time.perf_counter()
        b = {k: v.to(device) for k, v in _batch(args, corpus, stream, fresh, step, accelerator).items()}
        gen = g if device.type == "cpu" else None
        loss, logits = _step_loss(args, speaker, listener, raw_speaker, b, gen)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {step + 1}: loss is {loss.item()} (lower the learning rate?)")
        for group in opt.param_groups:
            group["lr"] = args.lr_at(step)
        opt.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if args.grad_clip:
            accelerator.clip_grad_norm_(params, args.grad_clip)
        opt.step()
        step += 1
        seconds += time.perf_counter() - t0
        last = {"loss": f"{loss.item():.3f}", "acc": f"{(logits.argmax(-1) == b['targets']).float().mean().item():.3f}"}
        if args.eval_every and val_rounds and (step % args.eval_every == 0 or step == args.steps):
            history.append({"step": step, "seconds": round(seconds, 3), "val_accuracy": evaluate()})
            last["val"] = f"{history[-1]['val_accuracy']['all']:.3f}"
        bar.set_postfix(last)
        bar.update(1)
        if ckpt is not None and ((args.checkpoint_every and step % args.checkpoint_every == 0) or step == args.steps):
            checkpoint()
        if on_step is not None:
            on_step(step)
    bar.close()

    agents = current_agents()
    agents.speaker.cpu().eval()
    agents.listener.cpu().eval()
    agents.training = {
        "args": asdict(args), "steps": step, "seconds": round(seconds, 3), "history": history,
        "processes": accelerator.num_processes,  # each plays batch_size games a step
        "data": {"train_rounds": len(train_rounds), "val_rounds": len(val_rounds), "validation": val_source},
    }
    if out_dir is not None and accelerator.is_main_process:
        agents.save_pretrained(Path(out_dir))
    return agents


__all__ = ["AgentTrainArgs", "CHANNEL_DEFAULTS", "train_agents", "self_play_accuracy", "accuracy_by_condition", "sample_contexts",
           "color_distance"]
