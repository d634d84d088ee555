"""Faithfulness for the driving game: the probability that a listener acts on a translation as on its source.

Features are what a belief translator knows without any listener, read over the fresh speaker
states it compares beliefs on: the divergence of the translation, its excess over the best
candidate's, the margin between the best candidate and the runner-up, the (normalised) entropy of
the source's and the translation's beliefs, and whether either is silence; in context (the
listening car known) also that car's situation where the message was said. One logistic
regression per direction and mode (`FlagModel`, as the colour game's); `faithful` is the
probability at or above a threshold chosen on held-out training games for `PRECISION`.

The models live in a bundle of their own, `RUN/driving/faithfulness/` (`config.json` of kind
`driving_faithfulness` recording the sha256 of `models.json`, a side file with its own kind and
version), so a changed file is refused on load. Fitting: `training/driving/faithfulness.py`;
labels and method: docs/metrics.md ("Driving faithfulness").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from translator.games.beliefs import kl
from translator.games.driving.env import DriveState, distance
from translator.games.driving.game import LOOKAHEAD, observe
from translator.games.driving.maps import SIZE
from translator.games.driving.play import Said
from translator.games.driving.translate import BeliefTranslator
from translator.models.logistic import Logistic
from translator.storage.atomic import atomic_bundle_dir
from translator.storage.bundle import BundleError, check_header, read_json, read_side_file, write_config, write_side_file
from translator.storage.run_layout import CONFIG_FILE
from translator.translate.faithfulness import FlagModel
from translator.translate.translations import Translation

KIND = "driving_faithfulness"
MODELS_FILE = "models.json"
MODELS_KIND = "neuralese.driving_faithfulness_models"
FOLDER = "faithfulness"  # under a run's driving folder
PRECISION = 0.95  # the `faithful` flag's target precision on held-out training games
DIRECTIONS = ("to_english", "to_neuralese")
FEATURES = (
    "log1p_divergence",
    "log1p_excess",
    "log1p_runner_up_margin",
    "source_entropy",
    "translation_entropy",
    "source_silent",
    "translation_silent",
)
ACTION_FEATURES = ("head_on_road", "tail_on_road", "closer")  # per action, as the observation's lookahead
CONTEXT_FEATURES = (
    *(f"listener_{a}_{f}" for a in ("stay", "forward", "left", "right") for f in ACTION_FEATURES),
    "cars_apart",
    "cars_close",
    "listener_to_goal",
    "speaker_to_goal",
)
MODES = ("in_context", "context_free")  # with the listener's car known (a record's `other`), or not


@dataclass
class Reading:
    """What a belief translator sees of a batch of (source, translation) pairs: the divergence of
    every candidate `(B, C)`, of each translation `(B,)`, and both beliefs `(B, N)` (log) over the
    fresh states."""

    scores: torch.Tensor
    chosen: torch.Tensor
    source: torch.Tensor
    translation: torch.Tensor
    source_silent: torch.Tensor
    translation_silent: torch.Tensor

    def features(self) -> torch.Tensor:
        """`(B, len(FEATURES))` float32."""
        top = self.scores.topk(min(2, self.scores.shape[1]), dim=1, largest=False).values
        best = top[:, 0]
        margin = top[:, 1] - best if top.shape[1] > 1 else torch.zeros_like(best)
        excess = (self.chosen - best).clamp_min(0)
        cols = [
            torch.log1p(self.chosen.clamp_min(0)),
            torch.log1p(excess),
            torch.log1p(margin.clamp_min(0)),
            _entropy(self.source),
            _entropy(self.translation),
            self.source_silent.double(),
            self.translation_silent.double(),
        ]
        return torch.stack([c.double() for c in cols], 1).float()


def context_features(state: DriveState, speaker: int) -> torch.Tensor:
    """`(B, len(CONTEXT_FEATURES))` of the listening car (the other one) in `state`, where the
    message is said: its lookahead per action (all zeros once it is done), how far apart the cars'
    heads are (and whether within two cells), and each car's distance to its goal (cells / 8)."""
    listener = 1 - speaker
    look = observe(state, listener)[:, -LOOKAHEAD * 4 :]
    apart = distance(state.pos[:, speaker], state.pos[:, listener])
    rest = [apart / SIZE, apart <= 2, distance(state.pos[:, listener], state.goal[:, listener]) / SIZE]
    rest.append(distance(state.pos[:, speaker], state.goal[:, speaker]) / SIZE)
    return torch.cat([torch.from_numpy(look), torch.from_numpy(np.stack(rest, 1).astype(np.float32))], 1)


