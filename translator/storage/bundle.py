"""Hugging Face-style bundles: `save_pretrained(dir)` / `from_pretrained(dir)` for our modules.

A bundle directory holds `config.json` (kind, format version, hyper-parameters) and its files:
safetensors and JSON only, so loading one from an untrusted place cannot run code. It is written
through `translator.storage.atomic.atomic_bundle_dir` (a kill leaves the old bundle or the new one), with
`config.json` last (`write_config`): it records the sha256 of every other file (`files`; of a
nested bundle, its `config.json`). `check_header`, which every loader calls first, verifies them,
so a flipped byte anywhere is a `BundleError` naming the file; format 1 (no hashes) loads
unverified. JSON side files carry their own kind and version (`write_side_file`); `Registry` maps a
kind to the class that loads it.

A small layer rather than `huggingface_hub.PyTorchModelHubMixin`: loading must fail with a message
naming the file for every way a bundle goes wrong (another kind, a newer format, an altered file,
missing or unexpected tensors).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from translator.storage.atomic import atomic_bundle_dir, atomic_write
from translator.storage.run_layout import CONFIG_FILE

# 3: side files carry kind and format version, a seq2seq pair's header is config.json and a reranked
# seq2seq bundle has a kind of its own; 2: config.json records the sha256 of the bundle's files;
# 1: no hashes. Every version is read.
FORMAT_VERSION = 3
HASHED_SINCE = 2
LAYOUT_3_SINCE = 3  # the layouts of seq2seq pairs and reranked bundles; kinds on side files
FILES_KEY = "files"
WEIGHTS_FILE = "model.safetensors"
TRAINING_FILE = "training.json"
TRAINING_KIND = "neuralese.training"
HEADER_KEYS = ("kind", "format_version", FILES_KEY)


class BundleError(ValueError):
    """A bundle that cannot be loaded; the message names the file and what is wrong."""


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise BundleError(f"{path}: missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{path}: not valid JSON ({e})") from None


def read_json(path: Path) -> dict[str, Any]:
    data = _load_json(path)
    if not isinstance(data, dict):
        raise BundleError(f"{path}: expected a JSON object")
    return data


def write_json(path: Path, data: Any) -> None:
    """Write a JSON file atomically: a crash never leaves half a file."""
    atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def write_side_file(path: Path, kind: str, fields: dict[str, Any]) -> None:
    """A JSON file beside a bundle's `config.json` (`rerank.json`, `texts.json`, ...), with its own
    kind and format version, written atomically; write it before the header that hashes it."""
    write_json(path, {**fields, "kind": kind, "format_version": FORMAT_VERSION})


def read_side_file(path: Path, kind: str) -> dict[str, Any] | list[Any]:
    """The fields of a side file (`write_side_file`) without its kind and version; `BundleError`
    for another kind or a newer format. Side files of formats 1-2 had neither and read as they are."""
    data = _load_json(path)
    if not isinstance(data, dict) or "kind" not in data:
        return data
    _check_kind_and_version(path, data, kind)
    return {k: v for k, v in data.items() if k not in HEADER_KEYS}


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file atomically."""
    atomic_write(path, save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata))


# -- content hashes ---------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _is_sealed(directory: Path) -> bool:
    """Whether `directory` is a bundle whose own `config.json` records its files' hashes."""
    try:
        data = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get(FILES_KEY), dict)


def record_files(directory: Path, config_name: str = CONFIG_FILE) -> dict[str, str]:
    """`{relative path: sha256}` of every file under `directory` but `config_name`; a nested bundle
    that records its own hashes counts by its `config.json` alone (which covers the rest)."""
    out = {}
    for root, dirs, files in os.walk(directory):
        here = Path(root)
        if here != directory and _is_sealed(here):
            dirs.clear()
            files = [CONFIG_FILE]
        for name in files:
            rel = (here / name).relative_to(directory).as_posix()
            if rel != config_name:
                out[rel] = sha256_file(here / name)
        dirs.sort()
    return dict(sorted(out.items()))


def write_config(directory: Path, kind: str, fields: dict[str, Any], name: str = CONFIG_FILE) -> None:
    """A bundle's `config.json` (or another header file `name`): kind, format version, `fields` and
    the hashes of every file written so far. Write it last."""
    write_json(directory / name, {**fields, "kind": kind, "format_version": FORMAT_VERSION, FILES_KEY: record_files(directory, name)})


def verify_files(path: Path, data: dict[str, Any]) -> None:
    """Check the files that the header `path` (with contents `data`) records against their hashes."""
    version = data.get("format_version")
    if type(version) is int and version < HASHED_SINCE:
        return
    files = data.get(FILES_KEY)
    if not isinstance(files, dict):
        raise BundleError(f"{path}: format version {version} needs a {FILES_KEY!r} map of the bundle's files and their sha256")
    for name, digest in files.items():
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not isinstance(digest, str):
            raise BundleError(f"{path}: bad entry {name!r} in {FILES_KEY!r}")
        file = path.parent / rel
        if not file.is_file():
            raise BundleError(f"{file}: missing (listed in {path})")
        if sha256_file(file) != digest:
            raise BundleError(f"{file}: content does not match the sha256 recorded in {path} (the file is corrupt or was changed after saving)")


