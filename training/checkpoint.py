"""Training checkpoints without pickle: optimizer state, random generators, and the directory swap.

A checkpoint directory holds the optimizer's tensors (`optimizer.safetensors`, its layout and
hyper-parameters in `optimizer.json`, with its kind and format version), one RNG file per process (`rng-<process>.safetensors`: the
training generator and torch's own) and whatever else the caller writes. It is written beside the
old one and swapped in whole, so a run killed at any moment finds one complete checkpoint.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from translator.storage.bundle import BundleError, read_side_file, write_side_file

OPTIMIZER_FILE = "optimizer.json"
OPTIMIZER_KIND = "neuralese.optimizer_state"  # the kind `optimizer.json` records, with its format version


def save_optimizer(opt: torch.optim.Optimizer, directory: Path) -> None:
    sd = opt.state_dict()
    tensors, layout = {}, {}
    for pid, st in sd["state"].items():
        layout[str(pid)] = {}
        for name, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{name}"] = value.detach().contiguous().cpu()
                layout[str(pid)][name] = "tensor"
            else:
                layout[str(pid)][name] = value  # a plain number
    save_file(tensors, str(directory / "optimizer.safetensors"))
    write_side_file(directory / OPTIMIZER_FILE, OPTIMIZER_KIND, {"param_groups": sd["param_groups"], "state": layout})


def load_optimizer(opt: torch.optim.Optimizer, directory: Path) -> None:
    """The optimizer state `save_optimizer` wrote; `BundleError` naming `optimizer.json` when it is
    another kind of file or of a newer format (files written before it had a kind read as they are)."""
    meta = read_side_file(directory / OPTIMIZER_FILE, OPTIMIZER_KIND)
    if not isinstance(meta, dict):
        raise BundleError(f"{directory / OPTIMIZER_FILE}: expected a JSON object")
    tensors = load_file(str(directory / "optimizer.safetensors"))
    state = {}
    for pid, names in meta["state"].items():
        state[int(pid)] = {n: (tensors[f"{pid}.{n}"] if v == "tensor" else v) for n, v in names.items()}
    groups = meta["param_groups"]
    for grp in groups:
        if isinstance(grp.get("betas"), list):
            grp["betas"] = tuple(grp["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def python_rng_state() -> dict:
    """Python's and NumPy's global RNG states as JSON-ready lists."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }


def set_python_rng_state(data: dict) -> None:
    version, internal, gauss = data["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = data["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def save_rng(g: torch.Generator, path: Path) -> None:
    tensors = {"generator": g.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    save_file(tensors, str(path))


def load_rng(g: torch.Generator, path: Path) -> None:
    t = load_file(str(path))
    g.set_state(t["generator"])
    torch.set_rng_state(t["torch"])
    if torch.cuda.is_available():
        cuda = [t[f"cuda.{i}"] for i in range(torch.cuda.device_count()) if f"cuda.{i}" in t]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)


def recover(ckpt: Path) -> None:
    """Put back the previous checkpoint when a run was killed between moving it aside and renaming the new one."""
    old = ckpt.parent / "checkpoint.old"
    if not (ckpt / "state.json").is_file() and (old / "state.json").is_file():
        old.rename(ckpt)


def swap_in(ckpt: Path, write: Callable[[Path, bool], None], barrier: Callable[[], None], main: bool) -> None:
    """Write a checkpoint into `checkpoint.tmp` (`write(directory, main)` on every process, between
    barriers) and swap it for `ckpt`; only the main process creates, renames and removes."""
    tmp, old = ckpt.parent / "checkpoint.tmp", ckpt.parent / "checkpoint.old"
    barrier()
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    write(tmp, main)
    barrier()
    if main:
        shutil.rmtree(old, ignore_errors=True)
        if ckpt.exists():
            ckpt.rename(old)
        tmp.rename(ckpt)
        shutil.rmtree(old, ignore_errors=True)
    barrier()