def _entropy(log_p: torch.Tensor) -> torch.Tensor:
    """Entropy over dim 1 divided by its maximum, log N: 0 (one state) to 1 (flat)."""
    return -(log_p.exp() * log_p).sum(1).double() / math.log(log_p.shape[1])


def utterance_beliefs(b: BeliefTranslator, obs: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
    """`(B, N)` log belief of the English speaker model over the fresh states for each row's text."""
    with torch.no_grad():
        every = torch.log_softmax(b.c.speaker.log_probs(obs), dim=1)  # (B, N, classes)
    cls = torch.tensor([b.c.speaker.class_of(t) for t in texts], dtype=torch.long)
    return every[torch.arange(len(texts)), :, cls]


@torch.no_grad()
def read_english(b: BeliefTranslator, said: Said, obs: torch.Tensor, texts: Sequence[str] | None = None) -> Reading:
    """R→H: messages `said.z` and English `texts` (default: each row's best candidate), over the
    fresh speaker states `obs (B, N, F)`; divergence KL(β(z) ‖ β(u)), as belief matching minimises."""
    z_belief = b.c.agent_beliefs(said.z[:, None], b.c.agent_means(obs, said))[..., 0]
    scores = kl(z_belief[..., None], b.c.english_beliefs(obs))
    if texts is None:
        texts = [b.utterances[i] for i in scores.argmin(1).tolist()]
    u_belief = utterance_beliefs(b, obs, texts)
    chosen = kl(z_belief[..., None], u_belief[..., None])[:, 0]
    silent = torch.tensor([not t.strip() for t in texts])
    return Reading(scores, chosen, z_belief, u_belief, torch.zeros(len(texts), dtype=torch.bool), silent)


@torch.no_grad()
def read_neuralese(
    b: BeliefTranslator, texts: Sequence[str], context: Said, obs: torch.Tensor, messages: torch.Tensor | None = None
) -> Reading:
    """H→R: English `texts` and messages `(B, 64)` (default: each row's best message of the pool),
    read in the speaker's `context` over `obs`; divergence KL(β(u) ‖ β(z))."""
    u_belief = utterance_beliefs(b, obs, texts)
    means = b.c.agent_means(obs, context)
    scores = kl(u_belief[..., None], b.c.agent_beliefs(b.pool.expand(len(texts), -1, -1), means))
    if messages is None:
        messages = b.pool[scores.argmin(1)]
    z_belief = b.c.agent_beliefs(messages[:, None].float(), means)[..., 0]
    chosen = kl(u_belief[..., None], z_belief[..., None])[:, 0]
    silent = torch.tensor([not t.strip() for t in texts])
    return Reading(scores, chosen, u_belief, z_belief, silent, (messages == 0).all(1))


@dataclass
class DrivingFaithfulness:
    """The flag models `models[direction][mode]` (in context: `FEATURES + CONTEXT_FEATURES`;
    context-free: `FEATURES`), what the labels were, and the held-out rates the evaluation's
    baselines use (`baselines[direction]`: `prior`, and `silent` / `spoken` for rows where the
    source or the translation is silence, or neither)."""

    models: dict[str, dict[str, FlagModel]]
    labels: str
    baselines: dict[str, dict[str, float]]
    training: dict

    def get(self, direction: str, in_context: bool) -> FlagModel:
        return self.models[direction]["in_context" if in_context else "context_free"]

    def probability(self, direction: str, features: torch.Tensor, in_context: torch.Tensor | None = None) -> torch.Tensor:
        """`(B,)` probabilities of rows `features (B, len(FEATURES) + len(CONTEXT_FEATURES))`; rows
        where `in_context` is False (default: all) use the context-free model on `FEATURES` alone."""
        inside = torch.ones(len(features), dtype=torch.bool) if in_context is None else in_context
        out = self.get(direction, False).probability(features[:, : len(FEATURES)])
        if inside.any():
            out[inside] = self.get(direction, True).probability(features[inside])
        return out

    def flag(self, direction: str, probability: torch.Tensor, in_context: torch.Tensor | None = None) -> torch.Tensor:
        inside = torch.ones(len(probability), dtype=torch.bool) if in_context is None else in_context
        cut = torch.where(inside, self.get(direction, True).threshold, self.get(direction, False).threshold)
        return probability >= cut

    def save_pretrained(self, directory: str | Path) -> None:
        fields = {"labels": self.labels, "features": list(FEATURES), "context_features": list(CONTEXT_FEATURES)}
        fields["models"] = {d: {m: asdict(f) for m, f in modes.items()} for d, modes in self.models.items()}
        fields.update(baselines=self.baselines, training=self.training)
        with atomic_bundle_dir(directory) as d:
            write_side_file(d / MODELS_FILE, MODELS_KIND, fields)
            write_config(d, KIND, {"game": "driving", "directions": sorted(self.models)})

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> DrivingFaithfulness:
        """The bundle at `directory`; `BundleError` naming the file for another kind, a newer
        format, a file changed after saving, or models that do not fit the features."""
        d = Path(directory)
        check_header(d / CONFIG_FILE, read_json(d / CONFIG_FILE), KIND)
        path = d / MODELS_FILE
        data = read_side_file(path, MODELS_KIND)
        names = (tuple(data.get("features", ())), tuple(data.get("context_features", ()))) if isinstance(data, dict) else None
        if names != (FEATURES, CONTEXT_FEATURES):
            raise BundleError(f"{path}: features {names!r} are not this version's {list(FEATURES)} + {list(CONTEXT_FEATURES)}")
        try:
            models = {direction: _modes(direction, modes) for direction, modes in data["models"].items()}
            baselines = {k: {n: float(v) for n, v in b.items()} for k, b in data["baselines"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise BundleError(f"{path}: bad faithfulness model ({type(e).__name__}: {e})") from None
        return cls(models, str(data.get("labels", "")), baselines, dict(data.get("training", {})))


def _modes(direction: str, modes: dict) -> dict[str, FlagModel]:
    if direction not in DIRECTIONS or set(modes) != set(MODES):
        raise ValueError(f"expected directions {DIRECTIONS} with modes {MODES}, got {direction!r}: {sorted(modes)}")
    out = {}
    for mode, m in modes.items():
        out[mode] = FlagModel(Logistic(**m["logistic"]), float(m["threshold"]), float(m["precision"]), int(m["rounds"]))
        want = len(FEATURES) + (len(CONTEXT_FEATURES) if mode == "in_context" else 0)
        if len(out[mode].logistic.weights) != want:
            raise ValueError(f"{direction}.{mode}: {len(out[mode].logistic.weights)} weights for {want} features")
    return out


def load_optional(driving_folder: str | Path) -> DrivingFaithfulness | None:
    """The run's faithfulness bundle (`FOLDER` under its driving folder), None when it has none."""
    d = Path(driving_folder) / FOLDER
    return DrivingFaithfulness.from_pretrained(d) if (d / CONFIG_FILE).is_file() else None


def with_probability(
    results: list[Translation], reading: Reading, state: DriveState, model: DrivingFaithfulness | None, direction: str
) -> list[Translation]:
    """`results` (the speaker as car 0 of `state`) with `faithfulness` and `faithful` from `model`
    (unchanged without one): in context where the partner car is known and still driving."""
    if model is None:
        return results
    in_context = torch.from_numpy(~state.done[:, 1])
    prob = model.probability(direction, torch.cat([reading.features(), context_features(state, 0)], 1), in_context)
    flags = model.flag(direction, prob, in_context)
    return [replace(r, faithfulness=p, faithful=f) for r, p, f in zip(results, prob.tolist(), flags.tolist())]
