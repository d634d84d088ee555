"""Seq2seq neuralese → English with pragmatic n-best reranking.

The generator proposes; a listener disposes (the "sample and rerank" pragmatic speaker of Andreas &
Klein 2016). In context, each of the generator's `n_best` beam-search hypotheses is read by the
English listener the translator consults, and the one whose belief over the three colours is
closest to the message's own (from the message model the generator reads beliefs from) is the
translation: the generator may say things no corpus utterance says, and what it says is checked
against what it must make a listener believe. Without a context the first hypothesis is returned.

Bundle: the generator's own (`Seq2SeqTranslator`) beside a copy of the English models it consults
(`english/`) and `rerank.json` (`n_best`, `criterion`), covered by the generator's file hashes.
What reranking gains: docs/decisions.md."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from translator.atomic import atomic_bundle_dir
from translator.bundle import BundleError, read_json, write_json
from translator.cli_types import positive_int
from translator.english import EnglishModels
from translator.inputs import check_colors
from translator.matching import CRITERIA, pointwise_divergence
from translator.seq2seq import Seq2SeqTranslator
from translator.translations import Translations

RERANK_FILE = "rerank.json"
ENGLISH_DIR = "english"


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

    def __init__(self, generator: Seq2SeqTranslator, english: EnglishModels, config: RerankConfig | None = None):
        if generator.direction != "to_english" or generator.message_model is None:
            raise ValueError("reranking needs a to_english seq2seq translator that reads beliefs (belief_input)")
        self.generator, self.english, self.config = generator, english, config or RerankConfig()

    @property
    def channel(self):
        return self.generator.channel

    @torch.no_grad()
    def to_english(self, messages, colors=None, n_best: int | None = None, batch_size: int = 256) -> Translations:
        """Translate a batch; in context with `n_best > 1` (default: the config's), the hypothesis
        whose listener belief matches the message's best, with its divergence and the runners-up."""
        n = self.config.n_best if n_best is None else n_best
        messages = self.generator.check_messages(messages)
        if colors is None or n < 2:
            texts = self.generator.translate(messages, colors, batch_size=batch_size)
            nan = torch.full((len(texts),), float("nan"))
            return Translations(texts, nan, torch.ones(len(texts), dtype=torch.bool), [[] for _ in texts], torch.zeros(len(texts), 0))
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
        """One bundle written as a whole: the English models and `rerank.json` first, so that the
        generator's `config.json`, written last, records their hashes too."""
        with atomic_bundle_dir(directory) as d:
            self.english.save_pretrained(d / ENGLISH_DIR)
            write_json(d / RERANK_FILE, asdict(self.config))
            self.generator.save_pretrained(d)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> RerankedSeq2Seq:
        d = Path(directory)
        generator = Seq2SeqTranslator.from_pretrained(d)
        data = read_json(d / RERANK_FILE)
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
        return (Path(directory) / RERANK_FILE).is_file()
