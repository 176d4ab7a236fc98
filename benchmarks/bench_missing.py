"""The cost of missing values: W1 with 10% of its entries missing against the complete W1.

W1 of bench_em.py (200,000 x 16, K=16, full covariances), fitted from bench_em's explicit start
with tol=0, once complete and once with 10% of the entries set to NaN (missing='em'), in
``--patterns`` distinct missingness patterns (default 300: each missing 1 to 4 of the 16
features, drawn once; a row is incomplete with the probability that makes 10% of all entries
missing). Time per iteration is (t(max_iter=hi) - t(max_iter=lo)) / (hi - lo), so validation,
start-up and the final E-step cancel; each is the best of ``--repeats`` fits. ``--patterns 0``
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


def seconds_per_iteration(
    X: np.ndarray, k: int, common: dict[str, Any], lo: int, hi: int, repeats: int
) -> tuple[float, GaussianMixture]:
    def best(max_iter: int) -> tuple[float, GaussianMixture]:
        times, model = [], None
        for _ in range(repeats):
            model = GaussianMixture(k, max_iter=max_iter, **common)
            start = time.perf_counter()
            model.fit(X)
            times.append(time.perf_counter() - start)
        assert model is not None
        return min(times), model

    t_lo, _ = best(lo)
    t_hi, model = best(hi)
    return (t_hi - t_lo) / (hi - lo), model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--patterns", type=int, default=300)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, nargs=2, default=[2, 8], metavar=("LO", "HI"))
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
    lo, hi = args.iterations
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        complete, _ = seconds_per_iteration(X, k, common, lo, hi, args.repeats)
        holes, model = seconds_per_iteration(H, k, common | {"missing": "em"}, lo, hi, args.repeats)
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "n_samples": n,
        "missing_fraction": float(mask.mean()),
        "incomplete_rows": float(mask.any(axis=1).mean()),
        "patterns": n_patterns,
        "complete_s_per_iter": complete,
        "missing_s_per_iter": holes,
        "ratio": holes / complete,
        "monotone": bool(np.all(np.diff(model.lower_bounds_) >= -1e-10)),
    }
    print(
        f"W1 {n:,} x {d}, K={k}: {record['missing_fraction']:.1%} of entries missing, "
        f"{record['incomplete_rows']:.0%} of rows incomplete, {n_patterns} patterns\n"
        f"  complete {complete:.4f} s/iter, with holes {holes:.4f} s/iter: "
        f"{record['ratio']:.2f}x (observed-data log-likelihood monotone: {record['monotone']})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
