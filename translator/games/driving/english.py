"""English models of the human drivers, fit on the training logs.

- `HumanSpeaker`: p(utterance | own observation), a classifier over the distinct normalised
  utterances said at least twice in training, plus silence ("") and "<other>" (everything rarer).
  It is the English side of belief matching: beliefs over the speaker's position, heading and goal.
- `HumanDriver`: p(action | own observation, partner's last utterance), behaviour cloning; the
  utterance enters as a bag of words. It is the model-human listener that R->H translations drive.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from translator.games.driving.env import N_ACTIONS
from translator.games.driving.game import OBS_SIZE
from translator.storage.bundle import Bundled

SILENCE = ""
OTHER = "<other>"


def normalise(text: str) -> str:
    """Lower case, letters/digits/apostrophes only, single spaces: "Going North!" -> "going north"."""
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def utterance_classes(utterances: Sequence[str], min_count: int = 2) -> list[str]:
    """Silence, `<other>`, then the normalised utterances said at least `min_count` times (by count)."""
    counts = Counter(n for n in (normalise(u) for u in utterances) if n)
    frequent = sorted((u for u, c in counts.items() if c >= min_count), key=lambda u: (-counts[u], u))
    return [SILENCE, OTHER, *frequent]


def word_vocabulary(utterances: Sequence[str], min_count: int = 2) -> list[str]:
    counts = Counter(w for u in utterances for w in normalise(u).split())
    return sorted(w for w, c in counts.items() if c >= min_count)


@dataclass
class HumanSpeakerConfig:
    classes: list[str] = field(default_factory=list)
    hidden: int = 64
    obs_size: int = OBS_SIZE


class HumanSpeaker(Bundled, nn.Module):
    """`log_probs(obs) -> (B, n_classes)`; `class_of(text)` maps any text to its class index."""

    bundle_kind = "driving_human_speaker"
    config_class = HumanSpeakerConfig

    def __init__(self, config: HumanSpeakerConfig):
        super().__init__()
        self.config = config
        self.index = {u: i for i, u in enumerate(config.classes)}
        self.net = nn.Sequential(
            nn.Linear(config.obs_size, config.hidden), nn.ReLU(), nn.Linear(config.hidden, len(config.classes))
        )

    def class_of(self, text: str) -> int:
        return self.index.get(normalise(text), self.index[OTHER])

    def log_probs(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.net(obs), dim=-1)


@dataclass
class HumanDriverConfig:
    words: list[str] = field(default_factory=list)
    hidden: int = 64
    obs_size: int = OBS_SIZE


class HumanDriver(Bundled, nn.Module):
    """`logits(obs, heard_bow) -> (B, 4)`; `bag(texts)` encodes what the partner said."""

    bundle_kind = "driving_human_driver"
    config_class = HumanDriverConfig

    def __init__(self, config: HumanDriverConfig):
        super().__init__()
        self.config = config
        self.index = {w: i for i, w in enumerate(config.words)}
        size = config.obs_size + len(config.words) + 1  # + "said something"
        self.net = nn.Sequential(nn.Linear(size, config.hidden), nn.ReLU(), nn.Linear(config.hidden, N_ACTIONS))

    def bag(self, texts: Sequence[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), len(self.config.words) + 1)
        for i, text in enumerate(texts):
            words = normalise(text).split()
            out[i, -1] = float(bool(words))
            for w in words:
                if w in self.index:
                    out[i, self.index[w]] = 1.0
        return out

    def logits(self, obs: torch.Tensor, heard: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, heard], dim=1))
