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
untimed warm-up fit, best of ``--repeats`` of each. The same run measures the scheduler's
overhead per iteration on tiny data (1,000 x 2, K=2) beside one trivial task's round trip, and
how time per iteration grows with the number of row chunks and of workers on W1.

    .venv/bin/python benchmarks/bench_dask.py            # ~3-6 minutes with Spark
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


def marginal(fit: Callable[[int], Any], repeats: int) -> float:
    """(best time of a fit of LONG iterations - best of SHORT) / (LONG - SHORT)."""
    best: dict[int, float] = {}
    fit(SHORT)  # warm: imports on the workers, Spark's JIT and job set-up
    for _ in range(repeats):
        for iterations in (SHORT, LONG):
            start = time.perf_counter()
            fit(iterations)
            elapsed = time.perf_counter() - start
            best[iterations] = min(best.get(iterations, np.inf), elapsed)
    return (best[LONG] - best[SHORT]) / (LONG - SHORT)


def _nothing(i: int) -> int:
    return i


def round_trip(client: Any, tasks: int = 30) -> float:
    """Median seconds from submitting one trivial task to having its result: the scheduler's
    floor under any per-iteration overhead."""
    times = []
    for i in range(tasks):
        start = time.perf_counter()
        client.submit(_nothing, i, pure=False).result()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def gaussmix_fit(X: Any, k: int, init: dict[str, np.ndarray]) -> Callable[[int], Any]:
    def fit(iterations: int) -> GaussianMixture:
        model = GaussianMixture(k, tol=0.0, max_iter=iterations, **init)
        return model.fit(X)

    return fit


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


def run(args: argparse.Namespace) -> dict[str, Any]:
    import dask
    import dask.array as da
    from distributed import Client

    from gaussmix.em.dask_workers import local_cluster

    cores = available_cores()
    record: dict[str, Any] = {
        "cores": cores,
        "workloads": {},
        "notes": [],
        "load_average_at_start": os.getloadavg(),
        "gaussmix": gaussmix.__version__,
        "dask": dask.__version__,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
    }
    session, why_not = spark_session(cores) if not args.no_spark else (None, "--no-spark")
    if why_not:
        record["notes"].append(f"Spark MLlib not measured: {why_not}")
        print(f"Spark MLlib not measured: {why_not}", flush=True)
    workloads: dict[str, tuple[np.ndarray, int, dict[str, np.ndarray]]] = {}
    for name in ("W1", "W3"):
        n, d, k, covariance_type = WORKLOADS[name]
        X = mixture_data(int(n * args.scale), d, k)
        workloads[name] = (X, k, initial_parameters(X, k, covariance_type))
    with local_cluster(cores) as cluster, Client(cluster) as client:
        client.wait_for_workers(cores)
        for name, (X, k, init) in workloads.items():
            row: dict[str, Any] = {"shape": list(X.shape), "n_components": k}
            chunk = -(-X.shape[0] // args.chunks)
            Xd = da.from_array(X, chunks=(chunk, -1)).persist()
            # the in-process fit runs while the cluster idles: its workers sleep on sockets
            row["gaussmix_s_per_iter"] = marginal(gaussmix_fit(X, k, init), args.repeats)
            row["dask_chunks"] = args.chunks
            row["dask_s_per_iter"] = marginal(gaussmix_fit(Xd, k, init), args.repeats)
            row["dask_over_in_process"] = row["dask_s_per_iter"] / row["gaussmix_s_per_iter"]
            if session is not None:
                row["spark_s_per_iter"] = marginal(spark_fit(session, X, k, cores), args.repeats)
                row["spark_over_dask"] = row["spark_s_per_iter"] / row["dask_s_per_iter"]
            record["workloads"][name] = row
            print(name, json.dumps(row), flush=True)
            save(record, args.out)
        record["task_round_trip_s"] = round_trip(client)
        tiny = mixture_data(1000, 2, 2)
        tiny_init = initial_parameters(tiny, 2, "full")
        overhead = {}
        for n_chunks in (1, 2, 8):
            Xd = da.from_array(tiny, chunks=(-(-1000 // n_chunks), -1)).persist()
            overhead[n_chunks] = marginal(gaussmix_fit(Xd, 2, tiny_init), args.repeats)
        in_process = marginal(gaussmix_fit(tiny, 2, tiny_init), args.repeats)
        record["tiny"] = {"in_process_s_per_iter": in_process, "dask_s_per_iter": overhead}
        print("tiny 1,000 x 2, K=2:", json.dumps(record["tiny"]), flush=True)
        print(f"one trivial task's round trip: {record['task_round_trip_s']:.4f} s", flush=True)
        save(record, args.out)
        X, k, init = workloads["W1"]
        by_chunks = {}
        for n_chunks in args.chunk_counts:
            Xd = da.from_array(X, chunks=(-(-X.shape[0] // n_chunks), -1)).persist()
            by_chunks[n_chunks] = marginal(gaussmix_fit(Xd, k, init), args.repeats)
            record["W1_by_chunks"] = by_chunks
            save(record, args.out)
        print("W1 by row chunks:", json.dumps(by_chunks), flush=True)
    by_workers = {}
    for n_workers in range(1, cores + 1):
        with local_cluster(n_workers) as cluster, Client(cluster) as client:
            client.wait_for_workers(n_workers)
            Xd = da.from_array(X, chunks=(-(-X.shape[0] // args.chunks), -1)).persist()
            by_workers[n_workers] = marginal(gaussmix_fit(Xd, k, init), args.repeats)
            record["W1_by_workers"] = by_workers
            save(record, args.out)
    print("W1 by workers:", json.dumps(by_workers), flush=True)
    if session is not None:
        import pyspark

        record["pyspark"] = pyspark.__version__
        session.stop()
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=2, help="row chunks of the dask array")
    parser.add_argument("--chunk-counts", type=int, nargs="*", default=[2, 8, 32])
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_dask.json"
    )
    args = parser.parse_args()
    args.scale = 0.1 if args.quick else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: every iteration runs
        # from_array puts the rows into the graph once, when they are persisted: expected here
        warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        record = run(args)
    record["load_average_at_end"] = os.getloadavg()
    save(record, args.out)
    for name, row in record["workloads"].items():
        line = (
            f"{name}: gaussmix {row['gaussmix_s_per_iter']:.3f} s/iter in-process, "
            f"{row['dask_s_per_iter']:.3f} on Dask ({row['dask_over_in_process']:.2f}x)"
        )
        if "spark_s_per_iter" in row:
            line += (
                f", Spark MLlib {row['spark_s_per_iter']:.3f} "
                f"(Dask {row['spark_over_dask']:.1f}x faster)"
            )
        print(line)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
