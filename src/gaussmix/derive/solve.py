"""Solving stationary equations that are affine in the unknown or in its inverse.

A stationary equation ``G = 0`` of an M-step has the form ``c*U + B = 0`` once it is expanded,
where U is the parameter itself (a mean), or its inverse (``inv(Lambda)``, ``1./tau``, ``1/pi``):
the precision appears in the surrogate through log det and linearly, so its gradient is affine
in the covariance. The solver brings the equation to that form and solves it with named rules,
recorded like every other step:

* cancel a factor that cannot be zero (``1/2``, a positive scalar, a positive definite matrix),
  first taking it out of the sum over data points when it does not depend on the index;
* expand: split sums of sums, distribute the factor that multiplies the unknown;
* use the facts of the problem: the responsibilities of a data point sum to one
  (``sum_k(q_kn) = 1``), and abbreviations (``N_k = sum_n(q_kn)``);
* isolate ``c*U`` (move the other terms across), divide by the nonzero scalar ``c``;
* invert when U is the inverse of the parameter.

Facts the solver may use (which scalars are nonzero, which matrices are invertible, which
identities hold) come from the parameter structure; it never assumes one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gaussmix.calculus.errors import CalculusError
from gaussmix.calculus.expr import (
    ONE,
    Expr,
    Kind,
    Op,
    add_all,
    div,
    ediv,
    equation,
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
    substitute,
    sumidx,
    transpose,
    zero,
)
from gaussmix.calculus.ops import apply, rebuild
from gaussmix.calculus.printing import to_text
from gaussmix.calculus.rewrite import Match, P, Rule, Step, rewrite
from gaussmix.calculus.rules.simplify import FACTORING_RULES, RULES, TIDY_RULES

__all__ = [
    "SOLVE_RULES",
    "Context",
    "Facts",
    "Identity",
    "Solver",
    "expand_rules",
    "replace_all",
]


@dataclass(frozen=True)
class Identity:
    """A fact ``lhs = rhs`` of the problem, with the name it goes by in the derivation."""

    name: str
    lhs: Expr
    rhs: Expr

    @property
    def text(self) -> str:
        return f"{to_text(self.lhs)} = {to_text(self.rhs)}"


@dataclass
class Facts:
    """What the solver may assume: nonzero scalars, invertible matrices, identities, definitions.

    Attributes
    ----------
    nonzero : set of Expr
        Scalars known to be nonzero (positive parameters, counts).
    positive_vectors : set of Expr
        Vectors with positive entries (so that ``diag(v)`` is invertible).
    identities : list of Identity
        Facts used left to right (``sum_k(q_kn) = 1``).
    definitions : list of Identity
        Abbreviations, used right to left (``N_k = sum_n(q_kn)`` replaces ``sum_n(q_kn)``).
    assume : bool
        Whether a factor the solver must cancel or divide by, and cannot show to be nonzero
        (or invertible), may be assumed so; each assumption is recorded in ``assumed`` and
        said where it is used. A student's model states no facts: its counts and sums of
        squares are nonzero for data in general position, which the derivation then says.
    assumed : list of str
        The assumptions made, in the order made (``sum_n(q_kn*x_n) != 0``).
    """

    nonzero: set[Expr] = field(default_factory=set)
    positive_vectors: set[Expr] = field(default_factory=set)
    identities: list[Identity] = field(default_factory=list)
    definitions: list[Identity] = field(default_factory=list)
    assume: bool = False
    assumed: list[str] = field(default_factory=list)

    def nonzero_or_assumed(self, e: Expr) -> bool:
        """Whether the scalar ``e`` is nonzero, known or (when allowed) assumed and recorded."""
        if self.is_nonzero(e):
            return True
        if not self.assume or not e.is_scalar or is_number(e):
            return False
        self._assume(f"{to_text(e)} != 0")
        return True

    def invertible_or_assumed(self, e: Expr) -> bool:
        """Whether the square matrix ``e`` is invertible, known or (when allowed) assumed."""
        if e.is_scalar:
            return self.nonzero_or_assumed(e)
        if self.is_invertible(e):
            return True
        if not self.assume or not e.is_square:
            return False
        self._assume(f"{to_text(e)} is invertible")
        return True

    def _assume(self, text: str) -> None:
        if text not in self.assumed:
            self.assumed.append(text)

    def is_nonzero(self, e: Expr) -> bool:
        """Whether the scalar ``e`` is known to be nonzero."""
        if is_number(e):
            return number_value(e) != 0
        if e in self.nonzero or e.op is Op.DIM:
            return True
        if e.op is Op.VAR:
            return e.kind is Kind.POSITIVE
        if e.op in (Op.SCALE, Op.DIV):
            return all(self.is_nonzero(a) for a in e.args)
        if e.op in (Op.NEG, Op.EXP):
            return e.op is Op.EXP or self.is_nonzero(e.args[0])
        if e.op is Op.POW:
            return self.is_nonzero(e.args[0])
        return False

    def why(self, e: Expr) -> str:
        """Why a factor cannot be zero (or is invertible), in a few words."""
        text = to_text(e)
        for assumption in (f"{text} != 0", f"{text} is invertible"):
            if assumption in self.assumed:
                return f"assuming {assumption}"
        if is_number(e) or e.op is Op.DIM:
            return f"{text} != 0"
        if e.op is Op.VAR and e.kind is Kind.SPD:
            return f"{text} is positive definite"
        if e.op is Op.DIAGM:
            return f"{to_text(e.args[0])} has positive entries"
        if e in self.nonzero or (e.op is Op.VAR and e.kind is Kind.POSITIVE):
            return f"{text} > 0"
        return f"{text} is invertible"

    def is_invertible(self, e: Expr) -> bool:
        """Whether the square matrix ``e`` is known to be invertible."""
        if e.is_scalar:
            return self.is_nonzero(e)
        if e.op is Op.VAR:
            return e.kind is Kind.SPD
        if e.op is Op.EYE:
            return True
        if e.op is Op.DIAGM:
            return e.args[0] in self.positive_vectors
        if e.op in (Op.INV, Op.TRANSPOSE):
            return self.is_invertible(e.args[0])
        if e.op is Op.SCALE:
            return self.is_nonzero(e.args[0]) and self.is_invertible(e.args[1])
        if e.op is Op.MATMUL:
            return all(f.is_square and self.is_invertible(f) for f in e.args)
        return False


# ---------------------------------------------------------------------------------------------
# The rules: each a Rule on an equation (or on a node inside one); the context is the unknown and
# the facts of the problem
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What the solver's rules may use: the facts, the unknown, a variable to substitute."""

    facts: Facts
    unknown: Expr
    replace: tuple[Expr, Expr] | None = None


