"""Self-play training of the agent speaker and listener, with `accelerate`.

Each step plays one batch of colour games (`training.colors.agent_batches`): corpus rounds mixed with
freshly sampled contexts of the same three conditions. The listener is trained with cross-entropy
on the target; the speaker gets the same gradient through the channel (continuous, gumbel) or
learns from the channel's `policy_loss` (REINFORCE, reward = the listener's log-probability of the
target).

Checkpoints (`OUT/checkpoint/`, every `checkpoint_every` steps and at the end) hold the agent
bundle, the optimizer and RNG states (`training.checkpoint`) and `state.json` (step, data cursor,
args, history). Restarting with the same arguments and output directory resumes from it, and a
run killed and restarted ends with the same weights, bit for bit, as one left alone (tested).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from training.checkpoint import (
    load_optimizer,
    load_rng,
    python_rng_state,
    recover,
    save_optimizer,
    save_rng,
    set_python_rng_state,
    swap_in,
)
from training.colors.agent_batches import CorpusStream, FreshContexts, fingerprint, step_batch
from translator.games.colors.corpus import CONDITIONS, Round, split_games
from translator.games.colors.features import color_features
from translator.models.channels import ChannelConfig
from translator.models.colors.agents import LISTENER_KINDS, AgentConfig, AgentListener, Agents, AgentSpeaker, to_speaker_order
from translator.settings.checks import non_negative_int
from translator.storage.bundle import BundleError, read_side_file, write_side_file

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
    seed: int = field(default=0, metadata={"help": "random seed", "type": non_negative_int})
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
    # which context-free translation needs (docs/decisions.md)
    reconstruction_weight: float = 0.0
    # discrete channels: the speaker's first symbol sees the target's colour alone (AgentConfig)
    absolute_first_symbol: bool = False
    # "learned" or "bayes": a listener that is the posterior under the speaker (translator.models.colors.agents)
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
STATE_FILE = "state.json"  # the checkpoint's step, data cursor, history, settings and Python/NumPy RNG states
STATE_KIND = "neuralese.agents_training_state"  # the kind `state.json` records, with its format version


def read_state(path: Path) -> dict:
    """A checkpoint's `state.json`; `BundleError` naming it when it is another kind of file or of a
    newer format (files written before it had a kind read as they are)."""
    saved = read_side_file(path, STATE_KIND)
    if not isinstance(saved, dict):
        raise BundleError(f"{path}: expected a JSON object")
    return saved


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


@dataclass
class _Run:
    """What a training run carries from step to step (models as `accelerator.prepare` returns them)."""

    args: AgentTrainArgs
    accelerator: Accelerator
    speaker: torch.nn.Module
    listener: torch.nn.Module
    opt: torch.optim.Optimizer
    generator: torch.Generator
    stream: CorpusStream | None
    fresh: FreshContexts
    corpus: dict[str, torch.Tensor]
    train_rounds: list[Round]
    val_rounds: list[Round]
    val_source: str
    fingerprint: str
    ckpt: Path | None
    step: int = 0
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    raw_speaker: AgentSpeaker | None = None

    def agents(self) -> Agents:
        return Agents(self.accelerator.unwrap_model(self.speaker), self.accelerator.unwrap_model(self.listener))


def _split_validation(args: AgentTrainArgs, train_rounds: list[Round], val_rounds: Sequence[Round] | None
                      ) -> tuple[list[Round], list[Round], str]:
    """`(train, validation, where validation came from)`: the given rounds, or held-out training games."""
    if val_rounds is None and args.val_fraction > 0 and len({r.game_id for r in train_rounds}) > 1:
        train_rounds, val_rounds = split_games(train_rounds, args.val_fraction, seed=args.seed)
        val_source = f"{args.val_fraction:.0%} of training games"
    else:
        val_source = "given" if val_rounds is not None else "none"
    return train_rounds, list(val_rounds or []), val_source


def _new_run(args: AgentTrainArgs, accelerator: Accelerator, train_rounds: list[Round], val_rounds: list[Round],
             val_source: str, out_dir: str | Path | None) -> _Run:
    """Fresh models, optimizer, generator and data streams, seeded from `args.seed`."""
    set_seed(args.seed)
    config = AgentConfig(channel=args.channel, color_dim=args.color_dim, hidden_dim=args.hidden_dim,
                         reconstruction=args.reconstruction_weight > 0, listener=args.listener,
                         absolute_first_symbol=args.absolute_first_symbol)
    speaker, listener = AgentSpeaker(config), AgentListener(config)
    opt = torch.optim.Adam([*speaker.parameters(), *listener.parameters()], lr=args.lr)
    g = torch.Generator().manual_seed(args.seed * 7919 + 17 + accelerator.process_index)
    stream = CorpusStream(len(train_rounds), args.seed) if train_rounds and args.fresh_fraction < 1 else None
    n_fresh = args.batch_size if stream is None else round(args.batch_size * args.fresh_fraction)
    fresh = FreshContexts(n_fresh * accelerator.num_processes, args.seed)
    colors, order, targets = Agents.round_inputs(train_rounds)
    corpus = {"colors": colors, "targets": targets, "speaker_order": order}
    ckpt = Path(out_dir) / "checkpoint" if out_dir is not None else None
    return _Run(args, accelerator, speaker, listener, opt, g, stream, fresh, corpus, train_rounds, val_rounds,
                val_source, fingerprint(train_rounds), ckpt)


def _resume(run: _Run) -> None:
    """Load the run's checkpoint into the (not yet prepared) models, optimizer and generators, if there is one."""
    if run.ckpt is None:
        return
    recover(run.ckpt)
    if not (run.ckpt / STATE_FILE).is_file():
        return
    saved = read_state(run.ckpt / STATE_FILE)
    _check_resumable(run.ckpt / STATE_FILE, saved, run.args, run.fingerprint)
    agents = Agents.from_pretrained(run.ckpt / "agents")
    run.speaker.load_state_dict(agents.speaker.state_dict())
    run.listener.load_state_dict(agents.listener.state_dict())
    load_optimizer(run.opt, run.ckpt)
    load_rng(run.generator, run.ckpt / f"rng-{run.accelerator.process_index}.safetensors")
    set_python_rng_state(saved["rng"])
    run.step, run.history, run.seconds = saved["step"], saved["history"], saved["seconds"]
    if run.stream is not None:
        run.stream.epoch, run.stream.cursor = saved["data"]["epoch"], saved["data"]["cursor"]
    if run.accelerator.is_main_process and run.args.progress:
        tqdm.write(f"resuming from {run.ckpt} at step {run.step}")


