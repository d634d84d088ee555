"""Import our own driving agents as if built elsewhere and measure what the import recovers.

Exports the self-play of a trained run's agents (`translator/games/driving/export.py`) to the
episode format, imports it (check, fit the message model), then on fresh self-play episodes
compares belief translation to English through the fitted model with the same translation through
the agent's own channel (same fresh states, same English speaker): the share of steps where both
pick the same utterance. Baselines: the random translator, the one utterance the agent's own
channel picks most often (reads no message), and a constant message model (reads no observation).
Also the held-out NLL of the messages under the model, the constant model and the agent itself.

    python bench/driving_import_probe.py --run /work/runs/driving/final-s0 --episodes 1000 --out DIR
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import torch

from eval.driving.import_agreement import translation_agreement
from training.driving.import_episodes import import_episodes
from training.driving.message_model import MessageModelArgs
from translator.games.driving.agents import DrivingAgent
from translator.games.driving.export import SpokenStep, self_play_steps, write_episode_file
from translator.games.driving.imported import ImportedAgent


def own_nll(agent: DrivingAgent, steps: list[SpokenStep]) -> float:
    """Mean NLL (nats per message) of the sent messages under the agent's own channel."""
    z = torch.cat([s.said.z for s in steps])
    mean = torch.cat([s.said.mean for s in steps])
    d, s2 = z.shape[1], agent.config.noise**2
    return float((((z - mean) ** 2).sum(1) / (2 * s2) + 0.5 * d * math.log(2 * math.pi * s2)).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="a driving run with agents/ and english_speaker/")
    p.add_argument("--episodes", type=int, default=1000, help="self-play episodes exported for the import")
    p.add_argument("--test-episodes", type=int, default=200, help="fresh self-play episodes the agreement is measured on")
    p.add_argument("--epochs", type=int, default=MessageModelArgs.epochs)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="where the import folder goes (default: a temporary one)")
    args = p.parse_args()
    torch.set_num_threads(1)
    base = args.run / "driving" if (args.run / "driving" / "agents").is_dir() else args.run
    agent = DrivingAgent.from_pretrained(base / "agents")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "import"
        exported = self_play_steps(agent, args.episodes, seed=args.seed)
        write_episode_file(Path(tmp) / "episodes.jsonl", exported)
        info = import_episodes(Path(tmp) / "episodes.jsonl", out, base, MessageModelArgs(seed=args.seed, epochs=args.epochs))
        fresh = self_play_steps(agent, args.test_episodes, seed=args.seed + 1000, prefix="t")
        fit = info["message_model"]
        result = {"episodes": args.episodes, "import_steps": info["steps"], "message_model": fit,
                  "own_channel_nll_fresh": round(own_nll(agent, [s for s in fresh if not s.line["car"]["done"]]), 4),
                  **translation_agreement(ImportedAgent.load(out), agent, fresh)}  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
