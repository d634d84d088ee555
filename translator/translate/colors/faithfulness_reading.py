"""Faithfulness features of any translation, from a belief translator's models.

The belief translator computes its own features while it translates (the beliefs are at hand).
These functions compute the same features for a translation from anywhere (direct, seq2seq,
random, a person's own words): the source and the translation are read afresh by the translator's
message model and its English listener, in the rows' colours or over its stored contexts. The
`*_beliefs` parts are separate so that an evaluation reads each source once for many translators.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from translator.models.colors.message_model import beliefs_from_log_probs, row_log_probs
from translator.translate.faithfulness import FEATURES, agreement_features

BATCH = 512


def text_beliefs(
    b, texts: Sequence[str], colors: torch.Tensor | None = None, contexts: torch.Tensor | None = None
) -> torch.Tensor:
    """`H_l` beliefs of each text: `(N, 3)` in its row's colours `(N, 3, 3)`, or `(N, K, 3)` over
    `contexts (K, 3, 3)`. Each distinct text is encoded (and, over contexts, read) once."""
    uniq = list(dict.fromkeys(texts))
    pos = {t: i for i, t in enumerate(uniq)}
    index = torch.tensor([pos[t] for t in texts], dtype=torch.long)
    enc = b.english.encode_utterances(uniq)
    if colors is not None:
        return b.english.listen_encoded(enc[index], colors)
    beliefs = torch.cat([b.english.listen_encoded(enc[s : s + 64, None], contexts[None]) for s in range(0, len(enc), 64)])
    return beliefs[index]


def message_beliefs(
    b, messages: torch.Tensor, colors: torch.Tensor | None, contexts: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The agents' model's beliefs from each message and the context weights: `(N, 3)` and None in
    the rows' colours; `(N, K, 3)` and `(N, K)` over the first `contexts` stored contexts (default
    all), weighted by the message's plausibility there. Each distinct message is read once."""
    if colors is not None:
        return beliefs_from_log_probs(row_log_probs(b.message_model, messages, colors)), None
    uniq, inverse = torch.unique(messages, dim=0, return_inverse=True)
    if contexts is None:  # the translator's own grid over all its contexts
        parts = [b.context_log_probs(uniq[s : s + BATCH]) for s in range(0, len(uniq), BATCH)]
    else:
        parts = [
            b.message_model.log_prob_grid(uniq[s : s + BATCH], b.tables["contexts"][:contexts])
            for s in range(0, len(uniq), BATCH)
        ]
    lp = torch.cat(parts)[inverse]
    return beliefs_from_log_probs(lp), b.context_weights(lp)


@torch.no_grad()
def english_features(b, messages: torch.Tensor, texts: Sequence[str], colors: torch.Tensor | None) -> torch.Tensor:
    """R→H features `(N, F)` of English `texts` translating agent `messages`; context-free when
    `colors` is None (over the translator's stored contexts, weighted by the message's plausibility)."""
    if not len(texts):
        return torch.zeros(0, len(FEATURES))
    source, weights = message_beliefs(b, messages, colors)
    target = text_beliefs(b, texts, colors, b.tables["contexts"])
    return agreement_features(source, target, weights)


@torch.no_grad()
def neuralese_features(b, texts: Sequence[str], messages: torch.Tensor, colors: torch.Tensor | None) -> torch.Tensor:
    """H→R features `(N, F)` of agent `messages` translating English `texts`; context-free when
    `colors` is None (over the contexts the translator uses for English → neuralese, uniformly)."""
    if not len(texts):
        return torch.zeros(0, len(FEATURES))
    target, _ = message_beliefs(b, messages, colors, b.config.to_neuralese_contexts)
    return agreement_features(text_beliefs(b, texts, colors, b.tables["contexts"][: b.config.to_neuralese_contexts]), target)
