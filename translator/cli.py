"""The `neuralese` command line.

The library (`translator/`) never needs `training/` or `eval/`; only the subcommands that train or
evaluate import them, inside their handlers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from training.driving.cli import add_driving_commands
from translator.cli_types import float_in, int_in, non_negative_float, non_negative_int, positive_float, positive_int
from translator.live_cli import add_live_commands


def _train_english(args: argparse.Namespace) -> None:

    from eval.report import write_training_report
    from training.english import EnglishTrainArgs, save_english, train_english
    from translator.corpus import load_rounds

    train = load_rounds(args.train)
    dev = load_rounds(args.dev) if args.dev else None
    targs = EnglishTrainArgs(seed=args.seed, vocab_size=args.vocab_size, listener_epochs=args.listener_epochs, speaker_epochs=args.speaker_epochs, batch_size=args.batch_size, max_steps=args.max_steps)
    models = train_english(train, dev, targs, jobs=args.jobs)
    path = save_english(models, args.out)
    write_training_report(models.training, path)
    t = models.training
    print(
        f"saved {path}: listener val accuracy {t['listener']['val_accuracy']:.3f} (epoch {t['listener']['best_epoch']}, "
        f"T={t['listener']['temperature']:.2f}), speaker val perplexity {t['speaker']['val_perplexity']:.2f} "
        f"(epoch {t['speaker']['best_epoch']}), {t['seconds']:.0f} s"
    )


CHANNELS = ("continuous", "gumbel", "reinforce")
LISTENERS = ("learned", "bayes")  # translator.agents.LISTENER_KINDS, named here to keep torch out of start-up


def _train_agents(args: argparse.Namespace) -> None:
    from accelerate import PartialState

    from training.agents import AgentTrainArgs, train_agents
    from translator.channels import ChannelConfig
    from translator.corpus import load_rounds

    defaults = AgentTrainArgs.for_channel(args.channel)
    channel = {k: v for k, v in (("dim", args.dim), ("noise", args.noise), ("vocab_size", args.vocab_size), ("max_len", args.max_len),
                                 ("temperature", args.temperature)) if v is not None}
    overrides = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size), ("lr", args.lr),
                                   ("reconstruction_weight", args.reconstruction_weight), ("listener", args.listener),
                                   ("absolute_first_symbol", args.absolute_first_symbol))
                 if v is not None}
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
                                   "channel": agents.channel.kind, "channel_config": agents.channel.to_dict(), "rounds": len(ds)})
    print(f"saved {args.out}: {len(ds)} rounds, agent self-play accuracy {sum(ds['agent_correct']) / len(ds):.3f}")


def _train_translator(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from training.seq2seq import Seq2SeqTrainArgs
    from training.translator_run import TranslatorRunArgs, train_translator
    from training.translators import BeliefBuildArgs
    from translator.reranked_seq2seq import RerankConfig

    english = args.english or Path(args.out) / "english"
    belief = BeliefBuildArgs(seed=args.seed, contexts=args.contexts, candidates=args.candidates,
                             min_count=args.min_count, speaker_samples=args.speaker_samples)
    seq2seq = Seq2SeqTrainArgs(seed=args.seed, max_steps=args.max_steps, **({"epochs": args.epochs} if args.epochs else {}))
    seq2seq_to_english = replace(TranslatorRunArgs().seq2seq_to_english, seed=args.seed, max_steps=args.max_steps,
                                 **({"epochs": args.english_epochs} if args.english_epochs else {}))
    targs = TranslatorRunArgs(kind=args.kind, name=args.name, message_model=args.message_model, seed=args.seed, belief=belief,
                              seq2seq_source=args.source, seq2seq=seq2seq, seq2seq_to_english=seq2seq_to_english,
                              message_model_epochs=args.epochs, rerank=RerankConfig(n_best=args.n_best))
    start = time.perf_counter()
    path = train_translator(args.pairs, english, args.out, targs)
    print(f"saved {path} in {time.perf_counter() - start:.0f} s")


def _train_eval_listener(args: argparse.Namespace) -> None:

    from training.eval_listener import EvalListenerArgs, save_eval_listener, train_eval_listener
    from translator.corpus import load_rounds
    from translator.english import EnglishModels

    english = EnglishModels.from_pretrained(args.english or Path(args.out) / "english")
    targs = EvalListenerArgs(seed=args.seed, epochs=args.epochs, max_steps=args.max_steps, games_fraction=args.games_fraction,
                             games_seed=args.games_seed, games_part=args.games_part)
    model = train_eval_listener(load_rounds(args.train), english.tokenizer, targs)
    path = save_eval_listener(model, args.out)
    print(f"saved {path}: validation accuracy {model.training['listener']['val_accuracy']:.3f}")


def _channel_options(args: argparse.Namespace) -> dict | None:
    """The channel fields given by `--channel-config FILE` and the flags (flags win); None: none given."""
    import json

    from training.import_messages import given_channel

    fields: dict = {}
    if args.channel_config:
        try:
            fields = json.loads(Path(args.channel_config).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ValueError(f"{args.channel_config}: cannot read the channel config ({e})") from None
        if not isinstance(fields, dict):
            raise ValueError(f"{args.channel_config}: the channel config must be a JSON object, got {type(fields).__name__}")
    fields.update({k: v for k, v in (("kind", args.kind), ("dim", args.dim), ("vocab_size", args.vocab_size),
                                     ("max_len", args.max_len)) if v is not None})
    try:
        given_channel(fields)
    except ValueError as e:
        raise ValueError(f"{args.channel_config or 'channel options'}: {e}") from None
    return fields or None


def _import_messages(args: argparse.Namespace) -> None:
    from training.collect import load_collection
    from training.import_messages import import_messages

    ds = import_messages(args.file, args.out, _channel_options(args))
    info = load_collection(args.out)[1]
    print(f"saved {args.out}: {len(ds)} rounds from {len(set(ds['game_id']))} games; channel {info['channel_config']}")
    if info["channel_inferred"]:
        how = {"kind": "the first message's numbers", "dim": "the first message's size", "vocab_size": "the largest id seen + 1",
               "max_len": "the longest message"}
        found = "; ".join(f"{k} {info['channel_config'][k]!r} ({how[k]})" for k in info["channel_inferred"])
        print(f"inferred from the data: {found}; declare what you know with --channel-config FILE or the flags")


def _evaluate(args: argparse.Namespace) -> None:
    from eval.evaluate import evaluate

    evaluate(args.run, args.data, args.out, games=args.games, plays=args.plays, jobs=args.jobs)


def _demo(args: argparse.Namespace) -> None:
    """English models, evaluation listener, agents of every channel, their paired corpora, all
    translators, then evaluation on the dev games: each step is the CLI command a user would run
    (`translator/demo.py` says in which order and how many at once)."""
    from translator.bundled_data import bundled
    from translator.demo import demo_steps, run_steps

    out = Path(args.out)
    start = time.perf_counter()
    run_steps(demo_steps(out, bundled(), args.quick, args.jobs, args.game), out / "logs", args.jobs, resume=not args.fresh)
    print(f"demo finished in {time.perf_counter() - start:.0f} s; report: {out / 'eval' / 'report.html'}; logs: {out / 'logs'}")


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
    te.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0): fixes the whole run")
    te.add_argument("--listener-epochs", type=positive_int, default=10, help="listener epochs (default 10; cosine schedule, early stopping)")
    te.add_argument("--speaker-epochs", type=positive_int, default=6, help="speaker epochs (default 6; cosine schedule, early stopping)")
    te.add_argument("--batch-size", type=positive_int, default=64, help="rounds per batch (default 64)")
    te.add_argument("--vocab-size", type=int_in(8), default=1000, help="SentencePiece vocabulary size (default 1000)")
    te.add_argument("--max-steps", type=positive_int, help="stop each model after this many steps (quick runs)")
    te.add_argument("--jobs", type=int, default=1, choices=(1, 2),
                    help="2: train the speaker in a second process beside the listener (same result; default 1)")
    te.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
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
    ta.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    ta.add_argument("--steps", type=positive_int, help="training steps (default: the channel's tuned preset)")
    ta.add_argument("--batch-size", type=positive_int, help="games per step (default: the channel's preset)")
    ta.add_argument("--lr", type=positive_float, help="peak learning rate (default: the channel's preset)")
    ta.add_argument("--absolute-first-symbol", action=argparse.BooleanOptionalAction, default=None,
                    help="discrete channels: the speaker's first symbol depends on the target's colour alone, so it means "
                    "the same in any context (default: the channel's preset, off)")
    ta.add_argument("--reconstruction-weight", type=non_negative_float, metavar="W",
                    help="weight of the listener's guess of the target colour from the message alone, which makes the code "
                    "say what the target looks like (default: the channel's preset, 1 continuous, 0 otherwise; 0 = off)")
    ta.add_argument("--listener", choices=LISTENERS,
                    help="learned (default): the listener has its own encoder and scorer; bayes: the listener is the exact "
                    "posterior under the speaker, p(x | m, c) ∝ p(m | c, x), and training is several times faster")
    ta.add_argument("--dim", type=positive_int, help="continuous: message dimension (default 64)")
    ta.add_argument("--noise", type=non_negative_float, help="continuous: Gaussian channel noise std (default 0.3)")
    ta.add_argument("--vocab-size", type=int_in(2), help="discrete: symbols incl. end-of-message (default 32)")
    ta.add_argument("--max-len", type=positive_int, help="discrete: maximum message length (default 3)")
    ta.add_argument("--temperature", type=positive_float, help="gumbel: Gumbel-Softmax temperature of the straight-through gradient (default 0.5)")
    ta.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    ta.set_defaults(func=_train_agents)

    tt = tsub.add_parser(
        "translator",
        help="a translator from a paired corpus",
        description="Build a translator for one channel from a paired corpus (a collection of ours, or imported messages) "
        "and an English bundle; saved to RUN/translators/CHANNEL/{belief,direct,seq2seq_cooccurrence,seq2seq_belief}.",
    )
    tt.add_argument("--kind", required=True, choices=("belief", "direct", "seq2seq"), help="which translator")
    tt.add_argument("--pairs", required=True, metavar="DIR", help="paired corpus of the training games (`neuralese collect` or `import-messages`)")
    tt.add_argument("--english", metavar="DIR", help="English bundle (default RUN/english)")
    tt.add_argument("--out", required=True, metavar="RUN", help="run directory; the bundle goes to RUN/translators/CHANNEL/...")
    tt.add_argument("--name", metavar="CHANNEL", help="channel directory name (default: the corpus's channel kind)")
    tt.add_argument("--message-model", default="auto", choices=("auto", "exact", "learned"),
                    help="p(m | c, x) for beliefs: exact from the agents bundle, or learned from the pairs alone "
                    "('bring your own agents'); auto = exact when the corpus names an agents bundle (default)")
    tt.add_argument("--source", default="cooccurrence", choices=("cooccurrence", "belief"),
                    help="seq2seq training pairs: co-occurrence in the same rounds, or belief-matched (needs --kind belief first)")
    tt.add_argument("--contexts", type=positive_int, default=256, help="belief: contexts beliefs are compared over (default 256)")
    tt.add_argument("--candidates", type=positive_int, default=10000, help="belief: cap on English candidates (default 10000)")
    tt.add_argument("--min-count", type=positive_int, default=10,
                    help="belief: a corpus utterance is a candidate when said this often in the pairs (default 10; see README)")
    tt.add_argument("--speaker-samples", type=non_negative_int, default=0, help="belief: English speaker samples added as candidates (default 0)")
    tt.add_argument("--epochs", type=positive_int,
                    help="seq2seq English -> neuralese: epochs (default 6); learned message model: most epochs (default 12)")
    tt.add_argument("--english-epochs", type=positive_int, help="seq2seq neuralese -> English: epochs (default 6, batch 32)")
    tt.add_argument("--n-best", type=positive_int, default=8,
                    help="seq2seq neuralese -> English: beam hypotheses the English listener reranks in context (default 8; 1 = greedy)")
    tt.add_argument("--max-steps", type=positive_int, help="seq2seq: cap on optimiser steps (quick runs)")
    tt.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    tt.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    tt.set_defaults(func=_train_translator)

    tl = tsub.add_parser(
        "eval-listener",
        help="the independent evaluation listener",
        description="Train the CNN evaluation listener (another architecture and seed than the English listener that "
        "translators consult) that scores translations to English; saved to RUN/eval_listener.",
    )
    tl.add_argument("--train", required=True, metavar="CSV", help="training corpus")
    tl.add_argument("--english", metavar="DIR", help="English bundle whose tokenizer it shares (default RUN/english)")
    tl.add_argument("--out", required=True, metavar="RUN", help="run directory")
    tl.add_argument("--epochs", type=positive_int, default=8, help="epochs (default 8, early stopping)")
    tl.add_argument("--max-steps", type=positive_int, help="cap on optimiser steps (quick runs)")
    tl.add_argument("--seed", type=non_negative_int, default=1, help="random seed (default 1: not the English listener's)")
    tl.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    tl.add_argument("--games-fraction", type=float_in(0, 1, low_open=True), metavar="F",
                    help="train on about this share of the training games only (whole games, split with --games-seed); default: all")
    tl.add_argument("--games-seed", type=non_negative_int, default=0, help="seed of that split (default 0)")
    tl.add_argument("--games-part", choices=("held", "rest"), default="held",
                    help="'held': the F share of the split (default); 'rest': the other games")
    tl.set_defaults(func=_train_eval_listener)

    im = sub.add_parser(
        "import-messages",
        help="import agent messages from JSON Lines",
        description="Validate a JSON Lines file of rounds played by your own agents (docs/message_schema.md) and save "
        "it as a paired corpus for `train translator`. Errors name the line and field.",
    )
    im.add_argument("file", metavar="FILE", help="JSON Lines file")
    im.add_argument("--out", required=True, metavar="DIR", help="where the paired corpus is saved")
    im.add_argument("--channel-config", metavar="FILE",
                    help='JSON object of the channel\'s fields, e.g. {"kind": "gumbel", "vocab_size": 32, "max_len": 5}; '
                    "fields not given are inferred from the data")
    im.add_argument("--kind", choices=CHANNELS, help="channel kind (default: from the first message; discrete as gumbel)")
    im.add_argument("--dim", type=positive_int, help="continuous: values per message (default: the first message's)")
    im.add_argument("--vocab-size", type=int_in(2),
                    help="discrete: symbols in the vocabulary, end-of-message 0 included (default: the largest id seen + 1)")
    im.add_argument("--max-len", type=positive_int, help="discrete: longest message, in symbols (default: the longest seen)")
    im.set_defaults(func=_import_messages)

    co = sub.add_parser(
        "collect",
        help="play agents on a corpus and store the paired corpus",
        description="Play trained agents on every round of a corpus (the contexts and targets people had) and save "
        "a datasets.Dataset with the agent's message beside the person's utterance.",
    )
    co.add_argument("--agents", required=True, metavar="DIR", help="agents bundle (RUN/agents/CHANNEL)")
    co.add_argument("--data", required=True, metavar="CSV", help="corpus file to play")
    co.add_argument("--out", required=True, metavar="DIR", help="where the dataset is saved (save_to_disk)")
    co.add_argument("--seed", type=non_negative_int, default=0, help="seed of the channel noise (default 0)")
    co.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    co.set_defaults(func=_collect)

    ev = sub.add_parser(
        "evaluate",
        help="score a run on a corpus file",
        description="Evaluate a run's models on a corpus file (either CSV layout, any games). Writes "
        "OUT/metrics.json, OUT/report.md and plots, and prints a table.",
    )
    ev.add_argument("--run", required=True, metavar="RUN", help="run directory (holds english/)")
    ev.add_argument("--data", required=True, metavar="FILE", help="corpus to evaluate on, ideally games the run never saw: "
                    "a colour CSV or a driving JSONL (scored with RUN/driving/)")
    ev.add_argument("--out", required=True, metavar="DIR", help="where metrics.json and the report go")
    ev.add_argument("--plays", metavar="DB", help="SQLite file of rounds people played on /play (neuralese serve --plays DB): "
                    "report their R->H and H->R accuracies by condition beside the model's")
    ev.add_argument("--games", type=positive_int, help="evaluate on the first N games of the file only (quick runs)")
    ev.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    ev.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                    help="channels scored at once, in processes of one torch thread each (default: the CPU count); "
                    "the numbers do not depend on it")
    ev.set_defaults(func=_evaluate)

    demo = sub.add_parser(
        "demo",
        help="the whole pipeline on the bundled corpus",
        description="Train the English models and agents of every channel on the bundled Colors in Context training "
        "games, then evaluate everything on its dev games (metrics.json, report.md, plots); the same for the driving "
        "game (RUN/driving/metrics.json).",
    )
    demo.add_argument("--out", default="runs/demo", metavar="RUN", help="run directory (default runs/demo)")
    demo.add_argument("--quick", action="store_true", help="a small, fast version (smoke test)")
    demo.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                      help="steps run at once, one torch thread each (default: the CPU count); the results do not depend on it")
    demo.add_argument("--game", choices=("all", "colors", "driving"), default="all",
                      help="which game's pipeline to run (default all: the colour game and the driving game)")
    demo.add_argument("--fresh", action="store_true",
                      help="run every step again (default: skip the steps an earlier run of the same command finished)")
    demo.set_defaults(func=_demo)
    add_live_commands(sub)
    add_driving_commands(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not sys.stderr.isatty():  # a log file, not a person: no progress bars (ours pass tqdm disable=None)
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    # every command that computes takes --threads; with --workers N (translate, serve) each worker
    # process sets its own, and this one stays torch-free
    if getattr(args, "threads", None) and getattr(args, "workers", 1) == 1:
        import torch

        torch.set_num_threads(args.threads)
    try:
        args.func(args)
    except ValueError as e:  # BundleError and CorpusError included: bad input, not a bug
        print(f"neuralese: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
