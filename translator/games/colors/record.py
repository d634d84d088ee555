"""The record of a played colour round: the columns and types of every collection.

A collection (agents played on a corpus, or messages imported from agents built elsewhere) is a
`datasets.Dataset` with one row per round and exactly these columns (`features`); the message
column is int64 symbol ids for a discrete channel, float64 numbers for a continuous one
(docs/data_formats.md). `conform` checks a dataset against the record and casts one saved without
these types; `PlayedRounds` is the typed view that translation, training and evaluation read: the
columns as tensors and lists, built once from Arrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from datasets import Dataset, Features, Value

try:  # datasets >= 4
    from datasets import List
except ImportError:  # datasets 3: Sequence of a Value is a list column
    from datasets import Sequence as List
try:
    from datasets import LargeList
except ImportError:  # datasets without 64-bit list offsets
    LargeList = List

COLUMNS = ("round_id", "game_id", "condition", "colors", "speaker_order", "target", "message", "message_length",
           "message_log_prob", "agent_choice", "agent_correct", "utterance", "human_click", "human_outcome")  # fmt: skip


class RecordError(ValueError):
    """A dataset that is not a record of play; the message names the file and the column."""


def features(discrete: bool) -> Features:
    """The record's column types; `discrete`: the message holds symbol ids (int64), else numbers (float64)."""
    return Features({
        "round_id": Value("string"),
        "game_id": Value("string"),
        "condition": Value("string"),
        "colors": List(List(Value("float64"))),  # 3 HSL triples, listener order
        "speaker_order": List(Value("int64")),
        "target": Value("int64"),
        "message": List(Value("int64" if discrete else "float64")),
        "message_length": Value("int64"),
        "message_log_prob": Value("float64"),
        "agent_choice": Value("int64"),
        "agent_correct": Value("bool"),
        "utterance": Value("string"),
        "human_click": Value("int64"),
        "human_outcome": Value("bool"),
    })  # fmt: skip


def _inner(feature: Any) -> Any | None:
    """The item type of a list column, `None` for anything else."""
    if isinstance(feature, (List, LargeList)):
        return feature.feature
    return None


def _castable(found: Any, want: Any) -> bool:
    """Whether a column of type `found` casts to `want` without losing what it says: integers widen
    to int64, integers and floats to float64, strings stay strings; an empty column (null) casts."""
    if isinstance(found, Value) and found.dtype == "null":
        return True
    if isinstance(want, Value):
        if not isinstance(found, Value):
            return False
        kind = pa.types
        t = found.pa_type
        if want.dtype == "int64":
            return kind.is_integer(t) and t != pa.uint64()
        if want.dtype == "float64":
            return (kind.is_integer(t) and t != pa.uint64()) or kind.is_floating(t)
        if want.dtype == "string":
            return kind.is_string(t) or kind.is_large_string(t)
        return t == want.pa_type
    found_item, want_item = _inner(found), _inner(want)
    return found_item is not None and want_item is not None and _castable(found_item, want_item)


def message_is_discrete(found: Features) -> bool:
    """Whether a dataset's `message` column holds symbol ids (integers)."""
    item = _inner(found.get("message"))
    return isinstance(item, Value) and pa.types.is_integer(item.pa_type)


def conform(ds: Dataset, discrete: bool, where: str) -> Dataset:
    """`ds` with exactly the record's features; `RecordError` naming `where` (its file) and the
    column when a column is missing, unknown, or of a type that does not cast to the record's."""
    want = features(discrete)
    found = ds.features
    for name in COLUMNS:
        if name not in found:
            raise RecordError(f"{where}: no column {name!r} (a record of play has the columns {', '.join(COLUMNS)})")
    for name in found:
        if name not in want:
            raise RecordError(f"{where}: column {name!r} is not part of a record of play (columns: {', '.join(COLUMNS)})")
    for name in COLUMNS:
        if not _castable(found[name], want[name]):
            channel = "a discrete channel's" if discrete else "a continuous channel's"
            why = f" ({channel} message)" if name == "message" else ""
            raise RecordError(f"{where}: column {name!r} holds {found[name]!r}, the record needs {want[name]!r}{why}")
    if found == want:
        return ds
    return ds.cast(want, keep_in_memory=True)


