"""Benchmark of the calculus engine: gradient time over the Matrix Cookbook suite, and SymPy.

Run from the repository root:

    python benchmarks/bench_calculus.py [--repeat 15] [--sympy-timeout 20]

For every case of tests/calculus/cookbook.py it measures the median time of ``grad`` (parse,
derivation, simplification; the cache of symmetry judgements is cleared before each call so every
call starts cold). Then it asks SymPy (``MatrixSymbol`` expressions, ``.diff``) for the same
gradient, evaluates SymPy's answer at a random point and compares it with the engine's value: a
case counts as "SymPy right" only when the numbers agree. Times are compared on those cases.
Results go to benchmarks/out/calculus.json and a table is printed. Needs the ``bench`` extra
(sympy) for the comparison; without SymPy only the engine is timed.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.calculus.cookbook, the suite

from tests.calculus.cookbook import CASES  # noqa: E402

from gaussmix.calculus import Expr, Op, grad  # noqa: E402
from gaussmix.calculus.numeric import random_point  # noqa: E402
from gaussmix.calculus.structure import _is_symmetric  # noqa: E402

OUT = ROOT / "benchmarks" / "out"


def time_engine(case: Any, repeat: int) -> float:
    """Median seconds of one cold ``grad`` call."""
    times = []
    for _ in range(repeat):
        _is_symmetric.cache_clear()
        t0 = time.perf_counter()
        grad(case.expr, case.wrt, case.types)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------
# SymPy
# ---------------------------------------------------------------------------------------------


class Unsupported(Exception):
    """The expression uses something SymPy's matrix expressions cannot say."""


class Timeout(Exception):
    pass


# What SymPy raises on matrix expressions it cannot handle (ShapeError is a ValueError).
SYMPY_FAILURES = (
    NotImplementedError,
    TypeError,
    ValueError,
    AttributeError,
    IndexError,
    KeyError,
    RecursionError,
)


def _alarm(signum: int, frame: Any) -> None:
    raise Timeout


def to_sympy(e: Expr, values: dict[str, Any], sp: Any) -> Any:
    """The expression as a SymPy matrix expression, with the sizes of the point's values."""
    op, a = e.op, e.args

    def go(x: Expr) -> Any:
        return to_sympy(x, values, sp)

    if op is Op.VAR:
        v = np.asarray(values[e.name])
        if v.ndim == 0:
            return sp.Symbol(e.name)
        rows, cols = (v.shape[0], 1) if v.ndim == 1 else v.shape
        return sp.MatrixSymbol(e.name, rows, cols)
    if op is Op.NUM:
        return sp.Rational(e.value.numerator, e.value.denominator)
    if op is Op.ADD:
        return sp.Add(*[go(t) for t in a]) if e.is_scalar else sp.MatAdd(*[go(t) for t in a])
    if op is Op.NEG:
        return -go(a[0])
    if op is Op.MATMUL:
        return sp.MatMul(*[go(f) for f in a])
    if op is Op.SCALE:
        c, m = go(a[0]), go(a[1])
        return c * m
    if op is Op.DIV:
        return go(a[0]) / go(a[1])
    if op is Op.POW:
        return go(a[0]) ** go(a[1])
    if op is Op.MPOW:
        return sp.MatPow(go(a[0]), go(a[1]))
    if op is Op.HADAMARD:
        return sp.HadamardProduct(go(a[0]), go(a[1]))
    if op is Op.TRANSPOSE:
        inner = go(a[0])
        return inner if a[0].is_scalar else inner.T
    if op is Op.TR:
        return sp.Trace(go(a[0]))
    if op is Op.DET:
        return sp.Determinant(go(a[0]))
    if op is Op.LOGDET:
        return sp.log(sp.Determinant(go(a[0])))
    if op is Op.INV:
        return sp.Inverse(go(a[0]))
    if op is Op.LOG and a[0].is_scalar:
        return sp.log(go(a[0]))
    if op is Op.EXP and a[0].is_scalar:
        return sp.exp(go(a[0]))
    if op is Op.ABS and a[0].is_scalar:
        return sp.Abs(go(a[0]))
    raise Unsupported(op.value)


def sympy_gradient(case: Any, values: dict[str, Any], sp: Any, timeout: int) -> tuple[Any, Any]:
    """SymPy's expression and its derivative with respect to the case's variable."""
    r = grad(case.expr, case.wrt, case.types)
    f = to_sympy(r.expr, values, sp)
    wrt = to_sympy(r.wrt, values, sp)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    try:
        return wrt, f.diff(wrt)
    finally:
        signal.alarm(0)


def sympy_value(result: Any, values: dict[str, Any], sp: Any) -> np.ndarray:
    """SymPy's answer evaluated at the point."""
    subs = {}
    for sym in result.free_symbols:
        v = np.asarray(values[str(sym)], dtype=float)
        if isinstance(sym, sp.MatrixSymbol):
            subs[sym] = sp.ImmutableMatrix(v.reshape(sym.shape))
        else:
            subs[sym] = sp.Float(float(v))
    out = result.subs(subs).doit()
    if hasattr(out, "as_explicit"):
        out = out.as_explicit()
    if isinstance(out, sp.NDimArray):  # SymPy's array forms: keep the numbers, drop unit axes
        return np.array(out.tolist(), dtype=float).squeeze()
    if hasattr(out, "tolist"):
        return np.array(sp.Matrix(out).evalf().tolist(), dtype=float)
    return np.asarray(float(sp.N(out)))


