"""The passes of EM over a Dask collection, run by Dask: an executor behind ``Workers``.

``run_em`` asks its workers for a pass (``fold``: a task on every share of the rows, folded with
``merge``). Here a share is one row chunk of a ``DaskSource`` and the task is the engine's own
(``loop._share_stats``: ``chunk_stats`` over the chunk's blocks), run by Dask where the chunk
lives. The statistics (K x d x d numbers a chunk) are merged by a fixed tree in row order:
runs of ``RUN`` consecutive chunks, then the runs (``fold_runs``). A run that one worker holds
whole is merged there and comes back as one result; the chunks of a run split among workers
come back each and their run is merged here, by the same operations. Then the M-step runs here.

A pass costs one task round trip, the floor Dask allows (about 10 ms on these machines, most of
an iteration on small data; the first design's cost three; see ``benchmarks/README.md``):

* The parameters travel inside the tasks (a few KB to a few hundred; pickled once per message),
  not as a key of their own that a worker must hold before any chunk task can start.
* With a ``distributed.Client`` and rows persisted on the workers, the chunks are grouped by the
  worker that holds them (asked once per fit) and each group is one task that returns the
  merged statistics of its whole runs and those of its other chunks; all groups go to the
  scheduler in one message
  (``Client.map``: one message per submit would wait out the client's 10 ms batching), and
  their results come back in one gather. So a pass is one task per worker, whatever the number
  of chunks. A worker holding more than its share of the chunks first copies its excess to the
  others, once per fit (``balance``), or its group would run while the others idle.
* Each group's task is held to its holder, strictly (``pin``: a per-key ``workers``
  annotation, ``allow_other_workers=False``). Unrestricted, a pass's tasks over few chunks
  (under 5) are "root-ish" to Dask (their task group, the held passes', is larger than twice
  the threads, on few dependencies): queued and handed to whichever worker asks first, so a
  chunk (12.8 MB on W1's two) was copied to the other worker most passes; loosely restricted
  they may still be stolen. A strict task waits for its worker forever, so while a pass runs
  the workers are looked at every ``CHECK_S``: a holder gone, the pass is sent again
  unrestricted (Dask rebuilds the lost chunks where it can) and the next one groups afresh.
* A pass's futures are kept and released 16 passes at a time (``DaskWorkers._hold``); then,
  too, the workers are looked at: one joined or left since the chunks were grouped, the next
  pass groups them afresh, and rebalances them onto the workers there are then.
* Each chunk's statistics depend only on its rows, and the merge tree only on the number of
  chunks, so a pass gives the same bits whichever worker ran what, however the chunks were
  grouped, and after a worker dies and its chunks are recomputed elsewhere.
  How much a worker merges depends on placement: Dask's default scheduler (root tasks
  queued) spreads a persisted array's chunks one by one, so few runs are whole; co-assigned
  (``local_cluster(co_assign=True)``) they land in long runs. The clusters gaussmix starts
  keep Dask's default: co-assigned, W1's two chunks ran 1.2-1.7x slower an iteration in eight
  alternating runs (benchmarks/README.md), which outweighs the bytes it saves.
* Without a client (Dask's threaded scheduler in this process), or for rows not persisted, the
  chunk tasks go through ``dask.compute`` and their results are merged here by the same tree.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


def _on_chunks(task: Task[R], rows: list[Any], weights: list[Any] | None) -> list[R]:
    """``task`` on each row chunk of ``rows`` (with its ``weights``, when there are any);
    the results in the order given."""
    return [_on_chunk(task, x, None if weights is None else weights[i]) for i, x in enumerate(rows)]


# The leaves of a pass's fixed merge tree: runs of this many consecutive chunks (row order,
# aligned: chunks 0-15, 16-31, ...). A worker holding a whole run merges it before sending.
RUN = 16


def runs_of(n_chunks: int, run: int = RUN) -> list[range]:
    """The chunks 0..n_chunks-1 as aligned runs of ``run`` consecutive ones (the last shorter)."""
    return [range(start, min(start + run, n_chunks)) for start in range(0, n_chunks, run)]


def fold_run(
    results: Sequence[R] | Mapping[int, R],
    run: Iterable[int],
    combine: Callable[[R, R], R],
    identity: R,
) -> R:
    """The results at positions ``run`` folded left to right from ``identity``: one node of the
    tree, computed by these operations wherever it is computed (a worker, or here)."""
    return reduce(combine, (results[i] for i in run), identity)


def fold_runs(results: Sequence[R], combine: Callable[[R, R], R], identity: R, run: int) -> R:
    """The fixed tree a pass's chunk results are merged by: each run of ``run`` consecutive
    ones folded left to right from ``identity``, then the runs alike (the same operations, so
    the same bits, whether a run is folded on a worker or here)."""
    runs = [fold_run(results, r, combine, identity) for r in runs_of(len(results), run)]
    return fold_run(runs, range(len(runs)), combine, identity)


def whole_runs(group: Sequence[int], n_chunks: int, run: int) -> tuple[list[int], list[int]]:
    """Of the chunks a worker holds (``group``, ascending), the runs it holds whole (by index
    in ``runs_of``) and the chunks of the other runs (each sent unmerged)."""
    held = set(group)
    runs = runs_of(n_chunks, run)
    whole = [r for r, chunks in enumerate(runs) if held.issuperset(chunks)]
    merged = {i for r in whole for i in runs[r]}
    return whole, [i for i in group if i not in merged]


def _on_chunks_folded(
    task: Task[R],
    combine: Callable[[R, R], R],
    identity: R,
    runs: list[list[int]],
    rows: list[Any],
    weights: list[Any] | None,
) -> tuple[list[R], list[R], str, float]:
    """``task`` on each row chunk of ``rows``; each run of positions in ``runs`` folded as
    ``fold_runs`` folds a run, then the results of the chunks in no run, in order; the
    address of the worker that ran it, and the CPU seconds of the thread that ran it (the
    work itself, whatever the machine's load made of its wall time)."""
    from distributed import get_worker

    start = time.thread_time()
    results = _on_chunks(task, rows, weights)
    in_runs = {i for r in runs for i in r}
    folded = [fold_run(results, r, combine, identity) for r in runs]
    singles = [s for i, s in enumerate(results) if i not in in_runs]
    return folded, singles, get_worker().address, time.thread_time() - start


# Results of earlier passes left on the workers until released together (see ``DaskWorkers._hold``).
HELD_PASSES = 16
HELD_BYTES = 16 * 2**20
# Seconds between looks at the workers while a pass runs, for a holder that is gone
CHECK_S = 1.0


def _nbytes(result: Any) -> int:
    """The bytes of the arrays a task's result holds (a ``SuffStats``'s), 0 for others."""
    return sum(v.nbytes for v in getattr(result, "__dict__", {}).values() if hasattr(v, "nbytes"))


def _futures(collection: Any) -> list[Any] | None:
    """The futures of a persisted collection's chunks in row order, or None when it is not
    persisted (its chunks are tasks still to run)."""
    from distributed import Future

    if collection is None:
        return None
    graph = collection.__dask_graph__()
    keys = (
        [key for (key,) in collection.__dask_keys__()]
        if collection.ndim == 2
        else list(collection.__dask_keys__())
    )
    futures = [graph.get(key) for key in keys]
    return futures if all(isinstance(f, Future) for f in futures) else None


def by_holder(futures: Sequence[Any], holders: dict[Any, Sequence[str]]) -> dict[str, list[int]]:
    """The positions of ``futures`` grouped by the first worker (by address) that holds each,
    in order within a group ("" for those held by none)."""
    groups: dict[str, list[int]] = {}
    for i, future in enumerate(futures):
        where = holders.get(future.key) or ("",)
        groups.setdefault(sorted(where)[0], []).append(i)
    return groups


def balance(groups: dict[str, list[int]], workers: Sequence[str]) -> dict[int, str]:
    """The chunks to move so that no worker holds more than its share (the number of chunks
    over the number of workers, rounded up): position -> worker to move it to, the last
    chunks of the fullest groups to the emptiest workers."""
    n_chunks = sum(map(len, groups.values()))
    share = -(-n_chunks // max(len(workers), 1))
    emptiest = sorted(workers, key=lambda w: len(groups.get(w, [])))
    room = [w for w in emptiest for _ in range(share - len(groups.get(w, [])))]
    excess = [i for w, group in groups.items() for i in (group[share:] if w else group)]
    return dict(zip(sorted(excess), room, strict=False))


def _same(x: Any) -> Any:
    return x


class DaskWorkers:
    """The row chunks of a ``DaskSource``, each a share, worked through by Dask's scheduler
    (the active ``distributed.Client``, else threads in this process)."""

    def __init__(self, source: Any, run_length: int = RUN) -> None:
        self.source = source
        self.run_length = run_length  # the leaves of the merge tree (``fold_runs``)
        self._groups: list[list[int]] = []
        self._holders: list[str] = []  # the worker holding each group
        self._seen: set[str] = set()  # the workers there were when the chunks were grouped
        self._rows: list[Any] = []
        self._weights: list[Any] | None = None
        self._held: list[list[Any]] = []
        self._plan: list[tuple[list[int], list[list[int]], list[int]]] = []
        self._plan_of: list[list[int]] | None = None
        self._held_bytes = 0
        self.passes = 0  # passes ``fold`` sent as group tasks
        self.tasks = 0  # group tasks ``fold`` sent
        self.away = 0  # of them, those that ran on another worker than their chunks' holder
        self.task_cpu = 0.0  # their threads' CPU seconds on the workers (benchmarks/bench_dask.py)

    # Each pass's group tasks are restricted to their holders' workers (``_map``); False sends
    # them unrestricted, as before, only to measure what that is worth (benchmarks/bench_dask.py)
    pin = True

    def _per_chunk(self, task: Task[R]) -> list[R]:
        """``task`` on every row chunk, through ``dask.compute``; results in row order."""
        import dask
        from dask import delayed

        on_chunk = delayed(_on_chunk, pure=True)
        parts = [on_chunk(task, x, w) for x, w in self.source.blocks()]
        return list(dask.compute(*parts, optimize_graph=False))

    def _client(self) -> Any | None:
        """The active client when the rows (and weights) are persisted on its workers, with
        the chunks grouped by holder (once per fit); None: the passes go through
        ``dask.compute``."""
        from gaussmix.data.dask_source import active_client

        client = active_client()
        rows = None if client is None else _futures(self.source.X)
        weights = _futures(self.source.weights)
        if client is None or rows is None or (self.source.weights is not None and not weights):
            return None
        if not self._groups:  # where the chunks are: once per fit, and after a failover
            self._place(client, rows, weights)
        return client

    def run(self, task: Task[R]) -> list[R]:
        """``task`` on every row chunk; the results brought here, in row order."""
        client = self._client()
        if client is None:
            return self._per_chunk(task)
        rows, weights, groups = self._rows, self._weights, self._groups
        futures, replies = self._pass(
            client,
            _on_chunks,
            [task] * len(groups),
            [[rows[i] for i in group] for group in groups],
            [None if weights is None else [weights[i] for i in group] for group in groups],
        )
        results: list[Any] = [None] * len(rows)
        for group, stats in zip(groups, replies, strict=True):
            for i, s in zip(group, stats, strict=True):
                results[i] = s
        self._hold(client, futures, sum(map(_nbytes, results)))
        return results

    def _plans(self) -> list[tuple[list[int], list[list[int]], list[int]]]:
        """Per group (as ``_place`` left them): the runs its worker holds whole, their chunks'
        positions within the group, and its other chunks (taken once per placement)."""
        if self._plan_of is not self._groups:
            n = len(self._rows)
            runs = runs_of(n, self.run_length)
            self._plan = []
            for group in self._groups:
                whole, rest = whole_runs(group, n, self.run_length)
                position = {chunk: p for p, chunk in enumerate(group)}
                local = [[position[i] for i in runs[r]] for r in whole]
                self._plan.append((whole, local, rest))
            self._plan_of = self._groups
        return self._plan

    def _map(
        self,
        client: Any,
        func: Callable[..., Any],
        on: Sequence[str] | None,
        *args: list[Any],
        strict: bool = True,
    ) -> list[Any]:
        """``func`` on each item of ``args``, all in one message to the scheduler; the ``i``-th
        task restricted to worker ``on[i]`` (none when ``on`` is None): to it alone when
        ``strict``, else preferred (run elsewhere when that worker is gone)."""
        import dask

        token = uuid.uuid4().hex
        keys = [f"{func.__name__}-{token}-{i}" for i in range(len(args[0]))]
        if on is None:
            return client.map(func, *args, key=keys)
        # strict: a task held to its worker is never stolen, and with restrictions it is no
        # longer "root-ish", which Dask's queuing would give to whichever worker asks first
        # (a pass's tasks join one task group over the held passes); per key, by a callable
        where = {key: [worker] for key, worker in zip(keys, on, strict=True)}
        with dask.annotate(workers=where.__getitem__, allow_other_workers=not strict):
            return client.map(func, *args, key=keys)

    @staticmethod
    def _waited(client: Any, futures: list[Any], on: Sequence[str]) -> bool:
        """Whether ``futures``, tasks held to the workers ``on``, are done; False, the futures
        cancelled, when one of those workers is gone (a held task would wait for it forever)."""
        from distributed import wait

        while True:
            try:
                wait(futures, timeout=CHECK_S)
                return True
            except TimeoutError:  # a long pass, or a task held to a worker that is gone
                if not set(on) <= set(client.scheduler_info()["workers"]):
                    client.cancel(futures)
                    return False

    def _pass(
        self, client: Any, func: Callable[..., Any], *args: list[Any]
    ) -> tuple[list[Any], list[Any]]:
        """One task per group (``func`` on the group's items of ``args``) on the worker
        holding its chunks (``pin``), in one message; their futures and results. When a
        holder is gone, the pass is sent again unrestricted, Dask rebuilding the lost chunks
        where it can, and the next pass groups the chunks afresh."""
        if self.pin:
            futures = self._map(client, func, self._holders, *args)
            if self._waited(client, futures, self._holders):
                return futures, list(client.gather(futures))
            self._groups = []
        futures = self._map(client, func, None, *args)
        return futures, list(client.gather(futures))

    def _hold(self, client: Any, futures: list[Any], nbytes: int) -> None:
        """Keep a pass's futures (their results stay on the workers) and release the held ones
        together every ``HELD_PASSES`` passes or ``HELD_BYTES`` bytes: the release is a
        message to the scheduler, and the client sends the next message (the next pass) no
        sooner than 10 ms after it, which costs a short pass most of a round trip. Then, too,
        a look at the workers (a round trip, so not every pass): when they are no longer
        those the chunks were grouped over (one joined, or left), the next pass groups afresh."""
        self._held.append(futures)
        self._held_bytes += nbytes
        if len(self._held) >= HELD_PASSES or self._held_bytes >= HELD_BYTES:
            self._held, self._held_bytes = [], 0
            if self._groups and set(client.scheduler_info()["workers"]) != self._seen:
                self._groups = []

    def _place(self, client: Any, rows: list[Any], weights: list[Any] | None) -> None:
        """Group the chunks by the worker holding them, after copying a crowded worker's
        excess chunks to the others (``balance``; Dask may persist two chunks on one of two
        workers, and its groups would then run one after the other). The copies are tasks
        on the chunks, each meant for its worker but not held there: when that worker dies,
        Dask rebuilds them elsewhere (a copy held to a dead worker would wait for it forever,
        and so would every pass on it); they live as long as this fit, and the chunks are
        grouped by where the copies are."""
        from distributed import wait

        wait(rows)
        groups = by_holder(rows, client.who_has(rows))
        self._seen = set(client.scheduler_info()["workers"])
        moves = balance(groups, sorted(self._seen))
        if moves:
            moved = sorted(moves)
            targets = [moves[i] for i in moved]
            placed, kept = list(rows), None if weights is None else list(weights)
            for futures in (placed, kept):
                if futures is not None:
                    copies = self._map(
                        client, _same, targets, [futures[i] for i in moved], strict=False
                    )
                    for i, copy in zip(moved, copies, strict=True):
                        futures[i] = copy
            rows, weights = placed, kept
            wait(rows)
            groups = by_holder(rows, client.who_has(rows))
        self._rows, self._weights, self._groups = list(rows), weights, list(groups.values())
        self._holders = list(groups)

    def fold(self, task: Task[R], combine: Callable[[R, R], R], identity: R) -> R:
        """``task`` on every row chunk, the results combined by the fixed tree ``fold_runs``:
        a run of chunks one worker holds whole is folded there (one result sent for ``RUN``
        chunks), the others here; the same bits however the chunks are placed."""
        client = self._client()
        if client is None:
            return fold_runs(self._per_chunk(task), combine, identity, self.run_length)
        rows, weights, groups = self._rows, self._weights, self._groups
        plans = self._plans()
        holders = self._holders
        futures, replies = self._pass(
            client,
            _on_chunks_folded,
            [task] * len(groups),
            [combine] * len(groups),
            [identity] * len(groups),
            [local for _, local, _ in plans],
            [[rows[i] for i in group] for group in groups],
            [None if weights is None else [weights[i] for i in group] for group in groups],
        )
        folded: dict[int, R] = {}
        results: dict[int, R] = {}
        for (whole, _, rest), (merged, single, _, _) in zip(plans, replies, strict=True):
            folded.update(zip(whole, merged, strict=True))
            results.update(zip(rest, single, strict=True))
        away = sum(reply[2] != holder for reply, holder in zip(replies, holders, strict=True))
        self.passes, self.tasks, self.away = (
            self.passes + 1,
            self.tasks + len(replies),
            self.away + away,
        )
        self.task_cpu += sum(reply[3] for reply in replies)
        # a group ran away from its chunks' worker (unpinned, or after a failover): when the
        # workers are no longer those the chunks were grouped over (one died, left or joined),
        # the next pass groups the chunks afresh
        if away and self._groups and set(client.scheduler_info()["workers"]) != self._seen:
            self._groups = []
        self._hold(client, futures, sum(map(_nbytes, [*folded.values(), *results.values()])))
        runs = runs_of(len(rows), self.run_length)
        for r, chunks in enumerate(runs):
            if r not in folded:  # a run split among workers: folded here, as it would be there
                folded[r] = fold_run(results, chunks, combine, identity)
        return fold_run(folded, range(len(runs)), combine, identity)


def local_cluster(n_workers: int, co_assign: bool = False, **kwargs: Any) -> Any:
    """A ``distributed.LocalCluster`` of ``n_workers`` processes with one thread each, no
    dashboard and glibc's own malloc thresholds (see ``UNSET_IN_WORKERS``); on request a
    scheduler that places neighbouring chunks together.

    Parameters
    ----------
    n_workers : worker processes.
    co_assign : root tasks co-assigned (default False: queued, Dask's default scheduling).
    kwargs : passed on to ``LocalCluster``.
    """
    import dask
    from distributed import LocalCluster

    key = "distributed.nanny.pre-spawn-environ"
    environ = {k: v for k, v in dask.config.get(key).items() if k != UNSET_IN_WORKERS}
    # co-assigned root tasks: a persisted collection's neighbouring chunks land on one worker,
    # whose runs of them ``DaskWorkers.fold`` then merges there (see ``RUN``)
    queued = dask.config.get("distributed.scheduler.worker-saturation")
    saturation = math.inf if co_assign else queued
    with dask.config.set({key: environ, "distributed.scheduler.worker-saturation": saturation}):
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
