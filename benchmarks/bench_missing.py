"""The cost of missing values: W1 with 10% of its entries missing against the complete W1.

W1 of bench_em.py (200,000 x 16, K=16, full covariances), fitted from bench_em's explicit start
with tol=0, once complete and once with 10% of the entries set to NaN (missing='em'), in
``--patterns`` distinct missingness patterns (default 300: each missing 1 to 4 of the 16
features, drawn once; a row is incomplete with the probability that makes 10% of all entries
missing). Each iteration is timed from one iteration hook call to the next (a pass and an
M-step: validation, start-up and the final E-step are outside); complete and holed fits
alternate ``--repeats`` times, and the medians and minimums of their iterations are compared.
``--patterns 0``
takes every entry missing independently with probability 0.1 instead (tens of thousands of
patterns). The machine is shared: run it several times and read the spread.

    .venv/bin/python benchmarks/bench_missing.py                  # ~1-2 minutes
    .venv/bin/python benchmarks/bench_missing.py --quick          # a tenth of the rows
    .venv/bin/python benchmarks/bench_missing.py --patterns 0     # independent holes

Writes benchmarks/out/bench_missing.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, str(Path(__file__).parent))
from bench_em import WORKLOADS, initial_parameters, mixture_data

from gaussmix import GaussianMixture
from gaussmix.mixture import iteration_hook


def with_holes(X: np.ndarray, n_patterns: int, fraction: float, seed: int = 2) -> np.ndarray:
    """X with ``fraction`` of its entries set to NaN, in ``n_patterns`` patterns of 1 to 4
    missing features (0: every entry independently)."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    if n_patterns == 0:
        mask = rng.random((n, d)) < fraction
    else:
        patterns = np.zeros((n_patterns, d), dtype=bool)
        for p in range(n_patterns):
            patterns[p, rng.choice(d, size=rng.integers(1, 5), replace=False)] = True
        mean_missing = patterns.sum(axis=1).mean()
        incomplete = rng.random(n) < fraction * d / mean_missing
        mask = np.zeros((n, d), dtype=bool)
        mask[incomplete] = patterns[rng.integers(n_patterns, size=int(incomplete.sum()))]
    H = X.copy()
    H[mask] = np.nan
    return H


def iteration_times(
    X: np.ndarray, k: int, common: dict[str, Any], iterations: int
) -> tuple[list[float], GaussianMixture]:
    """Wall time of each EM iteration after the first of one fit (from one iteration hook call
    to the next: a pass over the rows and an M-step; validation, initialisation and the final
    E-step are outside)."""
    stamps: list[float] = []
    model = GaussianMixture(k, max_iter=iterations, **common)
    with iteration_hook(lambda n_iter, lower_bound: stamps.append(time.perf_counter())):
        model.fit(X)
    return list(np.diff(stamps)), model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--patterns", type=int, default=300)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "out" / "bench_missing.json"
    )
    args = parser.parse_args()
    n, d, k, covariance_type = WORKLOADS["W1"]
    n = n // 10 if args.quick else n
    X = mixture_data(n, d, k)
    H = with_holes(X, args.patterns, args.fraction)
    mask = np.isnan(H)
    n_patterns = int(np.unique(mask[mask.any(axis=1)], axis=0).shape[0])
    common = dict(covariance_type=covariance_type, tol=0.0, **initial_parameters(X, k, "full"))
    complete: list[float] = []
    holes: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(args.repeats):  # interleaved, so both see the same neighbours
            complete += iteration_times(X, k, common, args.iterations)[0]
            times, model = iteration_times(H, k, common | {"missing": "em"}, args.iterations)
            holes += times
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "n_samples": n,
        "missing_fraction": float(mask.mean()),
        "incomplete_rows": float(mask.any(axis=1).mean()),
        "patterns": n_patterns,
        "complete_s_per_iter": {"min": min(complete), "median": float(np.median(complete))},
        "missing_s_per_iter": {"min": min(holes), "median": float(np.median(holes))},
        "ratio_of_medians": float(np.median(holes) / np.median(complete)),
        "ratio_of_minimums": min(holes) / min(complete),
        "monotone": bool(np.all(np.diff(model.lower_bounds_) >= -1e-10)),
    }
    print(
        f"W1 {n:,} x {d}, K={k}: {record['missing_fraction']:.1%} of entries missing, "
        f"{record['incomplete_rows']:.0%} of rows incomplete, {n_patterns} patterns\n"
        f"  s/iter complete: median {np.median(complete):.4f}, min {min(complete):.4f}; "
        f"with holes: median {np.median(holes):.4f}, min {min(holes):.4f}\n"
        f"  ratio of medians {record['ratio_of_medians']:.2f}x, of minimums "
        f"{record['ratio_of_minimums']:.2f}x (observed-data log-likelihood monotone: "
        f"{record['monotone']})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
