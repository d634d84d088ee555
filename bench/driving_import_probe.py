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
from collections import Counter
from pathlib import Path

import torch

from training.driving.import_episodes import import_episodes
from training.driving.message_model import MessageModelArgs
from translator.games.driving.agents import DrivingAgent
from translator.games.driving.export import SpokenStep, self_play_steps, write_episode_file
from translator.games.driving.imported import ImportedAgent, build_imported_translator
from translator.games.driving.play import Said
from translator.games.driving.records import parse_record, to_state
from translator.games.driving.translate import BeliefContext, BeliefTranslator


def own_nll(agent: DrivingAgent, steps: list[SpokenStep]) -> float:
    """Mean NLL (nats per message) of the sent messages under the agent's own channel."""
    z = torch.cat([s.said.z for s in steps])
    mean = torch.cat([s.said.mean for s in steps])
    d, s2 = z.shape[1], agent.config.noise**2
    return float((((z - mean) ** 2).sum(1) / (2 * s2) + 0.5 * d * math.log(2 * math.pi * s2)).mean())


def agreement(folder: Path, agent: DrivingAgent, steps: list[SpokenStep], seed: int) -> dict:
    imported = ImportedAgent.load(folder)
    model_tr = build_imported_translator("belief", imported)
    own_tr = BeliefTranslator(BeliefContext(agent, imported.speaker, seed=seed), imported.pool)
    constant = ImportedAgent.load(folder)
    with torch.no_grad():  # a model that reads no observation: its mean is the average message
        last = constant.model.net[-1]
        mean = torch.stack([s.said.z[0] for s in steps]).mean(0)
        last.weight.zero_()
        last.bias.copy_(mean)
    const_tr = build_imported_translator("belief", constant)
    random_tr = build_imported_translator("random", imported)
    driving = [s for s in steps if not s.line["car"]["done"]]
    picks: dict[str, list[str]] = {"own": [], "model": [], "constant": [], "random": []}
    for k in range(0, len(driving), 256):
        chunk = driving[k : k + 256]
        state = to_state(
            [
                parse_record({kk: v for kk, v in s.line.items() if kk in ("map", "car", "other", "message")}, "english")
                for s in chunk
            ]
        )
        said = Said(
            torch.cat([s.said.z for s in chunk]), torch.cat([s.said.h for s in chunk]), torch.cat([s.said.heard for s in chunk])
        )
        obs = own_tr.c.states_each(state, 0)
        with torch.no_grad():
            for name, tr in (("own", own_tr), ("model", model_tr), ("constant", const_tr)):
                picks[name] += [tr.utterances[i] for i in tr.english_scores(said, obs).argmin(1).tolist()]
        picks["random"] += random_tr.to_english(said, state, 0)
    majority = Counter(picks["own"]).most_common(1)[0]
    n = len(driving)
    agree = {name: sum(a == b for a, b in zip(picks["own"], picks[name])) / n for name in ("model", "constant", "random")}
    agree["majority"] = majority[1] / n
    return {
        "steps": n,
        "agreement_with_own_channel": {k: round(v, 4) for k, v in agree.items()},
        "majority_utterance": majority[0],
        "distinct_own": len(set(picks["own"])),
        "distinct_model": len(set(picks["model"])),
    }


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
        result = {"episodes": args.episodes, "steps": info["steps"], "message_model": fit,
                  "own_channel_nll_fresh": round(own_nll(agent, [s for s in fresh if not s.line["car"]["done"]]), 4),
                  **agreement(out, agent, fresh, args.seed)}  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
