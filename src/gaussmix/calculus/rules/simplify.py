"""The simplification rules: one identity each, in the order they are tried.

Each entry is a :class:`~gaussmix.calculus.rewrite.Rule`: a pattern (an operator and conditions
on its operands, in the manner of tinygrad's pattern tables), the rewrite, the identity in the
input syntax, and an example the test suite rewrites to check that both sides agree at random
values. :func:`~gaussmix.calculus.rewrite.rewrite` applies the list to a fixed point and records
every step. Earlier rules have priority: arithmetic and neutral elements are cleaned up first,
transposes are pushed to the leaves, negations and scalars move outwards, and only then are like
terms collected and common factors pulled out. No rule distributes a product over a sum, so the
list cannot cycle: factoring is the only direction.

Together they turn raw gradients into the forms a textbook prints: ``(A + A')*x`` rather than
``A*x + A'*x``, ``2*x`` rather than ``x + x``, ``inv(X)'`` for X^{-T}, ``x*x'`` for the outer
product, and ``-2*inv(S)*(x - m)`` once ``inv(S)' = inv(S)`` is known from ``S`` being symmetric.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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
from gaussmix.calculus.ops import apply, rebuild
from gaussmix.calculus.rewrite import Match, P, Pat, Rule
from gaussmix.calculus.structure import is_symmetric, transposed

__all__ = [
    "FACTORING_RULES",
    "RULES",
    "TIDY_RULES",
    "Sizes",
    "split_coefficient",
    "with_coefficient",
]

# --- pattern pieces ---------------------------------------------------------------------------

A, B, C = P(name="A"), P(name="B"), P(name="C")


def _ops(*ops: Op) -> frozenset[Op]:
    return frozenset(ops)


def _is_ones(e: Expr) -> bool:
    """ones, ones' or ones*ones': all entries 1."""
    if e.op is Op.ONES:
        return True
    if e.op is Op.TRANSPOSE:
        return e.args[0].op is Op.ONES
    return e.op is Op.MATMUL and len(e.args) == 2 and all(_is_ones(a) for a in e.args)


def _index_free(c: Expr, index: str) -> bool:
    return all(index not in indices for _, indices in c.free)


NUMBER = Pat(where=is_number)
ZERO = Pat(where=is_zero)
ONE_P = Pat(where=lambda e: is_number(e, 1))
ALL_ONES = Pat(where=_is_ones)
SCALAR_P = Pat(where=lambda e: e.is_scalar)


def number(name: str) -> Pat:
    return P(where=is_number, name=name)


def one_arg(op: Op | frozenset[Op], inner: Pat) -> Pat:
    return Pat(op, (inner,))


LINEAR = _ops(Op.TR, Op.SUM, Op.DIAGM, Op.DIAGV, Op.SUMIDX)
"""Linear maps of one operand: f(c*A) = c*f(A), f(-A) = -f(A), f(A/c) = f(A)/c."""

PRODUCTS = _ops(Op.MATMUL, Op.SCALE, Op.DIV, Op.HADAMARD, Op.EDIV)


# --- rewrites with more than one line ----------------------------------------------------------


def _sum_numbers(m: Match) -> Expr | None:
    e = m.node
    numbers = [t for t in e.args if is_number(t)]
    if len(numbers) < 2:
        return None
    total = sum((number_value(t) for t in numbers), Fraction(0))
    rest = [t for t in e.args if not is_number(t)]
    return add_all([*rest, num(total)] if total != 0 or not rest else rest, e.shape)


def _power_of_numbers(m: Match) -> Expr | None:
    x, y = number_value(m["a"]), number_value(m["b"])
    if y.denominator == 1 and abs(y) <= 16 and (x != 0 or y > 0):
        return num(x ** int(y))
    return None


def _drop_zero_terms(m: Match) -> Expr | None:
    e = m.node
    keep = [t for t in e.args if not is_zero(t)]
    return add_all(keep, e.shape) if len(keep) < len(e.args) else None


def _drop_eye(m: Match) -> Expr | None:
    e = m.node
    rest = [f for f in e.args if f.op is not Op.EYE]
    if len(rest) == len(e.args):
        return None
    return mul_all(rest) if rest else eye(e.shape[0])


def _zeroth_power(m: Match) -> Expr:
    e = m.node
    return eye(e.shape[0]) if e.op is Op.MPOW else broadcast(ONE, e.shape)


def _product_of_powers(m: Match) -> Expr | None:
    def split(f: Expr) -> tuple[Expr, int]:
        if f.op is Op.MPOW and f.args[1].value is not None:
            return f.args[0], int(f.args[1].value)
        return f, 1

    fs = m.node.args
    for i in range(len(fs) - 1):
        (a, j), (b, k) = split(fs[i]), split(fs[i + 1])
        if a == b and a.shape == b.shape:
            merged = power(a, num(j + k))
            rest = [*fs[:i], merged, *fs[i + 2 :]]
            return mul_all(rest) if len(rest) > 1 else merged
    return None


def _negation_out_of_product(m: Match) -> Expr | None:
    e = m.node
    if not any(a.op is Op.NEG for a in e.args):
        return None
    flips = sum(a.op is Op.NEG for a in e.args)
    inner = [a.args[0] if a.op is Op.NEG else a for a in e.args]
    out = mul_all(inner) if e.op is Op.MATMUL else rebuild(e, inner)
    return neg(out) if flips % 2 else out


def _merge_sums(m: Match) -> Expr | None:
    e = m.node
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


def _diag_outer(m: Match) -> Expr | None:
    a = m["A"]
    if len(a.args) == 2 and a.args[0].shape[1] == 1:
        return hadamard(a.args[0], transposed(a.args[1]))
    return None


def _scalar_out_of_sum(m: Match) -> Expr | None:
    # sum_n(c*a_n*A_n) = c*sum_n(a_n*A_n) for c free of n
    e = m.node
    factors, rest = _scalar_factors(e.args[0])
    free = [f for f in factors if _index_free(f, e.name)]
    bound = [f for f in factors if not _index_free(f, e.name)]
    if free and (bound or (rest is not None and not _index_free(rest, e.name))):
        inner = mul_all([*bound, *([rest] if rest is not None else [])])
        return mul(mul_all(free), sumidx(e.name, inner))
    return None


def _matrix_out_of_sum(m: Match) -> Expr | None:
    # sum_n(c_n*A) = sum_n(c_n)*A for A free of n
    e = m.node
    factors, rest = _scalar_factors(e.args[0])
    free = [f for f in factors if _index_free(f, e.name)]
    bound = [f for f in factors if not _index_free(f, e.name)]
    if not free and rest is not None and _index_free(rest, e.name):
        return mul(sumidx(e.name, mul_all(bound)), rest)
    return None


def _division_out_of_matmul(m: Match) -> Expr | None:
    e = m.node
    for i, f in enumerate(e.args):
        if f.op is Op.DIV:
            inner = [*e.args[:i], f.args[0], *e.args[i + 1 :]]
            return div(mul_all(inner), f.args[1])
    return None


def _division_out_of_map(m: Match) -> Expr | None:
    e, a = m.node, m["A"]
    if e.op is Op.SUMIDX and not _index_free(a.args[1], e.name):
        return None
    return div(rebuild(e, [a.args[0]]), a.args[1])


def _cancel(m: Match) -> Expr | None:
    top, bottom = m.node.args
    num_factors, rest = _scalar_factors(top)
    den_factors, _ = _scalar_factors(bottom)
    common = Counter(num_factors) & Counter(den_factors)
    if not common:
        return None
    num_left = list((Counter(num_factors) - common).elements())
    den_left = list((Counter(den_factors) - common).elements())
    upper = mul_all([*num_left, *([rest] if rest is not None else [])])
    return div(upper, mul_all(den_left)) if den_left else upper


def _inverse_pair(m: Match) -> Expr | None:
    e = m.node
    fs = e.args
    for i in range(len(fs) - 1):
        a, b = fs[i], fs[i + 1]
        if (a.op is Op.INV and a.args[0] == b) or (b.op is Op.INV and b.args[0] == a):
            rest = [*fs[:i], *fs[i + 2 :]]
            return mul_all(rest) if rest else eye(e.shape[0])
    return None


def _trace_of_outer(m: Match) -> Expr | None:
    a = m["A"]
    if a.args[0].shape[1] == 1:
        return mul_all([*a.args[1:], a.args[0]])
    return None


class Sizes:
    """The context that lets a size be written in the terms of a variable: rows(X)."""

    def __init__(self, e: Expr) -> None:
        self.variables = [n for n in e.walk() if n.op is Op.VAR and not n.indices]

    def rows_of(self, d: object) -> Expr | None:
        """rows(X), or rows(X') for a dimension that is X's number of columns."""
        for v in self.variables:
            if v.shape[0] == d:
                return apply(Op.ROWS, v)
        for v in self.variables:
            if v.shape[1] == d:
                return apply(Op.ROWS, transpose(v))
        return None


def _size_of(m: Match, d: object) -> Expr | None:
    sizes = m.ctx if isinstance(m.ctx, Sizes) else None
    return sizes.rows_of(d) if sizes is not None and not _named(d) else None


def _named(d: object) -> bool:
    return isinstance(d, str) and d[:1].isupper()


def _like_terms(m: Match) -> Expr | None:
    e = m.node
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


def _common_denominator(m: Match) -> Expr | None:
    e = m.node
    if all(t.op is Op.DIV for t in e.args) and len({t.args[1] for t in e.args}) == 1:
        return div(add_all([t.args[0] for t in e.args], e.shape), e.args[0].args[1])
    return None


def _common_number(m: Match) -> Expr | None:
    e = m.node
    parts = [_term_parts(t) for t in e.args]
    magnitudes = {abs(c) for c, _, _, _ in parts}
    if len(magnitudes) == 1 and (mag := magnitudes.pop()) not in (0, 1):
        terms = [with_coefficient(c / mag, _rest(f, r, d), e.shape) for c, f, r, d in parts]
        return mul(num(mag), add_all(terms, e.shape))
    return None


def _common_scalar(m: Match) -> Expr | None:
    e = m.node
    parts = [_term_parts(t) for t in e.args]
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


def _transpose_last(m: Match) -> Expr | None:
    terms = list(m.node.args)
    for i, t in enumerate(terms):
        if t.op is Op.TRANSPOSE and t.args[0] in terms[i + 1 :]:
            j = terms.index(t.args[0], i + 1)
            terms[i], terms[j] = terms[j], terms[i]
            return add_all(terms, m.node.shape)
    return None


def _order(m: Match) -> Expr | None:
    e = m.node
    if e.args[0].op is not Op.NEG:
        return None
    first = next((i for i, t in enumerate(e.args) if t.op is not Op.NEG), None)
    if first is None:
        return None
    return add_all([e.args[first], *e.args[:first], *e.args[first + 1 :]], e.shape)


def _quotient_times_divisor(m: Match) -> Expr | None:
    a, b = m.node.args
    if a.op is Op.EDIV and a.args[1] == b:
        return a.args[0]
    if b.op is Op.EDIV and b.args[1] == a:
        return b.args[0]
    return None


def _cancel_factor(m: Match) -> Expr | None:
    x, y = m["A"].args
    return x if y == m["B"] else y


def _exponent(e: Expr) -> tuple[Expr, Fraction]:
    """A factor as (base, numeric exponent): a^p -> (a, p), a -> (a, 1)."""
    if e.op in (Op.POW, Op.EPOW) and is_number(e.args[1]):
        return e.args[0], number_value(e.args[1])
    return e, Fraction(1)


def _raise(base: Expr, p: Fraction, elementwise: bool) -> Expr:
    if p == 1:
        return base
    return epower(base, num(p)) if elementwise else power(base, num(p))


def _cancel_elementwise_power(m: Match) -> Expr | None:
    top, bottom = m.node.args
    (a, p), (b, q) = _exponent(top), _exponent(bottom)
    if a != b or a.shape != b.shape or p == q or not (top.op is Op.EPOW or bottom.op is Op.EPOW):
        return None
    if p > q:
        return _raise(a, p - q, True)
    return ediv(ONE, _raise(a, q - p, True))


def _quotient_against_divisor(m: Match) -> Expr | None:
    fs = m.node.args
    for i in range(len(fs) - 1):
        f, g = fs[i], fs[i + 1]
        if (
            f.op is Op.TRANSPOSE
            and f.args[0].op is Op.EDIV
            and f.args[0].args[1] == g
            and g.shape[1] == 1
        ):
            total = apply(Op.SUM, f.args[0].args[0])
            rest = [*fs[:i], *fs[i + 2 :]]
            return mul(total, mul_all(rest)) if rest else total
    return None


def _powers_of_one_base(m: Match) -> Expr | None:
    factors, _ = _scalar_factors(m.node)
    order: list[Expr] = []
    exponents: dict[Expr, Fraction] = {}
    for f in factors:
        base, p = _exponent(f)
        if is_number(base):
            base, p = f, Fraction(1)
        if base not in exponents:
            order.append(base)
            exponents[base] = Fraction(0)
        exponents[base] += p
    if len(order) == len(factors):
        return None
    kept = [_raise(b, exponents[b], False) for b in order if exponents[b] != 0]
    return mul_all(kept) if kept else ONE


def _cancel_power(m: Match) -> Expr | None:
    top, bottom = m.node.args
    num_factors, rest = _scalar_factors(top)
    den_factors, den_rest = _scalar_factors(bottom)
    if den_rest is not None:
        return None
    for i, f in enumerate(num_factors):
        a, p = _exponent(f)
        for j, g in enumerate(den_factors):
            b, q = _exponent(g)
            if a == b and not is_number(a) and (f.op is Op.POW or g.op is Op.POW):
                ups = [x for k, x in enumerate(num_factors) if k != i]
                downs = [x for k, x in enumerate(den_factors) if k != j]
                if p > q:
                    ups.append(_raise(a, p - q, False))
                elif q > p:
                    downs.append(_raise(a, q - p, False))
                upper = mul_all([*ups, *([rest] if rest is not None else [])])
                return div(upper, mul_all(downs)) if downs else upper
    return None


def _diag_sandwich(m: Match) -> Expr | None:
    fs = list(m["A"].args)
    left = fs.pop(0) if fs[0].op is Op.DIAGM else None
    right = fs.pop() if fs and fs[-1].op is Op.DIAGM else None
    if (left is None and right is None) or not fs:
        return None
    out = apply(Op.DIAGV, mul_all(fs))
    if left is not None:
        out = hadamard(left.args[0], out)
    if right is not None:
        out = hadamard(out, right.args[0])
    return out


# --- the table ---------------------------------------------------------------------------------
# Rule(name, identity, pattern, rewrite, kind, example): the pattern says where the identity
# applies; the example is rewritten by the tests, which check that both sides agree.

S = {"S": "symmetric"}

# fmt: off
NEUTRAL: list[Rule] = [
    # --- arithmetic and neutral elements ------------------------------------------------------
    # 2 + 3 = 5 among the terms of a sum
    Rule("sum of numbers", "2 + 3 = 5", P(Op.ADD), _sum_numbers, example="a + 2 + 3"),
    # 2*3 = 6
    Rule("product of numbers", "2*3 = 6", P(Op.SCALE, number("a"), number("b")),
         lambda m: num(number_value(m["a"]) * number_value(m["b"])), example="2*3 + a"),
    # 6/4 = 3/2
    Rule("quotient of numbers", "6/4 = 3/2",
         P(Op.DIV, number("a"), P(where=lambda e: is_number(e) and number_value(e) != 0, name="b")),
         lambda m: num(number_value(m["a"]) / number_value(m["b"])), example="6/(-4) + a"),
    # 2^3 = 8 (small integer exponents)
    Rule("power of numbers", "2^3 = 8", P(Op.POW, number("a"), number("b")), _power_of_numbers,
         example="2^3 + a"),
    # A + 0 = A
    Rule("zero term", "A + 0 = A", P(Op.ADD), _drop_zero_terms, example="a + 0"),
    # 0*A = A*0 = 0, 0.*A = 0
    Rule("zero factor", "0*A = A*0 = 0, 0.*A = 0", P(_ops(Op.MATMUL, Op.SCALE, Op.HADAMARD)),
         lambda m: zero(m.node.shape) if any(is_zero(a) for a in m.node.args) else None,
         example="0*x + x"),
    # 0/c = 0, 0./B = 0
    Rule("zero numerator", "0/c = 0, 0./B = 0", P(_ops(Op.DIV, Op.EDIV), ZERO, B),
         lambda m: zero(m.node.shape), example="0/a + b"),
    # f(0) = 0 for f linear, a norm, or a sign change
    Rule("zero operand", "-0 = 0, 0' = 0, tr(0) = 0, sum(0) = 0, norm2(0) = 0",
         one_arg(_ops(Op.NEG, Op.TRANSPOSE, Op.TR, Op.SUM, Op.DIAGM, Op.DIAGV, Op.SUMIDX,
                      Op.NORM1, Op.NORM2), ZERO),
         lambda m: zero(m.node.shape), example="-0 + a"),
    # 1*A = A
    Rule("unit factor", "1*A = A", P(Op.SCALE, ONE_P, A), lambda m: m["A"], example="1*A"),
    # a*1 = a
    Rule("times one", "a*1 = a", P(Op.SCALE, P(name="a"), ONE_P), lambda m: m["a"],
         example="b*1"),
    # A/1 = A
    Rule("over one", "A/1 = A", P(Op.DIV, A, ONE_P), lambda m: m["A"], example="A/1"),
    # A*eye = eye*A = A
    Rule("identity factor", "A*eye = eye*A = A", P(Op.MATMUL), _drop_eye, example="A*eye"),
    # A.*ones = ones.*A = A
    Rule("Hadamard by ones", "A.*ones = A",
         P(Op.HADAMARD, name="e", where=lambda e: _is_ones(e.args[0]) or _is_ones(e.args[1])),
         lambda m: m.node.args[1] if _is_ones(m.node.args[0]) else m.node.args[0],
         example="x.*ones"),
    # A./ones = A
    Rule("over ones", "A./ones = A", P(Op.EDIV, A, ALL_ONES), lambda m: m["A"],
         example="x./ones"),
    # a^1 = a, A^1 = A, A.^1 = A
    Rule("first power", "a^1 = a, A.^1 = A", P(_ops(Op.POW, Op.EPOW, Op.MPOW), A, ONE_P),
         lambda m: m["A"], example="x.^1"),
    # a^0 = 1, A.^0 = ones, A^0 = eye
    Rule("zeroth power", "a^0 = 1, A^0 = eye",
         P(_ops(Op.POW, Op.EPOW, Op.MPOW), A, P(where=lambda e: is_number(e, 0))),
         _zeroth_power, example="A^0 + B"),
    # inv(eye) = eye
    Rule("inverse of eye", "inv(eye) = eye", P(Op.INV, P(Op.EYE, name="I")), lambda m: m["I"],
         example="inv(eye) + A"),
]
"""Neutral elements and arithmetic."""

RECIPROCAL: list[Rule] = [
    # (1./A).*B = B./A
    Rule("reciprocal", "(1./A).*B = B./A",
         P(Op.HADAMARD, where=lambda e: any(a.op is Op.EDIV and _is_ones(a.args[0])
                                            for a in e.args)),
         lambda m: (ediv(m.node.args[1], m.node.args[0].args[1])
                    if m.node.args[0].op is Op.EDIV and _is_ones(m.node.args[0].args[0])
                    else ediv(m.node.args[0], m.node.args[1].args[1])),
         example="(1./x).*y"),
]
"""A reciprocal as a quotient."""

SIGNS: list[Rule] = [
    # -(-A) = A
    Rule("double negation", "-(-A) = A", P(Op.NEG, P(Op.NEG, A)), lambda m: m["A"],
         example="-(-x)"),
    # (A')' = A
    Rule("double transpose", "(A')' = A", P(Op.TRANSPOSE, P(Op.TRANSPOSE, A)), lambda m: m["A"],
         example="(A')'"),
    # a' = a for a scalar
    Rule("scalar transpose", "a' = a for a scalar a",
         P(Op.TRANSPOSE, A, where=lambda e: e.is_scalar),
         lambda m: m["A"], example="(x'*y)'"),
]
"""Double signs and scalar transposes."""

TRANSPOSES: list[Rule] = [
    # S' = S when S is symmetric by its structure
    Rule("symmetric transpose", "S' = S for symmetric S (inv(S), x*x', A + A', ...)",
         P(Op.TRANSPOSE, P(name="A", where=is_symmetric)), lambda m: m["A"], kind="calculus",
         example="inv(S)'", types=S),
    # --- transposes to the leaves -------------------------------------------------------------
    # (A*B)' = B'*A'
    Rule("transpose of a product", "(A*B)' = B'*A'", P(Op.TRANSPOSE, P(Op.MATMUL, name="A")),
         lambda m: mul_all([transpose(f) for f in reversed(m["A"].args)]), example="(A*B)'"),
    # A*A = A^2, A*A^k = A^(k + 1)
    Rule("product of powers", "A*A = A^2, A*A^k = A^(k + 1)", P(Op.MATMUL), _product_of_powers,
         example="A*A*B"),
    # (A^k)' = (A')^k
    Rule("transpose of a power", "(A^k)' = (A')^k", P(Op.TRANSPOSE, P(Op.MPOW, A, B)),
         lambda m: power(transpose(m["A"]), m["B"]), example="(A^2)'"),
    # a*a = a^2
    Rule("square", "a*a = a^2", P(Op.SCALE, P(name="a", where=lambda e: not is_number(e)),
                                  P(name="a", where=lambda e: e.is_scalar)),
         lambda m: power(m["a"], num(2)), example="b*b"),
    # x.*x = x.^2
    Rule("elementwise square", "x.*x = x.^2", P(Op.HADAMARD, A, A),
         lambda m: epower(m["A"], num(2)), example="x.*x"),
]
"""Transposes to the leaves, powers."""

TRANSPOSE_SCALARS: list[Rule] = [
    # (c*A)' = c*A'
    Rule("transpose of a scaling", "(c*A)' = c*A'", P(Op.TRANSPOSE, P(Op.SCALE, C, A)),
         lambda m: mul(m["C"], transpose(m["A"])), example="(a*A)'"),
    # (A/c)' = A'/c
    Rule("transpose of a quotient", "(A/c)' = A'/c", P(Op.TRANSPOSE, P(Op.DIV, A, C)),
         lambda m: div(transpose(m["A"]), m["C"]), example="(A/a)'"),
    # (-A)' = -A'
    Rule("transpose of a negation", "(-A)' = -A'", P(Op.TRANSPOSE, P(Op.NEG, A)),
         lambda m: neg(transpose(m["A"])), example="(-A)'"),
]
"""A transpose through scalars and signs."""

TRANSPOSE_PRODUCTS: list[Rule] = [
    # (A.*B)' = A'.*B'
    Rule("transpose of a Hadamard product", "(A.*B)' = A'.*B'",
         P(Op.TRANSPOSE, P(Op.HADAMARD, A, B)),
         lambda m: hadamard(transpose(m["A"]), transpose(m["B"])), example="(A.*B)'"),
    # sum_n(A_n)' = sum_n(A_n')
    Rule("transpose of an indexed sum", "sum_n(A_n)' = sum_n(A_n')",
         P(Op.TRANSPOSE, P(Op.SUMIDX, name="A")),
         lambda m: sumidx(m["A"].name, transpose(m["A"].args[0])), example="sum_n(A_n)'"),
]
"""A transpose through elementwise products and sums."""

NEGATION: list[Rule] = [
    # --- negations and scalars outwards -------------------------------------------------------
    # (-A)*B = A*(-B) = -(A*B), and likewise for c*A, A/c, A.*B, A./B
    Rule("negation out of a product", "(-A)*B = A*(-B) = -(A*B)", P(PRODUCTS),
         _negation_out_of_product, example="(-A)*B"),
    # tr(-A) = -tr(A), sum(-A) = -sum(A), diag(-A) = -diag(A), sum_n(-A_n) = -sum_n(A_n)
    Rule("negation out of a linear map", "tr(-A) = -tr(A)", one_arg(LINEAR, P(Op.NEG, A)),
         lambda m: neg(rebuild(m.node, [m["A"]])), example="tr(-A)"),
    # inv(-A) = -inv(A)
    Rule("inverse of a negation", "inv(-A) = -inv(A)", P(Op.INV, P(Op.NEG, A)),
         lambda m: neg(apply(Op.INV, m["A"])), example="inv(-A)"),
]
"""Negations outwards."""

SCALAR_ORDER: list[Rule] = [
    # a*(b*A) = (a*b)*A, written a*b*A
    Rule("scalars together", "a*(b*A) = (a*b)*A, written a*b*A", P(Op.SCALE, C, P(Op.SCALE, B, A)),
         lambda m: mul(mul(m["C"], m["B"]), m["A"]), example="a*(b*A)"),
    # a*2 = 2*a
    Rule("number first", "a*2 = 2*a", P(Op.SCALE, P(name="a", where=lambda e: not is_number(e)),
                                        P(name="b", where=lambda e: e.is_scalar and is_number(e))),
         lambda m: mul(m["b"], m["a"]), example="a*2"),
    # f(A)*b = b*f(A): a name or a size before a function's value, as a textbook writes it
    Rule("name before a function", "f(A)*b = b*f(A) for a scalar name or size b",
         P(Op.SCALE, P(frozenset({Op.EXP, Op.LOG, Op.DET, Op.LOGDET, Op.TR, Op.SUM, Op.SQRT,
                                  Op.NORM1, Op.NORM2}), name="f"),
           P(frozenset({Op.VAR, Op.ROWS, Op.DIM}), name="b", where=lambda e: e.is_scalar)),
         lambda m: mul(m["b"], m["f"]), example="exp(a*b)*b"),
    # A/2 = 1/2*A
    Rule("division by a number", "A/2 = 1/2*A",
         P(Op.DIV, A, P(name="c", where=lambda e: is_number(e) and number_value(e) != 0)),
         lambda m: mul(num(1 / number_value(m["c"])), m["A"]), example="A/2"),
]
"""Scalars together, numbers first."""

MERGE: list[Rule] = [
    # sum_n(A_n) + sum_n(B_n) = sum_n(A_n + B_n)
    Rule("merge sums", "sum_n(A_n) + sum_n(B_n) = sum_n(A_n + B_n)", P(Op.ADD), _merge_sums,
         example="sum_n(x_n) + sum_n(y_n)"),
]
"""Sums over one index merged."""

OUTWARDS: list[Rule] = [
    # diag(x*y') = x.*y
    Rule("diag of an outer product", "diag(x*y') = x.*y", P(Op.DIAGV, P(Op.MATMUL, name="A")),
         _diag_outer, example="diag(x*y')"),
    # tr(c*A) = c*tr(A), sum(c*A) = c*sum(A), diag(c*A) = c*diag(A)
    Rule("scalar out of a linear map", "tr(c*A) = c*tr(A)",
         one_arg(_ops(Op.TR, Op.SUM, Op.DIAGM, Op.DIAGV), P(Op.SCALE, C, A)),
         lambda m: mul(m["C"], rebuild(m.node, [m["A"]])), example="tr(a*A)"),
    # (c*A).*B = A.*(c*B) = c*(A.*B)
    Rule("scalar out of a Hadamard product", "(c*A).*B = A.*(c*B) = c*(A.*B)",
         P(Op.HADAMARD, where=lambda e: any(a.op is Op.SCALE for a in e.args)),
         lambda m: (mul(m.node.args[0].args[0], hadamard(m.node.args[0].args[1], m.node.args[1]))
                    if m.node.args[0].op is Op.SCALE
                    else mul(m.node.args[1].args[0],
                             hadamard(m.node.args[0], m.node.args[1].args[1]))),
         example="(a*x).*y"),
    # (c*A)./B = c*(A./B)
    Rule("scalar out of an elementwise quotient", "(c*A)./B = c*(A./B)",
         P(Op.EDIV, P(Op.SCALE, C, A), B), lambda m: mul(m["C"], ediv(m["A"], m["B"])),
         example="(a*x)./y"),
    # sum_n(c*A_n) = c*sum_n(A_n) for c free of n
    Rule("scalar out of an indexed sum", "sum_n(c*A_n) = c*sum_n(A_n) for c free of n",
         P(Op.SUMIDX, P(Op.SCALE)), _scalar_out_of_sum, example="sum_n(a*x_n)"),
    # sum_n(c_n*A) = sum_n(c_n)*A for A free of n
    Rule("matrix out of an indexed sum", "sum_n(c_n*A) = sum_n(c_n)*A for A free of n",
         P(Op.SUMIDX, P(Op.SCALE)), _matrix_out_of_sum, example="sum_n(a_n*x)"),
    # A*(B/c) = (A*B)/c
    Rule("division out of a product", "A*(B/c) = (A*B)/c", P(Op.MATMUL), _division_out_of_matmul,
         example="A*(B/a)"),
    # a*(B/c) = (a*B)/c
    Rule("division out of a scaling", "a*(B/c) = (a*B)/c", P(Op.SCALE, C, P(Op.DIV, A, B)),
         lambda m: div(mul(m["C"], m["A"]), m["B"]), example="a*(B/b)"),
    # (a/c)*B = (a*B)/c
    Rule("scaling by a quotient", "(a/c)*B = (a*B)/c", P(Op.SCALE, P(Op.DIV, A, C), B),
         lambda m: div(mul(m["A"], m["B"]), m["C"]), example="(a/b)*B"),
    # (a/b)/c = a/(b*c)
    Rule("quotient of a quotient", "(a/b)/c = a/(b*c)", P(Op.DIV, P(Op.DIV, A, B), C),
         lambda m: div(m["A"], mul(m["B"], m["C"])), example="(A/a)/b"),
    # a/(b/c) = a*c/b
    Rule("division by a quotient", "a/(b/c) = a*c/b", P(Op.DIV, A, P(Op.DIV, B, C)),
         lambda m: div(mul(m["A"], m["C"]), m["B"]), example="A/(a/b)"),
    # (A/c).*B = A.*(B/c) = (A.*B)/c
    Rule("division out of a Hadamard product", "(A/c).*B = (A.*B)/c",
         P(Op.HADAMARD, where=lambda e: any(a.op is Op.DIV for a in e.args)),
         lambda m: (div(hadamard(m.node.args[0].args[0], m.node.args[1]), m.node.args[0].args[1])
                    if m.node.args[0].op is Op.DIV
                    else div(hadamard(m.node.args[0], m.node.args[1].args[0]),
                             m.node.args[1].args[1])),
         example="(x/a).*y"),
    # tr(A/c) = tr(A)/c, and for sum, diag and sum_n (c free of n)
    Rule("division out of a linear map", "tr(A/c) = tr(A)/c", one_arg(LINEAR, P(Op.DIV, name="A")),
         _division_out_of_map, example="tr(A/a)"),
    # sign(a)*a = a*sign(a) = abs(a)
    Rule("sign times value", "sign(a)*a = abs(a) for a scalar a",
         P(Op.SCALE, where=lambda e: e.args[1].is_scalar and (
             (e.args[0].op is Op.SIGN and e.args[0].args[0] == e.args[1])
             or (e.args[1].op is Op.SIGN and e.args[1].args[0] == e.args[0]))),
         lambda m: apply(Op.ABS, m.node.args[1] if m.node.args[0].op is Op.SIGN
                         else m.node.args[0]),
         example="sign(a)*a"),
    # u*A/u = A, a/a = 1
    Rule("cancel", "u*A/u = A, a/a = 1", P(Op.DIV), _cancel, example="a*A/a"),
    # --- inverses, traces, sums ---------------------------------------------------------------
    # inv(inv(A)) = A
    Rule("inverse of an inverse", "inv(inv(A)) = A", P(Op.INV, P(Op.INV, A)), lambda m: m["A"],
         example="inv(inv(A))"),
    # inv(c*A) = inv(A)/c
    Rule("inverse of a scaling", "inv(c*A) = inv(A)/c", P(Op.INV, P(Op.SCALE, C, A)),
         lambda m: div(apply(Op.INV, m["A"]), m["C"]), example="inv(a*A)"),
    # inv(diag(v)) = diag(1./v)
    Rule("inverse of a diagonal", "inv(diag(v)) = diag(1./v)", P(Op.INV, P(Op.DIAGM, A)),
         lambda m: apply(Op.DIAGM, ediv(ONE, m["A"])), example="inv(diag(x))"),
    # diag(diag(v)) = v
    Rule("diagonal of a diagonal matrix", "diag(diag(v)) = v", P(Op.DIAGV, P(Op.DIAGM, A)),
         lambda m: m["A"], example="diag(diag(x))"),
    # A*inv(A) = inv(A)*A = eye
    Rule("inverse pair", "A*inv(A) = inv(A)*A = eye", P(Op.MATMUL), _inverse_pair,
         example="A*inv(A)*B"),
    # tr(a) = a for a scalar
    Rule("trace of a scalar", "tr(a) = a for a scalar a",
         P(Op.TR, P(name="A", where=lambda e: e.is_scalar)),
         lambda m: m["A"], example="tr(x'*y)"),
    # tr(x*y') = y'*x, the trace of an outer product
    Rule("trace of an outer product", "tr(x*y') = y'*x", P(Op.TR, P(Op.MATMUL, name="A")),
         _trace_of_outer, kind="calculus", example="tr(x*y')"),
    # tr(eye) = D for a named dimension D
    Rule("trace of the identity", "tr(eye) = D, the dimension",
         P(Op.TR, P(Op.EYE, where=lambda e: _named(e.shape[0]), name="I")),
         lambda m: dim(m["I"].shape[0]), example="tr(eye) + tr(A)"),
    # tr(eye) = rows(X) for the size of a variable X of the expression
    Rule("trace of the identity as a size", "tr(eye) = rows(X) for eye of the size of X",
         P(Op.TR, P(Op.EYE, name="I")), lambda m: _size_of(m, m["I"].shape[0]),
         example=""),
    # sum(ones) = D
    Rule("sum of ones", "sum(ones) = D, the dimension",
         P(Op.SUM, P(Op.ONES, where=lambda e: _named(e.shape[0]), name="I")),
         lambda m: dim(m["I"].shape[0]), example="sum(ones) + sum(x)"),
    # sum_n(c) = N*c for c free of n
    Rule("sum of a constant", "sum_n(c) = N*c for c free of n",
         P(Op.SUMIDX, where=lambda e: _index_free(e.args[0], e.name)),
         lambda m: mul(dim(m.node.name.upper()), m.node.args[0]), example="sum_n(a)"),
    # --- textbook forms: inverses of functions, elementwise cancellation, powers -------------
    # exp(log(A)) = A (where log is defined)
    Rule("exp of a log", "exp(log(A)) = A", P(Op.EXP, P(Op.LOG, A)), lambda m: m["A"],
         example="sum(exp(log(x)))"),
    # log(exp(A)) = A
    Rule("log of an exp", "log(exp(A)) = A", P(Op.LOG, P(Op.EXP, A)), lambda m: m["A"],
         example="sum(log(exp(x)))"),
    # A./A = ones
    Rule("elementwise cancel", "A./A = 1", P(Op.EDIV, A, A),
         lambda m: broadcast(ONE, m.node.shape), example="x./x + y"),
    # (A./B).*B = B.*(A./B) = A
    Rule("quotient times its divisor", "(A./B).*B = A",
         P(Op.HADAMARD, where=lambda e: any(
             a.op is Op.EDIV and a.args[1] == b for a, b in (e.args, e.args[::-1]))),
         _quotient_times_divisor, example="(x./y).*y"),
    # (A.*B)./A = B, (A.*B)./B = A
    Rule("elementwise cancel a factor", "(A.*B)./B = A",
         P(Op.EDIV, P(Op.HADAMARD, name="A"), B,
           where=lambda e: e.args[1] in e.args[0].args), _cancel_factor,
         example="(x.*y)./y"),
    # A./(B./C) = (A.*C)./B
    Rule("elementwise quotient by a quotient", "A./(B./C) = (A.*C)./B",
         P(Op.EDIV, A, P(Op.EDIV, B, C)),
         lambda m: ediv(hadamard(m["A"], m["C"]), m["B"]), example="x./(y./z)"),
    # (A./B)./C = A./(B.*C)
    Rule("quotient of an elementwise quotient", "(A./B)./C = A./(B.*C)",
         P(Op.EDIV, P(Op.EDIV, A, B), C),
         lambda m: ediv(m["A"], hadamard(m["B"], m["C"])), example="(x./y)./z"),
    # A./(B/c) = c*(A./B)
    Rule("elementwise quotient by a scaled quotient", "A./(B/c) = c*(A./B)",
         P(Op.EDIV, A, P(Op.DIV, B, C)), lambda m: mul(m["C"], ediv(m["A"], m["B"])),
         example="x./(y/a)"),
    # A./A.^p = 1./A.^(p - 1), A.^p./A = A.^(p - 1)
    Rule("cancel an elementwise power", "A./A.^p = 1./A.^(p - 1)", P(Op.EDIV),
         _cancel_elementwise_power, example="x./x.^3"),
    # (a./b)'*b = sum(a): sum_i (a_i/b_i)*b_i
    Rule("quotient against its divisor", "(a./b)'*b = sum(a)", P(Op.MATMUL),
         _quotient_against_divisor, example="(x./y)'*y"),
    # a^p*a^q = a^(p + q) in a product of scalars (det(X)^(-2/3)*det(X) = det(X)^(1/3))
    Rule("powers of one base", "a^p*a^q = a^(p + q), a^p*a = a^(p + 1)",
         P(Op.SCALE, where=lambda e: e.is_scalar), _powers_of_one_base,
         example="b^2*(a*b^3)"),
    # a^p/a^q = a^(p - q)
    Rule("cancel a power", "a^p/a^q = a^(p - q), a/a^2 = 1/a", P(Op.DIV), _cancel_power,
         example="a*b/b^3"),
    # diag(diag(u)*B*diag(v)) = u.*diag(B).*v
    Rule("diagonal of a diagonal sandwich", "diag(diag(u)*B*diag(v)) = u.*diag(B).*v",
         P(Op.DIAGV, P(Op.MATMUL, name="A")), _diag_sandwich, kind="calculus",
         example="diag(diag(x)*A*diag(y))"),
]
"""Scalars and divisions outwards, inverses, traces, sizes, cancellation."""

LIKE: list[Rule] = [
    # --- collecting and factoring -------------------------------------------------------------
    # A + A = 2*A, 3*A - A = 2*A, A - A = 0
    Rule("like terms", "A + A = 2*A, 3*A - A = 2*A, A - A = 0", P(Op.ADD), _like_terms,
         example="3*A - A + B"),
]
"""Like terms."""

FACTORING: list[Rule] = [
    # A*x + B*x = (A + B)*x
    Rule("common right factor", "A*x + B*x = (A + B)*x", P(Op.ADD),
         lambda m: _factor(m.node, right=True), example="A*x + B*x"),
    # x'*A + x'*B = x'*(A + B)
    Rule("common left factor", "x'*A + x'*B = x'*(A + B)", P(Op.ADD),
         lambda m: _factor(m.node, right=False), example="x'*A + x'*B"),
    # a/c + b/c = (a + b)/c
    Rule("common denominator", "a/c + b/c = (a + b)/c", P(Op.ADD), _common_denominator,
         example="A/a + B/a"),
    # 2*A + 2*B = 2*(A + B), 1/2*A - 1/2*B = 1/2*(A - B)
    Rule("common number", "1/2*A - 1/2*B = 1/2*(A - B)", P(Op.ADD), _common_number,
         example="1/2*A - 1/2*B"),
    # c*A + c*B = c*(A + B)
    Rule("common scalar factor", "c*A + c*B = c*(A + B)", P(Op.ADD), _common_scalar,
         example="a*A + a*B"),
]
"""Common factors."""

ORDER: list[Rule] = [
    # A' + A = A + A': a matrix before its transpose, as a textbook writes a symmetric part
    Rule("transpose last", "A' + A = A + A'", P(Op.ADD), _transpose_last, example="A' + A"),
    # -A + B = B - A
    Rule("order of terms", "-A + B = B - A", P(Op.ADD), _order, example="-A + B"),
]
"""The order of terms."""

RULES: list[Rule] = [
    *NEUTRAL,
    *RECIPROCAL,
    *SIGNS,
    *TRANSPOSES,
    *TRANSPOSE_SCALARS,
    *TRANSPOSE_PRODUCTS,
    *NEGATION,
    *SCALAR_ORDER,
    *MERGE,
    *OUTWARDS,
    *LIKE,
    *FACTORING,
    *ORDER,
]
# fmt: on
"""The simplification rules, in the order they are tried."""

TIDY_RULES: list[Rule] = [*NEUTRAL, *SIGNS, *TRANSPOSE_SCALARS, *NEGATION, *SCALAR_ORDER]
"""The few rules that tidy intermediate lines of a derivation without changing their form."""

FACTORING_RULES: list[Rule] = [*MERGE, *FACTORING]
"""The rules that factor (the equation solver leaves them out: they would undo its expansion)."""


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


def _rest(factors: Sequence[Expr], matrix: Expr | None, den: Expr | None = None) -> Expr | None:
    items = [*factors, *([matrix] if matrix is not None else [])]
    if den is not None:
        return div(mul_all(items), den)
    return mul_all(items) if items else None
