"""Probe: how fast an EGG-like *flat* agent pair learns the colour game, noise on and off.

Not the project's agents (`translator/models/colors/agents.py`): the speaker is an MLP of the target's colour
features and the sum and absolute difference of the other two; the listener embeds each colour
on its own and scores it by a dot product with a linear map of the message, as EGG's
discriminative games do. The continuous channel is the project's: L2-normalised 64-d `z` plus
Gaussian noise. Games are freshly sampled (`sample_contexts`); self-play accuracy (noise on when
training has it) is scored every 10 steps on the 5% of training games `train_agents` holds out.
Prints the time (training only) to the first 0.98 and the accuracy by condition every 100 steps.

    .venv/bin/python bench/flat_agents_probe.py [--noise 0.3] [--hidden 128] [--batch 256] [--lr 4e-3] [--steps 400] [--listener-context]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from translator.games.colors.corpus import load_rounds, split_games
from translator.games.colors.features import COLOR_DIM, color_features
from translator.games.colors.sampling import sample_contexts
from translator.models.colors.agents import Agents, to_speaker_order

ROOT = Path(__file__).resolve().parents[1]


class FlatSpeaker(nn.Module):
    def __init__(self, hidden: int, dim: int = 64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(3 * COLOR_DIM, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, colors: torch.Tensor, targets: torch.Tensor, noise: float) -> torch.Tensor:
        f, rows = color_features(colors), torch.arange(len(colors))
        a, b = f[rows, (targets + 1) % 3], f[rows, (targets + 2) % 3]
        mu = F.normalize(self.mlp(torch.cat([f[rows, targets], a + b, (a - b).abs()], -1)), dim=-1)
        return mu + noise * torch.randn_like(mu) if noise else mu


class FlatListener(nn.Module):
    """`context`: each colour is embedded with the sum and absolute difference of the other two."""

    def __init__(self, hidden: int, dim: int = 64, context: bool = False):
        super().__init__()
        self.context = context
        self.message = nn.Linear(dim, hidden)
        self.colors = nn.Sequential(nn.Linear((3 if context else 1) * COLOR_DIM, hidden), nn.GELU(), nn.Linear(hidden, hidden))

    def forward(self, z: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
        f = color_features(colors)
        if self.context:
            a, b = f[:, [1, 2, 0]], f[:, [2, 0, 1]]
            f = torch.cat([f, a + b, (a - b).abs()], -1)
        return torch.einsum("bh,bch->bc", self.message(z), self.colors(f))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--noise", type=float, default=0.3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--listener-context", action="store_true", help="the listener sees each colour with the other two")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    _, val = split_games(load_rounds(ROOT / "data" / "colors_in_context" / "train.csv"), 0.05, seed=args.seed)
    colors, order, targets = Agents.round_inputs(val)
    speaker_colors, speaker_targets = to_speaker_order(colors, order, targets)
    conditions = {c: torch.tensor([r.condition == c for r in val]) for c in ("far", "split", "close")}
    speaker, listener = FlatSpeaker(args.hidden), FlatListener(args.hidden, context=args.listener_context)
    params = [*speaker.parameters(), *listener.parameters()]
    opt = torch.optim.Adam(params, lr=args.lr)
    games = sample_contexts(args.batch * args.steps, torch.Generator().manual_seed(args.seed))
    seconds, first = 0.0, None
    print("| step | train s | held-out self-play | far | split | close |\n|---|---|---|---|---|---|")
    for step in range(1, args.steps + 1):
        start = time.perf_counter()
        sl = slice((step - 1) * args.batch, step * args.batch)
        c, t = games["colors"][sl], games["targets"][sl]
        sc, st = to_speaker_order(c, games["speaker_order"][sl], t)
        loss = F.cross_entropy(listener(speaker(sc, st, args.noise), c), t)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        seconds += time.perf_counter() - start
        if step % 10:
            continue
        with torch.no_grad():
            correct = listener(speaker(speaker_colors, speaker_targets, args.noise), colors).argmax(-1) == targets
        if first is None and correct.float().mean() >= 0.98:
            first = (step, seconds)
        if step % 100 == 0:
            by = " | ".join(f"{correct[m].float().mean().item():.3f}" for m in conditions.values())
            print(f"| {step} | {seconds:.2f} | {correct.float().mean().item():.3f} | {by} |")
    reached = f"step {first[0]}, {first[1]:.2f} s" if first else "not reached"
    print(f"\n{vars(args)}: {1000 * seconds / args.steps:.1f} ms a step; first at 0.98: {reached}")


if __name__ == "__main__":
    main()
