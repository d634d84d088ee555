"""Soak benchmark: the HTTP service under 32 concurrent clients for minutes, 10% of the requests bad.

Target: no request ever gets a 5xx or a dropped connection, each bad request gets the 4xx its kind
calls for, and the server's memory is flat (the end within 5% of the middle). A real `neuralese
serve` process runs on RUN's translators; keep-alive clients (`bench/serve.py`'s) send requests
until `--seconds` have passed. One request in ten (`--bad`) is bad, its kind drawn evenly from
`BAD` (malformed JSON, not UTF-8, wrong fields, wrong dimension, NaN, deep nesting, too many items,
an oversized body); good ones translate one message in context from RUN's paired corpus. Server
RSS (with its children, psutil) is sampled every second. Writes `bench/results/soak.json`.

    .venv/bin/python bench/soak.py --run runs/demo [--seconds 600] [--clients 32] [--bad 0.1] [--channel continuous]"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import psutil
from serve import ROOT, SERVE, RawConnection, _free_port, cpu_seconds, machine, pct

MAX_BODY = 1 << 20  # the service's default, which the server runs with
MAX_BATCH = 256
REQUEST_TIMEOUT = 30.0  # seconds; a request slower than this counts as a failure
# bad kinds, each with the status it must get
BAD = {"malformed JSON": 422, "not UTF-8": 400, "unknown field": 422, "missing field": 422, "wrong type": 422,
       "wrong dimension": 422, "NaN": 422, "deep nesting": 422, "too many items": 413, "body too large": 413}  # fmt: skip
OWN_CONNECTION = {"too many items", "body too large"}


def server_rss_mib(pid: int) -> float:
    """Resident memory of the server process and all its descendants, MiB."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return float("nan")
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def good_rows(run: Path, kind: str, channel: dict[str, Any], n: int, rng: random.Random) -> list[dict[str, Any]]:
    """`n` items in context: messages from RUN/pairs/<kind> when the run has them, else random ones."""
    pairs = run / "pairs" / kind
    if pairs.is_dir():
        # deferred: heavy imports (torch), loaded only when needed; the benchmark's client side stays light
        from translator.translate.colors.collection import load_collection

        ds, _ = load_collection(pairs)
        sel = ds.select(range(min(n, len(ds))))
        return [{"message": list(m), "context": [list(c) for c in ctx]} for m, ctx in zip(sel["message"], sel["colors"])]

    def message() -> list:
        if channel["kind"] == "continuous":
            return [rng.gauss(0, 0.5) for _ in range(channel["dim"])]
        return [rng.randrange(channel["vocab_size"]) for _ in range(channel["max_len"])]

    context = lambda: [[rng.uniform(0, 360), rng.uniform(0, 100), rng.uniform(0, 100)] for _ in range(3)]  # noqa: E731
    return [{"message": message(), "context": context()} for _ in range(n)]


def bad_body(kind: str, channel: str, row: dict[str, Any]) -> bytes:
    """A request body of the given bad kind, built around a good row."""
    def body(items: list, **extra: Any) -> bytes:
        return json.dumps({"channel": channel, "to": "english", "items": items, **extra}).encode()

    message = row["message"]
    return {
        "malformed JSON": lambda: body([row])[:-7],
        "not UTF-8": lambda: body([row]).replace(b'"english"', b'"engl\xffsh"'),
        "unknown field": lambda: body([{**row, "contxt": row["context"]}]),
        "missing field": lambda: json.dumps({"channel": channel, "items": [row]}).encode(),
        "wrong type": lambda: body([{**row, "message": "not a list"}]),
        "wrong dimension": lambda: body([{**row, "message": message + message}]),
        "NaN": lambda: body([{**row, "message": [float("nan")] * len(message)}]),
        "deep nesting": lambda: body([row])[:-2] + b", " + b"[" * 5000 + b"]" * 5000 + b"]}",
        "too many items": lambda: body([row] * (MAX_BATCH + 1)),
        "body too large": lambda: body([row], padding="x" * MAX_BODY),
    }[kind]()


class Tally:
    """What the clients saw: statuses per kind, latencies, failures."""

    def __init__(self) -> None:
        self.by_kind: dict[str, Counter] = {}
        self.latencies: list[float] = []  # good requests
        self.all_latencies: list[float] = []
        self.unexpected = 0  # transport errors, timeouts, 5xx, any status but the expected one
        self.failures: list[str] = []  # the first of them

    def add(self, kind: str, expected: int, status: int | None, seconds: float, detail: str = "") -> None:
        self.by_kind.setdefault(kind, Counter())[status] += 1
        self.all_latencies.append(seconds)
        if kind == "good":
            self.latencies.append(seconds)
        if status != expected:
            self.unexpected += 1
            if len(self.failures) < 20:
                self.failures.append(f"{kind}: expected {expected}, got {status} {detail[:200]}")

    def count(self, test) -> int:
        return sum(n for c in self.by_kind.values() for s, n in c.items() if test(s))


