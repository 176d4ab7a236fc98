"""EM speed and memory: gaussmix against scikit-learn, in one process, from the same start.

For each workload both libraries fit the same data from identical explicit initial parameters
(weights_init, means_init, precisions_init) with tol=0 and the same max_iter; the table gives
seconds per iteration for each, their ratio, the relative difference of the final lower
bounds, and the peak traced memory (tracemalloc) of one fit of each (gaussmix's forked worker
processes included). Times are the best of five fits of each. The same run measures this
machine's dense GEMM rate and reports, for W1 and W4, the fraction of it that gaussmix reaches
(counting 4 N K D^2 flops per iteration for full covariances).

    .venv/bin/python benchmarks/bench_em.py              # all workloads, ~3-5 minutes
    .venv/bin/python benchmarks/bench_em.py --quick      # a tenth of the rows, for a smoke test
    .venv/bin/python benchmarks/bench_em.py W1 W4        # some workloads

Writes benchmarks/results/bench_em.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import gaussmix
from gaussmix import GaussianMixture
from gaussmix.em import parallel

WORKLOADS: dict[str, tuple[int, int, int, str]] = {
    "W1": (200_000, 16, 16, "full"),
    "W2": (200_000, 16, 16, "diag"),
    "W3": (1_000_000, 2, 8, "full"),
    "W4": (100_000, 64, 8, "full"),
    "W5": (200_000, 16, 16, "tied"),
    "W6": (200_000, 16, 16, "spherical"),
}


@dataclass
class Row:
    workload: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str
    iterations: int
    gaussmix_s_per_iter: float
    sklearn_s_per_iter: float
    speedup: float
    lower_bound_rel_diff: float
    gaussmix_peak_mb: float
    sklearn_peak_mb: float
    gemm_fraction: float | None
    float32_s_per_iter: float | None = None
    float32_speedup: float | None = None
    float32_lower_bound_rel_diff: float | None = None


def mixture_data(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    """Rows of a random Gaussian mixture with random full covariances (fixed seed)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d))
    factors = rng.normal(scale=0.4, size=(k, d, d)) + np.eye(d)
    labels = rng.integers(k, size=n)
    X = np.empty((n, d))
    for j in range(k):
        rows = labels == j
        X[rows] = means[j] + rng.normal(size=(rows.sum(), d)) @ factors[j].T
    return X


def initial_parameters(X: np.ndarray, k: int, covariance_type: str) -> dict[str, np.ndarray]:
    """Explicit start: equal weights, k distinct rows as means, the data's precision."""
    rng = np.random.default_rng(1)
    d = X.shape[1]
    means = X[rng.choice(X.shape[0], size=k, replace=False)]
    precision = np.linalg.inv(np.cov(X[:50_000].T).reshape(d, d))
    precisions = {
        "full": np.broadcast_to(precision, (k, d, d)).copy(),
        "tied": precision,
        "diag": np.tile(np.diag(precision), (k, 1)),
        "spherical": np.full(k, np.mean(np.diag(precision))),
    }[covariance_type]
    return {"weights_init": np.full(k, 1.0 / k), "means_init": means, "precisions_init": precisions}


