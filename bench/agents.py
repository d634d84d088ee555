"""Benchmark: self-play training time per channel, and collection throughput.

Targets (issue 3): each channel reaches its dev self-play accuracy (noise on: 0.98 continuous and
gumbel, 0.90 reinforce) in under 3 minutes; a whole corpus file (~15,000 rounds) is collected in
under 30 s. Prints a table and writes `bench/results/agents.json`.

    .venv/bin/python bench/agents.py [--threads N] [--channels continuous gumbel reinforce]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from training.agents import AgentTrainArgs, self_play_accuracy, train_agents
from training.collect import collect
from translator.corpus import load_rounds

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"continuous": 0.98, "gumbel": 0.98, "reinforce": 0.90}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--channels", nargs="+", default=list(TARGETS))
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "agents.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    train = load_rounds(ROOT / "data" / "colors_in_context" / "train.csv")
    dev = load_rounds(ROOT / "data" / "colors_in_context" / "dev.csv")
    rows = []
    for channel in args.channels:
        targs = AgentTrainArgs.for_channel(channel, eval_every=0, progress=False)
        with tempfile.TemporaryDirectory() as tmp:
            agents = train_agents(train, targs, tmp)
        acc = self_play_accuracy(agents, dev).float().mean().item()
        start = time.perf_counter()
        ds = collect(agents, dev)
        collect_s = time.perf_counter() - start
        rows.append({
            "channel": channel, "steps": agents.training["steps"], "train_seconds": agents.training["seconds"],
            "dev_self_play": acc, "target": TARGETS[channel], "meets_accuracy": acc >= TARGETS[channel],
            "meets_time": agents.training["seconds"] < 180, "collect_rounds": len(ds), "collect_seconds": collect_s,
            "collect_rounds_per_s": len(ds) / collect_s,
        })  # fmt: skip
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
        "threads": args.threads, "torch": torch.__version__, "results": rows,
    }  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'channel':<12}{'steps':>7}{'train s':>9}{'dev acc':>9}{'target':>8}{'collect s':>11}{'rounds/s':>10}")
    for r in rows:
        print(f"{r['channel']:<12}{r['steps']:>7}{r['train_seconds']:>9.1f}{r['dev_self_play']:>9.3f}{r['target']:>8.2f}"
              f"{r['collect_seconds']:>11.2f}{r['collect_rounds_per_s']:>10.0f}")


if __name__ == "__main__":
    main()
