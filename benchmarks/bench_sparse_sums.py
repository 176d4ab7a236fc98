"""The natural kernel's second product for full covariances: the GEMM T q' against the C loop
over the pairs of non-negligible responsibility (``stats._feature_sums``), in one process.

* ``blocks``: one block of rows (the fit's default size) of a separated mixture after a few
  iterations, for K components and D features: the share of (row, component) pairs above the
  threshold, the GEMM's and the C loop's time (median of 30, this thread's CPU time, one BLAS
  thread), and whether the kernel takes the loop there (``stats.sparse_share``).
* ``fits``: whole fits of bench_em.py's workloads, the loop allowed (``SPARSE_SCALE`` 1) and
  not (0), alternating within each round: marginal seconds per iteration, (fit of 12 - fit
  of 2) / 10, and the lower bounds' relative difference.
* ``pass``: one pass over W1's rows on one core, per part (the features, the first GEMM, the
  softmax, the sums, the rest), at the parameters after 8 iterations; and the same pass with
  every block's features kept from an earlier pass (a cache) against built anew.

    .venv/bin/python benchmarks/bench_sparse_sums.py               # all three, ~3 minutes
    .venv/bin/python benchmarks/bench_sparse_sums.py fits --rounds 7 --workloads W1 W3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
from bench_em import WORKLOADS, initial_parameters, mixture_data

from gaussmix import GaussianMixture
from gaussmix.em import compiled, stats
from gaussmix.em.covariance import NEGLIGIBLE
from gaussmix.em.params import Params


def cpu_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median CPU time of this thread over ``repeats`` calls, in ms."""
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return 1e3 * float(np.median(times))


def fitted(X: np.ndarray, k: int, iterations: int) -> Params:
    init: dict[str, Any] = initial_parameters(X, k, "full")
    return gaussmix_fit(X, k, "full", np.float64, init, iterations)._params()


def blocks() -> None:
    print("one block, after 8 iterations: K, D, F features, rows, share of pairs above the")
    print("threshold, the GEMM and the C loop in ms (this thread), loop taken by the kernel")
    with threadpool_limits(1):
        for k in (4, 8, 16):
            for d in (2, 4, 8, 12, 16):
                X = mixture_data(40_000, d, k)
                params = fitted(X, k, 8)
                if not stats.uses_natural_kernel(params):
                    continue
                rows = GaussianMixture(k)._chunk_rows(d)
                block = np.ascontiguousarray(X[:rows])
                T = stats._features(block, params)
                resp = stats.softmax_in_place(stats._weights_times(params.natural.weights_t, T))[0]
                center = params.natural.center
                share = float((resp > resp.max(axis=1, keepdims=True) * NEGLIGIBLE).mean())
                gemm = cpu_ms(partial(stats._times_transposed, T, resp), 30)
                loop = cpu_ms(
                    partial(compiled.feature_sums_full, block, center, resp, NEGLIGIBLE, resp.size),
                    30,
                )
                limit = stats.sparse_share(T.shape[0])
                taken = limit * k >= 1 and share <= limit  # as stats._feature_sums decides
                print(
                    f"K={k:2d} D={d:2d} F={T.shape[0]:3d} rows={rows:5d} share={share:.2f} "
                    f"GEMM {gemm:.3f} loop {loop:.3f} GEMM/loop {gemm / loop:.2f} "
                    f"{'taken' if taken else 'GEMM'}",
                    flush=True,
                )


def gaussmix_fit(
    X: np.ndarray, k: int, covariance_type: str, dtype: type, init: dict[str, Any], iterations: int
) -> GaussianMixture:
    model = GaussianMixture(
        k, covariance_type=covariance_type, tol=0.0, max_iter=iterations, dtype=dtype, **init
    )
    return model.fit(X)


