"""The differential rules, as rules on ``d(...)`` nodes, read from the operator table.

Magnus and Neudecker's method: the differential of an expression is built from the differentials
of its parts, one local rule per operator. The rules live with their operators in
:mod:`~gaussmix.calculus.ops`; here each becomes a :class:`~gaussmix.calculus.rewrite.Rule`
whose pattern is ``d(op(...))``, and whose context is the variable (a
:class:`~gaussmix.calculus.ops.DiffContext`). ``constant`` comes first: anything free of the
variable has differential 0.
"""

from __future__ import annotations

from gaussmix.calculus.expr import Op, zero
from gaussmix.calculus.ops import OPS, DiffContext, Differential, Example
from gaussmix.calculus.rewrite import P, Rule

__all__ = ["CONSTANT", "DIFF_RULES", "EXAMPLES", "DiffContext", "Example"]


def _from_table(op: Op, r: Differential) -> Rule:
    return Rule(
        r.name,
        r.identity,
        P(Op.D, P(op, name="u")),
        lambda m: r.apply(m["u"], m.ctx),
        kind="calculus",
    )


# d c = 0 for anything that does not depend on the variable (numbers, eye, other variables).
CONSTANT = Rule(
    "constant",
    "d(c) = 0 for c free of the variable",
    P(Op.D, P(name="u")),
    lambda m: None if m["u"].depends_on(m.ctx.wrt) else zero(m["u"].shape),
    kind="calculus",
)

DIFF_RULES: list[Rule] = [
    CONSTANT,
    *(_from_table(spec.op, r) for spec in OPS.values() for r in spec.diff),
]
"""The differential rules: ``constant``, then the table's, operator by operator."""

EXAMPLES: dict[str, tuple[Example, ...]] = {
    r.name: r.examples for spec in OPS.values() for r in spec.diff
}
"""For each rule, the expressions whose derivations use it (its tests)."""

RULE_OPS: dict[str, Op] = {r.name: spec.op for spec in OPS.values() for r in spec.diff}
"""The operator each rule differentiates."""
