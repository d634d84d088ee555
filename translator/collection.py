"""Play agents on every round of a corpus and store the paired corpus (agent message beside the
person's utterance for the same context and target) as a `datasets.Dataset` on disk.

Schema (one row per round; `message` is a list of floats for a continuous channel, of symbol ids
for a discrete one, 0 = end of message):

    round_id, game_id, condition, colors (3x3 HSL, listener order), speaker_order, target,
    message, message_length, message_log_prob, agent_choice, agent_correct,
    utterance, human_click, human_outcome
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from datasets import Dataset, load_from_disk
from tqdm.auto import tqdm

from translator.agents import Agents
from translator.atomic import atomic_bundle_dir
from translator.bundle import write_json
from translator.corpus import Round

COLLECTION_FILE = "collection.json"


@torch.no_grad()
def collect(agents: Agents, rounds: list[Round], seed: int = 0, batch_size: int = 4096) -> Dataset:
    """Agents speak (channel noise on, as in play) and listen on each round, in corpus order."""
    colors, order, targets = Agents.round_inputs(rounds)
    g = torch.Generator().manual_seed(seed)
    values, lengths, logps, choices = [], [], [], []
    for s in tqdm(range(0, len(rounds), batch_size), desc="collect", leave=False, disable=None):
        m = agents.speak(colors[s : s + batch_size], order[s : s + batch_size], targets[s : s + batch_size], generator=g)
        values.append(m.value)
        lengths.append(m.length)
        logps.append(m.log_prob)
        choices.append(agents.listen(m, colors[s : s + batch_size]).argmax(-1))
    choice = torch.cat(choices)
    return Dataset.from_dict(
        {
            "round_id": [r.round_id for r in rounds],
            "game_id": [r.game_id for r in rounds],
            "condition": [r.condition for r in rounds],
            "colors": colors.tolist(),
            "speaker_order": order.tolist(),
            "target": targets.tolist(),
            "message": torch.cat(values).tolist(),
            "message_length": torch.cat(lengths).tolist(),
            "message_log_prob": torch.cat(logps).tolist(),
            "agent_choice": choice.tolist(),
            "agent_correct": (choice == targets).tolist(),
            "utterance": [r.text for r in rounds],
            "human_click": [r.click for r in rounds],
            "human_outcome": [r.outcome for r in rounds],
        }
    )


def save_collection(ds: Dataset, out: str | Path, info: dict) -> None:
    """`save_to_disk` (Arrow files, no pickle) plus `collection.json` describing where it came from,
    swapped in as a whole (a kill leaves the old collection or the new one)."""
    with atomic_bundle_dir(out, marker=COLLECTION_FILE) as d:
        ds.save_to_disk(str(d))
        write_json(d / COLLECTION_FILE, info)


def load_collection(path: str | Path) -> tuple[Dataset, dict]:
    path = Path(path)
    info_path = path / COLLECTION_FILE
    if not info_path.is_file():
        raise ValueError(f"{path}: not a collected corpus (no {COLLECTION_FILE})")
    return load_from_disk(str(path)), json.loads(info_path.read_text(encoding="utf-8"))
