"""What a pass of EM on Dask sends back and costs, with runs of chunks merged on the workers.

A pass sends the parameters out in one task per worker and brings back statistics: before,
those of every row chunk (K(1 + d + d^2) floats each); now one merged result per run of
``RUN`` consecutive chunks a worker holds whole (``gaussmix.em.dask_workers.fold_runs``), and
each chunk's of the runs split among workers. How many runs are whole depends on where Dask
put the chunks: a persisted ``dask.array`` is spread chunk by chunk when the scheduler queues
its root tasks (its default, ``worker-saturation`` 1.1) and in long runs when it does not
(``inf``: consecutive root tasks co-assigned). So both placements are measured, each on a
``LocalCluster`` of two single-threaded workers, on W1 (200,000 x 16, K=16 full) in 64 and 256
row chunks: the bytes of statistics a pass brings back and the seconds a pass takes (E-step on
the workers, merges, the round trip), with every chunk's statistics sent (``run_length=1``,
what the design did before) and with runs of ``RUN``, timed in turn, best and median of
``--passes``.

    .venv/bin/python benchmarks/bench_dask_merge.py            # ~2 minutes
    .venv/bin/python benchmarks/bench_dask_merge.py --quick    # a tenth of the rows

Writes benchmarks/results/bench_dask_merge.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_em import WORKLOADS, initial_parameters, mixture_data

from gaussmix import GaussianMixture
from gaussmix.data.dask_source import DaskSource
from gaussmix.em.dask_workers import RUN, DaskWorkers, local_cluster
from gaussmix.em.loop import pass_stats


class Counted(DaskWorkers):
    """``DaskWorkers`` that record the bytes of statistics each pass brought back."""

    def __init__(self, source: Any, run_length: int) -> None:
        super().__init__(source, run_length)
        self.nbytes: list[int] = []

    def _hold(self, client: Any, futures: list[Any], nbytes: int) -> None:
        self.nbytes.append(nbytes)
        super()._hold(client, futures, nbytes)


def placement(workers: DaskWorkers) -> str:
    """The worker of each chunk, in row order, as digits (0, 1, ...)."""
    where = {i: g for g, group in enumerate(workers._groups) for i in group}
    return "".join(str(where[i]) for i in range(len(where)))


def measure(co_assign: bool, n: int, n_chunks: list[int], passes: int) -> dict[str, Any]:
    import dask.array as da
    from distributed import Client

    d, k, covariance = WORKLOADS["W1"][1:]
    X = mixture_data(n, d, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = GaussianMixture(k, covariance_type=covariance, max_iter=1,
                                **initial_parameters(X, k, covariance)).fit(X[:20_000])  # fmt: skip
    params = start._params()
    rows = start._chunk_rows(d)
    out: dict[str, Any] = {}
    with local_cluster(2, co_assign=co_assign) as cluster, Client(cluster):
        for chunks in n_chunks:
            source = DaskSource.open(da.from_array(X, chunks=(-(-n // chunks), d)))
            sides = {"every chunk": Counted(source, 1), f"runs of {RUN}": Counted(source, RUN)}
            times: dict[str, list[float]] = {name: [] for name in sides}
            results = {}
            for name, workers in sides.items():  # warm-up: placement and first pass
                results[name] = pass_stats(workers, rows, params)
            for _ in range(passes):
                for name, workers in sides.items():
                    t0 = time.perf_counter()
                    pass_stats(workers, rows, params)
                    times[name].append(time.perf_counter() - t0)
            a, b = results.values()
            out[str(chunks)] = {
                "placement": placement(sides["every chunk"]),
                "loglik relative difference": abs(a.loglik - b.loglik) / abs(a.loglik),
            } | {
                name: {
                    "bytes per pass": workers.nbytes[-1],
                    "best s": min(times[name]),
                    "median s": float(np.median(times[name])),
                }
                for name, workers in sides.items()
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_dask_merge.json"
    )
    args = parser.parse_args()
    n = WORKLOADS["W1"][0] // (10 if args.quick else 1)
    began, load = time.time(), os.getloadavg()[0]
    record: dict[str, Any] = {"rows": n, "run": RUN, "load at start": load}
    for label, co_assign in (("queued (Dask's default)", False), ("co-assigned", True)):
        record[label] = measure(co_assign, n, [64, 256], args.passes)
        for chunks, row in record[label].items():
            cells = "; ".join(
                f"{name}: {row[name]['bytes per pass'] / 1e6:.2f} MB, best "
                f"{row[name]['best s']:.3f} s, median {row[name]['median s']:.3f} s"
                for name in ("every chunk", f"runs of {RUN}")
            )
            print(f"{label}, {chunks} chunks: {cells}")
            print(f"    placement {row['placement']}")
    record["load at end"] = os.getloadavg()[0]
    record["wall s"] = time.time() - began
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"load {load:.1f} -> {record['load at end']:.1f}; wrote {args.out}")


if __name__ == "__main__":
    main()