ZERO_P = P(where=is_zero)


def _split_sum(e: Expr) -> Expr | None:
    # sum_n(A_n + B_n) = sum_n(A_n) + sum_n(B_n)
    body = e.args[0]
    if body.op is Op.ADD:
        return add_all([sumidx(e.name, t) for t in body.args], e.shape)
    if body.op is Op.NEG and body.args[0].op is Op.ADD:
        return add_all([sumidx(e.name, neg(t)) for t in body.args[0].args], e.shape)
    return None


def _distribute(e: Expr) -> Expr | None:
    # c*(A + B) = c*A + c*B, M*(A + B) = M*A + M*B
    if e.op is Op.SCALE and e.args[1].op is Op.ADD:
        c, s = e.args
        return add_all([mul(c, t) for t in s.args], e.shape)
    if e.op is Op.SCALE and e.args[0].op is Op.ADD and not e.args[1].is_scalar:
        # (a + b)*M = a*M + b*M
        s, m = e.args
        return add_all([mul(t, m) for t in s.args], e.shape)
    if e.op is Op.MATMUL and e.args[-1].op is Op.ADD:
        head = mul_all(e.args[:-1])
        return add_all([mul(head, t) for t in e.args[-1].args], e.shape)
    if e.op is Op.NEG and e.args[0].op is Op.ADD:
        return add_all([neg(t) for t in e.args[0].args], e.shape)
    return None


