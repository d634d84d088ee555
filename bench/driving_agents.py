"""Benchmark: training the driving agents (talking and silent), as the driving demo trains them.

Target: both agents trained in under 5 minutes on 2 CPU cores (one process and one torch thread
per agent, side by side, as `translator.apps.driving.demo` runs them). Reports wall seconds and each
process's CPU seconds (CPU time does not grow when other work shares the cores), and the load
average, and writes `bench/results/driving_agents.json`.

    python bench/driving_agents.py [--updates N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import torch

from training.driving.a2c import A2CConfig, train_agents
from translator.games.driving.agents import DrivingAgentConfig

ROOT = Path(__file__).resolve().parents[1]


def _train(out: str, silent: bool, updates: int, seed: int) -> dict:
    torch.set_num_threads(1)
    began, cpu = time.perf_counter(), time.process_time()
    train_agents(out, DrivingAgentConfig(silent=silent), A2CConfig(updates=updates, seed=seed), resume=False)
    return {"silent": silent, "wall_s": round(time.perf_counter() - began, 1), "cpu_s": round(time.process_time() - cpu, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=A2CConfig.updates)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "driving_agents.json"))
    args = p.parse_args()
    load_before = os.getloadavg()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [pool.submit(_train, f"{tmp}/{n}", n == "silent", args.updates, args.seed) for n in ("talking", "silent")]
        rows = [j.result() for j in jobs]
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "updates": args.updates,
        "seed": args.seed,
        "torch": torch.__version__,
        "wall_s_both": round(time.perf_counter() - began, 1),
        "agents": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