async def client(host: str, port: int, deadline: float, plan: random.Random, goods: list[bytes], bads: dict[str, bytes],
                 bad_share: float, tally: Tally) -> None:
    """One keep-alive connection sending requests back to back until the deadline."""
    conn = RawConnection(host, port)
    try:
        while time.monotonic() < deadline:
            kind = plan.choice(list(bads)) if plan.random() < bad_share else "good"
            body = bads[kind] if kind != "good" else plan.choice(goods)
            expected = BAD.get(kind, 200)
            own = RawConnection(host, port) if kind in OWN_CONNECTION else None
            start = time.perf_counter()
            try:
                status, text = await asyncio.wait_for((own or conn).post("/v1/translate", body), REQUEST_TIMEOUT)
                tally.add(kind, expected, status, time.perf_counter() - start, text.decode("utf-8", "replace"))
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError) as e:
                tally.add(kind, expected, None, time.perf_counter() - start, repr(e))
                conn.close()
                conn = RawConnection(host, port)  # a fresh connection after a failure
            finally:
                if own is not None:
                    own.close()
    finally:
        conn.close()


async def sample_rss(pid: int, done: asyncio.Event, samples: list[tuple[float, float]]) -> None:
    start = time.monotonic()
    while not done.is_set():
        samples.append((time.monotonic() - start, await asyncio.to_thread(server_rss_mib, pid)))
        try:
            await asyncio.wait_for(done.wait(), 1.0)
        except asyncio.TimeoutError:
            pass


async def soak(url: str, pid: int, seconds: float, clients: int, goods: list[bytes], bads: dict[str, bytes], bad_share: float,
               seed: int) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    warm = RawConnection(host, int(port))
    for body in goods[:100]:  # warm-up: first calls allocate; not measured
        await warm.post("/v1/translate", body)
    warm.close()
    tally, samples, done = Tally(), [], asyncio.Event()
    sampler = asyncio.create_task(sample_rss(pid, done, samples))
    cpu0, start = cpu_seconds(pid), time.monotonic()
    deadline = start + seconds
    plans = [random.Random(seed * 1000 + k) for k in range(clients)]
    work = asyncio.gather(*(client(host, int(port), deadline, plans[k], goods, bads, bad_share, tally) for k in range(clients)))
    await asyncio.wait_for(work, seconds + 2 * REQUEST_TIMEOUT)  # every client stops by itself at the deadline
    elapsed = time.monotonic() - start
    server_cpu = cpu_seconds(pid) - cpu0
    done.set()
    await sampler
    return {"tally": tally, "rss": samples, "seconds": elapsed, "server_cpu_share": server_cpu / elapsed}


