"""Benchmark: the HTTP service under 32 concurrent clients on loopback (in-context translation to English).

Targets: >= 1,000 messages/s, p99 latency < 100 ms, zero errors, memory flat over a 10,000-request
run. A real `neuralese serve` process (uvicorn) is started on a free 127.0.0.1 port; the clients are
one asyncio process of keep-alive connections, each sending its next request when the last is
answered (raw HTTP/1.1 by default, `--client aiohttp` for an aiohttp session). Server RSS is sampled
every 0.25 s. Translator: the demo run's continuous belief translator, else a small one built once
from the demo run and cached. Prints a markdown table and writes `bench/results/serve.json`.

    .venv/bin/python bench/serve.py [--requests 10000] [--clients 32] [--per-request 1] [--threads 1]"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "runs" / "demo"
CACHE = DEMO / "bench_cache" / "serve_belief"
SERVE = (
    "import argparse, sys; from translator.apps.live_cli import add_live_commands; "
    "p = argparse.ArgumentParser(); add_live_commands(p.add_subparsers(dest='command', required=True)); "
    "a = p.parse_args(sys.argv[1:]); a.func(a)"
)


def bench_bundle() -> tuple[Path, str]:
    """`(bundle directory, description)`: the demo run's translator, or the cached small one (built if missing)."""
    real = DEMO / "translators" / "continuous" / "belief"
    if (real / "config.json").is_file():
        return real, str(real.relative_to(ROOT))
    if not (CACHE / "config.json").is_file():
        # deferred: heavy imports (torch), loaded only when needed; the benchmark's client side stays light
        from training.colors.translators import BeliefBuildArgs, build_belief_translator
        from translator.models.colors.agents import Agents
        from translator.models.colors.english import EnglishModels
        from translator.models.colors.message_model import ExactMessageModel
        from translator.translate.colors.collection import load_collection

        print(f"building the benchmark translator in {CACHE.relative_to(ROOT)} (once) ...", file=sys.stderr)
        english = EnglishModels.from_pretrained(DEMO / "english")
        agents = Agents.from_pretrained(DEMO / "agents" / "continuous")
        pairs, _ = load_collection(DEMO / "pairs" / "continuous")
        tr = build_belief_translator(english, ExactMessageModel(agents), pairs, BeliefBuildArgs(contexts=128, candidates=4000))
        tr.save_pretrained(CACHE)
    return CACHE, f"{CACHE.relative_to(ROOT)} (built: 128 contexts, 4,000 candidates, demo run)"


def bench_rows(n: int) -> tuple[list[list[float]], list[list[list[float]]]]:
    """Real agent messages and their contexts from the demo run's paired corpus (cycled to `n`)."""
    # deferred: heavy imports (torch), loaded only when needed; the benchmark's client side stays light
    from translator.translate.colors.collection import load_collection

    pairs, _ = load_collection(DEMO / "pairs" / "continuous")
    sel = pairs.select(range(min(n, len(pairs))))
    messages, colors = sel["message"], sel["colors"]
    return [messages[i % len(messages)] for i in range(n)], [colors[i % len(colors)] for i in range(n)]


def run_dir_for(bundle: Path, tmp: Path) -> Path:
    """A run layout (`RUN/translators/continuous/belief`) pointing at the bundle."""
    link = tmp / "run" / "translators" / "continuous" / "belief"
    link.parent.mkdir(parents=True)
    link.symlink_to(bundle.resolve(), target_is_directory=True)
    return tmp / "run"


def machine() -> str:
    mem = f", {psutil.virtual_memory().total / 2**30:.0f} GiB"
    return f"{platform.machine()}, {os.cpu_count()} cores{mem}, no GPU, {platform.python_implementation()} {platform.python_version()}"


