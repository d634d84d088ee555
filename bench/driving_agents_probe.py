"""Probe: train driving agents in chunks and score them on held-out *training-distribution* starts.

Scores after every chunk (resuming from the checkpoint, so the run equals an uninterrupted one):
success and crash from 2,000 fresh server-like starts (a seed training never draws) and from the
start states of the 222 training games; dev is never read. Prints one JSON line per chunk.

    python bench/driving_agents_probe.py --out DIR --updates 2000 --chunk 400 [--silent] [A2C field=value ...] (maps=0,1,2,3,4,4)
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields

import numpy as np
import torch

from eval.driving.evaluate import cut
from training.driving.a2c import A2CConfig, train_agents
from translator.games.driving.agents import DrivingAgentConfig
from translator.games.driving.env import MAX_STEPS
from translator.games.driving.game import logged_starts, template_starts
from translator.games.driving.logs import read_logs
from translator.games.driving.play import AgentDriver, play, unchanged
from translator.storage.bundled_data import bundled

HELD_SEED = 987_654  # fresh starts no training run draws


def score(agent, state, relay=unchanged) -> dict:
    out = play(state, [AgentDriver(agent, 0), AgentDriver(agent, 1)], [relay, relay], MAX_STEPS)
    return {"success": round(float(out.success.mean()), 4), "crash": round(float(out.crash.mean()), 4)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--updates", type=int, default=800)
    p.add_argument("--chunk", type=int, default=400)
    p.add_argument("--silent", action="store_true")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("set", nargs="*", help="A2C field=value")
    a = p.parse_args()
    torch.set_num_threads(1)
    kinds = {f.name: f.type for f in fields(A2CConfig)}
    kw: dict = {}
    for k, v in (s.split("=") for s in a.set):
        kw[k] = tuple(int(m) for m in v.split(",")) if k == "maps" else float(v) if "float" in str(kinds[k]) else int(v)
    cfg = A2CConfig(updates=a.updates, **kw)
    fresh = template_starts(2000, np.random.default_rng(HELD_SEED))
    train = logged_starts(read_logs(bundled("driving") / "train.jsonl"))
    began = time.process_time()
    for stop in range(a.chunk, a.updates + 1, a.chunk):
        agent = train_agents(a.out, DrivingAgentConfig(silent=a.silent, hidden=a.hidden), cfg, stop_at=stop)
        cpu = time.process_time() - began
        row = {"update": stop, "cpu_s": round(cpu, 1), "fresh": score(agent, fresh), "train_games": score(agent, train)}
        if not a.silent:
            row["fresh_cut"] = score(agent, fresh, cut)
        print(json.dumps(row), flush=True)
        began = time.process_time()


if __name__ == "__main__":
    main()
