"""One function over many runs, in forked worker processes when that pays; results in order.

Reading and diagnosing a run are independent of the other runs, so a folder of many runs is
spread over the CPUs. Workers are forked: they start in milliseconds with everything the
parent imported, where a fresh interpreter would spend longer importing numpy and pandas than
most runs take to read. Forking is only done where it is safe and cheap:

* with at least :data:`MIN_ITEMS` items and four per worker (below that, moving the results
  between processes costs more than a second core saves);
* where ``fork`` exists, from a process that may have children (not a daemonic
  ``multiprocessing`` worker) and never from inside one of these workers (no nesting);
* by default only when the caller runs no other Python thread: forking a threaded process
  can deadlock the child on a lock another thread held (a notebook kernel, a training loop
  with logging threads). Asking for ``workers`` explicitly forks anyway.

Anything else runs serially in the caller's process, with the same results in the same order.
"""

from __future__ import annotations

import concurrent.futures
import functools
import gc
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

__all__ = ["MIN_ITEMS", "default_workers", "ordered_map", "worker_count"]

T = TypeVar("T")
R = TypeVar("R")

#: Fewer items than this are always handled in the caller's process.
MIN_ITEMS = 16
# Each worker gets at least this many items, so that forking it pays for itself.
_PER_WORKER = 4
# Beyond this many processes the parent's share of the work (receiving results) dominates.
_MAX_DEFAULT = 8

_in_worker = False


def default_workers() -> int:
    """The CPUs this process may run on, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_DEFAULT))


def _can_fork(explicit: bool) -> bool:
    if _in_worker or "fork" not in multiprocessing.get_all_start_methods():
        return False
    if multiprocessing.current_process().daemon:
        return False  # daemonic processes may not have children
    return explicit or threading.active_count() == 1


def worker_count(items: int, workers: int | None = None) -> int:
    """How many worker processes :func:`ordered_map` uses for ``items`` items (1: none)."""
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    wanted = default_workers() if workers is None else workers
    if items < MIN_ITEMS or not _can_fork(explicit=workers is not None):
        return 1
    return max(1, min(wanted, items // _PER_WORKER))


def _mark_worker() -> None:
    global _in_worker
    _in_worker = True


def _attempt(func: Callable[[T], R], item: T) -> tuple[bool, R | None]:
    # A failure comes back as a flag: the caller runs the item again itself, so that the error
    # it raises is the real one (not every exception can be pickled back).
    try:
        return True, func(item)
    except Exception:
        return False, None


def ordered_map(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int | None = None,
    before: Callable[[int], None] | None = None,
) -> Iterator[R]:
    """``func(item)`` for every item, in order, in worker processes when that pays.

    ``func`` must be picklable (a module-level function or a ``functools.partial`` of one).
    ``workers`` caps the processes (default: one per CPU, at most 8; ``1`` never forks).
    ``before(i)`` is called before result ``i`` is waited for. An exception raised by ``func``
    propagates from the caller's process, as a serial loop would raise it: the failing item is
    run again here.
    """
    count = worker_count(len(items), workers)
    if count < 2:
        for i, item in enumerate(items):
            if before is not None:
                before(i)
            yield func(item)
        return
    # The first item is done here: what it imports and caches the workers inherit.
    if before is not None:
        before(0)
    yield func(items[0])
    rest = items[1:]
    chunk = max(1, min(16, len(rest) // (count * 4)))
    pool = concurrent.futures.ProcessPoolExecutor(
        count, mp_context=multiprocessing.get_context("fork"), initializer=_mark_worker
    )
    done = 1
    try:
        # Workers are forked while submitting. With the parent's objects frozen, a worker's
        # garbage collections leave them alone instead of writing to (and so copying) their
        # memory pages.
        gc.freeze()
        try:
            results = pool.map(functools.partial(_attempt, func), rest, chunksize=chunk)
        finally:
            gc.unfreeze()
        for i in range(1, len(items)):
            if before is not None:
                before(i)
            ok, value = next(results)
            done = i + 1
            yield value if ok else func(items[i])  # type: ignore[misc]
    except BrokenProcessPool:
        # A worker died (killed, out of memory): the items not received are done here.
        pool.shutdown(wait=False, cancel_futures=True)
        for i in range(done, len(items)):
            if before is not None and i > done:
                before(i)
            yield func(items[i])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
