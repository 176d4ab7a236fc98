"""gaussmix ``select`` against R's ``Mclust`` on mclust's own data sets, in one run.

One R process (``Rscript``, reading commands on its stdin) exports each data set, so that both
sides see the same numbers, and times ``Mclust(X)`` with its defaults (G = 1..9, all fourteen
models, its hierarchical start) in R; right after it, this process times ``select(X)`` with
gaussmix's defaults (the same grid: the hierarchical start for every cell, k-means starts on
standardised columns for the eight best and, above 2,000 rows, the contest of the three best;
in this process at these sizes), with the hierarchical tree's and the k-means labels' caches
cleared first. The two run in turn, set by set,
``--repeat`` times, so that both meet the same load; each side makes one untimed call first
(loading its code). Both BICs are in mclust's sign (higher is better). When Rscript is not
installed the script says so and times gaussmix alone, on Old Faithful.

    .venv/bin/python benchmarks/bench_vs_mclust.py                 # the first twelve, 3 rounds
    .venv/bin/python benchmarks/bench_vs_mclust.py --sets wider --repeat 1  # twenty more
    .venv/bin/python benchmarks/bench_vs_mclust.py --sets faithful iris --repeat 5
    .venv/bin/python benchmarks/bench_vs_mclust.py --sets large   # needs ggplot2, carData in R

Writes benchmarks/out/bench_vs_mclust.json (or --out): every round's times and both choices.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from gaussmix import select
from gaussmix.em import hc, init

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

# Sets beyond those the benchmark was first built on (R's and MASS's classics, mclust's GvHD and
# wdbc): `--sets wider` or `--sets all`. Small n against d, one column, thousands of rows.
WIDER: dict[str, str] = {
    "galaxies": "matrix(MASS::galaxies / 1000, ncol = 1)",
    "rivers": "matrix(rivers, ncol = 1)",
    "precip": "matrix(precip, ncol = 1)",
    "eruptions": "matrix(faithful$eruptions, ncol = 1)",
    "sunspot": "matrix(as.numeric(sunspot.year), ncol = 1)",
    "nile": "matrix(as.numeric(Nile), ncol = 1)",
    "trees": "trees",
    "euro": "EuroUnemployment",
    "swiss": "swiss",
    "usarrests": "USArrests",
    "statex77": "state.x77",
    "cats": "MASS::cats[, 2:3]",
    "crabs": "MASS::crabs[, 4:8]",
    "geyser": "MASS::geyser",
    "ex4.3": "ex4.3",
    "ex4.4.1": "ex4.4.1",
    "quakes": "quakes",
    "wdbc": "wdbc[, 3:12]",
    "gvhd.ctl": "GvHD.control",
    "gvhd.pos": "GvHD.pos",
}
# Above 2,000 rows with two or more columns, where mclust grows its tree on a random subset and
# select holds its contest (selection.py, "The grid", 5): `--sets large`. These need R's
# ggplot2 and carData (apt-get install r-cran-ggplot2 r-cran-cardata); a set whose package is
# missing is skipped, and the script says so.
LARGE: dict[str, str] = {
    "txhousing": 'na.omit(as.data.frame(ggplot2::txhousing[, c("sales", "volume", "median", '
    '"listings")]))[1:3000, ]',
    "diamonds5k": 'as.data.frame(ggplot2::diamonds[1:5000, c("carat", "depth", "price")])',
    "slid": 'na.omit(carData::SLID[, c("wages", "education", "age")])',
    "faithfuld": 'as.data.frame(ggplot2::faithfuld[, c("eruptions", "waiting")])',
}
GROUPS = {
    "first": list(DATA_SETS),
    "wider": list(WIDER),
    "all": [*DATA_SETS, *WIDER],
    "large": list(LARGE),
}
DATA_SETS = {**DATA_SETS, **WIDER, **LARGE}

# One line in per command: "export NAME FILE EXPR", "time NAME", "version"; one line out.
R_SERVER = r"""
suppressMessages(library(mclust))
data(list = c("faithful", "iris", "diabetes", "banknote", "wreath", "thyroid", "chevron",
              "acidity", "Baudry_etal_2010_JCGS_examples", "cross", "EuroUnemployment",
              "wdbc", "GvHD"))
