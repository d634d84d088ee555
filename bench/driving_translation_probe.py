"""Probe: H->R and R->H of every driving translator on held-out *training* games (never dev).

The training logs are split as the English models split them (`split_games`, seed 0): the
translators and their paired corpus are built from the fitted part and every translator is
scored on the held part (each game twice, the person or robot as either car). Prints one line per
translator and direction: success, crash, reward and the 95% interval of success.

    python bench/driving_translation_probe.py --agents DIR [--english DIR] [--driver DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from eval.driving import evaluate as ev
from training.driving.english import split_games
from translator.games.driving.agents import DrivingAgent
from translator.games.driving.english import HumanDriver, HumanSpeaker
from translator.games.driving.logs import read_logs
from translator.games.driving.translators import build_translators as translators
from translator.storage.bundled_data import bundled


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--agents", required=True, type=Path)
    p.add_argument("--english", required=True, type=Path, help="folder with english_speaker/ and english_driver/")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(1)
    fit, held = split_games(read_logs(bundled("driving") / "train.jsonl"), held_out=0.25, seed=a.seed)
    agent = DrivingAgent.from_pretrained(a.agents)
    speaker = HumanSpeaker.from_pretrained(a.english / "english_speaker")
    driver = HumanDriver.from_pretrained(a.english / "english_driver")
    print(json.dumps({"games": len(held), "rr": ev.agents(agent, held, a.seed)["success"]}), flush=True)
    for name, tr in translators(agent, speaker, fit, a.seed).items():
        for way, m in (
            ("to_neuralese", ev.human_to_robot(agent, tr, held, a.seed)),
            ("to_english", ev.robot_to_human(agent, driver, tr, held, a.seed)),
        ):
            row = {k: m[k] for k in ("success", "crash", "reward", "ci95_success")}
            print(json.dumps({"translator": name, "way": way, **row}), flush=True)


if __name__ == "__main__":
    main()
