"""Both cores: blocks of rows are handed to a small pool of threads.

NumPy's elementwise loops and BLAS release the GIL, so Python threads run the kernel in
parallel. BLAS's own threads are limited to one inside the pool: measured on this project's
2-core machines, OpenBLAS threads on small GEMMs, or beside a busy neighbour, cost up to 10x,
while one BLAS thread per worker scales. At most ``2 * workers`` blocks are in flight, so a
memory-mapped or streamed source is never read ahead by more than that.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from typing import TypeVar

from threadpoolctl import ThreadpoolController

T = TypeVar("T")
R = TypeVar("R")

BlockMap = Callable[[Callable[[T], R], Iterable[T]], Iterator[R]]


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _bounded_map(
    executor: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], in_flight: int
) -> Iterator[R]:
    """Like ``executor.map`` (results in order) but with at most ``in_flight`` pending tasks."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(executor.submit(fn, item))
        if len(pending) >= in_flight:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@cache
def _controller() -> ThreadpoolController:
    """The native thread pools of the process (BLAS, OpenMP), looked up once."""
    return ThreadpoolController()


@contextmanager
def block_map(n_threads: int | None = None) -> Iterator[BlockMap]:
    """A ``map`` over blocks that uses ``n_threads`` threads (default: every available core),
    with BLAS limited to one thread meanwhile. With one thread it is the builtin ``map``, and
    every native pool (OpenMP too, as in k-means) is limited to one thread, so that fits run
    side by side in processes do not oversubscribe the cores."""
    n = n_threads or available_cores()
    with _controller().limit(limits=1, user_api="blas" if n > 1 else None):
        if n <= 1:
            yield map
            return
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="gaussmix") as executor:

            def mapper(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
                return _bounded_map(executor, fn, items, 2 * n)

            yield mapper
