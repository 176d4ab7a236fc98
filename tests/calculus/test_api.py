"""The public API of issue 3: grad() and its result, exactly as documented."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix.calculus import CalculusError, Gradient, Step, grad
from gaussmix.calculus.gradient import CHECK_TOLERANCE


@pytest.fixture(scope="module")
def r() -> Gradient:
    return grad("x'*A*x", wrt="A", types={"x": "vector", "A": "matrix"})


def test_the_documented_example(r: Gradient) -> None:
    assert str(r) == "x*x'"
    assert r.latex == "x x^\\top"
    assert all(isinstance(s, Step) for s in r.steps)
    assert all(s.text and s.latex and s.rule for s in r.steps)
    assert r._repr_latex_().startswith("$") and r._repr_latex_().endswith("$")
    assert "x x^\\top" in r._repr_latex_()


def test_numeric_values(r: Gradient) -> None:
    rng = np.random.default_rng(0)
    x, A = rng.normal(size=3), rng.normal(size=(3, 3))
    g = r(x=x, A=A)
    assert g.shape == A.shape
    np.testing.assert_allclose(g, np.outer(x, x))
    assert r.value(x=x, A=A) == pytest.approx(x @ A @ x)
    s = grad("x'*A*x", "x")
    np.testing.assert_allclose(s(x=x, A=A), (A + A.T) @ x)
    assert s(x=x, A=A).shape == (3,)
    assert isinstance(grad("a*b^2", "b")(a=2.0, b=3.0), float)


def test_check(r: Gradient) -> None:
    assert r.check(seed=0) < CHECK_TOLERANCE
    assert r.check(seed=5) < CHECK_TOLERANCE


def test_agrees_with(r: Gradient) -> None:
    assert r.agrees_with("x*x'")
    verdict = r.agrees_with("x'*x*eye")
    assert not verdict
    assert verdict.counterexample is not None and set(verdict.counterexample) >= {"x"}
    assert verdict.claimed.shape == verdict.expected.shape == verdict.counterexample["A"].shape
    assert not np.allclose(verdict.claimed, verdict.expected)
    wrong_shape = r.agrees_with("x")
    assert not wrong_shape and "vector" in wrong_shape.reason
    # an unsymmetric gradient is wrong: 2*A*x only for symmetric A
    assert not grad("x'*A*x", "x").agrees_with("2*A*x")
    assert grad("x'*A*x", "x", {"A": "symmetric"}).agrees_with("2*A*x")
    assert grad("tr(X)", "X").agrees_with("eye")


def test_symmetric_convention_and_the_cookbook_form() -> None:
    r = grad("tr(A*S)", "S", {"S": "symmetric"})
    assert r.agrees_with("(A + A')/2")
    assert not r.agrees_with("A'")
    cookbook = r.agrees_with("A + A' - A.*eye")
    assert not cookbook
    assert "Matrix Cookbook" in cookbook.reason
    assert "symmetric" in r.convention and "(G + G')/2" in r.convention
    assert [s.rule for s in r.steps][-1] != "identify"
    assert "symmetric gradient" in [s.rule for s in r.steps]
    # the same expression, S not declared: the plain gradient
    assert str(grad("tr(A*S)", "S")) == "A'"


def test_log_det_derivation_reads_like_the_lecture() -> None:
    r = grad("log(det(X))", "X")
    rules = [s.rule for s in r.steps]
    assert rules.index("log") < rules.index("Jacobi") < rules.index("identify")
    assert str(r) == "inv(X)'"
    text = r.derivation()
    assert text.splitlines()[0].strip() == "df = d(log(det(X)))"
    assert text.splitlines()[-1].split("[")[0].split(".", 1)[1].strip() == "G = inv(X)'"
    assert "\\begin{aligned}" in r.derivation_latex()


def test_errors_never_give_a_wrong_answer() -> None:
    with pytest.raises(CalculusError, match="not a scalar"):
        grad("A*x", "x")
    with pytest.raises(CalculusError, match="does not appear"):
        grad("x'*A*x", "B")
    with pytest.raises(CalculusError, match="did you mean x"):
        grad("x'*A*x", "xx")
    with pytest.raises(CalculusError, match="types name y"):
        grad("x'*A*x", "x", {"y": "vector"})
    with pytest.raises(ValueError):  # CalculusError is a ValueError
        grad("x'*A*", "x")


def test_types_as_a_string() -> None:
    assert str(grad("x'*S*x", "x", "S:symmetric")) == "2*S*x"


def test_indexed_variables() -> None:
    r = grad("sum_k(pi_k*mu_k'*y)", "mu_k", {"pi": "scalar", "mu": "vector"}, indices="k")
    assert str(r) == "pi_k*y"
    assert r.check() < CHECK_TOLERANCE
    pi, mu, y = np.array([0.2, 0.8]), np.ones((2, 3)), np.arange(3.0)
    np.testing.assert_allclose(r(k=1, pi=pi, mu=mu, y=y), 0.8 * y)


def test_to_dict_is_plain_data(r: Gradient) -> None:
    import json

    data = json.loads(json.dumps(r.to_dict()))
    assert data["gradient"] == "x*x'"
    assert data["steps"][0]["before"] == "d(x'*A*x)"