def _stationary(m: Match) -> Expr | None:
    return None if m.node.op is Op.EQ else equation(m.node, zero(m.node.shape))


def _cancel_nonzero(m: Match) -> Expr | None:
    ctx: Context = m.ctx
    c = m["c"]
    if c.depends_on(ctx.unknown) or not ctx.facts.nonzero_or_assumed(c):
        return None
    m.note = ctx.facts.why(c)
    return equation(m["A"], m.node.args[1])


def _cancel_divisor(m: Match) -> Expr | None:
    ctx: Context = m.ctx
    c = m["c"]
    if ctx.facts.is_nonzero(c):
        m.note = ctx.facts.why(c)
    elif ctx.facts.assume:  # a divisor is nonzero wherever the equation is defined
        m.note = f"{to_text(c)} divides, so it is nonzero"
    else:
        return None
    return equation(m["A"], m.node.args[1])


def _cancel_invertible(m: Match) -> Expr | None:
    ctx: Context = m.ctx
    head = m["A"].args[0]
    if (
        not head.is_square
        or head.depends_on(ctx.unknown)
        or not ctx.facts.invertible_or_assumed(head)
    ):
        return None
    m.note = ctx.facts.why(head)
    return equation(mul_all(m["A"].args[1:]), m.node.args[1])


def _factor_out(m: Match) -> Expr | None:
    pulled = _factor_out_of_sum(m["A"])
    return None if pulled is None else equation(pulled, m.node.args[1])


def _split(m: Match) -> Expr | None:
    return _split_sum(m.node) if m.node.args[0].depends_on(m.ctx.unknown) else None


def _distribute_over(m: Match) -> Expr | None:
    e = m.node
    inner = e.args[-1] if e.op is not Op.NEG else e.args[0]
    if e.op is Op.SCALE and e.args[0].op is Op.ADD and not e.args[1].is_scalar:
        inner = e.args[0]
    return _distribute(e) if inner.depends_on(m.ctx.unknown) else None


def _replace_by(m: Match, facts: list[Identity], forward: bool) -> Expr | None:
    """The other side of the first fact one side of which is the node (lhs -> rhs forward)."""
    for fact in facts:
        this, other = (fact.lhs, fact.rhs) if forward else (fact.rhs, fact.lhs)
        if m.node == this and m.node.shape == this.shape:
            m.note = f"{fact.name}: {fact.text}"
            return other
    return None


def _use_identity(m: Match) -> Expr | None:
    return _replace_by(m, m.ctx.facts.identities, forward=True)


def _abbreviate(m: Match) -> Expr | None:
    return _replace_by(m, m.ctx.facts.definitions, forward=False)


def _write_out(m: Match) -> Expr | None:
    for definition in m.ctx.facts.definitions:
        e = m.node
        if e.name in definition.lhs.indices and e.args[0].depends_on(definition.lhs):
            m.note = f"{definition.name}: {definition.text}, written out"
            return sumidx(e.name, substitute(e.args[0], definition.lhs, definition.rhs))
    return None


def _swap(m: Match) -> Expr | None:
    e = m.node
    inner = sumidx(e.name, e.args[0].args[0])
    if any(inner == fact.lhs for fact in m.ctx.facts.identities):
        return sumidx(e.args[0].name, inner)
    return None


def _terms_in(eq: Expr, unknown: Expr) -> tuple[list[tuple[Expr, Expr]], list[Expr]]:
    lhs = eq.args[0]
    with_u: list[tuple[Expr, Expr]] = []
    others: list[Expr] = []
    for t in lhs.args if lhs.op is Op.ADD else (lhs,):
        found = _coefficient(t, unknown)
        if found is None:
            others.append(t)
        else:
            with_u.append(found)
    return with_u, others


