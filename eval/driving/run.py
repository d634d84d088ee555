"""Score a run's driving bundles on a file of logged games: what `neuralese evaluate` does for a
driving file, and the evaluation step of the driving demo.

The run's driving folder (`RUN/driving/`, or RUN itself) holds the talking and silent agents and
the English speaker and driver; the translators are rebuilt from them and the training logs named
in its `run.json` (seeded, so the same run gives the same translators). Writes `metrics.json` with
`driving.people`, `driving.agents`, `driving.agents_silent`, `driving.agents_messages_cut`,
`driving.translation.<channel>.<translator>.{to_neuralese,to_english}`, `driving.replay` and, for a
run with faithfulness models (`RUN/driving/faithfulness/`), `driving.faithfulness.<direction>`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from eval.driving import evaluate as ev
from eval.driving.faithfulness import driving_faithfulness
from eval.driving.faithfulness import table as faithfulness_table
from translator.games.driving.agents import DrivingAgent
from translator.games.driving.english import HumanDriver, HumanSpeaker
from translator.games.driving.logs import LoggedGame, read_logs
from translator.games.driving.translate import BeliefContext
from translator.games.driving.translators import build_translators, driving_dir, run_info
from translator.storage.atomic import atomic_write
from translator.storage.bundle import write_json
from translator.translate.driving.faithfulness import DrivingFaithfulness, load_optional

CHANNEL = "continuous"


def is_driving_file(path: str | Path) -> bool:
    """A JSON Lines file whose first non-blank line is a logged driving game (`game_id`, `log`)."""
    path = Path(path)
    if path.suffix != ".jsonl" or not path.is_file():
        return False
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    first = json.loads(line)
                except ValueError:
                    return True  # a driving file with a bad first line: the log reader names it
                return isinstance(first, dict) and "log" in first
    return False


def score(
    agent: DrivingAgent,
    silent: DrivingAgent,
    speaker: HumanSpeaker,
    driver: HumanDriver,
    train_games: Sequence[LoggedGame],
    games: Sequence[LoggedGame],
    seed: int = 0,
    faithfulness: DrivingFaithfulness | None = None,
) -> dict:
    """Every driving number on `games` (held out), translators built from `train_games`; with the
    run's faithfulness models, `driving.faithfulness.*` too (eval/driving/faithfulness.py)."""
    torch.set_num_threads(1)
    people, replay = ev.people(games)
    metrics = {
        "driving.people": people,
        "driving.replay": replay,
        "driving.agents": ev.agents(agent, games, seed),
        "driving.agents_silent": ev.agents(silent, games, seed),
        "driving.agents_messages_cut": ev.agents(agent, games, seed, messages_cut=True),
    }
    for name, tr in build_translators(agent, speaker, train_games, seed).items():
        key = f"driving.translation.{CHANNEL}.{name}"
        metrics[f"{key}.to_neuralese"] = ev.human_to_robot(agent, tr, games, seed)
        metrics[f"{key}.to_english"] = ev.robot_to_human(agent, driver, tr, games, seed)
        metrics[f"{key}.to_english"]["belief_agreement"] = ev.belief_agreement(
            BeliefContext(agent, speaker, seed=seed + 1), tr, agent, games, seed
        )
    if faithfulness is not None:
        fresh = build_translators(agent, speaker, train_games, seed)  # random's draws as built, not as left above
        metrics.update(driving_faithfulness(faithfulness, fresh, agent, driver, games, seed))
    return metrics


def table(metrics: dict) -> str:
    rows = [f"{'':56s} {'success':>8s} {'crash':>6s} {'reward':>7s}  ci95"]
    for key, m in metrics.items():
        if isinstance(m, dict) and "success" in m:
            rows.append(f"{key:56s} {m['success']:8.3f} {m['crash']:6.3f} {m['reward']:7.2f}  {m['ci95_success']}")
    return "\n".join(filter(None, [*rows, faithfulness_table(metrics)]))


def evaluate_driving(run: str | Path, data: str | Path, out: Path, games: int | None = None) -> dict:
    """`neuralese evaluate` on a driving file: writes `out/metrics.json` and `out/report.md`."""
    base = driving_dir(run)
    info = run_info(base)
    held = read_logs(data)
    if games is not None:
        held = held[:games]
    load = DrivingAgent.from_pretrained
    metrics = {"data": {"file": str(data), "games": len(held)}}
    metrics.update(
        score(
            load(base / "agents"),
            load(base / "agents_silent"),
            HumanSpeaker.from_pretrained(base / "english_speaker"),
            HumanDriver.from_pretrained(base / "english_driver"),
            read_logs(info.train),
            held,
            info.seed,
            load_optional(base),
        )
    )
    write_json(out / "metrics.json", metrics)
    atomic_write(out / "report.md", f"# Driving: {data}\n\n```\n{table(metrics)}\n```\n".encode())
    print(table(metrics))
    return metrics
