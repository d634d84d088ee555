"""Streaming translation of JSON Lines: the engine of `neuralese translate` (docs/live_translation.md).

Input: one JSON object per line, `{"message": [...]}` (to English) or `{"utterance": "..."}` (to
neuralese), with an optional `context` (three HSL colours; without it, context-free) and `id`
(echoed); any other field is an error, so a misspelt `contxt` cannot silently drop the context.
A translator with its own record parser (`parse`, the driving game's) checks the whole line itself.
Output: one record per non-blank line, in input order: the translation, divergence, faithfulness
and alternatives, or `{"line": n, "error": ...}`. Whatever goes wrong with one line becomes its
error record and the stream goes on; a failure to read the input itself (`ReadError`) is raised
once every line read before it has been written.

A reader thread feeds a queue and a batch is whatever has arrived (up to `batch_size`) once the
input pauses for `max_wait` seconds: a live pipe is answered promptly, a file at full speed.
`run_stream_parallel` spreads batches over worker processes, each with its own translator and one
torch thread, which beats threads in one process where parsing and small torch calls share the GIL."""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from translator.storage.run_layout import DIRECTIONS

if TYPE_CHECKING:  # the parent of `run_stream_parallel`'s workers never loads torch
    from translator.translate.colors.api import Translator
    from translator.translate.translations import Translation

MAX_LINE_BYTES = 1 << 20  # a 64-d message is ~1.5 KB; anything near this is a mistake, not a message
FIELDS = {"english": ("message", "context", "id"), "neuralese": ("utterance", "context", "id")}
_EOF = object()


@dataclass
class CheckedLine:
    """One checked input row."""

    line: int
    source: Any  # checked message (list) or utterance
    context: list | None
    id: Any = None


class LineError(ValueError):
    """A bad line; `id` is the line's own id when it could be read (echoed in the error record)."""

    def __init__(self, message: str, id: Any = None):
        super().__init__(message)
        self.id = id


@dataclass
class StreamStats:
    lines: int = 0
    errors: int = 0
    batches: int = 0
    seconds: float = 0.0


def parse_line(translator: Translator, to: str, line: int, raw: bytes | str | None) -> CheckedLine:
    """Check one input line; `ValueError` with a message fit for the error record."""
    if raw is None:
        raise ValueError(f"line longer than {MAX_LINE_BYTES} bytes")
    try:  # fast path; whatever orjson refuses (NaN, huge ints, bad UTF-8) gets json's reading and message
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        obj = _loads_slow(raw)
    return _check_object(translator, to, line, obj)


def _loads_slow(raw: bytes | str) -> Any:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"not UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise ValueError("not JSON (nested too deeply)") from None
    except ValueError as e:  # Python's own limits, such as an integer of over 4,300 digits
        raise ValueError(f"not JSON ({e})") from None
    return obj


def _check_object(translator: Translator, to: str, line: int, obj: Any) -> CheckedLine:
    if hasattr(translator, "parse"):  # a game whose record carries its own context (driving)
        return _check_record(translator, to, line, obj)
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    allowed = FIELDS[to]
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; a line to {to} has {', '.join(allowed)}")
    key = allowed[0]
    if key not in obj:
        raise ValueError(f"missing field {key!r}")
    rid = obj.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (str, int, float)) or (isinstance(rid, float) and not math.isfinite(rid))):
        raise ValueError("id: expected a string or a finite number")
    try:
        source = translator.check_message(obj[key]) if to == "english" else translator.check_utterance(obj[key])
        context = obj.get("context")
        return CheckedLine(line, source, None if context is None else translator.check_context(context), rid)
    except ValueError as e:
        raise LineError(str(e), rid) from None


def _check_record(translator: Any, to: str, line: int, obj: Any) -> CheckedLine:
    """A line checked by the translator's own record parser (`DrivingTranslator.parse`)."""
    try:
        record = translator.parse(obj, to, line)
    except ValueError as e:  # `RecordError`: the record names the line, the message the field
        raise LineError(getattr(e, "detail", str(e)), getattr(e, "id", None)) from None
    return CheckedLine(line, record, None, record.id)