def _isolate(m: Match) -> Expr | None:
    eq, unknown = m.node, m.ctx.unknown
    with_u, others = _terms_in(eq, unknown)
    lhs, rhs = eq.args
    if len({u for _, u in with_u}) != 1 or not (others or not is_zero(rhs)):
        return None
    u = with_u[0][1]
    coeff = _sum_coefficients([c for c, _ in with_u], u)
    sign = 1
    if coeff.op is Op.NEG:  # -c*U + B = R is written c*U = B - R
        coeff, sign = coeff.args[0], -1
    elif coeff.op is Op.ADD and all(t.op is Op.NEG for t in coeff.args):
        coeff, sign = add_all([t.args[0] for t in coeff.args], coeff.shape), -1
    moved_terms = [*([] if is_zero(rhs) else [rhs]), *[neg(t) for t in others]]
    if sign < 0:
        moved_terms = [neg(t) for t in moved_terms]
    moved = rewrite(add_all(moved_terms, lhs.shape), TIDY_RULES, record=False)[0]
    return equation(_times(coeff, u), moved)


def _single_term(m: Match) -> tuple[Expr, Expr] | None:
    """(C, U) when the equation is C*U = B, one term in the unknown and no other on the left."""
    with_u, others = _terms_in(m.node, m.ctx.unknown)
    if len(with_u) != 1 or others:
        return None
    return _sum_coefficients([with_u[0][0]], with_u[0][1]), with_u[0][1]


def _divide(m: Match) -> Expr | None:
    found = _single_term(m)
    if found is None:
        return None
    coeff, u = found
    if not coeff.is_scalar or is_number(coeff, 1) or not m.ctx.facts.nonzero_or_assumed(coeff):
        return None
    return equation(u, div(m.node.args[1], coeff))


def _solve_linear(m: Match) -> Expr | None:
    found = _single_term(m)
    if found is None:
        return None
    coeff, u = found
    if coeff.is_scalar or not m.ctx.facts.invertible_or_assumed(coeff):
        return None
    m.note = m.ctx.facts.why(coeff)
    return equation(u, mul(apply(Op.INV, coeff), m.node.args[1]))


def _power_below(t: Expr, u: Expr) -> int | None:
    """p when the term t is c/u^p (signs and factors free of u aside); 0 when t is free of u;
    None otherwise."""
    if not t.depends_on(u):
        return 0
    if t.op is Op.NEG:
        return _power_below(t.args[0], u)
    if t.op is Op.SCALE and not t.args[0].depends_on(u):
        return _power_below(t.args[1], u)
    if t.op is Op.DIV and not t.args[0].depends_on(u):
        bottom = t.args[1]
        if bottom == u:
            return 1
        if bottom.op is Op.POW and bottom.args[0] == u and is_number(bottom.args[1]):
            p = number_value(bottom.args[1])
            return int(p) if p.denominator == 1 and p > 0 else None
    return None


def _clear(m: Match) -> Expr | None:
    eq, u = m.node, m.ctx.unknown
    if not u.is_scalar or not is_zero(eq.args[1]):
        return None
    lhs = eq.args[0]
    terms = lhs.args if lhs.op is Op.ADD else (lhs,)
    powers = [_power_below(t, u) for t in terms]
    if any(p is None for p in powers):
        return None
    top = max(p for p in powers if p is not None)
    if top < 2:  # c/u + B = 0 is affine in 1/u already
        return None
    m.note = f"{to_text(u)} divides, so it is nonzero"
    factor = power(u, num(top))
    return equation(add_all([mul(factor, t) for t in terms], lhs.shape), eq.args[1])


def _invert(m: Match) -> Expr | None:
    u, rhs = m.node.args
    unknown = m.ctx.unknown
    if u.op is Op.INV and u.args[0] == unknown:
        return equation(unknown, apply(Op.INV, rhs))
    if u.op is Op.EDIV and u.args[1] == unknown:
        return equation(unknown, ediv(ONE, rhs))
    if u.op is Op.DIV and u.args[1] == unknown and is_number(u.args[0], 1):
        return equation(unknown, div(ONE, rhs))
    return None


