"""Every kind of translator bundle and the class that loads it: the one table every loader uses.

`bundle_kind(dir)` reads what a directory holds from its header (`config.json`; for bundles of
formats 1-2 also the rules that told a reranked seq2seq model and a seq2seq pair apart),
`load(dir)` loads it, `bundle_channel(dir)` reads its channel without loading any model. Each
class loaded has `to_english(messages, colors)` and `to_neuralese(texts, colors)` returning
`Translations` (a one-direction model refuses the other with a `ValueError`), `channel`, `name`,
`tokenizer` and `max_utterance_tokens`. A class is imported when a bundle of its kind is first
loaded: the seq2seq kinds bring in transformers, which importing the API does not need.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from translator.models.channels import ChannelConfig
from translator.storage.bundle import CONFIG_FILE, LAYOUT_3_SINCE, BundleError, Registry, read_json
from translator.storage.run_layout import LEGACY_PAIR_FILE

if TYPE_CHECKING:
    from translator.translate.colors.baselines import DirectTranslator
    from translator.translate.colors.belief import BeliefTranslator
    from translator.translate.colors.reranked_seq2seq import RerankedSeq2Seq
    from translator.translate.colors.seq2seq import Seq2SeqTranslator
    from translator.translate.colors.seq2seq_pair import Seq2SeqPair

    AnyTranslator = BeliefTranslator | DirectTranslator | Seq2SeqPair | RerankedSeq2Seq | Seq2SeqTranslator

BELIEF_KIND = "neuralese.belief_translator"
DIRECT_KIND = "neuralese.direct_translator"
PAIR_KIND = "neuralese.seq2seq_pair"
RERANKED_KIND = "neuralese.reranked_seq2seq"
SEQ2SEQ_KIND = "neuralese.seq2seq"
RERANK_FILE = "rerank.json"  # a reranked seq2seq bundle's settings

TRANSLATORS = Registry("translator", {
    BELIEF_KIND: "translator.translate.colors.belief:BeliefTranslator",
    DIRECT_KIND: "translator.translate.colors.baselines:DirectTranslator",
    PAIR_KIND: "translator.translate.colors.seq2seq_pair:Seq2SeqPair",
    RERANKED_KIND: "translator.translate.colors.reranked_seq2seq:RerankedSeq2Seq",
    SEQ2SEQ_KIND: "translator.translate.colors.seq2seq:Seq2SeqTranslator",
})  # fmt: skip


def header_path(directory: Path) -> Path:
    """A bundle's header file: `config.json` (a seq2seq pair of formats 1-2: `translator.json`)."""
    if not (directory / CONFIG_FILE).is_file() and (directory / LEGACY_PAIR_FILE).is_file():
        return directory / LEGACY_PAIR_FILE
    return directory / CONFIG_FILE


def is_legacy_reranked(directory: Path, header: dict[str, Any]) -> bool:
    """Formats 1-2 wrote a reranked seq2seq bundle as its generator's, with `rerank.json` beside."""
    version = header.get("format_version")
    old = type(version) is int and version < LAYOUT_3_SINCE
    return header.get("kind") == SEQ2SEQ_KIND and old and (directory / RERANK_FILE).is_file()


def bundle_header(directory: str | Path) -> tuple[str, dict[str, Any]]:
    """`(kind, header)` of the translator bundle in `directory`; `BundleError` naming the header
    when it holds none or another kind of bundle."""
    d = Path(directory)
    if not d.is_dir():
        raise BundleError(f"{d}: no such translator bundle directory")
    path = header_path(d)
    header = read_json(path)
    kind = RERANKED_KIND if is_legacy_reranked(d, header) else header.get("kind")
    TRANSLATORS.cls(kind, path)
    return kind, header


def bundle_kind(directory: str | Path) -> str:
    """The kind of translator bundle `directory` holds (`bundle_header`)."""
    return bundle_header(directory)[0]


def load(directory: str | Path) -> AnyTranslator:
    """The translator bundle in `directory`, of any kind."""
    d = Path(directory)
    return TRANSLATORS.cls(bundle_kind(d), header_path(d)).from_pretrained(d)


def bundle_channel(directory: str | Path) -> ChannelConfig:
    """The channel a translator bundle translates, read from its header (no model is loaded)."""
    d = Path(directory)
    kind, header = bundle_header(d)
    path = header_path(d)
    channel = header.get("channel") or (header.get("config") or {}).get("channel")
    if channel is None and kind == PAIR_KIND:  # formats 1-2 recorded it in each direction only
        return bundle_channel(d / "to_english")
    if not isinstance(channel, dict):
        raise BundleError(f"{path}: records no channel")
    try:
        return ChannelConfig.from_dict(channel)
    except (TypeError, ValueError) as e:
        raise BundleError(f"{path}: bad channel ({e})") from None
