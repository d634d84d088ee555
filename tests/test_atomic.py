"""Atomic writes: a save that fails or is killed at any point leaves the old bundle or the new one,
whole, and the temporary directories it leaves are ignored by loaders and removed by the next save."""

from __future__ import annotations

import copy
import multiprocessing
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

import translator.storage.atomic as atomic
from translator.models.colors.english import EnglishModels
from translator.storage.atomic import atomic_bundle_dir, atomic_write, remove_stale
from translator.translate.colors.belief import BeliefTranslator


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root`, by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def leftovers(path: Path) -> list[str]:
    """Temporary siblings of `path` and hidden entries inside it."""
    return sorted(p.name for p in path.parent.glob(f".{path.name}.*")) + sorted(p.name for p in path.rglob(".*"))


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def make_bundle(path: Path, text: str) -> None:
    with atomic_bundle_dir(path) as d:
        (d / "part").mkdir()
        (d / "part" / "weights").write_text(text)
        (d / "config.json").write_text("{}")


# -- the helper itself ---------------------------------------------------------------------------


def test_save_replaces_the_directory_as_a_whole(tmp_path):
    make_bundle(tmp_path / "b", "old")
    (tmp_path / "b" / "stray").write_text("from an older layout")
    make_bundle(tmp_path / "b", "new")
    assert tree(tmp_path / "b") == {"config.json": b"{}", "part/weights": b"new"}
    assert leftovers(tmp_path / "b") == []


def test_a_failed_save_leaves_the_old_bundle_and_no_temporary_directory(tmp_path):
    make_bundle(tmp_path / "b", "old")
    before = tree(tmp_path / "b")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_bundle_dir(tmp_path / "b") as d:
            (d / "config.json").write_text("{half")
            raise RuntimeError("disk full")
    assert tree(tmp_path / "b") == before
    assert leftovers(tmp_path / "b") == []


def test_nested_bundles_are_written_inside_the_enclosing_temporary_directory(tmp_path):
    with atomic_bundle_dir(tmp_path / "b") as outer:
        assert outer.parent == tmp_path and outer.name.startswith(".b.tmp-")
        with atomic_bundle_dir(outer / "english") as inner:
            assert inner == outer / "english"
        with atomic_bundle_dir(outer) as same:
            assert same == outer
        assert not (tmp_path / "b").exists()  # nothing is visible before the outer save ends
        (outer / "config.json").write_text("{}")
    assert (tmp_path / "b" / "english").is_dir()


def test_a_directory_that_is_not_a_bundle_is_not_replaced(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="is not a bundle .*todo.txt"):
        with atomic_bundle_dir(tmp_path / "notes"):
            pass
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    assert leftovers(tmp_path / "notes") == []
    with atomic_bundle_dir(tmp_path / "empty") as d:  # a new or empty directory is fine
        (d / "config.json").write_text("{}")


def test_kept_entries_are_carried_over(tmp_path):
    (tmp_path / "agents" / "checkpoint").mkdir(parents=True)  # a training checkpoint before the first save
    (tmp_path / "agents" / "checkpoint" / "state.json").write_text('{"step": 7}')
    for text in ("first", "second"):
        with atomic_bundle_dir(tmp_path / "agents", keep=("checkpoint",)) as d:
            (d / "config.json").write_text(text)
    assert tree(tmp_path / "agents") == {"config.json": b"second", "checkpoint/state.json": b'{"step": 7}'}


def test_stale_temporary_directories_of_dead_writers_are_removed(tmp_path):
    make_bundle(tmp_path / "b", "old")
    stale = tmp_path / f".b.tmp-{dead_pid()}-0a1b2c3d"
    live = tmp_path / f".b.tmp-{os.getppid()}-0a1b2c3d"  # a writer still running: left alone
    for d in (stale, live):
        (d / "part").mkdir(parents=True)
        (d / "config.json").write_text("{}")
    assert (tmp_path / "b" / "part" / "weights").read_text() == "old"
    make_bundle(tmp_path / "b", "new")
    assert not stale.exists() and live.exists()


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two renames"])
def test_both_ways_of_swapping(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    make_bundle(tmp_path / "b", "old")
    make_bundle(tmp_path / "b", "new")
    assert tree(tmp_path / "b")["part/weights"] == b"new"
    assert leftovers(tmp_path / "b") == []


def test_a_bundle_set_aside_by_a_killed_two_rename_swap_is_put_back(tmp_path):
    make_bundle(tmp_path / "b", "old")
    aside = tmp_path / f".b.old-{dead_pid()}-0a1b2c3d"
    (tmp_path / "b").rename(aside)  # killed between the two renames
    remove_stale(tmp_path / "b")
    assert tree(tmp_path / "b")["part/weights"] == b"old" and not aside.exists()


def test_atomic_write_leaves_the_old_file_when_it_fails(tmp_path, monkeypatch):
    path = tmp_path / "rerank.json"
    atomic_write(path, b"old")

    def fail(*args):
        raise OSError("no space left")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="no space"):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["rerank.json"]


# -- real bundles: failures at every write, kills at random points ---------------------------------


@pytest.fixture(scope="module")
def english_pair(english_models, tmp_path_factory):
    """Two different English bundles (`old`, `new`) and the bytes each save writes."""
    new = copy.deepcopy(english_models)
    with torch.no_grad():
        for p in [*new.listener.parameters(), *new.speaker.parameters()]:
            p.add_(0.01)
    new.training = {**english_models.training, "note": "retrained"}
    root = tmp_path_factory.mktemp("english_pair")
    english_models.save_pretrained(root / "old")
    new.save_pretrained(root / "new")
    return english_models, new, tree(root / "old"), tree(root / "new")


def test_a_failure_at_any_write_leaves_the_old_bundle(english_pair, tmp_path, monkeypatch):
    old, new, old_files, _ = english_pair
    path = tmp_path / "english"
    old.save_pretrained(path)
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    new.save_pretrained(tmp_path / "count")
    writes = len(calls)  # every file written is flushed: once when written, once before the swap
    assert writes >= 12
    for k in range(writes):
        n = 0

        def fsync(fd, k=k):
            nonlocal n
            n += 1
            if n > k:
                raise OSError(f"write {k} fails")
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        with pytest.raises(OSError, match=f"write {k} fails"):
            new.save_pretrained(path)
        assert tree(path) == old_files, f"failure at write {k}"
        assert leftovers(path) == []
    monkeypatch.setattr(os, "fsync", real_fsync)
    EnglishModels.from_pretrained(path)


def _save_forever(models: list, path: Path, started) -> None:
    started.set()
    while True:
        for m in models:
            m.save_pretrained(path)


def kill_while_saving(models: list, path: Path, delays: list[float]) -> list[dict[str, bytes]]:
    """For each delay, a forked process saves `models` in turn over `path` until it is SIGKILLed
    after `delay` seconds; returns what `path` holds after each kill, and checks the leftovers."""
    ctx = multiprocessing.get_context("fork")
    found, stale = [], 0
    for delay in delays:
        started = ctx.Event()
        proc = ctx.Process(target=_save_forever, args=(models, path, started), daemon=True)
        proc.start()
        started.wait(60)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        found.append(tree(path))
        stale += bool(leftovers(path))
    assert stale, "no kill fell inside a save: the test did not test anything"
    return found


def test_a_kill_at_a_random_point_leaves_the_old_or_the_new_english_bundle(english_pair, tmp_path):
    old, new, old_files, new_files = english_pair
    path = tmp_path / "english"
    old.save_pretrained(path)
    start = time.perf_counter()
    new.save_pretrained(tmp_path / "timing")
    seconds = time.perf_counter() - start
    rng = random.Random(0)
    for i, files in enumerate(kill_while_saving([new, old], path, [rng.uniform(0, 3 * seconds) for _ in range(8)])):
        assert files in (old_files, new_files), f"trial {i}: a mixed bundle"
    EnglishModels.from_pretrained(path)  # temporary directories beside it are ignored
    old.save_pretrained(path)  # and removed by the next save
    assert leftovers(path) == []


def test_a_kill_leaves_a_translator_bundle_and_its_nested_bundles_whole(tiny_belief_translator, english_pair, tmp_path):
    old = tiny_belief_translator
    new = copy.copy(old)
    new.english = english_pair[1]
    new.tables = {**old.tables, "cand_beliefs": old.tables["cand_beliefs"].flip(-1).contiguous()}
    old.save_pretrained(tmp_path / "old")
    new.save_pretrained(tmp_path / "new")
    old_files, new_files = tree(tmp_path / "old"), tree(tmp_path / "new")
    path = tmp_path / "belief"
    old.save_pretrained(path)
    start = time.perf_counter()
    new.save_pretrained(tmp_path / "timing")
    seconds = time.perf_counter() - start
    rng = random.Random(1)
    for i, files in enumerate(kill_while_saving([new, old], path, [rng.uniform(0, 3 * seconds) for _ in range(5)])):
        assert files in (old_files, new_files), f"trial {i}: a mixed bundle"
    BeliefTranslator.from_pretrained(path)
    new.save_pretrained(path)
    assert tree(path) == new_files and leftovers(path) == []