def replace_all(e: Expr, old: Expr, new: Expr) -> Expr:
    """``e`` with the variable (or subexpression) ``old`` replaced by ``new`` everywhere."""
    if old.op is Op.VAR:
        return substitute(e, old, new)
    if e == old and e.shape == old.shape:
        return new
    if not e.args:
        return e
    args = [replace_all(a, old, new) for a in e.args]
    if all(a is b for a, b in zip(args, e.args, strict=True)):
        return e
    return rebuild(e, args)


def _substitute(m: Match) -> Expr | None:
    if m.ctx.replace is None:
        return None
    old, new = m.ctx.replace
    out = replace_all(m.node, old, new)
    return None if out is m.node else out


A, C = P(name="A"), P(name="c")

STATIONARY = Rule(
    "stationary point",
    "a maximum of a smooth function has gradient 0",
    P(),
    _stationary,
    kind="calculus",
)
CANCEL: list[Rule] = [
    # c*A = 0 with c != 0 gives A = 0
    Rule(
        "cancel a nonzero factor",
        "c*A = 0 with c != 0 gives A = 0",
        P(Op.EQ, P(Op.SCALE, C, A), ZERO_P),
        _cancel_nonzero,
    ),
    # A/c = 0 with c != 0 gives A = 0
    Rule(
        "cancel a nonzero divisor",
        "A/c = 0 with c != 0 gives A = 0",
        P(Op.EQ, P(Op.DIV, A, C), ZERO_P),
        _cancel_divisor,
    ),
    # M*A = 0 with M invertible gives A = 0
    Rule(
        "cancel an invertible factor",
        "M*A = 0 with M invertible gives A = 0",
        P(Op.EQ, P(Op.MATMUL, name="A"), ZERO_P),
        _cancel_invertible,
        kind="calculus",
    ),
    # sum_n(M*A_n) = M*sum_n(A_n) for M free of n
    Rule(
        "factor out of the sum",
        "sum_n(M*A_n) = M*sum_n(A_n) for M free of n",
        P(Op.EQ, A, ZERO_P),
        _factor_out,
    ),
]
"""Nonzero and invertible factors taken off ``lhs = 0``."""

EXPAND: list[Rule] = [
    # sum_n(A_n + B_n) = sum_n(A_n) + sum_n(B_n), where the terms hold the unknown
    Rule("split the sum", "sum_n(A_n + B_n) = sum_n(A_n) + sum_n(B_n)", P(Op.SUMIDX), _split),
    # c*(A + B) = c*A + c*B, where the sum holds the unknown
    Rule(
        "expand the product",
        "c*(A + B) = c*A + c*B",
        P(frozenset({Op.SCALE, Op.MATMUL, Op.NEG})),
        _distribute_over,
    ),
]
"""The sums and products that contain the unknown, taken apart."""

FACTS: list[Rule] = [
    # a fact of the problem, left to right (sum_k(q_kn) = 1)
    Rule("identity", "a fact of the problem", P(), _use_identity, kind="calculus"),
]
ABBREVIATE = Rule(
    "abbreviate",
    "write the definition's name for its expression",
    P(),
    _abbreviate,
    kind="calculus",
)
COUNT: list[Rule] = [
    # sum_k(N_k) = sum_k(sum_n(q_kn)): an abbreviation summed over its own index
    Rule(
        "write out",
        "write the definition out where it is summed over its own index",
        P(Op.SUMIDX),
        _write_out,
    ),
    # sum_k(sum_n(A)) = sum_n(sum_k(A)), towards a fact of the problem
    Rule("swap sums", "sum_k(sum_n(A)) = sum_n(sum_k(A))", P(Op.SUMIDX, P(Op.SUMIDX)), _swap),
]
ISOLATE = Rule("isolate", "c*U + B = 0 gives c*U = -B", P(Op.EQ), _isolate)
DIVIDE = Rule("divide", "c*U = B with c != 0 gives U = B/c", P(Op.EQ), _divide)
LINEAR = Rule(
    "solve the linear system",
    "A*U = B with A invertible gives U = inv(A)*B",
    P(Op.EQ),
    _solve_linear,
    kind="calculus",
)
CLEAR = Rule(
    "clear the denominators",
    "A/u^2 + B/u = 0 with u != 0 gives A + B*u = 0",
    P(Op.EQ),
    _clear,
)
INVERT = Rule(
    "invert",
    "inv(A) = B gives A = inv(B); 1/a = b gives a = 1/b",
    P(Op.EQ),
    _invert,
    kind="calculus",
)
SUBSTITUTE = Rule(
    "substitute", "replace a symbol by what it stands for", P(), _substitute, kind="calculus"
)

