"""Hypothesis strategies: random well-shaped expressions over a small vocabulary.

Scalars a, b; vectors x, y; matrices A, B and the symmetric S, all n×n; numbers; eye and ones.
Expressions are built with the engine's smart constructors, so they are exactly what the parser
would build from their text.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import strategies as st

from gaussmix.calculus import expr as E
from gaussmix.calculus.expr import Expr, Kind, Op
from gaussmix.calculus.ops import apply

N = "n"
TYPES = {"S": "symmetric"}

a = E.var("a", Kind.SCALAR, (1, 1))
b = E.var("b", Kind.SCALAR, (1, 1))
x = E.var("x", Kind.VECTOR, (N, 1))
y = E.var("y", Kind.VECTOR, (N, 1))
A = E.var("A", Kind.MATRIX, (N, N))
B = E.var("B", Kind.MATRIX, (N, N))
S = E.var("S", Kind.SYMMETRIC, (N, N))

numbers = st.sampled_from([E.num(2), E.num(3), E.num(Fraction(1, 2)), E.num(1), E.num(-1)])
scalar_leaves = st.one_of(st.sampled_from([a, b]), numbers)
vector_leaves = st.sampled_from([x, y, E.ones(N)])
matrix_leaves = st.sampled_from([A, B, S, E.eye(N)])


def _unary(op: Op):  # type: ignore[no-untyped-def]
    return lambda u: apply(op, u)


def scalars(depth: int) -> st.SearchStrategy[Expr]:
    if depth <= 0:
        return scalar_leaves
    s, v, m = scalars(depth - 1), vectors(depth - 1), matrices(depth - 1)
    return st.one_of(
        scalar_leaves,
        st.builds(E.add, s, s),
        st.builds(E.sub, s, s),
        st.builds(E.mul, s, s),
        st.builds(E.neg, s),
        st.builds(lambda u, w: E.mul(E.transpose(u), w), v, v),
        st.builds(_unary(Op.TR), m),
        st.builds(_unary(Op.SUM), v),
        st.builds(E.div, s, st.sampled_from([a, b, E.num(2)])),
        st.builds(_unary(Op.NORM2), v),
        st.builds(lambda u: E.power(u, E.num(2)), s),
        st.builds(lambda u: apply(Op.TANH, u), s),
        st.builds(E.transpose, s),
    )


def vectors(depth: int) -> st.SearchStrategy[Expr]:
    if depth <= 0:
        return vector_leaves
    s, v, m = scalars(depth - 1), vectors(depth - 1), matrices(depth - 1)
    return st.one_of(
        vector_leaves,
        st.builds(E.add, v, v),
        st.builds(E.sub, v, v),
        st.builds(E.add, v, s),
        st.builds(E.mul, s, v),
        st.builds(E.mul, m, v),
        st.builds(E.neg, v),
        st.builds(E.hadamard, v, v),
        st.builds(lambda u: E.ediv(u, apply(Op.EXP, x)), v),
        st.builds(_unary(Op.DIAGV), m),
        st.builds(lambda u: E.transpose(E.transpose(u)), v),
        st.builds(lambda u: E.epower(u, E.num(2)), v),
        st.builds(lambda u, c: E.div(u, c), v, st.sampled_from([a, b])),
    )


def matrices(depth: int) -> st.SearchStrategy[Expr]:
    if depth <= 0:
        return matrix_leaves
    s, v, m = scalars(depth - 1), vectors(depth - 1), matrices(depth - 1)
    return st.one_of(
        matrix_leaves,
        st.builds(E.add, m, m),
        st.builds(E.sub, m, m),
        st.builds(E.mul, m, m),
        st.builds(E.mul, s, m),
        st.builds(E.transpose, m),
        st.builds(E.neg, m),
        st.builds(E.hadamard, m, m),
        st.builds(lambda u, w: E.mul(u, E.transpose(w)), v, v),
        st.builds(_unary(Op.INV), st.sampled_from([A, S, E.add(S, E.eye(N))])),
        st.builds(_unary(Op.DIAGM), v),
        st.builds(lambda u: E.power(u, E.num(2)), m),
        st.builds(E.add, m, s),
    )


def expressions(depth: int = 3) -> st.SearchStrategy[Expr]:
    """Random expressions of any shape."""
    return st.one_of(scalars(depth), vectors(depth), matrices(depth))
