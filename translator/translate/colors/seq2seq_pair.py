"""A seq2seq translator of both directions: one bundle holding a model per direction.

    config.json      kind "neuralese.seq2seq_pair", format version, `source` (the pairs it was
                     trained on: `cooccurrence` or `belief`), the channel, and the hashes of each
                     direction's `config.json` (which record the rest)
    to_english/      a `RerankedSeq2Seq` (or a plain `Seq2SeqTranslator`)
    to_neuralese/    a `Seq2SeqTranslator`

Bundles of formats 1-2 had `translator.json` as their header; they load as they are.
"""

from __future__ import annotations

from pathlib import Path

from translator.models.tokenizer import Tokenizer
from translator.storage.atomic import atomic_bundle_dir
from translator.storage.bundle import CONFIG_FILE, BundleError, check_header, read_json, write_config
from translator.storage.run_layout import LEGACY_PAIR_FILE
from translator.translate.colors.registry import PAIR_KIND
from translator.translate.colors.reranked_seq2seq import RerankedSeq2Seq
from translator.translate.colors.seq2seq import Seq2SeqTranslator
from translator.translate.translations import Translations

KIND = PAIR_KIND
SOURCES = ("cooccurrence", "belief")


class Seq2SeqPair:
    """Neuralese → English and English → neuralese seq2seq models trained on the same pairs."""

    def __init__(self, to_english: RerankedSeq2Seq | Seq2SeqTranslator, to_neuralese: Seq2SeqTranslator, source: str):
        if to_english.channel != to_neuralese.channel:
            raise ValueError("the two directions translate different channels")
        if getattr(to_english, "direction", "to_english") != "to_english" or to_neuralese.direction != "to_neuralese":
            raise ValueError("a seq2seq pair needs a to_english and a to_neuralese model")
        self.models = {"to_english": to_english, "to_neuralese": to_neuralese}
        self.source = source

    @property
    def name(self) -> str:
        return f"seq2seq_{self.source}"

    @property
    def channel(self):
        return self.models["to_neuralese"].channel

    @property
    def message_model(self):
        return self.models["to_english"].message_model

    @property
    def tokenizer(self) -> Tokenizer:
        return self.models["to_neuralese"].tokenizer

    @property
    def max_utterance_tokens(self) -> int:
        return self.models["to_neuralese"].max_utterance_tokens

    def to_english(self, messages, colors=None) -> Translations:
        return self.models["to_english"].to_english(messages, colors)

    def to_neuralese(self, texts, colors=None) -> Translations:
        return self.models["to_neuralese"].to_neuralese(texts, colors)

    def save_pretrained(self, directory: str | Path) -> None:
        """Both directions as one bundle, swapped in whole; `config.json` is written last."""
        with atomic_bundle_dir(directory) as d:
            for direction, model in self.models.items():
                model.save_pretrained(d / direction)
            write_config(d, KIND, {"source": self.source, "directions": list(self.models), "channel": self.channel.to_dict()})

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Seq2SeqPair:
        d = Path(directory)
        if not d.is_dir():
            raise BundleError(f"{d}: no such bundle directory")
        path = d / CONFIG_FILE if (d / CONFIG_FILE).is_file() or not (d / LEGACY_PAIR_FILE).is_file() else d / LEGACY_PAIR_FILE
        header = read_json(path)
        if path.name == LEGACY_PAIR_FILE:
            header.setdefault("format_version", 1)  # format 1 recorded none
        check_header(path, header, KIND)
        to_english_dir = d / "to_english"
        english_side = RerankedSeq2Seq if RerankedSeq2Seq.is_bundle(to_english_dir) else Seq2SeqTranslator
        try:
            return cls(
                english_side.from_pretrained(to_english_dir),
                Seq2SeqTranslator.from_pretrained(d / "to_neuralese"),
                header.get("source", "cooccurrence"),
            )
        except ValueError as e:
            if isinstance(e, BundleError):
                raise
            raise BundleError(f"{d}: {e}") from None
