"""The parts translator bundles share, read and written one way: message models and tables.

    config.json          kind, format version, game, the translator's options, the sha256 of every
                         other file (`english/` and `message_model/` by their own config.json)
    tables.safetensors   the translator's precomputed tensors (belief and direct translators)
    texts.json           English texts the tables index (candidates, corpus utterances)
    english/             the English models it consults (a copy: a bundle stands alone)
    message_model/       p(m | c, x): our agents (exact) or a learned model, by `MESSAGE_MODELS`
    training.json        how it was built

Written as a whole (`atomic_bundle_dir`): the nested bundles land inside the same temporary
directory, so a kill while saving leaves the old translator or the new one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from translator.games.colors.corpus import GAME
from translator.models.colors.english import EnglishModels
from translator.models.colors.learned_speaker import LearnedMessageModel
from translator.models.colors.message_model import ExactMessageModel, MessageModel
from translator.models.tokenizer import Tokenizer
from translator.storage.atomic import atomic_bundle_dir, atomic_write
from translator.storage.bundle import (
    BundleError,
    Registry,
    read_composite,
    read_side_file,
    write_composite,
    write_side_file,
    write_tensors,
)

TEXTS_FILE = "texts.json"
TEXTS_KIND = "neuralese.texts"
MESSAGE_MODEL_DIR = "message_model"
# The name a translator's config records for its message model (`"message_model"`).
MESSAGE_MODELS = Registry("message model", {"exact": ExactMessageModel, "learned": LearnedMessageModel})


class ConsultsEnglish:
    """What the API reads of a translator that consults English models (`self.english`): their
    tokenizer, and how many tokens of an utterance the listener reads (a longer one is cut)."""

    english: EnglishModels

    @property
    def tokenizer(self) -> Tokenizer:
        return self.english.tokenizer

    @property
    def max_utterance_tokens(self) -> int:
        return self.english.listener.config.max_len


def load_message_model(directory: Path, kind: str) -> MessageModel:
    return MESSAGE_MODELS.cls(kind, directory).from_pretrained(directory)


def message_model_kind(model: MessageModel) -> str:
    return MESSAGE_MODELS.kind_of(model)


def write_texts(path: Path, texts: list[str]) -> None:
    write_side_file(path, TEXTS_KIND, {"texts": texts})


def read_texts(path: Path) -> list[str]:
    """The texts of a `texts.json` (a bare JSON list in bundles of formats 1-2)."""
    try:
        data = read_side_file(path, TEXTS_KIND)
    except BundleError as e:
        raise BundleError(f"{path}: unreadable ({str(e).removeprefix(f'{path}: ')})") from None
    texts = data.get("texts") if isinstance(data, dict) else data
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise BundleError(f"{path}: expected a JSON list of strings")
    return texts


def save_translator(
    directory: str | Path,
    kind: str,
    config: dict[str, Any],
    english: EnglishModels,
    model: MessageModel,
    tables: dict[str, torch.Tensor],
    texts: list[str],
    training: dict[str, Any] | None,
    extra: dict[str, bytes] | None = None,
) -> None:
    """`extra`: side files (name: content) written beside the tables, listed in the hash map like them."""
    with atomic_bundle_dir(directory) as d:
        english.save_pretrained(d / "english")
        model.save_pretrained(d / MESSAGE_MODEL_DIR)
        write_tensors(d / "tables.safetensors", tables)
        write_texts(d / TEXTS_FILE, texts)
        for name, content in (extra or {}).items():
            atomic_write(d / name, content)
        write_composite(d, kind, GAME, training, config=config, message_model=message_model_kind(model))


def load_translator(directory: str | Path, kind: str, tables_needed: tuple[str, ...]):
    """`(config dict, english, message model, tables, texts, training)`; `BundleError` on any defect."""
    d = Path(directory)
    meta, training = read_composite(d, kind, GAME)
    try:
        tables = load_file(str(d / "tables.safetensors"))
    except (SafetensorError, OSError) as e:
        raise BundleError(f"{d / 'tables.safetensors'}: unreadable ({e})") from None
    missing = [k for k in tables_needed if k not in tables]
    if missing:
        raise BundleError(f"{d / 'tables.safetensors'}: missing tables {', '.join(missing)}")
    texts = read_texts(d / TEXTS_FILE)
    english = EnglishModels.from_pretrained(d / "english")
    model = load_message_model(d / MESSAGE_MODEL_DIR, meta.get("message_model", "exact"))
    config = meta.get("config")
    if not isinstance(config, dict):
        raise BundleError(f"{d / 'config.json'}: no translator config")
    return config, english, model, tables, texts, training
