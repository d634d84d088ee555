"""What every translator returns: the translations of a batch with their divergences and flags.

Faithfulness (docs/method.md §5, docs/metrics.md): each translation carries the divergence between the
source's belief and the translation's and, where the translator has faithfulness models
(`translator/faithfulness.py`), the calibrated probability that a listener acts on it as on the
source. Below the probability's threshold (or, without one, above a divergence threshold) the
translation is flagged unfaithful ("untranslatable") rather than passed off as a confident gloss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Translations:
    """A batch of translations, in input order.

    `translations`: English texts (`list[str]`) or neuralese messages (tensor `(N, ...)`).
    `divergence` `(N,)`: the matching criterion between source and translation (nats; NaN for
    translators that do not compare beliefs). `faithful` `(N,)` bool: the faithfulness
    probability at or above its threshold, or (without one) the divergence within its threshold. `alternatives`: the next-best candidates per row (texts, or a tensor `(N, A, ...)`),
    with `alternative_divergence` `(N, A)`.
    """

    translations: list[str] | torch.Tensor
    divergence: torch.Tensor
    faithful: torch.Tensor
    alternatives: list[list[str]] | torch.Tensor
    alternative_divergence: torch.Tensor
    faithfulness: torch.Tensor | None = None  # (N,) probability a listener acts on it as on the source; None: not calibrated

    def __len__(self) -> int:
        return len(self.divergence)

    def records(self) -> list[dict]:
        """One JSON-ready dict per row (what the streaming CLI and the HTTP service send)."""
        out = []
        for i in range(len(self)):
            t = self.translations[i]
            alts = self.alternatives[i]
            out.append(
                {
                    "translation": t if isinstance(t, str) else t.tolist(),
                    "divergence": float(self.divergence[i]),
                    "faithful": bool(self.faithful[i]),
                    "faithfulness": None if self.faithfulness is None else float(self.faithfulness[i]),
                    "alternatives": [
                        {"translation": a if isinstance(a, str) else a.tolist(), "divergence": float(d)}
                        for a, d in zip(alts, self.alternative_divergence[i])
                    ],
                }
            )
        return out


def flag(divergence: torch.Tensor, threshold: float | None) -> torch.Tensor:
    """Faithful where the divergence is within the threshold (all, when none was calibrated)."""
    if threshold is None:
        return torch.ones(len(divergence), dtype=torch.bool)
    return divergence <= threshold
