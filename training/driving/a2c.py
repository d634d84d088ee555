"""Train the driving agents by self-play with advantage actor-critic (A2C), with `accelerate`.

Each update plays a batch of fresh episodes from the game's start distribution (the maps, start and
goal cells of the human games), then takes one gradient step on the policy-gradient loss with a
learned baseline (discounted Monte-Carlo returns of the shared team reward), a value loss and an
entropy bonus, backpropagating through the message channel. Seeded; checkpoints (safetensors +
JSON, written atomically) let an interrupted run resume where it stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from training.driving.rollout import Trajectory, rollout
from translator.games.driving.agents import DrivingAgent, DrivingAgentConfig
from translator.games.driving.game import template_starts
from translator.storage.bundle import TRAINING_FILE, TRAINING_KIND, BundleError, read_side_file, write_side_file

CHECKPOINT_FILE = "checkpoint.json"  # beside checkpoint.safetensors: the update reached, the settings, NumPy's RNG
CHECKPOINT_KIND = "driving_a2c_checkpoint"  # the kind it records, with its format version


@dataclass
class A2CConfig:
    updates: int = 2000
    batch: int = 128
    lr: float = 1e-3
    gamma: float = 0.95
    lam: float = 0.8
    entropy: float = 0.06
    entropy_final: float = 0.01
    value_coef: float = 0.5
    seed: int = 0
    checkpoint_every: int = 100
    maps: tuple[int, ...] | None = None  # train on these maps only (default: all five)
    crash_penalty: float = 2.0  # taken from each car's share on a crash, beyond the game's own (training only)


def advantages(traj: Trajectory, gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimates (GAE) of each car's steps; a car's episode ends when it
    stops driving (done, crash or step limit)."""
    value = traj.value.detach() * traj.acting
    adv = torch.zeros_like(traj.reward)
    running = torch.zeros_like(traj.reward[0])
    for t in reversed(range(traj.reward.shape[0])):
        nxt = value[t + 1] if t + 1 < value.shape[0] else torch.zeros_like(running)
        delta = traj.reward[t] + gamma * nxt - value[t]
        carry = traj.acting[t + 1] if t + 1 < value.shape[0] else torch.zeros_like(running)
        running = (delta + gamma * lam * carry * running) * traj.acting[t]
        adv[t] = running
    return adv


def loss(traj: Trajectory, cfg: A2CConfig, entropy_coef: float) -> tuple[torch.Tensor, dict[str, float]]:
    mask = traj.acting
    n = mask.sum().clamp(min=1)
    adv = advantages(traj, cfg.gamma, cfg.lam)
    ret = adv + traj.value.detach()
    adv = (adv - (adv * mask).sum() / n) / (((adv**2) * mask).sum() / n).sqrt().clamp(min=1e-6)
    policy = -(traj.logp * adv * mask).sum() / n
    value = (((ret - traj.value) ** 2) * mask).sum() / n
    entropy = (traj.entropy * mask).sum() / n
    total = policy + cfg.value_coef * value - entropy_coef * entropy
    return total, {"policy": policy.item(), "value": value.item(), "entropy": entropy.item()}


def _save_checkpoint(
    directory: Path,
    agent: DrivingAgent,
    opt: torch.optim.Optimizer,
    update: int,
    cfg: A2CConfig,
    rng: np.random.Generator,
    gen: torch.Generator,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in agent.state_dict().items()}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            tensors[f"opt.{i}.{k}"] = v.detach().reshape(-1).contiguous() if v.dim() == 0 else v.detach().contiguous()
    tensors["torch_rng"] = gen.get_state()
    tmp = directory / "checkpoint.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(directory / "checkpoint.safetensors")
    write_side_file(
        directory / CHECKPOINT_FILE,
        CHECKPOINT_KIND,
        {
            "update": update,
            "a2c": asdict(cfg),
            "agent": asdict(agent.config),
            "numpy_rng": rng.bit_generator.state,
        },
    )


