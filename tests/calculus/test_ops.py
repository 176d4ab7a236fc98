"""The operator table: every operator has one complete entry, and the entries' facts hold."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix.calculus import Op, parse, to_latex, to_text
from gaussmix.calculus.numeric import evaluate, random_point
from gaussmix.calculus.ops import FUNCTIONS, OPS
from gaussmix.calculus.structure import is_symmetric

# Operators that are not differentiated by a rule of their own: constants (d c = 0), the
# differentials themselves, and equations (lines of a derivation).
NO_RULE = {Op.NUM, Op.EYE, Op.ONES, Op.ZERO, Op.DIM, Op.DIFF, Op.D, Op.EQ, Op.TERM}


def test_every_operator_has_one_entry() -> None:
    assert set(OPS) == set(Op)
    for op, spec in OPS.items():
        assert spec.op is op
        assert spec.text and spec.latex
        if op not in NO_RULE:
            assert spec.diff, op
            assert all(r.examples and r.identity for r in spec.diff), op
        if op not in (Op.D, Op.EQ, Op.SUMIDX):
            assert spec.evaluate is not None, op


def _argument(op: Op) -> str:
    spec = OPS[op]
    if op is Op.DIAGM:
        return "x"
    if spec.elementwise or op in (Op.SUM, Op.NORM1, Op.NORM2):
        return "X"
    return "S"  # square: tr, det, logdet, inv


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_parses_prints_and_evaluates(name: str) -> None:
    op = FUNCTIONS[name]
    text = f"{name}({_argument(op)})"
    e = parse(text, {"S": "spd"})
    assert e.op is op
    assert to_text(e) == text
    assert parse(to_text(e), {"S": "spd"}) == e
    assert to_latex(e)
    point = random_point(e, 0)
    value = np.asarray(evaluate(e, point.values, sizes=point.sizes))
    assert np.all(np.isfinite(value))


@pytest.mark.parametrize(
    ("text", "symmetric"),
    [
        ("x*x'", True),
        ("A*S*A'", True),
        ("A + A'", True),
        ("inv(S)", True),
        ("exp(S)", True),
        ("2*S", True),
        ("S.*S", True),
        ("diag(x)", True),
        ("A*S", False),
        ("S.*A", False),
        ("inv(A)", False),
    ],
)
def test_symmetry_follows_the_table(text: str, symmetric: bool) -> None:
    e = parse(text, {"S": "symmetric"})
    assert is_symmetric(e) is symmetric