def _family(pid: int) -> list[psutil.Process]:
    """The server process and its descendants (uvicorn's workers and theirs) that are still alive."""
    try:
        top = psutil.Process(pid)
        return [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def rss_mib(pid: int) -> float:
    """Resident memory of the server: the process and its children (uvicorn's workers), MiB."""
    total = 0
    for p in _family(pid):
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (uvicorn's workers and theirs)."""
    total = 0.0
    for p in _family(pid):
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


class RawConnection:
    """One keep-alive HTTP/1.1 connection that posts prepared bodies and reads the answers with asyncio
    streams, as load generators such as wrk do: a fraction of aiohttp's CPU per request, which on a
    2-core machine is CPU the server under test gets back."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
        self.writer.write(head + body)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        status = int(answer[9:12])
        length = next(int(line.split(b":", 1)[1]) for line in answer.split(b"\r\n") if line.lower().startswith(b"content-length:"))
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def load(url: str, bodies: list[bytes], clients: int, pid: int, warmup: int, client_kind: str = "raw") -> dict:
    """`clients` keep-alive connections, each posting its next body as soon as the last is answered
    (`client_kind`: `raw` connections, or an aiohttp session)."""
    import aiohttp  # deferred: an optional dev dependency, only for the aiohttp client kind

    latencies: list[float] = []
    errors: list[str] = []
    rss: list[tuple[float, float]] = []
    next_i = 0
    host, port = url.removeprefix("http://").split(":")
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base_url=url, connector=connector, timeout=timeout) as client:
        headers = {"content-type": "application/json"}

        async def post_aiohttp(body: bytes) -> tuple[int, bytes]:
            async with client.post("/v1/translate", data=body, headers=headers) as r:
                return r.status, await r.read()

        for b in bodies[:warmup]:  # warm-up: first calls allocate; not measured
            await post_aiohttp(b)
        rss_start, cpu_start = rss_mib(pid), cpu_seconds(pid)

        async def worker():
            nonlocal next_i
            raw = RawConnection(host, int(port)) if client_kind == "raw" else None
            try:
                while next_i < len(bodies):
                    b = bodies[next_i]
                    next_i += 1
                    t = time.perf_counter()
                    try:
                        status, text = await (raw.post("/v1/translate", b) if raw else post_aiohttp(b))
                        if status != 200:
                            errors.append(f"{status}: {text[:200]!r}")
                    except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as e:
                        errors.append(repr(e))
                    latencies.append(time.perf_counter() - t)
            finally:
                if raw:
                    raw.close()

        async def sampler(done: asyncio.Event):
            t0 = time.perf_counter()
            while not done.is_set():
                rss.append((time.perf_counter() - t0, rss_mib(pid)))
                await asyncio.sleep(0.25)

        done = asyncio.Event()
        sample = asyncio.create_task(sampler(done))
        start, client_cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds, client_cpu = time.perf_counter() - start, time.process_time() - client_cpu
        server_cpu = cpu_seconds(pid) - cpu_start
        done.set()
        await sample
        rss_end = rss_mib(pid)
    half = [m for t, m in rss if t >= seconds / 2]
    return {
        "seconds": seconds, "latencies": latencies, "errors": errors, "rss_start_mib": rss_start, "rss_end_mib": rss_end,
        "server_cpu_share": server_cpu / seconds, "client_cpu_share": client_cpu / seconds,
        "rss_max_mib": max(m for _, m in rss), "rss_mid_mib": half[0] if half else rss_end, "rss_samples": rss,
    }  # fmt: skip


def serve_and_load(args: argparse.Namespace, bundle: Path, bodies: list[bytes]) -> tuple[dict, dict]:
    """Start `neuralese serve` on a free port, wait until it answers, run the clients; `(load results, /healthz)`."""
    with tempfile.TemporaryDirectory() as tmp:
        run = run_dir_for(bundle, Path(tmp))
        port = _free_port()
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", "--run", str(run), "--port", str(port), "--threads", str(args.threads),
             "--batch-wait-ms", str(args.batch_wait_ms), "--workers", str(args.workers), "--log-level", "warning"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            import httpx  # deferred: a dev dependency of this benchmark only

            deadline = time.monotonic() + 180
            while True:
                if proc.poll() is not None:
                    sys.exit("server exited during start-up")
                try:
                    if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    sys.exit("server did not start")
                time.sleep(0.2)
            res = asyncio.run(load(url, bodies, args.clients, proc.pid, args.warmup, args.client))
            health = httpx.get(url + "/healthz").json()
        finally:
            proc.terminate()
            proc.wait(30)
    return res, health


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--per-request", type=int, default=1, help="messages per request (default 1: every message its own request)")
    p.add_argument("--threads", type=int, default=1, help="torch threads in the server (default 1: the other core runs the clients)")
    p.add_argument("--batch-wait-ms", type=float, default=2.0)
    p.add_argument("--workers", type=int, default=1, help="server processes (`neuralese serve --workers`)")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--client", choices=["raw", "aiohttp"], default="raw",
                   help="load generator: raw keep-alive HTTP/1.1 connections (default, light) or an aiohttp session")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "serve.json"))
    args = p.parse_args()

    bundle, desc = bench_bundle()
    messages, colors = bench_rows(args.requests * args.per_request)
    k = args.per_request
    bodies = [
        json.dumps({"channel": "continuous", "to": "english",
                    "items": [{"message": messages[j], "context": colors[j]} for j in range(i * k, (i + 1) * k)]}).encode()
        for i in range(args.requests)
    ]  # fmt: skip
    res, health = serve_and_load(args, bundle, bodies)
    lat = res.pop("latencies")
    n_msgs = args.requests * k
    row = {
        "requests": args.requests, "clients": args.clients, "messages_per_request": k, "messages": n_msgs,
        "seconds": res["seconds"], "messages_per_s": n_msgs / res["seconds"], "requests_per_s": args.requests / res["seconds"],
        "p50_ms": 1000 * pct(lat, 0.50), "p99_ms": 1000 * pct(lat, 0.99), "max_ms": 1000 * max(lat),
        "errors": len(res["errors"]), "error_examples": res["errors"][:5],
        "rss_start_mib": res["rss_start_mib"], "rss_mid_mib": res["rss_mid_mib"], "rss_end_mib": res["rss_end_mib"],
        "rss_max_mib": res["rss_max_mib"], "server_batches": health["batches"], "server_rows": health["rows"],
        "server_cpu_share": res["server_cpu_share"], "client_cpu_share": res["client_cpu_share"],
    }  # fmt: skip
    row["rows_per_batch"] = row["server_rows"] / max(1, row["server_batches"])
    row["meets"] = {
        "throughput": row["messages_per_s"] >= 1000, "p99": row["p99_ms"] < 100, "errors": row["errors"] == 0,
        "memory_flat": row["rss_end_mib"] - row["rss_mid_mib"] < 0.05 * row["rss_mid_mib"],
    }  # fmt: skip
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(), "translator": desc,
        "server_threads": args.threads, "server_workers": args.workers, "batch_wait_ms": args.batch_wait_ms, "client": args.client, "result": row,
        "rss_samples_mib": [round(m, 1) for _, m in res["rss_samples"]],
    }  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"machine: {result['machine']}; translator: {desc}; server workers {args.workers}, threads {args.threads} each; "
          f"client {args.client}\n")
    print("| clients | msgs/request | requests | messages/s | p50 | p99 | max | errors | server RSS start → mid → end (max) | rows/batch "
          "| CPU: server / client |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.clients} | {k} | {args.requests:,} | {row['messages_per_s']:,.0f} | {row['p50_ms']:.1f} ms | {row['p99_ms']:.1f} ms | "
          f"{row['max_ms']:.0f} ms | {row['errors']} | {row['rss_start_mib']:.0f} → {row['rss_mid_mib']:.0f} → {row['rss_end_mib']:.0f} MiB "
          f"({row['rss_max_mib']:.0f}) | {row['rows_per_batch']:.1f} | {100 * row['server_cpu_share']:.0f}% / {100 * row['client_cpu_share']:.0f}% |")
    print("\ntargets met: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in row["meets"].items()))


if __name__ == "__main__":
    main()
