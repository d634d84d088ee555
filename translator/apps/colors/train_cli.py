"""`neuralese train english|agents|translator|eval-listener`: their options and handlers.

Options that set a hyperparameter are generated from the dataclass the command builds
(`translator.settings.options`), so each default is written once, there. Those dataclasses live beside
torch-using code, so a command's options are added only when that command is parsed (`wanted`):
`neuralese --help` and the live commands never import torch.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from translator.settings.checks import int_in, non_negative_float, positive_float, positive_int
from translator.settings.options import add_fields, field_default, field_values

THREADS_HELP = "torch CPU threads (default: torch's choice)"
ENGLISH_FIELDS = ("seed", "listener_epochs", "speaker_epochs", "batch_size", "vocab_size", "max_steps", "judge_share")
RUN_FIELDS = ("kind", "name", "message_model", "seq2seq_source")
BELIEF_FIELDS = ("contexts", "candidates", "min_count", "speaker_samples")
EVAL_LISTENER_FIELDS = ("epochs", "max_steps", "seed", "games_fraction", "games_seed", "games_part", "judge_share")
# The agents' options that take the channel's preset when not given (`AgentTrainArgs.for_channel`):
# field -> (argparse type, help, the channel kinds it applies to)
ALL, DISCRETE = ("continuous", "gumbel", "reinforce"), ("gumbel", "reinforce")
AGENT_TRAIN_OPTIONS = {
    "steps": (positive_int, "training steps", ALL),
    "batch_size": (positive_int, "games per step", ALL),
    "lr": (positive_float, "peak learning rate", ALL),
    "reconstruction_weight": (
        non_negative_float,
        "weight of the listener's guess of the target colour from the message "
        "alone, which makes the code say what the target looks like (0 = off)",
        ALL,
    ),
}
AGENT_METAVARS = {"reconstruction_weight": "W"}
AGENT_CHANNEL_OPTIONS = {
    "dim": (positive_int, "continuous: message dimension", ("continuous",)),
    "noise": (non_negative_float, "continuous: Gaussian channel noise std", ("continuous",)),
    "vocab_size": (int_in(2), "discrete: symbols incl. end-of-message", DISCRETE),
    "max_len": (positive_int, "discrete: maximum message length", DISCRETE),
    "temperature": (positive_float, "gumbel: Gumbel-Softmax temperature of the straight-through gradient", ("gumbel",)),
}


def _train_english(args: argparse.Namespace) -> None:
    # deferred: heavy imports, loaded only when this command runs
    from eval.colors.report import write_training_report
    from training.colors.english import EnglishTrainArgs, save_english, train_english
    from translator.games.colors.corpus import load_rounds

    train = load_rounds(args.train)
    dev = load_rounds(args.dev) if args.dev else None
    models = train_english(train, dev, EnglishTrainArgs(**field_values(args, ENGLISH_FIELDS)), jobs=args.jobs)
    path = save_english(models, args.out)
    write_training_report(models.training, path)
    t = models.training
    print(
        f"saved {path}: listener val accuracy {t['listener']['val_accuracy']:.3f} (epoch {t['listener']['best_epoch']}, "
        f"T={t['listener']['temperature']:.2f}), speaker val perplexity {t['speaker']['val_perplexity']:.2f} "
        f"(epoch {t['speaker']['best_epoch']}), {t['seconds']:.0f} s"
    )


def _english_options(te: argparse.ArgumentParser) -> None:
    # deferred: heavy import (torch), only when this command is parsed
    from training.colors.english import EnglishTrainArgs

    te.add_argument("--train", required=True, metavar="CSV", help="training corpus (round-per-row CSV or filteredCorpus.csv)")
    te.add_argument(
        "--dev",
        metavar="CSV",
        help="validation games for early stopping and calibration; default: 10%% of the training games, "
        "which keeps every other file untouched for honest evaluation",
    )
    te.add_argument("--out", required=True, metavar="RUN", help="run directory; the bundle goes to RUN/english")
    add_fields(te, EnglishTrainArgs, ENGLISH_FIELDS)
    te.add_argument(
        "--jobs",
        type=int,
        default=1,
        choices=(1, 2),
        help="2: train the speaker in a second process beside the listener (same result; default 1)",
    )
    te.add_argument("--threads", type=positive_int, help=THREADS_HELP)


def _train_agents(args: argparse.Namespace) -> None:
    # deferred: heavy imports, loaded only when this command runs
    from accelerate import PartialState

    from training.colors.agents import AgentTrainArgs, train_agents
    from translator.games.colors.corpus import load_rounds
    from translator.models.channels import ChannelConfig

    defaults = AgentTrainArgs.for_channel(args.channel)
    channel = {k: getattr(args, k) for k in AGENT_CHANNEL_OPTIONS if getattr(args, k) is not None}
    overrides = {
        k: getattr(args, k) for k in (*AGENT_TRAIN_OPTIONS, "listener", "absolute_first_symbol") if getattr(args, k) is not None
    }
    targs = AgentTrainArgs.for_channel(
        args.channel, channel=ChannelConfig.from_dict({**vars(defaults.channel), **channel}), seed=args.seed, **overrides
    )
    out = Path(args.out) / "agents" / args.channel
    agents = train_agents(load_rounds(args.train), targs, out)
    if not PartialState().is_main_process:
        return  # under `accelerate launch`, one process reports (and only it wrote the bundle)
    last = agents.training["history"][-1]["val_accuracy"] if agents.training["history"] else {}
    print(f"saved {out}: {agents.training['steps']} steps in {agents.training['seconds']:.0f} s; validation self-play {last}")


def _presets(value: Callable[[object], object], kinds: tuple[str, ...]) -> str:
    """` (default: the channel's preset: continuous X, ...)` of one setting, read from the presets of `kinds`."""
    # deferred: heavy import (torch), only when this command is parsed
    from training.colors.agents import AgentTrainArgs

    shown = ", ".join(f"{kind} {value(AgentTrainArgs.for_channel(kind))}" for kind in kinds)
    return f" (default: the channel's preset: {shown})".replace("%", "%%")


def _agents_options(ta: argparse.ArgumentParser) -> None:
    # deferred: heavy imports (torch), only when this command is parsed
    from training.colors.agents import AgentTrainArgs
    from translator.models.channels import CHANNEL_KINDS
    from translator.models.colors.agents import LISTENER_KINDS

    ta.add_argument("--channel", required=True, choices=CHANNEL_KINDS, help="message channel")
    ta.add_argument("--train", required=True, metavar="CSV", help="training corpus whose contexts the agents play on")
    ta.add_argument("--out", required=True, metavar="RUN", help="run directory; the bundle goes to RUN/agents/CHANNEL")
    add_fields(ta, AgentTrainArgs, ("seed",))
    for name, (kind, what, kinds) in AGENT_TRAIN_OPTIONS.items():
        ta.add_argument("--" + name.replace("_", "-"), type=kind, metavar=AGENT_METAVARS.get(name),
                        help=what + _presets(lambda a, n=name: getattr(a, n), kinds))
    ta.add_argument(
        "--absolute-first-symbol",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="discrete channels: the speaker's first symbol depends on the target's colour alone, so it means "
        "the same in any context" + _presets(lambda a: a.absolute_first_symbol, DISCRETE),
    )
    ta.add_argument(
        "--listener",
        choices=LISTENER_KINDS,
        help="learned: the listener has its own encoder and scorer; bayes: the listener is the exact "
        "posterior under the speaker, p(x | m, c) ∝ p(m | c, x), and training is several times faster"
        + _presets(lambda a: a.listener, ALL),
    )
    for name, (kind, what, kinds) in AGENT_CHANNEL_OPTIONS.items():
        ta.add_argument(
            "--" + name.replace("_", "-"), type=kind, help=what + _presets(lambda a, n=name: getattr(a.channel, n), kinds)
        )
    ta.add_argument("--threads", type=positive_int, help=THREADS_HELP)


def _train_translator(args: argparse.Namespace) -> None:
    # deferred: heavy imports, loaded only when this command runs
    from training.colors.seq2seq import Seq2SeqTrainArgs
    from training.colors.translator_run import TranslatorRunArgs, train_translator
    from training.colors.translators import BeliefBuildArgs
    from translator.translate.colors.reranked_seq2seq import RerankConfig

    english = args.english or Path(args.out) / "english"
    belief = BeliefBuildArgs(seed=args.seed, **field_values(args, BELIEF_FIELDS))
    seq2seq = Seq2SeqTrainArgs(seed=args.seed, max_steps=args.max_steps, **({"epochs": args.epochs} if args.epochs else {}))
    seq2seq_to_english = replace(
        TranslatorRunArgs().seq2seq_to_english,
        seed=args.seed,
        max_steps=args.max_steps,
        **({"epochs": args.english_epochs} if args.english_epochs else {}),
    )
    targs = TranslatorRunArgs(
        **field_values(args, RUN_FIELDS),
        seed=args.seed,
        belief=belief,
        seq2seq=seq2seq,
        seq2seq_to_english=seq2seq_to_english,
        message_model_epochs=args.epochs,
        rerank=RerankConfig(n_best=args.n_best),
    )
    start = time.perf_counter()
    path = train_translator(args.pairs, english, args.out, targs)
    print(f"saved {path} in {time.perf_counter() - start:.0f} s")


def _translator_options(tt: argparse.ArgumentParser) -> None:
    # deferred: heavy imports (torch), only when this command is parsed
    from training.colors.learned_speaker import LearnedSpeakerArgs
    from training.colors.seq2seq import Seq2SeqTrainArgs
    from training.colors.translator_run import TranslatorRunArgs
    from training.colors.translators import BeliefBuildArgs
    from translator.translate.colors.reranked_seq2seq import RerankConfig

    to_english = TranslatorRunArgs().seq2seq_to_english
    add_fields(tt, TranslatorRunArgs, ("kind",), kind={"required": True, "default": None})
    tt.add_argument(
        "--pairs",
        required=True,
        metavar="DIR",
        help="paired corpus of the training games (`neuralese collect` or `import-messages`)",
    )
    tt.add_argument("--english", metavar="DIR", help="English bundle (default RUN/english)")
    tt.add_argument("--out", required=True, metavar="RUN", help="run directory; the bundle goes to RUN/translators/CHANNEL/...")
    add_fields(tt, TranslatorRunArgs, RUN_FIELDS[1:])
    add_fields(tt, BeliefBuildArgs, BELIEF_FIELDS)
    tt.add_argument(
        "--epochs",
        type=positive_int,
        help=f"seq2seq English -> neuralese: epochs (default {field_default(Seq2SeqTrainArgs, 'epochs')}); "
        f"learned message model: most epochs (default {field_default(LearnedSpeakerArgs, 'max_epochs')})",
    )
    tt.add_argument(
        "--english-epochs",
        type=positive_int,
        help=f"seq2seq neuralese -> English: epochs (default {to_english.epochs}, batch {to_english.batch_size})",
    )
    add_fields(tt, RerankConfig, ("n_best",))
    tt.add_argument("--max-steps", type=positive_int, help="seq2seq: cap on optimiser steps (quick runs)")
    add_fields(tt, TranslatorRunArgs, ("seed",))
    tt.add_argument("--threads", type=positive_int, help=THREADS_HELP)


def _train_eval_listener(args: argparse.Namespace) -> None:
    # deferred: heavy imports, loaded only when this command runs
    from training.colors.eval_listener import EvalListenerArgs, save_eval_listener, train_eval_listener
    from translator.games.colors.corpus import load_rounds
    from translator.models.colors.english import EnglishModels

    english = EnglishModels.from_pretrained(args.english or Path(args.out) / "english")
    model = train_eval_listener(
        load_rounds(args.train), english.tokenizer, EvalListenerArgs(**field_values(args, EVAL_LISTENER_FIELDS))
    )
    path = save_eval_listener(model, args.out)
    print(f"saved {path}: validation accuracy {model.training['listener']['val_accuracy']:.3f}")


def _eval_listener_options(tl: argparse.ArgumentParser) -> None:
    # deferred: heavy import (torch), only when this command is parsed
    from training.colors.eval_listener import EvalListenerArgs

    tl.add_argument("--train", required=True, metavar="CSV", help="training corpus")
    tl.add_argument("--english", metavar="DIR", help="English bundle whose tokenizer it shares (default RUN/english)")
    tl.add_argument("--out", required=True, metavar="RUN", help="run directory")
    add_fields(tl, EvalListenerArgs, EVAL_LISTENER_FIELDS[:3])
    tl.add_argument("--threads", type=positive_int, help=THREADS_HELP)
    add_fields(tl, EvalListenerArgs, EVAL_LISTENER_FIELDS[3:])



def _train_faithfulness(args: argparse.Namespace) -> None:
    # deferred: heavy imports, loaded only when this command runs
    from training.faithfulness import calibrate_bundle

    model = calibrate_bundle(args.translator, args.pairs)
    for direction, modes in model.models.items():
        for mode, m in modes.items():
            print(f"{direction} {mode}: threshold {m.threshold:.3f} for precision {m.precision:.2f} ({m.rounds} held-out rows)")
    print(f"saved {Path(args.translator) / 'faithfulness.json'}")


def _faithfulness_options(tf: argparse.ArgumentParser) -> None:
    tf.add_argument("--translator", required=True, metavar="DIR", help="belief translator bundle, e.g. RUN/translators/continuous/belief")
    tf.add_argument("--pairs", metavar="DIR", help="the paired corpus it was built from (default: the one its training.json names)")
    tf.add_argument("--threads", type=positive_int, help=THREADS_HELP)

# name: (help, description, options, handler)
TRAIN_COMMANDS: dict[str, tuple[str, str, Callable, Callable]] = {
    "english": (
        "English speaker and listener on a human corpus",
        "Train the SentencePiece tokenizer, the English listener H_l(target | utterance, colours) and speaker "
        "H_s(utterance | colours, target) on a human corpus; calibrate the listener; save to OUT/english.",
        _english_options,
        _train_english,
    ),
    "agents": (
        "neuralese agents by self-play",
        "Train an agent speaker and listener by self-play on the corpus's contexts plus freshly sampled ones; "
        "checkpoints to RUN/agents/CHANNEL/checkpoint (a rerun resumes there), bundle to RUN/agents/CHANNEL.",
        _agents_options,
        _train_agents,
    ),
    "translator": (
        "a translator from a paired corpus",
        "Build a translator for one channel from a paired corpus (a collection of ours, or imported messages) and an "
        "English bundle; saved to RUN/translators/CHANNEL/{belief,direct,seq2seq_cooccurrence,seq2seq_belief}.",
        _translator_options,
        _train_translator,
    ),
    "eval-listener": (
        "the independent evaluation listener",
        "Train the CNN evaluation listener (another architecture and seed than the English listener that translators "
        "consult) that scores translations to English; saved to RUN/eval_listener.",
        _eval_listener_options,
        _train_eval_listener,
    ),
    "faithfulness": (
        "the faithfulness probability of a saved belief translator",
        "Fit the models of the faithfulness probability (docs/metrics.md) of a belief translator built before them, on "
        "the training games it held out, and add them to its bundle. `train translator --kind belief` fits them itself.",
        _faithfulness_options,
        _train_faithfulness,
    ),
}


def add_train_commands(sub: argparse._SubParsersAction, wanted: Callable[[tuple[str, ...]], bool]) -> None:
    """`train` and its commands; the options of those `wanted(("train", name))` says are being parsed."""
    train = sub.add_parser(
        "train", help="train models of a run", description="Train models and save them as bundles in a run directory."
    )
    tsub = train.add_subparsers(dest="what", required=True, metavar="WHAT")
    for name, (summary, description, options, handler) in TRAIN_COMMANDS.items():
        p = tsub.add_parser(name, help=summary, description=description)
        if wanted(("train", name)):
            options(p)
        p.set_defaults(func=handler)
