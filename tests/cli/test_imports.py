"""Import facts: what the quick commands and the calculus must not pull in (no timings here;
benchmarks/bench_startup.py measures the start-up itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HEAVY = ("sklearn", "matplotlib", "joblib", "gaussmix.em.compiled")
ENGINE = ("sklearn", "gaussmix.em", "gaussmix.mixture")

_RUN = """
import json, sys
{setup}
print(json.dumps(sorted(sys.modules)))
"""

_COMMAND = """
from gaussmix.cli.main import app
try:
    app({args!r})
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
"""


def _modules(setup: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", _RUN.format(setup=setup)],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def _loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return [p for p in packages if any(m == p or m.startswith(p + ".") for m in modules)]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gaussmix import GaussianMixture

    X = np.random.default_rng(0).normal(size=(60, 2))
    path = tmp_path_factory.mktemp("model") / "m.npz"
    GaussianMixture(2, random_state=0).fit(X).save(path, columns=["a", "b"])
    return path


def test_import_calculus_pulls_in_neither_sklearn_nor_the_em_engine() -> None:
    assert _loaded(_modules("import gaussmix.calculus"), ENGINE) == []


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["grad", "x'*A*x", "--wrt", "x"], ["info", "{model}"]],
    ids=["help", "version", "grad", "info"],
)
def test_quick_commands_import_nothing_heavy(args: list[str], model_file: Path) -> None:
    args = [a.format(model=model_file) for a in args]
    modules = _modules(_COMMAND.format(args=args))
    assert _loaded(modules, HEAVY) == []


def test_fit_does_import_the_engine(tmp_path: Path) -> None:
    # the facts above are not vacuous: a fit loads what --help must not
    data = tmp_path / "x.csv"
    data.write_text("a,b\n" + "".join(f"{i % 7},{i % 5}\n" for i in range(30)))
    modules = _modules(_COMMAND.format(args=["fit", str(data), "-k", "2", "--n-init", "1"]))
    assert _loaded(modules, ("sklearn", "gaussmix.mixture")) == ["sklearn", "gaussmix.mixture"]
