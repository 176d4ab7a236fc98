"""Both cores: the rows are shared out to forked worker processes, or their blocks to threads.

Two ways to use every core, behind one interface (``Workers.run``: a task applied to each share
of the rows, results in row order):

* Forked processes (Linux, in-memory arrays, memory maps and ``.npy`` files with enough rows):
  the rows are cut into one contiguous share per core at block boundaries; this process works
  through the first share while each other share is worked through by a child forked once per
  fit, which sees the rows through the pages it shares with this process (nothing is copied)
  and, each pass, receives the task (the parameters, a few KB) and sends back its share's
  statistics. Measured on this project's 2-core machines: 1.8-1.9x over one core, where
  threads reach 1.4-1.5x because each block makes some twenty numpy calls that hand the
  GIL back and forth.
* Threads (everywhere else): NumPy's elementwise loops and BLAS release the GIL, so blocks are
  handed to a small pool of threads. At most ``2 * workers`` blocks are in flight, so a
  memory-mapped or streamed source is never read ahead by more than that.

Either way BLAS's own threads are limited to one: measured on these machines, OpenBLAS threads
on small GEMMs, or beside a busy neighbour, cost up to 10x, while one BLAS thread per worker
scales.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache, reduce
from multiprocessing.connection import Connection
from typing import Any, Protocol, TypeVar

from threadpoolctl import ThreadpoolController

from gaussmix.data.sources import DataSource

T = TypeVar("T")
R = TypeVar("R")

BlockMap = Callable[[Callable[[T], R], Iterable[T]], Iterator[R]]

# A task runs on one share of the rows, mapping its blocks with the given map; it must pickle
# (a functools.partial of a module-level function) to reach a forked worker.
Task = Callable[[DataSource, BlockMap[Any, Any]], R]

# Forking costs about 10 ms (and 10 ms more to tear a child down): below this many rows a fit's
# passes are too short to repay it, and threads share the blocks instead.
FORK_MIN_ROWS = 50_000
# GAUSSMIX_FORK=0 in the environment keeps every fit in its own process (threads only).
FORK = os.environ.get("GAUSSMIX_FORK", "1") != "0"

# The memory that forked workers traced (tracemalloc) while working, beyond what they inherited:
# for each pass, the sum over its workers of each one's peak so far; the largest since
# ``reset_worker_memory``. tracemalloc in this process cannot see the children's allocations,
# so the memory tests and the benchmark add this to this process's own peak.
_worker_peak = [0]


def worker_memory() -> int:
    """Bytes traced by forked workers at their peak (see ``_worker_peak``); 0 when tracemalloc
    was not tracing or no worker ran."""
    return _worker_peak[0]


def reset_worker_memory() -> None:
    _worker_peak[0] = 0


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


# True within ``one_thread`` (in this context): every native pool is held at one thread already
_AT_ONE_THREAD: ContextVar[bool] = ContextVar("gaussmix_at_one_thread", default=False)


@contextmanager
def one_thread() -> Iterator[None]:
    """Every native pool (BLAS, OpenMP) limited to one thread within the block; the one-thread
    ``block_map`` of each fit inside (``select``'s grid in this process) then need not set and
    restore the limits again, some 20-30 us a fit."""
    if _AT_ONE_THREAD.get():
        yield
        return
    with _controller().limit(limits=1, user_api=None):
        token = _AT_ONE_THREAD.set(True)
        try:
            yield
        finally:
            _AT_ONE_THREAD.reset(token)


@contextmanager
def block_map(n_threads: int | None = None) -> Iterator[BlockMap[Any, Any]]:
    """A ``map`` over blocks that uses ``n_threads`` threads (default: every available core),
    with BLAS limited to one thread meanwhile. With one thread it is the builtin ``map``, and
    every native pool (OpenMP too, as in k-means) is limited to one thread, so that fits run
    side by side in processes do not oversubscribe the cores."""
    n = n_threads or available_cores()
    if n <= 1:
        with one_thread():
            yield map
        return
    with _controller().limit(limits=1, user_api="blas"):
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="gaussmix") as executor:

            def mapper(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
                return _bounded_map(executor, fn, items, 2 * n)

            yield mapper


class Workers(Protocol):
    """Where the passes over the rows run."""

    def run(self, task: Task[R]) -> list[R]:
        """``task`` applied to every share of the rows; the results in row order."""
        ...

    def fold(self, task: Task[R], combine: Callable[[R, R], R], identity: R) -> R:
        """``task`` on every share, the results combined in row order (from ``identity``)."""
        ...


def fold_in_order(workers: Workers, task: Task[R], combine: Callable[[R, R], R], identity: R) -> R:
    """``Workers.fold`` for workers whose results come here: a left fold in row order."""
    return reduce(combine, workers.run(task), identity)


class InProcess:
    """One share, all the rows, in this process; its blocks mapped by ``map_blocks`` (the
    builtin ``map``, or ``block_map``'s threads)."""

    def __init__(self, source: DataSource, map_blocks: BlockMap[Any, Any] = map) -> None:
        self.source = source
        self.map_blocks = map_blocks

    def run(self, task: Task[R]) -> list[R]:
        return [task(self.source, self.map_blocks)]

    def fold(self, task: Task[R], combine: Callable[[R, R], R], identity: R) -> R:
        return fold_in_order(self, task, combine, identity)


def _serve(conn: Connection, share: DataSource) -> None:
    """A forked worker's loop: run each task received on ``share``, send back ("ok", result,
    peak) or ("error", exception, peak), where peak is the memory traced here beyond what was
    inherited (0 unless tracemalloc is tracing); stop at None or when the pipe closes."""
    tracing = tracemalloc.is_tracing()
    inherited = tracemalloc.get_traced_memory()[0] if tracing else 0
    if tracing:
        tracemalloc.reset_peak()
    try:
        while (task := conn.recv()) is not None:
            try:
                status, value = "ok", task(share, map)
            except Exception as exc:  # handed to the parent, which raises it
                status, value = "error", exc
            peak = tracemalloc.get_traced_memory()[1] - inherited if tracing else 0
            try:
                conn.send((status, value, peak))
            except (pickle.PicklingError, TypeError, AttributeError):
                conn.send(("error", RuntimeError(f"{value!r}"), peak))
    except (EOFError, OSError, KeyboardInterrupt):  # the parent has gone or was interrupted
        pass


class Forked:
    """Contiguous shares of the rows: the first worked through in this process, each other in
    a child forked once (see the module docstring). Close with ``close``."""

    def __init__(self, shares: list[DataSource]) -> None:
        context = multiprocessing.get_context("fork")
        self.local = shares[0]
        self.children: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
        try:
            for share in shares[1:]:
                here, there = context.Pipe()
                child = context.Process(
                    target=_serve, args=(there, share), name="gaussmix-worker", daemon=True
                )
                child.start()
                there.close()
                self.children.append((child, here))
        except BaseException:
            self.close(failed=True)
            raise

    def run(self, task: Task[R]) -> list[R]:
        for child, conn in self.children:
            try:
                conn.send(task)
            except OSError:
                raise _stopped(child) from None
        results: list[R] = []
        error: BaseException | None = None
        try:
            results.append(task(self.local, map))
        except BaseException as exc:
            error = exc
        # every child's reply is read, even after an error, so none is left in a pipe
        peaks = 0
        for child, conn in self.children:
            try:
                status, value, peak = conn.recv()
            except (EOFError, OSError):
                status, value, peak = "error", _stopped(child), 0
            peaks += peak
            if status == "error":
                error = error or value
            else:
                results.append(value)
        _worker_peak[0] = max(_worker_peak[0], peaks)
        if error is not None:
            raise error
        return results

    def fold(self, task: Task[R], combine: Callable[[R, R], R], identity: R) -> R:
        return fold_in_order(self, task, combine, identity)

    def close(self, failed: bool = False) -> None:
        """Tell the children to stop (terminate them after a failure). They are not waited
        for: ``multiprocessing`` reaps them on its next start or at exit."""
        for child, conn in self.children:
            try:
                if not failed:
                    conn.send(None)
            except OSError:
                pass
            conn.close()
            if failed and child.is_alive():
                child.terminate()
        self.children = []


def _stopped(child: multiprocessing.process.BaseProcess) -> RuntimeError:
    child.join(timeout=1.0)
    return RuntimeError(
        f"a gaussmix worker process stopped (exit code {child.exitcode}); try n_threads=1, or "
        "GAUSSMIX_FORK=0 in the environment, to fit in this process alone"
    )


def _can_fork() -> bool:
    return (
        FORK
        and sys.platform.startswith("linux")
        and "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon  # daemons may not have children
    )


def shares_of(source: DataSource, rows: int, n_workers: int) -> list[DataSource] | None:
    """The rows cut into at most ``n_workers`` contiguous shares at multiples of ``rows``
    (so the blocks are those of one pass), or None when the source cannot be cut or forking
    would not pay (see ``FORK_MIN_ROWS``)."""
    n = source.n_samples
    slice_rows = getattr(source, "slice_rows", None)
    n_blocks = -(-n // rows)
    if slice_rows is None or n_workers <= 1 or n < FORK_MIN_ROWS or n_blocks < 2 * n_workers:
        return None
    per_share = -(-n_blocks // n_workers) * rows
    return [slice_rows(start, min(start + per_share, n)) for start in range(0, n, per_share)]


def forked_shares(
    source: DataSource, rows: int, n_threads: int | None = None
) -> list[DataSource] | None:
    """The shares of the rows that ``workers`` forks processes for, or None where it works in
    this process (a source with its own executor aside)."""
    # the shares first: asking whether this process may fork costs some 20 us, a tenth of a
    # small fit of select's grid, which runs on one thread and so never forks
    shares = shares_of(source, rows, n_threads or available_cores())
    return shares if shares is not None and _can_fork() else None


@contextmanager
def workers(
    source: DataSource, rows: int, n_threads: int | None = None, fork: bool = True
) -> Iterator[Workers]:
    """The workers for the passes of a fit over ``source`` in blocks of ``rows`` rows:
    ``n_threads`` of them (default: every available core), forked processes where the source
    allows it and ``fork`` is set (see the module docstring), else threads. A source that
    brings its own executor (``source.workers()``, as a ``DaskSource`` does) runs there."""
    own = getattr(source, "workers", None)
    if own is not None:
        yield own()
        return
    n = n_threads or available_cores()
    shares = forked_shares(source, rows, n) if fork else None
    if shares is None:
        with block_map(n) as map_blocks:
            yield InProcess(source, map_blocks)
        return
    # every native pool at one thread, here and (inherited) in the children
    with _controller().limit(limits=1, user_api=None):
        pool = Forked(shares)
        failed = True
        try:
            yield pool
            failed = False
        finally:
            pool.close(failed)
