"""Play agents on every round of a corpus and store the paired corpus (agent message beside the
person's utterance for the same context and target) as a `datasets.Dataset` on disk.

Schema (one row per round; `message` is a list of floats for a continuous channel, of symbol ids
for a discrete one, 0 = end of message):

    round_id, game_id, condition, colors (3x3 HSL, listener order), speaker_order, target,
    message, message_length, message_log_prob, agent_choice, agent_correct,
    utterance, human_click, human_outcome
"""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import Dataset, load_from_disk
from tqdm.auto import tqdm

from translator.games.colors.corpus import Round
from translator.models.agents import Agents
from translator.storage.atomic import atomic_bundle_dir
from translator.storage.bundle import read_side_file, write_side_file

COLLECTION_FILE = "collection.json"
COLLECTION_KIND = "neuralese.collection"  # the kind `collection.json` records, with its format version


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
    """`save_to_disk` (Arrow files, no pickle) plus `collection.json` describing where it came from
    (with its kind and format version), swapped in as a whole (a kill leaves the old collection or
    the new one)."""
    with atomic_bundle_dir(out, marker=COLLECTION_FILE) as d:
        ds.save_to_disk(str(d))
        write_side_file(d / COLLECTION_FILE, COLLECTION_KIND, info)


def load_collection(path: str | Path) -> tuple[Dataset, dict]:
    """The paired corpus and its `collection.json` fields; `BundleError` naming the file when it is
    another kind of file or of a newer format (files written before it had a kind read as they are)."""
    path = Path(path)
    info_path = path / COLLECTION_FILE
    if not info_path.is_file():
        raise ValueError(f"{path}: not a collected corpus (no {COLLECTION_FILE})")
    info = read_side_file(info_path, COLLECTION_KIND)
    if not isinstance(info, dict):
        raise ValueError(f"{info_path}: expected a JSON object")
    return load_from_disk(str(path)), info
