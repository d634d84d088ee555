"""The `neuralese` command line: one function per command adds its options, one handler runs it.

Only the commands being parsed get their options (`build_parser(command)`), and handlers import
the training and evaluation code inside, so `neuralese --help` and the live commands start without
torch. The training commands are in `translator.apps.colors.train_cli`, the live ones in `translator.apps.live_cli`.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from collections.abc import Sequence
from itertools import takewhile
from pathlib import Path

from translator.apps import games
from translator.apps.colors.train_cli import THREADS_HELP, add_train_commands
from translator.apps.live_cli import add_live_commands
from translator.settings.checks import int_in, non_negative_int, positive_int


def _collect(args: argparse.Namespace) -> None:
    # deferred: heavy imports, loaded only when this command runs
    from translator.games.colors.corpus import load_rounds
    from translator.models.colors.agents import Agents
    from translator.translate.colors.collection import collect, save_collection

    agents = Agents.from_pretrained(args.agents)
    rounds = load_rounds(args.data)
    ds = collect(agents, rounds, seed=args.seed)
    save_collection(
        ds,
        args.out,
        {
            "agents": str(args.agents),
            "data": str(args.data),
            "seed": args.seed,
            "channel": agents.channel.kind,
            "channel_config": agents.channel.to_dict(),
            "rounds": len(ds),
        },
    )
    print(f"saved {args.out}: {len(ds)} rounds, agent self-play accuracy {sum(ds['agent_correct']) / len(ds):.3f}")


def _channel_options(args: argparse.Namespace) -> dict | None:
    """The channel fields given by `--channel-config FILE` and the flags (flags win); None: none given."""
    # deferred: heavy imports, loaded only when this command runs
    from training.colors.import_messages import given_channel

    fields: dict = {}
    if args.channel_config:
        try:
            fields = json.loads(Path(args.channel_config).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ValueError(f"{args.channel_config}: cannot read the channel config ({e})") from None
        if not isinstance(fields, dict):
            raise ValueError(f"{args.channel_config}: the channel config must be a JSON object, got {type(fields).__name__}")
    fields.update(
        {
            k: v
            for k, v in (("kind", args.kind), ("dim", args.dim), ("vocab_size", args.vocab_size), ("max_len", args.max_len))
            if v is not None
        }
    )
    try:
        given_channel(fields)
    except ValueError as e:
        raise ValueError(f"{args.channel_config or 'channel options'}: {e}") from None
    return fields or None


def _import_messages(args: argparse.Namespace) -> None:
    app = games.get(args.game)
    if app.import_messages is not None:
        return app.import_messages(args)
    # deferred: heavy imports, loaded only when this command runs
    from training.colors.import_messages import import_messages
    from translator.translate.colors.collection import load_collection

    ds = import_messages(args.file, args.out, _channel_options(args))
    info = load_collection(args.out)[1]
    print(f"saved {args.out}: {len(ds)} rounds from {len(set(ds['game_id']))} games; channel {info['channel_config']}")
    if info["channel_inferred"]:
        how = {
            "kind": "the first message's numbers",
            "dim": "the first message's size",
            "vocab_size": "the largest id seen + 1",
            "max_len": "the longest message",
        }
        found = "; ".join(f"{k} {info['channel_config'][k]!r} ({how[k]})" for k in info["channel_inferred"])
        print(f"inferred from the data: {found}; declare what you know with --channel-config FILE or the flags")


def _evaluate(args: argparse.Namespace) -> None:
    games.evaluate_file(args.run, args.data, args.out, games=args.games, plays=args.plays, jobs=args.jobs)


def _demo(args: argparse.Namespace) -> None:
    """English models, evaluation listener, agents of every channel, their paired corpora, all
    translators, then evaluation on the dev games: each step is the CLI command a user would run
    (`translator/apps/demo.py` says in which order and how many at once)."""
    # deferred: heavy imports, loaded only when this command runs
    from translator.apps.demo import demo_steps, run_steps
    from translator.storage.bundled_data import bundled

    out = Path(args.out)
    start = time.perf_counter()
    run_steps(demo_steps(out, bundled(), args.quick, args.jobs, args.game, args.seeds), out / "logs", args.jobs, resume=not args.fresh)
    print(f"demo finished in {time.perf_counter() - start:.0f} s; report: {out / 'eval' / 'report.html'}; logs: {out / 'logs'}")


def _import_options(im: argparse.ArgumentParser) -> None:
    # deferred: heavy import (torch), only when this command is parsed
    from translator.models.channels import CHANNEL_KINDS

    im.add_argument("file", metavar="FILE", help="JSON Lines file")
    im.add_argument("--out", required=True, metavar="DIR", help="where the paired corpus (driving: the import folder) is saved")
    im.add_argument("--game", default=games.DEFAULT, choices=games.names(),
                    help="whose messages: colors (default: one round per line, docs/message_schema.md) or another game's "
                         "episodes (driving: one car-step per line, docs/driving.md)")
    games.add_import_options(im)
    im.add_argument(
        "--channel-config",
        metavar="FILE",
        help='JSON object of the channel\'s fields, e.g. {"kind": "gumbel", "vocab_size": 32, "max_len": 5}; '
        "fields not given are inferred from the data",
    )
    im.add_argument("--kind", choices=CHANNEL_KINDS, help="channel kind (default: from the first message; discrete as gumbel)")
    im.add_argument("--dim", type=positive_int, help="continuous: values per message (default: the first message's)")
    im.add_argument(
        "--vocab-size",
        type=int_in(2),
        help="discrete: symbols in the vocabulary, end-of-message 0 included (default: the largest id seen + 1)",
    )
    im.add_argument("--max-len", type=positive_int, help="discrete: longest message, in symbols (default: the longest seen)")


def _collect_options(co: argparse.ArgumentParser) -> None:
    # deferred: heavy import (torch), only when this command is parsed
    from translator.translate.colors.collection import collect

    co.add_argument("--agents", required=True, metavar="DIR", help="agents bundle (RUN/agents/CHANNEL)")
    co.add_argument("--data", required=True, metavar="CSV", help="corpus file to play")
    co.add_argument("--out", required=True, metavar="DIR", help="where the dataset is saved (save_to_disk)")
    seed = inspect.signature(collect).parameters["seed"].default
    co.add_argument("--seed", type=non_negative_int, default=seed, help=f"seed of the channel noise (default {seed})")
    co.add_argument("--threads", type=positive_int, help=THREADS_HELP)


def _evaluate_options(ev: argparse.ArgumentParser) -> None:
    ev.add_argument("--run", required=True, metavar="RUN", help="run directory (holds english/)")
    ev.add_argument("--data", required=True, metavar="FILE", help="corpus to evaluate on, ideally games the run never saw: "
                    "a colour CSV or a driving JSONL (scored with RUN/driving/)")
    ev.add_argument("--out", required=True, metavar="DIR", help="where metrics.json and the report go")
    ev.add_argument(
        "--plays",
        metavar="DB",
        help="SQLite file of rounds people played on /play (neuralese serve --plays DB): "
        "report their R->H and H->R accuracies by condition beside the model's",
    )
    ev.add_argument("--games", type=positive_int, help="evaluate on the first N games of the file only (quick runs)")
    ev.add_argument("--threads", type=positive_int, help=THREADS_HELP)
    ev.add_argument(
        "--jobs",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="channels scored at once, in processes of one torch thread each (default: the CPU count); "
        "the numbers do not depend on it",
    )


def _demo_options(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--out", default="runs/demo", metavar="RUN", help="run directory (default runs/demo)")
    demo.add_argument("--quick", action="store_true", help="a small, fast version (smoke test)")
    demo.add_argument(
        "--jobs",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="steps run at once, one torch thread each (default: the CPU count); the results do not depend on it",
    )
    demo.add_argument(
        "--game",
        choices=("all", *games.names()),
        default="all",
        help="which game's pipeline to run (default all: the colour game and the driving game)",
    )
    demo.add_argument(
        "--seeds",
        type=positive_int,
        default=1,
        help="colour game: complete runs with seeds 0..N-1 in RUN/seed-S/, evaluated together (means over seeds "
        "and their spread); default 1: one run in RUN/",
    )
    demo.add_argument(
        "--fresh",
        action="store_true",
        help="run every step again (default: skip the steps an earlier run of the same command finished)",
    )


# name: (help, description, options, handler)
COMMANDS = {
    "import-messages": (
        "import agent messages from JSON Lines",
        "Validate a JSON Lines file of rounds played by your own agents (docs/message_schema.md) and save it as a "
        "paired corpus for `train translator`. Errors name the line and field.",
        _import_options,
        _import_messages,
    ),
    "collect": (
        "play agents on a corpus and store the paired corpus",
        "Play trained agents on every round of a corpus (the contexts and targets people had) and save a "
        "datasets.Dataset with the agent's message beside the person's utterance.",
        _collect_options,
        _collect,
    ),
    "evaluate": (
        "score a run on a corpus file",
        "Evaluate a run's models on a corpus file (either CSV layout, any games). Writes OUT/metrics.json, "
        "OUT/report.md and plots, and prints a table.",
        _evaluate_options,
        _evaluate,
    ),
    "demo": (
        "the whole pipeline on the bundled corpus",
        "Train the English models and agents of every channel on the bundled Colors in Context training games, then "
        "evaluate everything on its dev games (metrics.json, report.md, plots); the same for the driving game "
        "(RUN/driving/metrics.json).",
        _demo_options,
        _demo,
    ),
}


def build_parser(command: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command; given `command` (the leading words of the arguments, e.g.
    `("train", "english")`), only that command gets its options (the others keep name and help)."""

    def wanted(path: tuple[str, ...]) -> bool:
        return command is None or tuple(command[: len(path)]) == path

    p = argparse.ArgumentParser(
        prog="neuralese",
        description="Translate the emergent messages of neural agents (neuralese) to English and back, "
        "and check by behaviour that translations preserve meaning (Andreas, Dragan & Klein 2017).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train_commands(sub, wanted)
    for name, (summary, description, options, handler) in COMMANDS.items():
        cp = sub.add_parser(name, help=summary, description=description)
        if wanted((name,)):
            options(cp)
        cp.set_defaults(func=handler)
    add_live_commands(sub)
    games.add_game_commands(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(tuple(takewhile(lambda a: not a.startswith("-"), argv))[:2]).parse_args(argv)
    if not sys.stderr.isatty():  # a log file, not a person: no progress bars (ours pass tqdm disable=None)
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    # every command that computes takes --threads; with --workers N (translate, serve) each worker
    # process sets its own, and this one stays torch-free
    if getattr(args, "threads", None) and getattr(args, "workers", 1) == 1:
        import torch  # deferred: heavy import, only for the commands that compute here

        torch.set_num_threads(args.threads)
    try:
        args.func(args)
    except ValueError as e:  # BundleError and CorpusError included: bad input, not a bug
        print(f"neuralese: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
