"""Probe: does an agent code mean the same thing in any context? Cheap measures before translation.

Context-free translation can only carry what a message says about the target on its own. On the
32 training games the English models hold out (never dev) this prints, for an agents bundle:
self-play accuracy by condition; the mutual information (bits) between the message and the target
colour's hue sector and saturation band (as `eval.language`); stability (the share of rounds whose
most likely message survives replacing the distractors); and a context-free listener that picks
the colour nearest each message's mean target colour over the training rounds, which a relational
code scores near chance (0.33) and a code that names colours scores high. The same for the first
symbol alone.

    PYTHONPATH=. python bench/code_probe.py RUN/agents/gumbel [...more bundles]"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from eval.language import color_attributes, color_coordinates, mutual_information, rows
from training.colors.agents import accuracy_by_condition, self_play_accuracy
from translator.games.colors.corpus import load_rounds, split_games
from translator.models.colors.agents import Agents

ROOT = Path(__file__).resolve().parents[1]


def _messages(agents: Agents, colors, order, targets, sample: bool) -> np.ndarray:
    g = torch.Generator().manual_seed(0)
    return agents.speak(colors, order, targets, sample=sample, generator=g).value.cpu().numpy()


def _swap_distractors(colors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each round's target colour in the next round's context (in that round's target slot)."""
    other, other_t = colors.roll(1, 0).clone(), targets.roll(1, 0)
    other[torch.arange(len(colors)), other_t] = colors[torch.arange(len(colors)), targets]
    return other


def context_free_listener(train_msgs: list[tuple], train_hsl: np.ndarray, msgs: list[tuple], colors: np.ndarray) -> np.ndarray:
    """Picks `(N,)`: the colour nearest each message's mean target colour over the training rounds."""
    sums: dict[tuple, np.ndarray] = defaultdict(lambda: np.zeros(3))
    counts: dict[tuple, int] = defaultdict(int)
    for m, xyz in zip(train_msgs, color_coordinates(train_hsl)):
        sums[m] += xyz
        counts[m] += 1
    picks = np.zeros(len(msgs), dtype=int)
    for i, m in enumerate(msgs):
        if counts[m]:
            mean = sums[m] / counts[m]
            picks[i] = int(np.argmin(((color_coordinates(colors[i]) - mean) ** 2).sum(-1)))
    return picks


def probe(path: Path, train, heldout) -> dict:
    agents = Agents.from_pretrained(path)
    result = {"self_play": accuracy_by_condition(heldout, self_play_accuracy(agents, heldout, noise=True))}
    colors, order, targets = Agents.round_inputs(heldout)
    target_hsl = colors[torch.arange(len(targets)), targets].numpy()
    sampled = rows(_messages(agents, colors, order, targets, sample=True))
    result["mi_bits"] = mutual_information(sampled, rows(color_attributes(target_hsl)))
    greedy = _messages(agents, colors, order, targets, sample=False)
    swapped = _messages(agents, _swap_distractors(colors, targets), order, targets, sample=False)
    result["stable"] = float((greedy == swapped).all(1).mean())
    tc, to, tt = Agents.round_inputs(train)
    train_msgs = rows(_messages(agents, tc, to, tt, sample=False))
    picks = context_free_listener(train_msgs, tc[torch.arange(len(tt)), tt].numpy(), rows(greedy), colors.numpy())
    result["context_free_listener"] = float((picks == targets.numpy()).mean())
    first = context_free_listener([m[:1] for m in train_msgs], tc[torch.arange(len(tt)), tt].numpy(), [m[:1] for m in rows(greedy)],
                                  colors.numpy())
    result["first_symbol_listener"] = float((first == targets.numpy()).mean())
    result["first_symbol_mi_bits"] = mutual_information([m[:1] for m in sampled], rows(color_attributes(target_hsl)))
    result["distinct_messages"] = len(set(rows(greedy)))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("agents", nargs="+", type=Path)
    ap.add_argument("--train", type=Path, default=ROOT / "data/colors_in_context/train.csv")
    a = ap.parse_args()
    torch.set_num_threads(1)
    train = load_rounds(a.train)
    heldout = split_games(train, 0.1, seed=0)[1]
    for path in a.agents:
        print(json.dumps({"agents": str(path), **probe(path, train, heldout)}))


if __name__ == "__main__":
    main()
