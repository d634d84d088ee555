"""The driving game end to end: `python -m translator.apps.driving.demo --out RUN/driving`.

Reads the human logs, checks the environment replays them, fits the English models, trains the
talking and the silent agents, builds the translators, fits the faithfulness models on held-out
training games (`RUN/driving/faithfulness/`), and evaluates everything on the held-out
games (dev), writing `metrics.json` beside the bundles. Nothing is fitted or tuned on dev.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import torch

from eval.driving import evaluate as ev
from eval.driving.run import score, table
from training.driving.a2c import A2CConfig, train_agents
from training.driving.english import examples, split_games, train_driver, train_speaker
from training.driving.faithfulness import DrivingFaithfulnessArgs, train_faithfulness
from translator.apps.driving.cli import add_arguments
from translator.games.driving.agents import DrivingAgent, DrivingAgentConfig
from translator.games.driving.logs import read_logs
from translator.storage.bundle import write_json
from translator.storage.bundled_data import bundled


def english_models(out: Path, train_games: list, seed: int, epochs: int = 400) -> tuple:
    fit, held = split_games(train_games, seed=seed)
    ex_fit, ex_held = examples(fit), examples(held)
    speaker, s_info = train_speaker(ex_fit, ex_held, epochs=epochs, seed=seed)
    driver, d_info = train_driver(ex_fit, ex_held, epochs=epochs, seed=seed)
    speaker.save_pretrained(out / "english_speaker")
    driver.save_pretrained(out / "english_driver")
    return speaker, driver, {"speaker": s_info, "driver": d_info}


def _train(out: str, silent: bool, a2c: A2CConfig) -> None:
    torch.set_num_threads(1)
    train_agents(out, DrivingAgentConfig(silent=silent), a2c)


def both_agents(out: Path, a2c: A2CConfig, wait_for) -> tuple[dict, DrivingAgent]:
    """Train the talking and the silent agents in two processes (one core each) while this process
    runs `wait_for()` (the English models); returns ({"agent", "english"}, silent agent)."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [
            pool.submit(_train, str(out / name), silent, a2c) for name, silent in (("agents", False), ("agents_silent", True))
        ]
        english = wait_for()
        for job in jobs:
            job.result()
    talking = DrivingAgent.from_pretrained(out / "agents")
    return {"agent": talking, "english": english}, DrivingAgent.from_pretrained(out / "agents_silent")


def run(out: Path, data_dir: Path, a2c: A2CConfig, seed: int = 0, english_epochs: int = 400) -> dict:
    torch.set_num_threads(1)
    began = time.perf_counter()
    train_file = data_dir / "train.jsonl"
    train_games, dev_games = read_logs(train_file), read_logs(data_dir / "dev.jsonl")
    train_check = ev.replay_transitions(train_games)
    agent, silent = both_agents(
        out, replace(a2c, seed=seed), wait_for=lambda: english_models(out, train_games, seed, english_epochs)
    )
    speaker, driver, english_info = agent.pop("english")
    write_json(out / "run.json", {"train": str(train_file.resolve()), "seed": seed})
    faithfulness = train_faithfulness(out, agent["agent"], speaker, driver, train_games, DrivingFaithfulnessArgs(seed=seed))
    metrics = score(agent["agent"], silent, speaker, driver, train_games, dev_games, seed, faithfulness)
    metrics["driving.replay"] = {
        "transitions": metrics["driving.replay"]["transitions"] + train_check.transitions,
        "reproduced": metrics["driving.replay"]["reproduced"] + train_check.reproduced,
    }
    metrics["driving.english"] = english_info
    metrics["driving.seconds"] = round(time.perf_counter() - began, 1)
    write_json(out / "metrics.json", metrics)
    return metrics


def run_from_args(args: argparse.Namespace) -> dict:
    updates, epochs = (min(args.updates, 40), 40) if args.quick else (args.updates, 400)
    metrics = run(args.out, args.data or bundled("driving"), A2CConfig(updates=updates), args.seed, epochs)
    print(table(metrics))
    print(json.dumps({k: metrics[k] for k in ("driving.replay", "driving.seconds")}))
    return metrics


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)  # the same options as `neuralese driving`
    run_from_args(p.parse_args(argv))


if __name__ == "__main__":
    main()
