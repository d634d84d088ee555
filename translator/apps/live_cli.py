"""`neuralese translate` (streaming JSON Lines) and `neuralese serve` (HTTP): translation while agents play.

`add_live_commands(sub)` registers both on the sub-parsers of `translator.apps.cli.build_parser`.
Load and input errors raise `BundleError` / `ValueError`, which `cli.main` reports as
`neuralese: error: ...` with exit status 2. Formats: docs/live_translation.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from translator.apps import games
from translator.apps.stream import ReadError
from translator.settings.checks import int_in, non_negative_float, positive_int
from translator.storage.run_layout import DEFAULT_NAME, DIRECTIONS


def _translate(args: argparse.Namespace) -> None:
    translate = games.get(args.game).stream(args)  # the run's translator, checked before any input is read
    if args.input and not Path(args.input).is_file():
        raise ValueError(f"--input {args.input}: no such file")
    inp = open(args.input, "rb") if args.input else sys.stdin.buffer  # noqa: SIM115 - closed below
    try:
        stats = translate(inp, sys.stdout)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        sys.stderr.close()
        return
    except ReadError as e:  # every line read before the failure has been written
        print(f"neuralese translate: error: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if args.input:
            inp.close()
    if not args.quiet:
        rate = stats.lines / stats.seconds if stats.seconds else 0.0
        print(f"neuralese translate: {stats.lines} lines ({stats.errors} errors) in {stats.seconds:.1f} s, {rate:.0f} lines/s",
              file=sys.stderr)


def _serve(args: argparse.Namespace) -> None:
    # deferred: heavy imports, loaded only when this command runs
    from translator.apps.service import serve

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"neuralese serve: warning: listening on {args.host}, reachable from other machines; the service has no authentication",
              file=sys.stderr)
    serve(args.run, host=args.host, port=args.port, name=args.translator, max_batch=args.max_batch, max_body=args.max_body,
          batch_wait=args.batch_wait_ms / 1000, log_level=args.log_level, plays_db=args.plays, play_data=args.play_data,
          workers=args.workers, threads=args.threads)


def add_live_commands(sub: argparse._SubParsersAction) -> None:
    """Register `translate` and `serve` on `build_parser()`'s sub-parsers."""
    tr = sub.add_parser(
        "translate",
        help="translate a stream of JSON Lines (stdin or a file) to English or neuralese",
        description="Read one JSON object per line ({\"message\": [...], \"context\": [...]} to English, "
        "{\"utterance\": \"...\", \"context\": [...]} to neuralese), write one result per non-blank line in input order. "
        "A bad line gets {\"error\": ..., \"line\": n} in its place and the stream goes on. Format: docs/live_translation.md.",
    )
    tr.add_argument("--run", required=True, metavar="RUN", help="run directory (translators in RUN/translators/CHANNEL/NAME; "
                    "driving: RUN/driving or RUN with the driving bundles)")
    tr.add_argument("--game", default=games.DEFAULT, choices=games.names(),
                    help="colors (default) or driving: one driving record per line (map, car, message or utterance; docs/driving.md)")
    tr.add_argument("--channel", metavar="C", help="channel whose translator to use (continuous, gumbel, ...); colour game only")
    tr.add_argument("--to", required=True, choices=DIRECTIONS, help="direction: english (messages in) or neuralese (utterances in)")
    tr.add_argument("--translator", default=DEFAULT_NAME, metavar="NAME", help=f"translator name: belief, direct, seq2seq_cooccurrence, seq2seq_belief; driving: belief, direct, random, "
                    f"silent (default {DEFAULT_NAME})")
    tr.add_argument("--input", metavar="FILE", help="JSON Lines file (default: stdin)")
    tr.add_argument("--batch-size", type=positive_int, default=256, help="lines per translator call (default 256)")
    tr.add_argument("--max-wait-ms", type=non_negative_float, default=5.0,
                    help="a batch goes out once input pauses this long (default 5 ms): live pipes are answered promptly")
    tr.add_argument("--workers", type=positive_int, default=1,
                    help="translator processes (default 1); on a big file, one per core is fastest")
    tr.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice; 1 per worker with --workers)")
    tr.add_argument("--quiet", action="store_true", help="no summary on stderr")
    tr.set_defaults(func=_translate)

    sv = sub.add_parser(
        "serve",
        help="HTTP translation service (POST /v1/translate)",
        description="Serve every RUN/translators/*/NAME over HTTP: POST /v1/translate (batches, both directions), "
        "GET /healthz, OpenAPI schema at /openapi.json and /docs. Concurrent requests are micro-batched. "
        "Listens on 127.0.0.1 unless --host says otherwise.",
    )
    sv.add_argument("--run", required=True, metavar="RUN", help="run directory")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int_in(0, 65535), default=8000, help="port (default 8000)")
    sv.add_argument("--translator", default=DEFAULT_NAME, metavar="NAME", help=f"translator name per channel: belief, direct, seq2seq_cooccurrence, seq2seq_belief (default {DEFAULT_NAME})")
    sv.add_argument("--max-batch", type=positive_int, default=256, help="most items per request and per translator call (default 256)")
    sv.add_argument("--max-body", type=positive_int, default=1 << 20, help="largest request body in bytes (default 1 MiB)")
    sv.add_argument("--batch-wait-ms", type=non_negative_float, default=2.0,
                    help="a batch gathers requests until none arrives for this long (default 2; at most 20 ms in all)")
    sv.add_argument("--workers", type=positive_int, default=1, help="server processes sharing the port, each with its own translators "
                    "(default 1; one per core on a busy service)")
    sv.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    sv.add_argument("--plays", metavar="DB", help="also serve the play page at /play (people play with the agents) and store "
                    "every round in this SQLite file (created if missing)")
    sv.add_argument("--play-data", metavar="CSV", help="corpus whose rounds /play deals (default: the bundled dev.csv); needs --plays")
    sv.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"), help="uvicorn log level")
    sv.set_defaults(func=_serve)