def start_server(run: Path, threads: int, workers: int) -> tuple[str, subprocess.Popen, Path]:
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    log = Path(tempfile.mkstemp(prefix="soak-server-", suffix=".log")[1])
    with log.open("w") as f:
        proc = subprocess.Popen([sys.executable, "-c", SERVE, "serve", "--run", str(run), "--host", "127.0.0.1", "--port", str(port),
                                 "--threads", str(threads), "--workers", str(workers), "--log-level", "warning"],
                                cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            sys.exit(f"server exited during start-up:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return url, proc, log
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.terminate()
            sys.exit("server did not start in 180 s")
        time.sleep(0.5)


def summary(res: dict[str, Any], health: dict[str, Any], alive: bool, tracebacks: int) -> dict[str, Any]:
    tally: Tally = res["tally"]
    rss = res["rss"]
    mid = next((m for t, m in rss if t >= res["seconds"] / 2), rss[-1][1])
    row = {
        "requests": len(tally.all_latencies), "seconds": res["seconds"], "requests_per_s": len(tally.all_latencies) / res["seconds"],
        "good": sum(tally.by_kind.get("good", Counter()).values()), "bad": sum(sum(c.values()) for k, c in tally.by_kind.items() if k != "good"),
        "status_2xx": tally.count(lambda s: s is not None and 200 <= s < 300), "status_4xx": tally.count(lambda s: s is not None and 400 <= s < 500),
        "status_5xx": tally.count(lambda s: s is not None and s >= 500), "transport_errors": tally.count(lambda s: s is None),
        "unexpected": tally.unexpected, "failure_examples": tally.failures[:10],
        "by_kind": {k: {str(s): n for s, n in c.items()} for k, c in sorted(tally.by_kind.items())},
        "p50_ms": 1000 * pct(tally.latencies, 0.50), "p99_ms": 1000 * pct(tally.latencies, 0.99), "max_ms": 1000 * max(tally.latencies, default=0),
        "p50_all_ms": 1000 * pct(tally.all_latencies, 0.50), "p99_all_ms": 1000 * pct(tally.all_latencies, 0.99),
        "rss_start_mib": rss[0][1], "rss_mid_mib": mid, "rss_end_mib": rss[-1][1], "rss_max_mib": max(m for _, m in rss),
        "server_cpu_share": res["server_cpu_share"], "server_alive": alive, "server_queued_rows_after": health.get("queued_rows"),
        "server_requests": health.get("requests"), "server_batches": health.get("batches"), "server_log_tracebacks": tracebacks,
    }  # fmt: skip
    row["memory_flat"] = row["rss_end_mib"] - row["rss_mid_mib"] < 0.05 * row["rss_mid_mib"]
    row["meets"] = {"no_5xx": row["status_5xx"] == 0, "no_transport_errors": row["transport_errors"] == 0,
                    "bad_requests_get_their_4xx": row["unexpected"] == 0, "memory_flat": row["memory_flat"], "server_alive": alive,
                    "no_server_tracebacks": tracebacks == 0}  # fmt: skip
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=str(ROOT / "runs" / "demo"), help="run directory whose translators are served (default runs/demo)")
    p.add_argument("--seconds", type=float, default=600, help="how long the clients send (default 600)")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--bad", type=float, default=0.1, help="share of bad requests (default 0.1)")
    p.add_argument("--channel", help="channel of the good requests (default: continuous, else the first one served)")
    p.add_argument("--threads", type=int, default=1, help="torch threads in the server (default 1)")
    p.add_argument("--workers", type=int, default=1, help="server processes (`neuralese serve --workers`)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "soak.json"))
    args = p.parse_args()
    if args.seconds <= 0 or args.clients < 1 or not 0 <= args.bad <= 1:
        p.error("--seconds > 0, --clients >= 1 and --bad in [0, 1]")
    run = Path(args.run)
    url, proc, log = start_server(run, args.threads, args.workers)
    try:
        channels = httpx.get(url + "/healthz").json()["channels"]
        channel = args.channel or ("continuous" if "continuous" in channels else next(iter(channels)))
        if channel not in channels:
            sys.exit(f"--channel {channel}: the service has {', '.join(channels)}")
        rng = random.Random(args.seed)
        rows = good_rows(run, channels[channel]["kind"], channels[channel], 512, rng)
        goods = [json.dumps({"channel": channel, "to": "english", "items": [r]}).encode() for r in rows]
        bads = {kind: bad_body(kind, channel, rows[0]) for kind in BAD}
        res = asyncio.run(soak(url, proc.pid, args.seconds, args.clients, goods, bads, args.bad, args.seed))
        health = httpx.get(url + "/healthz", timeout=10).json()
        alive = proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    server_log = log.read_text(errors="replace")
    log.unlink()
    row = summary(res, health, alive, server_log.count("Traceback"))
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(), "run": str(run), "channel": channel,
              "clients": args.clients, "bad_share": args.bad, "server_threads": args.threads, "server_workers": args.workers,
              "result": row, "rss_samples_mib": [round(m, 1) for _, m in res["rss"]]}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"machine: {result['machine']}; run {run}, channel {channel}; {args.clients} clients, {100 * args.bad:.0f}% bad; "
          f"server: {args.workers} worker(s), {args.threads} thread(s)\n")
    print("| seconds | requests | req/s | 2xx | 4xx | 5xx | transport errors | unexpected | p50 / p99 (good) | RSS start → mid → end (max) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {row['seconds']:.0f} | {row['requests']:,} | {row['requests_per_s']:,.0f} | {row['status_2xx']:,} | {row['status_4xx']:,} | "
          f"{row['status_5xx']} | {row['transport_errors']} | {row['unexpected']} | {row['p50_ms']:.1f} / {row['p99_ms']:.1f} ms | "
          f"{row['rss_start_mib']:.0f} → {row['rss_mid_mib']:.0f} → {row['rss_end_mib']:.0f} MiB ({row['rss_max_mib']:.0f}) |")
    print("\ntargets met: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in row["meets"].items()))
    if row["failure_examples"]:
        print("first failures:\n  " + "\n  ".join(row["failure_examples"]))
    if row["server_log_tracebacks"]:
        print(f"server log (end):\n{server_log[-3000:]}")


if __name__ == "__main__":
    main()
