"""The gallery rows of `report.html`: evaluation rounds with the message, what its own listener
reconstructs from it, each translation and who picked what, in the round's context and in the
transplanted one (`eval.colors.transplant`).

Rounds are a seeded random sample, the same number from each condition (not the first rounds of
the file), so reruns show the same rounds and every unit of a channel draws the same ones.
"""

from __future__ import annotations

from itertools import product

import numpy as np
import torch

from translator.games.colors.corpus import CONDITIONS
from translator.games.colors.features import color_features
from translator.storage.bundle import inference

PER_CONDITION = 3
SEED = 0
# HSL grid the reconstructed colour features are matched against (every 5 degrees and 5 points)
_GRID = torch.tensor(list(product(range(0, 360, 5), range(0, 101, 5), range(0, 101, 5))), dtype=torch.float32)


def sample_rows(conditions: list[str], per_condition: int = PER_CONDITION, seed: int = SEED) -> list[int]:
    """Row indices: `per_condition` rounds drawn at random (seeded) from each condition, in order."""
    rng = np.random.default_rng(seed)
    rows: list[int] = []
    for cond in CONDITIONS:
        idx = [i for i, c in enumerate(conditions) if c == cond]
        rows += sorted(rng.choice(idx, size=min(per_condition, len(idx)), replace=False).tolist())
    return rows


@torch.no_grad()
def reconstructed_colors(agents, messages: torch.Tensor, colors: torch.Tensor) -> list[list[float]] | None:
    """HSL of the colour the agents' listener guesses from each message alone (its reconstruction
    head's colour features, matched to the nearest colour of a 5-unit HSL grid); None where the
    listener has no such head."""
    if getattr(agents.listener, "reconstruct", None) is None or not len(messages):
        return None
    inference(agents.listener)
    inference(agents.speaker)  # a bayes listener asks it
    _, guess = agents.listener(messages, colors, reconstruct=True)
    nearest = torch.cdist(guess, color_features(_GRID)).argmin(1)
    return _GRID[nearest].tolist()


def render_message(message: list, discrete: bool) -> str:
    if discrete:
        return " ".join(str(s) for s in message) or "(empty)"
    return "z[0:3] = " + ", ".join(f"{v:+.2f}" for v in message[:3]) + " …"


def gallery(
    ds: dict, messages: torch.Tensor, colors: torch.Tensor, agents, shown: dict[str, dict], transplant, rows: list[int] | None = None
) -> list[dict]:
    """One item per sampled row. `ds`: the rounds' columns as lists; `messages`, `colors`: the
    same rounds as the agents read them (`translator.games.colors.record.PlayedRounds`).
    `shown[name]`: a translator's `text`, `faithful` and `choice` (the evaluation listener's pick)
    per round, and `moved_text` and `moved_choice` in the transplanted context; `transplant`: the
    channel's `eval.colors.transplant.Transplant`."""
    rows = sample_rows(ds["condition"]) if rows is None else rows
    pick = torch.as_tensor(rows, dtype=torch.long)
    recon = reconstructed_colors(agents, messages[pick], colors[pick])
    items = []
    for k, i in enumerate(rows):
        j = int(transplant.perm[i])
        item = {
            "channel": agents.channel.kind, "round_id": ds["round_id"][i], "condition": ds["condition"][i],
            "colors": ds["colors"][i], "target": ds["target"][i], "utterance": ds["utterance"][i],
            "message": render_message(ds["message"][i], agents.channel.discrete), "agent_choice": ds["agent_choice"][i],
            "translations": {name: {"text": s["text"][i], "eval_listener_choice": int(s["choice"][i]), "faithful": bool(s["faithful"][i])}
                             for name, s in shown.items()},
            "transplanted": {
                "round_id": ds["round_id"][j], "condition": ds["condition"][j], "colors": ds["colors"][j],
                "agent_choice": int(transplant.agent_picks[i]),
                "translations": {name: {"text": s["moved_text"][i], "eval_listener_choice": int(s["moved_choice"][i])}
                                 for name, s in shown.items()},
            },
        }  # fmt: skip
        if recon is not None:
            item["reconstruction"] = recon[k]
        items.append(item)
    return items
