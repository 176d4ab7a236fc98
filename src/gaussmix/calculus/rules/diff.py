"""The differential rules, read from the operator table.

Magnus and Neudecker's method: the differential of an expression is built from the differentials
of its parts, one local rule per operator. The rules themselves live with their operators in
:mod:`~gaussmix.calculus.ops`; this module lists them in the order they are tried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gaussmix.calculus.expr import Expr, Op, zero
from gaussmix.calculus.ops import OPS, DiffContext, Example

__all__ = ["CONSTANT", "DIFF_RULES", "DiffContext", "DiffRule", "Example", "rule_for"]


@dataclass(frozen=True)
class DiffRule:
    """A differential rule of the table, with the operator it differentiates."""

    name: str
    identity: str
    op: Op
    apply: Callable[[Expr, DiffContext], Expr | None] = field(compare=False, repr=False)
    examples: tuple[Example, ...] = ()


# d c = 0 for anything that does not depend on the variable (numbers, eye, other variables).
CONSTANT = DiffRule(
    "constant", "d(c) = 0 for c free of the variable", Op.NUM, lambda e, ctx: zero(e.shape)
)

DIFF_RULES: list[DiffRule] = [
    DiffRule(r.name, r.identity, spec.op, r.apply, r.examples)
    for spec in OPS.values()
    for r in spec.diff
]


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
