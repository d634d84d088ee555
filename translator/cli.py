"""The `neuralese` command line.

The library (`translator/`) never needs `training/` or `eval/`; only the subcommands that train or
evaluate import them, inside their handlers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from translator.bundle import BundleError
from translator.corpus import CorpusError

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "colors_in_context"


def _train_english(args: argparse.Namespace) -> None:
    import torch

    from eval.report import write_training_report
    from training.english import EnglishTrainArgs, save_english, train_english
    from translator.corpus import load_rounds

    torch.set_num_threads(args.threads) if args.threads else None
    train = load_rounds(args.train)
    dev = load_rounds(args.dev) if args.dev else None
    targs = EnglishTrainArgs(seed=args.seed, vocab_size=args.vocab_size, listener_epochs=args.listener_epochs, speaker_epochs=args.speaker_epochs, batch_size=args.batch_size, max_steps=args.max_steps)
    models = train_english(train, dev, targs)
    path = save_english(models, args.out)
    write_training_report(models.training, path)
    t = models.training
    print(
        f"saved {path}: listener val accuracy {t['listener']['val_accuracy']:.3f} (epoch {t['listener']['best_epoch']}, "
        f"T={t['listener']['temperature']:.2f}), speaker val perplexity {t['speaker']['val_perplexity']:.2f} "
        f"(epoch {t['speaker']['best_epoch']}), {t['seconds']:.0f} s"
    )


CHANNELS = ("continuous", "gumbel", "reinforce")


def _train_agents(args: argparse.Namespace) -> None:
    import torch
    from accelerate import PartialState

    from training.agents import AgentTrainArgs, train_agents
    from translator.channels import ChannelConfig
    from translator.corpus import load_rounds

    torch.set_num_threads(args.threads) if args.threads else None
    defaults = AgentTrainArgs.for_channel(args.channel)
    channel = {k: v for k, v in (("dim", args.dim), ("noise", args.noise), ("vocab_size", args.vocab_size), ("max_len", args.max_len)) if v is not None}
    overrides = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size), ("lr", args.lr)) if v is not None}
    targs = AgentTrainArgs.for_channel(
        args.channel, channel=ChannelConfig.from_dict({**vars(defaults.channel), **channel}), seed=args.seed, **overrides
    )
    out = Path(args.out) / "agents" / args.channel
    agents = train_agents(load_rounds(args.train), targs, out)
    if not PartialState().is_main_process:
        return  # under `accelerate launch`, one process reports (and only it wrote the bundle)
    last = agents.training["history"][-1]["val_accuracy"] if agents.training["history"] else {}
    print(f"saved {out}: {agents.training['steps']} steps in {agents.training['seconds']:.0f} s; validation self-play {last}")


def _collect(args: argparse.Namespace) -> None:
    from training.collect import collect, save_collection
    from translator.agents import Agents
    from translator.corpus import load_rounds

    agents = Agents.from_pretrained(args.agents)
    rounds = load_rounds(args.data)
    ds = collect(agents, rounds, seed=args.seed)
    save_collection(ds, args.out, {"agents": str(args.agents), "data": str(args.data), "seed": args.seed,
                                   "channel": agents.channel.kind, "rounds": len(ds)})
    print(f"saved {args.out}: {len(ds)} rounds, agent self-play accuracy {sum(ds['agent_correct']) / len(ds):.3f}")


def _evaluate(args: argparse.Namespace) -> None:
    from eval.evaluate import evaluate

    evaluate(args.run, args.data, args.out)


def _demo(args: argparse.Namespace) -> None:
    out = Path(args.out)
    start = time.perf_counter()
    train_args = ["train", "english", "--train", str(BUNDLED / "train.csv"), "--out", str(out)]
    if args.quick:
        train_args += ["--listener-epochs", "1", "--speaker-epochs", "1", "--max-steps", "60"]
    main(train_args)
    for channel in CHANNELS:
        agent_args = ["train", "agents", "--channel", channel, "--train", str(BUNDLED / "train.csv"), "--out", str(out)]
        main(agent_args + (["--steps", "150"] if args.quick else []))
    main(["evaluate", "--run", str(out), "--data", str(BUNDLED / "dev.csv"), "--out", str(out / "eval")])
    print(f"demo finished in {time.perf_counter() - start:.0f} s; report: {out / 'eval' / 'report.md'}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neuralese",
        description="Translate the emergent messages of neural agents (neuralese) to English and back, "
        "and check by behaviour that translations preserve meaning (Andreas, Dragan & Klein 2017).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train models of a run", description="Train models and save them as bundles in a run directory.")
    tsub = train.add_subparsers(dest="what", required=True, metavar="WHAT")
    te = tsub.add_parser(
        "english",
        help="English speaker and listener on a human corpus",
        description="Train the SentencePiece tokenizer, the English listener H_l(target | utterance, colours) and "
        "speaker H_s(utterance | colours, target) on a human corpus; calibrate the listener; save to OUT/english.",
    )
    te.add_argument("--train", required=True, metavar="CSV", help="training corpus (round-per-row CSV or filteredCorpus.csv)")
    te.add_argument(
        "--dev", metavar="CSV",
        help="validation games for early stopping and calibration; default: 10%% of the training games, "
        "which keeps every other file untouched for honest evaluation",
    )
    te.add_argument("--out", required=True, metavar="RUN", help="run directory; the bundle goes to RUN/english")
    te.add_argument("--seed", type=int, default=0, help="random seed (default 0): fixes the whole run")
    te.add_argument("--listener-epochs", type=int, default=10, help="listener epochs (default 10; cosine schedule, early stopping)")
    te.add_argument("--speaker-epochs", type=int, default=6, help="speaker epochs (default 6; cosine schedule, early stopping)")
    te.add_argument("--batch-size", type=int, default=64, help="rounds per batch (default 64)")
    te.add_argument("--vocab-size", type=int, default=1000, help="SentencePiece vocabulary size (default 1000)")
    te.add_argument("--max-steps", type=int, help="stop each model after this many steps (quick runs)")
    te.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    te.set_defaults(func=_train_english)

    ta = tsub.add_parser(
        "agents",
        help="neuralese agents by self-play",
        description="Train an agent speaker and listener by self-play on the corpus's contexts plus freshly sampled "
        "ones; checkpoints to RUN/agents/CHANNEL/checkpoint (a rerun resumes there), bundle to RUN/agents/CHANNEL.",
    )
    ta.add_argument("--channel", required=True, choices=CHANNELS, help="message channel")
    ta.add_argument("--train", required=True, metavar="CSV", help="training corpus whose contexts the agents play on")
    ta.add_argument("--out", required=True, metavar="RUN", help="run directory; the bundle goes to RUN/agents/CHANNEL")
    ta.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ta.add_argument("--steps", type=int, help="training steps (default: the channel's tuned preset)")
    ta.add_argument("--batch-size", type=int, help="games per step (default: the channel's preset)")
    ta.add_argument("--lr", type=float, help="peak learning rate (default: the channel's preset)")
    ta.add_argument("--dim", type=int, help="continuous: message dimension (default 64)")
    ta.add_argument("--noise", type=float, help="continuous: Gaussian channel noise std (default 0.3)")
    ta.add_argument("--vocab-size", type=int, help="discrete: symbols incl. end-of-message (default 32)")
    ta.add_argument("--max-len", type=int, help="discrete: maximum message length (default 3)")
    ta.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ta.set_defaults(func=_train_agents)

    co = sub.add_parser(
        "collect",
        help="play agents on a corpus and store the paired corpus",
        description="Play trained agents on every round of a corpus (the contexts and targets people had) and save "
        "a datasets.Dataset with the agent's message beside the person's utterance.",
    )
    co.add_argument("--agents", required=True, metavar="DIR", help="agents bundle (RUN/agents/CHANNEL)")
    co.add_argument("--data", required=True, metavar="CSV", help="corpus file to play")
    co.add_argument("--out", required=True, metavar="DIR", help="where the dataset is saved (save_to_disk)")
    co.add_argument("--seed", type=int, default=0, help="seed of the channel noise (default 0)")
    co.set_defaults(func=_collect)

    ev = sub.add_parser(
        "evaluate",
        help="score a run on a corpus file",
        description="Evaluate a run's models on a corpus file (either CSV layout, any games). Writes "
        "OUT/metrics.json, OUT/report.md and plots, and prints a table.",
    )
    ev.add_argument("--run", required=True, metavar="RUN", help="run directory (holds english/)")
    ev.add_argument("--data", required=True, metavar="CSV", help="corpus to evaluate on, ideally games the run never saw")
    ev.add_argument("--out", required=True, metavar="DIR", help="where metrics.json and the report go")
    ev.set_defaults(func=_evaluate)

    demo = sub.add_parser(
        "demo",
        help="the whole pipeline on the bundled corpus",
        description="Train the English models and agents of every channel on the bundled Colors in Context training "
        "games, then evaluate everything on its dev games (metrics.json, report.md, plots).",
    )
    demo.add_argument("--out", default="runs/demo", metavar="RUN", help="run directory (default runs/demo)")
    demo.add_argument("--quick", action="store_true", help="a small, fast version (smoke test)")
    demo.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (CorpusError, BundleError, ValueError) as e:
        print(f"neuralese: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