def fits(names: list[str], rounds: int, dtype: type) -> None:
    print(f"fits ({np.dtype(dtype).name}): s/iter with the loop / without, alternating")
    for name in names:
        n, d, k, covariance_type = WORKLOADS[name]
        X = mixture_data(n, d, k)
        init: dict[str, Any] = initial_parameters(X, k, covariance_type)

        fit = partial(gaussmix_fit, X, k, covariance_type, dtype, init)
        fit(2)
        times: dict[float, list[float]] = {1.0: [], 0.0: []}
        bounds: dict[float, float] = {}
        for r in range(rounds):
            for scale in (1.0, 0.0) if r % 2 == 0 else (0.0, 1.0):
                stats.SPARSE_SCALE = scale
                start = time.perf_counter()
                model = fit(12)
                long = time.perf_counter() - start
                start = time.perf_counter()
                fit(2)
                times[scale].append((long - (time.perf_counter() - start)) / 10)
                bounds[scale] = model.lower_bound_
        stats.SPARSE_SCALE = 1.0
        new, old = np.array(times[1.0]), np.array(times[0.0])
        ratio = old / new
        print(
            f"{name}: loop {np.median(new):.4f} [{new.min():.4f}-{new.max():.4f}]  GEMM "
            f"{np.median(old):.4f} [{old.min():.4f}-{old.max():.4f}] s/iter; GEMM/loop "
            f"median {np.median(ratio):.2f} (rounds {', '.join(f'{x:.2f}' for x in ratio)}); "
            f"lower bounds differ by {abs(bounds[1.0] / bounds[0.0] - 1):.1e}",
            flush=True,
        )


def one_pass() -> None:
    X = mixture_data(200_000, 16, 16)
    params = fitted(X, 16, 8)
    natural = params.natural
    rows = GaussianMixture(16)._chunk_rows(16)
    parts = [X[i : i + rows] for i in range(0, len(X), rows)]

    def upto(stage: int) -> Callable[[], None]:
        def run() -> None:
            for block in parts:
                T = stats._features(block, params)
                if stage < 1:
                    continue
                L = stats._weights_times(natural.weights_t, T)
                if stage < 2:
                    continue
                resp = stats.softmax_in_place(L)[0]
                if stage < 3:
                    continue
                stats._feature_sums(block, T, resp, params)

        return run

    with threadpool_limits(1):
        cumulative = [cpu_ms(upto(s), 5) for s in range(4)]
        whole = cpu_ms(lambda: [stats.chunk_stats(b, params) for b in parts], 5)
        stats.SPARSE_SCALE = 0.0
        gemm_sums = cpu_ms(upto(3), 5) - cumulative[2]
        whole_gemm = cpu_ms(lambda: [stats.chunk_stats(b, params) for b in parts], 5)
        stats.SPARSE_SCALE = 1.0
        names = ["features", "first GEMM", "softmax", "sums (C loop)"]
        steps = np.diff([0.0, *cumulative])
        print(f"one pass over W1 on one core ({rows}-row blocks), ms:")
        print("  " + ", ".join(f"{n} {t:.1f}" for n, t in zip(names, steps, strict=True)))
        print(f"  the rest {whole - cumulative[-1]:.1f}; whole pass {whole:.1f}")
        print(f"  with the GEMM for the sums: sums {gemm_sums:.1f}, whole pass {whole_gemm:.1f}")
        cache = [stats._features(b, params) for b in parts]
        size = sum(T.nbytes for T in cache) / 2**20

        def build() -> None:
            for block in parts:
                stats._weights_times(natural.weights_t, stats._features(block, params))

        def reuse() -> None:
            for T in cache:
                stats._weights_times(natural.weights_t, T)

        built: list[float] = []
        kept: list[float] = []
        for r in range(7):
            for side in ("built", "kept") if r % 2 == 0 else ("kept", "built"):
                if side == "built":
                    built.append(cpu_ms(build, 1))
                else:
                    kept.append(cpu_ms(reuse, 1))
        print(
            f"features and first GEMM: built every pass {np.median(built):.1f} ms "
            f"[{min(built):.1f}-{max(built):.1f}], kept from an earlier pass ({size:.0f} MB) "
            f"{np.median(kept):.1f} ms [{min(kept):.1f}-{max(kept):.1f}]"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parts", nargs="*", default=["blocks", "fits", "pass"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workloads", nargs="*", default=["W1", "W2", "W3", "W5", "W6"])
    args = parser.parse_args()
    if not compiled.AVAILABLE:
        sys.exit("the C loops were not built here: nothing to compare")
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load average", end=" ")
    print(" ".join(f"{x:.1f}" for x in os.getloadavg()))
    if "blocks" in args.parts:
        blocks()
    if "fits" in args.parts:
        fits(args.workloads, args.rounds, np.float64)
        fits(["W1"], args.rounds, np.float32)
    if "pass" in args.parts:
        one_pass()


if __name__ == "__main__":
    main()