def timed_fit(make: Callable[[], Any], X: np.ndarray, repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` fits, and the last fitted model."""
    times = []
    model = None
    for _ in range(repeats):
        model = make()
        start = time.perf_counter()
        model.fit(X)
        times.append(time.perf_counter() - start)
    return min(times), model


def peak_memory_mb(make: Callable[[], Any], X: np.ndarray) -> float:
    """Peak memory traced during one fit (numpy allocations included), in MB, with what
    gaussmix's forked workers traced at their peak (tracemalloc here cannot see it)."""
    parallel.reset_worker_memory()
    tracemalloc.start()
    tracemalloc.reset_peak()
    make().fit(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (peak + parallel.worker_memory()) / 2**20


def gemm_rate(size: int = 3000, repeats: int = 3) -> float:
    """This machine's dense float64 GEMM rate, in GFLOP/s (numpy's BLAS, all threads)."""
    a = np.random.default_rng(0).random((size, size))
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(name: str, scale: float, iterations: int, repeats: int, rate: float) -> Row:
    n, d, k, covariance_type = WORKLOADS[name]
    n = int(n * scale)
    X = mixture_data(n, d, k)
    init = initial_parameters(X, k, covariance_type)
    common = dict(covariance_type=covariance_type, tol=0.0, max_iter=iterations, **init)

    def ours(max_iter: int = iterations) -> GaussianMixture:
        return GaussianMixture(k, **(common | {"max_iter": max_iter}))

    def theirs(max_iter: int = iterations) -> SkGaussianMixture:
        return SkGaussianMixture(k, **(common | {"max_iter": max_iter}))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t_ours, fitted_ours = timed_fit(ours, X, repeats)
        t_theirs, fitted_theirs = timed_fit(theirs, X, repeats)
        mem_ours = peak_memory_mb(lambda: ours(2), X)
        mem_theirs = peak_memory_mb(lambda: theirs(2), X)
    per_iter_ours, per_iter_theirs = t_ours / iterations, t_theirs / iterations
    lb_ours, lb_theirs = fitted_ours.lower_bound_, fitted_theirs.lower_bound_
    fraction = None
    if name in ("W1", "W4"):
        fraction = 4 * n * k * d * d / per_iter_ours / 1e9 / rate
    single: dict[str, float | None] = {}
    if name == "W1":  # dtype=np.float32 against gaussmix's own float64, same start
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t32, fitted32 = timed_fit(
                lambda: GaussianMixture(k, dtype=np.float32, **common), X, repeats
            )
        single = {
            "float32_s_per_iter": t32 / iterations,
            "float32_speedup": t_ours / t32,
            "float32_lower_bound_rel_diff": abs(fitted32.lower_bound_ - lb_ours) / abs(lb_ours),
        }
    return Row(
        workload=name,
        n_samples=n,
        n_features=d,
        n_components=k,
        covariance_type=covariance_type,
        iterations=iterations,
        gaussmix_s_per_iter=per_iter_ours,
        sklearn_s_per_iter=per_iter_theirs,
        speedup=per_iter_theirs / per_iter_ours,
        lower_bound_rel_diff=abs(lb_ours - lb_theirs) / abs(lb_theirs),
        gaussmix_peak_mb=mem_ours,
        sklearn_peak_mb=mem_theirs,
        gemm_fraction=fraction,
        **single,
    )


def print_table(rows: list[Row], rate: float) -> None:
    header = (
        f"{'':4} {'N x D, K, type':28} {'gaussmix s/it':>13} {'sklearn s/it':>13} "
        f"{'speed-up':>9} {'lb rel diff':>12} {'peak MB ours':>13} {'peak MB sk':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        shape = f"{r.n_samples:,} x {r.n_features}, K={r.n_components}, {r.covariance_type}"
        print(
            f"{r.workload:4} {shape:28} {r.gaussmix_s_per_iter:13.4f} {r.sklearn_s_per_iter:13.4f} "
            f"{r.speedup:8.1f}x {r.lower_bound_rel_diff:12.1e} {r.gaussmix_peak_mb:13.1f} "
            f"{r.sklearn_peak_mb:11.1f}"
        )
    speedups = [r.speedup for r in rows]
    print(f"\nmedian speed-up {statistics.median(speedups):.1f}x, lowest {min(speedups):.1f}x")
    print(f"dense GEMM rate of this machine: {rate:.1f} GFLOP/s")
    for r in rows:
        if r.gemm_fraction is not None:
            print(
                f"{r.workload}: gaussmix reaches {r.gemm_fraction:.0%} of it (4 N K D^2 flops/iter)"
            )
        if r.float32_speedup is not None:
            print(
                f"{r.workload} with dtype=float32: {r.float32_s_per_iter:.4f} s/iter, "
                f"{r.float32_speedup:.2f}x gaussmix float64, lower bound within "
                f"{r.float32_lower_bound_rel_diff:.1e} relative"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workloads", nargs="*", default=list(WORKLOADS))
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_em.json"
    )
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    rate = gemm_rate()
    rows = [run(w, scale, args.iterations, args.repeats, rate) for w in args.workloads]
    print_table(rows, rate)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "sklearn": sklearn.__version__,
            "gaussmix": gaussmix.__version__,
            "gemm_gflops": rate,
        },
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "scale": scale,
        "rows": [asdict(r) for r in rows],
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
