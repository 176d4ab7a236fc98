"""Microseconds per EM iteration on small data: the lean pass, the general pass, mclust.

One EM iteration at hundreds of rows is microseconds of arithmetic inside tens of calls; this
measures the iteration alone. For each cell (data set, model, K) every side starts from the
same responsibilities (one-hot k-means labels), does its M-step, and iterates a fixed number
of times (tolerance 0, so no side stops early; mclust stops only when its log-likelihood stops
changing at all, and is divided by the iterations it did):

* ``lean``: gaussmix as it runs now (``em/lean.py``: one C call per E-step);
* ``py-loop``: the lean pass in run_em's Python loop, as before the whole fit went into one
  C call (``lean.UNIVARIATE_IN_C = False`` for the 1-D cells, ``lean.WHOLE_LOOP_IN_C = False``
  for the others: one C E-step and one C M-step an iteration, Python around them);
* ``general``: the same process with the lean pass and the C precision factors switched off
  (``lean.LEAN_MAX_WORK = 0``, ``compiled.PRECISION_FACTORS_MAX_FEATURES = 0``): main's engine
  before this change, the block kernel with its natural parameters and LAPACK per component;
* ``mclust``: R's ``me()`` (mclust's own EM from responsibilities), through ``Rscript`` when
  it is installed (the script says so when it is not), on the same rows R exported.

Times are CPU seconds (``time.process_time``; R's user + system), so a busy neighbour on a
shared machine slows a side less than wall time would; BLAS is held to one thread. Each
cell is run ``--runs`` times; the median and the range are reported.

    .venv/bin/python benchmarks/bench_small.py                  # the cells below, 5 runs
    .venv/bin/python benchmarks/bench_small.py --runs 3 --iters 50
    .venv/bin/python benchmarks/bench_small.py --crossover      # where the lean pass stops paying
    .venv/bin/python benchmarks/bench_small.py --numpy-inner-loops  # M-steps as before their C
    .venv/bin/python benchmarks/bench_small.py --numpy-mstep    # + the closed forms in numpy

``--numpy-inner-loops`` runs every side's constrained M-steps (constrained.py) in numpy, as
before the C inner loops and Jacobi eigensolver (``compiled.INNER_LOOP_MAX_FEATURES = 0``).
``--split-msteps`` adds a side ``split``: the lean pass with the iterative and eigen models'
M-steps as before they ran whole in one C call (``compiled.WHOLE_MSTEP_MAX_FEATURES = 0``:
numpy's scatter, assembly and calls around the C inner loops), interleaved with the others.
``--numpy-mstep`` adds a side ``numpy_mstep``: the lean pass with the closed-form models'
numpy M-step instead of its C (``mstep.FitMStep``); the general side never has it.

Writes benchmarks/out/bench_small.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from gaussmix.data.sources import ArraySource
from gaussmix.em import compiled, lean
from gaussmix.em.covariance import get_covariance
from gaussmix.em.loop import run_em
from gaussmix.em.mstep import mstep, stats_from_resp
from gaussmix.em.parallel import InProcess

# (data set, mclust model, K)
CELLS: list[tuple[str, str, int]] = [
    ("faithful", "VVV", 3),
    ("faithful", "EEE", 3),
    ("iris", "VEV", 3),
    ("iris", "VVV", 3),
    ("diabetes", "VVV", 3),
    ("diabetes", "EEV", 3),
    ("iris", "EVE", 3),
    ("iris", "VVE", 3),
    ("diabetes", "VEI", 3),
    ("diabetes", "VEE", 3),
    ("iris", "EVV", 3),
    ("diabetes", "EEE", 3),
    ("diabetes", "VII", 3),
    ("diabetes", "EEI", 3),
    ("diabetes", "EVI", 3),
    ("faithful", "VVI", 3),
    ("iris", "EII", 3),
    ("trees", "VVV", 2),
    ("trees", "EVE", 2),
    ("trees", "EII", 3),
    ("1-D", "V", 2),
    ("1-D", "E", 3),
    ("1-D", "V", 5),
    ("1-D", "E", 9),
]
# the one-dimensional set: mclust's acidity, or without R faithful's eruption times
ONE_D = {True: "acidity", False: "eruptions"}

# name -> the R expression of its numeric matrix
R_DATA = {
    "faithful": "faithful",
    "iris": "iris[, 1:4]",
    "diabetes": "diabetes[, 2:4]",
    "acidity": "matrix(acidity, ncol = 1)",
    "trees": "trees",
}

R_SCRIPT = r"""
suppressMessages(library(mclust))
args <- commandArgs(TRUE)
folder <- args[1]
CALLS <- 20
data(list = c("diabetes", "acidity"))
sets <- list(%(sets)s)
for (nm in names(sets))
  write.table(as.matrix(sets[[nm]]), file.path(folder, paste0(nm, ".csv")), sep = ",",
              row.names = FALSE, col.names = FALSE)
