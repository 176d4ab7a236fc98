"""The derivation of a gradient, step by step: differential, canonical form, identification.

1. ``d(f)`` is worked out top down with the table of :mod:`~gaussmix.calculus.rules.diff`; each
   step applies one rule (to every place it fits at once) and is recorded.
2. The differential is simplified (recorded), then brought to ``tr(G'*dX)`` with the rules of
   :mod:`~gaussmix.calculus.rules.canonical` (recorded; intermediate weights are tidied silently:
   ``1*A`` is written ``A``).
3. The gradient is read off, ``G = sum_i M_i'``, and simplified (recorded).
4. For a symmetric variable the gradient is the symmetric one, ``(G + G')/2``: the convention of
   Srinivasan and Panda ("What is the gradient of a scalar function of a symmetric matrix?"),
   for which ``<G, V>`` is the derivative along every symmetric direction V and G is itself
   symmetric. The Matrix Cookbook's ``G + G' - G.*I`` gives the same derivatives when entries are
   counted once, but it is not the gradient for the trace inner product; docs/calculus.md says more.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaussmix.calculus.errors import CalculusError
from gaussmix.calculus.expr import (
    NUM_TWO,
    ONE,
    SCALAR,
    Expr,
    Op,
    add,
    add_all,
    d,
    div,
    is_zero,
    mul,
    sumidx,
    transpose,
    zero,
)
from gaussmix.calculus.ops import rebuild
from gaussmix.calculus.printing import to_text
from gaussmix.calculus.rewrite import Step, rewrite
from gaussmix.calculus.rules.canonical import CANONICAL_RULES, Term, trace_of
from gaussmix.calculus.rules.diff import DiffContext, DiffRule, rule_for
from gaussmix.calculus.rules.simplify import RULES, TIDY_RULES
from gaussmix.calculus.structure import is_symmetric

__all__ = ["SYMMETRIC_RULE", "Derivation", "differentiate", "identify_rule", "tidy"]

SYMMETRIC_RULE = (
    "symmetric gradient",
    "G_sym = (G + G')/2 for a symmetric variable (Srinivasan and Panda)",
)


def identify_rule(wrt: Expr) -> tuple[str, str]:
    """Name and identity of the identification step for a variable of this shape."""
    name = wrt.full_name
    if wrt.is_scalar:
        return "identify", f"df = g*d{name} gives the derivative g"
    if wrt.shape[1] == 1:
        return "identify", f"df = g'*d{name} gives the gradient g"
    return "identify", f"df = tr(G'*d{name}) gives the gradient G"


@dataclass(frozen=True)
class Derivation:
    """A worked-out gradient.

    Attributes
    ----------
    expr : Expr
        The scalar function f.
    wrt : Expr
        The variable.
    differential : Expr
        df in canonical form, ``tr(G'*dX)`` summed over terms.
    gradient : Expr
        The gradient, simplified, of the shape of ``wrt``.
    steps : tuple of Step
        Every step, in order.
    """

    expr: Expr
    wrt: Expr
    differential: Expr
    gradient: Expr
    steps: tuple[Step, ...]


def tidy(e: Expr) -> Expr:
    """Neutral elements and signs cleaned up, without recording (for intermediate lines)."""
    return rewrite(e, TIDY_RULES, record=False)[0]


def _first_d(e: Expr) -> Expr | None:
    for node in e.walk():
        if node.op is Op.D:
            return node
    return None


def _expand(e: Expr, rule_name: str, ctx: DiffContext) -> Expr:
    """Apply the rule named ``rule_name`` at every d(...) it differentiates."""
    if e.op is Op.D:
        rule, out = _rule(e.args[0], ctx)
        return out if rule.name == rule_name else e
    if not e.has_diff:
        return e
    args = [_expand(a, rule_name, ctx) for a in e.args]
    if all(a is b for a, b in zip(args, e.args, strict=True)):
        return e
    return rebuild(e, args)


def _rule(e: Expr, ctx: DiffContext) -> tuple[DiffRule, Expr]:
    try:
        return rule_for(e, ctx)
    except KeyError:
        raise CalculusError(
            f"there is no rule to differentiate {to_text(e)} with respect to {ctx.wrt.full_name}"
        ) from None


def _differential(f: Expr, wrt: Expr) -> tuple[Expr, list[Step]]:
    ctx = DiffContext(wrt)
    expr = d(f)
    steps: list[Step] = []
    while (node := _first_d(expr)) is not None:
        rule, _ = _rule(node.args[0], ctx)
        after = _expand(expr, rule.name, ctx)
        steps.append(Step(rule.name, expr, after, rule.identity, "df", "differential"))
        expr = after
    return expr, steps


def _display(terms: list[Term]) -> Expr:
    parts = []
    for t in terms:
        inner = trace_of(tidy(mul(t.weight, t.body)))
        for index in reversed(t.sums):
            inner = sumidx(index, inner)
        parts.append(inner)
    return add_all(parts, SCALAR)


def _canonical(df: Expr) -> tuple[list[Term], list[Step]]:
    terms = [Term((), ONE, df)]
    steps: list[Step] = []
    while True:
        pending = next((i for i, t in enumerate(terms) if t.body.op is not Op.DIFF), None)
        if pending is None:
            return terms, steps
        term = terms[pending]
        rule = CANONICAL_RULES.get(term.body.op)
        if rule is None:
            raise CalculusError(
                f"internal error: the differential {to_text(term.body)} is not linear in the "
                "differential; please report the expression"
            )
        new = [Term(t.sums, tidy(t.weight), t.body) for t in rule.apply(term)]
        after = [*terms[:pending], *new, *terms[pending + 1 :]]
        before_text, after_text = _display(terms), _display(after)
        if before_text != after_text:  # bookkeeping that does not change the line is not shown
            steps.append(Step(rule.name, before_text, after_text, rule.identity, "df", "canonical"))
        terms = after


def differentiate(f: Expr, wrt: Expr) -> Derivation:
    """Derive the gradient of a scalar expression with respect to a variable, step by step.

    Parameters
    ----------
    f : Expr
        A scalar expression.
    wrt : Expr
        A variable of ``f`` (an ``Op.VAR`` node).

    Returns
    -------
    Derivation

    Raises
    ------
    CalculusError
        When ``f`` is not a scalar, or no rule differentiates one of its parts.
    """
    if not f.is_scalar:
        raise CalculusError(
            f"{to_text(f)} is not a scalar: a gradient needs a scalar function "
            "(try tr(...), sum(...) or norm2(...))"
        )
    df, steps = _differential(f, wrt)
    df, simplified = rewrite(df, RULES, lhs="df")
    steps.extend(simplified)
    if is_zero(df):
        gradient = zero(wrt.shape)
        canonical = df
    else:
        terms, canonical_steps = _canonical(df)
        steps.extend(canonical_steps)
        canonical = _display(terms)
        if len(terms) > 1:
            weights = []
            for t in terms:
                w = t.weight
                for index in reversed(t.sums):
                    w = sumidx(index, w)
                weights.append(w)
            collected = trace_of(tidy(mul(add_all(weights, weights[0].shape), terms[0].body)))
            steps.append(
                Step(
                    "collect",
                    canonical,
                    collected,
                    "tr(A*dX) + tr(B*dX) = tr((A + B)*dX)",
                    "df",
                    "canonical",
                )
            )
        raw = []
        for t in terms:
            g = transpose(t.weight)
            for index in reversed(t.sums):
                g = sumidx(index, g)
            raw.append(g)
        gradient = add_all(raw, wrt.shape)
        name, identity = identify_rule(wrt)
        steps.append(Step(name, canonical, gradient, identity, "G", "identify"))
        gradient, simplified = rewrite(gradient, RULES, lhs="G")
        steps.extend(simplified)
    if wrt.kind is not None and wrt.kind.is_symmetric and not wrt.is_scalar:
        if is_symmetric(gradient):
            # (G + G')/2 = G: said once, rather than shown as a round trip through the rules
            steps.append(
                Step(
                    SYMMETRIC_RULE[0],
                    gradient,
                    gradient,
                    "G is symmetric, so (G + G')/2 = G",
                    "G",
                    "symmetric",
                )
            )
        else:
            sym = div(add(gradient, transpose(gradient)), NUM_TWO)
            steps.append(
                Step(SYMMETRIC_RULE[0], gradient, sym, SYMMETRIC_RULE[1], "G", "symmetric")
            )
            gradient, simplified = rewrite(sym, RULES, lhs="G")
            steps.extend(simplified)
    return Derivation(f, wrt, canonical, gradient, tuple(steps))
