"""Benchmark: the streaming CLI (`neuralese translate`) on a JSON Lines file of agent messages.

Target (live translation issue): >= 5,000 lines/s on a 100,000-line file. The file holds real agent
messages from the demo run's paired corpus (with their contexts unless `--no-context`); the CLI runs
as its own process (start-up and bundle loading included) with `--input FILE` and stdout to a file.
Also measured in-process: the streaming layer alone (read, parse, check, write one record per line;
no translator call), to tell the CLI's own cost from the translator's.

Translator: as in `bench/serve.py`. Prints a markdown table and writes `bench/results/stream.json`.

    .venv/bin/python bench/stream.py [--lines 100000] [--no-context] [--threads 2]
"""

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


def layer_only(path: Path, translator, n_sample: int = 20_000) -> float:
    """Lines/s of the streaming layer without the translator: parse and check each line, write a record."""
    from translator.stream import parse_line

    lines = path.read_bytes().splitlines()[:n_sample]
    fake = {"translation": "dark blue", "divergence": 0.0123, "faithful": True,
            "alternatives": [{"translation": "blue", "divergence": 0.02}, {"translation": "navy", "divergence": 0.03}]}  # fmt: skip
    start = time.perf_counter()
    out = []
    for n, raw in enumerate(lines, 1):
        parse_line(translator, "english", n, raw)
        out.append(json.dumps({"line": n, **fake}, ensure_ascii=False, allow_nan=False))
    return len(lines) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=100_000)
    p.add_argument("--no-context", action="store_true", help="context-free translation (no context on the lines)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "stream.json"))
    args = p.parse_args()

    bundle, desc = bench_bundle()
    messages, colors = bench_rows(args.lines)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = run_dir_for(bundle, tmp)
        src = tmp / "in.jsonl"
        with src.open("w") as f:
            for i, (m, c) in enumerate(zip(messages, colors)):
                f.write(json.dumps({"message": m, "id": i} if args.no_context else {"message": m, "context": c, "id": i}) + "\n")
        size_mb = src.stat().st_size / 1e6
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
        cmd = [sys.executable, "-c", SERVE, "translate", "--run", str(run), "--channel", "continuous", "--to", "english",
               "--input", str(src), "--batch-size", str(args.batch_size), "--threads", str(args.threads)]  # fmt: skip
        start = time.perf_counter()
        with (tmp / "out.jsonl").open("w") as out:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode:
            sys.exit(f"translate failed: {proc.stderr}")
        records = [json.loads(x) for x in (tmp / "out.jsonl").read_text().splitlines()]
        in_order = [r["line"] for r in records] == list(range(1, args.lines + 1)) and all(r["id"] == i for i, r in enumerate(records))
        errors = sum("error" in r for r in records)

        from translator.api import Translator

        layer = layer_only(src, Translator.from_pretrained(bundle))
    row = {
        "lines": args.lines, "file_mb": size_mb, "context": not args.no_context, "threads": args.threads, "batch_size": args.batch_size,
        "seconds": seconds, "lines_per_s": args.lines / seconds, "errors": errors, "in_order": in_order,
        "layer_only_lines_per_s": layer, "cli_summary": proc.stderr.strip().splitlines()[-1:],
        "meets": args.lines / seconds >= 5000,
    }  # fmt: skip
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(), "translator": desc, "result": row}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"machine: {result['machine']}; translator: {desc}\n")
    print("| lines | mode | torch threads | wall (incl. start-up) | lines/s | errors | order kept | streaming layer alone |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.lines:,} ({size_mb:.0f} MB) | to English, {'in context' if row['context'] else 'context-free'} | {args.threads} | "
          f"{seconds:.1f} s | {row['lines_per_s']:,.0f} | {errors} | {'yes' if in_order else 'NO'} | {layer:,.0f} lines/s |")
    print(f"\ntarget >= 5,000 lines/s met: {'yes' if row['meets'] else 'NO'}")


if __name__ == "__main__":
    main()
