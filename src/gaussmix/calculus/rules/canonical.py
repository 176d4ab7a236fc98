"""The rules that bring a differential to the canonical form tr(G'*dX), g'*dx or g*dc.

A scalar differential, linear in dX, is kept as a sum of weighted terms ``tr(M*E)`` (nodes of
operator ``TERM``): M a weight free of dX (of the shape of E transposed), E an expression linear
in dX. Each rule below rewrites one term by the operator at the top of E, moving everything that
is not dX into the weight with trace cyclicity, transposition, the Hadamard identity
tr(A'(B.*C)) = tr((A.*B)'C) and their kin, until E is dX itself. Then
``df = sum_i tr(M_i*dX) = tr(G'*dX)`` with ``G = sum_i M_i'``: the gradient is read off (the
identification theorem: df = tr(G' dX) for all dX determines G), by the rules ``IDENTIFY``.

A reader sees each term as ``tr(M*E)`` with M*E tidied (a scalar is its own trace), see
:func:`display`; a rule whose step would not change that line is applied but not shown. Where the
term is a scalar no trace is written, so the rules for sums and sums over an index come in two
forms, each naming the identity the reader sees.
"""

from __future__ import annotations

from collections.abc import Callable

from gaussmix.calculus.expr import (
    SCALAR,
    Expr,
    Op,
    add_all,
    div,
    ediv,
    eye,
    hadamard,
    mul,
    mul_all,
    neg,
    ones,
    sumidx,
    transpose,
)
from gaussmix.calculus.ops import apply, rebuild
from gaussmix.calculus.rewrite import Match, P, Pat, Rule, rewrite
from gaussmix.calculus.rules.simplify import TIDY_RULES

__all__ = ["CANONICAL_RULES", "IDENTIFY", "display", "term", "terms_of", "trace_of"]

M = P(name="M")


def trace_of(e: Expr) -> Expr:
    """tr(e), or e itself for a scalar (a scalar is its own trace)."""
    return e if e.is_scalar else apply(Op.TR, e)


_TIDY: dict[tuple[Expr, tuple[object, ...]], Expr] = {}


def tidy(e: Expr) -> Expr:
    """Neutral elements and signs cleaned up, without recording (remembered: the canonical
    form tidies the same weights many times)."""
    key = (e, tuple(n.shape for n in e.walk()))  # equal nodes may differ in their shapes
    hit = _TIDY.get(key)
    if hit is None:
        if len(_TIDY) > 4096:
            _TIDY.clear()
        hit = _TIDY[key] = rewrite(e, TIDY_RULES, record=False)[0]
    return hit


def term(weight: Expr, body: Expr) -> Expr:
    """The weighted term tr(weight*body), its weight tidied."""
    return Expr(Op.TERM, (tidy(weight), body), SCALAR)


def display(e: Expr) -> Expr:
    """What a reader sees: every weighted term written as the trace tr(M*E) (or M*E)."""
    if e.op is Op.TERM:
        return trace_of(tidy(mul(e.args[0], e.args[1])))
    if not e.args or not any(a.op is Op.TERM or a.args for a in e.args):
        return e
    return rebuild(e, [display(a) for a in e.args])


def terms_of(e: Expr, sums: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Expr, Expr]]:
    """The terms of a canonical sum: (indices summed over, weight, body)."""
    if e.op is Op.TERM:
        return [(sums, e.args[0], e.args[1])]
    if e.op is Op.ADD:
        return [t for a in e.args for t in terms_of(a, sums)]
    if e.op is Op.SUMIDX:
        return terms_of(e.args[0], (*sums, e.name))
    raise ValueError(f"not a sum of weighted terms: {e.op.value}")


def body(op: Op, where: Callable[[Expr], bool] | None = None) -> Pat:
    """A weighted term whose body has operator ``op``."""
    return P(Op.TERM, M, P(op, name="E"), where=where)


def _scalar_term(e: Expr) -> bool:
    return e.args[1].is_scalar and e.args[0].is_scalar


