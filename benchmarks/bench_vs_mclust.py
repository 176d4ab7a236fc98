"""gaussmix ``select`` against R's ``Mclust`` on mclust's own data sets, in one run.

For each data set, R exports it (so both sides see the same numbers) and times
``Mclust(X)`` with its defaults (G = 1..9, all fourteen models, its hierarchical start);
gaussmix then times ``select(X)`` with its defaults (the same grid, the hierarchical start plus
k-means starts on standardised columns), in this process, with the tree cache cleared first.
Both BICs are in mclust's sign (higher is better). R runs through ``Rscript`` when it is
installed; when it is not, the script says so and times gaussmix alone.

    .venv/bin/python benchmarks/bench_vs_mclust.py                    # all the sets
    .venv/bin/python benchmarks/bench_vs_mclust.py --sets faithful iris --jobs 1

Writes benchmarks/out/bench_vs_mclust.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
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

from gaussmix import select
from gaussmix.em import hc

# name -> R expression giving the numeric matrix (mclust's data sets and R's)
DATA_SETS: dict[str, str] = {
    "faithful": "faithful",
    "iris": "iris[, 1:4]",
    "diabetes": "diabetes[, 2:4]",
    "banknote": "banknote[, 2:7]",
    "wreath": "wreath",
    "thyroid": "thyroid[, 2:6]",
    "chevron": "chevron[, 2:3]",
    "acidity": "matrix(acidity, ncol = 1)",
    "ex4.1": "ex4.1",
    "ex4.2": "ex4.2",
    "ex4.4.2": "ex4.4.2",
    "cross": "cross[, 2:3]",
}

R_SCRIPT = r"""
suppressMessages(library(mclust))
args <- commandArgs(TRUE)
out <- args[1]
data(list = c("faithful", "iris", "diabetes", "banknote", "wreath", "thyroid", "chevron",
              "acidity", "Baudry_etal_2010_JCGS_examples", "cross"))
sets <- list(%s)
res <- list()
for (nm in names(sets)) {
  X <- as.matrix(sets[[nm]])
  write.table(X, file.path(out, paste0(nm, ".csv")), sep = ",", row.names = FALSE,
              col.names = FALSE)
  t <- system.time(m <- Mclust(X, verbose = FALSE))[["elapsed"]]
  res[[nm]] <- sprintf(paste0('"%%s": {"model": "%%s", "G": %%d, "bic": %%.6f, ',
                              '"loglik": %%.6f, "seconds": %%.4f}'),
                       nm, m$modelName, m$G, m$bic, m$loglik, t)
}
cat("{", paste(unlist(res), collapse = ", "), "}\n", file = file.path(out, "mclust.json"))
cat(as.character(packageVersion("mclust")), "\n", file = file.path(out, "version.txt"))
"""


def run_mclust(names: list[str], folder: Path) -> tuple[dict[str, Any], str] | None:
    """mclust's choices and times, and its version; None when Rscript is not installed."""
    if shutil.which("Rscript") is None:
        return None
    sets = ", ".join(f'"{name}" = {DATA_SETS[name]}' for name in names)
    script = folder / "bench.R"
    script.write_text(R_SCRIPT % sets)
    subprocess.run(["Rscript", str(script), str(folder)], check=True)
    results = json.loads((folder / "mclust.json").read_text())
    return results, (folder / "version.txt").read_text().strip()


def export_without_r(names: list[str], folder: Path) -> list[str]:
    """Without R only the bundled Old Faithful is at hand."""
    from gaussmix.datasets import load_faithful

    np.savetxt(folder / "faithful.csv", load_faithful().X, delimiter=",")
    return ["faithful"] if "faithful" in names else []


def run_gaussmix(X: np.ndarray, jobs: int) -> dict[str, Any]:
    hc._TREES.clear()  # the tree is grown in the timed call, as for a new data set
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = select(X, range(1, 10), "all", random_state=0, n_jobs=jobs)
    seconds = time.perf_counter() - start
    best = result.best_record
    return {
        "model": best.mclust,
        "G": best.n_components,
        "bic": best.bic_mclust,
        "loglik": best.log_likelihood,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(DATA_SETS), choices=list(DATA_SETS))
    parser.add_argument("--jobs", type=int, default=-1, help="select's n_jobs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/bench_vs_mclust.json"))
    args = parser.parse_args()
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mclust = run_mclust(args.sets, folder)
        if mclust is None:
            print("R's mclust is not run: Rscript is not installed (apt-get install r-cran-mclust)")
            names, reference, version = export_without_r(args.sets, folder), {}, None
        else:
            (reference, version), names = mclust, args.sets
        rows = []
        for name in names:
            X = np.loadtxt(folder / f"{name}.csv", delimiter=",", ndmin=2)
            ours = run_gaussmix(X, args.jobs)
            rows.append(
                {
                    "set": name,
                    "shape": list(X.shape),
                    "gaussmix": ours,
                    "mclust": reference.get(name),
                }
            )
    print(f"machine: {machine}; Python {platform.python_version()}; mclust {version or '-'}")
    print(
        f"{'set':10} {'n x d':>9}  {'mclust':>8} {'BIC':>10} {'s':>6}   "
        f"{'gaussmix':>8} {'BIC':>10} {'s':>6}  {'dBIC':>7} {'time x':>6}"
    )
    for row in rows:
        g, m = row["gaussmix"], row["mclust"]
        shape = "x".join(map(str, row["shape"]))
        ours = f"{g['model'] + ',' + str(g['G']):>8} {g['bic']:10.2f} {g['seconds']:6.2f}"
        if m is None:
            print(f"{row['set']:10} {shape:>9}  {'-':>8} {'-':>10} {'-':>6}   {ours}")
            continue
        theirs = f"{m['model'] + ',' + str(m['G']):>8} {m['bic']:10.2f} {m['seconds']:6.2f}"
        print(
            f"{row['set']:10} {shape:>9}  {theirs}   {ours}  {g['bic'] - m['bic']:7.2f} "
            f"{g['seconds'] / max(m['seconds'], 1e-3):6.1f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "machine": machine,
        "python": sys.version,
        "mclust": version,
        "jobs": args.jobs,
        "rows": rows,
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
