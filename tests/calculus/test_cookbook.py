"""The Matrix Cookbook suite: every gradient checked by finite differences, the textbook forms
checked as text and against the book's formula written in numpy."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix.calculus import grad
from gaussmix.calculus.gradient import CHECK_TOLERANCE
from gaussmix.calculus.numeric import random_point
from tests.calculus.cookbook import CASES, TEXTBOOK

_RESULTS: dict[str, object] = {}


def _grad(case):  # type: ignore[no-untyped-def]
    if case.id not in _RESULTS:
        _RESULTS[case.id] = grad(case.expr, case.wrt, case.types)
    return _RESULTS[case.id]


def test_the_suite_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len(TEXTBOOK) >= 15
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids)
    covered = " ".join(c.expr for c in CASES)
    for needed in ("det(", "inv(", "tr(", "norm2(", "norm1(", "exp(", "log(sum(exp(", "logdet("):
        assert needed in covered


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradient_matches_finite_differences(case) -> None:  # type: ignore[no-untyped-def]
    r = _grad(case)
    assert r.check(seed=0) < CHECK_TOLERANCE


@pytest.mark.parametrize("case", [c for c in CASES if c.formula is not None], ids=str)
def test_gradient_equals_the_books_formula(case) -> None:  # type: ignore[no-untyped-def]
    r = _grad(case)
    for seed in (1, 2):
        point = random_point(r.expr, seed, also=(r.gradient,))
        got = np.asarray(r(**point.values), dtype=float)
        want = np.asarray(case.formula(point.values), dtype=float)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", TEXTBOOK, ids=str)
def test_gradient_prints_in_textbook_form(case) -> None:  # type: ignore[no-untyped-def]
    assert str(_grad(case)) == case.text


def test_a_wrong_formula_is_caught() -> None:
    # 2*A*x is the gradient of x'*A*x only for symmetric A: random points are not symmetric,
    # so the comparison above would catch a rule that dropped a transpose.
    r = grad("x'*A*x", "x")
    point = random_point(r.expr, 1)
    wrong = 2 * point.values["A"] @ point.values["x"]
    assert not np.allclose(r(**point.values), wrong)
