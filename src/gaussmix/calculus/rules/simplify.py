"""The simplification rules, in the order they are tried.

Each rule is a small function from a node to its rewrite (or None), registered with a stable name
and the identity it implements; :func:`gaussmix.calculus.rewrite.rewrite` applies the list to a
fixed point and records every step. Earlier rules have priority: arithmetic and neutral elements
are cleaned up first, transposes are pushed to the leaves, negations and scalars move outwards,
and only then are like terms collected and common factors pulled out. No rule distributes a
product over a sum, so the list cannot cycle: factoring is the only direction.

Together they turn raw gradients into the forms a textbook prints: ``(A + A')*x`` rather than
``A*x + A'*x``, ``2*x`` rather than ``x + x``, ``inv(X)'`` for X^{-T}, ``x*x'`` for the outer
product, and ``-2*inv(S)*(x - m)`` once ``inv(S)' = inv(S)`` is known from ``S`` being symmetric.
Every rule preserves the value (tests check it on random expressions).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction

from gaussmix.calculus.expr import (
    ONE,
    Expr,
    Op,
    add_all,
    broadcast,
    dim,
    div,
    ediv,
    epower,
    eye,
    hadamard,
    is_number,
    is_zero,
    mul,
    mul_all,
    neg,
    num,
    number_value,
    power,
    sumidx,
    transpose,
    zero,
)
from gaussmix.calculus.ops import apply
from gaussmix.calculus.rewrite import Rule
from gaussmix.calculus.structure import is_symmetric, transposed

__all__ = ["RULES", "TIDY_RULES", "split_coefficient", "with_coefficient"]

RULES: list[Rule] = []


def _rule(name: str, identity: str, *ops: Op) -> Callable[[Callable[[Expr], Expr | None]], Rule]:
    def register(fn: Callable[[Expr], Expr | None]) -> Rule:
        rule = Rule(name, identity, frozenset(ops), fn)
        RULES.append(rule)
        return rule

    return register


def _rebuild_unary(e: Expr, arg: Expr) -> Expr:
    if e.op is Op.SUMIDX:
        return sumidx(e.name, arg)
    if e.op is Op.TRANSPOSE:
        return transpose(arg)
    return apply(e.op, arg)


def _is_ones(e: Expr) -> bool:
    """ones, ones' or ones*ones': all entries 1."""
    if e.op is Op.ONES:
        return True
    if e.op is Op.TRANSPOSE:
        return e.args[0].op is Op.ONES
    return e.op is Op.MATMUL and len(e.args) == 2 and all(_is_ones(a) for a in e.args)


def _index_free(c: Expr, index: str) -> bool:
    return all(index not in indices for _, indices in c.free)


# --- arithmetic and neutral elements ----------------------------------------------------------


@_rule("arithmetic", "2 + 3 = 5, 2*3 = 6, 6/4 = 3/2, 2^3 = 8", Op.ADD, Op.SCALE, Op.DIV, Op.POW)
def _arithmetic(e: Expr) -> Expr | None:
    if e.op is Op.ADD:
        numbers = [t for t in e.args if is_number(t)]
        if len(numbers) < 2:
            return None
        total = sum((number_value(t) for t in numbers), Fraction(0))
        rest = [t for t in e.args if not is_number(t)]
        return add_all([*rest, num(total)] if total != 0 or not rest else rest, e.shape)
    a, b = e.args
    if not (is_number(a) and is_number(b)):
        return None
    x, y = number_value(a), number_value(b)
    if e.op is Op.SCALE:
        return num(x * y)
    if e.op is Op.DIV:
        return num(x / y) if y != 0 else None
    if y.denominator == 1 and abs(y) <= 16 and (x != 0 or y > 0):
        return num(x ** int(y))
    return None


@_rule(
    "zero",
    "A + 0 = A, 0*A = A*0 = 0, 0/c = 0, -0 = 0, 0' = 0, tr(0) = 0",
    Op.ADD,
    Op.MATMUL,
    Op.SCALE,
    Op.HADAMARD,
    Op.DIV,
    Op.EDIV,
    Op.NEG,
    Op.TRANSPOSE,
    Op.TR,
    Op.SUM,
    Op.DIAGM,
    Op.DIAGV,
    Op.SUMIDX,
    Op.NORM1,
    Op.NORM2,
)
def _zero(e: Expr) -> Expr | None:
    if e.op is Op.ADD:
        keep = [t for t in e.args if not is_zero(t)]
        return add_all(keep, e.shape) if len(keep) < len(e.args) else None
    if e.op in (Op.MATMUL, Op.SCALE, Op.HADAMARD):
        return zero(e.shape) if any(is_zero(a) for a in e.args) else None
    return zero(e.shape) if is_zero(e.args[0]) else None


@_rule(
    "one",
    "1*A = A, A/1 = A, A*eye = A, A.*ones = A, a^1 = a, A^0 = eye, inv(eye) = eye",
    Op.SCALE,
    Op.DIV,
    Op.MATMUL,
    Op.HADAMARD,
    Op.EDIV,
    Op.POW,
    Op.EPOW,
    Op.MPOW,
    Op.INV,
)
def _one(e: Expr) -> Expr | None:
    op = e.op
    if op is Op.SCALE:
        c, a = e.args
        if is_number(c, 1):
            return a
        return c if a.is_scalar and is_number(a, 1) else None
    if op is Op.DIV:
        return e.args[0] if is_number(e.args[1], 1) else None
    if op is Op.MATMUL:
        rest = [f for f in e.args if f.op is not Op.EYE]
        if len(rest) == len(e.args):
            return None
        return mul_all(rest) if rest else eye(e.shape[0])
    if op is Op.HADAMARD:
        a, b = e.args
        return b if _is_ones(a) else a if _is_ones(b) else None
    if op is Op.EDIV:
        return e.args[0] if _is_ones(e.args[1]) else None
    if op is Op.INV:
        return e.args[0] if e.args[0].op is Op.EYE else None
    base, p = e.args
    if is_number(p, 1):
        return base
    if is_number(p, 0):
        return eye(e.shape[0]) if op is Op.MPOW else broadcast(ONE, e.shape)
    return None


@_rule("reciprocal", "(1./A).*B = B./A", Op.HADAMARD)
def _reciprocal(e: Expr) -> Expr | None:
    a, b = e.args
    if a.op is Op.EDIV and _is_ones(a.args[0]):
        return ediv(b, a.args[1])
    if b.op is Op.EDIV and _is_ones(b.args[0]):
        return ediv(a, b.args[1])
    return None


@_rule("double negation", "-(-A) = A", Op.NEG)
def _double_negation(e: Expr) -> Expr | None:
    return e.args[0].args[0] if e.args[0].op is Op.NEG else None


@_rule("double transpose", "(A')' = A", Op.TRANSPOSE)
def _double_transpose(e: Expr) -> Expr | None:
    return e.args[0].args[0] if e.args[0].op is Op.TRANSPOSE else None


@_rule("scalar transpose", "a' = a for a scalar a", Op.TRANSPOSE)
def _scalar_transpose(e: Expr) -> Expr | None:
    return e.args[0] if e.is_scalar else None


@_rule("symmetric transpose", "S' = S for symmetric S (inv(S), x*x', A + A', ...)", Op.TRANSPOSE)
def _symmetric_transpose(e: Expr) -> Expr | None:
    return e.args[0] if is_symmetric(e.args[0]) else None


# --- transposes to the leaves -----------------------------------------------------------------


@_rule("transpose of a product", "(A*B)' = B'*A'", Op.TRANSPOSE)
def _transpose_product(e: Expr) -> Expr | None:
    a = e.args[0]
    if a.op is not Op.MATMUL:
        return None
    return mul_all([transpose(f) for f in reversed(a.args)])


@_rule(
    "powers",
    "A*A = A^2, A*A^k = A^(k + 1), (A^k)' = (A')^k, a*a = a^2, x.*x = x.^2",
    Op.MATMUL,
    Op.TRANSPOSE,
    Op.SCALE,
    Op.HADAMARD,
)
def _powers(e: Expr) -> Expr | None:
    if e.op is Op.TRANSPOSE:
        a = e.args[0]
        return power(transpose(a.args[0]), a.args[1]) if a.op is Op.MPOW else None
    if e.op is Op.SCALE:
        a, b = e.args
        return power(a, num(2)) if a == b and b.is_scalar and not is_number(a) else None
    if e.op is Op.HADAMARD:
        a, b = e.args
        return epower(a, num(2)) if a == b else None

    def split(f: Expr) -> tuple[Expr, int]:
        if f.op is Op.MPOW:
            assert f.args[1].value is not None  # matrix powers have integer exponents
            return f.args[0], int(f.args[1].value)
        return f, 1

    fs = e.args
    for i in range(len(fs) - 1):
        (a, j), (b, k) = split(fs[i]), split(fs[i + 1])
        if a == b and a.shape == b.shape:
            merged = power(a, num(j + k))
            rest = [*fs[:i], merged, *fs[i + 2 :]]
            return mul_all(rest) if len(rest) > 1 else merged
    return None


@_rule(
    "transpose through scalars",
    "(c*A)' = c*A', (A/c)' = A'/c, (-A)' = -A', (A.*B)' = A'.*B', sum_n(A)' = sum_n(A')",
    Op.TRANSPOSE,
)
def _transpose_through(e: Expr) -> Expr | None:
    a = e.args[0]
    if a.op is Op.SCALE:
        return mul(a.args[0], transpose(a.args[1]))
    if a.op is Op.DIV:
        return div(transpose(a.args[0]), a.args[1])
    if a.op is Op.NEG:
        return neg(transpose(a.args[0]))
    if a.op is Op.HADAMARD:
        return hadamard(transpose(a.args[0]), transpose(a.args[1]))
    if a.op is Op.SUMIDX:
        return sumidx(a.name, transpose(a.args[0]))
    return None


# --- negations and scalars outwards -----------------------------------------------------------


@_rule(
    "negation out",
    "(-A)*B = A*(-B) = -(A*B), tr(-A) = -tr(A), inv(-A) = -inv(A)",
    Op.MATMUL,
    Op.SCALE,
    Op.DIV,
    Op.HADAMARD,
    Op.EDIV,
    Op.TR,
    Op.SUM,
    Op.DIAGM,
    Op.DIAGV,
    Op.SUMIDX,
    Op.INV,
)
def _negation_out(e: Expr) -> Expr | None:
    args = e.args
    if not any(a.op is Op.NEG for a in args):
        return None
    if e.op in (Op.MATMUL, Op.SCALE, Op.DIV, Op.HADAMARD, Op.EDIV):
        flips = sum(a.op is Op.NEG for a in args)
        inner = [a.args[0] if a.op is Op.NEG else a for a in args]
        builders: dict[Op, Callable[[Expr, Expr], Expr]] = {
            Op.SCALE: mul,
            Op.DIV: div,
            Op.HADAMARD: hadamard,
            Op.EDIV: ediv,
        }
        out = mul_all(inner) if e.op is Op.MATMUL else builders[e.op](inner[0], inner[1])
        return neg(out) if flips % 2 else out
    return neg(_rebuild_unary(e, args[0].args[0]))


@_rule("scalars together", "a*(b*A) = (a*b)*A, written a*b*A", Op.SCALE)
def _scalars_together(e: Expr) -> Expr | None:
    c, a = e.args
    return mul(mul(c, a.args[0]), a.args[1]) if a.op is Op.SCALE else None


@_rule("numbers first", "a*2 = 2*a, A/2 = 1/2*A", Op.SCALE, Op.DIV)
def _numbers_first(e: Expr) -> Expr | None:
    if e.op is Op.DIV:
        c = e.args[1]
        if is_number(c) and number_value(c) != 0:
            return mul(num(1 / number_value(c)), e.args[0])
        return None
    c, a = e.args
    if a.is_scalar and is_number(a) and not is_number(c):
        return mul(a, c)
    return None


@_rule("merge sums", "sum_n(A_n) + sum_n(B_n) = sum_n(A_n + B_n)", Op.ADD)
def _merge_sums(e: Expr) -> Expr | None:
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(e.args):
        inner = t.args[0] if t.op is Op.NEG else t
        if inner.op is Op.SUMIDX:
            groups.setdefault(inner.name, []).append(i)
    for index, where in groups.items():
        if len(where) < 2:
            continue
        bodies = []
        for i in where:
            t = e.args[i]
            bodies.append(neg(t.args[0].args[0]) if t.op is Op.NEG else t.args[0])
        merged = sumidx(index, add_all(bodies, e.shape))
        terms = [
            merged if i == where[0] else t
            for i, t in enumerate(e.args)
            if i == where[0] or i not in where
        ]
        return add_all(terms, e.shape)
    return None


@_rule("diag of an outer product", "diag(x*y') = x.*y", Op.DIAGV)
def _diag_outer(e: Expr) -> Expr | None:
    a = e.args[0]
    if a.op is Op.MATMUL and len(a.args) == 2 and a.args[0].shape[1] == 1:
        return hadamard(a.args[0], transposed(a.args[1]))
    return None


@_rule(
    "scalar out",
    "tr(c*A) = c*tr(A), sum(c*A) = c*sum(A), (c*A).*B = c*(A.*B), sum_n(c*A) = c*sum_n(A) "
    "for c free of n",
    Op.TR,
    Op.SUM,
    Op.DIAGM,
    Op.DIAGV,
    Op.HADAMARD,
    Op.EDIV,
    Op.SUMIDX,
)
def _scalar_out(e: Expr) -> Expr | None:
    if e.op in (Op.HADAMARD, Op.EDIV):
        a, b = e.args
        if a.op is Op.SCALE:
            return mul(a.args[0], _binary(e.op, a.args[1], b))
        if b.op is Op.SCALE and e.op is Op.HADAMARD:
            return mul(b.args[0], _binary(e.op, a, b.args[1]))
        return None
    a = e.args[0]
    if a.op is not Op.SCALE:
        return None
    c, rest = a.args
    if e.op is Op.SUMIDX:
        return _sum_scalar_out(e.name, a)
    return mul(c, _rebuild_unary(e, rest))


def _sum_scalar_out(index: str, body: Expr) -> Expr | None:
    factors, rest = _scalar_factors(body)
    free = [f for f in factors if _index_free(f, index)]
    bound = [f for f in factors if not _index_free(f, index)]
    if free and (bound or (rest is not None and not _index_free(rest, index))):
        # sum_n(c*a_n*A_n) = c*sum_n(a_n*A_n)
        inner = mul_all([*bound, *([rest] if rest is not None else [])])
        return mul(mul_all(free), sumidx(index, inner))
    if not free and rest is not None and _index_free(rest, index):
        # sum_n(c_n*A) = sum_n(c_n)*A
        return mul(sumidx(index, mul_all(bound)), rest)
    return None


def _binary(op: Op, a: Expr, b: Expr) -> Expr:
    return hadamard(a, b) if op is Op.HADAMARD else ediv(a, b)


@_rule(
    "division out",
    "A*(B/c) = (A*B)/c, a*(B/c) = (a*B)/c, tr(A/c) = tr(A)/c, (a/b)/c = a/(b*c), "
    "(1/c)*A = A/c, a/(b/c) = a*c/b",
    Op.MATMUL,
    Op.SCALE,
    Op.TR,
    Op.SUM,
    Op.HADAMARD,
    Op.DIV,
    Op.SUMIDX,
    Op.DIAGM,
    Op.DIAGV,
)
def _division_out(e: Expr) -> Expr | None:
    op = e.op
    if op is Op.MATMUL:
        for i, f in enumerate(e.args):
            if f.op is Op.DIV:
                inner = [*e.args[:i], f.args[0], *e.args[i + 1 :]]
                return div(mul_all(inner), f.args[1])
        return None
    if op is Op.SCALE:
        c, a = e.args
        if a.op is Op.DIV:
            return div(mul(c, a.args[0]), a.args[1])
        if c.op is Op.DIV:
            return div(mul(c.args[0], a), c.args[1])
        return None
    if op is Op.DIV:
        a, c = e.args
        if a.op is Op.DIV:
            return div(a.args[0], mul(a.args[1], c))
        if c.op is Op.DIV:
            return div(mul(a, c.args[1]), c.args[0])
        return None
    if op is Op.HADAMARD:
        a, b = e.args
        if a.op is Op.DIV:
            return div(hadamard(a.args[0], b), a.args[1])
        if b.op is Op.DIV:
            return div(hadamard(a, b.args[0]), b.args[1])
        return None
    a = e.args[0]
    if a.op is not Op.DIV:
        return None
    if op is Op.SUMIDX and not _index_free(a.args[1], e.name):
        return None
    return div(_rebuild_unary(e, a.args[0]), a.args[1])


def _scalar_factors(e: Expr) -> tuple[list[Expr], Expr | None]:
    """Split a product into its scalar factors and its non-scalar rest: c*d*A -> [c, d], A."""
    factors: list[Expr] = []
    rest: Expr | None = e
    while rest is not None and rest.op is Op.SCALE:
        c, a = rest.args
        inner, leftover = _scalar_factors(c)
        factors.extend(inner)
        if leftover is not None:
            factors.append(leftover)
        rest = a
    if rest is not None and rest.is_scalar:
        factors.append(rest)
        rest = None
    return factors, rest


@_rule("sign", "sign(a)*a = a*sign(a) = abs(a) for a scalar a", Op.SCALE)
def _sign(e: Expr) -> Expr | None:
    a, b = e.args
    if not b.is_scalar:
        return None
    if (a.op is Op.SIGN and a.args[0] == b) or (b.op is Op.SIGN and b.args[0] == a):
        return apply(Op.ABS, b if a.op is Op.SIGN else a)
    return None


@_rule("cancel", "u*A/u = A, a/a = 1", Op.DIV)
def _cancel(e: Expr) -> Expr | None:
    top, bottom = e.args
    num_factors, rest = _scalar_factors(top)
    den_factors, _ = _scalar_factors(bottom)
    common = Counter(num_factors) & Counter(den_factors)
    if not common:
        return None
    num_left = list((Counter(num_factors) - common).elements())
    den_left = list((Counter(den_factors) - common).elements())
    upper = mul_all([*num_left, *([rest] if rest is not None else [])])
    return div(upper, mul_all(den_left)) if den_left else upper


# --- inverses, traces, sums -------------------------------------------------------------------


@_rule(
    "inverse",
    "inv(inv(A)) = A, A*inv(A) = inv(A)*A = eye, inv(c*A) = inv(A)/c, "
    "diag(diag(v)) = v, inv(diag(v)) = diag(1./v)",
    Op.INV,
    Op.MATMUL,
    Op.DIAGV,
)
def _inverse(e: Expr) -> Expr | None:
    if e.op is Op.INV:
        a = e.args[0]
        if a.op is Op.INV:
            return a.args[0]
        if a.op is Op.SCALE:
            return div(apply(Op.INV, a.args[1]), a.args[0])
        if a.op is Op.DIAGM:
            return apply(Op.DIAGM, ediv(ONE, a.args[0]))
        return None
    if e.op is Op.DIAGV:
        a = e.args[0]
        return a.args[0] if a.op is Op.DIAGM else None
    fs = e.args
    for i in range(len(fs) - 1):
        a, b = fs[i], fs[i + 1]
        if (a.op is Op.INV and a.args[0] == b) or (b.op is Op.INV and b.args[0] == a):
            rest = [*fs[:i], *fs[i + 2 :]]
            return mul_all(rest) if rest else eye(e.shape[0])
    return None


@_rule("trace of a scalar", "tr(a) = a for a scalar; tr(x*y') = y'*x", Op.TR)
def _trace_scalar(e: Expr) -> Expr | None:
    a = e.args[0]
    if a.is_scalar:
        return a
    if a.op is Op.MATMUL and a.args[0].shape[1] == 1:
        return mul_all([*a.args[1:], a.args[0]])
    return None


def _named(d: object) -> bool:
    return isinstance(d, str) and d[:1].isupper()


@_rule(
    "dimension",
    "tr(eye) = D, sum(ones) = D, sum_n(c) = N*c for c free of n (D, N: named dimensions)",
    Op.TR,
    Op.SUM,
    Op.SUMIDX,
)
def _dimension(e: Expr) -> Expr | None:
    a = e.args[0]
    if e.op is Op.TR and a.op is Op.EYE and _named(a.shape[0]):
        return dim(a.shape[0])
    if e.op is Op.SUM and a.op is Op.ONES and _named(a.shape[0]):
        return dim(a.shape[0])
    if e.op is Op.SUMIDX and _index_free(a, e.name):
        return mul(dim(e.name.upper()), a)
    return None


# --- collecting and factoring -----------------------------------------------------------------


def split_coefficient(e: Expr) -> tuple[Fraction, Expr | None]:
    """A term as (numeric coefficient, rest): ``-2*A`` -> (-2, A), ``3`` -> (3, None)."""
    if e.op is Op.NUM:
        assert e.value is not None  # invariant of NUM nodes
        return e.value, None
    if e.op is Op.NEG:
        c, rest = split_coefficient(e.args[0])
        return -c, rest
    if e.op is Op.SCALE:
        c1, r1 = split_coefficient(e.args[0])
        c2, r2 = split_coefficient(e.args[1])
        if r1 is None or r2 is None:
            return c1 * c2, r1 if r2 is None else r2
        if c1 == 1 and c2 == 1:
            return Fraction(1), e
        return c1 * c2, mul(r1, r2)
    if e.op is Op.DIV:
        c, rest = split_coefficient(e.args[0])
        return c, div(rest if rest is not None else ONE, e.args[1])
    return Fraction(1), e


def with_coefficient(c: Fraction, rest: Expr | None, shape: tuple[object, object]) -> Expr:
    """The inverse of :func:`split_coefficient`."""
    if rest is None:
        return num(c)
    if c == 0:
        return zero(rest.shape)
    if c == 1:
        return rest
    if c == -1:
        return neg(rest)
    return neg(mul(num(-c), rest)) if c < 0 else mul(num(c), rest)


@_rule("like terms", "A + A = 2*A, 3*A - A = 2*A, A - A = 0", Op.ADD)
def _like_terms(e: Expr) -> Expr | None:
    groups: dict[Expr | None, Fraction] = {}
    order: list[Expr | None] = []
    for t in e.args:
        c, rest = split_coefficient(t)
        if rest not in groups:
            order.append(rest)
            groups[rest] = Fraction(0)
        groups[rest] += c
    if len(order) == len(e.args):
        return None
    terms = [with_coefficient(groups[r], r, e.shape) for r in order if groups[r] != 0]
    return add_all(terms, e.shape)


def _split_end(t: Expr, right: bool) -> tuple[Expr, Expr] | None:
    """A term as (the rest, its last factor) (or its first factor, for right=False)."""
    if t.op is Op.NEG:
        inner = _split_end(t.args[0], right)
        return (neg(inner[0]), inner[1]) if inner else None
    if t.op is Op.SCALE and not t.args[1].is_scalar:
        inner = _split_end(t.args[1], right)
        return (mul(t.args[0], inner[0]), inner[1]) if inner else None
    if t.op is Op.DIV and not t.is_scalar:
        inner = _split_end(t.args[0], right)
        return (div(inner[0], t.args[1]), inner[1]) if inner else None
    if t.op is Op.MATMUL:
        if right:
            return mul_all(t.args[:-1]), t.args[-1]
        return mul_all(t.args[1:]), t.args[0]
    return None


def _factor(e: Expr, right: bool) -> Expr | None:
    splits = [_split_end(t, right) for t in e.args]
    seen: dict[tuple[Expr, object], list[int]] = {}
    for i, s in enumerate(splits):
        if s is not None:
            seen.setdefault((s[1], s[1].shape), []).append(i)
    for (factor, _), where in seen.items():
        if len(where) < 2:
            continue
        parts = [splits[i][0] for i in where if splits[i] is not None]  # type: ignore[index]
        inner = add_all(parts, parts[0].shape)
        grouped = mul(inner, factor) if right else mul(factor, inner)
        terms = [
            grouped if i == where[0] else t
            for i, t in enumerate(e.args)
            if i == where[0] or i not in where
        ]
        return add_all(terms, e.shape)
    return None


@_rule("common right factor", "A*x + B*x = (A + B)*x", Op.ADD)
def _common_right(e: Expr) -> Expr | None:
    return _factor(e, right=True)


@_rule("common left factor", "x'*A + x'*B = x'*(A + B)", Op.ADD)
def _common_left(e: Expr) -> Expr | None:
    return _factor(e, right=False)


_Parts = tuple[Fraction, list[Expr], Expr | None, Expr | None]


def _term_parts(t: Expr) -> _Parts:
    """A term as (coefficient, scalar factors, non-scalar rest, denominator)."""
    c, rest = split_coefficient(t)
    if rest is None:
        return c, [], None, None
    if rest.op is Op.DIV:  # q*a/c: the factors of the numerator
        factors, matrix = _scalar_factors(rest.args[0])
        return c, factors, matrix, rest.args[1]
    factors, matrix = _scalar_factors(rest)
    return c, factors, matrix, None


@_rule(
    "common scalar factor",
    "c*A + c*B = c*(A + B), 1/2*A - 1/2*B = 1/2*(A - B), a/c + b/c = (a + b)/c",
    Op.ADD,
)
def _common_scalar(e: Expr) -> Expr | None:
    if all(t.op is Op.DIV for t in e.args) and len({t.args[1] for t in e.args}) == 1:
        return div(add_all([t.args[0] for t in e.args], e.shape), e.args[0].args[1])
    parts = [_term_parts(t) for t in e.args]
    magnitudes = {abs(c) for c, _, _, _ in parts}
    if len(magnitudes) == 1 and (m := magnitudes.pop()) not in (0, 1):
        terms = [with_coefficient(c / m, _rest(f, r, d), e.shape) for c, f, r, d in parts]
        return mul(num(m), add_all(terms, e.shape))
    common = Counter(f for f in parts[0][1] if not is_number(f))
    for _, factors, _, _ in parts[1:]:
        common &= Counter(factors)
    if not common:
        return None
    terms = []
    for c, factors, matrix, den in parts:
        left = list((Counter(factors) - common).elements())
        terms.append(with_coefficient(c, _rest(left, matrix, den), e.shape))
    return mul(mul_all(list(common.elements())), add_all(terms, e.shape))


def _rest(factors: Sequence[Expr], matrix: Expr | None, den: Expr | None = None) -> Expr | None:
    items = [*factors, *([matrix] if matrix is not None else [])]
    if den is not None:
        return div(mul_all(items), den)
    return mul_all(items) if items else None


@_rule("order of terms", "-A + B = B - A", Op.ADD)
def _order(e: Expr) -> Expr | None:
    if e.args[0].op is not Op.NEG:
        return None
    first = next((i for i, t in enumerate(e.args) if t.op is not Op.NEG), None)
    if first is None:
        return None
    return add_all([e.args[first], *e.args[:first], *e.args[first + 1 :]], e.shape)


TIDY_RULES: list[Rule] = [
    r
    for r in RULES
    if r.name
    in (
        "arithmetic",
        "zero",
        "one",
        "double negation",
        "double transpose",
        "scalar transpose",
        "negation out",
        "scalars together",
        "numbers first",
    )
]
"""The few rules that tidy intermediate lines of a derivation without changing their form."""
