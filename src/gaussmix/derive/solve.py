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
    hadamard,
    is_number,
    is_zero,
    mul,
    mul_all,
    neg,
    number_value,
    substitute,
    sumidx,
    zero,
)
from gaussmix.calculus.ops import apply, rebuild
from gaussmix.calculus.printing import to_text
from gaussmix.calculus.rewrite import Rule, Step, rewrite
from gaussmix.calculus.rules.simplify import RULES, TIDY_RULES

__all__ = ["SOLVE_RULES", "Facts", "Identity", "Solver", "expand_rules"]


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
    """

    nonzero: set[Expr] = field(default_factory=set)
    positive_vectors: set[Expr] = field(default_factory=set)
    identities: list[Identity] = field(default_factory=list)
    definitions: list[Identity] = field(default_factory=list)

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
# The rules
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SolveRule:
    """A named step on an equation ``lhs = rhs``."""

    name: str
    identity: str


SOLVE_RULES: dict[str, SolveRule] = {
    r.name: r
    for r in [
        SolveRule("stationary point", "a maximum of a smooth function has gradient 0"),
        SolveRule("factor out of the sum", "sum_n(M*A_n) = M*sum_n(A_n) for M free of n"),
        SolveRule("cancel a nonzero factor", "c*A = 0 with c != 0 gives A = 0"),
        SolveRule("cancel an invertible factor", "M*A = 0 with M invertible gives A = 0"),
        SolveRule("expand", "sum_n(A_n + B_n) = sum_n(A_n) + sum_n(B_n), c*(A + B) = c*A + c*B"),
        SolveRule("identity", "a fact of the problem"),
        SolveRule("abbreviate", "write the definition's name for its expression"),
        SolveRule("isolate", "c*U + B = 0 gives c*U = -B"),
        SolveRule("divide", "c*U = B with c != 0 gives U = B/c"),
        SolveRule("invert", "inv(A) = B gives A = inv(B); 1/a = b gives a = 1/b"),
        SolveRule("substitute", "replace a variable by what it was solved for"),
        SolveRule("swap sums", "sum_k(sum_n(A)) = sum_n(sum_k(A))"),
    ]
}
"""The steps the solver takes, by name, with the identity each one uses."""


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
    if e.op is Op.MATMUL and e.args[-1].op is Op.ADD:
        head = mul_all(e.args[:-1])
        return add_all([mul(head, t) for t in e.args[-1].args], e.shape)
    if e.op is Op.NEG and e.args[0].op is Op.ADD:
        return add_all([neg(t) for t in e.args[0].args], e.shape)
    return None


_UNDO_EXPANSION = {
    "merge sums",
    "common scalar factor",
    "common right factor",
    "common left factor",
}


def expand_rules(unknown: Expr) -> list[Rule]:
    """Simplification without its factoring rules, plus expansion of the sums and products
    that contain the unknown: its terms come apart, the others stay as they are."""

    def split(e: Expr) -> Expr | None:
        return _split_sum(e) if e.args[0].depends_on(unknown) else None

    def distribute(e: Expr) -> Expr | None:
        inner = e.args[-1] if e.op is not Op.NEG else e.args[0]
        return _distribute(e) if inner.depends_on(unknown) else None

    return [
        Rule("expand", "sum_n(A_n + B_n) = sum_n(A_n) + sum_n(B_n)", frozenset({Op.SUMIDX}), split),
        Rule(
            "expand", "c*(A + B) = c*A + c*B", frozenset({Op.SCALE, Op.MATMUL, Op.NEG}), distribute
        ),
        *[r for r in RULES if r.name not in _UNDO_EXPANSION],
    ]


# ---------------------------------------------------------------------------------------------
# The solver
# ---------------------------------------------------------------------------------------------


@dataclass
class Solver:
    """Solves equations step by step, recording every step.

    Parameters
    ----------
    facts : Facts
    stage : str
        Label of the recorded steps (the part of the derivation).
    """

    facts: Facts
    stage: str
    steps: list[Step] = field(default_factory=list)

    def record(self, rule: str, before: Expr, after: Expr, identity: str | None = None) -> Expr:
        if before != after:
            text = identity if identity is not None else SOLVE_RULES[rule].identity
            self.steps.append(Step(rule, before, after, text, "", self.stage))
        return after

    def simplify(self, eq: Expr, rules: Sequence[Rule] = RULES, left: bool = True) -> Expr:
        """Simplify both sides (or the right one only), recording the steps."""
        lhs, left_steps = rewrite(eq.args[0], rules, stage=self.stage) if left else (eq.args[0], [])
        rhs, right_steps = rewrite(eq.args[1], rules, stage=self.stage)
        current = eq
        for s in left_steps:
            new = equation(s.after, current.args[1])
            self.steps.append(Step(s.rule, current, new, s.identity, "", self.stage))
            current = new
        for s in right_steps:
            new = equation(current.args[0], s.after)
            self.steps.append(Step(s.rule, current, new, s.identity, "", self.stage))
            current = new
        return equation(lhs, rhs)

    # -- the phases ---------------------------------------------------------------------------
    def stationary(self, gradient: Expr) -> Expr:
        """``gradient = 0``."""
        eq = equation(gradient, zero(gradient.shape))
        self.steps.append(
            Step(
                "stationary point",
                gradient,
                eq,
                SOLVE_RULES["stationary point"].identity,
                "",
                self.stage,
            )
        )
        return eq

    def cancel(self, eq: Expr, unknown: Expr) -> Expr:
        """Take nonzero and invertible factors off ``lhs = 0``."""
        while is_zero(eq.args[1]):
            lhs = eq.args[0]
            nonzero = SOLVE_RULES["cancel a nonzero factor"].identity
            invertible = SOLVE_RULES["cancel an invertible factor"].identity
            if (
                lhs.op is Op.SCALE
                and self.facts.is_nonzero(lhs.args[0])
                and not lhs.args[0].depends_on(unknown)
            ):
                eq = self.record(
                    "cancel a nonzero factor",
                    eq,
                    equation(lhs.args[1], eq.args[1]),
                    f"{nonzero}; {self.facts.why(lhs.args[0])}",
                )
                continue
            if lhs.op is Op.DIV and self.facts.is_nonzero(lhs.args[1]):
                eq = self.record(
                    "cancel a nonzero factor",
                    eq,
                    equation(lhs.args[0], eq.args[1]),
                    f"{nonzero}; {self.facts.why(lhs.args[1])}",
                )
                continue
            if (
                lhs.op is Op.MATMUL
                and lhs.args[0].is_square
                and not lhs.args[0].depends_on(unknown)
                and self.facts.is_invertible(lhs.args[0])
            ):
                rest = mul_all(lhs.args[1:])
                eq = self.record(
                    "cancel an invertible factor",
                    eq,
                    equation(rest, eq.args[1]),
                    f"{invertible}; {self.facts.why(lhs.args[0])}",
                )
                continue
            pulled = _factor_out_of_sum(lhs)
            if pulled is not None:
                eq = self.record("factor out of the sum", eq, equation(pulled, eq.args[1]))
                continue
            return eq
        return eq

    def expand(self, eq: Expr, unknown: Expr) -> Expr:
        """Split sums and distribute products over the unknown, so that its terms come apart."""
        return self.simplify(eq, expand_rules(unknown))

    def use_facts(self, eq: Expr) -> Expr:
        """Apply the identities (left to right), then the abbreviations (right to left)."""
        for fact in self.facts.identities:
            new = _replace_all(eq, fact.lhs, fact.rhs)
            if new != eq:
                eq = self.record("identity", eq, new, f"{fact.name}: {fact.text}")
                eq = self.simplify(eq, [r for r in RULES if r.name not in _UNDO_EXPANSION])
        for definition in self.facts.definitions:
            new = _replace_all(eq, definition.rhs, definition.lhs)
            if new != eq:
                eq = self.record("abbreviate", eq, new, f"{definition.name}: {definition.text}")
        return eq

    def isolate(self, eq: Expr, unknown: Expr) -> tuple[Expr, Expr]:
        """``c*U + B = R`` -> ``U = (R - B)/c``; returns the equation and U."""
        lhs, rhs = eq.args
        terms = lhs.args if lhs.op is Op.ADD else (lhs,)
        with_u: list[tuple[Expr, Expr]] = []
        others: list[Expr] = []
        for t in terms:
            found = _coefficient(t, unknown)
            if found is None:
                others.append(t)
            else:
                with_u.append(found)
        forms = {u for _, u in with_u}
        if len(forms) != 1:
            raise CalculusError(
                f"the equation {to_text(eq)} is not affine in {unknown.full_name} or in its "
                "inverse; the solver cannot isolate it"
            )
        u = forms.pop()
        coeff = _sum_scalars([c for c, _ in with_u])
        sign = 1
        if coeff.op is Op.NEG:  # -c*U + B = R is written c*U = B - R
            coeff, sign = coeff.args[0], -1
        if others or not is_zero(rhs):
            moved_terms = [*([] if is_zero(rhs) else [rhs]), *[neg(t) for t in others]]
            if sign < 0:
                moved_terms = [neg(t) for t in moved_terms]
            moved = rewrite(add_all(moved_terms, lhs.shape), TIDY_RULES, record=False)[0]
            eq = self.record("isolate", eq, equation(_times(coeff, u), moved))
            eq = self.simplify(eq, left=False)
        if not is_number(coeff, 1):
            if not self.facts.is_nonzero(coeff):
                raise CalculusError(
                    f"cannot divide by {to_text(coeff)}: it is not known to be nonzero"
                )
            eq = self.record("divide", eq, equation(u, div(eq.args[1], coeff)))
            eq = self.simplify(eq, left=False)
        return eq, u

    def invert(self, eq: Expr, unknown: Expr, u: Expr) -> Expr:
        """``inv(A) = B`` -> ``A = inv(B)`` (and the elementwise and scalar kin)."""
        if u == unknown:
            return eq
        rhs = eq.args[1]
        if u.op is Op.INV:
            solved = apply(Op.INV, rhs)
        elif u.op is Op.EDIV:
            solved = ediv(ONE, rhs)
        else:
            solved = div(ONE, rhs)
        eq = self.record("invert", eq, equation(unknown, solved))
        return self.simplify(eq)

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
        eq = self.cancel(eq, unknown)
        eq = self.expand(eq, unknown)
        eq = self.use_facts(eq)
        eq = self.cancel(eq, unknown)
        eq, u = self.isolate(eq, unknown)
        u_value = eq.args[1]
        return self.invert(eq, unknown, u), u, u_value

    def count(self, eq: Expr) -> Expr:
        """Sums of an abbreviation over its own index, counted with the identities:
        sum_k(N_k) = sum_k(sum_n(q_kn)) = sum_n(sum_k(q_kn)) = sum_n(1) = N."""
        for definition in self.facts.definitions:
            expanded = _expand_in_sums(eq, definition)
            if expanded == eq:
                continue
            eq = self.record(
                "abbreviate", eq, expanded, f"{definition.name}: {definition.text}, written out"
            )
            for fact in self.facts.identities:
                swapped = _swap_towards(eq, fact.lhs)
                if swapped != eq:
                    eq = self.record("swap sums", eq, swapped)
            eq = self.use_facts(eq)
            eq = self.simplify(eq)
        return eq

    def substitute(self, eq: Expr, variable: Expr, value: Expr, note: str) -> Expr:
        """Replace a variable by its value in both sides, recorded."""
        new = equation(
            substitute(eq.args[0], variable, value), substitute(eq.args[1], variable, value)
        )
        eq = self.record("substitute", eq, new, note)
        return self.simplify(eq)


def _replace_all(e: Expr, old: Expr, new: Expr) -> Expr:
    """Every subexpression equal to ``old`` replaced by ``new``."""
    if e == old and e.shape == old.shape:
        return new
    if not e.args:
        return e
    args = [_replace_all(a, old, new) for a in e.args]
    if all(a is b for a, b in zip(args, e.args, strict=True)):
        return e
    return rebuild(e, args)


def _expand_in_sums(e: Expr, definition: Identity) -> Expr:
    """Write out an abbreviation where it is summed over its own index (sum_k(N_k))."""
    index = definition.lhs.indices
    if e.op is Op.SUMIDX and e.name in index and e.args[0].depends_on(definition.lhs):
        return sumidx(e.name, substitute(e.args[0], definition.lhs, definition.rhs))
    if not e.args:
        return e
    args = [_expand_in_sums(a, definition) for a in e.args]
    if all(a is b for a, b in zip(args, e.args, strict=True)):
        return e
    return rebuild(e, args)


def _swap_towards(e: Expr, target: Expr) -> Expr:
    """sum_k(sum_n(A)) -> sum_n(sum_k(A)) where that makes ``target`` appear."""
    if (
        e.op is Op.SUMIDX
        and e.args[0].op is Op.SUMIDX
        and sumidx(e.name, e.args[0].args[0]) == target
    ):
        return sumidx(e.args[0].name, sumidx(e.name, e.args[0].args[0]))
    if not e.args:
        return e
    args = [_swap_towards(a, target) for a in e.args]
    if all(a is b for a, b in zip(args, e.args, strict=True)):
        return e
    return rebuild(e, args)


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
    """A term as (scalar coefficient, U) with U = theta, inv(theta), 1./theta or 1/theta."""
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
    if t.op is Op.SCALE and not t.args[0].depends_on(theta):
        inner = _coefficient(t.args[1], theta)
        return (mul(t.args[0], inner[0]), inner[1]) if inner else None
    if t.op is Op.DIV:
        top, bottom = t.args
        if not bottom.depends_on(theta):
            inner = _coefficient(top, theta)
            return (div(inner[0], bottom), inner[1]) if inner else None
        if bottom.op is Op.VAR and not top.depends_on(theta):
            return top, div(ONE, bottom)
    return None


def _sum_scalars(parts: list[Expr]) -> Expr:
    out = add_all(parts, (1, 1))
    return rewrite(out, RULES, record=False)[0]


def _times(c: Expr, u: Expr) -> Expr:
    if is_number(c, 1):
        return u
    if u.op is Op.EDIV:
        return hadamard(c, u) if not c.is_scalar else mul(c, u)
    return mul(c, u)