def reseal(directory: str | Path, name: str = CONFIG_FILE) -> None:
    """Record the current content of a bundle's listed files (nested bundles first), after editing
    it on purpose; a listed file that is gone is dropped from the list."""
    path = Path(directory) / name
    data = read_json(path)
    files = data.get(FILES_KEY)
    if not isinstance(files, dict):
        return
    for rel in files:
        sub = (path.parent / rel).parent
        if rel.endswith("/" + CONFIG_FILE) and _is_sealed(sub):
            reseal(sub)
    data[FILES_KEY] = {rel: sha256_file(path.parent / rel) for rel in files if (path.parent / rel).is_file()}
    write_json(path, data)


def check_header(path: Path, data: dict[str, Any], kind: str | tuple[str, ...]) -> None:
    """Refuse a bundle header (`config.json`) written for another kind of object or by a newer
    format, or whose recorded files do not match their hashes."""
    _check_kind_and_version(path, data, kind)
    verify_files(path, data)


def _check_kind_and_version(path: Path, data: dict[str, Any], kind: str | tuple[str, ...]) -> None:
    kinds = (kind,) if isinstance(kind, str) else kind
    if data.get("kind") not in kinds:
        raise BundleError(f"{path}: holds a {data.get('kind')!r}, expected a {' or a '.join(map(repr, kinds))}")
    version = data.get("format_version")
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise BundleError(
            f"{path}: format version {version!r} is not supported (this version reads up to {FORMAT_VERSION}); "
            "upgrade the package or re-train the bundle"
        )


class Registry:
    """Which class loads a bundle of each kind (a header's `kind`): one table that every loader uses.

    An entry is a class, or `"module:Class"`, imported when a bundle of that kind is first loaded
    (so that a kind whose module imports a heavy library costs nothing until it is used)."""

    def __init__(self, what: str, classes: dict[str, type | str]):
        self.what, self._classes = what, dict(classes)

    def kinds(self) -> list[str]:
        return list(self._classes)

    def cls(self, kind: Any, path: Path) -> type:
        """The class for `kind`, read from the header `path`; `BundleError` naming it otherwise."""
        if kind not in self._classes:
            raise BundleError(f"{path}: kind {kind!r} is not a {self.what}; known kinds: {', '.join(self._classes)}")
        entry = self._classes[kind]
        if isinstance(entry, str):
            module, _, name = entry.partition(":")
            entry = self._classes[kind] = getattr(importlib.import_module(module), name)
        return entry

    def kind_of(self, obj: Any) -> str:
        """The kind under which `obj`'s class is registered (what its bundle records)."""
        for kind in self._classes:
            if isinstance(obj, self.cls(kind, Path(kind))):
                return kind
        raise ValueError(f"{type(obj).__name__} is not a registered {self.what}; known kinds: {', '.join(self._classes)}")


class Bundled:
    """Mixin for an `nn.Module` built from a dataclass `self.config`."""

    bundle_kind: ClassVar[str]
    config_class: ClassVar[type]
    bundle_keep: ClassVar[tuple[str, ...]] = ()  # entries of the directory a save carries over (training checkpoints)
    config: Any

    def save_pretrained(self, directory: str | Path) -> None:
        with atomic_bundle_dir(directory, keep=self.bundle_keep) as d:
            write_tensors(d / WEIGHTS_FILE, self.state_dict(), metadata={"kind": self.bundle_kind})  # type: ignore[attr-defined]
            write_config(d, self.bundle_kind, {"config": dataclasses.asdict(self.config)})

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
    """Top-level files of a bundle made of several parts, after the parts: `training.json` and
    `config.json`."""
    if training:
        write_side_file(directory / TRAINING_FILE, TRAINING_KIND, training)
    write_config(directory, kind, {"game": game, **extra})


def read_composite(directory: Path, kind: str, game: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`(config, training)` of a composite bundle, refusing another kind, format or game."""
    if not directory.is_dir():
        raise BundleError(f"{directory}: no such bundle directory")
    path = directory / CONFIG_FILE
    config = read_json(path)
    check_header(path, config, kind)
    if config.get("game") != game:
        raise BundleError(f"{path}: bundle is for game {config.get('game')!r}, expected {game!r}")
    return config, read_training(directory)


def read_training(directory: Path) -> dict[str, Any]:
    """A bundle's `training.json` (how it was built), `{}` when it has none."""
    path = directory / TRAINING_FILE
    training = read_side_file(path, TRAINING_KIND) if path.is_file() else {}
    if not isinstance(training, dict):
        raise BundleError(f"{path}: expected a JSON object")
    return training