SOLVE_RULES: list[Rule] = [
    STATIONARY,
    *CANCEL,
    *EXPAND,
    *FACTS,
    ABBREVIATE,
    *COUNT,
    ISOLATE,
    DIVIDE,
    LINEAR,
    INVERT,
    SUBSTITUTE,
]
"""Every rule of the solver."""

NO_FACTORING: list[Rule] = [r for r in RULES if r not in FACTORING_RULES]
"""Simplification without its factoring rules (which would undo the expansion)."""


def expand_rules() -> list[Rule]:
    """Expansion of the sums and products that contain the unknown (the context's), then
    simplification without factoring: the unknown's terms come apart, the others stay."""
    return [*EXPAND, *NO_FACTORING]


# ---------------------------------------------------------------------------------------------
# The solver
# ---------------------------------------------------------------------------------------------


@dataclass
class Solver:
    """Solves equations with the rules above, recording every step.

    Parameters
    ----------
    facts : Facts
    stage : str
        Label of the recorded steps (the part of the derivation).
    """

    facts: Facts
    stage: str
    steps: list[Step] = field(default_factory=list)

    def run(
        self,
        eq: Expr,
        rules: Sequence[Rule],
        unknown: Expr,
        *,
        everywhere: bool = False,
        replace: tuple[Expr, Expr] | None = None,
    ) -> Expr:
        """Apply rules to a fixed point, recording the steps."""
        out, steps = rewrite(
            eq,
            rules,
            ctx=Context(self.facts, unknown, replace),
            everywhere=everywhere,
            stage=self.stage,
        )
        self.steps.extend(steps)
        return out

    def simplify(
        self,
        eq: Expr,
        rules: Sequence[Rule] = RULES,
        left: bool = True,
        unknown: Expr | None = None,
    ) -> Expr:
        """Simplify both sides (or the right one only), recording the steps."""
        ctx = Context(self.facts, unknown if unknown is not None else eq)
        lhs, left_steps = (
            rewrite(eq.args[0], rules, stage=self.stage, ctx=ctx) if left else (eq.args[0], [])
        )
        rhs, right_steps = rewrite(eq.args[1], rules, stage=self.stage, ctx=ctx)
        current = eq
        for s in left_steps:
            new = equation(s.after, current.args[1])
            self.steps.append(Step(s.rule, current, new, s.identity, "", self.stage, s.kind))
            current = new
        for s in right_steps:
            new = equation(current.args[0], s.after)
            self.steps.append(Step(s.rule, current, new, s.identity, "", self.stage, s.kind))
            current = new
        return equation(lhs, rhs)

    # -- the phases ---------------------------------------------------------------------------
    def stationary(self, gradient: Expr) -> Expr:
        """``gradient = 0``."""
        eq = STATIONARY.apply(gradient)
        assert eq is not None  # a gradient is never an equation
        self.steps.append(
            Step(
                STATIONARY.name, gradient, eq, STATIONARY.identity, "", self.stage, STATIONARY.kind
            )
        )
        return eq

    def use_facts(self, eq: Expr, unknown: Expr) -> Expr:
        """Apply the identities (left to right), then the abbreviations (right to left)."""
        before = eq
        eq = self.run(eq, FACTS, unknown, everywhere=True)
        if eq is not before:
            eq = self.simplify(eq, NO_FACTORING)
        return self.run(eq, [ABBREVIATE], unknown, everywhere=True)

    def solve(self, eq: Expr, unknown: Expr) -> tuple[Expr, Expr, Expr]:
        """Solve ``eq`` for ``unknown``.

        Returns
        -------
        Expr
            The final equation ``unknown = solution``.
        Expr
            U, the form the equation was affine in (the unknown, or its inverse).
        Expr
            The value of U (before inverting): the covariance when U is an inverse precision.
        """
        eq = self.run(eq, CANCEL, unknown)
        eq = self.simplify(eq, expand_rules(), unknown=unknown)
        eq = self.use_facts(eq, unknown)
        eq = self.run(eq, CANCEL, unknown)
        cleared = self.run(eq, [CLEAR], unknown)
        if cleared is not eq:
            eq = self.simplify(cleared, expand_rules(), unknown=unknown)
        with_u, others = _terms_in(eq, unknown)
        if len({u for _, u in with_u}) != 1 or any(t.depends_on(unknown) for t in others):
            raise CalculusError(
                f"the equation {to_text(eq)} is not affine in {unknown.full_name} or in its "
                "inverse; the solver cannot isolate it"
            )
        u = with_u[0][1]
        isolated = self.run(eq, [ISOLATE], unknown)
        if isolated is not eq:
            eq = self.simplify(isolated, left=False)
        coeff = _sum_coefficients([c for c, _ in _terms_in(eq, unknown)[0]], u)
        if coeff.is_scalar:
            if not is_number(coeff, 1) and not self.facts.nonzero_or_assumed(coeff):
                raise CalculusError(
                    f"cannot divide by {to_text(coeff)}: it is not known to be nonzero"
                )
            divided = self.run(eq, [DIVIDE], unknown)
        else:
            if not self.facts.invertible_or_assumed(coeff):
                raise CalculusError(
                    f"cannot solve {to_text(eq)}: {to_text(coeff)} is not known to be invertible"
                )
            divided = self.run(eq, [LINEAR], unknown)
        if divided is not eq:
            eq = self.simplify(divided, left=False)
        u_value = eq.args[1]
        inverted = self.run(eq, [INVERT], unknown)
        if inverted is not eq:
            eq = self.simplify(inverted)
        return eq, u, u_value

    def count(self, eq: Expr, unknown: Expr) -> Expr:
        """Sums of an abbreviation over its own index, counted with the identities:
        sum_k(N_k) = sum_k(sum_n(q_kn)) = sum_n(sum_k(q_kn)) = sum_n(1) = N."""
        counted = self.run(eq, COUNT, unknown)
        if counted is eq:
            return eq
        eq = self.use_facts(counted, unknown)
        return self.simplify(eq)

    def substitute(
        self, eq: Expr, variable: Expr, value: Expr, note: str, simplify: bool = True
    ) -> Expr:
        """Replace a variable (or subexpression) by its value, recorded."""
        before = len(self.steps)
        out = self.run(eq, [SUBSTITUTE], variable, everywhere=True, replace=(variable, value))
        for i in range(before, len(self.steps)):
            s = self.steps[i]
            self.steps[i] = Step(
                s.rule, s.before, s.after, f"{s.identity}: {note}", s.lhs, s.stage, s.kind
            )
        return self.simplify(out) if simplify and out.op is Op.EQ else out


