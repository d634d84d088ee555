"""Play agents on every round of a corpus and store the paired corpus (agent message beside the
person's utterance for the same context and target) as a `datasets.Dataset` on disk.

One row per round, with the columns and types of the record of play
(`translator.games.colors.record`; `message` holds floats for a continuous channel, symbol ids for
a discrete one, 0 = end of message). Loading checks a collection against that record.
"""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import Dataset, load_from_disk
from tqdm.auto import tqdm

from translator.games.colors.corpus import Round
from translator.games.colors.record import conform, features, message_is_discrete
from translator.models.colors.agents import Agents
from translator.storage.atomic import atomic_bundle_dir
from translator.storage.bundle import read_side_file, write_side_file

COLLECTION_FILE = "collection.json"
DATASET_INFO_FILE = "dataset_info.json"  # where `save_to_disk` records the column types
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
        },
        features=features(agents.channel.discrete),
    )


def save_collection(ds: Dataset, out: str | Path, info: dict) -> None:
    """`save_to_disk` (Arrow files, no pickle) plus `collection.json` describing where it came from
    (with its kind and format version), swapped in as a whole (a kill leaves the old collection or
    the new one). `RecordError` naming `out` when `ds` is not a record of play."""
    ds = conform(ds, _discrete(info, ds), str(out))
    with atomic_bundle_dir(out, marker=COLLECTION_FILE) as d:
        ds.save_to_disk(str(d))
        write_side_file(d / COLLECTION_FILE, COLLECTION_KIND, info)


def load_collection(path: str | Path) -> tuple[Dataset, dict]:
    """The paired corpus, with the record's features, and its `collection.json` fields.

    `BundleError` naming `collection.json` when it is another kind of file or of a newer format
    (files written before it had a kind read as they are); `RecordError` naming the dataset file
    and the column when a column is missing, unknown or of a type the record's does not cast from
    (a collection saved without the record's types, with castable ones, is cast)."""
    path = Path(path)
    info_path = path / COLLECTION_FILE
    if not info_path.is_file():
        raise ValueError(f"{path}: not a collected corpus (no {COLLECTION_FILE})")
    info = read_side_file(info_path, COLLECTION_KIND)
    if not isinstance(info, dict):
        raise ValueError(f"{info_path}: expected a JSON object")
    ds = load_from_disk(str(path))
    return conform(ds, _discrete(info, ds), str(path / DATASET_INFO_FILE)), info


def _discrete(info: dict, ds: Dataset) -> bool:
    """Whether the collection's channel is discrete: its `collection.json` says (a channel kind), or
    else its message column (symbol ids are integers)."""
    channel = info.get("channel_config") or {}
    kind = channel.get("kind") if isinstance(channel, dict) else None
    kind = kind or info.get("channel")
    if isinstance(kind, str):
        return kind != "continuous"
    return message_is_discrete(ds.features)
