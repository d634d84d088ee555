"""Benchmark: the streaming CLI (`neuralese translate`) on a JSON Lines file of agent messages.

Target: >= 5,000 lines/s on a 100,000-line file of real agent messages from the demo run's paired
corpus (with their contexts unless `--no-context`). The CLI runs as its own process (start-up and
loading included), once with torch's threads (`--workers 1`) and once with `--workers N` processes
of one thread each; their outputs must be byte-identical. The streaming layer alone (parse, check,
write; no translator) is also timed in-process, to tell the CLI's own cost from the translator's.
Translator: as in `bench/serve.py`. Prints a markdown table and writes `bench/results/stream.json`.

    .venv/bin/python bench/stream.py [--lines 100000] [--no-context] [--workers 2]"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from serve import ROOT, SERVE, bench_bundle, bench_rows, machine, run_dir_for

from translator.apps.stream import parse_line


def layer_only(path: Path, translator, n_sample: int = 20_000) -> float:
    """Lines/s of the streaming layer without the translator: parse and check each line, write a record."""
    lines = path.read_bytes().splitlines()[:n_sample]
    fake = {"translation": "dark blue", "divergence": 0.0123, "faithful": True,
            "alternatives": [{"translation": "blue", "divergence": 0.02}, {"translation": "navy", "divergence": 0.03}]}  # fmt: skip
    start = time.perf_counter()
    out = []
    for n, raw in enumerate(lines, 1):
        parse_line(translator, "english", n, raw)
        out.append(json.dumps({"line": n, **fake}, ensure_ascii=False, allow_nan=False))
    return len(lines) / (time.perf_counter() - start)


def run_cli(run: Path, src: Path, out: Path, workers: int, threads: int, batch_size: int) -> tuple[float, str]:
    """`neuralese translate` as its own process: `(wall seconds, its summary line)`."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-c", SERVE, "translate", "--run", str(run), "--channel", "continuous", "--to", "english",
           "--input", str(src), "--batch-size", str(batch_size), "--threads", str(threads), "--workers", str(workers)]  # fmt: skip
    start = time.perf_counter()
    with out.open("w") as f:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"translate failed: {proc.stderr}")
    return seconds, (proc.stderr.strip().splitlines() or [""])[-1]


def check_output(path: Path, lines: int) -> tuple[int, bool]:
    """`(error records, whether lines and ids come back in input order)`."""
    records = [json.loads(x) for x in path.read_text().splitlines()]
    in_order = [r["line"] for r in records] == list(range(1, lines + 1)) and all(r["id"] == i for i, r in enumerate(records))
    return sum("error" in r for r in records), in_order


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=100_000)
    p.add_argument("--no-context", action="store_true", help="context-free translation (no context on the lines)")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="worker processes of the parallel run (default: cores)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "stream.json"))
    args = p.parse_args()

    bundle, desc = bench_bundle()
    messages, colors = bench_rows(args.lines)
    cores = os.cpu_count() or 1
    # one process with torch's threads, then worker processes with one thread each, on the same file
    setups = [(1, cores), (args.workers, 1)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = run_dir_for(bundle, tmp)
        src = tmp / "in.jsonl"
        with src.open("w") as f:
            for i, (m, c) in enumerate(zip(messages, colors)):
                f.write(json.dumps({"message": m, "id": i} if args.no_context else {"message": m, "context": c, "id": i}) + "\n")
        size_mb = src.stat().st_size / 1e6
        outputs = []
        for workers, threads in setups:
            out = tmp / f"out{len(outputs)}.jsonl"
            seconds, summary = run_cli(run, src, out, workers, threads, args.batch_size)
            errors, in_order = check_output(out, args.lines)
            outputs.append(out.read_bytes())
            rows.append({"workers": workers, "threads": threads, "seconds": seconds, "lines_per_s": args.lines / seconds,
                         "errors": errors, "in_order": in_order, "cli_summary": summary, "meets": args.lines / seconds >= 5000})  # fmt: skip
        same = all(o == outputs[0] for o in outputs)

        # deferred: heavy imports (torch), loaded only when needed; the benchmark's client side stays light
        from translator.translate.colors.api import Translator

        layer = layer_only(src, Translator.from_pretrained(bundle))
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(), "translator": desc,
        "lines": args.lines, "file_mb": size_mb, "context": not args.no_context, "batch_size": args.batch_size,
        "same_output": same, "layer_only_lines_per_s": layer, "runs": rows,
    }  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    mode = "in context" if result["context"] else "context-free"
    print(f"machine: {result['machine']}; translator: {desc}")
    print(f"{args.lines:,} lines ({size_mb:.0f} MB), to English {mode}; wall time includes start-up and model loading\n")
    print("| processes x torch threads | wall | lines/s | errors | order kept | >= 5,000 lines/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} x {r['threads']} | {r['seconds']:.1f} s | {r['lines_per_s']:,.0f} | {r['errors']} | "
              f"{'yes' if r['in_order'] else 'NO'} | {'yes' if r['meets'] else 'no'} |")
    print(f"\nidentical output from every setup: {'yes' if same else 'NO'}; streaming layer alone (parse, check, "
          f"format; 1 thread): {layer:,.0f} lines/s")


if __name__ == "__main__":
    main()
