"""The parts every translator bundle shares, read and written one way.

    config.json          kind, format version, game, the translator's options, the sha256 of every
                         other file (`english/` and `message_model/` by their own config.json)
    tables.safetensors   the translator's precomputed tensors
    texts.json           English texts the tables index (candidates, corpus utterances)
    english/             the English models it consults (a copy: a bundle stands alone)
    message_model/       p(m | c, x): our agents (exact) or a learned model
    training.json        how it was built
    faithfulness.json    the faithfulness models (belief translators built with held-out games; optional)

Written as a whole (`atomic_bundle_dir`): the nested bundles land inside the same temporary
directory, so a kill while saving leaves the old translator or the new one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from translator.atomic import atomic_bundle_dir, atomic_write
from translator.bundle import BundleError, read_composite, write_composite, write_tensors
from translator.english import EnglishModels
from translator.message_model import MessageModel

GAME = "colors_in_context"


def load_message_model(directory: Path, kind: str) -> MessageModel:
    if kind == "exact":
        from translator.message_model import ExactMessageModel

        return ExactMessageModel.from_pretrained(directory)
    if kind == "learned":
        from translator.learned_speaker import LearnedMessageModel

        return LearnedMessageModel.from_pretrained(directory)
    raise BundleError(f"{directory}: message model kind {kind!r} is not 'exact' or 'learned'")


def message_model_kind(model: MessageModel) -> str:
    return "exact" if type(model).__name__ == "ExactMessageModel" else "learned"


def save_translator(directory: str | Path, kind: str, config: dict[str, Any], english: EnglishModels, model: MessageModel,
                    tables: dict[str, torch.Tensor], texts: list[str], training: dict[str, Any] | None,
                    extra: dict[str, bytes] | None = None) -> None:
    """`extra`: side files (name: content) written beside the tables, listed in the hash map like them."""
    with atomic_bundle_dir(directory) as d:
        english.save_pretrained(d / "english")
        model.save_pretrained(d / "message_model")
        write_tensors(d / "tables.safetensors", tables)
        atomic_write(d / "texts.json", (json.dumps(texts, ensure_ascii=False) + "\n").encode("utf-8"))
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
    try:
        texts = json.loads((d / "texts.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BundleError(f"{d / 'texts.json'}: unreadable ({e})") from None
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise BundleError(f"{d / 'texts.json'}: expected a JSON list of strings")
    english = EnglishModels.from_pretrained(d / "english")
    model = load_message_model(d / "message_model", meta.get("message_model", "exact"))
    config = meta.get("config")
    if not isinstance(config, dict):
        raise BundleError(f"{d / 'config.json'}: no translator config")
    return config, english, model, tables, texts, training
