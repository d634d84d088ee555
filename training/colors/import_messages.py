"""Import the messages of agents built elsewhere (a JSON Lines file) as a collected corpus.

The file holds one round per line: the context, the speaker's target and the message (schema,
examples and the defaults of every column: `docs/message_schema.md`). The result has exactly the
columns and types of the record of play (`translator.games.colors.record`), so the rest of the system
(a `LearnedMessageModel`, translation, evaluation) treats it like a collection of our own agents.
What a user cannot know gets a documented default: each line its own game, the condition derived
from the colours (`derive_conditions`), unknown choices and clicks -1, the message log-probability
NaN, discrete messages padded with EOS.

Every problem raises `CorpusError` naming the file, the line number and the field."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset

from translator.games.colors.corpus import CONDITIONS, CorpusError
from translator.games.colors.difference import color_distance
from translator.games.colors.record import features
from translator.games.colors.sampling import THETA
from translator.models.channels import EOS, MAX_DIM, MAX_LEN, MAX_VOCAB, ChannelConfig, canonical_symbols, message_lengths
from translator.translate.colors.collection import save_collection

FORMAT = "neuralese.messages.jsonl/1"
REQUIRED = ("colors", "target", "message")
OPTIONAL = ("round_id", "game_id", "condition", "utterance", "speaker_order", "agent_choice", "human_click", "meta")
UNKNOWN = -1  # agent_choice / human_click not given
DISCRETE_KIND = "gumbel"  # the kind given to an inferred discrete channel (any discrete kind reads the same)
_RANGES = (("hue", 0.0, 360.0), ("saturation", 0.0, 100.0), ("lightness", 0.0, 100.0))
MAX_LINE_BYTES = 1 << 22  # 4 MiB: a round, even with a 4,096-number message and a big `meta`, is far smaller


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _kind_name(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer", float: "a number",
            type(None): "null"}.get(type(v), type(v).__name__)


def _finite(v: int | float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float
        return False


def given_channel(channel: ChannelConfig | dict | None) -> dict[str, Any]:
    """The channel fields the caller fixed: all of a `ChannelConfig`'s, those of a (partial) dict.

    A dict without `kind` takes it from its fields (`dim`: continuous; `vocab_size` or `max_len`:
    discrete) or, with neither, from the data. Values are checked as `ChannelConfig` checks them.
    """
    if channel is None:
        return {}
    if isinstance(channel, ChannelConfig):
        return channel.to_dict()
    if not isinstance(channel, dict):
        raise ValueError(f"channel config: expected a mapping, got {type(channel).__name__}")
    fixed = dict(channel)
    if "kind" not in fixed:
        continuous, discrete = "dim" in fixed, bool({"vocab_size", "max_len"} & set(fixed))
        if continuous and discrete:
            raise ValueError("channel config: dim (continuous) and vocab_size/max_len (discrete) given together; give its kind")
        if continuous or discrete:
            fixed["kind"] = "continuous" if continuous else DISCRETE_KIND
    ChannelConfig.from_dict({"kind": DISCRETE_KIND if "vocab_size" in fixed else "continuous", **fixed})  # checks names and values
    return fixed


class _Reader:
    """Parses and checks one line at a time; remembers what the channel must be."""

    def __init__(self, path: Path, fixed: dict[str, Any]):
        self.path, self.fixed = path, fixed
        self.kind_line: int | None = None  # the line that decided the kind (when inferred)
        self.discrete: bool | None = None if "kind" not in fixed else fixed["kind"] != "continuous"
        self.dim: int | None = fixed.get("dim")
        self.max_len, self.max_id = 0, 0

    def fail(self, line: int, field: str | None, message: str) -> CorpusError:
        return CorpusError(self.path, message, line=line, field=field)

    def _index(self, line: int, rec: dict, field: str, default: int) -> int:
        v = rec.get(field)
        if v is None:
            return default
        if not _is_int(v):
            raise self.fail(line, field, f"expected an integer 0, 1 or 2, got {_kind_name(v)} ({v!r:.40})")
        if not 0 <= v <= 2:
            raise self.fail(line, field, f"{v!r:.40} is not 0, 1 or 2 (a colour index in listener order)")
        return v

    def _text(self, line: int, rec: dict, field: str) -> str | None:
        v = rec.get(field)
        if v is None:
            return None
        if _is_int(v) and field in ("round_id", "game_id"):
            return str(v)
        if not isinstance(v, str):
            raise self.fail(line, field, f"expected a string, got {_kind_name(v)}")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as e:  # JSON escapes can spell a lone surrogate ("\ud800")
            raise self.fail(line, field, f"not valid Unicode (a lone surrogate at character {e.start})") from None
        if field in ("round_id", "game_id") and not v.strip():
            raise self.fail(line, field, "empty")
        return v.strip() if field != "utterance" else v

    def colors(self, line: int, v: Any) -> list[list[float]]:
        if not isinstance(v, list) or len(v) != 3:
            raise self.fail(line, "colors", f"expected a list of 3 HSL triples, got {_kind_name(v)}"
                            + (f" of {len(v)}" if isinstance(v, list) else ""))
        out = []
        for i, c in enumerate(v):
            if not isinstance(c, list) or len(c) != 3:
                raise self.fail(line, "colors", f"colour {i}: expected an HSL triple [h, s, l], got {_kind_name(c)}"
                                + (f" of {len(c)}" if isinstance(c, list) else ""))
            for x, (name, lo, hi) in zip(c, _RANGES):
                if not _is_number(x):
                    raise self.fail(line, "colors", f"colour {i} {name}: expected a number, got {_kind_name(x)}")
                if not _finite(x):
                    raise self.fail(line, "colors", f"colour {i} {name}: not a finite number ({x!r:.40})")
                if not lo <= x <= hi:
                    raise self.fail(line, "colors", f"colour {i} {name} {x:g} is outside [{lo:g}, {hi:g}]")
            out.append([float(x) for x in c])
        return out

    def message(self, line: int, v: Any) -> list:
        if not isinstance(v, list):
            raise self.fail(line, "message", f"expected a list of numbers, got {_kind_name(v)}")
        if not v:
            raise self.fail(line, "message", "empty message (a discrete message has at least one symbol; [0] is the empty one)")
        for j, x in enumerate(v):
            if not _is_number(x):
                raise self.fail(line, "message", f"element {j}: expected a number, got {_kind_name(x)}")
            if not _finite(x):
                raise self.fail(line, "message", f"element {j}: not a finite number ({x!r:.40})")
        if self.discrete is None:  # the first message decides: integers only means symbol ids
            self.discrete, self.kind_line = all(_is_int(x) for x in v), line
        why = f" (line {self.kind_line} made the channel {'discrete' if self.discrete else 'continuous'}; pass the channel to say otherwise)" \
            if self.kind_line is not None and self.kind_line != line else ""
        return self._symbols(line, v, why) if self.discrete else self._vector(line, v, why)

    def _vector(self, line: int, v: list, why: str) -> list[float]:
        if self.dim is None:
            if len(v) > MAX_DIM:
                raise self.fail(line, "message", f"{len(v)} numbers, more than the largest continuous channel supported (dim {MAX_DIM})")
            self.dim = len(v)
        if len(v) != self.dim:
            raise self.fail(line, "message", f"{len(v)} numbers, but the continuous channel has dim {self.dim}{why}")
        return [float(x) for x in v]

    def _symbols(self, line: int, v: list, why: str) -> list[int]:
        max_len, vocab = self.fixed.get("max_len"), self.fixed.get("vocab_size")
        if len(v) > (max_len or MAX_LEN):
            limit = f"the channel's max_len {max_len}" if max_len else f"the longest message supported (max_len {MAX_LEN})"
            raise self.fail(line, "message", f"{len(v)} symbols, more than {limit}")
        for j, x in enumerate(v):
            if not _is_int(x):
                raise self.fail(line, "message", f"element {j}: symbol ids must be integers, got {x!r:.40}{why}")
            if x < 0:
                raise self.fail(line, "message", f"element {j}: symbol id {x!r:.40} is negative")
            if x >= (vocab or MAX_VOCAB):
                limit = f"a vocabulary of {vocab} (ids 0..{vocab - 1})" if vocab else \
                    f"the largest vocabulary supported ({MAX_VOCAB} symbols, ids 0..{MAX_VOCAB - 1})"
                raise self.fail(line, "message", f"element {j}: symbol id {x!r:.40} is out of range for {limit}")
        self.max_len, self.max_id = max(self.max_len, len(v)), max(self.max_id, *v)
        return list(v)

    def round(self, line: int, rec: Any) -> dict:
        if not isinstance(rec, dict):
            raise self.fail(line, None, f"expected a JSON object (one round per line), got {_kind_name(rec)}")
        unknown = sorted(set(rec) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise self.fail(line, unknown[0], f"unknown field (fields: {', '.join(REQUIRED + OPTIONAL)}; put anything else under 'meta')")
        for f in REQUIRED:
            if rec.get(f) is None:
                raise self.fail(line, f, "missing required field")
        colors = self.colors(line, rec["colors"])
        t = rec["target"]
        if not _is_int(t):
            raise self.fail(line, "target", f"expected an integer 0, 1 or 2, got {_kind_name(t)} ({t!r})")
        if not 0 <= t <= 2:
            raise self.fail(line, "target", f"{t} is not 0, 1 or 2 (the target's index in listener order)")
        message = self.message(line, rec["message"])
        order = rec.get("speaker_order")
        if order is None:
            order = [0, 1, 2]
        elif not (isinstance(order, list) and all(_is_int(x) for x in order) and sorted(order) == [0, 1, 2]):
            raise self.fail(line, "speaker_order", f"expected a permutation of [0, 1, 2], got {order!r}")
        condition = self._text(line, rec, "condition")
        if condition is not None:
            condition = condition.strip().lower()
            if condition not in CONDITIONS:
                raise self.fail(line, "condition", f"{rec['condition']!r} is not one of {', '.join(CONDITIONS)}")
        meta = rec.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise self.fail(line, "meta", f"expected an object, got {_kind_name(meta)}")
        return {
            "line": line,
            "round_id": self._text(line, rec, "round_id"),
            "game_id": self._text(line, rec, "game_id"),
            "condition": condition,
            "colors": colors,
            "speaker_order": list(order),
            "target": t,
            "message": message,
            "agent_choice": self._index(line, rec, "agent_choice", UNKNOWN),
            "utterance": self._text(line, rec, "utterance") or "",
            "human_click": self._index(line, rec, "human_click", UNKNOWN),
        }

    def channel(self) -> tuple[ChannelConfig, list[str]]:
        """The channel (the fixed fields, the rest inferred from the data) and the inferred fields' names."""
        if self.discrete:
            found = {"kind": DISCRETE_KIND, "vocab_size": max(self.max_id + 1, 2), "max_len": self.max_len}
        else:
            found = {"kind": "continuous", "dim": self.dim}
        inferred = [k for k in found if k not in self.fixed]
        return ChannelConfig.from_dict({**found, **self.fixed}), inferred


