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

from gaussmix.calculus.display import derivation_markdown
from gaussmix.calculus.errors import CalculusError
from gaussmix.calculus.expr import (
    NUM_TWO,
    ONE,
    Expr,
    Op,
    add,
    d,
    div,
    is_zero,
    transpose,
    zero,
)
from gaussmix.calculus.printing import to_text
from gaussmix.calculus.rewrite import P, Rule, Step, rewrite
from gaussmix.calculus.rules.canonical import CANONICAL_RULES, COLLECT, IDENTIFY, display, term
from gaussmix.calculus.rules.diff import DIFF_RULES, DiffContext
from gaussmix.calculus.rules.simplify import RULES, Sizes
from gaussmix.calculus.structure import is_symmetric

__all__ = ["SYMMETRIC", "Derivation", "differentiate"]

SYMMETRIC = Rule(
    "symmetric gradient",
    "G_sym = (G + G')/2 for a symmetric variable (Srinivasan and Panda)",
    P(name="G", where=lambda e: not is_symmetric(e)),
    lambda m: div(add(m["G"], transpose(m["G"])), NUM_TWO),
    kind="calculus",
)
"""The gradient for a symmetric variable; a gradient that is symmetric already is left as it is."""


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

    def _repr_markdown_(self) -> str:
        """Jupyter: the gradient and the numbered steps (Markdown with LaTeX math)."""
        return derivation_markdown(self)


def _differential(f: Expr, wrt: Expr) -> tuple[Expr, list[Step]]:
    """d(f) worked out top down: each step applies one rule at every d(...) it fits."""
    df, steps = rewrite(
        d(f),
        DIFF_RULES,
        ctx=DiffContext(wrt),
        by_position=True,
        everywhere=True,
        lhs="df",
        stage="differential",
    )
    for node in df.walk():
        if node.op is Op.D:
            raise CalculusError(
                f"there is no rule to differentiate {to_text(node.args[0])} with respect to "
                f"{wrt.full_name}"
            )
    return df, steps


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
    sizes = Sizes(f)
    df, simplified = rewrite(df, RULES, lhs="df", ctx=sizes)
    steps.extend(simplified)
    if is_zero(df):
        gradient = zero(wrt.shape)
        canonical = df
    else:
        terms, canonical_steps = rewrite(
            term(ONE, df),
            CANONICAL_RULES,
            by_position=True,
            show=display,
            lhs="df",
            stage="canonical",
        )
        steps.extend(canonical_steps)
        if any(node.op is Op.TERM and node.args[1].op is not Op.DIFF for node in terms.walk()):
            raise CalculusError(
                f"internal error: the differential {to_text(df)} is not linear in the "
                "differential; please report the expression"
            )
        canonical = display(terms)
        collected = COLLECT.apply(terms)
        if collected is not None:
            steps.append(
                Step(
                    COLLECT.name,
                    canonical,
                    display(collected),
                    COLLECT.identity,
                    "df",
                    "canonical",
                    COLLECT.kind,
                )
            )
        gradient, identified = rewrite(
            terms, IDENTIFY, everywhere=True, show=display, lhs="G", stage="identify"
        )
        steps.extend(identified)
        gradient, simplified = rewrite(gradient, RULES, lhs="G", ctx=sizes)
        steps.extend(simplified)
    if wrt.kind is not None and wrt.kind.is_symmetric and not wrt.is_scalar:
        sym = SYMMETRIC.apply(gradient)
        if sym is not None:
            steps.append(
                Step(
                    SYMMETRIC.name,
                    gradient,
                    sym,
                    SYMMETRIC.identity,
                    "G",
                    "symmetric",
                    SYMMETRIC.kind,
                )
            )
            gradient, simplified = rewrite(sym, RULES, lhs="G", ctx=sizes)
            steps.extend(simplified)
    return Derivation(f, wrt, canonical, gradient, tuple(steps))
