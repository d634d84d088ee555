"""Fit a belief translator's faithfulness models on held-out *training* games (never the evaluation games).

Labels (docs/metrics.md, "Faithfulness"), one per held-out round and translation:

- R→H: the Bayesian listener of the consulted English *speaker*, `p(x | u, c) ∝ H_s(u | c, x)`,
  reads the translation in the round's colours; the label is whether it picks the referent that
  the translator's model of the agents picks from the message. Not `H_l`: the translator chose
  the English to fit `H_l`, so `H_l` agrees with it by construction; not the evaluation listener.
- H→R: whether the agents' model picks, from the translated message in the round's colours, the
  round's target: what the person who said the utterance meant (the logged games).

Rows: the translator's own translations in each mode, plus (to cover what other translators say)
its translations from the other mode and random candidates, each read in the round. The flag's
threshold is chosen on the translator's own translations of that mode alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import Dataset

from translator.games.colors.record import PlayedRounds
from translator.models.colors.message_model import beliefs_from_log_probs, row_log_probs
from translator.models.logistic import fit_logistic
from translator.translate.colors.belief import BeliefTranslator
from translator.translate.colors.collection import load_collection
from translator.translate.colors.faithfulness_reading import english_features, neuralese_features
from translator.translate.faithfulness import PRECISION, Faithfulness, FlagModel, attach

LABELS = (
    "R→H: the consulted English speaker's Bayesian listener picks, from the translation in the round, what the agents' "
    "model picks from the message; H→R: the agents' model picks the round's target from the translated message. "
    "Held-out training games."
)


@dataclass
class FaithfulnessArgs:
    precision: float = PRECISION
    l2: float = 1e-3
    seed: int = 0  # which random candidates are read beside the translations
    augment: bool = True  # also fit on the other mode's translations and random candidates


def threshold_for_precision(prob: torch.Tensor, label: torch.Tensor, precision: float) -> float:
    """The lowest threshold `t` such that the rows with `prob ≥ t` are right at least `precision` of
    the time (1.0 when no threshold reaches it: nothing is flagged faithful but certainties)."""
    order = prob.argsort(descending=True)
    p, y = prob[order], label[order].double()
    running = y.cumsum(0) / torch.arange(1, len(y) + 1)
    last = p[1:] != p[:-1]  # cut only between distinct probabilities
    ok = (running >= precision) & torch.cat([last, torch.tensor([True])])
    if not ok.any():
        return 1.0
    return float(p[ok.nonzero().max()])


def _fit(features: list[torch.Tensor], labels: list[torch.Tensor], own: int, args: FaithfulnessArgs) -> FlagModel:
    """A model fitted on every part (the first `own` rows of the first are its own translations)."""
    parts = range(len(features)) if args.augment else range(1)
    logistic = fit_logistic(torch.cat([features[i] for i in parts]), torch.cat([labels[i] for i in parts]).double(), args.l2)
    prob = logistic.predict(features[0])
    return FlagModel(logistic, threshold_for_precision(prob, labels[0], args.precision), args.precision, own)


@torch.no_grad()
def fit_faithfulness(b: BeliefTranslator, held: Dataset | PlayedRounds, args: FaithfulnessArgs | None = None) -> Faithfulness:
    """The four models (two directions × in context / context-free) from held-out pairs."""
    args = args or FaithfulnessArgs()
    g = torch.Generator().manual_seed(args.seed)
    played = PlayedRounds.of(held)
    messages = played.messages.long() if b.channel.discrete else played.messages.float()
    colors, targets = played.colors, played.targets
    models: dict[str, dict[str, FlagModel]] = {"to_english": {}}

    pick = beliefs_from_log_probs(row_log_probs(b.message_model, messages, colors)).argmax(-1)
    own = {"in_context": b.to_english(messages, colors).translations, "context_free": b.to_english(messages).translations}
    rand = [b.candidates[i] for i in torch.randint(len(b.candidates), (len(messages),), generator=g).tolist()]
    labels = {k: b.english.bayesian_listen(v, colors).argmax(-1) == pick for k, v in (*own.items(), ("random", rand))}
    for mode, other in (("in_context", "context_free"), ("context_free", "in_context")):
        where = colors if mode == "in_context" else None
        texts = [own[mode], own[other], rand] if mode == "in_context" else [own[mode], rand]
        names = [mode, other, "random"] if mode == "in_context" else [mode, "random"]
        feats = [english_features(b, messages, t, where) for t in texts]
        models["to_english"][mode] = _fit(feats, [labels[n] for n in names], len(messages), args)

    said = [i for i, ids in enumerate(b.english.tokenizer.encode(played.utterances)) if ids]
    if said:
        texts, c, y = [played.utterances[i] for i in said], colors[said], targets[said]
        own_msg = {"in_context": b.to_neuralese(texts, c).translations, "context_free": b.to_neuralese(texts).translations}
        rand_msg = b.tables["messages"][torch.randint(len(b.tables["messages"]), (len(texts),), generator=g)]
        right = {
            k: beliefs_from_log_probs(row_log_probs(b.message_model, v, c)).argmax(-1) == y
            for k, v in (*own_msg.items(), ("random", rand_msg))
        }
        models["to_neuralese"] = {}
        for mode, other in (("in_context", "context_free"), ("context_free", "in_context")):
            where = c if mode == "in_context" else None
            names = [mode, other, "random"] if mode == "in_context" else [mode, "random"]
            msgs = {**own_msg, "random": rand_msg}
            feats = [neuralese_features(b, texts, msgs[n], where) for n in names]
            models["to_neuralese"][mode] = _fit(feats, [right[n] for n in names], len(texts), args)
    return Faithfulness(models, LABELS)


def calibrate_bundle(
    bundle: str | Path, pairs_dir: str | Path | None = None, args: FaithfulnessArgs | None = None
) -> Faithfulness:
    """Fit and attach the faithfulness models of a saved belief translator (one built before them):
    on the games it held out, from the pairs it was built from (its `training.json`) unless given."""
    from training.colors.translators import split_pairs

    b = BeliefTranslator.from_pretrained(bundle)
    pairs_dir = pairs_dir or b.training.get("pairs_dir")
    if not pairs_dir:
        raise ValueError(f"{bundle}: its training.json names no pairs directory; give the pairs it was built from")
    build = b.training.get("build", {})
    pairs, _ = load_collection(pairs_dir)
    _, held = split_pairs(pairs, build.get("val_fraction", 0.1), build.get("seed", 0))
    model = fit_faithfulness(b, held, args)
    attach(bundle, model)
    return model
