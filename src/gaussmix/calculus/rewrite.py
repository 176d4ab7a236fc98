"""Rewriting to a fixed point, with every step recorded as data.

A :class:`Rule` is a name, the identity it implements, the operators it looks at and a function
from a node to its rewrite (or ``None``). :func:`rewrite` applies an ordered list of rules: at
each step the first rule in the list that applies anywhere is applied at its first position
(children before parents), and the step is recorded as ``Step(rule, before, after)`` with the
whole expression before and after. It stops at a fixed point, or raises a
:class:`CalculusError` after ``cap`` steps instead of looping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gaussmix.calculus.errors import CalculusError
from gaussmix.calculus.expr import Expr, Op
from gaussmix.calculus.ops import rebuild

__all__ = ["Rule", "Step", "rewrite"]

REWRITE_CAP = 400
"""Rewrite steps one simplification may take, plus :data:`STEPS_PER_NODE` per node of the input."""

STEPS_PER_NODE = 20


@dataclass(frozen=True)
class Rule:
    """A named rewrite: ``apply(node)`` returns the rewritten node, or None if it does not apply.

    Attributes
    ----------
    name : str
        Stable name, shown in derivations.
    identity : str
        The mathematical identity the rule implements, in the input syntax.
    ops : frozenset of Op
        The operators of the nodes the rule looks at.
    apply : callable
        Node -> rewritten node or None.
    """

    name: str
    identity: str
    ops: frozenset[Op]
    apply: Callable[[Expr], Expr | None] = field(compare=False, repr=False)


@dataclass(frozen=True)
class Step:
    """One step of a derivation: the rule applied, the expression before and after.

    Attributes
    ----------
    rule : str
        The rule's name.
    before, after : Expr
        The whole expression before and after the step.
    identity : str
        The identity the rule implements.
    lhs : str
        What the expressions stand for in the derivation (``df`` for differentials, ``G`` for
        the gradient, ...).
    stage : str
        ``differential``, ``simplify``, ``canonical``, ``identify``, ``symmetric`` (or a stage
        of a longer derivation).
    """

    rule: str
    before: Expr
    after: Expr
    identity: str = ""
    lhs: str = ""
    stage: str = ""

    @property
    def text(self) -> str:
        """``before = after   [rule: identity]`` in the input syntax."""
        from gaussmix.calculus.printing import to_text

        why = f"{self.rule}: {self.identity}" if self.identity else self.rule
        lhs = f"{self.lhs} = " if self.lhs else ""
        return f"{lhs}{to_text(self.before)} = {to_text(self.after)}   [{why}]"

    @property
    def latex(self) -> str:
        """The step in LaTeX: ``before = after \\quad \\text{(rule)}``."""
        from gaussmix.calculus.printing import to_latex

        return (
            f"{to_latex(self.before)} = {to_latex(self.after)}"
            f" \\quad \\text{{({_latex_escape(self.rule)})}}"
        )


def _latex_escape(text: str) -> str:
    for a, b in (
        ("\\", "\\textbackslash{}"),
        ("_", "\\_"),
        ("&", "\\&"),
        ("%", "\\%"),
        ("#", "\\#"),
        ("$", "\\$"),
        ("{", "\\{"),
        ("}", "\\}"),
    ):
        text = text.replace(a, b)
    return text


def _find(
    e: Expr, rules: Sequence[Rule], normal: dict[int, Expr]
) -> tuple[Rule, list[int], Expr] | None:
    """The first rule (in list order) that applies somewhere, its position and result."""
    by_op: dict[Op, list[tuple[int, list[int], Expr]]] = {}
    position = 0
    stack: list[tuple[Expr, list[int], bool]] = [(e, [], False)]
    # Post-order: children before parents, so inner redexes are found first.
    while stack:
        node, path, expanded = stack.pop()
        if id(node) in normal:
            continue
        if not expanded:
            stack.append((node, path, True))
            for i in reversed(range(len(node.args))):
                stack.append((node.args[i], [*path, i], False))
            continue
        by_op.setdefault(node.op, []).append((position, path, node))
        position += 1
    for rule in rules:
        # Candidates in post-order whatever the set of operators: the same input must give the
        # same derivation in every process (sets of enum members iterate in hash order).
        candidates = sorted(
            (entry for op in rule.ops for entry in by_op.get(op, ())), key=lambda t: t[0]
        )
        for _, path, node in candidates:
            out = rule.apply(node)
            if out is not None and out != node:
                return rule, path, out
    for nodes in by_op.values():
        for _, _, node in nodes:
            normal[id(node)] = node  # no rule applies: skip it (and keep it alive) from now on
    return None


def _replace(e: Expr, path: list[int], new: Expr) -> Expr:
    if not path:
        return new
    i = path[0]
    args = list(e.args)
    args[i] = _replace(args[i], path[1:], new)
    # Through the smart constructors: a sum inside a sum is flattened, a scalar that appears
    # inside a matrix product moves to the front.
    return rebuild(e, args)


def rewrite(
    e: Expr,
    rules: Sequence[Rule],
    *,
    cap: int | None = None,
    lhs: str = "",
    record: bool = True,
    stage: str = "simplify",
) -> tuple[Expr, list[Step]]:
    """Apply rules to a fixed point.

    Parameters
    ----------
    e : Expr
    rules : sequence of Rule
        In priority order.
    cap : int, optional
        Most steps before giving up with a CalculusError (by default grows with the input).
    lhs : str
        Label of the recorded steps.
    record : bool
        Record the steps (False to tidy silently).
    stage : str
        Stage label of the recorded steps.

    Returns
    -------
    Expr
        The fixed point.
    list of Step
        The steps taken, in order.
    """
    steps: list[Step] = []
    normal: dict[int, Expr] = {}
    if cap is None:
        cap = REWRITE_CAP + STEPS_PER_NODE * sum(1 for _ in e.walk())
    for _ in range(cap):
        found = _find(e, rules, normal)
        if found is None:
            return e, steps
        rule, path, new = found
        after = _replace(e, path, new)
        if record:
            steps.append(Step(rule.name, e, after, rule.identity, lhs, stage))
        e = after
    raise CalculusError(
        f"simplification did not settle within {cap} steps; please report the expression"
    )
