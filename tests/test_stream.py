"""Streaming JSON Lines translation: order, bad lines in place, live pipes, and the `translate` command."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import threading
from pathlib import Path

import pytest

import translator.apps.stream as stream
from translator.apps.live_cli import add_live_commands
from translator.apps.stream import batches, run_stream, run_stream_parallel, translate_batch
from translator.storage.bundle import BundleError
from translator.translate.colors.api import Translator


@pytest.fixture(scope="module")
def translator(saved_belief_translator) -> Translator:
    return Translator.from_pretrained(saved_belief_translator)


@pytest.fixture(scope="module")
def rows(tiny_pairs):
    sel = tiny_pairs.select(range(10))
    return sel["message"], sel["colors"], sel["utterance"]


def _lines(rows) -> tuple[list[bytes], dict[int, str | None]]:
    """A stream mixing good and bad lines; `expect[n]` = None for a good line, else a regex of its error."""
    messages, colors, _ = rows
    m = [list(x) for x in messages]
    good = lambda i, ctx=True, **kw: json.dumps({"message": m[i], **({"context": colors[i]} if ctx else {}), **kw})  # noqa: E731
    lines = [
        good(0, id="a"),
        "{not json",
        good(1, ctx=False),
        "",  # blank: skipped
        '[1, 2, 3]',
        json.dumps({"message": m[2][:-1], "context": colors[2], "id": 7}),
        '{"message": [' + ", ".join(["NaN"] * len(m[3])) + "]}",
        good(3),
        json.dumps({"message": m[4], "contxt": colors[4]}),
        json.dumps({"utterance": "blue"}),
        json.dumps({"message": m[5], "context": [[400, 50, 50]] * 3}),
        "\xff\xfe{}",  # not UTF-8 (encoded below as raw bytes)
        "[" * 5000 + "]" * 5000,  # 10 KB, under the line cap, but too deep for any JSON reader
        good(4, ctx=False, id=3.5),
        good(5),
    ]
    raw = [ln.encode("latin-1") if ln.startswith("\xff") else ln.encode() for ln in lines]
    expect = {
        1: None, 2: "not JSON", 3: None, 5: "expected a JSON object", 6: "expects 64 numbers, got 63",
        7: "NaN or infinite", 8: None, 9: "unknown field.*contxt", 10: "unknown field.*utterance.*has message",
        11: r"out of range", 12: "not UTF-8", 13: "not JSON \\(nested too deeply\\)", 14: None, 15: None,
    }  # fmt: skip
    return raw, expect


def _check(records, expect, translator, rows):
    import re

    assert [r["line"] for r in records] == sorted(expect)  # one per non-blank line, in order
    messages, colors, _ = rows
    # good lines carry exactly what the API gives for the same rows
    want_ctx = translator.to_english([messages[i] for i in (0, 3, 5)], [colors[i] for i in (0, 3, 5)])
    want_free = translator.to_english([messages[i] for i in (1, 4)])
    want = {1: want_ctx[0], 8: want_ctx[1], 15: want_ctx[2], 3: want_free[0], 14: want_free[1]}
    for r in records:
        n = r["line"]
        if expect[n] is None:
            assert "error" not in r
            assert r["translation"] == want[n].translation and r["faithful"] == want[n].faithful
            assert r["divergence"] == pytest.approx(want[n].divergence, rel=1e-5, abs=1e-6)
            assert [a["translation"] for a in r["alternatives"]] == [a.translation for a in want[n].alternatives]
        else:
            assert set(r) <= {"line", "error", "id"} and re.search(expect[n], r["error"]), r
    by_line = {r["line"]: r for r in records}
    assert by_line[1]["id"] == "a" and by_line[14]["id"] == 3.5 and by_line[6]["id"] == 7  # ids echoed, errors too


def test_translate_batch_keeps_order_and_puts_errors_in_place(translator, rows):
    raw, expect = _lines(rows)
    records = translate_batch(translator, "english", list(enumerate(raw, 1)))
    _check(records, expect, translator, rows)


@pytest.mark.parametrize("batch_size", [1, 3, 256])
def test_run_stream_any_batch_size(translator, rows, batch_size):
    raw, expect = _lines(rows)
    out = io.StringIO()
    stats = run_stream(translator, "english", io.BytesIO(b"\n".join(raw) + b"\n"), out, batch_size=batch_size)
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    _check(records, expect, translator, rows)
    assert stats.lines == len(expect) and stats.errors == sum(v is not None for v in expect.values())


def test_worker_processes_give_the_same_records_in_order(saved_belief_translator, translator, rows):
    raw, expect = _lines(rows)
    out = io.StringIO()
    stats = run_stream_parallel(saved_belief_translator, "english", io.BytesIO(b"\n".join(raw) + b"\n"), out, workers=2, batch_size=3)
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    _check(records, expect, translator, rows)
    assert stats.lines == len(expect) and stats.errors == sum(v is not None for v in expect.values())
    assert stats.batches == 5  # 15 lines in batches of 3


def test_worker_processes_answer_a_live_pipe_before_eof(saved_belief_translator, translator, rows):
    """With workers too, what has arrived is answered while the writer keeps the pipe open."""
    messages, colors, _ = rows
    r, w = os.pipe()
    out = io.StringIO()
    with os.fdopen(r, "rb") as inp:
        t = threading.Thread(target=run_stream_parallel, args=(saved_belief_translator, "english", inp, out, 2), daemon=True)
        t.start()
        os.write(w, (json.dumps({"message": list(messages[0]), "context": colors[0]}) + "\n").encode())
        for _ in range(600):  # workers start in a few seconds; the pipe stays open meanwhile
            if out.getvalue().count("\n") == 1:
                break
            t.join(0.1)
        assert [json.loads(x)["line"] for x in out.getvalue().splitlines()] == [1]
        assert t.is_alive()  # still waiting for more input
        os.close(w)
        t.join(30)
    assert not t.is_alive()
    assert json.loads(out.getvalue())["translation"] == translator.to_english([messages[0]], [colors[0]])[0].translation


def test_worker_processes_report_a_bad_bundle_and_bad_settings(saved_belief_translator, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(saved_belief_translator, bad)
    cfg = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "kind": "neuralese.agents"}))
    line = b'{"utterance": "blue"}\n'
    with pytest.raises(BundleError, match=r"config.json: kind 'neuralese.agents' is not a translator"):
        run_stream_parallel(bad, "neuralese", io.BytesIO(line), io.StringIO(), workers=2)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        run_stream_parallel(saved_belief_translator, "neuralese", io.BytesIO(line), io.StringIO(), workers=0)
    with pytest.raises(ValueError, match="direction 'french'"):
        run_stream_parallel(saved_belief_translator, "french", io.BytesIO(line), io.StringIO(), workers=2)


def test_over_long_line_is_an_error_and_the_stream_goes_on(translator, rows, monkeypatch):
    monkeypatch.setattr(stream, "MAX_LINE_BYTES", 64)
    inp = b'{"utterance": "the blue one"}\n' + b'{"utterance": "' + b"x" * 500 + b'"}\n' + b'{"utterance": "green"}'
    out = io.StringIO()
    run_stream(translator, "neuralese", io.BytesIO(inp), out)
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3]
    assert "longer than 64 bytes" in records[1]["error"] and "error" not in records[0] and "error" not in records[2]
    assert len(records[2]["translation"]) == translator.channel.dim


def test_to_neuralese_lines(translator, rows):
    _, colors, utterances = rows
    lines = [json.dumps({"utterance": utterances[0], "context": colors[0]}), json.dumps({"utterance": ""}),
             json.dumps({"utterance": "x" * 2001}), json.dumps({"message": [1.0]}), json.dumps({"utterance": utterances[1]})]
    records = translate_batch(translator, "neuralese", list(enumerate(lines, 1)))
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5]
    assert "empty" in records[1]["error"] and "limit of 2000" in records[2]["error"] and "unknown field" in records[3]["error"]
    want = translator.to_neuralese([utterances[0]], [colors[0]])[0]
    assert records[0]["translation"] == pytest.approx(want.translation)
    assert len(records[4]["translation"]) == translator.channel.dim


def test_live_pipe_is_answered_before_eof():
    """A batch goes out when input pauses, not only when `batch_size` lines have arrived."""
    r, w = os.pipe()
    got: list[list] = []

    def consume():
        with os.fdopen(r, "rb") as f:
            for b in batches(f, batch_size=256, max_wait=0.005):
                got.append(b)

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    os.write(w, b'{"a": 1}\n{"a": 2}\n')
    for _ in range(200):  # the writer keeps the pipe open: the two lines must still come out
        if sum(len(b) for b in got) == 2:
            break
        t.join(0.05)
    assert [n for b in got for n, _ in b] == [1, 2]
    os.close(w)
    t.join(10)
    assert not t.is_alive()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neuralese")
    add_live_commands(p.add_subparsers(dest="command", required=True))
    return p


@pytest.mark.parametrize("workers", ["1", "2"])
def test_translate_command(saved_belief_translator, tmp_path, rows, capsys, translator, workers):
    run = tmp_path / "run"
    shutil.copytree(saved_belief_translator, run / "translators" / "continuous" / "belief")
    raw, expect = _lines(rows)
    Path(tmp_path / "in.jsonl").write_bytes(b"\n".join(raw))
    args = _parser().parse_args(["translate", "--run", str(run), "--channel", "continuous", "--to", "english",
                                 "--input", str(tmp_path / "in.jsonl"), "--batch-size", "4", "--workers", workers])
    args.func(args)
    captured = capsys.readouterr()
    _check([json.loads(x) for x in captured.out.splitlines()], expect, translator, rows)
    n_errors = sum(v is not None for v in expect.values())
    assert f"{len(expect)} lines ({n_errors} errors)" in captured.err
    for argv, msg in ((["--channel", "gumbel"], "unknown channel 'gumbel'"), (["--channel", "../x"], "plain name")):
        args = _parser().parse_args(["translate", "--run", str(run), "--to", "english", *argv])
        with pytest.raises(ValueError, match=msg):
            args.func(args)
    with pytest.raises(SystemExit):
        _parser().parse_args(["translate", "--run", str(run), "--channel", "continuous", "--to", "french"])
    with pytest.raises(SystemExit):  # refused by the parser
        _parser().parse_args(["translate", "--run", str(run), "--channel", "continuous", "--to", "english", "--workers", "0"])


def test_an_unexpected_failure_on_one_line_is_that_lines_error(translator, rows, monkeypatch):
    """Not only `ValueError`: whatever one line raises becomes its error record, the stream goes on."""
    messages, colors, _ = rows
    real = translator.check_context

    def check_context(value):
        if value == [[1, 2, 3]] * 3:
            raise RuntimeError("boom")
        return real(value)

    monkeypatch.setattr(translator, "check_context", check_context)
    lines = [{"message": list(messages[0]), "context": colors[0]}, {"message": list(messages[1]), "context": [[1, 2, 3]] * 3},
             {"message": list(messages[2]), "context": colors[2]}]
    out = io.StringIO()
    stats = run_stream(translator, "english", io.BytesIO(b"".join(json.dumps(x).encode() + b"\n" for x in lines)), out)
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3]
    assert records[1]["error"] == "could not be checked (RuntimeError: boom)"
    want = translator.to_english([messages[0], messages[2]], [colors[0], colors[2]])
    assert [records[0]["translation"], records[2]["translation"]] == [w.translation for w in want]
    assert (stats.lines, stats.errors) == (3, 1)


class _FailingInput(io.BytesIO):
    """Gives its lines, then fails as a broken disk or socket would."""

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        if not line:
            raise OSError(5, "Input/output error")
        return line


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failed_read_is_raised_after_the_lines_before_it(saved_belief_translator, translator, workers):
    """A read error is not taken for the end of the input: the lines read are written, then it is raised."""
    inp = _FailingInput(b'{"utterance": "blue"}\n{"utterance": "the green one"}\n')
    out = io.StringIO()
    with pytest.raises(stream.ReadError, match=r"reading failed after line 2 \(OSError: \[Errno 5\] Input/output error\)"):
        if workers == 1:
            run_stream(translator, "neuralese", inp, out, batch_size=1)
        else:
            run_stream_parallel(saved_belief_translator, "neuralese", inp, out, workers=2, batch_size=1)
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r["line"] for r in records] == [1, 2] and all(len(r["translation"]) == translator.channel.dim for r in records)


def test_records_with_lone_surrogates_are_written_as_utf8(translator, rows):
    """An id (or an unknown field's name) with a lone surrogate is echoed escaped: the output stays UTF-8."""
    messages, colors, _ = rows
    lines = [b'{"message": ' + json.dumps(list(messages[0])).encode() + b', "id": "\\ud800x"}', b'{"\\udc00": 1}']
    out = io.StringIO()
    run_stream(translator, "english", io.BytesIO(b"\n".join(lines)), out)
    out.getvalue().encode("utf-8")  # what a UTF-8 stdout must accept
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert records[0]["id"] == "\ud800x" and "error" not in records[0]
    assert records[1]["error"].startswith("unknown field(s) \udc00;")


def test_text_no_reader_can_split_or_read_is_escaped_or_refused(translator):
    """A raw U+2028 echoed in a record is escaped (`str.splitlines` would break the record in two);
    an utterance with a lone surrogate, which the tokenizer cannot take, is that line's error."""
    lines = ['{"\u2028": 1}'.encode(), b'{"utterance": "\\ud800 blue"}', b'{"utterance": "blue"}']
    out = io.StringIO()
    run_stream(translator, "neuralese", io.BytesIO(b"\n".join(lines)), out)
    assert "\u2028" not in out.getvalue() and len(out.getvalue().splitlines()) == 3
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert records[0]["error"].startswith("unknown field(s) \u2028;")
    assert records[1]["error"] == "utterance: not valid Unicode (a lone surrogate at character 0)"
    assert len(records[2]["translation"]) == translator.channel.dim


def test_translate_command_exits_1_on_a_failed_read(saved_belief_translator, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(saved_belief_translator, run / "translators" / "continuous" / "belief")
    monkeypatch.setattr("sys.stdin", argparse.Namespace(buffer=_FailingInput(b'{"utterance": "blue"}\n')))
    args = _parser().parse_args(["translate", "--run", str(run), "--channel", "continuous", "--to", "neuralese"])
    with pytest.raises(SystemExit) as info:
        args.func(args)
    captured = capsys.readouterr()
    assert info.value.code == 1 and [json.loads(x)["line"] for x in captured.out.splitlines()] == [1]
    assert captured.err == "neuralese translate: error: input: reading failed after line 1 (OSError: [Errno 5] Input/output error)\n"
