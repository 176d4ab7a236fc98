"""The textbook benchmark's gradients (benchmarks/bench_textbook.py) keep their targets: at
least 90% print exactly the textbook's form, none is longer than 1.5 times it, and every printed
gradient reads back to the same value."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from gaussmix.calculus import grad

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_textbook.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_textbook", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_textbook_forms_meet_the_targets() -> None:
    bench = _bench()
    assert len(bench.CASES) >= 60
    exact = 0
    for expr, wrt, types, textbook in bench.CASES:
        r = grad(expr, wrt, types)
        printed = str(r)
        exact += printed == textbook
        assert len(printed) <= 1.5 * len(textbook), (expr, printed, textbook)
        assert bench._round_trip(r, types) < 1e-9, (expr, printed)
    assert exact >= 0.9 * len(bench.CASES)