def _check_direction(to: str) -> None:
    if to not in DIRECTIONS:
        raise ValueError(f"direction {to!r}: expected one of {', '.join(DIRECTIONS)}")


def _translate_group(translator: Translator, to: str, items: list[CheckedLine]) -> list[Translation]:
    colors = None if items[0].context is None else [it.context for it in items]
    if to == "english":
        return translator.english_checked([it.source for it in items], colors)
    return translator.neuralese_checked([it.source for it in items], colors)


def _record(item: CheckedLine, result: Translation | None = None, error: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"line": item.line}
    if item.id is not None:
        rec["id"] = item.id
    if error is not None:
        rec["error"] = error
    else:
        rec.update(result.to_json())  # type: ignore[union-attr]
    return rec


@dataclass
class Prepared:
    """A batch of numbered lines, checked: error records for the bad ones, groups of good items."""

    order: list[int]
    records: dict[int, dict[str, Any]]
    groups: dict[bool, list[CheckedLine]]  # with context / without


def check_line(translator: Translator, to: str, n: int, raw: bytes | str | None) -> CheckedLine | dict[str, Any] | None:
    """One numbered input line checked: `None` when blank, the `CheckedLine`, or the line's error record."""
    if raw is not None and not raw.strip():
        return None
    try:
        return parse_line(translator, to, n, raw)
    except ValueError as e:
        return _record(CheckedLine(n, None, None, getattr(e, "id", None)), error=str(e))
    except RecursionError:
        return _record(CheckedLine(n, None, None), error="nested too deeply")
    except Exception as e:  # noqa: BLE001 - an unexpected failure is still this line's error, never the stream's end
        return _record(CheckedLine(n, None, None), error=f"could not be checked ({type(e).__name__}: {e})")


def group_checked(checked: Iterable[tuple[int, CheckedLine | dict[str, Any] | None]]) -> Prepared:
    """Checked lines (`check_line`) as a batch: error records kept, good items grouped by context mode."""
    prep = Prepared([], {}, {True: [], False: []})
    for n, c in checked:
        if c is None:
            continue
        prep.order.append(n)
        if isinstance(c, CheckedLine):
            prep.groups[c.context is not None].append(c)
        else:
            prep.records[n] = c
    return prep


def prepare_batch(translator: Translator, to: str, lines: Iterable[tuple[int, bytes | str | None]]) -> Prepared:
    """Parse and check numbered lines (blank ones are skipped); the bad ones get their error record."""
    _check_direction(to)
    return group_checked((n, check_line(translator, to, n, raw)) for n, raw in lines)


def finish_batch(translator: Translator, to: str, prep: Prepared) -> list[dict[str, Any]]:
    """Translate a prepared batch: records in input order.

    Valid rows are translated in one call per context mode (with / without context); should a
    call fail anyway, its rows are retried one by one so that only the culprit gets an error.
    """
    records = prep.records
    for items in prep.groups.values():
        if not items:
            continue
        try:
            results = _translate_group(translator, to, items)
            if len(results) != len(items):
                raise RuntimeError(f"{len(results)} results for {len(items)} rows")
            for item, res in zip(items, results):
                records[item.line] = _record(item, res)
        except Exception:  # noqa: BLE001 - isolate the row that breaks the batch
            for item in items:
                try:
                    records[item.line] = _record(item, _translate_group(translator, to, [item])[0])
                except Exception as e:  # noqa: BLE001 - an error record, and the stream goes on
                    records[item.line] = _record(item, error=f"translation failed: {type(e).__name__}: {e}")
    return [records[n] for n in prep.order]


def translate_batch(translator: Translator, to: str, lines: Iterable[tuple[int, bytes | str | None]]) -> list[dict[str, Any]]:
    """Records for numbered input lines, in input order; blank lines give none."""
    return finish_batch(translator, to, prepare_batch(translator, to, lines))


