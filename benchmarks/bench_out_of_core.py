"""A .npy file larger than the memory a fit may use: fitted by path, peak resident memory measured.

Writes a ~2 GB float64 .npy file (16.8 M rows x 16 features from a random mixture) block by
block, then fits an 8-component full-covariance mixture to it by path in a child process and
reports the peak resident memory of that process and its forked worker (their summed PSS,
sampled during the fit, so that pages they share count once), the file's size and the time per
iteration. The rows are read with pread, block by block, on every
iteration: nothing maps the file, so the resident memory is that of the blocks in flight, the
initialisation sample and the interpreter.

    .venv/bin/python benchmarks/bench_out_of_core.py [--rows 16800000] [--keep]

Writes benchmarks/results/bench_out_of_core.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = """
import json, multiprocessing, os, resource, sys, threading, time, warnings
from sklearn.exceptions import ConvergenceWarning
from gaussmix import GaussianMixture
warnings.simplefilter("ignore", ConvergenceWarning)


def pss_kb(pid):
    # proportional set size: a page shared by two processes counts half in each
    try:
        with open(f"/proc/{{pid}}/smaps_rollup") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{{entry}}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


peak = [0]
done = threading.Event()


def sample():
    me = os.getpid()
    while not done.wait(0.02):
        peak[0] = max(peak[0], pss_kb(me) + sum(pss_kb(c) for c in children(me)))


sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
model = GaussianMixture(8, covariance_type="full", max_iter={iters}, tol=0.0, random_state=0)
start = time.perf_counter()
model.fit(sys.argv[1])
seconds = time.perf_counter() - start
done.set()
sampler.join()
for worker in multiprocessing.active_children():  # the fit's forked worker, told to stop
    worker.join()
print(json.dumps({{"seconds": seconds, "n_iter": model.n_iter_,
                  "lower_bound": model.lower_bound_, "pss_peak_kb": peak[0],
                  "fit_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def write_npy(path: Path, rows: int, features: int, block: int = 1_000_000) -> None:
    """A C-ordered float64 .npy file written block by block (never whole in memory)."""
    rng = np.random.default_rng(0)
    means = rng.normal(scale=4.0, size=(8, features))
    header = {"descr": "<f8", "fortran_order": False, "shape": (rows, features)}
    with path.open("wb") as f:
        np.lib.format.write_array_header_2_0(f, header)
        for start in range(0, rows, block):
            m = min(block, rows - start)
            labels = rng.integers(8, size=m)
            (means[labels] + rng.normal(size=(m, features))).tofile(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=16_800_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the .npy file")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_out_of_core.json"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gaussmix-bench-"))
    path = folder / "big.npy"
    start = time.perf_counter()
    write_npy(path, args.rows, args.features)
    size_gb = path.stat().st_size / 1e9
    print(f"wrote {path} ({size_gb:.2f} GB) in {time.perf_counter() - start:.0f} s")
    child = subprocess.run(
        [sys.executable, "-c", CHILD.format(iters=args.iterations), str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    # the fitting process and its forked worker share the interpreter's and the libraries'
    # pages, which each one's RSS counts whole: their summed PSS (sampled every 20 ms during the
    # fit) counts every page once; the fitting process's own peak RSS is reported beside it
    fit_mb = result["fit_rss_kb"] / 1024
    peak_mb = result["pss_peak_kb"] / 1024
    record = {
        "file_gb": size_gb,
        "rows": args.rows,
        "features": args.features,
        "components": 8,
        "iterations": result["n_iter"],
        "fit_seconds": result["seconds"],
        "peak_rss_mb": peak_mb,
        "fit_process_rss_mb": fit_mb,
        "lower_bound": result["lower_bound"],
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    print(
        f"fit of {size_gb:.2f} GB by path: {result['seconds']:.0f} s for {result['n_iter']} "
        f"iterations (with the validation pass and initialisation), peak resident memory "
        f"{peak_mb:.0f} MB (the summed PSS of the fitting process and its forked worker; the "
        f"fitting process's own peak RSS {fit_mb:.0f} MB)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")
    if not args.keep:
        path.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
