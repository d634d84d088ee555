"""The HTTP service as users meet it: a real uvicorn process on a loopback port."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from translator.translate.colors.api import Translator

ROOT = Path(__file__).resolve().parents[1]
MAX_BATCH, MAX_BODY = 16, 200_000
# `neuralese serve` through `add_live_commands`, as cli.py wires it
SERVE = (
    "import argparse, sys; from translator.apps.live_cli import add_live_commands; "
    "p = argparse.ArgumentParser(); add_live_commands(p.add_subparsers(dest='command', required=True)); "
    "a = p.parse_args(sys.argv[1:]); a.func(a)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(run: Path, *extra: str) -> tuple[str, subprocess.Popen, Path]:
    """`neuralese serve` on a free loopback port, once /healthz answers: `(url, process, log path)`."""
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    log_path = run / f"server-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", "--run", str(run), "--port", str(port), "--threads", "1",
             "--max-batch", str(MAX_BATCH), "--max-body", str(MAX_BODY), "--batch-wait-ms", "5", "--log-level", "warning", *extra],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    return url, proc, log_path
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
    except BaseException:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def service_run(saved_belief_translator, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("service") / "run"
    shutil.copytree(saved_belief_translator, run / "translators" / "continuous" / "belief")
    return run


@pytest.fixture(scope="module")
def server(service_run):
    url, proc, _ = _start(service_run)
    try:
        yield url, proc
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def translator(saved_belief_translator) -> Translator:
    return Translator.from_pretrained(saved_belief_translator)


@pytest.fixture(scope="module")
def rows(tiny_pairs):
    sel = tiny_pairs.select(range(64))
    return [list(m) for m in sel["message"]], sel["colors"], sel["utterance"]


def _same(result: dict, want, rid=None) -> None:
    assert result.get("id") == rid
    assert result["translation"] == want.translation if isinstance(want.translation, str) else result["translation"] == pytest.approx(want.translation, abs=1e-5)
    assert result["divergence"] == pytest.approx(want.divergence, rel=1e-4, abs=1e-6)
    assert result["faithful"] == want.faithful
    assert len(result["alternatives"]) == len(want.alternatives)


def test_health_and_schema(server):
    url, _ = server
    h = httpx.get(url + "/healthz").json()
    assert h["status"] == "ok" and h["translator"] == "belief" and h["channels"]["continuous"]["dim"] == 64
    schema = httpx.get(url + "/openapi.json").json()
    assert {"/v1/translate", "/healthz"} <= set(schema["paths"])
    assert {"TranslateRequest", "TranslateResponse", "Item", "Result"} <= set(schema["components"]["schemas"])


def test_valid_requests_both_directions(server, translator, rows):
    url, _ = server
    messages, colors, utterances = rows
    items = [{"message": messages[0], "context": colors[0], "id": "a"}, {"message": messages[1]}, {"message": messages[2], "context": colors[2], "id": 3}]
    r = httpx.post(url + "/v1/translate", json={"channel": "continuous", "to": "english", "items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["channel"] == "continuous" and body["to"] == "english" and body["translator"] == "belief"
    ctx = translator.to_english([messages[0], messages[2]], [colors[0], colors[2]])
    _same(body["results"][0], ctx[0], "a")
    _same(body["results"][1], translator.to_english([messages[1]])[0])
    _same(body["results"][2], ctx[1], 3)

    items = [{"utterance": utterances[3], "context": colors[3]}, {"utterance": "the blue one"}]
    r = httpx.post(url + "/v1/translate", json={"channel": "continuous", "to": "neuralese", "items": items})
    assert r.status_code == 200, r.text
    out = r.json()["results"]
    _same(out[0], translator.to_neuralese([utterances[3]], [colors[3]])[0])
    _same(out[1], translator.to_neuralese(["the blue one"])[0])
    assert httpx.post(url + "/v1/translate", json={"channel": "continuous", "to": "english", "items": []}).json()["results"] == []


def test_invalid_requests_answer_4xx_and_the_server_lives(server, rows):
    url, proc = server
    m, ctx = rows[0][0], rows[1][0]
    nan_body = '{"channel": "continuous", "to": "english", "items": [{"message": [' + ", ".join(["NaN"] * 64) + "]}]}"
    with_m = '{"channel": "continuous", "to": "english", "items": [{"message": MSG}]}'

    def post(body):
        return httpx.post(url + "/v1/translate", json=body)

    def raw(content, ctype="application/json"):
        return httpx.post(url + "/v1/translate", content=content, headers={"content-type": ctype})

    def chunked():  # no Content-Length: the limit must hold while streaming
        for _ in range(40):
            yield b"x" * 10_000

    cases = [
        (post({"channel": "continuous", "to": "english", "items": [{"message": m[:-1]}]}), 422, r"items\[0\]\.message: .*expects 64 numbers, got 63"),
        (post({"channel": "continuous", "to": "english", "items": [{"message": [1e308] * 64}]}), 422, r"items\[0\]\.message: values beyond float32's range"),
        (post({"channel": "continuous", "to": "english", "items": [{"message": m, "id": True}]}), 422, r"items\[0\]\.id: "),
        (raw(with_m.replace("MSG", json.dumps(m) + ', "id": NaN')), 422, r"items\[0\]\.id: "),
        (raw(with_m.replace("MSG", json.dumps(m) + ', "id": "\\ud800"')), 422, r"body: invalid JSON"),
        (raw(nan_body), 422, r"items\[0\]\.message: NaN or infinite"),
        (raw(nan_body.replace("NaN", "1e999")), 422, r"items\[0\]\.message: NaN or infinite"),
        (post({"channel": "gumbel", "to": "english", "items": [{"message": m}]}), 422, r"unknown channel 'gumbel'.*continuous"),
        (post({"channel": "../../etc", "to": "english", "items": [{"message": m}]}), 422, r"unknown channel"),
        (post({"channel": "continuous", "to": "english", "items": [{"message": m}] * (MAX_BATCH + 1)}), 413, rf"over the limit of {MAX_BATCH}"),
        (raw(b"{" + b" " * MAX_BODY + b"}"), 413, rf"larger than the limit of {MAX_BODY} bytes"),
        (httpx.post(url + "/v1/translate", content=chunked(), headers={"content-type": "application/json"}), 413, "larger than the limit"),
        (post({"channel": "continuous", "to": "english", "items": [{"message": m, "context": ctx[:2]}]}), 422, r"items\[0\]\.context: expected three colours"),
        (post({"channel": "continuous", "to": "english", "items": [{"message": m, "context": [[1000, 0, 0]] * 3}]}), 422, r"out of range"),
        (post({"channel": "continuous", "to": "english", "items": [{"message": ["a"] * 64}]}), 422, r"items\[0\]\.message\[0\]: Input should be a valid number"),
        (post({"channel": "continuous", "to": "english", "items": [{"utterance": "blue"}]}), 422, r"items\[0\]: missing 'message'"),
        (post({"channel": "continuous", "to": "neuralese", "items": [{"utterance": "x" * 2001}]}), 422, r"items\[0\]\.utterance: .*limit of 2000"),
        (post({"channel": "continuous", "to": "neuralese", "items": [{"utterance": " "}]}), 422, r"items\[0\]\.utterance: empty"),
        (post({"channel": "continuous", "to": "klingon", "items": []}), 422, r"^to: "),
        (post({"channel": "continuous", "to": "english", "items": [{"message": m, "path": "/etc/passwd"}]}), 422, r"items\[0\]\.path: Extra inputs"),
        (raw(b"{not json"), 422, r"body: invalid JSON"),
        (raw(b"\xff\xfe\x00"), 400, r"body: could not be read as JSON"),
        (raw(b"[]"), 422, r"^body: expected a JSON object$"),
        (raw(b""), 422, r"^body: invalid JSON"),
        (raw(b"{}", "text/plain"), 422, r"Content-Type: application/json"),
    ]
    import re

    for response, status, pattern in cases:
        assert response.status_code == status, response.text
        assert re.search(pattern, response.json()["detail"]), response.text
        assert httpx.get(url + "/healthz").status_code == 200
    # garbage on the socket, and a client that disconnects mid-body
    for data in (b"\x00\x01garbage\r\n\r\n", b"POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"chan"):
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5) as s:
            s.sendall(data)
    assert httpx.get(url + "/healthz").status_code == 200 and proc.poll() is None


def test_concurrent_clients_are_batched_and_answered_in_order(server, translator, rows):
    url, proc = server
    messages, colors, _ = rows
    # 32 clients, each with 2 rows of its own (some in context, some not)
    jobs = [[(messages[2 * k], colors[2 * k] if k % 4 else None), (messages[2 * k + 1], colors[2 * k + 1])] for k in range(32)]
    before = httpx.get(url + "/healthz").json()

    async def go():
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            async def one(k, job):
                items = [{"message": msg, "id": f"{k}-{i}", **({"context": c} if c is not None else {})} for i, (msg, c) in enumerate(job)]
                return await client.post("/v1/translate", json={"channel": "continuous", "to": "english", "items": items})

            return await asyncio.gather(*(one(k, job) for k, job in enumerate(jobs)))

    responses = asyncio.run(go())
    after = httpx.get(url + "/healthz").json()
    for k, (job, r) in enumerate(zip(jobs, responses)):
        assert r.status_code == 200, r.text
        for i, ((msg, c), res) in enumerate(zip(job, r.json()["results"])):
            _same(res, translator.to_english([msg], None if c is None else [c])[0], f"{k}-{i}")
    assert after["requests"] - before["requests"] == 32  # once each, though 8 have rows with and without context
    assert after["batches"] - before["batches"] < after["requests"] - before["requests"]  # requests shared batches
    assert after["queued_rows"] == 0 and proc.poll() is None
    json.dumps(after)


def test_a_request_that_breaks_a_batch_fails_alone(server, translator, rows):
    """A row beyond float32's range (1e308) answers 422 to its own request; the requests sent beside
    it get their translations."""
    url, proc = server
    messages, colors, _ = rows
    bad = {"channel": "continuous", "to": "english", "items": [{"message": messages[0]}, {"message": [1e308] * 64, "context": colors[1]}]}

    async def go():
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            def good(k):
                return client.post("/v1/translate", json={"channel": "continuous", "to": "english",
                                                          "items": [{"message": messages[k], "context": colors[k], "id": k / 2}]})  # fmt: skip

            return await asyncio.gather(*(good(k) for k in range(8)), client.post("/v1/translate", json=bad), *(good(k) for k in range(8, 16)))

    responses = asyncio.run(go())
    assert responses[8].status_code == 422 and "values beyond float32's range" in responses[8].json()["detail"]
    for k, r in enumerate(responses[:8] + responses[9:]):
        assert r.status_code == 200, r.text
        _same(r.json()["results"][0], translator.to_english([messages[k]], [colors[k]])[0], k / 2)  # float ids echoed
    assert httpx.get(url + "/healthz").json()["queued_rows"] == 0 and proc.poll() is None


def test_the_batcher_retries_a_failed_batch_request_by_request():
    """Deterministic: three jobs in one batch, the middle one poisoned."""
    from translator.apps.service import MicroBatcher

    class Stub:
        calls: list[int] = []

        def english_checked(self, sources, colors):
            self.calls.append(len(sources))
            if "poison" in sources:
                raise ValueError("messages: poisoned")
            return [f"t{s}" for s in sources]

    async def go():
        stub = Stub()
        b = MicroBatcher({"c": stub}, batch_wait=0.05)  # type: ignore[dict-item]
        b.start()
        try:
            jobs = [b.submit(("c", "english", False), src, None) for src in (["a", "b"], ["poison"], ["c"])]
            return stub.calls, b, await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            await b.stop()

    calls, b, (first, second, third) = asyncio.run(go())
    assert first == ["ta", "tb"] and third == ["tc"]
    assert isinstance(second, ValueError) and str(second) == "messages: poisoned"
    assert calls == [4, 2, 1, 1]  # the batch, then each request alone
    assert (b.requests, b.batches, b.rows, b.queued_rows) == (3, 2, 3, 0)


def test_several_workers_give_the_single_process_answers(service_run, translator, rows):
    messages, colors, _ = rows
    url, proc, log = _start(service_run, "--workers", "2")
    try:
        items = [{"message": m, "context": c} for m, c in zip(messages[:6], colors[:6])]
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(4):  # the kernel spreads connections over the workers
                r = client.post("/v1/translate", json={"channel": "continuous", "to": "english", "items": items})
                assert r.status_code == 200, r.text
                for got, want in zip(r.json()["results"], translator.to_english(messages[:6], colors[:6])):
                    _same(got, want)
    finally:
        _stop(proc)
    assert "Traceback" not in log.read_text()


def test_what_would_stop_every_worker_is_checked_before_they_start(tmp_path, service_run):
    """uvicorn restarts a worker that dies at start, forever: `serve --workers N` checks first."""
    from translator.apps.service import serve

    with pytest.raises(ValueError, match="no translators to serve"):
        serve(tmp_path, plays_db=tmp_path / "plays.db", workers=2)
    with pytest.raises(ValueError, match="--play-data needs --plays"):
        serve(service_run, play_data=tmp_path / "x.csv", workers=2)
    (tmp_path / "bad.db").write_bytes(b"not sqlite" * 100)
    with pytest.raises(ValueError, match="not a plays database"):
        serve(service_run, plays_db=tmp_path / "bad.db", workers=2)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        serve(tmp_path, workers=0)