class ReadError(OSError):
    """The input stream itself failed (not a bad line): raised once the lines before it are out."""


@dataclass
class _ReadFailed:
    error: ReadError


def _read_lines(f: IO[bytes], q: queue.Queue, check: Callable[[int, bytes | None], Any] | None = None) -> None:
    """Put `(n, raw or check(n, raw))` for each line on `q`, then `_EOF`; a failed read puts
    `_ReadFailed` before `_EOF`, so the consumer raises it instead of taking it for the end.
    `check` must not raise (`check_line` never does)."""
    n = 0
    try:
        while True:
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                break
            n += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while True:  # skip the rest of the over-long line
                    more = f.readline(MAX_LINE_BYTES)
                    if not more or more.endswith(b"\n"):
                        break
                raw = None
            q.put((n, raw if check is None else check(n, raw)))
    except Exception as e:  # noqa: BLE001 - handed to the consumer, which raises it
        q.put(_ReadFailed(ReadError(f"input: reading failed after line {n} ({type(e).__name__}: {e})")))
    finally:
        q.put(_EOF)


def batches(f: IO[bytes], batch_size: int = 256, max_wait: float = 0.005,
            check: Callable[[int, bytes | None], Any] | None = None) -> Iterator[list[tuple[int, Any]]]:
    """Numbered lines of a binary stream in batches: up to `batch_size`, or what arrived before a pause.

    The reader thread also applies `check(n, raw)` to each line when given, so that checking the
    next lines overlaps translating the current batch. A failed read raises `ReadError` after the
    batch of the lines before it."""
    q: queue.Queue = queue.Queue(maxsize=4 * batch_size)
    threading.Thread(target=_read_lines, args=(f, q, check), daemon=True, name="jsonl-reader").start()
    end = None  # `_EOF` or `_ReadFailed` once seen
    while end is None:
        first = q.get()
        if first is _EOF or isinstance(first, _ReadFailed):
            end = first
            break
        batch = [first]
        deadline = time.monotonic() + max_wait
        while len(batch) < batch_size:
            try:
                nxt = q.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    nxt = q.get(timeout=left)
                except queue.Empty:
                    break
            if nxt is _EOF or isinstance(nxt, _ReadFailed):
                end = nxt
                break
            batch.append(nxt)
        yield batch
    if isinstance(end, _ReadFailed):
        raise end.error


def run_stream(translator: Translator, to: str, inp: IO[bytes], out: IO[str], batch_size: int = 256, max_wait: float = 0.005) -> StreamStats:
    """Translate JSON Lines from `inp` (binary) to `out` (text), flushing after every batch.

    A pipeline: while a batch is translated, the next lines are read and checked by the reader
    thread and the previous batch is formatted and written by a writer thread (torch releases the
    GIL in its products); batches are written strictly in turn, so the output keeps input order.
    """
    _check_direction(to)
    stats = StreamStats()
    start = time.perf_counter()

    def write(records: list[dict[str, Any]]) -> None:
        _write(out, stats, *formatted(records))

    with ThreadPoolExecutor(1, thread_name_prefix="jsonl-write") as writer:
        written = None
        for batch in batches(inp, batch_size, max_wait, check=lambda n, raw: check_line(translator, to, n, raw)):
            records = finish_batch(translator, to, group_checked(batch))
            if written is not None:
                written.result()  # the previous batch is out (or its error raised) before this one goes
            written = writer.submit(write, records)
        if written is not None:
            written.result()
    stats.seconds = time.perf_counter() - start
    return stats


def formatted(records: list[dict[str, Any]]) -> tuple[str, int, int]:
    """`(records as JSON Lines text, how many, how many are error records)`."""
    lines = [_json_line(r) for r in records]
    return "".join(text for text, _ in lines), len(lines), sum(error for _, error in lines)


