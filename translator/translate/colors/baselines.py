"""Baseline translators: direct (co-occurrence, the paper's baseline) and random.

Direct translation pairs messages and utterances of the same rounds (docs/method.md §5) and
translates by co-occurrence, as statistical MT would: to English, `argmax_u Σ_i p(z | c_i) [u_i = u]`
over the training rounds, `p(z | c) = mean_x p(z | c, x)` from the message model; to neuralese,
among the rounds whose utterances are most like `u` (listener encodings, cosine), the agent message
that co-occurs most. It ignores what a listener would *do* with the words, which is why belief
matching beats it when agents and people use different strategies.

Random: a seeded uniform draw of a corpus utterance or pooled agent message, the floor.
Neither compares beliefs, so their divergence is NaN and every translation counts as faithful."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from translator.models.channels import ChannelConfig, check_message
from translator.models.colors.english import EnglishModels
from translator.models.colors.message_model import ContextGrid, MessageModel
from translator.storage.bundle import BundleError
from translator.translate.colors.parts import ConsultsEnglish, load_translator, save_translator
from translator.translate.colors.registry import DIRECT_KIND
from translator.translate.translations import Translations

RANDOM_KIND = "neuralese.random_translator"
DIRECT_TABLES = ("contexts", "messages", "encodings", "utterance_ids")


@dataclass
class DirectConfig:
    channel: dict
    neighbours: int = 32  # rounds consulted for English → neuralese
    alternatives: int = 3


def _nan(n: int) -> torch.Tensor:
    return torch.full((n,), float("nan"))


class DirectTranslator(ConsultsEnglish):
    name = "direct"

    def __init__(self, config: DirectConfig, english: EnglishModels, message_model: MessageModel, tables: dict[str, torch.Tensor],
                 texts: list[str], training: dict[str, Any] | None = None):
        self.config, self.english, self.message_model, self.tables, self.texts = config, english, message_model, tables, texts
        self.channel = ChannelConfig.from_dict(config.channel)
        self.training = training or {}
        ids = tables["utterance_ids"]
        if len(ids) != len(tables["contexts"]) or (len(ids) and int(ids.max()) >= len(texts)):
            raise ValueError("direct tables: utterance ids do not fit the rounds and texts")
        self.round_log_probs = ContextGrid(message_model, tables["contexts"])  # log p(m | c_i, x), (N, R, 3)

    def save_pretrained(self, directory: str | Path) -> None:
        save_translator(directory, DIRECT_KIND, asdict(self.config), self.english, self.message_model, self.tables, self.texts, self.training)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> DirectTranslator:
        config, english, model, tables, texts, training = load_translator(directory, DIRECT_KIND, DIRECT_TABLES)
        try:
            return cls(DirectConfig(**config), english, model, tables, texts, training)
        except (TypeError, ValueError) as e:
            raise BundleError(f"{directory}: {e}") from None

    @torch.no_grad()
    def to_english(self, messages, colors=None, batch_size: int = 256) -> Translations:
        """Co-occurrence translation; `colors` is accepted for a uniform interface and not used."""
        m = check_message(self.channel, messages)
        if self.channel.discrete and len(m):  # few distinct messages: translate each once
            uniq, inverse = torch.unique(m, dim=0, return_inverse=True)
            if len(uniq) < len(m):
                t = self.to_english(uniq, batch_size=batch_size)
                alts = [t.alternatives[i] for i in inverse.tolist()]
                return Translations([t.translations[i] for i in inverse.tolist()], t.divergence[inverse], t.faithful[inverse],
                                    alts, t.alternative_divergence[inverse])
        ids = self.tables["utterance_ids"].repeat_interleave(3)  # of (round, target) pairs, as in `flat_relative`
        u = len(self.texts)
        picks, alts = [], []
        for s in range(0, len(m), batch_size):
            lp = self.round_log_probs.flat_relative(m[s : s + batch_size])  # (B, 3R), up to a constant per row
            # Σ_{i: u_i = u} Σ_x p(z | c_i, x), scaled by the row's largest term: a scatter-add of
            # (round, target) pairs onto their utterances
            score = torch.zeros(len(lp), u).index_add_(1, ids, lp.sub_(lp.max(dim=1, keepdim=True).values).exp_())
            top = score.topk(min(1 + self.config.alternatives, u), dim=1).indices
            picks.append(top[:, 0])
            alts.append(top[:, 1:])
        if not picks:  # an empty batch
            return Translations([], _nan(0), torch.ones(0, dtype=torch.bool), [], torch.zeros(0, 0))
        pick, alt = torch.cat(picks), torch.cat(alts)
        n = len(m)
        return Translations([self.texts[i] for i in pick.tolist()], _nan(n), torch.ones(n, dtype=torch.bool),
                            [[self.texts[j] for j in row] for row in alt.tolist()], torch.full(tuple(alt.shape), float("nan")))

    @torch.no_grad()
    def to_neuralese(self, texts, colors=None, batch_size: int = 256) -> Translations:
        texts = list(texts)
        enc = F.normalize(self.english.encode_utterances(texts), dim=-1)
        corpus = F.normalize(self.tables["encodings"], dim=-1)
        msgs, ctx = self.tables["messages"], self.tables["contexts"]
        k = min(self.config.neighbours, len(corpus))
        out = []
        for s in range(0, len(texts), batch_size):
            near = (enc[s : s + batch_size] @ corpus.T).topk(k, dim=1).indices  # (B, k) rounds
            if self.channel.discrete:
                out.append(torch.stack([_mode(msgs[row]) for row in near]))
            else:  # the neighbours' message that is most likely across the neighbours' contexts
                rounds, where = near.unique(return_inverse=True)  # neighbours overlap: each context once
                mu = self.message_model.means(ctx[rounds])[where]  # (B, k, 3, D)
                z = msgs[near]  # (B, k, D) candidates
                # ‖z - μ‖² for every (candidate, context, target): (B, cand, ctx, 3), as one batched product
                sq = (z * z).sum(-1)[:, :, None, None] - 2 * torch.einsum("bcd,bkxd->bckx", z, mu) + (mu * mu).sum(-1)[:, None]
                score = torch.logsumexp(-sq / (2 * self.message_model.noise**2), dim=(2, 3))
                out.append(z[torch.arange(len(near)), score.argmax(1)])
        result = torch.cat(out) if out else msgs[:0]
        n = len(texts)
        return Translations(result, _nan(n), torch.ones(n, dtype=torch.bool), result[:, None][:, :0], torch.zeros(n, 0))


def _mode(rows: torch.Tensor) -> torch.Tensor:
    uniq, counts = torch.unique(rows, dim=0, return_counts=True)
    return uniq[counts.argmax()]


class RandomTranslator:
    """A uniformly random corpus utterance or pooled agent message, seeded per call."""

    name = "random"

    def __init__(self, texts: list[str], messages: torch.Tensor, channel: ChannelConfig, seed: int = 0):
        self.texts, self.messages, self.channel, self.seed = texts, messages, channel, seed

    def _pick(self, n: int, size: int) -> torch.Tensor:
        return torch.randint(size, (n,), generator=torch.Generator().manual_seed(self.seed))

    def to_english(self, messages, colors=None) -> Translations:
        n = len(check_message(self.channel, messages))
        idx = self._pick(n, len(self.texts)).tolist()
        return Translations([self.texts[i] for i in idx], _nan(n), torch.ones(n, dtype=torch.bool), [[] for _ in idx], torch.zeros(n, 0))

    def to_neuralese(self, texts, colors=None) -> Translations:
        n = len(list(texts))
        m = self.messages[self._pick(n, len(self.messages))]
        return Translations(m, _nan(n), torch.ones(n, dtype=torch.bool), m[:, None][:, :0], torch.zeros(n, 0))