def _prepare(run: _Run) -> None:
    """Hand the models and optimizer to `accelerate` and attach the listener to its speaker."""
    acc = run.accelerator
    if any(True for _ in run.listener.parameters()):
        run.speaker, run.listener, run.opt = acc.prepare(run.speaker, run.listener, run.opt)
    else:  # a bayes listener without a reconstruction head: nothing of its own to train (or wrap)
        run.speaker, run.opt = acc.prepare(run.speaker, run.opt)
    run.raw_speaker = acc.unwrap_model(run.speaker)
    acc.unwrap_model(run.listener).attach(run.raw_speaker)


def _validate(run: _Run) -> dict[str, float]:
    acc = accuracy_by_condition(run.val_rounds, self_play_accuracy(run.agents(), run.val_rounds, noise=True, seed=run.args.seed))
    run.speaker.train()
    run.listener.train()
    return acc


def _checkpoint(run: _Run) -> None:
    assert run.ckpt is not None
    acc = run.accelerator

    def write(tmp: Path, main: bool) -> None:
        save_rng(run.generator, tmp / f"rng-{acc.process_index}.safetensors")
        if main:
            run.agents().save_pretrained(tmp / "agents")
            save_optimizer(run.opt.optimizer if hasattr(run.opt, "optimizer") else run.opt, tmp)
            write_side_file(tmp / STATE_FILE, STATE_KIND, {
                "step": run.step, "seconds": run.seconds, "history": run.history, "args": asdict(run.args),
                "data": {"epoch": run.stream.epoch if run.stream else 0, "cursor": run.stream.cursor if run.stream else 0},
                "data_fingerprint": run.fingerprint, "rng": python_rng_state(),
            })

    swap_in(run.ckpt, write, acc.wait_for_everyone, acc.is_main_process)


