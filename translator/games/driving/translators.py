"""The driving translators a run gives: its bundles, and the translators rebuilt from them.

A run's driving folder (`RUN/driving/`, or RUN itself) holds the talking and silent agents and the
English speaker and driver. Translators are not stored: they are rebuilt from the talking agent,
the English speaker, the training logs and the seed named in the folder's `run.json` (seeded, so
the same run gives the same translators in the evaluation and in live translation).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from translator.games.driving.agents import DrivingAgent
from translator.games.driving.collection import message_pool, paired_corpus
from translator.games.driving.english import HumanSpeaker
from translator.games.driving.logs import LoggedGame
from translator.games.driving.translate import (
    BeliefContext,
    BeliefTranslator,
    DirectTranslator,
    RandomTranslator,
    SilentTranslator,
)
from translator.storage.bundle import BundleError
from translator.storage.bundled_data import bundled

BUNDLES = ("agents", "agents_silent", "english_speaker", "english_driver")
KINDS = ("belief", "direct", "random", "silent")


def driving_dir(run: str | Path, needed: Sequence[str] = BUNDLES) -> Path:
    """`RUN/driving` when it holds the bundles, else RUN; a missing bundle is a `BundleError`."""
    run = Path(run)
    base = run / "driving" if (run / "driving" / "agents").is_dir() else run
    missing = [name for name in needed if not (base / name).is_dir()]
    if missing:
        raise BundleError(
            f"{run}: no driving bundles ({', '.join(missing)} missing under {base}); "
            f"train them with `neuralese driving --out {run}/driving`"
        )
    return base


@dataclass
class RunInfo:
    """What `run.json` of a driving folder says the translators are built from."""

    train: Path
    seed: int


def run_info(base: Path) -> RunInfo:
    path = base / "run.json"
    info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return RunInfo(Path(info.get("train", bundled("driving") / "train.jsonl")), int(info.get("seed", 0)))


def build_translator(kind: str, agent: DrivingAgent, speaker: HumanSpeaker, train_games: Sequence[LoggedGame], seed: int):
    """One translator of `kind` (belief, direct, random, silent), built as the evaluation builds it."""
    if kind == "belief":
        return BeliefTranslator(BeliefContext(agent, speaker, seed=seed), message_pool(agent, seed=seed))
    if kind == "direct":
        return DirectTranslator(speaker, *paired_corpus(agent, speaker, train_games))
    if kind == "random":
        return RandomTranslator(speaker, message_pool(agent, seed=seed), seed=seed)
    if kind == "silent":
        return SilentTranslator(agent.config.message_size)
    raise ValueError(f"translator {kind!r}: expected one of {', '.join(KINDS)}")


def build_translators(agent: DrivingAgent, speaker: HumanSpeaker, train_games: Sequence[LoggedGame], seed: int) -> dict:
    """Every kind, sharing one message pool (the evaluation's translators)."""
    pool = message_pool(agent, seed=seed)
    z, cls = paired_corpus(agent, speaker, train_games)
    return {
        "belief": BeliefTranslator(BeliefContext(agent, speaker, seed=seed), pool),
        "direct": DirectTranslator(speaker, z, cls),
        "random": RandomTranslator(speaker, pool, seed=seed),
        "silent": SilentTranslator(agent.config.message_size),
    }