# Line breaks to Python's `str.splitlines` (and JavaScript) that JSON leaves raw inside strings:
# escaped, so that a record is one line for any reader.
_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def _json_line(rec: dict[str, Any]) -> tuple[str, bool]:
    """`(line, is it an error record)`: one record as one line of strict JSON that can be written as
    UTF-8. A lone surrogate echoed from the input is escaped; a record that cannot be JSON at all
    becomes an error record for its line."""
    try:
        text = json.dumps(rec, ensure_ascii=False, allow_nan=False)
        if not text.isascii():  # the usual record is ASCII: nothing to check
            text = text.translate(_LINE_BREAKS)
            text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from an id or a field name: \u escapes are valid JSON
        text = json.dumps(rec, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        rec = {"line": rec.get("line"), "error": f"result could not be written as JSON ({type(e).__name__})"}
        text = json.dumps(rec)
    return text + "\n", "error" in rec


def _write(out: IO[str], stats: StreamStats, text: str, lines: int, errors: int) -> None:
    if text:
        out.write(text)
        out.flush()
    stats.lines += lines
    stats.errors += errors
    stats.batches += 1


# -- worker processes ---------------------------------------------------------------------------
_worker: dict[tuple, Translator] = {}  # this worker process's translator, by (bundle, channel name, threads)


def _translate_in_worker(spec: tuple[str, str | None, int], to: str, lines: list[tuple[int, bytes | None]]) -> tuple[str, int, int]:
    """One batch in a worker: `(JSON Lines text, records, error records)`. The translator is loaded
    on the worker's first batch, so that a bundle that fails to load raises its own error here."""
    if spec not in _worker:
        # deferred: heavy imports, loaded in the worker processes only (the parent stays torch-free)
        import torch

        from translator.translate.colors.api import Translator

        bundle, channel_name, threads = spec
        torch.set_num_threads(threads)
        _worker[spec] = Translator.from_pretrained(bundle, channel_name)
    return formatted(translate_batch(_worker[spec], to, lines))


def _worker_context() -> BaseContext:
    """Workers fork from a server process that imported torch and the translator code once (never
    fork a process that has run torch ops: its thread pool does not survive a fork); spawn where
    there is no fork."""
    if "forkserver" not in get_all_start_methods():
        return get_context("spawn")
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(["translator.translate.colors.api"])
    return ctx


def run_stream_parallel(bundle: str | Path, to: str, inp: IO[bytes], out: IO[str], workers: int, batch_size: int = 256,
                        max_wait: float = 0.005, channel_name: str | None = None, threads: int = 1) -> StreamStats:
    """`run_stream` over `workers` processes, each loading the translator bundle at `bundle` (with
    `threads` torch threads). This process only reads lines and writes results: batches go out to
    the workers as they fill, and a writer thread writes each batch's records as soon as it and
    every batch before it are back (a live pipe is answered while the input waits), so the output
    keeps input order; at most `2 * workers` batches wait to be written, which bounds memory."""
    _check_direction(to)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    stats = StreamStats()
    start = time.perf_counter()
    spec = (str(bundle), channel_name, threads)
    in_order: queue.Queue = queue.Queue(maxsize=2 * workers)  # futures in input order; `None` ends
    failure: list[BaseException] = []

    def write_in_order() -> None:
        while (done := in_order.get()) is not None:
            try:
                if not failure:
                    _write(out, stats, *done.result())
            except BaseException as e:  # noqa: BLE001 - raised in the caller's thread below
                failure.append(e)

    with ProcessPoolExecutor(workers, mp_context=_worker_context()) as pool:
        writer = threading.Thread(target=write_in_order, name="jsonl-write", daemon=True)
        writer.start()
        try:
            for batch in batches(inp, batch_size, max_wait):
                if failure:
                    break
                in_order.put(pool.submit(_translate_in_worker, spec, to, batch))
        finally:
            in_order.put(None)
            writer.join()
    if failure:
        raise failure[0]
    stats.seconds = time.perf_counter() - start
    return stats