def derive_conditions(colors: torch.Tensor, targets: torch.Tensor) -> list[str]:
    """Far / split / close from the colours, as the corpus defines them (CIEDE2000, θ = 20).

    far: every pair at least θ apart; close: every pair closer than θ; otherwise split. Agrees
    with the labels of `data/colors_in_context/train.csv` on 99.9% of its rounds.
    """
    idx = torch.arange(len(targets))
    t, a, b = colors[idx, targets], colors[idx, (targets + 1) % 3], colors[idx, (targets + 2) % 3]
    d = torch.stack([color_distance(t, a), color_distance(t, b), color_distance(a, b)], -1)
    return ["far" if f else "close" if c else "split" for f, c in zip((d >= THETA).all(-1).tolist(), (d < THETA).all(-1).tolist())]


def _records(path: Path, reader: _Reader) -> Iterator[tuple[int, Any]]:
    """`(line number, parsed JSON)` of each non-blank line; a line that is not UTF-8, not JSON or
    longer than `MAX_LINE_BYTES` is an error naming it (a line is never read whole beyond that)."""
    with path.open("rb") as f:
        for n, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise reader.fail(n, None, f"line longer than {MAX_LINE_BYTES:,} bytes (one round per line expected)")
            try:
                text = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise reader.fail(n, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
            if not text.strip():
                continue  # blank lines are allowed
            try:
                yield n, json.loads(text)
            except json.JSONDecodeError as e:
                raise reader.fail(n, None, f"not valid JSON ({e.msg} at column {e.colno})") from None
            except RecursionError:
                raise reader.fail(n, None, "not valid JSON (nested too deeply)") from None
            except ValueError as e:  # e.g. an integer of more digits than Python converts
                raise reader.fail(n, None, f"not valid JSON ({e})") from None


def read_messages(path: str | Path, channel: ChannelConfig | dict | None = None) -> tuple[Dataset, ChannelConfig]:
    """Read and check a JSON Lines file of rounds; `(dataset, channel)` without saving anything.

    `channel`: the channel the messages come from: a `ChannelConfig`, or a dict of the fields you
    know (the others are inferred), or `None` to infer it all (the first message decides the kind:
    JSON integers only is a discrete channel, any number written with a decimal point or exponent a
    continuous one; dim, vocab_size = largest id + 1, max_len = longest message from the data).
    """
    ds, ch, _ = _read(path, channel)
    return ds, ch


def _read(path: str | Path, channel: ChannelConfig | dict | None) -> tuple[Dataset, ChannelConfig, list[str]]:
    """`read_messages`, plus the names of the channel fields inferred from the data."""
    path = Path(path)
    fixed = given_channel(channel)
    if not path.is_file():
        raise CorpusError(path, "no such file")
    reader = _Reader(path, fixed)
    rows = [reader.round(n, rec) for n, rec in _records(path, reader)]
    if not rows:
        raise CorpusError(path, "empty file: no rounds (one JSON object per line expected)")
    ch, inferred = reader.channel()

    # defaults that depend on other lines: game-local round numbers; unique round ids
    seen: dict[str, int] = {}
    per_game: dict[str, int] = {}
    for r in rows:
        if r["game_id"] is None:
            r["game_id"] = f"line-{r['line']}"
        per_game[r["game_id"]] = per_game.get(r["game_id"], 0) + 1
        if r["round_id"] is None:
            r["round_id"] = f"{r['game_id']}/{per_game[r['game_id']]}"
        if r["round_id"] in seen:
            raise reader.fail(r["line"], "round_id", f"round {r['round_id']!r} appears twice (first on line {seen[r['round_id']]})")
        seen[r["round_id"]] = r["line"]

    colors = torch.tensor([r["colors"] for r in rows], dtype=torch.float64)
    targets = torch.tensor([r["target"] for r in rows])
    missing = [i for i, r in enumerate(rows) if r["condition"] is None]
    if missing:
        derived = derive_conditions(colors[missing], targets[missing])
        for i, c in zip(missing, derived):
            rows[i]["condition"] = c
    if ch.discrete:
        messages = [r["message"] + [EOS] * (ch.max_len - len(r["message"])) for r in rows]
        sym = canonical_symbols(torch.tensor(messages, dtype=torch.long))  # EOS after the end, as collect writes
        messages, lengths = sym.tolist(), message_lengths(sym).tolist()
    else:
        messages = [r["message"] for r in rows]
        lengths = [ch.dim] * len(rows)
    data = {
        "round_id": [r["round_id"] for r in rows],
        "game_id": [r["game_id"] for r in rows],
        "condition": [r["condition"] for r in rows],
        "colors": [r["colors"] for r in rows],
        "speaker_order": [r["speaker_order"] for r in rows],
        "target": [r["target"] for r in rows],
        "message": messages,
        "message_length": lengths,
        "message_log_prob": [math.nan] * len(rows),
        "agent_choice": [r["agent_choice"] for r in rows],
        "agent_correct": [r["agent_choice"] == r["target"] for r in rows],
        "utterance": [r["utterance"] for r in rows],
        "human_click": [r["human_click"] for r in rows],
        "human_outcome": [r["human_click"] == r["target"] for r in rows],
    }
    return Dataset.from_dict(data, features=features(ch.discrete)), ch, inferred


def import_messages(path: str | Path, out_dir: str | Path | None, channel: ChannelConfig | dict | None = None) -> Dataset:
    """Read a JSON Lines file of rounds (`docs/message_schema.md`) into a collected corpus.

    Saved with `save_collection` to `out_dir` (unless `None`); `collection.json` records the
    source file, the channel (its kind under `channel`, the full config under `channel_config`,
    like a collection of our own agents), the names of its fields inferred from the data
    (`channel_inferred`, empty when the caller gave them all), and the numbers of rounds and games.
    """
    ds, ch, inferred = _read(path, channel)
    if out_dir is not None:
        save_collection(ds, out_dir, {
            "format": FORMAT,
            "source": str(Path(path)),
            "imported": True,
            "channel": ch.kind,
            "channel_config": ch.to_dict(),
            "channel_inferred": inferred,
            "rounds": len(ds),
            "games": len(set(ds["game_id"])),
        })  # fmt: skip
    return ds