def _load_checkpoint(
    directory: Path,
    agent: DrivingAgent,
    opt: torch.optim.Optimizer,
    rng: np.random.Generator,
    gen: torch.Generator,
    cfg: A2CConfig,
) -> int:
    path = directory / CHECKPOINT_FILE
    meta = read_side_file(path, CHECKPOINT_KIND)
    if not isinstance(meta, dict):
        raise BundleError(f"{path}: expected a JSON object")
    same = json.loads(json.dumps({"a2c": asdict(cfg), "agent": asdict(agent.config)}))
    for key, want in same.items():
        if meta.get(key) != want:
            raise ValueError(
                f"{path}: written for another {key} configuration ({meta.get(key)} != {want}); "
                "delete the checkpoint folder or use another output directory"
            )
    tensors = load_file(str(directory / "checkpoint.safetensors"))
    agent.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state = opt.state_dict()
    for name, v in tensors.items():
        if name.startswith("opt."):
            _, i, k = name.split(".", 2)
            opt_state["state"].setdefault(int(i), {})[k] = v.reshape(()) if k == "step" else v
    opt.load_state_dict(opt_state)
    gen.set_state(tensors["torch_rng"])
    rng.bit_generator.state = meta["numpy_rng"]
    return int(meta["update"])


def _entropy_coef(cfg: A2CConfig, update: int) -> float:
    frac = min(1.0, update / max(1, cfg.updates - 1))
    return cfg.entropy + frac * (cfg.entropy_final - cfg.entropy)


def train_agents(
    out_dir: str | Path,
    agent_config: DrivingAgentConfig | None = None,
    cfg: A2CConfig | None = None,
    resume: bool = True,
    accelerator: Accelerator | None = None,
    stop_at: int | None = None,
) -> DrivingAgent:
    """Train (or resume training) and write the agent bundle to `out_dir`; returns the agent.
    `stop_at` ends this run after that many updates, with a checkpoint (as an interruption would)."""
    out_dir, cfg = Path(out_dir), cfg or A2CConfig()
    set_seed(cfg.seed)
    accelerator = accelerator or Accelerator(cpu=True)
    agent = DrivingAgent(agent_config or DrivingAgentConfig())
    opt = torch.optim.Adam(agent.parameters(), lr=cfg.lr)
    rng, gen = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    ckpt, start = out_dir / "checkpoint", 0
    if resume and (ckpt / CHECKPOINT_FILE).is_file():
        start = _load_checkpoint(ckpt, agent, opt, rng, gen, cfg)
    agent, opt = accelerator.prepare(agent, opt)
    model = accelerator.unwrap_model(agent)
    began, history = time.perf_counter(), []
    bar = tqdm(range(start, cfg.updates), desc="driving agents", disable=None, leave=False)
    for update in bar:
        traj = rollout(model, template_starts(cfg.batch, rng, cfg.maps), gen, crash_penalty=cfg.crash_penalty)
        total, stats = loss(traj, cfg, _entropy_coef(cfg, update))
        opt.zero_grad(set_to_none=True)
        accelerator.backward(total)
        accelerator.clip_grad_norm_(agent.parameters(), 1.0)
        opt.step()
        stats.update(
            reward=float(traj.total_reward.mean()),
            success=float(traj.final.success.mean()),
            crash=float(traj.final.crashed.mean()),
        )
        history.append(stats)
        if (update + 1) % cfg.checkpoint_every == 0 or update + 1 in (cfg.updates, stop_at):
            _save_checkpoint(ckpt, model, opt, update + 1, cfg, rng, gen)
            recent = history[-cfg.checkpoint_every :]
            bar.set_postfix(success=f"{np.mean([h['success'] for h in recent]):.2f}")
        if stop_at is not None and update + 1 >= stop_at:
            return model.eval()
    model.save_pretrained(out_dir)
    write_side_file(
        out_dir / TRAINING_FILE,
        TRAINING_KIND,
        {
            "a2c": asdict(cfg),
            "updates_run": cfg.updates - start,
            "seconds": round(time.perf_counter() - began, 1),
            "last_100": {k: float(np.mean([h[k] for h in history[-100:]])) for k in history[0]} if history else {},
        },
    )
    return model.eval()
