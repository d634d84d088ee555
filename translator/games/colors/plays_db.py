"""SQLite store of rounds people played on the `/play` page (translator/apps/colors/play.py), and their report.

    db = PlaysDB("plays.sqlite")              # created on first use; WAL mode
    token = db.issue({...round data...})       # a round handed to a player, kept server-side
    row = db.answer(token, {...})              # the token is spent and the row stored, atomically

Tables: `plays` (answered rounds) and `tokens` (rounds handed out, with the data a client must not
be trusted with, such as the target). Each thread has its own connection; writes take the write
lock up front (`BEGIN IMMEDIATE`), so concurrent players, threads or processes never corrupt the
file, and a committed row survives a restart (WAL, `synchronous=FULL`). `plays_report(path)` gives
the human accuracies `neuralese evaluate --plays DB` reports: `listener` = R→H, `speaker` = H→R."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from translator.games.accuracy import accuracy_report
from translator.games.colors.corpus import CONDITIONS

SCHEMA_VERSION = 1
ROLES = ("listener", "speaker")
TOKEN_TTL = 3600.0  # seconds an unanswered round stays answerable
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS plays (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,            -- ISO 8601, UTC
    role TEXT NOT NULL CHECK (role IN ('listener', 'speaker')),
    channel TEXT NOT NULL,
    round_id TEXT NOT NULL,
    game_id TEXT NOT NULL,
    condition TEXT NOT NULL,
    colors TEXT NOT NULL,                -- JSON: three [h, s, l], listener order
    target INTEGER NOT NULL,             -- index in colors
    message TEXT,                        -- JSON: the agent's message (listener) or the translated one (speaker)
    translation TEXT,                    -- listener role: the message in English
    utterance TEXT,                      -- speaker role: what the person typed
    choice INTEGER NOT NULL,             -- listener role: the person's click; speaker role: the agent's pick
    correct INTEGER NOT NULL,            -- 0 / 1
    faithful INTEGER,                    -- the translator's faithfulness flag (0 / 1)
    player TEXT                          -- random id the page keeps per browser tab (for grouping only)
)""",
    """
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    created REAL NOT NULL,               -- unix time
    data TEXT NOT NULL                   -- JSON: the round as handed out
)""",
)
_COLUMNS = ("created_at", "role", "channel", "round_id", "game_id", "condition", "colors", "target", "message", "translation",
            "utterance", "choice", "correct", "faithful", "player")  # fmt: skip
_REQUIRED = ("role", "channel", "round_id", "game_id", "condition", "colors", "target", "choice", "correct")


