"""The first-order definition with numbers: (f(X + tH) - f(X) - t<G, H>)/t goes to zero."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix.calculus import grad, parse
from gaussmix.calculus.firstorder import STEPS, first_order
from gaussmix.calculus.numeric import evaluate


@pytest.mark.parametrize(
    ("text", "wrt", "types", "indices"),
    [
        ("log(det(X))", "X", {}, ""),
        ("logdet(P) - 1/2*(x-m)'*P*(x-m)", "P", {"P": "symmetric"}, ""),
        ("sum_k(N_k*log(pi_k)) + lambda*(sum_k(pi_k) - 1)", "pi_k", {}, "k"),
        ("log(sum(exp(x)))", "x", {}, ""),
    ],
)
def test_the_remainder_goes_to_zero_linearly(
    text: str, wrt: str, types: dict[str, str], indices: str
) -> None:
    r = grad(text, wrt, types, indices=indices)
    table = r.first_order(seed=3)
    assert [row.t for row in table.rows] == list(STEPS)
    assert table.converges
    remainders = np.abs([row.remainder for row in table.rows])
    # second order: each tenfold smaller t gives a tenfold smaller remainder
    np.testing.assert_allclose(remainders[1:] / remainders[:-1], 0.1, rtol=0.2)


def test_the_rows_are_the_definition() -> None:
    r = grad("x'*A*x", "x")
    table = r.first_order(seed=1)
    values, h = table.point, np.asarray(table.direction)
    assert np.linalg.norm(h) == pytest.approx(1.0)
    g = r(**values)
    for row in table.rows:
        moved = {**values, "x": values["x"] + row.t * h}
        change = evaluate(r.expr, moved) - evaluate(r.expr, values)
        assert row.change == pytest.approx(change, rel=1e-12)
        assert row.linear == pytest.approx(row.t * float(g @ h), rel=1e-12)


def test_a_wrong_gradient_does_not_go_to_zero() -> None:
    r = grad("logdet(P) - 1/2*(x-m)'*P*(x-m)", "P", {"P": "symmetric"})
    wrong = parse("inv(P) - (x-m)*(x-m)'", context=r.expr)
    table = first_order(r.expr, wrong, r.wrt, seed=0)
    assert not table.converges
    # the remainder settles on <G_true - G_claim, H>, a fixed nonzero number
    last = [row.remainder for row in table.rows[-3:]]
    np.testing.assert_allclose(last, last[-1], rtol=1e-3)
    assert abs(last[-1]) > 1e-3


def test_an_affine_function_has_no_remainder() -> None:
    table = grad("tr(A*X) + a", "X").first_order()
    assert table.converges
    assert max(abs(row.remainder) for row in table.rows) < 1e-9
