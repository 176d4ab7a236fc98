"""Laws of simplification and printing, on random expressions: every rewrite step keeps the value,
simplification reaches a fixed point, and parse(str(e)) == e."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gaussmix.calculus import CalculusError, parse, rewrite, to_latex, to_text
from gaussmix.calculus.expr import Expr, Op
from gaussmix.calculus.numeric import evaluate, random_point
from gaussmix.calculus.rules.simplify import RULES
from tests.calculus.strategies import TYPES, expressions, matrices, scalars


def _value(e: Expr, point) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(evaluate(e, point.values, sizes=point.sizes), dtype=float)


def _point(e: Expr):  # type: ignore[no-untyped-def]
    try:
        return random_point(e, 0)
    except CalculusError:
        return None  # undefined everywhere we looked (e.g. a determinant of a singular matrix)


@settings(max_examples=150, deadline=None)
@given(expressions(3))
def test_simplification_never_changes_the_value(e: Expr) -> None:
    point = _point(e)
    if point is None:
        return
    before = _value(e, point)
    simplified, steps = rewrite(e, RULES)
    after = _value(simplified, point)
    scale = max(1.0, float(np.max(np.abs(before))))
    np.testing.assert_allclose(after, before, rtol=1e-8, atol=1e-8 * scale)
    for step in steps:  # each named rule, one application at a time
        np.testing.assert_allclose(
            _value(step.after, point), _value(step.before, point), rtol=1e-8, atol=1e-8 * scale
        )
    assert rewrite(simplified, RULES)[1] == []  # a fixed point


@settings(max_examples=200, deadline=None)
@given(expressions(3))
def test_printing_round_trips(e: Expr) -> None:
    text = to_text(e)
    assert parse(text, TYPES) == e
    assert to_latex(e)  # every operator has a LaTeX entry


@settings(max_examples=100, deadline=None)
@given(st.one_of(scalars(2), matrices(2)))
def test_simplified_expressions_round_trip(e: Expr) -> None:
    simplified, _ = rewrite(e, RULES)
    if not any(node.op is Op.ZERO for node in simplified.walk()):
        assert parse(to_text(simplified), TYPES) == simplified
        return
    # a zero vector or matrix prints as 0*ones, 0*eye or 0*ones*ones': it reads back as an
    # expression with the same value, sized by the context
    back = parse(to_text(simplified), TYPES, context=simplified, shape=simplified.shape)
    point = _point(simplified)
    if point is not None:
        np.testing.assert_allclose(_value(back, point), _value(simplified, point))


def test_textbook_rewrites() -> None:
    cases = {
        "x + x": "2*x",
        "A*x + A'*x": "(A + A')*x",
        "3*A - A": "2*A",
        "A - A": "0*ones*ones'",  # a zero matrix, written so that it reads back as one
        "((A*B)')'": "A*B",
        "(A*B)'": "B'*A'",
        "inv(inv(A))": "A",
        "A*inv(A)*B": "B",
        "tr(x*y')": "y'*x",
        "-(-x)": "x",
        "a*(2*x)": "2*a*x",
        "c*A/c": "A",
        "1/2*A - 1/2*B": "1/2*(A - B)",
        "A*A*A": "A^3",
    }
    for text, expected in cases.items():
        simplified, steps = rewrite(parse(text), RULES)
        assert to_text(simplified) == expected, text
        assert steps, text


def test_symmetric_transposes_disappear() -> None:
    e = parse("(inv(S)*x*x'*inv(S))' + S'", {"S": "symmetric"})
    assert to_text(rewrite(e, RULES)[0]) == "inv(S)*x*x'*inv(S) + S"
    # without the declaration nothing is known
    e = parse("(inv(S)*x*x'*inv(S))' + S'")
    assert to_text(rewrite(e, RULES)[0]) == "inv(S)'*x*x'*inv(S)' + S'"


def test_rules_have_unique_names_and_identities() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    assert all(r.identity and r.ops for r in RULES)
