"""Faithfulness: the calibrated probability that a listener acts on a translation as on its source.

Features compare two beliefs over the referents: the source's (what its own reader makes of it)
and the translation's (what the other side's reader makes of it). R→H: the agents' model of the
message against the consulted English listener `H_l` on the English; H→R: `H_l` on the utterance
against the agents' model of the translated message. In context they are read in the round's
colours; context-free (no colours) over the translator's stored contexts, weighted as the
translator weighs them, so a live context-free call still gets a probability.

A logistic regression per direction and mode (`Logistic`) maps the features to the probability;
`faithful` = probability ≥ a threshold chosen on held-out training games for `PRECISION`. The
models live in the bundle's side file `faithfulness.json` (`kind`, `format_version`), listed in
the bundle's hash map, so a changed file fails to load; a bundle without it falls back to the
divergence flag. Fitting: `training/faithfulness.py`; method and labels: docs/metrics.md.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from translator.models.logistic import Logistic
from translator.storage.atomic import atomic_write
from translator.storage.bundle import FILES_KEY, BundleError, read_json, reseal, write_config, write_json
from translator.storage.run_layout import CONFIG_FILE

FILE = "faithfulness.json"
KIND = "neuralese.faithfulness"
FORMAT_VERSION = 1
PRECISION = 0.95  # the `faithful` flag's target precision on held-out training games
FEATURES = ("logit_pick", "logit_agreement", "logit_source_max", "logit_translation_max", "log1p_divergence")
MODES = ("in_context", "context_free")
DIRECTIONS = ("to_english", "to_neuralese")
EPS = 1e-4


def agreement_features(source: torch.Tensor, translation: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """`(N, len(FEATURES))` from beliefs `(N, 3)` (in context) or `(N, K, 3)` over contexts with
    `weights (N, K)` summing to 1 (uniform when None).

    Per context: the translation reader's probability of the source reader's pick, the chance both
    readers pick the same referent, each reader's confidence, the symmetric KL between them;
    averaged over contexts, then as log-odds (the divergence as `log1p`)."""
    if source.ndim == 2:
        source, translation = source[:, None], translation[:, None]
    if source.shape != translation.shape or source.shape[-1] != 3:
        raise ValueError(
            f"beliefs: expected matching shapes (N, [K,] 3), got {tuple(source.shape)} and {tuple(translation.shape)}"
        )
    n, k = source.shape[:2]
    w = torch.full((n, k), 1.0 / k) if weights is None else weights / weights.sum(-1, keepdim=True)
    p, q = source.double().clamp_min(1e-8), translation.double().clamp_min(1e-8)
    pick = q.gather(-1, p.argmax(-1, keepdim=True)).squeeze(-1)
    parts = torch.stack([pick, (p * q).sum(-1), p.amax(-1), q.amax(-1), ((p - q) * (p.log() - q.log())).sum(-1)], -1)
    mean = (w.double()[..., None] * parts).sum(1)  # (N, 5)
    probs = mean[:, :4].clamp(EPS, 1 - EPS)
    return torch.cat([torch.log(probs / (1 - probs)), torch.log1p(mean[:, 4:])], -1).float()


@dataclass
class FlagModel:
    """One direction and mode: the regression, and the threshold of the `faithful` flag."""

    logistic: Logistic
    threshold: float
    precision: float  # the precision the threshold was chosen for
    rounds: int  # held-out rows it was fitted on

    def probability(self, features: torch.Tensor) -> torch.Tensor:
        return self.logistic.predict(features)

    def flag(self, probability: torch.Tensor) -> torch.Tensor:
        return probability >= self.threshold


@dataclass
class Faithfulness:
    """The flag models of one translator, `models[direction][mode]`, and how they were fitted."""

    models: dict[str, dict[str, FlagModel]]
    labels: str  # what the labels were, in words
    features: tuple[str, ...] = FEATURES

    def get(self, direction: str, in_context: bool) -> FlagModel | None:
        return self.models.get(direction, {}).get("in_context" if in_context else "context_free")

    def to_json(self) -> dict:
        return {
            "kind": KIND,
            "format_version": FORMAT_VERSION,
            "features": list(self.features),
            "labels": self.labels,
            "models": {d: {m: asdict(f) for m, f in modes.items()} for d, modes in self.models.items()},
        }

    @classmethod
    def from_json(cls, data: dict, path: Path) -> Faithfulness:
        if data.get("kind") != KIND:
            raise BundleError(f"{path}: holds a {data.get('kind')!r}, expected a {KIND!r}")
        if data.get("format_version") != FORMAT_VERSION:
            raise BundleError(
                f"{path}: format version {data.get('format_version')!r} is not supported (this version reads {FORMAT_VERSION})"
            )
        if tuple(data.get("features", ())) != FEATURES:
            raise BundleError(f"{path}: features {data.get('features')!r} are not this version's {list(FEATURES)}")
        models: dict[str, dict[str, FlagModel]] = {}
        try:
            for direction, modes in data["models"].items():
                if direction not in DIRECTIONS or not set(modes) <= set(MODES):
                    raise ValueError(f"unknown direction or mode in {direction!r}: {sorted(modes)}")
                models[direction] = {m: _flag_model(f) for m, f in modes.items()}
            return cls(models, str(data.get("labels", "")))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise BundleError(f"{path}: bad faithfulness model ({type(e).__name__}: {e})") from None


def _flag_model(d: dict) -> FlagModel:
    model = FlagModel(Logistic(**d["logistic"]), float(d["threshold"]), float(d["precision"]), int(d["rounds"]))
    if len(model.logistic.weights) != len(FEATURES):
        raise ValueError(f"{len(model.logistic.weights)} weights for {len(FEATURES)} features")
    return model


def to_bytes(model: Faithfulness) -> bytes:
    return (json.dumps(model.to_json(), indent=2, sort_keys=True) + "\n").encode("utf-8")


def load(directory: str | Path) -> Faithfulness | None:
    """The bundle's faithfulness models, or None when its hash map does not list `FILE` (a bundle
    built before them, or a file never sealed in); the hash itself was checked by the loader."""
    d = Path(directory)
    files = read_json(d / CONFIG_FILE).get(FILES_KEY)
    if not isinstance(files, dict) or FILE not in files:
        return None
    return Faithfulness.from_json(read_json(d / FILE), d / FILE)


def attach(directory: str | Path, model: Faithfulness) -> None:
    """Add (or replace) the faithfulness models of a saved bundle: the file is written atomically,
    then listed in the bundle's `config.json` with its sha256. Until that second write lands, the
    file is not listed and the bundle loads as one without it. A bundle of format 1 (no hash map)
    is sealed whole on the way: its `config.json` then records the sha256 of every file."""
    d = Path(directory)
    atomic_write(d / FILE, to_bytes(model))
    config = read_json(d / CONFIG_FILE)
    if not isinstance(config.get(FILES_KEY), dict):
        fields = {k: v for k, v in config.items() if k not in ("kind", "format_version", FILES_KEY)}
        write_config(d, config["kind"], fields)
        return
    config[FILES_KEY][FILE] = ""
    write_json(d / CONFIG_FILE, config)
    reseal(d)
