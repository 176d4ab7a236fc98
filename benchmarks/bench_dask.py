"""EM beyond one process: gaussmix in-process, gaussmix on a Dask LocalCluster, Spark MLlib.

In one run, on the first and third workloads of ``bench_em.py`` (W1: 200,000 x 16, K=16 full;
W3: 1,000,000 x 2, K=8 full), from the same data:

* gaussmix in this process (its own workers on every core),
* gaussmix on a ``distributed.LocalCluster`` of one single-threaded worker process per core,
  the rows a persisted ``dask.array`` of ``--chunks`` row chunks,
* Spark MLlib's ``GaussianMixture`` in ``local[N]`` mode on the same cores, the rows a cached
  DataFrame of vectors (pyspark and a Java runtime needed; the benchmark says so when they are
  missing and measures the rest).

Each is timed as the marginal seconds per iteration: (fit of 12 iterations - fit of 2) / 10,
so the start-up (initialisation, the first pass, Spark's job planning) cancels; after one
untimed warm-up fit, best of ``--repeats`` (Spark: ``SPARK_REPEATS``). The sides are timed in
turn within each repeat, so a change of the machine's load falls on all of them alike. The same
run measures the scheduler's overhead per iteration on tiny data (1,000 x 2, K=2: the median
time between iterations on Dask minus in-process) beside one trivial task's round trip, and how
time per iteration grows with the number of row chunks and of workers on W1.

    .venv/bin/python benchmarks/bench_dask.py            # ~4 minutes at a load of 4-6 with Spark
    .venv/bin/python benchmarks/bench_dask.py --quick    # a tenth of the rows

Writes benchmarks/results/bench_dask.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, str(Path(__file__).parent))
from bench_em import WORKLOADS, initial_parameters, mixture_data

import gaussmix
from gaussmix import GaussianMixture
from gaussmix.em.parallel import available_cores

LONG, SHORT = 12, 2
# A Spark fit starts with some 20 s of its own (sampling its initialisation, planning jobs),
# whose noise on a loaded machine is seconds: W1's 10 iterations of 0.2-0.5 s need the best
# of two, W3's of seconds each stand out of it in one.
SPARK_REPEATS = {"W1": 2, "W3": 1}
Fit = Callable[[int], Any]


def marginals(
    fits: dict[str, Fit], repeats: dict[str, int], best_times: dict[str, Any] | None = None
) -> dict[str, float]:
    """Per side: (best time of a fit of LONG iterations - best of SHORT) / (LONG - SHORT),
    the sides taken in turn within each repeat (a side runs in the first ``repeats[side]``);
    the best times themselves go into ``best_times`` when given."""
    best: dict[tuple[str, int], float] = {}
    for fit in fits.values():
        fit(SHORT)  # warm: imports on the workers, Spark's JIT and job set-up
    for r in range(max(repeats.values())):
        for side, fit in fits.items():
            if r >= repeats[side]:
                continue
            for iterations in (SHORT, LONG):
                start = time.perf_counter()
                fit(iterations)
                elapsed = time.perf_counter() - start
                best[side, iterations] = min(best.get((side, iterations), np.inf), elapsed)
    if best_times is not None:
        best_times.update({side: {n: best[side, n] for n in (SHORT, LONG)} for side in fits})
    return {side: (best[side, LONG] - best[side, SHORT]) / (LONG - SHORT) for side in fits}


def iteration_times(fit: Fit, repeats: int, iterations: int = 40) -> dict[str, float]:
    """Median and 90th percentile of the seconds between successive iterations of fits of
    ``iterations`` (the first interval left out), over ``repeats`` fits after a warm-up one:
    on tiny data a fit's own start-up is as long as many iterations, and on a loaded machine
    its noise swamps a difference of two fits, so the iterations are timed one by one."""
    from gaussmix.mixture import iteration_hook

    fit(SHORT)
    intervals: list[float] = []
    for _ in range(repeats):
        stamps: list[float] = []

        def stamp(iteration: int, bound: float, stamps: list[float] = stamps) -> None:
            stamps.append(time.perf_counter())

        with iteration_hook(stamp):
            fit(iterations)
        intervals.extend(np.diff(stamps)[1:])
    return {"median": float(np.median(intervals)), "p90": float(np.percentile(intervals, 90))}


def _nothing(i: int) -> int:
    return i


def round_trip(client: Any, tasks: int = 30) -> float:
    """Median seconds from submitting one trivial task to having its result: the scheduler's
    floor under any per-iteration overhead (the futures are kept till the end, as a fit keeps
    its passes', so no release message delays the next submission)."""
    times, kept = [], []
    for i in range(tasks):
        start = time.perf_counter()
        future = client.submit(_nothing, i, pure=False)
        future.result()
        times.append(time.perf_counter() - start)
        kept.append(future)
    return float(np.median(times))


def gaussmix_fit(X: Any, k: int, init: dict[str, np.ndarray], client: Any = None) -> Fit:
    """Fits from ``init`` (on the cluster of ``client`` when given, else of the default one)."""

    def fit(iterations: int) -> GaussianMixture:
        model = GaussianMixture(k, tol=0.0, max_iter=iterations, **init)
        if client is None:
            return model.fit(X)
        with client.as_current():
            return model.fit(X)

    return fit


def pinned_against_unpinned(fit: Fit, rounds: int) -> dict[str, Any]:
    """W1 on Dask with each pass's group tasks held to the workers holding their chunks
    (``DaskWorkers.pin``, the default) against unrestricted tasks, in turn for ``rounds``
    rounds: per side the marginal s/iter of each round (a fit of LONG minus one of SHORT)
    and how many group tasks ran on another worker than their chunks' (``DaskWorkers.away``),
    and the CPU seconds per pass of the group tasks' threads on the workers, summed over the
    workers (``DaskWorkers.task_cpu``: the work, which the machine's load does not inflate as
    it does the wall time)."""
    from gaussmix.data.dask_source import DaskSource
    from gaussmix.em.dask_workers import DaskWorkers

    made: list[DaskWorkers] = []
    opened = DaskSource.workers

    def recorded(source: DaskSource) -> DaskWorkers:
        made.append(opened(source))
        return made[-1]

    sides: dict[str, dict[str, list[Any]]] = {
        side: {"s_per_iter": [], "away": [], "tasks": [], "task_cpu_s_per_pass": []}
        for side in ("pinned", "unpinned")
    }
    DaskSource.workers = recorded  # type: ignore[method-assign]
    try:
        fit(SHORT)
        for _ in range(rounds):
            for side, row in sides.items():
                DaskWorkers.pin = side == "pinned"
                made.clear()
                seconds = {}
                for iterations in (SHORT, LONG):
                    start = time.perf_counter()
                    fit(iterations)
                    seconds[iterations] = time.perf_counter() - start
                row["s_per_iter"].append((seconds[LONG] - seconds[SHORT]) / (LONG - SHORT))
                row["away"].append(sum(w.away for w in made))
                row["tasks"].append(sum(w.tasks for w in made))
                cpu, passes = sum(w.task_cpu for w in made), sum(w.passes for w in made)
                row["task_cpu_s_per_pass"].append(cpu / max(passes, 1))
    finally:
        DaskSource.workers = opened  # type: ignore[method-assign]
        DaskWorkers.pin = True
    for row in sides.values():
        times = row["s_per_iter"]
        row["median"] = float(np.median(times))
        row["range"] = [float(min(times)), float(max(times))]
    return sides


def spark_session(cores: int) -> tuple[Any, str | None]:
    """A local Spark session on ``cores`` cores, or None and why not."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None, "pyspark is not installed (pip install pyspark)"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return None, "no Java runtime (java on PATH or JAVA_HOME) for Spark"
    session = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("gaussmix-bench")
        .config("spark.driver.memory", "3g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(cores))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session, None


def spark_fit(session: Any, X: np.ndarray, k: int, cores: int) -> Callable[[int], Any]:
    """Fits of Spark MLlib's GaussianMixture on a cached DataFrame of the rows."""
    import pandas as pd
    from pyspark.ml.clustering import GaussianMixture as SparkGaussianMixture
    from pyspark.ml.feature import VectorAssembler

    columns = [f"x{j}" for j in range(X.shape[1])]
    frame = session.createDataFrame(pd.DataFrame(X, columns=columns)).repartition(cores)
    vectors = VectorAssembler(inputCols=columns, outputCol="features").transform(frame)
    data = vectors.select("features").cache()
    data.count()

    def fit(iterations: int) -> Any:
        return SparkGaussianMixture(k=k, maxIter=iterations, tol=0.0, seed=1).fit(data)

    return fit


def save(record: dict[str, Any], out: Path) -> None:
    """Write what is measured so far (a long run that is stopped keeps its first parts)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")


def persisted(X: np.ndarray, n_chunks: int, client: Any = None) -> Any:
    """The rows as a dask array of ``n_chunks`` row chunks, persisted on the workers (of
    ``client`` when given)."""
    import dask.array as da
    from distributed import wait

    rows = da.from_array(X, chunks=(-(-X.shape[0] // n_chunks), -1))
    rows = rows.persist() if client is None else client.persist(rows)
    wait(rows)
    return rows


def run(args: argparse.Namespace, record: dict[str, Any]) -> None:
    from distributed import Client

    from gaussmix.em.dask_workers import local_cluster

    cores = record["cores"]
    started = time.perf_counter()
    session, why_not = spark_session(cores) if not args.no_spark else (None, "--no-spark")
    if why_not:
        record["notes"].append(f"Spark MLlib not measured: {why_not}")
        print(f"Spark MLlib not measured: {why_not}", flush=True)
    else:
        import pyspark

        record["pyspark"] = pyspark.__version__
    workloads: dict[str, tuple[np.ndarray, int, dict[str, np.ndarray]]] = {}
    for name in ("W1", "W3"):
        n, d, k, covariance_type = WORKLOADS[name]
        X = mixture_data(int(n * args.scale), d, k)
        workloads[name] = (X, k, initial_parameters(X, k, covariance_type))
    repeats = {"in_process": args.repeats, "dask": args.repeats}
    with local_cluster(cores) as cluster, Client(cluster) as client:
        client.wait_for_workers(cores)
        for name, (X, k, init) in workloads.items():
            fits = {
                "in_process": gaussmix_fit(X, k, init),
                "dask": gaussmix_fit(persisted(X, args.chunks), k, init),
            }
            if session is not None:
                fits["spark"] = spark_fit(session, X, k, cores)
            # the in-process fits run while the cluster idles: its workers sleep on sockets
            best_times: dict[str, Any] = {}
            spark_repeats = args.spark_repeats or SPARK_REPEATS[name]
            times = marginals(fits, {**repeats, "spark": spark_repeats}, best_times)
            row: dict[str, Any] = {"shape": list(X.shape), "n_components": k}
            row["best_fit_s_by_iterations"] = best_times
            row.update({f"{side}_s_per_iter": t for side, t in times.items()})
            row["dask_chunks"] = args.chunks
            row["dask_over_in_process"] = times["dask"] / times["in_process"]
            if "spark" in times:
                row["spark_over_dask"] = times["spark"] / times["dask"]
            record["workloads"][name] = row
            print(name, json.dumps(row), f"({time.perf_counter() - started:.0f} s)", flush=True)
            save(record, args.out)
        record["task_round_trip_s"] = round_trip(client)
        tiny = mixture_data(1000, 2, 2)
        tiny_init = initial_parameters(tiny, 2, "full")
        fits = {"in_process": gaussmix_fit(tiny, 2, tiny_init)}
        for n_chunks in (1, 2, 8):
            fits[str(n_chunks)] = gaussmix_fit(persisted(tiny, n_chunks), 2, tiny_init)
        times = {side: iteration_times(fit, args.repeats) for side, fit in fits.items()}
        in_process = times.pop("in_process")
        record["tiny"] = {
            "in_process_s_per_iter": in_process,
            "dask_s_per_iter_by_chunks": times,
            "overhead_s_per_iter_by_chunks": {
                c: t["median"] - in_process["median"] for c, t in times.items()
            },
        }
        print("tiny 1,000 x 2, K=2:", json.dumps(record["tiny"]), flush=True)
        print(f"({time.perf_counter() - started:.0f} s)", flush=True)
        save(record, args.out)
        X, k, init = workloads["W1"]
        fits = {str(c): gaussmix_fit(persisted(X, c), k, init) for c in args.chunk_counts}
        record["W1_by_chunks"] = marginals(fits, dict.fromkeys(fits, args.scaling_repeats))
        print("W1 by row chunks:", json.dumps(record["W1_by_chunks"]), flush=True)
        print(f"({time.perf_counter() - started:.0f} s)", flush=True)
        save(record, args.out)
        if args.pin_rounds:
            rows = persisted(X, args.chunks)
            pin = pinned_against_unpinned(gaussmix_fit(rows, k, init), args.pin_rounds)
            record["W1_pinned_against_unpinned"] = pin
            print("W1 pinned against unpinned:", json.dumps(pin), flush=True)
            print(f"({time.perf_counter() - started:.0f} s)", flush=True)
            save(record, args.out)
        if cores > 1:  # beside the cluster of every core, one of a single worker, in turn
            with local_cluster(1) as single, Client(single, set_as_default=False) as one:
                one.wait_for_workers(1)
                fits = {
                    "1": gaussmix_fit(persisted(X, args.chunks, one), k, init, one),
                    str(cores): gaussmix_fit(persisted(X, args.chunks), k, init),
                }
                record["W1_by_workers"] = marginals(fits, dict.fromkeys(fits, args.scaling_repeats))
        else:
            record["W1_by_workers"] = {}
        print(
            "W1 by workers:",
            json.dumps(record["W1_by_workers"]),
            f"({time.perf_counter() - started:.0f} s)",
        )
    if session is not None:
        session.stop()


def report(record: dict[str, Any]) -> str:
    """The table of a run, and each target against its measurement."""
    lines = [
        f"load average {record['load_average_at_start'][0]:.1f} at the start, "
        f"{record['load_average_at_end'][0]:.1f} at the end; {record['cores']} cores",
        "",
        f"{'s/iter':<26}{'in-process':>11}{'Dask':>8}{'Spark':>8}{'Spark/Dask':>12}"
        f"{'Dask/in-process':>17}",
    ]
    targets = []
    for name, row in record["workloads"].items():
        n, d = row["shape"]
        label = f"{name} {n:,} x {d}, K={row['n_components']}"
        spark = row.get("spark_s_per_iter")
        lines.append(
            f"{label:<26}{row['in_process_s_per_iter']:>11.3f}{row['dask_s_per_iter']:>8.3f}"
            + (f"{spark:>8.3f}{row['spark_over_dask']:>11.1f}x" if spark else f"{'-':>8}{'-':>12}")
            + f"{row['dask_over_in_process']:>16.2f}x"
        )
        if spark:
            ratio = row["spark_over_dask"]
            targets.append(
                f"{name}: Dask {ratio:.1f}x faster than Spark MLlib (target >= 3x): "
                + ("holds" if ratio >= 3 else "misses")
            )
        if name == "W1":
            ratio = row["dask_over_in_process"]
            targets.append(
                f"W1: Dask {ratio:.2f}x the in-process time (target <= 1.5x): "
                + ("holds" if ratio <= 1.5 else "misses")
            )
    tiny = record["tiny"]
    by_chunks = tiny["dask_s_per_iter_by_chunks"]
    overhead = tiny["overhead_s_per_iter_by_chunks"]
    lines += [
        "",
        "tiny 1,000 x 2, K=2, ms per iteration (median, 90th percentile): in-process "
        f"{1000 * tiny['in_process_s_per_iter']['median']:.1f}; on Dask "
        + ", ".join(
            f"{c} chunk(s) {1000 * t['median']:.1f} ({1000 * t['p90']:.1f})"
            for c, t in by_chunks.items()
        ),
        "  scheduler overhead per iteration (Dask - in-process): "
        + ", ".join(f"{c} chunk(s) {1000 * t:.1f} ms" for c, t in overhead.items())
        + f"; one trivial task's round trip {1000 * record['task_round_trip_s']:.1f} ms",
        "W1 on Dask by row chunks: "
        + ", ".join(f"{c}: {t:.3f}" for c, t in record["W1_by_chunks"].items())
        + " s/iter",
        "W1 on Dask by workers:    "
        + ", ".join(f"{w}: {t:.3f}" for w, t in record["W1_by_workers"].items())
        + " s/iter",
    ]
    pin = record.get("W1_pinned_against_unpinned")
    if pin:
        lines.append(
            "W1 on Dask, group tasks held to their chunks' workers or not, s/iter median "
            "[range] (tasks away / tasks): "
            + "; ".join(
                f"{side} {row['median']:.3f} [{row['range'][0]:.3f}-{row['range'][1]:.3f}] "
                f"({sum(row['away'])}/{sum(row['tasks'])})"
                for side, row in pin.items()
            )
        )
    worst = max(overhead.values())
    targets.append(
        f"tiny: overhead at most {1000 * worst:.1f} ms/iter over 1-8 chunks "
        "(target < 20 ms): " + ("holds" if worst < 0.020 else "misses")
    )
    lines += ["", "targets:"] + [f"  {t}" for t in targets] + record["notes"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spark-repeats", type=int, default=None, help="default: 2 on W1, 1 on W3")
    parser.add_argument("--scaling-repeats", type=int, default=1)
    parser.add_argument("--chunks", type=int, default=2, help="row chunks of the dask array")
    parser.add_argument("--chunk-counts", type=int, nargs="*", default=[2, 8, 32])
    parser.add_argument(
        "--pin-rounds", type=int, default=6, help="rounds of W1 pinned against unpinned (0: none)"
    )
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_dask.json"
    )
    args = parser.parse_args()
    args.scale = 0.1 if args.quick else 1.0
    import dask

    record: dict[str, Any] = {
        "command": " ".join(["benchmarks/bench_dask.py", *sys.argv[1:]]),
        "cores": available_cores(),
        "workloads": {},
        "notes": [],
        "load_average_at_start": os.getloadavg(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "gaussmix": gaussmix.__version__,
        "dask": dask.__version__,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
    }
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: every iteration runs
        # from_array puts the rows into the graph once, when they are persisted: expected here
        warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        run(args, record)
    record["load_average_at_end"] = os.getloadavg()
    record["wall_s"] = time.perf_counter() - start
    save(record, args.out)
    print()
    print(report(record))
    print(f"wrote {args.out} ({record['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
