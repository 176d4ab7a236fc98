"""The rules that bring a differential to the canonical form tr(G'*dX), g'*dx or g*dc.

A scalar differential, linear in dX, is kept as a sum of terms ``tr(M*E)``: M a weight free of dX
(of the shape of E transposed), E an expression linear in dX. Each rule below rewrites one term
by the operator at the top of E, moving everything that is not dX into the weight with trace
cyclicity, transposition, the Hadamard identity tr(A'(B.*C)) = tr((A.*B)'C) and their kin, until
E is dX itself. Then ``df = sum_i tr(M_i*dX) = tr(G'*dX)`` with ``G = sum_i M_i'``: the gradient is
read off (the identification theorem: df = tr(G' dX) for all dX determines G).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gaussmix.calculus.expr import (
    Expr,
    Op,
    div,
    ediv,
    eye,
    hadamard,
    mul,
    mul_all,
    neg,
    ones,
    transpose,
)
from gaussmix.calculus.ops import apply

__all__ = ["CANONICAL_RULES", "CanonicalRule", "Term", "trace_of"]


@dataclass(frozen=True)
class Term:
    """``sum over sums of tr(weight * body)``, body linear in the differential."""

    sums: tuple[str, ...]
    weight: Expr
    body: Expr


@dataclass(frozen=True)
class CanonicalRule:
    """A named step towards tr(G'*dX): a term whose body has operator ``op`` -> new terms."""

    name: str
    identity: str
    op: Op
    apply: Callable[[Term], list[Term]] = field(compare=False, repr=False)


CANONICAL_RULES: dict[Op, CanonicalRule] = {}


def _rule(op: Op, name: str, identity: str) -> Callable[[Callable[[Term], list[Term]]], None]:
    def register(fn: Callable[[Term], list[Term]]) -> None:
        CANONICAL_RULES[op] = CanonicalRule(name, identity, op, fn)

    return register


def trace_of(e: Expr) -> Expr:
    """tr(e), or e itself for a scalar (a scalar is its own trace)."""
    return e if e.is_scalar else apply(Op.TR, e)


@_rule(Op.ADD, "linearity", "tr(M*(A + B)) = tr(M*A) + tr(M*B)")
def _add(t: Term) -> list[Term]:
    return [Term(t.sums, t.weight, b) for b in t.body.args]


@_rule(Op.NEG, "sign", "tr(M*(-A)) = tr((-M)*A)")
def _neg(t: Term) -> list[Term]:
    return [Term(t.sums, neg(t.weight), t.body.args[0])]


@_rule(Op.SCALE, "scalar factor", "tr(M*(c*A)) = tr((c*M)*A); tr(M*(dc*A)) = tr(M*A)*dc")
def _scale(t: Term) -> list[Term]:
    c, a = t.body.args
    if a.has_diff:
        return [Term(t.sums, mul(c, t.weight), a)]
    # the scalar carries the differential: tr(M (dc A)) = tr(M A) dc
    return [Term(t.sums, trace_of(mul(t.weight, a)), c)]


@_rule(Op.DIV, "scalar divisor", "tr(M*(A/c)) = tr((M/c)*A)")
def _div(t: Term) -> list[Term]:
    a, c = t.body.args
    return [Term(t.sums, div(t.weight, c), a)]


@_rule(Op.MATMUL, "trace trick", "tr(M*A*dX*B) = tr(B*M*A*dX); a scalar x'*dX*y = tr(y*x'*dX)")
def _matmul(t: Term) -> list[Term]:
    factors = t.body.args
    i = next(j for j, f in enumerate(factors) if f.has_diff)
    before, after = factors[:i], factors[i + 1 :]
    return [Term(t.sums, mul_all([*after, t.weight, *before]), factors[i])]


@_rule(Op.TRANSPOSE, "transpose in a trace", "tr(M*A') = tr(A*M') = tr(M'*A)")
def _transpose(t: Term) -> list[Term]:
    return [Term(t.sums, transpose(t.weight), t.body.args[0])]


@_rule(Op.TR, "trace of a trace", "m*tr(A) = tr(m*eye*A)")
def _trace(t: Term) -> list[Term]:
    a = t.body.args[0]
    return [Term(t.sums, mul(t.weight, eye(a.shape[0])), a)]


@_rule(Op.HADAMARD, "Hadamard in a trace", "tr(M*(A.*C)) = tr((M'.*C)'*A)")
def _hadamard(t: Term) -> list[Term]:
    a, b = t.body.args
    u, c = (a, b) if a.has_diff else (b, a)
    return [Term(t.sums, transpose(hadamard(transpose(t.weight), c)), u)]


@_rule(Op.EDIV, "elementwise quotient in a trace", "tr(M*(A./C)) = tr((M'./C)'*A)")
def _ediv(t: Term) -> list[Term]:
    a, c = t.body.args
    return [Term(t.sums, transpose(ediv(transpose(t.weight), c)), a)]


@_rule(Op.DIAGM, "diag in a trace", "tr(M*diag(u)) = diag(M)'*u")
def _diagm(t: Term) -> list[Term]:
    return [Term(t.sums, transpose(apply(Op.DIAGV, t.weight)), t.body.args[0])]


@_rule(Op.DIAGV, "diagonal in a product", "m'*diag(A) = tr(diag(m)*A)")
def _diagv(t: Term) -> list[Term]:
    return [Term(t.sums, apply(Op.DIAGM, transpose(t.weight)), t.body.args[0])]


@_rule(Op.SUM, "sum as a trace", "m*sum(A) = tr(m*ones*ones'*A)")
def _sum(t: Term) -> list[Term]:
    a = t.body.args[0]
    rows, cols = a.shape
    m = t.weight
    if a.is_scalar:
        weight = m
    elif cols == 1:
        weight = mul(m, transpose(ones(rows)))
    elif rows == 1:
        weight = mul(m, ones(cols))
    else:
        weight = mul(m, mul(ones(cols), transpose(ones(rows))))
    return [Term(t.sums, weight, a)]


@_rule(Op.SUMIDX, "sum out of a trace", "tr(M*sum_n(A_n)) = sum_n(tr(M*A_n))")
def _sumidx(t: Term) -> list[Term]:
    return [Term((*t.sums, t.body.name), t.weight, t.body.args[0])]
