"""Hugging Face-style bundles: `save_pretrained(dir)` / `from_pretrained(dir)` for our modules.

A bundle directory holds `config.json` (what the module is, the format version, its
hyper-parameters) and `model.safetensors` (the weights). No pickle anywhere: safetensors and JSON
only, so loading a bundle from an untrusted place cannot run code.

We keep this small layer rather than `huggingface_hub.PyTorchModelHubMixin` because loading must
fail with a clear message naming the file for every way a bundle goes wrong: another kind of
module, a newer format, a truncated weights file, missing or unexpected tensors.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from translator.run_layout import CONFIG_FILE

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"


class BundleError(ValueError):
    """A bundle that cannot be loaded; the message names the file and what is wrong."""


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BundleError(f"{path}: missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: expected a JSON object")
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)  # atomic: a crash never leaves half a file


def check_header(path: Path, data: dict[str, Any], kind: str) -> None:
    """Refuse a JSON file written for another kind of object or by a newer format."""
    if data.get("kind") != kind:
        raise BundleError(f"{path}: holds a {data.get('kind')!r}, expected a {kind!r}")
    version = data.get("format_version")
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise BundleError(
            f"{path}: format version {version!r} is not supported (this version reads up to {FORMAT_VERSION}); "
            "upgrade the package or re-train the bundle"
        )


class Bundled:
    """Mixin for an `nn.Module` built from a dataclass `self.config`."""

    bundle_kind: ClassVar[str]
    config_class: ClassVar[type]
    config: Any

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}  # type: ignore[attr-defined]
        tmp = directory / (WEIGHTS_FILE + ".tmp")
        save_file(state, str(tmp), metadata={"kind": self.bundle_kind})
        tmp.replace(directory / WEIGHTS_FILE)
        write_json(
            directory / CONFIG_FILE,
            {"kind": self.bundle_kind, "format_version": FORMAT_VERSION, "config": dataclasses.asdict(self.config)},
        )

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu"):
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        data = read_json(config_path)
        check_header(config_path, data, cls.bundle_kind)
        try:
            config = cls.config_class(**data.get("config", {}))
        except TypeError as e:
            raise BundleError(f"{config_path}: config does not fit {cls.config_class.__name__} ({e})") from None
        model = cls(config)  # type: ignore[call-arg]
        weights = directory / WEIGHTS_FILE
        if not weights.is_file():
            raise BundleError(f"{weights}: missing")
        try:
            state = load_file(str(weights), device=str(device))
        except (SafetensorError, OSError) as e:
            raise BundleError(f"{weights}: truncated or corrupt weights file ({e})") from None
        try:
            model.load_state_dict(state, strict=True)  # type: ignore[attr-defined]
        except RuntimeError as e:
            raise BundleError(f"{weights}: weights do not match the config ({str(e).splitlines()[0]})") from None
        return model.to(device).eval()  # type: ignore[attr-defined]


M = TypeVar("M", bound=torch.nn.Module)


def inference(module: M) -> M:
    """`module` in eval mode. Bundles load in eval mode, and `Module.eval()` walks every submodule,
    a cost a single-message translation notices, so it runs only after someone called `.train()`."""
    if module.training:
        module.eval()
    return module


def write_composite(directory: Path, kind: str, game: str, training: dict[str, Any] | None, **extra: Any) -> None:
    """Top-level files of a bundle made of several parts: `config.json` and `training.json`."""
    if training:
        write_json(directory / "training.json", training)
    write_json(directory / CONFIG_FILE, {"kind": kind, "format_version": FORMAT_VERSION, "game": game, **extra})


def read_composite(directory: Path, kind: str, game: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`(config, training)` of a composite bundle, refusing another kind, format or game."""
    if not directory.is_dir():
        raise BundleError(f"{directory}: no such bundle directory")
    path = directory / CONFIG_FILE
    config = read_json(path)
    check_header(path, config, kind)
    if config.get("game") != game:
        raise BundleError(f"{path}: bundle is for game {config.get('game')!r}, expected {game!r}")
    training = read_json(directory / "training.json") if (directory / "training.json").is_file() else {}
    return config, training
