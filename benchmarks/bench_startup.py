"""Start-up of the ``gaussmix`` command against ``python -c "import numpy"``, in one run.

Each case is a fresh interpreter, timed from spawn to exit; the cases are interleaved round by
round (``--rounds``) so that a busy neighbour slows every case alike, and each case's time is
divided by the reference's time *of the same round*. The table gives, per case, the median of
those ratios and their spread (min-max), and the median wall time. The targets (issue 11):
``--help`` within 2x of ``import numpy``, ``grad`` within 4x.

    .venv/bin/python benchmarks/bench_startup.py             # ~1 minute on 2 cores
    .venv/bin/python benchmarks/bench_startup.py --rounds 5  # quicker, noisier

Writes benchmarks/out/bench_startup.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGETS = {"--help": 2.0, "grad": 4.0}


def _gaussmix(*args: str) -> list[str]:
    return [sys.executable, "-m", "gaussmix.cli.main", *args]


def cases(model: Path) -> dict[str, list[str]]:
    return {
        "import numpy": [sys.executable, "-c", "import numpy"],
        "--help": _gaussmix("--help"),
        "--version": _gaussmix("--version"),
        "grad": _gaussmix("grad", "x'*A*x", "--wrt", "x"),
        "info": _gaussmix("info", str(model)),
        "import gaussmix.calculus": [sys.executable, "-c", "import gaussmix.calculus"],
        "import gaussmix (GaussianMixture)": [
            sys.executable,
            "-c",
            "from gaussmix import GaussianMixture",
        ],
    }


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/bench_startup.json"))
    args = parser.parse_args()

    from gaussmix import GaussianMixture

    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder) / "m.npz"
        X = np.random.default_rng(0).normal(size=(200, 2))
        GaussianMixture(2, random_state=0).fit(X).save(model, columns=["a", "b"])
        commands = cases(model)
        for command in commands.values():  # warm the file cache once
            _time(command)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                times[name].append(_time(command))

    reference = times["import numpy"]
    rows = []
    print(f"{args.rounds} rounds; ratio = case / `import numpy` of the same round")
    print(f"{'case':36s} {'median s':>9s} {'ratio':>7s} {'spread':>13s} {'target':>7s}")
    for name, values in times.items():
        ratios = [v / r for v, r in zip(values, reference, strict=True)]
        target = TARGETS.get(name)
        row = {
            "case": name,
            "median_s": statistics.median(values),
            "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "target": target,
        }
        rows.append(row)
        spread = f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}"
        print(
            f"{name:36s} {row['median_s']:9.3f} {row['ratio_median']:6.2f}x {spread:>13s} "
            f"{'' if target is None else f'{target:.0f}x':>7s}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rounds": args.rounds,
        "rows": rows,
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
