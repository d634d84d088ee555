"""Processes that translate beside a process that only reads and writes (the streaming CLI's
`--workers`, the service's batch process).

Workers fork from a server process that imported torch and the translator code once: never fork
a process that has run torch ops (its thread pool does not survive a fork); spawn where there is
no fork. Each worker loads what it translates with on its first task and keeps it, so a bundle
that fails to load raises its own error in the task that needed it.
"""

from __future__ import annotations

from collections.abc import Callable
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from typing import Any

_loaded: dict[tuple, Any] = {}  # this worker process's translators, by what they were loaded from


def worker_context() -> BaseContext:
    """The multiprocessing context for translation workers (forkserver, preloading `translator.api`)."""
    if "forkserver" not in get_all_start_methods():
        return get_context("spawn")
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(["translator.api"])
    return ctx


def loaded(key: tuple, threads: int, load: Callable[[], Any]) -> Any:
    """What `load()` returns, loaded once per worker process and `key`, with `threads` torch threads."""
    if key not in _loaded:
        import torch

        torch.set_num_threads(threads)
        _loaded[key] = load()
    return _loaded[key]
