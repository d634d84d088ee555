"""A foreign driving agent's import folder, and the translators built from it.

`neuralese import-messages --game driving FILE --out DIR` writes DIR (training/driving/import_episodes.py):
  steps.jsonl       the checked steps, one car-step per line (translator/games/driving/episodes.py)
  message_model/    the learned p(z | own observation) of the agent (bundle `driving_message_model`)
  english_speaker/  a copy of the English speaker model it pairs with
  run.json          kind `neuralese.driving_import`: source file, counts, seed, where the English
                    speaker came from, the message model's held-out fit
Translators are rebuilt from it with its seed: belief matching through the message model, random
and silent; candidate messages (English -> neuralese) are the agent's own imported messages.
Direct needs the agent's messages said in the human games' states, which an import does not have.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from translator.games.driving.english import HumanSpeaker
from translator.games.driving.episodes import read_episodes
from translator.games.driving.message_model import DrivingMessageModel
from translator.games.driving.model_beliefs import ModelBeliefContext
from translator.games.driving.translate import BeliefTranslator, RandomTranslator, SilentTranslator
from translator.storage.bundle import BundleError, read_side_file

KIND = "neuralese.driving_import"
RUN_FILE = "run.json"
STEPS_FILE = "steps.jsonl"
MODEL_DIR = "message_model"
ENGLISH_DIR = "english_speaker"
KINDS = ("belief", "random", "silent")
POOL_SIZE = 1000


def is_import(folder: str | Path) -> bool:
    """Whether `folder` is an import folder: its `run.json` says kind `neuralese.driving_import`."""
    path = Path(folder) / RUN_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("kind") == KIND
    except (OSError, ValueError, AttributeError):
        return False


@dataclass
class ImportedAgent:
    """What an import folder gives the translators: the message model, the English speaker, the
    agent's messages (the pool), the seed and `run.json`'s fields."""

    model: DrivingMessageModel
    speaker: HumanSpeaker
    pool: torch.Tensor
    seed: int
    info: dict[str, Any]

    @classmethod
    def load(cls, folder: str | Path, seed: int | None = None) -> ImportedAgent:
        """The import folder's agent; `seed` (default: the folder's) seeds the pool and fresh states."""
        folder = Path(folder)
        info = read_side_file(folder / RUN_FILE, KIND)
        if not isinstance(info, dict):
            raise BundleError(f"{folder / RUN_FILE}: expected a JSON object")
        seed = info.get("seed", 0) if seed is None else seed
        if type(seed) is not int:
            raise BundleError(f"{folder / RUN_FILE}: seed: expected an integer, got {seed!r}")
        model = DrivingMessageModel.from_pretrained(folder / MODEL_DIR)
        speaker = HumanSpeaker.from_pretrained(folder / ENGLISH_DIR)
        return cls(model, speaker, message_pool(folder / STEPS_FILE, seed), seed, info)


def message_pool(steps_file: Path, seed: int, size: int = POOL_SIZE) -> torch.Tensor:
    """(<= size, D) messages the agent sent while driving, drawn from the import with `seed`."""
    sent = [s.record.source for s in read_episodes(steps_file) if not s.record.car.done]
    pool = torch.tensor(sent, dtype=torch.float32)
    return pool[torch.from_numpy(np.random.default_rng(seed).permutation(len(pool))[:size])]


def build_imported_translator(kind: str, agent: ImportedAgent, samples: int = 48) -> Any:
    """One translator of `kind` (belief, random, silent) for the imported agent, seeded as the folder says."""
    if kind == "belief":
        context = ModelBeliefContext(agent.model, agent.speaker, samples=samples, seed=agent.seed)  # type: ignore[arg-type]
        return BeliefTranslator(context, agent.pool)
    if kind == "random":
        return RandomTranslator(agent.speaker, agent.pool, seed=agent.seed)
    if kind == "silent":
        return SilentTranslator(agent.model.config.message_size)
    if kind == "direct":
        raise ValueError(
            "translator 'direct': it pairs the agent's messages with people's utterances said in the same states "
            "of the human games, and an imported agent's episodes are its own; use belief, random or silent"
        )
    raise ValueError(f"translator {kind!r}: expected one of {', '.join(KINDS)} for an imported agent")
