"""Model selection grid: serial against joblib processes and joblib threads.

Fits the default grid of ``gaussmix.select`` (K = 1..9, four covariance types, n_init=5) on the
bundled Old Faithful data and on a larger synthetic set, four ways: ``n_jobs=1`` (serial, with
the BLAS and OpenMP thread pools as they come), serial with those pools limited to one thread
(``serial-1``), ``n_jobs=2`` with joblib's process backend (loky, what ``select`` uses) and
``n_jobs=2`` with its thread backend. Each mode runs ``--repeat`` times in one process,
interleaved with the others so that a busy neighbour slows every mode alike (``warm``: the
process workers are already running); the table gives the minimum and the median wall time.

A command-line call starts from nothing: the ``cold`` rows run each mode ``--cold`` times in a
fresh interpreter and time the ``select`` call alone, so that the process backend pays for
starting its workers (and importing gaussmix in them) every time, as ``gaussmix select`` does.

    .venv/bin/python benchmarks/bench_select.py             # ~2-4 minutes on 2 cores
    .venv/bin/python benchmarks/bench_select.py --repeat 3  # quicker, noisier

Writes benchmarks/out/bench_select.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from threadpoolctl import threadpool_limits

import gaussmix
from gaussmix.datasets import load_faithful
from gaussmix.selection import select


def synthetic(n: int = 3000, d: int = 4, k: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d))
    labels = rng.integers(k, size=n)
    factors = rng.normal(size=(k, d, d)) * 0.5 + np.eye(d)
    return means[labels] + np.einsum("nd,nde->ne", rng.normal(size=(n, d)), factors[labels])


def run(X: np.ndarray, mode: str) -> float:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "serial":
            select(X, random_state=0, n_jobs=1)
        elif mode == "serial-1":
            with threadpool_limits(limits=1):
                select(X, random_state=0, n_jobs=1)
        elif mode == "processes":
            select(X, random_state=0, n_jobs=2)
        else:
            with joblib.parallel_config(backend="threading"):
                select(X, random_state=0, n_jobs=2)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cold", type=int, default=3)
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # one cold run, in a child process
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "out" / "bench_select.json"
    )
    args = parser.parse_args()
    data = {
        "faithful (272 x 2)": np.asarray(load_faithful().X),
        "synthetic (3000 x 4)": synthetic(),
    }
    if args.mode:  # a cold run, started by the parent below
        print(run(data["faithful (272 x 2)"], args.mode))
        return
    modes = ("serial", "serial-1", "processes", "threads")
    report: dict[str, Any] = {
        "machine": platform.platform(),
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "gaussmix": gaussmix.__version__,
        "joblib": joblib.__version__,
        "repeat": args.repeat,
        "results": {},
    }
    print(f"{'data':<22} {'mode':<15} {'min s':>7} {'median s':>9}   runs")
    cold: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(args.cold):
        for mode in modes:
            child = [sys.executable, __file__, "--mode", mode]
            cold[mode].append(
                float(subprocess.run(child, capture_output=True, text=True, check=True).stdout)
            )
    for mode in modes:
        t = cold[mode]
        print(
            f"{'faithful (272 x 2)':<22} {mode + ', cold':<15} {min(t):7.2f} "
            f"{statistics.median(t):9.2f}   " + " ".join(f"{v:.2f}" for v in t)
        )
    report["cold_faithful"] = cold
    run(data["faithful (272 x 2)"], "processes")  # starts the workers for the warm rows
    for name, X in data.items():
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(args.repeat):
            for mode in modes:
                times[mode].append(run(X, mode))
        for mode in modes:
            t = times[mode]
            print(
                f"{name:<22} {mode + ', warm':<15} {min(t):7.2f} {statistics.median(t):9.2f}   "
                + " ".join(f"{v:.2f}" for v in t)
            )
        report["results"][name] = times
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
