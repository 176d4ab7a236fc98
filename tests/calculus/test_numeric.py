"""Evaluation, random points of the right structure, and the finite-difference check's teeth."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix.calculus import CalculusError, evaluate, parse
from gaussmix.calculus.numeric import directional_error, random_point


def test_evaluate_layouts() -> None:
    x = np.array([1.0, 2.0])
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert evaluate(parse("x'*A*x"), {"x": x, "A": A}) == pytest.approx(x @ A @ x)
    np.testing.assert_allclose(evaluate(parse("A*x + 1"), {"x": x, "A": A}), A @ x + 1)
    np.testing.assert_allclose(evaluate(parse("x'"), {"x": x}), x[None, :])
    np.testing.assert_allclose(evaluate(parse("diag(A)"), {"A": A}), [1.0, 4.0])
    np.testing.assert_allclose(evaluate(parse("inv(A)*A"), {"A": A}), np.eye(2), atol=1e-12)
    assert evaluate(parse("logdet(A'*A)"), {"A": A}) == pytest.approx(
        np.log(np.linalg.det(A.T @ A))
    )
    q = np.array([[0.1, 0.2, 0.7]])
    xs = np.arange(6.0).reshape(3, 2)
    out = evaluate(
        parse("sum_n(q_kn*x_n)", {"q": "scalar"}, indices="nk"),
        {"q": q, "x": xs},
        index_env={"k": 0},
    )
    np.testing.assert_allclose(out, q[0] @ xs)


def test_evaluate_errors() -> None:
    with pytest.raises(CalculusError, match="no value for A"):
        evaluate(parse("x'*A*x"), {"x": np.ones(2)})
    with pytest.raises(CalculusError, match="do not fit"):
        evaluate(parse("x'*A*x"), {"x": np.ones(2), "A": np.ones((3, 3))})
    with pytest.raises(CalculusError, match="is a vector"):
        evaluate(parse("x'*x"), {"x": np.ones((2, 2))})
    with pytest.raises(CalculusError, match="singular"):
        evaluate(parse("inv(A)"), {"A": np.zeros((2, 2))})
    with pytest.raises(CalculusError, match="not numeric"):
        evaluate(parse("a"), {"a": "seven"})


def test_random_points_have_the_structure_the_expression_needs() -> None:
    e = parse("logdet(S) + logdet(X) + sum(log(y)) + x'*A*x", {"S": "symmetric"})
    for seed in range(5):
        v = random_point(e, seed).values
        S, X = v["S"], v["X"]
        np.testing.assert_allclose(S, S.T)
        assert np.all(np.linalg.eigvalsh(S) > 0)
        assert np.linalg.det(X) > 0
        assert not np.allclose(X, X.T)  # general matrices are not symmetric
        assert np.all(v["y"] > 0)
        assert v["A"].shape[0] != v["x"].shape[0] or v["A"].shape == (len(v["x"]),) * 2
    point = random_point(parse("y'*A*x"), 0)
    assert point.values["A"].shape == (len(point.values["y"]), len(point.values["x"]))
    assert len(point.values["y"]) != len(point.values["x"])  # distinct sizes show transposes


def test_the_check_catches_wrong_gradients() -> None:
    f = parse("x'*A*x")
    x = next(n for n in f.walk() if n.name == "x")

    def error(claim: str) -> float:
        return directional_error(f, parse(claim, context=f, shape=x.shape), x)

    assert error("(A + A')*x") < 1e-8
    assert error("2*A*x") > 1e-2
    assert error("A'*x") > 1e-2
    g = parse("log(det(X))")
    X = next(n for n in g.walk() if n.name == "X")
    assert directional_error(g, parse("inv(X)'", context=g), X) < 1e-8
    assert directional_error(g, parse("inv(X)", context=g), X) > 1e-2


def test_no_point_is_an_error() -> None:
    with pytest.raises(CalculusError, match="found no point"):
        random_point(parse("log(-(x'*x))"), 0)