def _train_step(run: _Run, params: list[torch.nn.Parameter]) -> dict[str, str]:
    """One optimiser step; returns the progress bar's figures."""
    args, acc = run.args, run.accelerator
    t0 = time.perf_counter()
    batch = step_batch(args.batch_size, args.fresh_fraction, run.corpus, run.stream, run.fresh, run.step, acc)
    b = {k: v.to(acc.device) for k, v in batch.items()}
    gen = run.generator if acc.device.type == "cpu" else None
    loss, logits = _step_loss(args, run.speaker, run.listener, run.raw_speaker, b, gen)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"step {run.step + 1}: loss is {loss.item()} (lower the learning rate?)")
    for group in run.opt.param_groups:
        group["lr"] = args.lr_at(run.step)
    run.opt.zero_grad(set_to_none=True)
    acc.backward(loss)
    if args.grad_clip:
        acc.clip_grad_norm_(params, args.grad_clip)
    run.opt.step()
    run.step += 1
    run.seconds += time.perf_counter() - t0
    return {"loss": f"{loss.item():.3f}", "acc": f"{(logits.argmax(-1) == b['targets']).float().mean().item():.3f}"}


def _loop(run: _Run, on_step: Callable[[int], None] | None) -> None:
    """Steps until `args.steps`, validating and checkpointing on schedule."""
    args = run.args
    run.speaker.train()
    run.listener.train()
    bar = tqdm(total=args.steps, initial=min(run.step, args.steps), desc=f"agents ({args.channel.kind})",
               disable=None if args.progress and run.accelerator.is_local_main_process else True)
    params = [*run.speaker.parameters(), *run.listener.parameters()]
    while run.step < args.steps:
        last = _train_step(run, params)
        step = run.step
        if args.eval_every and run.val_rounds and (step % args.eval_every == 0 or step == args.steps):
            run.history.append({"step": step, "seconds": round(run.seconds, 3), "val_accuracy": _validate(run)})
            last["val"] = f"{run.history[-1]['val_accuracy']['all']:.3f}"
        bar.set_postfix(last)
        bar.update(1)
        if run.ckpt is not None and ((args.checkpoint_every and step % args.checkpoint_every == 0) or step == args.steps):
            _checkpoint(run)
        if on_step is not None:
            on_step(step)
    bar.close()


def _finish(run: _Run, out_dir: str | Path | None) -> Agents:
    """The trained agents on the CPU with their training record; saved to `out_dir` by the main process."""
    agents = run.agents()
    agents.speaker.cpu().eval()
    agents.listener.cpu().eval()
    agents.training = {
        "args": asdict(run.args), "steps": run.step, "seconds": round(run.seconds, 3), "history": run.history,
        "processes": run.accelerator.num_processes,  # each plays batch_size games a step
        "data": {"train_rounds": len(run.train_rounds), "val_rounds": len(run.val_rounds), "validation": run.val_source},
    }
    if out_dir is not None and run.accelerator.is_main_process:
        agents.save_pretrained(Path(out_dir))
    return agents


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
    train, val, val_source = _split_validation(args, list(train_rounds), val_rounds)
    run = _new_run(args, accelerator, train, val, val_source, out_dir)
    _resume(run)
    _prepare(run)
    _loop(run, on_step)
    return _finish(run, out_dir)


__all__ = ["AgentTrainArgs", "CHANNEL_DEFAULTS", "train_agents", "self_play_accuracy", "accuracy_by_condition"]
