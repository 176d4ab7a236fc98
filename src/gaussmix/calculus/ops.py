"""The operator table: every fact about an operator, in one entry.

One :class:`OpSpec` per member of :class:`~gaussmix.calculus.expr.Op` says

* ``syntax`` and ``build``: its name in the input syntax (for functions) and its shape rule, the
  smart constructor that checks the operands' shapes and infers the node's;
* ``text``, ``latex``, ``precedence``: how it prints (forms of :mod:`~gaussmix.calculus.forms`);
* ``evaluate``: its numpy value on 2-D arrays;
* ``diff``: its differential rule(s), each with the identity it implements (Magnus and
  Neudecker: ``d(XY) = dX Y + X dY``, Jacobi's ``d det(X) = det(X) tr(inv(X) dX)``, ...) and
  an example expression whose derivation uses it (the rule's test);
* ``symmetry``: whether it keeps symmetry (``always``, ``operand``, ``operands``, ...);
* ``positive`` and ``conditioned``: which operands random test points keep positive, and whether
  the operand must be a well-conditioned matrix (inverse, determinant).

Parsing, printing, evaluation, shape inference, symmetry judgements and differentiation all read
this table, so adding an operator is one entry here plus its tests, which the table-driven tests
pick up (docs/calculus.md shows one worked through). In the manner of micrograd and autograd, a
derivative lives next to its operator.

A differential rule receives the node ``e`` and a :class:`DiffContext` whose ``d(u)`` gives the
differential ``d(u)`` still to be worked out, or ``None`` when ``u`` does not depend on the
variable; rules write only the terms that depend on it, as a person would
(``d(x'*A*x) = dx'*A*x + x'*A*dx``, no ``dA`` term).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from gaussmix.calculus import forms as F
from gaussmix.calculus.errors import CalculusError
from gaussmix.calculus.expr import (
    ONE,
    SCALAR,
    Dims,
    Expr,
    Op,
    Shape,
    add,
    add_all,
    d,
    differential,
    div,
    ediv,
    epower,
    equation,
    hadamard,
    mul,
    mul_all,
    neg,
    num,
    power,
    require_square,
    shape_word,
    sub,
    sumidx,
    transpose,
    zero,
)

__all__ = [
    "ELEMENTWISE",
    "FUNCTIONS",
    "OPS",
    "DiffContext",
    "Differential",
    "Example",
    "OpSpec",
    "apply",
    "rebuild",
]

Array = NDArray[np.float64]


class EvalEnv(Protocol):
    """What an evaluation may ask of the evaluator (:mod:`~gaussmix.calculus.numeric`)."""

    def size(self, d: object) -> int:
        """The size of a dimension."""
        ...

    def dim_size(self, name: str) -> int:
        """The value of a named dimension (D, or N: the number of terms of index n)."""
        ...

    def variable(self, e: Expr) -> Array:
        """The value of a variable (at the current values of its indices)."""
        ...

    def differential(self, e: Expr) -> Array:
        """The value given to a differential dX."""
        ...


Evaluate = Callable[[EvalEnv, Expr, list[Array]], Array]


@dataclass(frozen=True)
class DiffContext:
    """What a differential rule needs to know: the variable, and how to write a differential
    still to do."""

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
class Differential:
    """A differential rule of an operator: (node, context) -> d(node), or None when the rule
    does not apply to this node (the next rule of the operator is tried)."""

    name: str
    identity: str
    apply: Callable[[Expr, DiffContext], Expr | None] = field(compare=False, repr=False)
    examples: tuple[Example, ...] = ()


@dataclass(frozen=True)
class OpSpec:
    """One row of the table (see the module docstring for the fields)."""

    op: Op
    arity: int  # -1: n-ary
    text: F.Form
    latex: F.Form
    precedence: int = F.ATOM
    latex_precedence: int | None = None
    syntax: str = ""  # the function's name in the input syntax
    build: Callable[..., Expr] | None = None
    evaluate: Evaluate | None = None
    diff: tuple[Differential, ...] = ()
    symmetry: str = "never"  # always | never | operand | operands | scaled | terms | palindrome
    elementwise: bool = False
    positive: tuple[int, ...] = ()  # operands that random test points keep positive
    conditioned: bool = False  # the operand must be a well-conditioned square matrix

    def rebuild(self, e: Expr, args: list[Expr]) -> Expr:
        """``e`` with new operands, through the shape rule."""
        op = self.op
        if op is Op.ADD:
            return add_all(args, e.shape)
        if op is Op.MATMUL:
            return mul_all(args)
        if op is Op.SUMIDX:
            return sumidx(e.name, args[0])
        if self.build is None or not args:
            return e  # leaves, and dX (whose operand is the variable itself)
        return self.build(*args)


# ---------------------------------------------------------------------------------------------
# Shape rules of the functions
# ---------------------------------------------------------------------------------------------


def _same_shape(op: Op) -> Callable[..., Expr]:
    def build(a: Expr, dims: Dims | None = None) -> Expr:
        return Expr(op, (a,), a.shape)

    return build


def _to_scalar(op: Op) -> Callable[..., Expr]:
    def build(a: Expr, dims: Dims | None = None) -> Expr:
        return Expr(op, (a,), SCALAR)

    return build


def _square(op: Op, to_scalar: bool) -> Callable[..., Expr]:
    def build(a: Expr, dims: Dims | None = None) -> Expr:
        require_square(a, dims or Dims(), op.value)
        return Expr(op, (a,), SCALAR if to_scalar else a.shape)

    return build


def _diag(a: Expr, dims: Dims | None = None) -> Expr:
    # diag of a vector is a diagonal matrix; diag of a square matrix the vector of its diagonal
    dims = dims or Dims()
    if a.is_vector:
        return Expr(Op.DIAGM, (a,), (a.shape[0], a.shape[0]))
    if a.shape[0] == 1:
        raise CalculusError(
            f"diag needs a column vector or a square matrix, but {shape_word(a, dims)}"
        )
    require_square(a, dims, "diag")
    return Expr(Op.DIAGV, (a,), (a.shape[0], 1))


# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------


def _scalar(v: Any) -> Array:
    return np.array([[float(v)]])


def _elementwise(fn: Callable[[Array], Array]) -> Evaluate:
    return lambda env, e, a: fn(a[0])


def _logdet(a: Array) -> Array:
    sign, logabs = np.linalg.slogdet(a)
    return _scalar(logabs if sign > 0 else np.nan)


def _inv(a: Array) -> Array:
    try:
        return np.asarray(np.linalg.inv(a), dtype=float)
    except np.linalg.LinAlgError:
        raise CalculusError("a matrix to invert is singular at these values") from None


def _chain(arrays: list[Array]) -> Array:
    out = arrays[0]
    for a in arrays[1:]:
        out = out @ a
    return out


# ---------------------------------------------------------------------------------------------
# Differentials
# ---------------------------------------------------------------------------------------------


def _sum(terms: list[Expr | None], shape: Shape) -> Expr:
    present = [t for t in terms if t is not None]
    return add_all(present, shape) if present else zero(shape)


def _chain_rule(derivative: Callable[[Expr], Expr]) -> Callable[[Expr, DiffContext], Expr | None]:
    """d f(A) = f'(A) .* dA for an elementwise f, ``derivative(e)`` giving f'(A) from f(A)."""

    def rule(e: Expr, ctx: DiffContext) -> Expr | None:
        du = ctx.d(e.args[0])
        return hadamard(derivative(e), du) if du is not None else zero(e.shape)

    return rule


def _linear(op: Op) -> Callable[[Expr, DiffContext], Expr | None]:
    """d f(A) = f(dA) for a linear f (trace, diag, sum of entries, transpose)."""

    def rule(e: Expr, ctx: DiffContext) -> Expr | None:
        da = ctx.d(e.args[0])
        return rebuild(e, [da]) if da is not None else zero(e.shape)

    return rule


def _d_variable(e: Expr, ctx: DiffContext) -> Expr | None:
    return differential(e) if e.key == ctx.wrt.key else zero(e.shape)


def _d_add(e: Expr, ctx: DiffContext) -> Expr | None:
    return _sum([ctx.d(t) for t in e.args], e.shape)


def _d_neg(e: Expr, ctx: DiffContext) -> Expr | None:
    du = ctx.d(e.args[0])
    return neg(du) if du is not None else zero(e.shape)


def _d_matmul(e: Expr, ctx: DiffContext) -> Expr | None:
    terms: list[Expr | None] = []
    for i, f in enumerate(e.args):
        df = ctx.d(f)
        if df is not None:
            terms.append(mul_all([*e.args[:i], df, *e.args[i + 1 :]]))
    return _sum(terms, e.shape)


def _d_scale(e: Expr, ctx: DiffContext) -> Expr | None:
    c, a = e.args
    dc, da = ctx.d(c), ctx.d(a)
    return _sum(
        [mul(dc, a) if dc is not None else None, mul(c, da) if da is not None else None],
        e.shape,
    )


def _d_div(e: Expr, ctx: DiffContext) -> Expr | None:
    a, c = e.args
    da, dc = ctx.d(a), ctx.d(c)
    return _sum(
        [
            div(da, c) if da is not None else None,
            neg(div(mul(dc, a), power(c, num(2)))) if dc is not None else None,
        ],
        e.shape,
    )


def _d_hadamard(e: Expr, ctx: DiffContext) -> Expr | None:
    a, b = e.args
    da, db = ctx.d(a), ctx.d(b)
    return _sum(
        [hadamard(da, b) if da is not None else None, hadamard(a, db) if db is not None else None],
        e.shape,
    )


def _d_ediv(e: Expr, ctx: DiffContext) -> Expr | None:
    a, b = e.args
    da, db = ctx.d(a), ctx.d(b)
    return _sum(
        [
            ediv(da, b) if da is not None else None,
            neg(ediv(hadamard(a, db), epower(b, num(2)))) if db is not None else None,
        ],
        e.shape,
    )


def _d_pow(e: Expr, ctx: DiffContext) -> Expr | None:
    a, p = e.args
    da, dp = ctx.d(a), ctx.d(p)
    return _sum(
        [
            mul(mul(p, power(a, sub(p, ONE))), da) if da is not None else None,
            mul(mul(e, apply(Op.LOG, a)), dp) if dp is not None else None,
        ],
        e.shape,
    )


def _d_mpow(e: Expr, ctx: DiffContext) -> Expr | None:
    a, p = e.args
    da = ctx.d(a)
    if da is None or p.value is None:
        return zero(e.shape)
    k = int(p.value)  # the constructor admits non-negative integer exponents only

    def pw(j: int) -> list[Expr]:
        return [] if j == 0 else [a] if j == 1 else [power(a, num(j))]

    return _sum([mul_all([*pw(i), da, *pw(k - 1 - i)]) for i in range(k)], e.shape)


def _d_epow(e: Expr, ctx: DiffContext) -> Expr | None:
    a, p = e.args
    da, dp = ctx.d(a), ctx.d(p)
    return _sum(
        [
            mul(p, hadamard(epower(a, sub(p, ONE)), da)) if da is not None else None,
            mul(dp, hadamard(e, apply(Op.LOG, a))) if dp is not None else None,
        ],
        e.shape,
    )


def _d_kronecker(e: Expr, ctx: DiffContext) -> Expr | None:
    if e.name not in ctx.wrt.indices:
        return None
    return ctx.d(e.args[0]) or zero(e.shape)


def _d_sumidx(e: Expr, ctx: DiffContext) -> Expr | None:
    df = ctx.d(e.args[0])
    return sumidx(e.name, df) if df is not None else zero(e.shape)


def _d_det(e: Expr, ctx: DiffContext) -> Expr | None:
    a = e.args[0]
    da = ctx.d(a)
    return mul(e, apply(Op.TR, mul(apply(Op.INV, a), da))) if da is not None else zero(e.shape)


def _d_logdet(e: Expr, ctx: DiffContext) -> Expr | None:
    a = e.args[0]
    da = ctx.d(a)
    return apply(Op.TR, mul(apply(Op.INV, a), da)) if da is not None else zero(e.shape)


def _d_inv(e: Expr, ctx: DiffContext) -> Expr | None:
    da = ctx.d(e.args[0])
    return neg(mul_all([e, da, e])) if da is not None else zero(e.shape)


def _d_norm1(e: Expr, ctx: DiffContext) -> Expr | None:
    a = e.args[0]
    da = ctx.d(a)
    return apply(Op.SUM, hadamard(apply(Op.SIGN, a), da)) if da is not None else zero(e.shape)


def _d_norm2(e: Expr, ctx: DiffContext) -> Expr | None:
    a = e.args[0]
    da = ctx.d(a)
    if da is None:
        return zero(e.shape)
    inner = mul(transpose(a), da)
    return div(inner if inner.is_scalar else apply(Op.TR, inner), e)


def _d_log(e: Expr, ctx: DiffContext) -> Expr | None:
    da = ctx.d(e.args[0])
    return ediv(da, e.args[0]) if da is not None else zero(e.shape)


def _d_sqrt(e: Expr, ctx: DiffContext) -> Expr | None:
    da = ctx.d(e.args[0])
    return ediv(da, mul(num(2), e)) if da is not None else zero(e.shape)


def _d_cos(e: Expr, ctx: DiffContext) -> Expr | None:
    du = ctx.d(e.args[0])
    return neg(hadamard(apply(Op.SIN, e.args[0]), du)) if du is not None else zero(e.shape)


X = Example  # short names for the table below
R = Differential


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

# fmt: off
_ENTRIES: list[OpSpec] = [
    # --- leaves -----------------------------------------------------------------------------
    OpSpec(Op.NUM, 0, F.number_form, F.number_form,
           evaluate=lambda env, e, a: _scalar(e.value), symmetry="always"),
    OpSpec(Op.VAR, 0, F.variable_form, F.variable_form,
           evaluate=lambda env, e, a: env.variable(e), symmetry="declared",
           # d(X) = dX
           diff=(R("variable", "d(X) = dX", _d_variable, (X("a", "a"),)),)),
    OpSpec(Op.EYE, 0, F.literal("eye", "I"), F.literal("eye", "I"),
           evaluate=lambda env, e, a: np.eye(env.size(e.shape[0])), symmetry="always"),
    OpSpec(Op.ONES, 0, F.literal("ones", "\\mathbf{1}"), F.literal("ones", "\\mathbf{1}"),
           evaluate=lambda env, e, a: np.ones((env.size(e.shape[0]), 1))),
    OpSpec(Op.ZERO, 0, F.zero_form, F.zero_form, precedence=F.PRODUCT, symmetry="always",
           evaluate=lambda env, e, a: np.zeros((env.size(e.shape[0]), env.size(e.shape[1])))),
    OpSpec(Op.DIM, 0, lambda e, p: e.name, lambda e, p: e.name,
           evaluate=lambda env, e, a: _scalar(env.dim_size(e.name)), symmetry="always"),
    OpSpec(Op.DIFF, 1, F.differential_form, F.differential_form,
           evaluate=lambda env, e, a: env.differential(e)),
    OpSpec(Op.D, 1, F.d_form, F.d_form, build=d),
    OpSpec(Op.EQ, 2, F.equation_form, F.equation_form, precedence=F.EQUATION, build=equation),
    # tr(M*E): a term of the canonical form, weight M and body E linear in the differential
    OpSpec(Op.TERM, 2, F.term_form, F.term_form, build=lambda m, b: Expr(Op.TERM, (m, b), SCALAR),
           evaluate=lambda env, e, a: _scalar(np.trace(a[0] @ a[1]))),
    # --- sums and products ------------------------------------------------------------------
    OpSpec(Op.ADD, -1, F.add_form, F.add_form, precedence=F.SUM, build=add,
           evaluate=lambda env, e, a: sum(a[1:], a[0]), symmetry="terms",
           # d(A + B) = dA + dB
           diff=(R("sum", "d(A + B) = dA + dB", _d_add, (X("x'*y + x'*x", "x"),)),)),
    OpSpec(Op.NEG, 1, F.neg_form, F.neg_form, precedence=F.NEG, build=neg,
           evaluate=lambda env, e, a: -a[0], symmetry="operand",
           # d(-A) = -dA
           diff=(R("negation", "d(-A) = -dA", _d_neg, (X("-(x'*y)", "x"),)),)),
    OpSpec(Op.MATMUL, -1, F.matmul_form, F.matmul_form, precedence=F.PRODUCT, build=mul,
           evaluate=lambda env, e, a: _chain(a), symmetry="palindrome",
           # d(A1 A2 ... Ak) = sum_i A1 ... dAi ... Ak
           diff=(R("product", "d(A*B) = dA*B + A*dB", _d_matmul,
                   (X("x'*A*x", "x"), X("y'*X*z", "X"))),)),
    OpSpec(Op.SCALE, 2, F.scale_form, F.scale_form, precedence=F.PRODUCT, build=mul,
           evaluate=lambda env, e, a: a[0][0, 0] * a[1], symmetry="scaled",
           # d(c A) = dc A + c dA
           diff=(R("scaling", "d(c*A) = dc*A + c*dA", _d_scale,
                   (X("(x'*y)*(x'*x)", "x"), X("a*x'*y", "a"))),)),
    OpSpec(Op.DIV, 2, F.div_form, F.div_form, precedence=F.PRODUCT, latex_precedence=F.ATOM,
           build=div, evaluate=lambda env, e, a: a[0] / a[1][0, 0], symmetry="operand",
           positive=(1,),
           # d(A/c) = dA/c - A dc / c^2
           diff=(R("quotient", "d(A/c) = dA/c - A*dc/c^2", _d_div,
                   (X("(x'*y)/(x'*x)", "x"),)),)),
    OpSpec(Op.HADAMARD, 2, F.infix(".*", "\\odot"), F.infix(".*", "\\odot"),
           precedence=F.PRODUCT, build=hadamard, evaluate=lambda env, e, a: a[0] * a[1],
           symmetry="operands",
           # d(A .* B) = dA .* B + A .* dB
           diff=(R("Hadamard product", "d(A.*B) = dA.*B + A.*dB", _d_hadamard,
                   (X("sum(x.*(A*x))", "x"),)),)),
    OpSpec(Op.EDIV, 2, F.infix("./", "\\oslash"), F.infix("./", "\\oslash"),
           precedence=F.PRODUCT, build=ediv, evaluate=lambda env, e, a: a[0] / a[1],
           symmetry="operands", positive=(1,),
           # d(A ./ B) = dA ./ B - (A .* dB) ./ B.^2
           diff=(R("elementwise quotient", "d(A./B) = dA./B - A.*dB./B.^2", _d_ediv,
                   (X("sum((x.*y)./(x.*x + ones))", "x"),)),)),
    # --- powers -----------------------------------------------------------------------------
    OpSpec(Op.POW, 2, F.power("^"), F.power("^"), precedence=F.POWER, build=power,
           evaluate=lambda env, e, a: np.power(a[0], a[1][0, 0]), positive=(0, 1),
           symmetry="always",
           # d(a^p) = p a^(p-1) da + a^p log(a) dp
           diff=(R("power", "d(a^p) = p*a^(p - 1)*da + a^p*log(a)*dp", _d_pow,
                   (X("(x'*y)^3", "x"), X("a^b", "b"))),)),
    OpSpec(Op.MPOW, 2, F.power("^"), F.power("^"), precedence=F.POWER, build=power,
           evaluate=lambda env, e, a: np.linalg.matrix_power(a[0], int(a[1][0, 0])),
           symmetry="operand", conditioned=True,
           # d(A^k) = sum_{i=0}^{k-1} A^i dA A^(k-1-i)
           diff=(R("matrix power", "d(A^k) = sum_i A^i*dA*A^(k - 1 - i)", _d_mpow,
                   (X("tr(X^3)", "X"),)),)),
    OpSpec(Op.EPOW, 2, F.power(".^"), F.power(".^", "\\circ "), precedence=F.POWER,
           build=epower, evaluate=lambda env, e, a: np.power(a[0], a[1][0, 0]),
           symmetry="operand", positive=(0,),
           # d(A.^p) = p A.^(p-1) .* dA + (A.^p .* log(A)) dp
           diff=(R("elementwise power", "d(A.^p) = p*A.^(p - 1).*dA + A.^p.*log(A)*dp", _d_epow,
                   (X("sum(x.^3)", "x"), X("sum(x.^a)", "a"))),)),
    # --- linear maps ------------------------------------------------------------------------
    OpSpec(Op.TRANSPOSE, 1, F.transpose_form, F.transpose_form, precedence=F.POSTFIX,
           build=transpose, evaluate=lambda env, e, a: a[0].T, symmetry="operand",
           # d(A') = (dA)'
           diff=(R("transpose", "d(A') = (dA)'", _linear(Op.TRANSPOSE), (X("tr(A*X')", "X"),)),)),
    OpSpec(Op.TR, 1, F.call("tr"), F.call("tr"), syntax="tr", build=_square(Op.TR, True),
           evaluate=lambda env, e, a: _scalar(np.trace(a[0])), symmetry="always",
           # d tr(A) = tr(dA)
           diff=(R("trace", "d(tr(A)) = tr(dA)", _linear(Op.TR), (X("tr(A*X)", "X"),)),)),
    OpSpec(Op.DIAGM, 1, F.call("diag"), F.call("diag"), syntax="diag", build=_diag,
           evaluate=lambda env, e, a: np.diag(a[0][:, 0]), symmetry="always",
           # d diag(v) = diag(dv)
           diff=(R("diag of a vector", "d(diag(v)) = diag(dv)", _linear(Op.DIAGM),
                   (X("tr(A*diag(x))", "x"),)),)),
    OpSpec(Op.DIAGV, 1, F.call("diag"), F.call("diag"), build=_diag,
           evaluate=lambda env, e, a: np.diag(a[0]).copy()[:, None],
           # d diag(A) = diag(dA)
           diff=(R("diag of a matrix", "d(diag(A)) = diag(dA)", _linear(Op.DIAGV),
                   (X("y'*diag(X)", "X"),)),)),
    OpSpec(Op.SUM, 1, F.call("sum"), F.call("sum"), syntax="sum", build=_to_scalar(Op.SUM),
           evaluate=lambda env, e, a: _scalar(a[0].sum()), symmetry="always",
           # d sum(A) = sum(dA)
           diff=(R("sum of entries", "d(sum(A)) = sum(dA)", _linear(Op.SUM),
                   (X("sum(X)", "X"), X("sum(A*x)", "x"))),)),
    OpSpec(Op.SUMIDX, 1, F.sumidx_form, F.sumidx_form, latex_precedence=F.PRODUCT,
           symmetry="operand",
           diff=(
               # d/dtheta_k sum_j f(theta_j) = sum_j delta_jk f'(theta_j) = f'(theta_k)
               R("Kronecker delta",
                 "d(sum_k(f(theta_k))) = d(f(theta_k)): only the k-th term depends on theta_k",
                 _d_kronecker, (X("sum_k(mu_k'*y)", "mu_k", {"mu": "vector"}, "k"),)),
               # d sum_n f_n = sum_n d f_n
               R("sum over an index", "d(sum_n(f_n)) = sum_n(d(f_n))", _d_sumidx,
                 (X("sum_n(x_n'*y)", "y", {}, "n"), X("y'*sum_n(A_n*x)", "x", {}, "n"))),
           )),
    # the number of rows: a size, so that tr(eye) can be written in the terms of a variable
    OpSpec(Op.ROWS, 1, F.call("rows"), F.call("rows"), syntax="rows", build=_to_scalar(Op.ROWS),
           evaluate=lambda env, e, a: _scalar(a[0].shape[0]), symmetry="always",
           # a size does not change when the entries do: d rows(A) = 0
           diff=(R("size", "d(rows(A)) = 0", lambda e, ctx: zero(e.shape),
                   (X("rows(X)*tr(X)", "X"),)),)),
    # --- matrix functions -------------------------------------------------------------------
    OpSpec(Op.DET, 1, F.call("det", "\\det"), F.call("det", "\\det"), syntax="det",
           build=_square(Op.DET, True), evaluate=lambda env, e, a: _scalar(np.linalg.det(a[0])),
           symmetry="always", conditioned=True,
           # Jacobi's formula: det(X + H) = det(X) (1 + tr(inv(X) H) + o(H))
           diff=(R("Jacobi", "d(det(X)) = det(X)*tr(inv(X)*dX)", _d_det, (X("det(X)", "X"),)),)),
    OpSpec(Op.LOGDET, 1, F.call("logdet", "\\log\\det"), F.call("logdet", "\\log\\det"),
           syntax="logdet", build=_square(Op.LOGDET, True),
           evaluate=lambda env, e, a: _logdet(a[0]), symmetry="always", conditioned=True,
           # d log det X = d det(X) / det(X) = tr(inv(X) dX)   (Jacobi)
           diff=(R("Jacobi (log-determinant)", "d(logdet(X)) = tr(inv(X)*dX)", _d_logdet,
                   (X("logdet(X)", "X"),)),)),
    OpSpec(Op.INV, 1, F.inv_form, F.inv_form, syntax="inv", build=_square(Op.INV, False),
           evaluate=lambda env, e, a: _inv(a[0]), symmetry="operand", conditioned=True,
           # 0 = d(X inv(X)) = dX inv(X) + X d(inv(X))  =>  d(inv(X)) = -inv(X) dX inv(X)
           diff=(R("inverse", "d(inv(X)) = -inv(X)*dX*inv(X)", _d_inv,
                   (X("tr(A*inv(X))", "X"),)),)),
    OpSpec(Op.NORM1, 1, F.norm_form("1"), F.norm_form("1"), syntax="norm1",
           build=_to_scalar(Op.NORM1), evaluate=lambda env, e, a: _scalar(np.abs(a[0]).sum()),
           symmetry="always",
           # norm1(A) = sum(abs(A)), d abs(a) = sign(a) da   (a != 0)
           diff=(R("1-norm", "d(norm1(A)) = sum(sign(A).*dA)", _d_norm1,
                   (X("norm1(x)", "x"),)),)),
    OpSpec(Op.NORM2, 1, F.norm_form("2"), F.norm_form("2"), syntax="norm2",
           build=_to_scalar(Op.NORM2),
           evaluate=lambda env, e, a: _scalar(np.sqrt((a[0] ** 2).sum())), symmetry="always",
           # norm2(A)^2 = tr(A'A)  =>  2 norm2(A) d norm2(A) = 2 tr(A' dA)
           diff=(R("2-norm", "d(norm2(x)) = x'*dx/norm2(x); d(norm2(X)) = tr(X'*dX)/norm2(X)",
                   _d_norm2, (X("norm2(x)", "x"), X("norm2(X)", "X"))),)),
    # --- elementwise functions (chain rule: d f(A) = f'(A) .* dA) ---------------------------
    OpSpec(Op.LOG, 1, F.call("log", "\\log"), F.call("log", "\\log"), syntax="log",
           build=_same_shape(Op.LOG), evaluate=_elementwise(np.log), symmetry="operand",
           elementwise=True, positive=(0,),
           # d log(A) = dA ./ A
           diff=(R("log", "d(log(A)) = dA./A", _d_log,
                   (X("sum(log(x))", "x"), X("log(det(X))", "X"))),)),
    OpSpec(Op.EXP, 1, F.call("exp", "\\exp"), F.call("exp", "\\exp"), syntax="exp",
           build=_same_shape(Op.EXP), evaluate=_elementwise(np.exp), symmetry="operand",
           elementwise=True,
           # d exp(A) = exp(A) .* dA
           diff=(R("exp", "d(exp(A)) = exp(A).*dA", _chain_rule(lambda e: e),
                   (X("sum(exp(x))", "x"), X("log(sum(exp(x)))", "x"))),)),
    OpSpec(Op.SQRT, 1, F.around("sqrt", "\\sqrt{", "}"), F.around("sqrt", "\\sqrt{", "}"),
           syntax="sqrt", build=_same_shape(Op.SQRT), evaluate=_elementwise(np.sqrt),
           symmetry="operand", elementwise=True, positive=(0,),
           # d sqrt(A) = dA ./ (2 sqrt(A))
           diff=(R("square root", "d(sqrt(A)) = dA./(2*sqrt(A))", _d_sqrt,
                   (X("sum(sqrt(x))", "x"),)),)),
    OpSpec(Op.SIN, 1, F.call("sin", "\\sin"), F.call("sin", "\\sin"), syntax="sin",
           build=_same_shape(Op.SIN), evaluate=_elementwise(np.sin), symmetry="operand",
           elementwise=True,
           # d sin(A) = cos(A) .* dA
           diff=(R("sin", "d(sin(A)) = cos(A).*dA",
                   _chain_rule(lambda e: apply(Op.COS, e.args[0])), (X("sum(sin(x))", "x"),)),)),
    OpSpec(Op.COS, 1, F.call("cos", "\\cos"), F.call("cos", "\\cos"), syntax="cos",
           build=_same_shape(Op.COS), evaluate=_elementwise(np.cos), symmetry="operand",
           elementwise=True,
           # d cos(A) = -sin(A) .* dA
           diff=(R("cos", "d(cos(A)) = -sin(A).*dA", _d_cos, (X("sum(cos(X))", "X"),)),)),
    OpSpec(Op.TANH, 1, F.call("tanh", "\\tanh"), F.call("tanh", "\\tanh"), syntax="tanh",
           build=_same_shape(Op.TANH), evaluate=_elementwise(np.tanh), symmetry="operand",
           elementwise=True,
           # d tanh(A) = (1 - tanh(A).^2) .* dA   (sub spreads the 1 over a vector or matrix)
           diff=(R("tanh", "d(tanh(A)) = (1 - tanh(A).^2).*dA",
                   _chain_rule(lambda e: sub(ONE, epower(e, num(2)))),
                   (X("sum(tanh(x))", "x"), X("tanh(a*b)", "a"))),)),
    OpSpec(Op.ABS, 1, F.around("abs", "\\left|", "\\right|"),
           F.around("abs", "\\left|", "\\right|"), syntax="abs", build=_same_shape(Op.ABS),
           evaluate=_elementwise(np.abs), symmetry="operand", elementwise=True,
           # d |a| = sign(a) da   (a != 0)
           diff=(R("abs", "d(abs(A)) = sign(A).*dA",
                   _chain_rule(lambda e: apply(Op.SIGN, e.args[0])), (X("sum(abs(x))", "x"),)),)),
    OpSpec(Op.SIGN, 1, F.call("sign"), F.call("sign"), syntax="sign",
           build=_same_shape(Op.SIGN), evaluate=_elementwise(np.sign), symmetry="operand",
           elementwise=True,
           # sign is piecewise constant: its differential is 0 away from 0
           diff=(R("sign", "d(sign(A)) = 0 where A has no zero entry",
                   lambda e, ctx: zero(e.shape), (X("sum(sign(x).*x)", "x"),)),)),
]
# fmt: on

OPS: dict[Op, OpSpec] = {spec.op: spec for spec in _ENTRIES}
"""The table, by operator."""

FUNCTIONS: dict[str, Op] = {spec.syntax: spec.op for spec in _ENTRIES if spec.syntax}
"""The function names of the input syntax (``diag`` is DIAGM or DIAGV by its argument)."""

ELEMENTWISE: frozenset[Op] = frozenset(spec.op for spec in _ENTRIES if spec.elementwise)
"""Functions applied entry by entry to vectors and matrices."""


def apply(op: Op, a: Expr, dims: Dims | None = None) -> Expr:
    """A function of the table applied to ``a``, through its shape rule."""
    build = OPS[op].build
    if build is None:
        raise CalculusError(f"internal error: {op.value} is not a function")
    return build(a, dims) if dims is not None else build(a)


def rebuild(e: Expr, args: list[Expr] | tuple[Expr, ...]) -> Expr:
    """Rebuild ``e`` with new operands through the smart constructors (shapes re-inferred)."""
    return OPS[e.op].rebuild(e, list(args))


def _check_table() -> None:
    missing = set(Op) - set(OPS)
    if missing:  # a member without an entry is a bug of this module, found at import
        names = sorted(m.value for m in missing)
        raise CalculusError(f"internal error: no table entry for {names}")


_check_table()
