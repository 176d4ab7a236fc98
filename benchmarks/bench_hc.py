"""The hierarchical start's tree (``gaussmix.em.hc``) against R's mclust ``hc``, in one run.

One R process (``Rscript``, reading commands on its stdin) exports each of mclust's data sets
(the list of ``bench_vs_mclust.py``), so that both sides see the same numbers, and times
``hc(X, "VVV", use = "SVD")`` (mclust's default ``hcModelName`` and ``hcUse``; "V" for one
column, where ``Mclust`` itself grows no tree and starts from quantiles); right after it, this
process times ``hc.hc_tree(hc.svd_scaled(X))`` with the C merge loop and with the numpy one
(``compiled._LIB`` set aside), in turn, ``--repeat`` times per set, so that all three meet the
same load. It also says whether the three trees' cuts at K = 1..9 are the same partitions.

    .venv/bin/python benchmarks/bench_hc.py
    .venv/bin/python benchmarks/bench_hc.py --sets acidity diabetes faithful iris --repeat 7

Writes benchmarks/out/bench_hc.json (or --out): every round's times.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_vs_mclust import DATA_SETS, Mclust, load_average

from gaussmix.em import compiled, hc

R_SERVER = r"""
suppressMessages(library(mclust))
data(list = c("faithful", "iris", "diabetes", "banknote", "wreath", "thyroid", "chevron",
              "acidity", "Baudry_etal_2010_JCGS_examples", "cross"))
sets <- list()
model <- function(X) if (ncol(X) == 1) "V" else "VVV"  # hc's "VVV" takes two columns or more
invisible(hc(as.matrix(faithful)))  # load and compile
con <- file("stdin")
open(con)
while (length(line <- readLines(con, n = 1)) > 0) {
  words <- strsplit(line, " ", fixed = TRUE)[[1]]
  if (words[1] == "export") {  # export NAME DATA_FILE CLASS_FILE EXPR
    X <- as.matrix(eval(parse(text = paste(words[-(1:4)], collapse = " "))))
    sets[[words[2]]] <- X
    write.table(X, words[3], sep = ",", row.names = FALSE, col.names = FALSE)
    cl <- hclass(hc(X, modelName = model(X), use = "SVD"), 1:9)
    write.table(cl, words[4], sep = ",", row.names = FALSE, col.names = FALSE)
    cat("ok\n")
  } else if (words[1] == "time") {
    X <- sets[[words[2]]]
    t <- system.time(hc(X, modelName = model(X), use = "SVD"))[["elapsed"]]
    cat(sprintf('{"seconds": %.5f}\n', t))
  } else if (words[1] == "version") {
    cat(as.character(packageVersion("mclust")), "\n")
  }
  flush(stdout())
}
"""


class MclustHc(Mclust):
    """bench_vs_mclust's long-lived Rscript process, reading this script's commands."""

    def __init__(self, folder: Path) -> None:
        script = folder / "hc_server.R"
        script.write_text(R_SERVER)
        self.process = subprocess.Popen(
            ["Rscript", str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def tree(X: np.ndarray, use_c: bool) -> tuple[float, np.ndarray, np.ndarray]:
    library = compiled._LIB
    if not use_c:
        compiled._LIB = None
    try:
        start = time.perf_counter()
        groups, merges = hc.hc_tree(hc.svd_scaled(X))
        return time.perf_counter() - start, groups, merges
    finally:
        compiled._LIB = library


def spread(values: list[float]) -> str:
    """'median (min-max)' in milliseconds."""
    ms = [1000 * v for v in values]
    return f"{statistics.median(ms):.2f} ({min(ms):.2f}-{max(ms):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(DATA_SETS), choices=list(DATA_SETS))
    parser.add_argument("--repeat", type=int, default=5, help="rounds per set")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/bench_hc.json"))
    args = parser.parse_args()
    if shutil.which("Rscript") is None:
        sys.exit("bench_hc.py needs R's mclust: Rscript is not installed here")
    if not compiled.AVAILABLE:
        sys.exit("bench_hc.py compares the C merge loop: the C loops are not built here")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        r = MclustHc(Path(folder))
        ask = r.ask
        version = ask("version")
        print(f"machine: {platform.machine()}, {platform.system()}; mclust {version}")
        print(f"load average before: {load_average()}")
        print(f"{'set':10s}{'n x d':>9s}  {'mclust hc ms':>22s}  {'C ms':>20s}  "
              f"{'numpy ms':>22s}  {'C/mclust':>8s}  same cuts")  # fmt: skip
        for name in args.sets:
            data, classes = Path(folder) / f"{name}.csv", Path(folder) / f"{name}.hclass"
            ask(f"export {name} {data} {classes} {DATA_SETS[name]}")
            X = np.loadtxt(data, delimiter=",", ndmin=2)
            cl = np.loadtxt(classes, delimiter=",", dtype=int, ndmin=2)
            times: dict[str, list[float]] = {"mclust": [], "C": [], "numpy": []}
            for _ in range(args.repeat):
                times["mclust"].append(json.loads(ask(f"time {name}"))["seconds"])
                seconds, groups, merges = tree(X, True)
                times["C"].append(seconds)
                seconds, _, merges_np = tree(X, False)
                times["numpy"].append(seconds)
            equal = np.array_equal(merges, merges_np)
            agree = sum(
                same_partition(hc.cut(groups, merges, k), cl[:, k - 1]) for k in range(1, 10)
            )
            ratio = statistics.median(times["C"]) / statistics.median(times["mclust"])
            print(f"{name:10s}{f'{X.shape[0]}x{X.shape[1]}':>9s}  {spread(times['mclust']):>22s}  "
                  f"{spread(times['C']):>20s}  {spread(times['numpy']):>22s}  {ratio:8.3f}  "
                  f"C=numpy {'yes' if equal else 'NO'}, =mclust at {agree}/9 K")  # fmt: skip
            rows.append({"set": name, "shape": list(X.shape), "seconds": times,
                         "c_equals_numpy": bool(equal), "mclust_agree_k": int(agree)})  # fmt: skip
        r.close()
    print(f"load average after: {load_average()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"mclust": version, "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