def _factor_out_of_sum(e: Expr) -> Expr | None:
    """sum_n(c_n*M*A_n) = M*sum_n(c_n*A_n) for a matrix M free of n; also under a scalar."""
    if e.op is Op.SCALE:
        inner = _factor_out_of_sum(e.args[1])
        return mul(e.args[0], inner) if inner is not None else None
    if e.op is not Op.SUMIDX:
        return None
    index, body = e.name, e.args[0]
    scalars: list[Expr] = []
    while body.op is Op.SCALE and body.args[0].is_scalar and not body.args[1].is_scalar:
        scalars.append(body.args[0])
        body = body.args[1]
    if body.op is not Op.MATMUL:
        return None
    head = body.args[0]
    if any(index in indices for _, indices in head.free) or not head.is_square:
        return None
    rest = mul_all([*scalars, mul_all(body.args[1:])])
    return mul(head, sumidx(index, rest))


def _coefficient(t: Expr, theta: Expr) -> tuple[Expr, Expr] | None:
    """A term as (coefficient, U) with t = C*U and U = theta, inv(theta), 1./theta or 1/theta.

    C is a scalar, or a matrix with a row per entry of t and a column per entry of U (a
    linear map: ``sum_n(w_n*x_n*x_n')`` for ``sum_n(w_n*(x_n'*beta)*x_n)``), free of theta.
    """
    if not t.depends_on(theta):
        return None
    if t.op is Op.VAR:
        return ONE, t
    if t.op is Op.INV and t.args[0].op is Op.VAR:
        return ONE, t
    if t.op is Op.EDIV and t.args[1].op is Op.VAR and not t.args[0].depends_on(theta):
        top = t.args[0]
        if top.op is Op.ONES:
            return ONE, t
        if top.op is Op.SCALE and top.args[1].op is Op.ONES:
            return top.args[0], ediv(ONE, t.args[1])
        return None
    if t.op is Op.NEG:
        inner = _coefficient(t.args[0], theta)
        return (neg(inner[0]), inner[1]) if inner else None
    if t.op is Op.SCALE:
        c, rest = t.args
        if not c.depends_on(theta):
            inner = _coefficient(rest, theta)
            return (mul(c, inner[0]), inner[1]) if inner else None
        if not rest.depends_on(theta):
            # (a'*U)*v = v*a'*U: the scalar's coefficient row, times the vector it scales
            inner = _coefficient(c, theta)
            if inner is None or (inner[0].is_scalar and not rest.is_scalar):
                return None
            return mul(rest, inner[0]), inner[1]
        return None
    if t.op is Op.MATMUL:
        return _product_coefficient(t, theta)
    if t.op is Op.SUMIDX and not any(t.name in i for _, i in theta.free):
        # sum_n(C_n*U) = sum_n(C_n)*U for U free of n
        inner = _coefficient(t.args[0], theta)
        return (sumidx(t.name, inner[0]), inner[1]) if inner else None
    if t.op is Op.DIV:
        top, bottom = t.args
        if not bottom.depends_on(theta):
            inner = _coefficient(top, theta)
            return (div(inner[0], bottom), inner[1]) if inner else None
        if bottom.op is Op.VAR and not top.depends_on(theta):
            return top, div(ONE, bottom)
    return None