if (args[2] == "export") quit(save = "no")
cells <- read.csv(file.path(folder, "cells.csv"), stringsAsFactors = FALSE)
ctrl <- emControl(tol = c(0, sqrt(.Machine$double.eps)), itmax = c(as.integer(args[3]), Inf))
lines <- c()
for (i in seq_len(nrow(cells))) {
  X <- as.matrix(read.csv(file.path(folder, paste0(cells$data[i], ".csv")), header = FALSE))
  z <- as.matrix(read.csv(file.path(folder, cells$z[i]), header = FALSE))
  if (ncol(X) == 1) X <- X[, 1]
  r <- me(modelName = cells$model[i], data = X, z = z, control = ctrl)  # warm-up
  seconds <- c()
  for (run in seq_len(as.integer(args[4]))) {
    # R's CPU clock ticks in 10 ms: a run is CALLS calls of me(), divided out
    t <- system.time(for (call in 1:CALLS)
      r <- me(modelName = cells$model[i], data = X, z = z, control = ctrl))
    seconds <- c(seconds, (t[["user.self"]] + t[["sys.self"]]) / CALLS)
  }
  info <- attr(r, "info")  # EVE and VVE name their outer count "niterout"
  done <- if ("iterations" %%in%% names(info)) info[["iterations"]] else info[["niterout"]]
  lines <- c(lines, sprintf('"%%d": {"iterations": %%d, "loglik": %%.10g, "seconds": [%%s]}',
                            i - 1, as.integer(abs(done)), r$loglik,
                            paste(sprintf("%%.6f", seconds), collapse = ", ")))
}
cat("{", paste(lines, collapse = ", "), "}\n", file = file.path(folder, "mclust.json"))
"""


def _rscript(folder: Path, mode: str, iters: int = 0, runs: int = 0) -> bool:
    if shutil.which("Rscript") is None:
        return False
    sets = ", ".join(f'"{name}" = {expr}' for name, expr in R_DATA.items())
    script = folder / "bench_small.R"
    script.write_text(R_SCRIPT % {"sets": sets})
    subprocess.run(
        ["Rscript", str(script), str(folder), mode, str(iters), str(runs)],
        check=True,
        capture_output=True,
    )
    return True


def load_sets(folder: Path, have_r: bool) -> dict[str, np.ndarray]:
    """The rows R exported, or without R those gaussmix and scikit-learn ship (diabetes and
    acidity are mclust's: without R, faithful's eruption times are the 1-D set)."""
    if have_r:
        return {name: np.loadtxt(folder / f"{name}.csv", delimiter=",", ndmin=2) for name in R_DATA}
    from sklearn.datasets import load_iris

    from gaussmix.datasets import load_faithful

    faithful = np.asarray(load_faithful().X, dtype=np.float64)
    return {"faithful": faithful, "iris": load_iris().data, "eruptions": faithful[:, :1]}


def start_resp(X: np.ndarray, k: int) -> np.ndarray:
    """One-hot k-means labels (n, K): the shared start."""
    from sklearn.cluster import KMeans

    labels = KMeans(k, n_init=1, random_state=0).fit_predict((X - X.mean(0)) / X.std(0))
    return np.eye(k)[labels]


def per_iteration(
    X: np.ndarray,
    z: np.ndarray,
    model: str,
    iters: int,
    general: bool,
    py_loop: bool = False,
    split: bool = False,
    numpy_mstep: bool = False,
) -> float:
    """CPU seconds per iteration of run_em from the M-step of z (``py_loop``: the univariate
    models in run_em's Python loop; ``split``: the M-step not whole in C; ``numpy_mstep``:
    the closed forms' M-step in numpy)."""
    cov = get_covariance(model)
    params = mstep(stats_from_resp(X, z, cov), cov, 1e-6)
    saved = lean.LEAN_MAX_WORK, compiled.PRECISION_FACTORS_MAX_FEATURES, lean.UNIVARIATE_IN_C
    saved_loop = lean.WHOLE_LOOP_IN_C
    saved_whole = compiled.WHOLE_MSTEP_MAX_FEATURES
    in_c = compiled._MSTEP_MODELS
    if general:
        lean.LEAN_MAX_WORK, compiled.PRECISION_FACTORS_MAX_FEATURES = 0, 0
    if general or split:
        compiled.WHOLE_MSTEP_MAX_FEATURES = 0
    if general or numpy_mstep:
        compiled._MSTEP_MODELS = {}
    lean.UNIVARIATE_IN_C = not (py_loop or numpy_mstep)
    lean.WHOLE_LOOP_IN_C = not py_loop
    try:
        workers = InProcess(ArraySource(X))
        start = time.process_time()
        result = run_em(workers, 65536, params, tol=0.0, max_iter=iters, reg_covar=1e-6)
        seconds = time.process_time() - start
    finally:
        lean.LEAN_MAX_WORK, compiled.PRECISION_FACTORS_MAX_FEATURES, lean.UNIVARIATE_IN_C = saved
        compiled.WHOLE_MSTEP_MAX_FEATURES = saved_whole
        lean.WHOLE_LOOP_IN_C = saved_loop
        compiled._MSTEP_MODELS = in_c
    return seconds / result.n_iter


def _summary(values: list[float]) -> dict[str, float]:
    us = np.array(values) * 1e6
    return {"median": float(np.median(us)), "min": float(us.min()), "max": float(us.max())}


def cells_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        have_r = _rscript(folder, "export")
        sets = load_sets(folder, have_r)
        named = [(ONE_D[have_r] if name == "1-D" else name, m, k) for name, m, k in CELLS]
        cells = [cell for cell in named if cell[0] in sets]
        rows = []
        for i, (name, model, k) in enumerate(cells):
            z = start_resp(sets[name], k)
            np.savetxt(folder / f"z{i}.csv", z, delimiter=",")
            rows.append({"data": name, "model": model, "K": k, "z": f"z{i}.csv"})
        mclust: dict[str, Any] = {}
        if have_r:
            table = "data,model,K,z\n" + "".join(
                f"{r['data']},{r['model']},{r['K']},{r['z']}\n" for r in rows
            )
            (folder / "cells.csv").write_text(table)
            _rscript(folder, "time", args.iters, args.runs)
            mclust = json.loads((folder / "mclust.json").read_text())
        else:
            print("Rscript is not installed: mclust is not timed", file=sys.stderr)
        results = []
        for i, (name, model, k) in enumerate(cells):
            X, z = sets[name], np.loadtxt(folder / f"z{i}.csv", delimiter=",", ndmin=2)
            times: dict[str, list[float]] = {"lean": [], "py-loop": [], "general": []}
            if args.split_msteps and get_covariance(model).compiled_mstep in compiled.MSTEP_KERNELS:
                times["split"] = []
            if args.numpy_mstep and get_covariance(model).compiled_mstep:
                times["numpy_mstep"] = []
            per_iteration(X, z, model, 5, False)  # warm-up
            for _ in range(args.runs):  # interleaved, so the sides see the same neighbours
                for side in times:
                    general, py_loop, split, numpy_mstep = (
                        side == s for s in ("general", "py-loop", "split", "numpy_mstep")
                    )
                    times[side].append(
                        per_iteration(X, z, model, args.iters, general, py_loop, split, numpy_mstep)
                    )
            row: dict[str, Any] = {
                "data": name,
                "n": X.shape[0],
                "d": X.shape[1],
                "model": model,
                "K": k,
                **{side: _summary(values) for side, values in times.items()},
            }
            if str(i) in mclust:
                m = mclust[str(i)]
                row["mclust"] = _summary([s / m["iterations"] for s in m["seconds"]])
                row["mclust_iterations"] = m["iterations"]
            results.append(row)
    return {"cells": results, "mclust": have_r}


def crossover(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Lean against general per iteration over n, K, D (full covariances: the most work per
    row), with the lean pass's work measure, to place ``lean.LEAN_MAX_WORK``."""
    rng = np.random.default_rng(0)
    out = []
    for d in (2, 5, 10):
        for k in (3, 9):
            for n in (1000, 4000, 16000, 64000):
                X = rng.normal(size=(n, d)) + rng.integers(0, 4, size=(n, 1)) * 3.0
                z = np.eye(k)[rng.integers(0, k, size=n)]
                saved = lean.LEAN_MAX_WORK
                lean.LEAN_MAX_WORK = 2**62  # the lean pass whatever the size
                try:
                    iters = max(5, args.iters // max(1, n // 1000))
                    lean_us = min(per_iteration(X, z, "VVV", iters, False) for _ in range(3))
                finally:
                    lean.LEAN_MAX_WORK = saved
                general_us = min(per_iteration(X, z, "VVV", iters, True) for _ in range(3))
                row = {
                    "n": n,
                    "d": d,
                    "K": k,
                    "work": lean.lean_work(n, k, d),
                    "lean_us": lean_us * 1e6,
                    "general_us": general_us * 1e6,
                }
                print(
                    f"n={n:6d} d={d:2d} K={k}  work={row['work']:.2e}  lean "
                    f"{row['lean_us']:9.0f} us  general {row['general_us']:9.0f} us  "
                    f"ratio {lean_us / general_us:.2f}"
                )
                out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--crossover", action="store_true")
    parser.add_argument("--numpy-inner-loops", action="store_true")
    parser.add_argument("--split-msteps", action="store_true")
    parser.add_argument("--numpy-mstep", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # convergence and cap warnings: iterating past the optimum
    if args.numpy_inner_loops:
        compiled.INNER_LOOP_MAX_FEATURES = 0
    machine = f"{platform.machine()}, {platform.processor() or 'cpu'}, load {_load()}"
    with threadpool_limits(limits=1):
        if args.crossover:
            report: dict[str, Any] = {"crossover": crossover(args), "machine": machine}
            name = "bench_small_crossover.json"
        else:
            report = {**cells_benchmark(args), "machine": machine, "iters": args.iters}
            report["numpy_inner_loops"] = args.numpy_inner_loops
            name = "bench_small.json"
            split = ("split",) if args.split_msteps else ()
            extra = ("numpy_mstep",) if args.numpy_mstep else ()
            sides = ("lean", "py-loop", "general", *split, *extra, "mclust")
            heads = ("lean", "py-loop", "general", *split, *extra, "mclust me()")
            print(f"{'cell':24s} " + " ".join(f"{h:>16s}" for h in heads) + "  (us/iter)")
            for r in report["cells"]:
                cell = f"{r['data']} {r['model']},{r['K']} (n={r['n']})"
                parts = [
                    f"{_us(r[s]['median'])} [{_us(r[s]['min'])}-{_us(r[s]['max'])}]"
                    if s in r
                    else "-"
                    for s in sides
                ]
                print(f"{cell:24s} " + " ".join(f"{p:>16s}" for p in parts))
    out = args.out or Path(__file__).parent / "out" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")


def _us(value: float) -> str:
    """Microseconds to print: a decimal below 10."""
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