def _array(column: pa.ChunkedArray, name: str, depth: int) -> np.ndarray:
    """A column of lists nested `depth` deep, every list of one length, as one numpy array."""
    a = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    shape = [len(a)]
    for level in range(depth):
        if a.null_count:
            raise RecordError(f"column {name!r}: a missing value")
        widths = pc.list_value_length(a).to_numpy(zero_copy_only=False)
        if len(widths) and (widths != widths[0]).any():
            raise RecordError(
                f"column {name!r}: lists of different lengths ({sorted(set(widths.tolist()))[:5]}) at depth {level + 1}"
            )
        shape.append(int(widths[0]) if len(widths) else 0)
        a = a.flatten()
    if a.null_count:
        raise RecordError(f"column {name!r}: a missing value")
    return a.to_numpy(zero_copy_only=False).reshape(shape)


@dataclass(frozen=True)
class PlayedRounds:
    """The rounds of a collection as tensors and lists (one entry per round, in the dataset's order).

    `messages`: int64 symbol ids (discrete) or float32 numbers (continuous); `colors`: float32
    `(N, 3, 3)` HSL in listener order; `targets`, `agent_choices`: int64 `(N,)`; `speaker_order`:
    int64 `(N, 3)`.
    """

    round_ids: list[str]
    game_ids: list[str]
    conditions: list[str]
    colors: torch.Tensor
    speaker_order: torch.Tensor
    targets: torch.Tensor
    messages: torch.Tensor
    agent_choices: torch.Tensor
    utterances: list[str]
    discrete: bool

    @classmethod
    def of(cls, rounds: Dataset | PlayedRounds) -> PlayedRounds:
        """The view of a collection (a view is returned as it is)."""
        if isinstance(rounds, PlayedRounds):
            return rounds
        names = ["round_id", "game_id", "condition", "colors", "speaker_order", "target", "message", "agent_choice", "utterance"]
        table = rounds.select_columns(names).with_format("arrow")[:]  # applies a selection's row indices
        discrete = message_is_discrete(rounds.features)
        messages = _array(table["message"], "message", 1)
        return cls(
            round_ids=table["round_id"].to_pylist(),
            game_ids=table["game_id"].to_pylist(),
            conditions=table["condition"].to_pylist(),
            colors=torch.from_numpy(_array(table["colors"], "colors", 2).astype(np.float32)).reshape(-1, 3, 3),
            speaker_order=torch.from_numpy(_array(table["speaker_order"], "speaker_order", 1).astype(np.int64)),
            targets=torch.from_numpy(_array(table["target"], "target", 0).astype(np.int64)),
            messages=torch.from_numpy(messages.astype(np.int64 if discrete else np.float32)),
            agent_choices=torch.from_numpy(_array(table["agent_choice"], "agent_choice", 0).astype(np.int64)),
            utterances=table["utterance"].to_pylist(),
            discrete=discrete,
        )

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, rows: Sequence[int]) -> PlayedRounds:
        """The rounds `rows`, in that order."""
        idx = torch.as_tensor(list(rows), dtype=torch.long)
        pick = idx.tolist()
        return PlayedRounds(
            round_ids=[self.round_ids[i] for i in pick], game_ids=[self.game_ids[i] for i in pick],
            conditions=[self.conditions[i] for i in pick], colors=self.colors[idx], speaker_order=self.speaker_order[idx],
            targets=self.targets[idx], messages=self.messages[idx], agent_choices=self.agent_choices[idx],
            utterances=[self.utterances[i] for i in pick], discrete=self.discrete,
        )  # fmt: skip
