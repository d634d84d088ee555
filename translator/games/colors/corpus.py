"""Colors in Context corpus: reading, validating, and converting to `datasets`.

Two layouts share one column set (Monroe et al. 2017):
- one row per round (the bundled `data/colors_in_context/*.csv`), the speaker's messages already
  joined with ` ~ `;
- the public `filteredCorpus.csv`, one row per message, with extra columns (`role`, `msgTime`, ...):
  the speaker's messages of a round are joined in order with ` ~ `, listener messages dropped.

Colours are stored in the order of the *listener's* screen (`*LocL`), so a round's target index
carries no information by itself (ordering by status would put the target first every time).
The target is the patch whose status is `target`, not the clicked one: they differ whenever the
human listener got it wrong (about 11% of training rounds).

Files are UTF-8, with or without the byte-order mark that Excel's "CSV UTF-8" writes.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from datasets import Dataset

from translator.games.split import split_by_game

GAME = "colors_in_context"  # the colour game, as every bundle of it names its game
CONDITIONS = ("far", "split", "close")
MESSAGE_SEPARATOR = " ~ "
_PATCHES = ("click", "alt1", "alt2")
_PATCH_FIELDS = ("Status", "ColH", "ColS", "ColL", "LocS", "LocL")
REQUIRED_COLUMNS = (
    "gameid",
    "roundNum",
    "condition",
    *(p + f for p in _PATCHES for f in _PATCH_FIELDS),
    "outcome",
    "contents",
)
_RANGES = {"ColH": (0.0, 360.0), "ColS": (0.0, 100.0), "ColL": (0.0, 100.0)}
_BOOLS = {"true": True, "false": False, "1": True, "0": False}


class CorpusError(ValueError):
    """A corpus file that cannot be read; the message names file, line and field."""

    def __init__(self, path: str | Path, message: str, line: int | None = None, field: str | None = None):
        where = f"{path}:{line}" if line is not None else str(path)
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {message}")
        self.path, self.line, self.field = str(path), line, field


@dataclass(frozen=True)
class Round:
    """One round of the colour game, as the human listener saw it."""

    game_id: str
    round_num: int
    condition: str
    colors: tuple[tuple[float, float, float], ...]  # three HSL colours, in listener screen order
    target: int  # index of the target in `colors`
    click: int  # index the human listener clicked
    speaker_order: tuple[int, int, int]  # speaker_order[i] = position of colors[i] on the speaker's screen
    outcome: bool  # did the human listener pick the target
    text: str  # the speaker's utterance(s), joined with " ~ "

    @property
    def round_id(self) -> str:
        return f"{self.game_id}/{self.round_num}"


def load_rounds(path: str | Path) -> list[Round]:
    """Read a corpus CSV in either layout; raise `CorpusError` naming file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(path, "no such file")
    with io.StringIO(_read_text(path), newline="") as f:
        # strict: an unbalanced quote is an error, not a field that swallows the rest of the file
        reader = csv.reader(f, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise CorpusError(path, "empty file (no header)") from None
        except csv.Error as e:
            raise CorpusError(path, f"malformed CSV ({e})", line=1) from None
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise CorpusError(path, f"missing column(s) {', '.join(missing)} in the header", line=1)
        per_message = "role" in header or "msgTime" in header
        rounds: dict[tuple[str, int], tuple[Round, list[str], int]] = {}
        order: list[tuple[str, int]] = []
        last_line = 1
        while True:
            line = last_line + 1  # first physical line of this record
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raise CorpusError(path, f"malformed CSV ({e}; an unbalanced quote?)", line=line) from None
            last_line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank line
            if len(row) != len(header):
                raise CorpusError(path, f"expected {len(header)} fields, found {len(row)}", line=line)
            record = dict(zip(header, row))
            if per_message and record.get("role", "speaker").strip().lower() != "speaker":
                continue
            rnd = _parse_round(path, line, record, require_text=not per_message)
            key = (rnd.game_id, rnd.round_num)
            if key not in rounds:
                rounds[key] = (rnd, [], line)
                order.append(key)
            elif not per_message:
                raise CorpusError(path, f"round {rnd.round_id} appears twice (first on line {rounds[key][2]})", line=line)
            elif _context(rounds[key][0]) != _context(rnd):
                raise CorpusError(path, f"round {rnd.round_id} disagrees with line {rounds[key][2]} about its colours", line=line)
            rounds[key][1].append(rnd.text.strip())
    out = []
    for key in order:
        rnd, texts, line = rounds[key]
        text = MESSAGE_SEPARATOR.join(t for t in texts if t)
        if not text:
            raise CorpusError(path, f"round {rnd.round_id} has no speaker text", line=line, field="contents")
        out.append(_replace_text(rnd, text))
    if not out:
        raise CorpusError(path, "no rounds in file")
    return out


def _read_text(path: Path) -> str:
    """The file's text, without a UTF-8 byte-order mark; `CorpusError` naming the line of a byte that is not UTF-8."""
    data = path.read_bytes()
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        at = bom + e.start
        line = data.count(b"\n", 0, at) + 1
        column = at - (data.rfind(b"\n", 0, at) + 1)
        raise CorpusError(path, f"not UTF-8 text ({e.reason} at byte {column} of the line); save the file as UTF-8", line=line) from None


def _context(r: Round) -> tuple:
    return (r.condition, r.colors, r.target, r.click, r.speaker_order)


def _replace_text(r: Round, text: str) -> Round:
    return replace(r, text=text)


def _parse_round(path: Path, line: int, rec: dict[str, str], require_text: bool) -> Round:
    def fail(field: str, message: str) -> CorpusError:
        return CorpusError(path, message, line=line, field=field)

    def number(field: str) -> float:
        raw = rec[field].strip()
        try:
            value = float(raw)
        except ValueError:
            raise fail(field, f"not a number ({raw!r})") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise fail(field, f"not a finite number ({raw!r})")
        return value

    game_id = rec["gameid"].strip()
    if not game_id:
        raise fail("gameid", "empty")
    round_num = number("roundNum")
    if round_num != int(round_num):
        raise fail("roundNum", f"not a whole number ({rec['roundNum']!r})")
    condition = rec["condition"].strip().lower()
    if condition not in CONDITIONS:
        raise fail("condition", f"{rec['condition']!r} is not one of {', '.join(CONDITIONS)}")
    outcome_raw = rec["outcome"].strip().lower()
    if outcome_raw not in _BOOLS:
        raise fail("outcome", f"{rec['outcome']!r} is not true/false")

    patches = []
    for p in _PATCHES:
        hsl = []
        for f in ("ColH", "ColS", "ColL"):
            value = number(p + f)
            lo, hi = _RANGES[f]
            if not lo <= value <= hi:
                raise fail(p + f, f"{value:g} is outside [{lo:g}, {hi:g}]")
            hsl.append(value)
        locs = []
        for f in ("LocS", "LocL"):
            value = number(p + f)
            if value not in (1.0, 2.0, 3.0):
                raise fail(p + f, f"position {rec[p + f]!r} is not 1, 2 or 3")
            locs.append(int(value))
        patches.append((rec[p + "Status"].strip(), tuple(hsl), locs[0], locs[1]))

    statuses = [s for s, *_ in patches]
    if "target" not in statuses:
        raise fail("clickStatus", f"round {game_id}/{int(round_num)} has no patch with status 'target' ({', '.join(statuses)})")
    if sorted(statuses) != ["distr1", "distr2", "target"]:
        raise fail("clickStatus", f"statuses must be target, distr1, distr2 once each, got {', '.join(statuses)}")
    for i, f in enumerate(("LocS", "LocL")):
        if sorted(pt[2 + i] for pt in patches) != [1, 2, 3]:
            raise fail("click" + f, "screen positions of the three patches are not 1, 2, 3")

    by_listener = sorted(patches, key=lambda pt: pt[3])
    text = rec["contents"].strip()
    if require_text and not text:
        raise fail("contents", "empty text")
    return Round(
        game_id=game_id,
        round_num=int(round_num),
        condition=condition,
        colors=tuple(pt[1] for pt in by_listener),
        target=[pt[0] for pt in by_listener].index("target"),
        click=patches[0][3] - 1,  # the `click*` patch, at its listener position
        speaker_order=tuple(pt[2] - 1 for pt in by_listener),
        outcome=_BOOLS[outcome_raw],
        text=text,
    )


def contexts_tensor(rounds: list[Round]) -> torch.Tensor:
    """HSL colours of every round, `(N, 3, 3)` float32, in listener order."""
    return torch.tensor([r.colors for r in rounds], dtype=torch.float32)


def to_dataset(rounds: list[Round]):
    """The rounds as a `datasets.Dataset` (one row per round) for training loops."""
    return Dataset.from_dict(
        {
            "round_id": [r.round_id for r in rounds],
            "game_id": [r.game_id for r in rounds],
            "condition": [r.condition for r in rounds],
            "colors": [[list(c) for c in r.colors] for r in rounds],
            "target": [r.target for r in rounds],
            "click": [r.click for r in rounds],
            "speaker_order": [list(r.speaker_order) for r in rounds],
            "outcome": [r.outcome for r in rounds],
            "text": [r.text for r in rounds],
        }
    )


def split_games(rounds: list[Round], fraction: float, seed: int = 0) -> tuple[list[Round], list[Round]]:
    """Split rounds by whole games: `(rest, held_out)` with about `fraction` of games held out (`split_by_game`)."""
    rest, held = split_by_game([r.game_id for r in rounds], fraction, seed, what="rounds")
    return [rounds[i] for i in rest], [rounds[i] for i in held]