def compare_with_sympy(case: Any, repeat: int, timeout: int) -> dict[str, Any]:
    """Time SymPy on the case and judge its answer against the engine's."""
    import sympy as sp

    r = grad(case.expr, case.wrt, case.types)
    point = random_point(r.expr, 11, also=(r.gradient,))
    expected = np.asarray(r(**point.values), dtype=float)
    try:
        t0 = time.perf_counter()
        _, result = sympy_gradient(case, point.values, sp, timeout)
        first = time.perf_counter() - t0
    except Unsupported as exc:
        return {"sympy": "cannot express", "detail": str(exc)}
    except Timeout:
        return {"sympy": f"no answer in {timeout} s"}
    except SYMPY_FAILURES as exc:  # a failure of SymPy is a result here
        return {"sympy": "error", "detail": f"{type(exc).__name__}: {exc}"[:200]}
    try:
        got = sympy_value(result, point.values, sp)
    except SYMPY_FAILURES as exc:
        return {"sympy": "answer not evaluable", "detail": f"{type(exc).__name__}: {exc}"[:200]}
    if got.size == expected.size:  # SymPy's layout of a vector gradient may differ
        got = got.reshape(expected.shape)
    right = got.shape == expected.shape and np.allclose(got, expected, rtol=1e-8, atol=1e-10)
    if not right:
        zero = bool(np.all(got == 0))
        return {"sympy": "wrong (returns 0)" if zero else "wrong", "answer": str(result)[:120]}
    times = [first]
    for _ in range(max(0, repeat - 1)):
        t0 = time.perf_counter()
        sympy_gradient(case, point.values, sp, timeout)
        times.append(time.perf_counter() - t0)
    return {"sympy": "right", "sympy_seconds": statistics.median(times)}


def main() -> None:
    warnings.simplefilter("ignore")  # SymPy's deprecation notices about its own array forms
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per case")
    parser.add_argument("--sympy-repeat", type=int, default=3, help="timed SymPy runs per case")
    parser.add_argument("--sympy-timeout", type=int, default=20, help="seconds per SymPy call")
    args = parser.parse_args()

    try:
        import sympy

        sympy_version: str | None = sympy.__version__
    except ImportError:
        sympy_version = None

    grad("x'*x", "x")  # build the parser once, outside the timings
    rows = []
    for case in CASES:
        row: dict[str, Any] = {
            "case": case.id,
            "expr": case.expr,
            "wrt": case.wrt,
            "gradient": str(grad(case.expr, case.wrt, case.types)),
        }
        row["seconds"] = time_engine(case, args.repeat)
        if sympy_version is not None:
            row.update(compare_with_sympy(case, args.sympy_repeat, args.sympy_timeout))
        rows.append(row)

    ours = [r["seconds"] for r in rows]
    both = [r for r in rows if r.get("sympy") == "right"]
    summary: dict[str, Any] = {
        "cases": len(rows),
        "median_ms": 1000 * statistics.median(ours),
        "max_ms": 1000 * max(ours),
        "sympy_version": sympy_version,
        "sympy_right": len(both),
        "sympy_verdicts": {
            k: sum(r.get("sympy") == k for r in rows)
            for k in sorted({str(r.get("sympy")) for r in rows})
        },
    }
    if both:
        summary["median_ms_on_sympy_cases"] = 1000 * statistics.median(r["seconds"] for r in both)
        summary["sympy_median_ms"] = 1000 * statistics.median(r["sympy_seconds"] for r in both)
        summary["median_speedup"] = statistics.median(
            r["sympy_seconds"] / r["seconds"] for r in both
        )
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "calculus.json").write_text(
        json.dumps({"summary": summary, "meta": meta, "cases": rows}, indent=2)
    )

    print(f"{'case':28} {'gaussmix ms':>11}  {'sympy ms':>9}  sympy verdict")
    for r in rows:
        sym = f"{1000 * r['sympy_seconds']:9.2f}" if "sympy_seconds" in r else " " * 9
        print(f"{r['case']:28} {1000 * r['seconds']:11.2f}  {sym}  {r.get('sympy', '-')}")
    print()
    print(
        f"gaussmix: median {summary['median_ms']:.2f} ms, max {summary['max_ms']:.2f} ms "
        f"over {len(rows)} gradients"
    )
    if both:
        print(
            f"on the {len(both)} cases SymPy {sympy_version} gets right: gaussmix median "
            f"{summary['median_ms_on_sympy_cases']:.2f} ms, SymPy median "
            f"{summary['sympy_median_ms']:.2f} ms, median speed-up "
            f"{summary['median_speedup']:.1f}x"
        )
    print(f"SymPy verdicts: {summary['sympy_verdicts']}")
    print(f"written to {OUT / 'calculus.json'}")


if __name__ == "__main__":
    main()