def _sum_as_trace(m: Match) -> Expr:
    a = m["E"].args[0]
    rows, cols = a.shape
    w = m["M"]
    if a.is_scalar:
        weight = w
    elif cols == 1:
        weight = mul(w, transpose(ones(rows)))
    elif rows == 1:
        weight = mul(w, ones(cols))
    else:
        weight = mul(w, mul(ones(cols), transpose(ones(rows))))
    return term(weight, a)


def _trace_trick(m: Match) -> Expr:
    factors = m["E"].args
    i = next(j for j, f in enumerate(factors) if f.has_diff)
    before, after = factors[:i], factors[i + 1 :]
    return term(mul_all([*after, m["M"], *before]), factors[i])


def _scale(m: Match) -> Expr | None:
    c, a = m["E"].args
    return term(mul(c, m["M"]), a) if a.has_diff else None


def _scalar_differential(m: Match) -> Expr | None:
    # the scalar carries the differential: tr(M (dc A)) = tr(M A) dc
    c, a = m["E"].args
    return None if a.has_diff else term(trace_of(mul(m["M"], a)), c)


def _hadamard(m: Match) -> Expr:
    a, b = m["E"].args
    u, c = (a, b) if a.has_diff else (b, a)
    return term(transpose(hadamard(transpose(m["M"]), c)), u)


# fmt: off
CANONICAL_RULES: list[Rule] = [
    # tr(M*(A + B)) = tr(M*A) + tr(M*B)
    Rule("linearity of the trace", "tr(M*(A + B)) = tr(M*A) + tr(M*B)",
         body(Op.ADD, where=lambda e: not _scalar_term(e)),
         lambda m: add_all([term(m["M"], b) for b in m["E"].args], SCALAR), kind="calculus"),
    # m*(a + b) = m*a + m*b for scalars
    Rule("distribute", "m*(a + b) = m*a + m*b", body(Op.ADD, where=_scalar_term),
         lambda m: add_all([term(m["M"], b) for b in m["E"].args], SCALAR)),
    # tr(M*(-A)) = tr((-M)*A)
    Rule("sign into the weight", "tr(M*(-A)) = tr((-M)*A)", body(Op.NEG),
         lambda m: term(neg(m["M"]), m["E"].args[0])),
    # tr(M*(c*A)) = tr((c*M)*A)
    Rule("scalar factor", "tr(M*(c*A)) = tr((c*M)*A)", body(Op.SCALE), _scale),
    # tr(M*(dc*A)) = tr(M*A)*dc
    Rule("scalar differential", "tr(M*(dc*A)) = tr(M*A)*dc", body(Op.SCALE),
         _scalar_differential),
    # tr(M*(A/c)) = tr((M/c)*A)
    Rule("scalar divisor", "tr(M*(A/c)) = tr((M/c)*A)", body(Op.DIV),
         lambda m: term(div(m["M"], m["E"].args[1]), m["E"].args[0])),
    # tr(M*A*dX*B) = tr(B*M*A*dX): the trace is invariant under cyclic permutations
    Rule("trace trick", "tr(M*A*dX*B) = tr(B*M*A*dX); a scalar x'*dX*y = tr(y*x'*dX)",
         body(Op.MATMUL), _trace_trick, kind="calculus"),
    # tr(M*A') = tr(A*M') = tr(M'*A)
    Rule("transpose in a trace", "tr(M*A') = tr(A*M') = tr(M'*A)", body(Op.TRANSPOSE),
         lambda m: term(transpose(m["M"]), m["E"].args[0]), kind="calculus"),
    # m*tr(A) = tr(m*eye*A)
    Rule("trace of a trace", "m*tr(A) = tr(m*eye*A)", body(Op.TR),
         lambda m: term(mul(m["M"], eye(m["E"].args[0].shape[0])), m["E"].args[0])),
    # tr(M*(A.*C)) = tr((M'.*C)'*A)
    Rule("Hadamard in a trace", "tr(M*(A.*C)) = tr((M'.*C)'*A)", body(Op.HADAMARD), _hadamard,
         kind="calculus"),
    # tr(M*(A./C)) = tr((M'./C)'*A)
    Rule("elementwise quotient in a trace", "tr(M*(A./C)) = tr((M'./C)'*A)", body(Op.EDIV),
         lambda m: term(transpose(ediv(transpose(m["M"]), m["E"].args[1])), m["E"].args[0]),
         kind="calculus"),
    # tr(M*diag(u)) = diag(M)'*u
    Rule("diag in a trace", "tr(M*diag(u)) = diag(M)'*u", body(Op.DIAGM),
         lambda m: term(transpose(apply(Op.DIAGV, m["M"])), m["E"].args[0]), kind="calculus"),
    # m'*diag(A) = tr(diag(m)*A)
    Rule("diagonal in a product", "m'*diag(A) = tr(diag(m)*A)", body(Op.DIAGV),
         lambda m: term(apply(Op.DIAGM, transpose(m["M"])), m["E"].args[0]), kind="calculus"),
    # m*sum(A) = tr(m*ones*ones'*A)
    Rule("sum as a trace", "m*sum(A) = tr(m*ones*ones'*A)", body(Op.SUM), _sum_as_trace,
         kind="calculus"),
    # tr(M*sum_n(A_n)) = sum_n(tr(M*A_n))
    Rule("sum out of a trace", "tr(M*sum_n(A_n)) = sum_n(tr(M*A_n))",
         body(Op.SUMIDX, where=lambda e: not _scalar_term(e)),
         lambda m: sumidx(m["E"].name, term(m["M"], m["E"].args[0]))),
    # m*sum_n(a_n) = sum_n(m*a_n) for scalars
    Rule("factor into the sum", "m*sum_n(a_n) = sum_n(m*a_n)",
         body(Op.SUMIDX, where=_scalar_term),
         lambda m: sumidx(m["E"].name, term(m["M"], m["E"].args[0]))),
]
"""Towards tr(G'*dX), one term at a time (the first term not yet of the form tr(M*dX))."""


