"""Writes that land whole or not at all: one file (`atomic_write`) or one bundle directory
(`atomic_bundle_dir`).

A bundle is written into a temporary sibling directory and swapped in as a whole, so a process
killed while saving leaves the old bundle or the new one, never a mix of both. On Linux the swap
is one `renameat2(RENAME_EXCHANGE)`; elsewhere it is two renames, and the next save of the same
bundle puts the old one back if a kill fell between them. Bundles nested in one being written
(a translator's `english/`) are written in place inside its temporary directory, so the whole tree
swaps at once. Temporary names start with a dot and carry the writer's process id: loaders never
see them, and a later save of the same bundle removes those whose process is gone.

Torch-free, like `run_layout`.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from pathlib import Path

from translator.storage.run_layout import HEADER_FILES

# The temporary directories this thread is writing bundles into.
_WRITING: ContextVar[tuple[Path, ...]] = ContextVar("bundle_dirs_being_written", default=())
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def atomic_write(path: Path, data: bytes) -> None:
    """Write `path` with `data` via a temporary file beside it, flushed to disk, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _being_written(path: Path) -> bool:
    return any(path == d or d in path.parents for d in _WRITING.get())


@contextlib.contextmanager
def atomic_bundle_dir(path: str | Path, keep: Iterable[str] = (), marker: str | tuple[str, ...] = HEADER_FILES) -> Iterator[Path]:
    """Yield an empty directory to write a bundle into; on success it replaces `path` as a whole.

    On an exception (or a kill) `path` is left as it was and the temporary directory is removed
    (or, after a kill, by the next save of `path`). Entries of the old `path` named in `keep`
    (training checkpoints kept beside a bundle) are carried into the new one, as hard links where
    the file system allows. An existing non-empty `path` without a `marker` file (not a bundle) is refused
    rather than replaced. Inside another bundle being written, `path` is written in place.
    """
    path = Path(path).absolute()
    if _being_written(path):
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    keep = tuple(keep)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    _check_replaceable(path, keep, marker)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    tmp.mkdir()
    token = _WRITING.set(_WRITING.get() + (tmp,))
    try:
        yield tmp
        _carry(path, tmp, keep)
        _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _WRITING.reset(token)
    _swap_in(tmp, path)


def _check_replaceable(path: Path, keep: tuple[str, ...], marker: str | tuple[str, ...]) -> None:
    if not path.exists():
        return
    if not path.is_dir():
        raise FileExistsError(f"{path}: exists and is not a directory; refusing to replace it with a bundle")
    markers = (marker,) if isinstance(marker, str) else marker
    if any((path / m).is_file() for m in markers):
        return
    others = sorted(p.name for p in path.iterdir() if p.name not in keep)
    if others:
        raise FileExistsError(f"{path}: exists and is not a bundle (no {' or '.join(markers)}; holds {', '.join(others[:5])}); "
                              "refusing to replace it: remove it or save elsewhere")


def _carry(old: Path, new: Path, keep: tuple[str, ...]) -> None:
    """Copy the entries `keep` of `old` into `new` (hard links: instant, no second copy on disk)."""
    for name in keep:
        src = old / name
        if src.is_dir():
            shutil.copytree(src, new / name, copy_function=_link_or_copy)
        elif src.is_file():
            _link_or_copy(src, new / name)


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _fsync_tree(directory: Path) -> None:
    """Flush every file under `directory` to disk, so the swap never publishes unwritten data."""
    for root, _, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux `renameat2`); False where that is not available."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(tmp: Path, path: Path) -> None:
    """Put `tmp` at `path` and remove what was there."""
    if not path.exists():
        os.rename(tmp, path)
        return
    if _exchange(tmp, path):
        shutil.rmtree(tmp, ignore_errors=True)  # it now holds the old bundle
        return
    old = path.with_name(tmp.name.replace(".tmp-", ".old-", 1))
    os.rename(path, old)
    os.rename(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def remove_stale(path: Path) -> None:
    """Remove what killed saves of `path` left beside it; put back an old bundle that a kill left
    set aside between the two renames of a swap (where the swap is not one step)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(tmp|old)-(\d+)-[0-9a-f]+")
    for p in sorted(path.parent.glob(f".{glob.escape(path.name)}.*")):
        m = pattern.fullmatch(p.name)
        if not m or _alive(int(m[2])):
            continue
        if m[1] == "old" and not path.exists():
            os.rename(p, path)
        elif p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
