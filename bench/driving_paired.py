"""Probe: can the driving evaluation tell the translators apart? Paired differences and the ceiling.

`neuralese evaluate` reports each translator's success with its own 95% interval over games. Two
translators whose intervals overlap may still differ reliably on the same games, and an interval
can only be so narrow when the best possible success is close to the baselines'. This probe
plays H->R and R->H for every translator on the same games with several seeds of the channel noise
(the agents act greedily: the noise is what a seed changes), and reports:
- each translator's success and reward, averaged over the seeds (episodes of a game stay one group);
- belief minus each other translator, per game (paired), with a 95% bootstrap interval over games;
- the H->R ceiling: the share of episodes whose replayed person reaches their goal in the log
  (the robot cannot make a logged person arrive), with the interval a perfect robot would get.

    python bench/driving_paired.py --run RUN --data data/driving/dev.jsonl [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from eval.driving import evaluate as ev
from translator.games.driving.agents import DrivingAgent
from translator.games.driving.english import HumanDriver, HumanSpeaker
from translator.games.driving.logs import read_logs
from translator.games.driving.translators import build_translators, driving_dir, run_info

ROOT = Path(__file__).resolve().parents[1]
WAYS = ("to_neuralese", "to_english")


def played(base: Path, games: list, seeds: int) -> dict[tuple[str, str], ev.Played]:
    """Every translator and direction, the episodes of all seeds concatenated."""
    agent = DrivingAgent.from_pretrained(base / "agents")
    speaker = HumanSpeaker.from_pretrained(base / "english_speaker")
    driver = HumanDriver.from_pretrained(base / "english_driver")
    info = run_info(base)
    translators = build_translators(agent, speaker, read_logs(info.train), info.seed)
    runs: dict[tuple[str, str], list[ev.Played]] = {}
    with tqdm(total=seeds * len(translators) * 2, desc="episodes") as bar:
        for seed in range(info.seed, info.seed + seeds):
            for name, tr in translators.items():
                runs.setdefault((name, "to_neuralese"), []).append(ev.play_human_to_robot(agent, tr, games, seed))
                bar.update()
                runs.setdefault((name, "to_english"), []).append(ev.play_robot_to_human(agent, driver, tr, games, seed))
                bar.update()
    cat = lambda ps, f: np.concatenate([getattr(p, f) for p in ps])  # noqa: E731
    return {k: ev.Played(*(cat(ps, f) for f in ("reward", "success", "crash", "maps", "games"))) for k, ps in runs.items()}


def paired(a: ev.Played, b: ev.Played) -> dict:
    """a minus b, episode by episode (the same games, seeds and cars), with intervals over games."""
    ds, dr = a.success.astype(float) - b.success, a.reward - b.reward
    return {
        "success": round(float(ds.mean()), 4),
        "ci95_success": ev.bootstrap(ds, a.games),
        "reward": round(float(dr.mean()), 4),
        "ci95_reward": ev.bootstrap(dr, a.games),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--data", type=Path, default=ROOT / "data" / "driving" / "dev.jsonl")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "driving_paired.json")
    a = p.parse_args()
    torch.set_num_threads(1)
    games = read_logs(a.data)
    runs = played(driving_dir(a.run), games, a.seeds)
    logged = np.array([g.done[-1] for g in games], dtype=float)  # (G, 2): each person reaches the goal
    ceiling = float(logged.mean())
    result: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "run": str(a.run), "data": str(a.data), "games": len(games), "seeds": a.seeds,
        "to_neuralese_ceiling": round(ceiling, 4),
        "translators": {f"{n}.{w}": {k: v for k, v in r.summary().items() if k != "per_map"} for (n, w), r in runs.items()},
        "belief_minus": {f"{o}.{w}": paired(runs[("belief", w)], runs[(o, w)]) for w in WAYS for o in ("direct", "random", "silent")},
    }  # fmt: skip
    # a perfect robot succeeds exactly where the logged person arrives: its interval over games
    ids = np.tile(np.arange(len(games)), 2)
    result["to_neuralese_ceiling_ci95"] = ev.bootstrap(np.concatenate([logged[:, 0], logged[:, 1]]), ids)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
