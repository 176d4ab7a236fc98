"""The fixed cost of a fit in ``select``'s grid, and where the grid should run.

``--fixed``: ``select(X)`` with its defaults (K = 1..9, mclust's fourteen models, in this
process) but ``max_iter=1``, so that each fit is its set-up (the initial responsibilities and
M-step, the E-step data structures), one EM iteration and its wrap-up (the final E-step, the
record); the time per fit is what a fit costs beyond its iterations, plus one. Old Faithful
(bundled) and synthetic sets of mclust's small sizes; ``--repeat`` calls, the minimum and the
median of the CPU time of this process (less disturbed by a busy neighbour than wall time).

``--backend``: the whole default ``select`` on synthetic sets of the sizes around
``PROCESSES_MIN_SIZE`` (rows x columns), in this process (``n_jobs=1``) and in joblib's worker
processes (``n_jobs=-1``), alternating, ``--repeat`` rounds, each call as a new command
makes it (no worker processes running, no hierarchical tree kept); wall time.

    .venv/bin/python benchmarks/bench_fixed_cost.py --fixed --repeat 9
    .venv/bin/python benchmarks/bench_fixed_cost.py --backend --repeat 2   # ~5 minutes
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

from gaussmix import select
from gaussmix.datasets import load_faithful


def synthetic(n: int, d: int, k: int = 4, seed: int = 0) -> np.ndarray:
    """n rows of a k-component mixture in d dimensions, each component its own shape."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d))
    labels = rng.integers(k, size=n)
    factors = rng.normal(size=(k, d, d)) * 0.5 + np.eye(d)
    return means[labels] + np.einsum("nd,nde->ne", rng.normal(size=(n, d)), factors[labels])


def fixed(repeat: int) -> None:
    sets = {
        "faithful 272x2": np.asarray(load_faithful().X, dtype=np.float64),
        "synthetic 150x1": synthetic(150, 1),
        "synthetic 150x3": synthetic(150, 3),
        "synthetic 150x4": synthetic(150, 4),
    }
    print("set                  ms per select (min, median)   fits   us per fit (min)")
    for name, X in sets.items():
        select(X, random_state=0, max_iter=1)  # the hierarchical tree, once per data set
        times = []
        for _ in range(repeat):
            start = time.process_time()
            result = select(X, random_state=0, max_iter=1)
            times.append(time.process_time() - start)
        fits = result.n_distinct + len(result.refined) + len(result.polished)
        print(
            f"{name:20s} {1e3 * min(times):8.1f} {1e3 * statistics.median(times):8.1f}"
            f"              {fits:4d}   {1e6 * min(times) / fits:8.0f}"
        )


def fresh() -> None:
    """As a new command starts: no hierarchical tree or k-means labels kept
    from an earlier call, and no worker processes left running (joblib reuses them)."""
    from joblib.externals.loky import get_reusable_executor

    from gaussmix.em import hc, init

    for cache in (hc._TREES, hc._CUTS, init._KMEANS):
        cache.clear()
    get_reusable_executor().shutdown(wait=True)


def backend(repeat: int) -> None:
    shapes = [(3_000, 2), (20_000, 4)]
    print("shape          n_jobs   wall s per round")
    rows: dict[tuple[tuple[int, int], int], list[float]] = {}
    for _ in range(repeat):
        for shape in shapes:
            X = synthetic(*shape)
            for jobs in (1, -1):
                fresh()
                start = time.perf_counter()
                select(X, random_state=0, n_jobs=jobs)
                rows.setdefault((shape, jobs), []).append(time.perf_counter() - start)
    for (shape, jobs), times in rows.items():
        rounds = "  ".join(f"{t:6.2f}" for t in times)
        print(f"{shape[0]:>6d} x {shape[1]}   {jobs:>6d}   {rounds}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixed", action="store_true", help="the fixed cost per fit")
    parser.add_argument("--backend", action="store_true", help="in this process or processes")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with open("/proc/loadavg") as f:
        print("load average:", " ".join(f.read().split()[:3]))
    if args.fixed or not args.backend:
        fixed(args.repeat)
    if args.backend:
        backend(args.repeat)


if __name__ == "__main__":
    main()