def _product_coefficient(t: Expr, theta: Expr) -> tuple[Expr, Expr] | None:
    """M*U = (M)*U, and the scalar U'*a = a'*U, for factors M, a free of theta."""
    *head, last = t.args
    if head and not any(f.depends_on(theta) for f in head):
        inner = _coefficient(last, theta)
        if inner is not None and inner[0].is_scalar:
            return mul(inner[0], mul_all(head)), inner[1]
        return None
    first, *tail = t.args
    if t.is_scalar and tail and first.op is Op.TRANSPOSE and first.args[0] == theta:
        if not any(f.depends_on(theta) for f in tail):
            return transpose(mul_all(tail)), theta
    return None


def _sum_scalars(parts: list[Expr]) -> Expr:
    out = add_all(parts, (1, 1))
    return rewrite(out, RULES, record=False)[0]


def _sum_coefficients(parts: list[Expr], u: Expr) -> Expr:
    """The sum of the coefficients of U; a scalar among matrices counts as c*eye."""
    if all(p.is_scalar for p in parts):
        return _sum_scalars(parts)
    size = u.shape[0]
    square = [p if not p.is_scalar else mul(p, eye(size)) for p in parts]
    return rewrite(add_all(square, (size, size)), RULES, record=False)[0]


def _times(c: Expr, u: Expr) -> Expr:
    if is_number(c, 1):
        return u
    if u.op is Op.EDIV:
        return hadamard(c, u) if not c.is_scalar else mul(c, u)
    return mul(c, u)
