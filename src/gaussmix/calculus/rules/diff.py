"""The differential rules, one per operator, in one table.

Magnus and Neudecker's method: the differential of an expression is built from the differentials
of its parts, one local rule per operator (``d(XY) = dX Y + X dY``,
``d inv(X) = -inv(X) dX inv(X)``, Jacobi's ``d det(X) = det(X) tr(inv(X) dX)``, ...). Each rule
below has a stable name, the identity it implements (in a comment, and in ``identity`` for
derivations) and an example expression whose derivation uses it: the test suite differentiates
every example and checks it against finite differences, so adding a rule adds its test.

A rule receives the node ``e`` and a context whose ``d(u)`` gives the differential ``d(u)`` still
to be worked out, or ``None`` when ``u`` does not depend on the variable; rules write only the
terms that depend on it, as a person would (``d(x'*A*x) = dx'*A*x + x'*A*dx``, no ``dA`` term).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gaussmix.calculus.expr import (
    ONE,
    Expr,
    Op,
    Shape,
    add_all,
    apply,
    d,
    differential,
    div,
    ediv,
    epower,
    hadamard,
    mul,
    mul_all,
    neg,
    num,
    power,
    sub,
    sumidx,
    transpose,
    zero,
)

__all__ = ["CONSTANT", "DIFF_RULES", "DiffContext", "DiffRule", "Example", "rule_for"]


@dataclass(frozen=True)
class DiffContext:
    """What a rule needs to know: the variable, and how to write a differential still to do."""

    wrt: Expr

    def d(self, e: Expr) -> Expr | None:
        """``d(e)``, or None when ``e`` does not depend on the variable; ``dX`` for X itself."""
        if e.op is Op.VAR and e.key == self.wrt.key:
            return differential(e)
        return d(e) if e.depends_on(self.wrt) else None


@dataclass(frozen=True)
class Example:
    """An expression whose derivation uses a rule (the rule's test, and its documentation)."""

    expr: str
    wrt: str
    types: dict[str, str] = field(default_factory=dict)
    indices: str = ""


@dataclass(frozen=True)
class DiffRule:
    """One row of the table.

    Attributes
    ----------
    name : str
        Stable name, shown in derivations.
    identity : str
        The identity, in the input syntax.
    op : Op
        The operator it differentiates.
    apply : callable
        (node, context) -> differential, or None when the rule does not apply to this node.
    examples : tuple of Example
        Expressions whose derivation uses the rule.
    """

    name: str
    identity: str
    op: Op
    apply: Callable[[Expr, DiffContext], Expr | None] = field(compare=False, repr=False)
    examples: tuple[Example, ...] = ()


DIFF_RULES: list[DiffRule] = []


def _rule(
    op: Op, name: str, identity: str, *examples: Example
) -> Callable[[Callable[[Expr, DiffContext], Expr | None]], DiffRule]:
    def register(fn: Callable[[Expr, DiffContext], Expr | None]) -> DiffRule:
        rule = DiffRule(name, identity, op, fn, examples)
        DIFF_RULES.append(rule)
        return rule

    return register


def _sum(terms: list[Expr | None], shape: Shape) -> Expr:
    present = [t for t in terms if t is not None]
    return add_all(present, shape) if present else zero(shape)


def _scaled(factor: Expr, du: Expr | None) -> Expr | None:
    """``factor .* du`` (a product when either is a scalar)."""
    return None if du is None else hadamard(factor, du)


X = Example  # short name for the table below


# --- leaves -----------------------------------------------------------------------------------

# d c = 0 for anything that does not depend on the variable (numbers, eye, other variables).
CONSTANT = DiffRule(
    "constant", "d(c) = 0 for c free of the variable", Op.NUM, lambda e, ctx: zero(e.shape)
)


@_rule(Op.VAR, "variable", "d(X) = dX", X("a", "a"))
def _variable(e: Expr, ctx: DiffContext) -> Expr | None:
    # The variable itself: its differential dX (same shape as X).
    return differential(e) if e.key == ctx.wrt.key else zero(e.shape)


# --- sums and products --------------------------------------------------------------------------


@_rule(Op.ADD, "sum", "d(A + B) = dA + dB", X("x'*y + x'*x", "x"))
def _add(e: Expr, ctx: DiffContext) -> Expr | None:
    # d(A + B) = dA + dB
    return _sum([ctx.d(t) for t in e.args], e.shape)


@_rule(Op.NEG, "negation", "d(-A) = -dA", X("-(x'*y)", "x"))
def _neg(e: Expr, ctx: DiffContext) -> Expr | None:
    # d(-A) = -dA
    du = ctx.d(e.args[0])
    return neg(du) if du is not None else zero(e.shape)


@_rule(Op.MATMUL, "product", "d(A*B) = dA*B + A*dB", X("x'*A*x", "x"), X("y'*X*z", "X"))
def _matmul(e: Expr, ctx: DiffContext) -> Expr | None:
    # d(A1 A2 ... Ak) = sum_i A1 ... dAi ... Ak
    terms: list[Expr | None] = []
    for i, f in enumerate(e.args):
        df = ctx.d(f)
        if df is not None:
            terms.append(mul_all([*e.args[:i], df, *e.args[i + 1 :]]))
    return _sum(terms, e.shape)


@_rule(Op.SCALE, "scaling", "d(c*A) = dc*A + c*dA", X("(x'*y)*(x'*x)", "x"), X("a*x'*y", "a"))
def _scale(e: Expr, ctx: DiffContext) -> Expr | None:
    # d(c A) = dc A + c dA
    c, a = e.args
    dc, da = ctx.d(c), ctx.d(a)
    return _sum(
        [mul(dc, a) if dc is not None else None, mul(c, da) if da is not None else None], e.shape
    )


@_rule(Op.DIV, "quotient", "d(A/c) = dA/c - A*dc/c^2", X("(x'*y)/(x'*x)", "x"))
def _div(e: Expr, ctx: DiffContext) -> Expr | None:
    # d(A/c) = dA/c - A dc / c^2
    a, c = e.args
    da, dc = ctx.d(a), ctx.d(c)
    return _sum(
        [
            div(da, c) if da is not None else None,
            neg(div(mul(dc, a), power(c, num(2)))) if dc is not None else None,
        ],
        e.shape,
    )


@_rule(Op.HADAMARD, "Hadamard product", "d(A.*B) = dA.*B + A.*dB", X("sum(x.*(A*x))", "x"))
def _hadamard(e: Expr, ctx: DiffContext) -> Expr | None:
    # d(A .* B) = dA .* B + A .* dB
    a, b = e.args
    da, db = ctx.d(a), ctx.d(b)
    return _sum(
        [hadamard(da, b) if da is not None else None, hadamard(a, db) if db is not None else None],
        e.shape,
    )


@_rule(
    Op.EDIV,
    "elementwise quotient",
    "d(A./B) = dA./B - A.*dB./B.^2",
    X("sum((x.*y)./(x.*x + ones))", "x"),
)
def _ediv(e: Expr, ctx: DiffContext) -> Expr | None:
    # d(A ./ B) = dA ./ B - (A .* dB) ./ B.^2
    a, b = e.args
    da, db = ctx.d(a), ctx.d(b)
    return _sum(
        [
            ediv(da, b) if da is not None else None,
            neg(ediv(hadamard(a, db), epower(b, num(2)))) if db is not None else None,
        ],
        e.shape,
    )


# --- powers -------------------------------------------------------------------------------------


@_rule(
    Op.POW, "power", "d(a^p) = p*a^(p - 1)*da + a^p*log(a)*dp", X("(x'*y)^3", "x"), X("a^b", "b")
)
def _pow(e: Expr, ctx: DiffContext) -> Expr | None:
    # d(a^p) = p a^(p-1) da + a^p log(a) dp
    a, p = e.args
    da, dp = ctx.d(a), ctx.d(p)
    return _sum(
        [
            mul(mul(p, power(a, sub(p, ONE))), da) if da is not None else None,
            mul(mul(e, apply(Op.LOG, a)), dp) if dp is not None else None,
        ],
        e.shape,
    )


@_rule(Op.MPOW, "matrix power", "d(A^k) = sum_i A^i*dA*A^(k - 1 - i)", X("tr(X^3)", "X"))
def _mpow(e: Expr, ctx: DiffContext) -> Expr | None:
    # d(A^k) = sum_{i=0}^{k-1} A^i dA A^(k-1-i)
    a, p = e.args
    da = ctx.d(a)
    if da is None:
        return zero(e.shape)
    assert p.value is not None  # the constructor admits integer numbers only
    k = int(p.value)

    def pw(j: int) -> list[Expr]:
        return [] if j == 0 else [a] if j == 1 else [power(a, num(j))]

    return _sum([mul_all([*pw(i), da, *pw(k - 1 - i)]) for i in range(k)], e.shape)


@_rule(
    Op.EPOW,
    "elementwise power",
    "d(A.^p) = p*A.^(p - 1).*dA + A.^p.*log(A)*dp",
    X("sum(x.^3)", "x"),
    X("sum(x.^a)", "a"),
)
def _epow(e: Expr, ctx: DiffContext) -> Expr | None:
    # d(A.^p) = p A.^(p-1) .* dA + (A.^p .* log(A)) dp
    a, p = e.args
    da, dp = ctx.d(a), ctx.d(p)
    return _sum(
        [
            mul(p, hadamard(epower(a, sub(p, ONE)), da)) if da is not None else None,
            mul(dp, hadamard(e, apply(Op.LOG, a))) if dp is not None else None,
        ],
        e.shape,
    )


# --- linear maps --------------------------------------------------------------------------------


@_rule(Op.TRANSPOSE, "transpose", "d(A') = (dA)'", X("tr(A*X')", "X"))
def _transpose(e: Expr, ctx: DiffContext) -> Expr | None:
    # d(A') = (dA)'
    da = ctx.d(e.args[0])
    return transpose(da) if da is not None else zero(e.shape)


@_rule(Op.TR, "trace", "d(tr(A)) = tr(dA)", X("tr(A*X)", "X"))
def _tr(e: Expr, ctx: DiffContext) -> Expr | None:
    # d tr(A) = tr(dA)
    da = ctx.d(e.args[0])
    return apply(Op.TR, da) if da is not None else zero(e.shape)


@_rule(Op.DIAGM, "diag of a vector", "d(diag(v)) = diag(dv)", X("tr(A*diag(x))", "x"))
def _diagm(e: Expr, ctx: DiffContext) -> Expr | None:
    # d diag(v) = diag(dv)
    dv = ctx.d(e.args[0])
    return apply(Op.DIAGM, dv) if dv is not None else zero(e.shape)


@_rule(Op.DIAGV, "diag of a matrix", "d(diag(A)) = diag(dA)", X("y'*diag(X)", "X"))
def _diagv(e: Expr, ctx: DiffContext) -> Expr | None:
    # d diag(A) = diag(dA)
    da = ctx.d(e.args[0])
    return apply(Op.DIAGV, da) if da is not None else zero(e.shape)


@_rule(Op.SUM, "sum of entries", "d(sum(A)) = sum(dA)", X("sum(X)", "X"), X("sum(A*x)", "x"))
def _sum_entries(e: Expr, ctx: DiffContext) -> Expr | None:
    # d sum(A) = sum(dA)
    da = ctx.d(e.args[0])
    return apply(Op.SUM, da) if da is not None else zero(e.shape)


@_rule(
    Op.SUMIDX,
    "Kronecker delta",
    "d(sum_k(f(theta_k))) = d(f(theta_k)): only the k-th term depends on theta_k",
    X("sum_k(mu_k'*y)", "mu_k", {"mu": "vector"}, "k"),
)
def _kronecker(e: Expr, ctx: DiffContext) -> Expr | None:
    # d/dtheta_k sum_j f(theta_j) = sum_j delta_jk f'(theta_j) = f'(theta_k)
    if e.name not in ctx.wrt.indices:
        return None
    return ctx.d(e.args[0]) or zero(e.shape)


@_rule(
    Op.SUMIDX,
    "sum over an index",
    "d(sum_n(f_n)) = sum_n(d(f_n))",
    X("sum_n(x_n'*y)", "y", {}, "n"),
    X("y'*sum_n(A_n*x)", "x", {}, "n"),
)
def _sumidx(e: Expr, ctx: DiffContext) -> Expr | None:
    # d sum_n f_n = sum_n d f_n
    df = ctx.d(e.args[0])
    return sumidx(e.name, df) if df is not None else zero(e.shape)


# --- matrix functions -------------------------------------------------------------------------


@_rule(Op.DET, "Jacobi", "d(det(X)) = det(X)*tr(inv(X)*dX)", X("det(X)", "X"))
def _det(e: Expr, ctx: DiffContext) -> Expr | None:
    # Jacobi's formula: det(X + H) = det(X) (1 + tr(inv(X) H) + o(H))
    a = e.args[0]
    da = ctx.d(a)
    if da is None:
        return zero(e.shape)
    return mul(e, apply(Op.TR, mul(apply(Op.INV, a), da)))


@_rule(Op.LOGDET, "Jacobi (log-determinant)", "d(logdet(X)) = tr(inv(X)*dX)", X("logdet(X)", "X"))
def _logdet(e: Expr, ctx: DiffContext) -> Expr | None:
    # d log det X = d det(X) / det(X) = tr(inv(X) dX)   (Jacobi)
    a = e.args[0]
    da = ctx.d(a)
    if da is None:
        return zero(e.shape)
    return apply(Op.TR, mul(apply(Op.INV, a), da))


@_rule(Op.INV, "inverse", "d(inv(X)) = -inv(X)*dX*inv(X)", X("tr(A*inv(X))", "X"))
def _inv(e: Expr, ctx: DiffContext) -> Expr | None:
    # 0 = d(X inv(X)) = dX inv(X) + X d(inv(X))  =>  d(inv(X)) = -inv(X) dX inv(X)
    da = ctx.d(e.args[0])
    if da is None:
        return zero(e.shape)
    return neg(mul_all([e, da, e]))


@_rule(Op.NORM1, "1-norm", "d(norm1(A)) = sum(sign(A).*dA)", X("norm1(x)", "x"))
def _norm1(e: Expr, ctx: DiffContext) -> Expr | None:
    # norm1(A) = sum(abs(A)), d abs(a) = sign(a) da   (a != 0)
    a = e.args[0]
    da = ctx.d(a)
    if da is None:
        return zero(e.shape)
    return apply(Op.SUM, hadamard(apply(Op.SIGN, a), da))


@_rule(
    Op.NORM2,
    "2-norm",
    "d(norm2(x)) = x'*dx/norm2(x); d(norm2(X)) = tr(X'*dX)/norm2(X)",
    X("norm2(x)", "x"),
    X("norm2(X)", "X"),
)
def _norm2(e: Expr, ctx: DiffContext) -> Expr | None:
    # norm2(A)^2 = tr(A'A)  =>  2 norm2(A) d norm2(A) = 2 tr(A' dA)
    a = e.args[0]
    da = ctx.d(a)
    if da is None:
        return zero(e.shape)
    inner = mul(transpose(a), da)
    return div(inner if inner.is_scalar else apply(Op.TR, inner), e)


# --- elementwise functions (chain rule: d f(A) = f'(A) .* dA) -----------------------------------


@_rule(Op.LOG, "log", "d(log(A)) = dA./A", X("sum(log(x))", "x"), X("log(det(X))", "X"))
def _log(e: Expr, ctx: DiffContext) -> Expr | None:
    # d log(A) = dA ./ A
    a = e.args[0]
    da = ctx.d(a)
    return ediv(da, a) if da is not None else zero(e.shape)


@_rule(Op.EXP, "exp", "d(exp(A)) = exp(A).*dA", X("sum(exp(x))", "x"), X("log(sum(exp(x)))", "x"))
def _exp(e: Expr, ctx: DiffContext) -> Expr | None:
    # d exp(A) = exp(A) .* dA
    return _scaled(e, ctx.d(e.args[0])) or zero(e.shape)


@_rule(Op.SQRT, "square root", "d(sqrt(A)) = dA./(2*sqrt(A))", X("sum(sqrt(x))", "x"))
def _sqrt(e: Expr, ctx: DiffContext) -> Expr | None:
    # d sqrt(A) = dA ./ (2 sqrt(A))
    da = ctx.d(e.args[0])
    return ediv(da, mul(num(2), e)) if da is not None else zero(e.shape)


@_rule(Op.SIN, "sin", "d(sin(A)) = cos(A).*dA", X("sum(sin(x))", "x"))
def _sin(e: Expr, ctx: DiffContext) -> Expr | None:
    # d sin(A) = cos(A) .* dA
    return _scaled(apply(Op.COS, e.args[0]), ctx.d(e.args[0])) or zero(e.shape)


@_rule(Op.COS, "cos", "d(cos(A)) = -sin(A).*dA", X("sum(cos(X))", "X"))
def _cos(e: Expr, ctx: DiffContext) -> Expr | None:
    # d cos(A) = -sin(A) .* dA
    du = ctx.d(e.args[0])
    return neg(hadamard(apply(Op.SIN, e.args[0]), du)) if du is not None else zero(e.shape)


@_rule(
    Op.TANH,
    "tanh",
    "d(tanh(A)) = (1 - tanh(A).^2).*dA",
    X("sum(tanh(x))", "x"),
    X("tanh(a*b)", "a"),
)
def _tanh(e: Expr, ctx: DiffContext) -> Expr | None:
    # d tanh(A) = (1 - tanh(A).^2) .* dA
    du = ctx.d(e.args[0])
    if du is None:
        return zero(e.shape)
    # sub spreads the scalar 1 over a vector or matrix
    return hadamard(sub(ONE, epower(e, num(2))), du)


@_rule(Op.ABS, "abs", "d(abs(A)) = sign(A).*dA", X("sum(abs(x))", "x"))
def _abs(e: Expr, ctx: DiffContext) -> Expr | None:
    # d |a| = sign(a) da   (a != 0)
    return _scaled(apply(Op.SIGN, e.args[0]), ctx.d(e.args[0])) or zero(e.shape)


@_rule(Op.SIGN, "sign", "d(sign(A)) = 0 where A has no zero entry", X("sum(sign(x).*x)", "x"))
def _sign(e: Expr, ctx: DiffContext) -> Expr | None:
    # sign is piecewise constant: its differential is 0 away from 0
    return zero(e.shape)


def rule_for(e: Expr, ctx: DiffContext) -> tuple[DiffRule, Expr]:
    """The rule that differentiates ``e`` and its result.

    Raises
    ------
    KeyError
        When no rule of the table applies (the caller turns it into a CalculusError).
    """
    if not e.depends_on(ctx.wrt):
        return CONSTANT, CONSTANT.apply(e, ctx)  # type: ignore[return-value]
    for rule in DIFF_RULES:
        if rule.op is e.op:
            out = rule.apply(e, ctx)
            if out is not None:
                return rule, out
    raise KeyError(e.op)