def _identity_for(e: Expr) -> bool:
    return e.args[1].op is Op.DIFF


IDENTIFY: list[Rule] = [
    # df = tr(G'*dX) for every dX determines G
    Rule("identify", "df = tr(G'*dX) gives the gradient G",
         P(Op.TERM, M, P(Op.DIFF, where=lambda e: not e.is_scalar and e.shape[1] != 1)),
         lambda m: transpose(m["M"]), kind="calculus"),
    # df = g'*dx for every dx determines g
    Rule("identify the gradient", "df = g'*dx gives the gradient g",
         P(Op.TERM, M, P(Op.DIFF, where=lambda e: e.is_vector)),
         lambda m: transpose(m["M"]), kind="calculus"),
    # df = g*dc for every dc determines the derivative g
    Rule("identify the derivative", "df = g*dc gives the derivative g",
         P(Op.TERM, M, P(Op.DIFF, where=lambda e: e.is_scalar)),
         lambda m: transpose(m["M"]), kind="calculus"),
]
# fmt: on
"""The identification theorem, for a matrix, a vector and a scalar variable."""


def _collect(m: Match) -> Expr | None:
    try:
        parts = terms_of(m.node)
    except ValueError:
        return None
    bodies = {b for _, _, b in parts}
    if len(parts) < 2 or len(bodies) != 1 or next(iter(bodies)).op is not Op.DIFF:
        return None
    weights = []
    for sums, w, _ in parts:
        for index in reversed(sums):
            w = sumidx(index, w)
        weights.append(w)
    return term(add_all(weights, weights[0].shape), parts[0][2])


COLLECT = Rule(
    "collect",
    "tr(A*dX) + tr(B*dX) = tr((A + B)*dX)",
    P(Op.ADD),
    _collect,
)
"""The terms of the canonical form, collected into one (shown before the gradient is read off)."""
