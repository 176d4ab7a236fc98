"""The passes of EM over a Dask collection, run by Dask: an executor behind ``Workers``.

``run_em`` asks its workers for a pass (``fold``: a task on every share of the rows, folded with
``merge``). Here a share is one row chunk of a ``DaskSource``, the task is the engine's own
(``loop._share_stats``: ``chunk_stats`` over the chunk's blocks) and the fold is a fixed tree of
``merge`` over the chunks in row order, built into the pass's task graph and run on the
workers; only the merged statistics come back to this process, where the M-step runs. The task,
and with it the parameters, is one key of each pass's graph, so it is sent once per pass and
copied to a worker only as its chunks need it.

The tree's shape depends only on the number of chunks, never on which worker ran what or when,
so a pass gives the same bits whatever the scheduling, and after a worker dies and its chunks
are recomputed elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import reduce
from typing import Any, TypeVar

import numpy as np

from gaussmix.data.sources import ArraySource, as_float
from gaussmix.em.parallel import Task, available_cores

R = TypeVar("R")

# Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536. Setting any trim threshold
# turns off glibc's dynamic mmap threshold, so every block buffer over 128 KB is mapped anew
# and faulted in page by page: measured here (500,000 x 2, K=8, one pass) 0.47-0.53 s with a
# threshold set, 128 MB or 65536, against 0.03-0.04 s with none. The clusters gaussmix starts
# leave it unset (glibc's defaults, as in this process).
UNSET_IN_WORKERS = "MALLOC_TRIM_THRESHOLD_"


def _on_chunk(task: Task[R], X: Any, weights: Any) -> R:
    """``task`` on one row chunk, its blocks mapped in turn (one thread per worker)."""
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    return task(ArraySource(as_float(np.asarray(X)), w), map)


# Statistics merged per reduction task: one task round trip costs about 10 ms, so a pass over
# up to FAN_IN chunks merges in one task, and a larger one in a tree of such tasks.
FAN_IN = 16


def _fold(combine: Callable[[R, R], R], *parts: R) -> R:
    return reduce(combine, parts)


def tree(parts: list[Any], combine: Callable[[R, R], R], fan_in: int = FAN_IN) -> Any:
    """``combine`` over ``parts`` (dask.delayed objects, in row order) as a fixed tree: each
    run of ``fan_in`` neighbours folded left to right in one task, level by level; one
    delayed result."""
    from dask import delayed

    fold = delayed(_fold, pure=True)
    while len(parts) > 1:
        groups = [parts[i : i + fan_in] for i in range(0, len(parts), fan_in)]
        parts = [group[0] if len(group) == 1 else fold(combine, *group) for group in groups]
    return parts[0]


class DaskWorkers:
    """The row chunks of a ``DaskSource``, each a share, worked through by Dask's scheduler
    (the active ``distributed.Client``, else threads in this process)."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def _per_chunk(self, task: Task[R]) -> list[Any]:
        from dask import delayed

        task_d = delayed(task, pure=True, traverse=False)
        on_chunk = delayed(_on_chunk, pure=True)
        return [on_chunk(task_d, x, w) for x, w in self.source.blocks()]

    def run(self, task: Task[R]) -> list[R]:
        """``task`` on every row chunk; the results brought here, in row order."""
        import dask

        return list(dask.compute(*self._per_chunk(task), optimize_graph=False))

    def fold(self, task: Task[R], combine: Callable[[R, R], R], identity: R) -> R:
        """``task`` on every row chunk, combined on the workers by the fixed tree (see ``tree``)."""
        import dask

        parts = self._per_chunk(task)
        if not parts:
            return identity
        (result,) = dask.compute(tree(parts, combine), optimize_graph=False)
        return combine(identity, result)


def local_cluster(n_workers: int, **kwargs: Any) -> Any:
    """A ``distributed.LocalCluster`` of ``n_workers`` processes with one thread each, no
    dashboard, and glibc's own malloc thresholds (see ``UNSET_IN_WORKERS``).

    Parameters
    ----------
    n_workers : worker processes.  kwargs : passed on to ``LocalCluster``.
    """
    import dask
    from distributed import LocalCluster

    key = "distributed.nanny.pre-spawn-environ"
    environ = {k: v for k, v in dask.config.get(key).items() if k != UNSET_IN_WORKERS}
    with dask.config.set({key: environ}):
        options: dict[str, Any] = {
            "n_workers": n_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
            # its HTTP routes on a free port: no warning when 8787 is taken, no dashboard
            "scheduler_kwargs": {"dashboard_address": ":0"},
        }
        options.update(kwargs)
        return LocalCluster(**options)


@contextmanager
def dask_client(scheduler: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` of the scheduler at ``scheduler`` (``tcp://host:8786``), or of
    a ``local_cluster`` of one worker per available core when it is None; closed on exit.
    OSError when the scheduler cannot be reached."""
    from distributed import Client

    if scheduler is not None:
        with Client(scheduler, timeout="10s") as client:
            yield client
        return
    with local_cluster(available_cores()) as cluster, Client(cluster) as client:
        yield client