class PlaysDB:
    """The plays database at `path` (created with its parent folder when missing)."""

    def __init__(self, path: str | Path, token_ttl: float = TOKEN_TTL):
        self.path = Path(path)
        self.token_ttl = token_ttl
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()  # guards `_all` only
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._write() as con:
                version = con.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise ValueError(f"{self.path}: plays database schema {version} is newer than this code's ({SCHEMA_VERSION})")
                for stmt in _SCHEMA:
                    con.execute(stmt)
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:
            self.close()
            raise ValueError(f"{self.path}: not a plays database ({e})") from None

    # -- connections --------------------------------------------------------------------------------
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            # autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT)
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if con.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise sqlite3.DatabaseError("could not switch to WAL mode")
            con.execute("PRAGMA synchronous = FULL")
            self._local.con = con
            with self._lock:
                self._all.append(con)
        return con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the database's write lock from its start."""
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                con.close()
            self._all.clear()
        self._local = threading.local()

    def __enter__(self) -> PlaysDB:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- rounds handed out --------------------------------------------------------------------------
    def issue(self, token: str, data: dict[str, Any]) -> None:
        """Keep a round handed to a player under `token`; forget expired ones."""
        now = time.time()
        with self._write() as con:
            con.execute("DELETE FROM tokens WHERE created < ?", (now - self.token_ttl,))
            con.execute("INSERT INTO tokens (token, created, data) VALUES (?, ?, ?)", (token, now, json.dumps(data)))

    def pending(self, token: str) -> dict[str, Any] | None:
        """The round behind an unanswered, unexpired token, or None."""
        row = self._con().execute("SELECT data FROM tokens WHERE token = ? AND created >= ?",
                                  (token, time.time() - self.token_ttl)).fetchone()  # fmt: skip
        return None if row is None else json.loads(row[0])

    def answer(self, token: str, row: dict[str, Any]) -> dict[str, Any] | None:
        """Spend `token` and store `row`, in one transaction; None when the token was already spent or expired."""
        with self._write() as con:
            cur = con.execute("DELETE FROM tokens WHERE token = ? AND created >= ?", (token, time.time() - self.token_ttl))
            if cur.rowcount != 1:
                return None
            return self._insert(con, row)

    # -- played rounds ------------------------------------------------------------------------------
    def record(self, **row: Any) -> dict[str, Any]:
        """Store one played round (fields as in the `plays` table); returns it as `rows()` would."""
        with self._write() as con:
            return self._insert(con, row)

    def _insert(self, con: sqlite3.Connection, row: dict[str, Any]) -> dict[str, Any]:
        unknown = set(row) - set(_COLUMNS)
        missing = [k for k in _REQUIRED if row.get(k) is None]
        if unknown or missing:
            raise ValueError(f"play row: unknown field(s) {sorted(unknown)}, missing {missing}")
        if row["role"] not in ROLES:
            raise ValueError(f"play row: role {row['role']!r} is not one of {', '.join(ROLES)}")
        values = {k: row.get(k) for k in _COLUMNS}
        values["created_at"] = values["created_at"] or datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        for k in ("colors", "message"):
            values[k] = None if values[k] is None else json.dumps(values[k])
        for k in ("correct", "faithful"):
            values[k] = None if values[k] is None else int(bool(values[k]))
        cur = con.execute(f"INSERT INTO plays ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                          [values[k] for k in _COLUMNS])  # fmt: skip
        return _decode({"id": cur.lastrowid, **values})

    def rows(self) -> list[dict[str, Any]]:
        """Every played round, oldest first; JSON fields decoded, flags as bools."""
        con = self._con()
        cur = con.execute(f"SELECT id, {', '.join(_COLUMNS)} FROM plays ORDER BY id")
        names = [d[0] for d in cur.description]
        return [_decode(dict(zip(names, r))) for r in cur.fetchall()]

    def __len__(self) -> int:
        return self._con().execute("SELECT COUNT(*) FROM plays").fetchone()[0]


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for k in ("colors", "message"):
        if isinstance(row.get(k), str):
            row[k] = json.loads(row[k])
    for k in ("correct", "faithful"):
        if row.get(k) is not None:
            row[k] = bool(row[k])
    return row


# -- evaluation -------------------------------------------------------------------------------------


def _report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": len(rows)}
    for role in ROLES:
        rs = [r for r in rows if r["role"] == role]
        # Rounds of one player are not independent: bootstrap over players (rows without one stand alone).
        groups = [r["player"] or f"row{r['id']}" for r in rs]
        out[role] = accuracy_report([r["correct"] for r in rs], [r["condition"] for r in rs], groups)
    return out


def plays_report(db_path: str | Path) -> dict[str, Any]:
    """Human accuracies from a plays database: `{"listener": R→H, "speaker": H→R, "rounds": n, "by_channel": {...}}`.

    Each of `listener` and `speaker` is an `translator.games.accuracy.accuracy_report` (accuracy, ci95, rounds,
    by_condition); accuracy is NaN for a role nobody played.
    """
    path = Path(db_path)
    if not path.is_file():
        raise ValueError(f"--plays {path}: no such plays database")
    with PlaysDB(path) as db:
        rows = db.rows()
    report = _report(rows)
    report["by_channel"] = {c: _report([r for r in rows if r["channel"] == c]) for c in sorted({r["channel"] for r in rows})}
    return report


def format_plays(metrics: dict[str, Any], key: str = "human_play") -> str:
    """Console table: people's play accuracies beside the belief translator's model numbers, per channel and condition."""
    plays = metrics.get(key)
    if not plays:
        return ""

    def cell(rep: dict | None, cond: str | None = None) -> str:
        if rep and cond is not None:
            rep = rep.get("by_condition", {}).get(cond)
        if not rep or not rep.get("rounds", 1) or rep.get("accuracy") != rep.get("accuracy"):
            return "-"
        n = f" (n={rep['rounds']})" if "rounds" in rep else ""
        return f"{rep['accuracy']:.3f}{n}"

    table = [["channel", "who", "all", *CONDITIONS]]
    for channel, rep in plays["by_channel"].items():
        model = (metrics.get("translation", {}).get(channel) or {}).get("belief") or {}
        for who, r in (
            ("model R->H (eval listener)", model.get("to_english")),
            ("people R->H (play)", rep["listener"]),
            ("model H->R (agent listener)", model.get("to_neuralese")),
            ("people H->R (play)", rep["speaker"]),
        ):
            table.append([channel, who, cell(r), *(cell(r, c) for c in CONDITIONS)])
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [f"human play ({plays['rounds']} rounds; model = belief translator on the evaluation data)"]
    return "\n".join(lines + ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table])
