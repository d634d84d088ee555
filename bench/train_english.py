"""Benchmark: train the English listener and speaker on the full bundled training split.

Target: both together in under 10 minutes on the project's 2-core CPU machine.
Prints a table and writes `bench/results/train_english.json`.

    .venv/bin/python bench/train_english.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from training.colors.english import EnglishTrainArgs, train_english
from translator.games.colors.corpus import load_rounds

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_english.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rounds = load_rounds(ROOT / "data" / "colors_in_context" / "train.csv")
    start = time.perf_counter()
    models = train_english(rounds, args=EnglishTrainArgs())
    total = time.perf_counter() - start
    t = models.training
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
        "threads": args.threads,
        "torch": torch.__version__,
        "rounds": len(rounds),
        "listener_seconds": t["listener"]["seconds"],
        "listener_epochs": len(t["listener"]["history"]),
        "listener_val_accuracy": t["listener"]["val_accuracy"],
        "speaker_seconds": t["speaker"]["seconds"],
        "speaker_epochs": len(t["speaker"]["history"]),
        "speaker_val_perplexity": t["speaker"]["val_perplexity"],
        "total_seconds": total,
        "target_seconds": 600,
        "meets_target": total < 600,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'what':<28}{'value':>12}")
    for k in ("listener_seconds", "listener_epochs", "listener_val_accuracy", "speaker_seconds", "speaker_epochs",
              "speaker_val_perplexity", "total_seconds", "meets_target"):
        v = result[k]
        print(f"{k:<28}{v:>12.3f}" if isinstance(v, float) else f"{k:<28}{v!s:>12}")


if __name__ == "__main__":
    main()
