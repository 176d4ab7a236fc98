"""Structural facts about expressions: symmetry, and transposition pushed to the leaves.

These are judgements made from the form of an expression alone (``x*x'`` is symmetric,
``inv(S)`` is when ``S`` is declared symmetric); they never look at numbers, so a ``False``
means "not known to be", which is always safe for the rules that use them.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from gaussmix.calculus.expr import Expr, Op, transpose
from gaussmix.calculus.ops import OPS

__all__ = ["is_symmetric", "transposed"]


def is_symmetric(e: Expr) -> bool:
    """Whether ``e`` is a symmetric matrix by its structure (scalars count as symmetric)."""
    return _is_symmetric(e, e.shape)


@lru_cache(maxsize=65536)
def _is_symmetric(e: Expr, shape: tuple[object, object]) -> bool:
    # The shape is part of the cache key: equal structures may have different dimensions.
    rows, cols = shape
    if rows != cols:
        return False
    if rows == 1:
        return True
    rule = OPS[e.op].symmetry  # what the operator table says about the operator
    if rule == "always":
        return True
    if rule == "declared":
        return e.kind is not None and e.kind.is_symmetric
    if rule == "operand":
        return is_symmetric(e.args[0])
    if rule == "scaled":
        return is_symmetric(e.args[1])
    if rule == "operands":
        return all(is_symmetric(a) for a in e.args)
    if rule == "terms":
        # A sum is symmetric when transposing permutes its terms: A + A', S + T.
        terms = Counter(e.args)
        return terms == Counter(transposed(t) for t in e.args)
    if rule == "palindrome":
        # A product F1 ... Fk is symmetric when Fi' = F(k+1-i) and the middle factor is
        # symmetric: x*x', A*S*A', inv(S)*v*v'*inv(S).
        factors = e.args
        k = len(factors)
        for i in range(k // 2):
            if factors[i] != transposed(factors[k - 1 - i]):
                return False
            if factors[i].shape != (factors[k - 1 - i].shape[1], factors[k - 1 - i].shape[0]):
                return False
        return k % 2 == 0 or is_symmetric(factors[k // 2])
    return False


def transposed(e: Expr) -> Expr:
    """``e'`` written without a transpose where the structure allows: (A')' = A, S' = S."""
    if e.op is Op.TRANSPOSE:
        return e.args[0]
    if e.is_scalar or is_symmetric(e):
        return e
    return transpose(e)
