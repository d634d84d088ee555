"""How well the faithfulness probability predicts errors: AUROC, calibration error, the flag's accuracy.

`faithfulness_report(prob, correct, threshold, precision)` is what `metrics.json` holds under
`translation.<channel>.<translator>.<direction>.faithfulness`: the AUROC of the probability for
telling right translations from wrong ones (= for flagging errors by a low probability), the
expected calibration error over `ECE_BINS` equal-width bins of the probability, and the accuracy
of the translations flagged faithful (probability ≥ threshold) and of the rest.

`ChannelFaithfulness` gives every translator of a channel (belief, direct, seq2seq, random,
message-blind) its probability from the channel's belief translator's models, so the evaluation
scores them all the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata

from translator.translate.colors.faithfulness_reading import message_beliefs, text_beliefs
from translator.translate.faithfulness import FlagModel, agreement_features

ECE_BINS = 15


def auroc(score, positive) -> float | None:
    """Area under the ROC curve of `score` for `positive` (ties count half; the Mann-Whitney U);
    None when one class is absent."""
    s, y = np.asarray(score, dtype=np.float64), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return None
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_ece(prob, outcome, bins: int = ECE_BINS) -> float:
    """Σ_b |B_b|/N · |mean outcome − mean probability| over equal-width bins of the probability."""
    p, y = np.asarray(prob, dtype=np.float64), np.asarray(outcome, dtype=np.float64)
    if not len(p):
        return 0.0
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in np.unique(which):
        m = which == b
        total += m.sum() * abs(y[m].mean() - p[m].mean())
    return float(total / len(p))


def faithfulness_report(prob, correct, threshold: float, precision: float) -> dict:
    """`{auroc, ece, threshold, precision, flagged, accuracy_flagged, accuracy_unflagged, mean_probability}`;
    `flagged` is the share flagged faithful; an accuracy is None where no row falls on that side."""
    p, y = np.asarray(prob, dtype=np.float64), np.asarray(correct, dtype=bool)
    flagged = p >= threshold

    def acc(mask: np.ndarray) -> float | None:
        return float(y[mask].mean()) if mask.any() else None

    return {
        "auroc": auroc(p, y),
        "ece": binary_ece(p, y),
        "threshold": float(threshold),
        "precision": float(precision),
        "flagged": float(flagged.mean()) if len(p) else 0.0,
        "accuracy_flagged": acc(flagged),
        "accuracy_unflagged": acc(~flagged),
        "mean_probability": float(p.mean()) if len(p) else None,
    }


CHUNK = 2048  # rows per feature computation: over 256 contexts, the double-precision parts stay near 50 MB


class ChannelFaithfulness:
    """Faithfulness probabilities of any translator's output on one channel's evaluation rounds,
    from the channel's belief translator's models (`translator/translate/colors/faithfulness_reading.py`). Each
    source (the messages; the readable utterances) is read once and kept for every translator."""

    def __init__(self, b, messages: torch.Tensor, colors: torch.Tensor, utterances: list[str], usable: torch.Tensor):
        self.b, self.messages, self.colors, self.utterances, self.usable = b, messages, colors, utterances, usable
        self._sources: dict[tuple[str, bool], tuple[torch.Tensor, torch.Tensor | None]] = {}

    @classmethod
    def load(cls, channel_dir: Path, messages, colors, utterances, usable) -> ChannelFaithfulness | None:
        """None where the channel has no belief translator or it has no faithfulness models."""
        from translator.translate.colors.belief import BeliefTranslator

        path = channel_dir / "belief"
        if not (path / "config.json").is_file():
            return None
        b = BeliefTranslator.from_pretrained(path)
        return cls(b, messages, colors, utterances, usable) if b.faithfulness is not None else None

    def _source(self, direction: str, in_context: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = (direction, in_context)
        if key not in self._sources:
            b = self.b
            if direction == "to_english":
                self._sources[key] = message_beliefs(b, self.messages, self.colors if in_context else None)
            else:
                where = self.colors[self.usable] if in_context else None
                contexts = b.tables["contexts"][: b.config.to_neuralese_contexts]
                self._sources[key] = (text_beliefs(b, self.utterances, where, contexts), None)
        return self._sources[key]

    @torch.no_grad()
    def probability(self, direction: str, translations, in_context: bool) -> tuple[torch.Tensor, FlagModel]:
        """`(N,)` probabilities of the translations (texts to English; messages to neuralese, on the
        usable rows) and the model that gave them."""
        b = self.b
        model = b.faithfulness.get(direction, in_context)
        source, weights = self._source(direction, in_context)
        if direction == "to_english":
            target = text_beliefs(b, list(translations), self.colors if in_context else None, b.tables["contexts"])
        else:
            target, _ = message_beliefs(
                b, translations, self.colors[self.usable] if in_context else None, b.config.to_neuralese_contexts
            )
        feats = [
            agreement_features(source[s : s + CHUNK], target[s : s + CHUNK], None if weights is None else weights[s : s + CHUNK])
            for s in range(0, len(source), CHUNK)
        ]
        return model.probability(torch.cat(feats)), model

    def report(self, direction: str, translations, correct, in_context: bool) -> dict:
        prob, model = self.probability(direction, translations, in_context)
        return faithfulness_report(prob.numpy(), correct, model.threshold, model.precision)
