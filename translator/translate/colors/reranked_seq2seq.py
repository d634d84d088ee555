"""Seq2seq neuralese → English with pragmatic n-best reranking.

The generator proposes; a listener disposes (the "sample and rerank" pragmatic speaker of Andreas &
Klein 2016). In context, each of the generator's `n_best` beam-search hypotheses is read by the
English listener the translator consults, and the one whose belief over the three colours is
closest to the message's own (from the message model the generator reads beliefs from) is the
translation: the generator may say things no corpus utterance says, and what it says is checked
against what it must make a listener believe. Without a context the first hypothesis is returned.
What reranking gains: docs/decisions.md.

Bundle (kind `neuralese.reranked_seq2seq`): the generator (`generator/`, a `Seq2SeqTranslator`), a
copy of the English models it consults (`english/`) and `rerank.json` (`n_best`, `criterion`), all
covered by the hashes in `config.json`; formats 1-2 kept the generator's files at the top.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from translator.games.colors.inputs import check_colors
from translator.models.colors.english import EnglishModels
from translator.models.tokenizer import Tokenizer
from translator.settings.checks import positive_int
from translator.storage.atomic import atomic_bundle_dir
from translator.storage.bundle import (
    CONFIG_FILE,
    BundleError,
    check_header,
    read_json,
    read_side_file,
    write_config,
    write_side_file,
)
from translator.translate.colors.registry import RERANK_FILE, RERANKED_KIND, is_legacy_reranked
from translator.translate.colors.seq2seq import Seq2SeqTranslator
from translator.translate.matching import CRITERIA, pointwise_divergence
from translator.translate.translations import Translations

KIND = RERANKED_KIND
RERANK_KIND = "neuralese.rerank"
ENGLISH_DIR = "english"
GENERATOR_DIR = "generator"


@dataclass
class RerankConfig:
    n_best: int = field(default=8, metadata={
        "help": "seq2seq neuralese -> English: beam hypotheses the English listener reranks in context (1 = greedy)",
        "type": positive_int})
    criterion: str = "symmetric"  # divergence between the message's and a hypothesis's belief
    alternatives: int = 3

    def __post_init__(self):
        if type(self.n_best) is not int or self.n_best < 1:
            raise ValueError(f"n_best must be a positive integer, got {self.n_best!r}")
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion {self.criterion!r} is unknown; valid: {', '.join(CRITERIA)}")


class RerankedSeq2Seq:
    """A `to_english` `Seq2SeqTranslator` that reads beliefs, and the English models that rerank it."""

    name = "seq2seq_reranked"

    def __init__(self, generator: Seq2SeqTranslator, english: EnglishModels, config: RerankConfig | None = None):
        if generator.direction != "to_english" or generator.message_model is None:
            raise ValueError("reranking needs a to_english seq2seq translator that reads beliefs (belief_input)")
        self.generator, self.english, self.config = generator, english, config or RerankConfig()

    @property
    def channel(self):
        return self.generator.channel

    @property
    def message_model(self):
        return self.generator.message_model

    @property
    def tokenizer(self) -> Tokenizer:
        return self.generator.tokenizer

    @property
    def max_utterance_tokens(self) -> int:
        return self.generator.max_utterance_tokens

    def to_neuralese(self, texts, colors=None) -> Translations:
        raise ValueError("this translator (a reranked seq2seq model) translates to English only")

    @torch.no_grad()
    def to_english(self, messages, colors=None, n_best: int | None = None, batch_size: int = 256) -> Translations:
        """Translate a batch; in context with `n_best > 1` (default: the config's), the hypothesis
        whose listener belief matches the message's best, with its divergence and the runners-up."""
        n = self.config.n_best if n_best is None else n_best
        messages = self.generator.check_messages(messages)
        if colors is None or n < 2:
            texts = self.generator.translate(messages, colors, batch_size=batch_size)
            return Translations.plain(texts)
        colors = check_colors(colors, len(messages))
        hyps = self.generator.translate(messages, colors, num_beams=n, num_return_sequences=n, batch_size=batch_size)
        source = self.generator.beliefs(messages, colors)  # (N, 3)
        heard = self.english.listen(hyps, colors.repeat_interleave(n, 0)).view(len(messages), n, 3)
        div = pointwise_divergence(source[:, None], heard, self.config.criterion)  # (N, n)
        order = div.argsort(dim=1)
        a = min(self.config.alternatives, n - 1)
        pick = [[hyps[i * n + j] for j in row] for i, row in enumerate(order[:, : a + 1].tolist())]
        best = div.gather(1, order[:, : a + 1])
        return Translations([p[0] for p in pick], best[:, 0], torch.ones(len(pick), dtype=torch.bool),
                            [p[1:] for p in pick], best[:, 1:])

    def save_pretrained(self, directory: str | Path) -> None:
        """One bundle written as a whole; `config.json`, written last, records the hashes of the rest."""
        with atomic_bundle_dir(directory) as d:
            self.english.save_pretrained(d / ENGLISH_DIR)
            write_side_file(d / RERANK_FILE, RERANK_KIND, asdict(self.config))
            self.generator.save_pretrained(d / GENERATOR_DIR)
            write_config(d, KIND, {"channel": self.channel.to_dict()})

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> RerankedSeq2Seq:
        d = Path(directory)
        if not d.is_dir():
            raise BundleError(f"{d}: no such bundle directory")
        if is_legacy_reranked(d, read_json(d / CONFIG_FILE)):
            generator = Seq2SeqTranslator.from_pretrained(d)  # its header covers the whole directory
        else:
            check_header(d / CONFIG_FILE, read_json(d / CONFIG_FILE), KIND)
            generator = Seq2SeqTranslator.from_pretrained(d / GENERATOR_DIR)
        data = read_side_file(d / RERANK_FILE, RERANK_KIND)
        try:
            config = RerankConfig(**data)
        except (TypeError, ValueError) as e:
            raise BundleError(f"{d / RERANK_FILE}: bad rerank config ({e})") from None
        try:
            return cls(generator, EnglishModels.from_pretrained(d / ENGLISH_DIR), config)
        except ValueError as e:
            raise BundleError(f"{d}: {e}") from None

    @staticmethod
    def is_bundle(directory: str | Path) -> bool:
        """Whether `directory` holds a reranked seq2seq bundle (of any format)."""
        d = Path(directory)
        try:
            header = read_json(d / CONFIG_FILE)
        except BundleError:
            return False
        return header.get("kind") == KIND or is_legacy_reranked(d, header)
