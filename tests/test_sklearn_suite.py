"""scikit-learn's own GaussianMixture tests, run against ``gaussmix.GaussianMixture``.

At import this module reads the installed scikit-learn's ``sklearn/mixture/tests/
test_gaussian_mixture.py`` and ``test_mixture.py``, rewrites them with ``ast`` so that the class
under test is gaussmix's (the import ``from sklearn.mixture import GaussianMixture`` becomes
``from gaussmix import GaussianMixture``; ``BayesianGaussianMixture`` is dropped from every
parametrisation), leaves out the tests listed in ``LEFT_OUT`` (each with its reason: they test
scikit-learn's private functions or methods, or BayesianGaussianMixture), marks those listed in
``DIFFERENCES`` to run without matching their error messages, and those in ``NOT_REFUSED`` (where
gaussmix does what scikit-learn refuses) as strict xfails (the README's "Differences from
scikit-learn" lists both), and hands every other test to pytest under its own name. So the
suite follows whichever scikit-learn is installed; where its test files are not installed, the
module is skipped.

The fixtures that scikit-learn's conftest provides are provided here: ``global_dtype`` runs
float32 and float64 (as ``SKLEARN_RUN_FLOAT32_TESTS=1`` does), ``global_random_seed`` is 42
(scikit-learn's default, or ``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` when it names one seed).
"""

from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path
from types import FunctionType
from typing import Any

import numpy as np
import pytest

# name -> why it is not run (tests of scikit-learn's internals, not of the estimator's behaviour)
LEFT_OUT: dict[str, str] = {
    "test_suffstat_sk_full": "scikit-learn's private _estimate_gaussian_covariances_full",
    "test_suffstat_sk_tied": "scikit-learn's private _estimate_gaussian_covariances_tied",
    "test_suffstat_sk_diag": "scikit-learn's private _estimate_gaussian_covariances_diag",
    "test_gaussian_suffstat_sk_spherical": (
        "scikit-learn's private _estimate_gaussian_covariances_spherical"
    ),
    "test_compute_log_det_cholesky": "scikit-learn's private _compute_log_det_cholesky",
    "test_gaussian_mixture_log_probabilities": (
        "scikit-learn's private _estimate_log_gaussian_prob"
    ),
    "test_gaussian_mixture_precisions_init": (
        "calls scikit-learn's private methods GaussianMixture._set_parameters and _initialize"
    ),
    "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters": (
        "counts calls of scikit-learn's private _estimate_gaussian_parameters (monkeypatched)"
    ),
}

# name -> the deliberate difference (README.md, "Differences from scikit-learn", lists each).
# These tests run whole, with the ``match=`` of their ``pytest.raises`` taken out: gaussmix raises
# the same exception type with its own message, one line that says what to do.
DIFFERENCES: dict[str, str] = {
    "test_check_weights": "wording of the weights_init messages (shape, range, normalisation)",
    "test_check_means": "wording of the means_init shape message",
    "test_check_precisions": "wording of the precisions_init shape and positivity messages",
    "test_regularisation": "wording of the degenerate-covariance message (names the component)",
}

# name -> what gaussmix does where scikit-learn refuses: run as strict xfails (they fail only by
# not raising), listed in the README with the wording differences
NOT_REFUSED: dict[str, str] = {
    "test_gaussian_mixture_raises_where_array_api_not_implemented": (
        "under array API dispatch the k-means starts work: gaussmix initialises on the host, "
        "where scikit-learn refuses init_params='kmeans' and 'k-means++'"
    ),
}

_FILES = ("test_gaussian_mixture.py", "test_mixture.py")


def _test_dir() -> Path | None:
    spec = importlib.util.find_spec("sklearn.mixture")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "tests"
    return folder if all((folder / name).is_file() for name in _FILES) else None


class _SwapEstimator(ast.NodeTransformer):
    """gaussmix's GaussianMixture for scikit-learn's; no BayesianGaussianMixture; no left-out
    tests."""

    def __init__(self) -> None:
        self.left_out: set[str] = set()

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | list[ast.AST] | None:
        if node.module != "sklearn.mixture":
            return node
        names = [alias for alias in node.names if alias.name != "BayesianGaussianMixture"]
        if not names:
            return None
        if any(alias.name != "GaussianMixture" for alias in names):
            raise ValueError(f"unexpected import from sklearn.mixture: {ast.unparse(node)}")
        return ast.copy_location(ast.ImportFrom("gaussmix", names, 0), node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST | None:
        if node.name in LEFT_OUT:
            self.left_out.add(node.name)
            return None
        if node.name in DIFFERENCES:
            _DropMatch().visit(node)
        return self.generic_visit(node)

    def visit_List(self, node: ast.List) -> ast.AST:
        # parametrisations such as [GaussianMixture(), BayesianGaussianMixture()]
        node.elts = [
            element
            for element in node.elts
            if not (
                isinstance(element, ast.Call)
                and isinstance(element.func, ast.Name)
                and element.func.id == "BayesianGaussianMixture"
            )
        ]
        return self.generic_visit(node)


class _DropMatch(ast.NodeTransformer):
    """``pytest.raises(E, match=...)`` becomes ``pytest.raises(E)``."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Attribute) and node.func.attr == "raises":
            node.keywords = [k for k in node.keywords if k.arg != "match"]
        return self.generic_visit(node)


_LEFT_OUT_FOUND: set[str] = set()


def _load(path: Path) -> dict[str, Any]:
    swap = _SwapEstimator()
    tree = swap.visit(ast.parse(path.read_text(), filename=str(path)))
    _LEFT_OUT_FOUND.update(swap.left_out)
    ast.fix_missing_locations(tree)
    namespace: dict[str, Any] = {"__name__": f"sklearn_suite.{path.stem}", "__file__": str(path)}
    exec(compile(tree, str(path), "exec"), namespace)
    return namespace


def _collect() -> dict[str, FunctionType]:
    folder = _test_dir()
    if folder is None:
        pytest.skip("scikit-learn's mixture tests are not installed", allow_module_level=True)
    found: dict[str, FunctionType] = {}
    for name in _FILES:
        for key, value in _load(folder / name).items():
            if key.startswith("test_") and isinstance(value, FunctionType):
                if key in found:
                    raise ValueError(f"{key} is defined in both of scikit-learn's test files")
                found[key] = value
    return found


_TESTS = _collect()
for _name in NOT_REFUSED:
    _TESTS[_name] = pytest.mark.xfail(
        reason=NOT_REFUSED[_name], strict=True, raises=pytest.fail.Exception
    )(_TESTS[_name])
globals().update(_TESTS)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def global_dtype(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.fixture
def global_random_seed() -> int:
    seed = os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED", "42")
    return int(seed) if seed.isdigit() else 42


def test_the_suite_was_found() -> None:
    """The rewrite found scikit-learn's tests, and every listed name is one of them."""
    assert len(_TESTS) > 30
    assert "test_warm_start" in _TESTS
    assert "test_gaussian_mixture_n_iter" in _TESTS
    assert not (set(DIFFERENCES) | set(NOT_REFUSED)) - set(_TESTS)
    assert _LEFT_OUT_FOUND == set(LEFT_OUT)  # every left-out name is one of scikit-learn's
    assert _TESTS["test_warm_start"].__globals__["GaussianMixture"].__module__ == (
        "gaussmix.mixture"
    )


def test_differences_are_in_the_readme() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name in [*DIFFERENCES, *NOT_REFUSED]:
        assert f"`{name}`" in readme
