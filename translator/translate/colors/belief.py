"""The belief-matching translator (Andreas et al. 2017; docs/method.md §5), both directions.

A message means what it makes a listener believe about the hidden state (which colour is the
target): each direction picks the candidate whose beliefs match the source's.

- Context-free (`colors=None`): beliefs compared over K contexts sampled from the training games,
  weighted by how plausible the message is there, `w(c) ∝ p(z | c)^α`; many candidates are first
  ranked against a low-rank fit of their belief table (`prerank.py`), the best few scored exactly.
- In context: the live context alone; a bilinear stand-in for the listener shortlists candidates.
- Naturalness prior: among candidates within `prior_margin` of the best divergence, the one
  minimising `divergence − prior_weight · naturalness` (English speaker log-likelihood).

Everything independent of the input (contexts, candidate beliefs and encodings, the message pool's
log-probabilities) is precomputed at build time (`training/colors/translators.py`) and saved (layout:
`parts.py`), so translating a batch is a few matrix products (`matching.py`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from translator.games.beliefs import CRITERIA, choose
from translator.games.colors.inputs import check_colors
from translator.models.channels import ChannelConfig, check_message
from translator.models.colors.english import EnglishModels
from translator.models.colors.message_model import (
    ContextGrid,
    MessageModel,
    beliefs_from_log_probs,
    most_likely_messages,
    row_log_probs,
)
from translator.models.colors.prerank import BilinearRanker, LowRankDivergence
from translator.storage.bundle import BundleError
from translator.translate import faithfulness as faith
from translator.translate.colors.parts import ConsultsEnglish, load_translator, save_translator
from translator.translate.colors.registry import BELIEF_KIND
from translator.translate.matching import CandidateBeliefs, divergence, pointwise_divergence
from translator.translate.translations import Translations, flag

KIND = BELIEF_KIND
TABLES = ("contexts", "cand_beliefs", "cand_encodings", "cand_naturalness", "messages", "msg_log_probs")


IN_CONTEXT_ELEMENTS = 1 << 21  # in-context batches: rows x 3 x candidates ranked at once (8 MB of floats)


@dataclass
class BeliefTranslatorConfig:
    channel: dict
    # criterion, α and margin were chosen on held-out *training* games (docs/decisions.md)
    criterion: str = "symmetric"  # kl = KL(source ‖ candidate), reverse_kl, symmetric
    plausibility: float = 1.0  # α in w(c) ∝ p(z | c)^α (0 weighs all contexts equally)
    prior_weight: float = 1.0  # naturalness prior weight (0 = plain matching)
    prior_margin: float = 0.02  # nats above the best divergence still eligible under the prior
    # in context: candidates ranked by the bilinear stand-in (of this rank), the best `shortlist`
    # re-scored by the listener (sizes: docs/decisions.md)
    shortlist: int = 8
    prerank_rank: int = 32
    # context-free, with more than `context_free_shortlist` candidates: all ranked against a rank
    # `context_free_rank` fit of their table, the best `context_free_shortlist` scored exactly
    # (0 = score every candidate)
    context_free_rank: int = 128
    context_free_shortlist: int = 64
    to_neuralese_contexts: int = 64  # contexts used for context-free English → neuralese
    # In context, English → neuralese also considers the pooled self-play messages (continuous).
    # Off: the pool's soft messages match soft English beliefs and then mislead the listener.
    in_context_pool: bool = False
    alternatives: int = 3
    # faithfulness thresholds per direction and mode, calibrated on held-out training games
    thresholds: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion {self.criterion!r} is unknown; valid: {', '.join(CRITERIA)}")

    def threshold(self, direction: str, in_context: bool) -> float | None:
        return self.thresholds.get(direction, {}).get("in_context" if in_context else "context_free")

    def message_floor(self, in_context: bool) -> float | None:
        """Lowest `log p(m)` of a message still translated (calibrated like the thresholds)."""
        return self.thresholds.get("message_log_prob", {}).get("in_context" if in_context else "context_free")


class BeliefTranslator(ConsultsEnglish):
    name = "belief"

    def __init__(self, config: BeliefTranslatorConfig, english: EnglishModels, message_model: MessageModel,
                 tables: dict[str, torch.Tensor], candidates: list[str], training: dict[str, Any] | None = None,
                 faithfulness: faith.Faithfulness | None = None):
        missing = [k for k in TABLES if k not in tables]
        if missing:
            raise ValueError(f"tables missing: {', '.join(missing)}")
        self.config, self.english, self.message_model = config, english, message_model
        self.channel = ChannelConfig.from_dict(config.channel)
        self.tables, self.candidates = tables, candidates
        self.training = training or {}
        self.faithfulness = faithfulness  # None: the divergence thresholds flag (a bundle built before it)
        u, k = len(candidates), len(tables["contexts"])
        if tables["cand_beliefs"].shape != (u, k, 3) or tables["msg_log_probs"].shape[1:] != (k, 3):
            raise ValueError(f"tables do not fit {u} candidates and {k} contexts")
        self._prepare()

    def _prepare(self) -> None:
        """What every call would otherwise recompute: candidate logs and entropies, the candidates'
        context-free listener parts, the in-context ranker, and (continuous) the speaker's means in
        the stored contexts."""
        self._cands = CandidateBeliefs(self.tables["cand_beliefs"])
        self._cf_ranker = self._context_free_ranker()
        with torch.no_grad():
            self.english.listener.eval()
            self._cand_parts = self.english.listener.utterance_parts(self.tables["cand_encodings"])
            self._ranker = BilinearRanker(self.tables["cand_beliefs"], self.english.encode_colors(self.tables["contexts"]),
                                          self.english.listener.config.temperature, self.config.prerank_rank)
            self._context_grid = ContextGrid(self.message_model, self.tables["contexts"])

    def _context_free_ranker(self) -> LowRankDivergence | None:
        """The low-rank stand-in for the candidate table, fitted to the pooled agent messages'
        vectors; None where scoring every candidate is as cheap (few candidates) or it is off."""
        c, table = self.config, self._cands.columns(self.config.criterion)
        if not 0 < c.context_free_rank < min(table.shape) or not 0 < c.context_free_shortlist < len(table):
            return None
        lp = self.tables["msg_log_probs"]
        _, samples = self._cands.source_parts(beliefs_from_log_probs(lp), self.context_weights(lp), c.criterion)
        return LowRankDivergence(table, samples, c.context_free_rank)

    # -- bundle -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        extra = {faith.FILE: faith.to_bytes(self.faithfulness)} if self.faithfulness is not None else {}
        save_translator(directory, KIND, asdict(self.config), self.english, self.message_model, self.tables, self.candidates,
                        self.training, extra)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> BeliefTranslator:
        config, english, model, tables, texts, training = load_translator(directory, KIND, TABLES)
        faithfulness = faith.load(directory)
        try:
            config = BeliefTranslatorConfig(**config)
            if model.channel != ChannelConfig.from_dict(config.channel):
                raise ValueError("the message model's channel does not match the translator's")
            return cls(config, english, model, tables, texts, training, faithfulness)
        except (TypeError, ValueError) as e:
            raise BundleError(f"{directory}: {e}") from None

    # -- neuralese → English ----------------------------------------------------------------
    def context_log_probs(self, messages: torch.Tensor) -> torch.Tensor:
        """`log p(m | c_k, x)` over the stored contexts, `(N, K, 3)`."""
        return self._context_grid(messages)

    def message_beliefs(self, messages: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Beliefs `(N, K, 3)` of messages over the stored contexts and their context weights `(N, K)`."""
        lp = self.context_log_probs(messages)
        return beliefs_from_log_probs(lp), self.context_weights(lp)

    def message_log_prob(self, messages: torch.Tensor, colors: torch.Tensor | None = None) -> torch.Tensor:
        """`log p(m)`, `(N,)`: how likely the agents are to send each message, averaged over the stored
        contexts and targets (or over the targets of the given contexts). A message the agents would
        not send has no meaning to translate, however well its (vague) belief matches a candidate."""
        lp = self.context_log_probs(messages) if colors is None else row_log_probs(self.message_model, messages, colors)
        return _mean_prob_log(lp)

    def context_weights(self, log_probs: torch.Tensor) -> torch.Tensor:
        """`w(c) ∝ p(m | c)^α` with `p(m | c) = mean_x p(m | c, x)`, normalised over contexts."""
        return torch.softmax(self.config.plausibility * torch.logsumexp(log_probs, dim=-1), dim=-1)

    def _context_free_div(self, messages: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, Any]:
        """Divergences `(B, U)` from every candidate, or `(B, S)` from each row's shortlist `(B, S)`
        of candidates (with many candidates; None otherwise), the messages' `log p(m)` `(B,)`, and
        a function of the picked candidates' indices `(B,)` giving the faithfulness features."""
        lp = self.context_log_probs(messages)
        source, weights, criterion = beliefs_from_log_probs(lp), self.context_weights(lp), self.config.criterion

        def features(pick: torch.Tensor) -> torch.Tensor:
            return faith.agreement_features(source, self.tables["cand_beliefs"][pick], weights)

        if self._cf_ranker is None:
            return self._cands.source_weighted(source, weights, criterion), None, _mean_prob_log(lp), features
        const, v = self._cands.source_parts(source, weights, criterion)
        top = self._cf_ranker.shortlist(v, self.config.context_free_shortlist)
        return self._cands.source_weighted_at(const, v, top, criterion), top, _mean_prob_log(lp), features

    def _prior(self, prior: bool) -> float:
        return self.config.prior_weight if prior else 0.0

    @torch.no_grad()
    def to_english(self, messages, colors=None, prior: bool = True, batch_size: int | None = None) -> Translations:
        """Translate agent messages to English; in context when `colors (N, 3, 3)` is given.

        `batch_size`: rows per step (default 512 context-free, where bigger products pay; in
        context as many as keep the ranker's `(rows, 3, candidates)` tensors near 8 MB, at most 256:
        256 rows for the demo's 119 candidates, 1.3x faster than 64; 64 rows for 10,000)."""
        m = check_message(self.channel, messages)
        if colors is not None:
            colors = check_colors(colors, len(m))
        batch_size = batch_size or (512 if colors is None else max(16, min(256, IN_CONTEXT_ELEMENTS // (3 * len(self.candidates)))))
        nat = self.tables["cand_naturalness"]
        idx, div, alts, alt_div, log_pm, feats = [], [], [], [], [], []
        flag_model = self.faithfulness.get("to_english", colors is not None) if self.faithfulness else None
        for s in range(0, len(m), batch_size):
            if colors is None:
                d, top, lp, features = self._context_free_div(m[s : s + batch_size])
            else:
                d, top, lp, features = self._in_context_div(m[s : s + batch_size], colors[s : s + batch_size])
            ch = choose(d, nat if top is None else nat[top], self._prior(prior), self.config.prior_margin, self.config.alternatives)
            pick = ch.index if top is None else top.gather(1, ch.index[:, None]).squeeze(1)
            alt = ch.alternatives if top is None else top.gather(1, ch.alternatives)
            idx.append(pick), div.append(ch.divergence), alts.append(alt), alt_div.append(ch.alternative_divergence), log_pm.append(lp)
            if flag_model is not None:
                feats.append(features(pick))
        idx, div, alts = torch.cat(idx) if idx else torch.zeros(0, dtype=torch.long), _cat(div), torch.cat(alts) if alts else torch.zeros(0, 0, dtype=torch.long)
        probability = flag_model.probability(torch.cat(feats)) if flag_model is not None and feats else None
        if flag_model is not None:
            faithful = flag_model.flag(probability) if probability is not None else torch.ones(0, dtype=torch.bool)
        else:
            faithful = flag(div, self.config.threshold("to_english", colors is not None))
        floor = self.config.message_floor(colors is not None)  # a message the agents would not send has no meaning to translate
        if floor is not None and len(m):
            faithful &= torch.cat(log_pm) >= floor
        return Translations(
            [self.candidates[i] for i in idx.tolist()],
            div,
            faithful,
            [[self.candidates[j] for j in row] for row in alts.tolist()],
            _cat(alt_div),
            probability,
        )

    def _in_context_div(self, messages: torch.Tensor, colors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
        """Divergences `(B, S)` of each row's shortlist `(B, S)` of candidates in the row's context
        (all candidates ranked by the bilinear stand-in, the best `shortlist` scored by the
        listener), the messages' `log p(m)` there `(B,)`, and a function of the picked candidates'
        indices `(B,)` giving the faithfulness features."""
        lp = row_log_probs(self.message_model, messages, colors)
        source = beliefs_from_log_probs(lp)  # (B, 3)
        g = self.english.encode_colors(colors)
        rough = self._ranker.divergence(source, g, self.config.criterion)  # (B, U)
        top = rough.topk(min(self.config.shortlist, rough.shape[1]), dim=1, largest=False).indices
        a, p = self._cand_parts
        div = pointwise_divergence(source[:, None], self.english.listen_parts((a[top], p[top]), g), self.config.criterion)

        def features(pick: torch.Tensor) -> torch.Tensor:
            return faith.agreement_features(source, self.english.listen_parts((a[pick, None], p[pick, None]), g)[:, 0])

        return div, top, _mean_prob_log(lp), features

    # -- English → neuralese ----------------------------------------------------------------
    @torch.no_grad()
    def to_neuralese(self, texts, colors=None, batch_size: int = 256) -> Translations:
        """Translate English utterances to agent messages; in context when `colors` is given."""
        texts = list(texts)
        if not texts:
            empty = self.tables["messages"][:0]
            return Translations(empty, torch.zeros(0), torch.ones(0, dtype=torch.bool), empty[:, None], torch.zeros(0, 0))
        if colors is not None:
            colors = check_colors(colors, len(texts))
        enc = self.english.encode_utterances(texts)
        if colors is not None:
            return self._to_neuralese_in_context(self.english.listen_encoded(enc, colors), colors, batch_size)
        k = self.config.to_neuralese_contexts
        contexts = self.tables["contexts"][:k]
        msg_lp = self.tables["msg_log_probs"][:, :k]
        cand, weights = beliefs_from_log_probs(msg_lp), self.context_weights(msg_lp)
        parts, feats = [], []
        for s in range(0, len(texts), batch_size):
            source = self.english.listen_encoded(enc[s : s + batch_size, None], contexts[None])  # (B, K, 3)
            d = divergence(source, cand, weights, "candidate", self.config.criterion)
            parts.append(choose(d, alternatives=self.config.alternatives))
            feats.append(faith.agreement_features(source, cand[parts[-1].index]))  # contexts weighed alike (faithfulness_reading)
        return self._neuralese_result(parts, self.tables["messages"], None, in_context=False, features=feats)

    def _to_neuralese_in_context(self, source: torch.Tensor, colors: torch.Tensor, batch_size: int) -> Translations:
        """Candidates: the agent's most likely message for each colour of the context, plus (with
        `in_context_pool`, for a continuous channel, where scoring is one product) the whole message
        pool. `source`: the utterances' beliefs `(N, 3)` in their contexts."""
        own = most_likely_messages(self.message_model, colors)  # (N, 3, ...)
        n = len(source)
        flat = own.reshape(n * 3, *own.shape[2:])
        own_lp = row_log_probs(self.message_model, flat, colors.repeat_interleave(3, dim=0)).reshape(n, 3, 3)
        pool = self.tables["messages"] if self.config.in_context_pool and not self.channel.discrete else None
        parts, feats = [], []
        for s in range(0, n, batch_size):  # the (rows, pool, 3) tensors stay small
            cand_lp = own_lp[s : s + batch_size]
            if pool is not None:
                mu = self.message_model.means(colors[s : s + batch_size])  # (B, 3, D)
                sq = (pool * pool).sum(-1)[None, :, None] - 2 * torch.einsum("md,nxd->nmx", pool, mu) + (mu * mu).sum(-1)[:, None]
                cand_lp = torch.cat([cand_lp, -sq / (2 * self.message_model.noise**2)], dim=1)  # constants cancel in the softmax
            beliefs = beliefs_from_log_probs(cand_lp)
            d = pointwise_divergence(source[s : s + batch_size, None], beliefs, self.config.criterion)
            parts.append(choose(d, alternatives=self.config.alternatives))
            picked = beliefs.gather(1, parts[-1].index[:, None, None].expand(-1, 1, 3))[:, 0]
            feats.append(faith.agreement_features(source[s : s + batch_size], picked))
        return self._neuralese_result(parts, pool, own, in_context=True, features=feats)

    def _neuralese_result(self, parts, pool, own, in_context: bool, features: list[torch.Tensor]) -> Translations:
        idx = torch.cat([p.index for p in parts])
        alts = torch.cat([p.alternatives for p in parts])
        div, alt_div = _cat([p.divergence for p in parts]), _cat([p.alternative_divergence for p in parts])

        def lookup(i: torch.Tensor) -> torch.Tensor:
            if own is None:
                return pool[i]
            rows = torch.arange(len(i)).reshape(-1, *([1] * (i.ndim - 1))).expand_as(i)
            from_own = own[rows, i.clamp(max=2)]
            if pool is None:
                return from_own
            from_pool = pool[(i - 3).clamp(min=0)]
            mask = (i < 3).reshape(*i.shape, *([1] * (from_own.ndim - i.ndim)))
            return torch.where(mask, from_own, from_pool)

        flag_model = self.faithfulness.get("to_neuralese", in_context) if self.faithfulness else None
        if flag_model is None:
            return Translations(lookup(idx), div, flag(div, self.config.threshold("to_neuralese", in_context)), lookup(alts), alt_div)
        probability = flag_model.probability(torch.cat(features))
        return Translations(lookup(idx), div, flag_model.flag(probability), lookup(alts), alt_div, probability)


def _mean_prob_log(log_probs: torch.Tensor) -> torch.Tensor:
    """`log` of the mean probability over all but the first dimension, `(N,)`."""
    return torch.logsumexp(log_probs.flatten(1), dim=1) - math.log(log_probs[0].numel())


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(parts) if parts else torch.zeros(0)
