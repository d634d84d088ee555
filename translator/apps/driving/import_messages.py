"""`neuralese import-messages --game driving`: a foreign driving agent's episodes, for the command line.

The options this game adds to `import-messages`, and its handler: check the episode file, fit the
agent's message model and write the import folder (training/driving/import_episodes.py), then say
how to translate with it. Importing this module is cheap: torch loads only when the command runs.
"""

from __future__ import annotations

import argparse

from translator.settings.checks import non_negative_int, positive_int

COLOR_OPTIONS = ("channel_config", "kind", "dim", "vocab_size", "max_len")


def add_driving_import_options(im: argparse.ArgumentParser) -> None:
    im.add_argument(
        "--english",
        metavar="DIR",
        help="driving: the English speaker the agent is translated with: a driving run (RUN/driving or RUN) or its english_speaker/",
    )
    im.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="driving: seed of the message model's fit and the translators (default 0)",
    )
    im.add_argument(
        "--epochs", type=positive_int, default=300, help="driving: full-batch epochs of the message model's fit (default 300)"
    )


def import_driving(args: argparse.Namespace) -> None:
    # deferred: heavy imports, loaded only when this command runs
    from training.driving.import_episodes import import_episodes
    from training.driving.message_model import MessageModelArgs

    given = [f"--{name.replace('_', '-')}" for name in COLOR_OPTIONS if getattr(args, name, None) is not None]
    if given:
        raise ValueError(
            f"{', '.join(given)}: colour-game channel options; a driving import takes its message size from the file"
        )
    if not args.english:
        raise ValueError(
            "--english DIR: a driving import needs the English speaker it pairs with (a driving run or its english_speaker/)"
        )
    info = import_episodes(args.file, args.out, args.english, MessageModelArgs(seed=args.seed, epochs=args.epochs))
    fit = info["message_model"]
    print(
        f"saved {args.out}: {info['steps']} steps of {info['episodes']} episodes, messages of {info['message_size']} numbers; "
        f"message model held-out NLL {fit['held_out_nll']:.2f} nats per message (a constant one: {fit['constant_nll']:.2f})"
    )
    print(f"translate: neuralese translate --game driving --run {args.out} --to english < records.jsonl")
