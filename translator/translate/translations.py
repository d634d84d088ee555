"""What every translator returns: a batch (`Translations`) and its rows (`Translation`), one JSON form.

Faithfulness (docs/method.md §5, docs/metrics.md): each translation carries the divergence between
the source's belief and the translation's and, where the translator has faithfulness models
(`translator/translate/faithfulness.py`), the calibrated probability that a listener acts on it as on the
source. Below the probability's threshold (or, without one, above a divergence threshold) the
translation is flagged unfaithful ("untranslatable") rather than passed off as a confident gloss.

`Translations` holds a batch as tensors, for evaluation; `Translations.rows()` gives one
`Translation` per row, whose `to_json()` is what the Python API returns and the streaming CLI and
the HTTP service send (strict JSON: a number that is not finite is `null`). The service's response
schema is generated from the `Translation` dataclass (`field_doc` describes a field).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

Text = str | list[float] | list[int]  # English text, or an agent message (continuous floats, discrete symbol ids)


def field_doc(description: str, **kwargs: Any) -> Any:
    """A dataclass field with a description (the service's schema shows it)."""
    return field(metadata={"description": description}, **kwargs)


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass
class Alternative:
    """A runner-up translation of a row, with its divergence."""

    translation: Text = field_doc("English text, or the agent message")
    divergence: float | None = field_doc("source-translation belief divergence (nats); null when not compared")

    def to_json(self) -> dict[str, Any]:
        return {"translation": self.translation, "divergence": self.divergence}


@dataclass
class Translation:
    """One translated row. `divergence` is None for translators that do not compare beliefs (direct, seq2seq).

    `faithfulness`: the calibrated probability that a listener acts on the translation as on the
    source (docs/metrics.md); None for a bundle without faithfulness models. `faithful` False means
    untranslatable: the probability is below the threshold chosen on held-out games (without one,
    the divergence is above its threshold).
    """

    translation: Text = field_doc("English text, or the agent message")
    divergence: float | None = field_doc(
        "source-translation belief divergence (nats); null for translators that do not compare beliefs"
    )
    faithful: bool = field_doc("false = untranslatable: faithfulness below its threshold (without one: divergence above its threshold)")
    alternatives: list[Alternative] = field_doc("the next-best translations, best first", default_factory=list)
    faithfulness: float | None = field_doc(
        "calibrated probability that a listener acts on the translation as on the source; null without faithfulness models",
        default=None,
    )

    @property
    def untranslatable(self) -> bool:
        return not self.faithful

    def to_json(self) -> dict[str, Any]:
        """The row as JSON values (strict JSON: no NaN), as the API, the stream and the service give it."""
        return {
            "translation": self.translation,
            "divergence": self.divergence,
            "faithful": self.faithful,
            "faithfulness": self.faithfulness,
            "alternatives": [a.to_json() for a in self.alternatives],
        }


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

    @classmethod
    def plain(cls, translations: list[str] | torch.Tensor) -> Translations:
        """Translations of a translator that compares no beliefs: no divergence (NaN), all
        faithful, no alternatives."""
        n = len(translations)
        alts = [[] for _ in range(n)] if isinstance(translations, list) else translations[:, None][:, :0]
        return cls(translations, torch.full((n,), float("nan")), torch.ones(n, dtype=torch.bool), alts, torch.zeros(n, 0))

    def rows(self) -> list[Translation]:
        """One `Translation` per row, with Python values (a NaN divergence becomes None)."""
        div = self.divergence.tolist()
        faithful = self.faithful.tolist()
        alt_div = self.alternative_divergence.tolist()
        trans = self.translations if isinstance(self.translations, list) else self.translations.tolist()
        alts = self.alternatives if isinstance(self.alternatives, list) else self.alternatives.tolist()
        prob = [None] * len(div) if self.faithfulness is None else self.faithfulness.tolist()
        return [
            Translation(trans[i], _finite_or_none(div[i]), bool(faithful[i]),
                        [Alternative(a, _finite_or_none(d)) for a, d in zip(alts[i], alt_div[i])],
                        None if prob[i] is None else _finite_or_none(prob[i]))
            for i in range(len(div))
        ]  # fmt: skip


def flag(divergence: torch.Tensor, threshold: float | None) -> torch.Tensor:
    """Faithful where the divergence is within the threshold (all, when none was calibrated)."""
    if threshold is None:
        return torch.ones(len(divergence), dtype=torch.bool)
    return divergence <= threshold
