"""EM on a GPU through PyTorch: gaussmix's array-API kernel against scikit-learn's array-API path
on the same CUDA device, and gaussmix on the CPU, from the same start.

The workload is bench_em.py's W1 at ten times its size (2,000,000 rows, 16 features, 16 full
components), fitted from identical explicit initial parameters with tol=0 and a fixed number of
iterations; the table gives seconds per iteration (best of ``--repeats`` fits) and the relative
difference of each final lower bound from gaussmix-CPU's. Without a CUDA device (or without
torch) it says so and exits 0.

    .venv/bin/python benchmarks/bench_gpu.py                  # ~1-3 minutes on a GPU
    .venv/bin/python benchmarks/bench_gpu.py --scale 0.1      # W1's own size

Writes benchmarks/results/bench_gpu.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # scikit-learn's dispatch needs scipy's, at import


sys.path.insert(0, str(Path(__file__).parent))
from bench_em import WORKLOADS, initial_parameters, mixture_data


def torch_on(device: str) -> Any:
    """The torch module when ``device`` ("cuda" or "cpu") is there, else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if device == "cpu" or torch.cuda.is_available() else None


def best_time(fit: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> tuple[float, Any]:
    times, model = [], None
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        model = fit()
        sync()
        times.append(time.perf_counter() - start)
    return min(times), model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=10.0, help="rows relative to W1's")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=262_144, help="gaussmix's on the GPU")
    parser.add_argument(
        "--device", default="cuda", help="torch device; 'cpu' runs the same script as a smoke test"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results/bench_gpu.json"
    )
    args = parser.parse_args()

    torch = torch_on(args.device)
    if torch is None:
        print(f"bench_gpu: no {args.device} device for torch (or no torch) here; nothing measured.")
        return

    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    from gaussmix import GaussianMixture

    n, d, k, covariance_type = WORKLOADS["W1"]
    n = int(n * args.scale)
    X = mixture_data(n, d, k)
    inits = initial_parameters(X, k, covariance_type)
    common = dict(
        n_components=k,
        covariance_type=covariance_type,
        tol=0.0,
        max_iter=args.iterations,
        init_params="random",  # unused (all parameters given); scikit-learn dispatch wants it
    )
    cuda = torch.device(args.device)
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"torch {args.device}"
    X_gpu = torch.asarray(X, device=cuda)
    inits_gpu = {name: torch.asarray(value, device=cuda) for name, value in inits.items()}

    def sync() -> None:
        if args.device == "cuda":
            torch.cuda.synchronize()

    results: dict[str, dict[str, float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        seconds, cpu = best_time(
            lambda: GaussianMixture(**common, **inits).fit(X), args.repeats, lambda: None
        )
        results["gaussmix_numpy"] = {"s_per_iter": seconds / args.iterations}
        reference = float(cpu.lower_bound_)
        with sklearn.config_context(array_api_dispatch=True):
            for name, make in (
                (
                    f"gaussmix_torch_{args.device}",
                    lambda: GaussianMixture(**common, **inits_gpu, chunk_size=args.chunk_size),
                ),
                (f"sklearn_torch_{args.device}", lambda: SkGaussianMixture(**common, **inits_gpu)),
            ):
                seconds, model = best_time(lambda make=make: make().fit(X_gpu), args.repeats, sync)
                results[name] = {
                    "s_per_iter": seconds / args.iterations,
                    "lower_bound_rel_diff": abs(float(model.lower_bound_) - reference)
                    / abs(reference),
                }
    base = results["gaussmix_numpy"]["s_per_iter"]
    print(
        f"W1 x {args.scale:g}: {n} rows, {d} features, {k} {covariance_type} components, "
        f"{args.iterations} iterations, best of {args.repeats}; {where}"
    )
    for name, row in results.items():
        row["speedup_over_gaussmix_numpy"] = base / row["s_per_iter"]
        print(
            f"  {name:20s} {row['s_per_iter']:.4f} s/iter"
            f"  x{row['speedup_over_gaussmix_numpy']:.2f}"
            f"  lower bound rel diff {row.get('lower_bound_rel_diff', 0.0):.1e}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"n_samples": n, "device": where, "results": results}
    args.out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