sets <- list()
invisible(Mclust(as.matrix(faithful), G = 1:2, verbose = FALSE))  # load and compile
con <- file("stdin")
open(con)
while (length(line <- readLines(con, n = 1)) > 0) {
  words <- strsplit(line, " ", fixed = TRUE)[[1]]
  if (words[1] == "export") {
    X <- tryCatch(as.matrix(eval(parse(text = paste(words[-(1:3)], collapse = " ")))),
                  error = function(e) conditionMessage(e))
    if (is.character(X)) {
      cat(gsub("\n", " ", X), "\n")
    } else {
      sets[[words[2]]] <- X
      write.table(X, words[3], sep = ",", row.names = FALSE, col.names = FALSE)
      cat("ok\n")
    }
  } else if (words[1] == "time") {
    X <- sets[[words[2]]]
    t <- system.time(m <- Mclust(X, verbose = FALSE))[["elapsed"]]
    cat(sprintf('{"model": "%s", "G": %d, "bic": %.10f, "loglik": %.10f, "seconds": %.4f}\n',
                m$modelName, m$G, m$bic, m$loglik, t))
  } else if (words[1] == "version") {
    cat(as.character(packageVersion("mclust")), "\n")
  }
  flush(stdout())
}
"""


class Mclust:
    """R's mclust in one long-lived Rscript process."""

    def __init__(self, folder: Path) -> None:
        script = folder / "server.R"
        script.write_text(R_SERVER)
        self.process = subprocess.Popen(
            ["Rscript", str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"Rscript stopped on {command!r}")
        return answer.strip()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def run_gaussmix(X: np.ndarray, jobs: int | None) -> dict[str, Any]:
    # the tree is grown and k-means run in the timed call, as for a new data set
    hc._TREES.clear()
    hc._CUTS.clear()
    init._KMEANS.clear()
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


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on Unix
        return "-"


def spread(values: list[float]) -> str:
    """'median (min-max)'."""
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sets",
        nargs="+",
        default=["first"],
        choices=[*GROUPS, *DATA_SETS],
        help="set names, or a group: first (the default), wider, all, large",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds over the sets")
    parser.add_argument("--jobs", type=int, default=None, help="select's n_jobs (default: its)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/bench_vs_mclust.json"))
    args = parser.parse_args()
    args.sets = list(dict.fromkeys(n for s in args.sets for n in GROUPS.get(s, [s])))
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
    )
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in args.sets}
    loads = [load_average()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        r = Mclust(folder) if shutil.which("Rscript") else None
        if r is None:
            print("R's mclust is not run: Rscript is not installed (apt-get install r-cran-mclust)")
            from gaussmix.datasets import load_faithful

            names, version = ["faithful"], None
            np.savetxt(folder / "faithful.csv", load_faithful().X, delimiter=",")
        else:
            names, version = [], r.ask("version")
            for name in args.sets:
                answer = r.ask(f"export {name} {folder / (name + '.csv')} {DATA_SETS[name]}")
                if answer == "ok":
                    names.append(name)
                else:  # a package of the larger sets not installed
                    print(f"{name} is skipped: R could not make it ({answer})")
            if not names:
                r.close()
                print("no data set to compare on")
                return
        data = {n: np.loadtxt(folder / f"{n}.csv", delimiter=",", ndmin=2) for n in names}
        with warnings.catch_warnings():  # loads the code, as R's first Mclust call does
            warnings.simplefilter("ignore")
            select(data[names[0]], [1, 2], "VVV", n_jobs=1)
        for _ in range(args.repeat):
            for name in names:
                theirs = json.loads(r.ask(f"time {name}")) if r is not None else None
                ours = run_gaussmix(data[name], args.jobs)
                rounds[name].append({"mclust": theirs, "gaussmix": ours})
            loads.append(load_average())
        if r is not None:
            r.close()
    print(f"machine: {machine}; Python {platform.python_version()}; mclust {version or '-'}")
    print(f"load average (1, 5, 15 min) before and after each round: {' | '.join(loads)}")
    print(
        f"{'set':9} {'n x d':>7}  {'mclust':>7} {'BIC':>10}   {'gaussmix':>8} {'BIC':>10} "
        f"{'dBIC':>6}  {'mclust s':>17}  {'gaussmix s':>17}  {'ratio':>17}"
    )
    rows = []
    for name in names:
        runs = rounds[name]
        g = runs[-1]["gaussmix"]
        shape = "x".join(map(str, data[name].shape))
        ours_s = [run["gaussmix"]["seconds"] for run in runs]
        shown = f"{g['model'] + ',' + str(g['G']):>8} {g['bic']:10.2f}"
        row: dict[str, Any] = {"set": name, "shape": list(data[name].shape), "rounds": runs}
        if runs[-1]["mclust"] is None:
            print(
                f"{name:9} {shape:>7}  {'-':>7} {'-':>10}   {shown} {'-':>6}  {'-':>17}  "
                f"{spread(ours_s):>17}"
            )
            rows.append(row)
            continue
        m = runs[-1]["mclust"]
        theirs_s = [run["mclust"]["seconds"] for run in runs]
        ratios = [a / max(b, 1e-3) for a, b in zip(ours_s, theirs_s, strict=True)]
        theirs = f"{m['model'] + ',' + str(m['G']):>7} {m['bic']:10.2f}"
        print(
            f"{name:9} {shape:>7}  {theirs}   {shown} {g['bic'] - m['bic']:6.2f}  "
            f"{spread(theirs_s):>17}  {spread(ours_s):>17}  {spread(ratios):>17}"
        )
        row["dbic"] = g["bic"] - m["bic"]
        row["ratio_median"] = statistics.median(ratios)
        rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "machine": machine,
        "python": sys.version,
        "mclust": version,
        "jobs": args.jobs,
        "load_average": loads,
        "rows": rows,
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
