"""The one rule type, its pattern matcher, and rewriting to a fixed point with every step recorded.

A :class:`Rule` is ``Rule(name, identity, pattern, rewrite, kind)``: one identity, a pattern that
says where it applies, and the rewrite. A :class:`Pat` is an operator (or a set of them, or any),
optional patterns for the operands, an optional predicate, and a name to bind the node to; a
name bound twice must match equal nodes (``a/a``). The rewrite receives the :class:`Match`
(the bindings, the matched node and the caller's context) and returns the new node, or None
when the identity does not apply after all. Differentiation, the canonical form, simplification
and the equation solver of ``derive/`` are each an explicit list of these rules.

``kind`` says what a reader of a derivation needs the step for (the lecture view groups by it):

* ``calculus``: a named identity a lecture cites (the product rule, Jacobi's formula, the trace
  trick, identification of the gradient, a stationary point, a Lagrangian, a substitution);
* ``algebra``: bookkeeping (signs, the order of scalars, double transposes, like terms).

:func:`rewrite` applies an ordered list of rules: at each step the first rule in the list that
applies anywhere is applied at its first position (children before parents), or with
``by_position`` the first position where any rule applies. The step is recorded as
``Step(rule, before, after)`` with the whole expression before and after; a step whose printed
result (text or LaTeX) equals its input is applied but never recorded. It stops at a fixed point,
or raises a :class:`CalculusError` after ``cap`` steps instead of looping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gaussmix.calculus.errors import CalculusError
from gaussmix.calculus.expr import Expr, Op
from gaussmix.calculus.ops import rebuild

__all__ = ["KINDS", "Match", "Pat", "Rule", "Step", "rewrite"]

REWRITE_CAP = 400
"""Rewrite steps one simplification may take, plus :data:`STEPS_PER_NODE` per node of the input."""

STEPS_PER_NODE = 20

KINDS = ("calculus", "algebra")
"""The kinds of rules: named identities a lecture cites, and bookkeeping."""


@dataclass(frozen=True)
class Pat:
    """A pattern: an operator (or operators; None for any), operand patterns, a predicate, a name.

    Attributes
    ----------
    op : Op, frozenset of Op, or None
    args : tuple of Pat, optional
        Patterns for the operands (their number must match); None looks at no operand.
    where : callable, optional
        Node -> bool, a condition on the node.
    name : str
        Bind the node to this name in the match (a name bound twice needs equal nodes).
    """

    op: Op | frozenset[Op] | None = None
    args: tuple[Pat, ...] | None = None
    where: Callable[[Expr], bool] | None = field(default=None, compare=False)
    name: str = ""

    def __post_init__(self) -> None:
        ops = (
            None
            if self.op is None
            else (self.op if isinstance(self.op, frozenset) else frozenset({self.op}))
        )
        object.__setattr__(self, "_ops", ops)  # matching is the hot path: computed once

    @property
    def ops(self) -> frozenset[Op] | None:
        """The operators at the root (None: any)."""
        return self._ops  # type: ignore[attr-defined]

    def match(self, e: Expr, bindings: dict[str, Expr]) -> bool:
        """Whether ``e`` matches, binding names in ``bindings`` (left partly filled if not)."""
        ops = self._ops  # type: ignore[attr-defined]
        if ops is not None and e.op not in ops:
            return False
        if self.args is not None:
            if len(self.args) != len(e.args):
                return False
            for p, a in zip(self.args, e.args, strict=True):
                if not p.match(a, bindings):
                    return False
        if self.where is not None and not self.where(e):
            return False
        if self.name:
            seen = bindings.get(self.name)
            if seen is not None and (seen != e or seen.shape != e.shape):
                return False
            bindings[self.name] = e
        return True


def P(
    op: Op | frozenset[Op] | None = None,
    *args: Pat,
    name: str = "",
    where: Callable[[Expr], bool] | None = None,
) -> Pat:
    """``P(Op.TR, P(name="A"))``: a pattern (with no operand patterns, operands are not
    looked at)."""
    return Pat(op, tuple(args) if args else None, where, name)


class Match(dict[str, Expr]):
    """The names a pattern bound, the matched node and the caller's context.

    A rewrite may set ``note`` to the fact it relied on (``N_k > 0``); the recorded step adds it
    to the rule's identity.
    """

    node: Expr
    ctx: Any
    note: str

    def __init__(self, node: Expr, ctx: Any = None) -> None:
        super().__init__()
        self.node = node
        self.ctx = ctx
        self.note = ""


@dataclass(frozen=True)
class Rule:
    """One identity, where it applies, and the rewrite.

    Attributes
    ----------
    name : str
        Stable and unique name, shown in derivations.
    identity : str
        The identity the rule implements, in the input syntax.
    pattern : Pat
        Where it applies.
    rewrite : callable
        Match -> the rewritten node, or None when the identity does not apply after all.
    kind : str
        ``calculus`` or ``algebra`` (see the module docstring).
    example : str
        An expression the rule rewrites (its numeric test: both sides agree at random values);
        empty for rules tested by their own suite (differentials by finite differences).
    types : dict
        Kinds of the example's names.
    """

    name: str
    identity: str
    pattern: Pat
    rewrite: Callable[[Match], Expr | None] = field(compare=False, repr=False)
    kind: str = "algebra"
    example: str = ""
    types: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"rule {self.name!r}: kind must be one of {KINDS}, not {self.kind!r}")

    @property
    def ops(self) -> frozenset[Op] | None:
        """The operators of the nodes the rule looks at (None: any)."""
        return self.pattern.ops

    def apply(self, e: Expr, ctx: Any = None) -> Expr | None:
        """The rewrite of ``e``, or None when the rule does not apply to it."""
        found = self.apply_noted(e, ctx)
        return None if found is None else found[0]

    def apply_noted(self, e: Expr, ctx: Any = None) -> tuple[Expr, str] | None:
        """The rewrite of ``e`` and the identity as the step states it (with the rewrite's
        note), or None when the rule does not apply."""
        m = Match(e, ctx)
        if not self.pattern.match(e, m):
            return None
        out = self.rewrite(m)
        if out is None or out == e:
            return None
        return out, f"{self.identity}; {m.note}" if m.note else self.identity


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
    kind : str
        The rule's kind: ``calculus`` or ``algebra``.
    """

    rule: str
    before: Expr
    after: Expr
    identity: str = ""
    lhs: str = ""
    stage: str = ""
    kind: str = ""

    @property
    def text(self) -> str:
        """``before = after   [rule: identity]`` in the input syntax."""
        from gaussmix.calculus.printing import to_text

        why = f"{self.rule}: {self.identity}" if self.identity else self.rule
        if self.stage == "identify":  # before is df, after the gradient: not an equation
            return f"df = {to_text(self.before)}, so {self.lhs} = {to_text(self.after)}   [{why}]"
        lhs = f"{self.lhs} = " if self.lhs else ""
        return f"{lhs}{to_text(self.before)} = {to_text(self.after)}   [{why}]"

    @property
    def latex(self) -> str:
        """The step in LaTeX: ``before = after \\quad \\text{(rule)}``."""
        from gaussmix.calculus.printing import to_latex

        rule = f" \\quad \\text{{({_latex_escape(self.rule)})}}"
        if self.stage == "identify":  # before is df, after the gradient: not an equation
            lhs = _latex_escape(self.lhs)
            return (
                f"\\mathrm{{d}}f = {to_latex(self.before)}, \\text{{ so }} "
                f"{lhs} = {to_latex(self.after)}{rule}"
            )
        return f"{to_latex(self.before)} = {to_latex(self.after)}{rule}"


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
    e: Expr, rules: Sequence[Rule], normal: dict[int, Expr], ctx: Any, by_position: bool
) -> tuple[Rule, list[int], Expr, str] | None:
    """The first rule (in list order) that applies somewhere, its position and result; with
    ``by_position``, the first position (parents before children) where some rule applies."""
    if by_position:
        stack: list[tuple[Expr, list[int]]] = [(e, [])]
        while stack:
            node, path = stack.pop()
            if id(node) in normal:
                continue
            for rule in rules:
                ops = rule.ops
                if ops is None or node.op in ops:
                    out = rule.apply_noted(node, ctx)
                    if out is not None:
                        return rule, path, out[0], out[1]
            stack.extend((node.args[i], [*path, i]) for i in reversed(range(len(node.args))))
        return None
    by_op: dict[Op | None, list[tuple[int, list[int], Expr]]] = {}
    everything: list[tuple[int, list[int], Expr]] = []
    position = 0
    post: list[tuple[Expr, list[int], bool]] = [(e, [], False)]
    # Post-order: children before parents, so inner redexes are found first.
    while post:
        node, path, expanded = post.pop()
        if id(node) in normal:
            continue
        if not expanded:
            post.append((node, path, True))
            for i in reversed(range(len(node.args))):
                post.append((node.args[i], [*path, i], False))
            continue
        entry = (position, path, node)
        by_op.setdefault(node.op, []).append(entry)
        everything.append(entry)
        position += 1
    for rule in rules:
        ops = rule.pattern._ops  # type: ignore[attr-defined]
        # Candidates in post-order whatever the set of operators: the same input must give the
        # same derivation in every process (sets of enum members iterate in hash order).
        if ops is None:
            candidates = everything
        elif len(ops) == 1:
            candidates = by_op.get(next(iter(ops)), [])
        else:
            candidates = sorted(
                (entry for op in ops for entry in by_op.get(op, ())), key=lambda t: t[0]
            )
        for _, path, node in candidates:
            out = rule.apply_noted(node, ctx)
            if out is not None:
                return rule, path, out[0], out[1]
    for _, _, node in everything:
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


def _everywhere(e: Expr, rule: Rule, rules: Sequence[Rule], ctx: Any) -> Expr:
    """``rule`` applied at every place where it is the first of ``rules`` that fits (outermost
    first, not inside a rewritten node)."""
    ops = rule.ops
    if ops is None or e.op in ops:
        out = rule.apply(e, ctx)
        if out is not None:
            earlier = rules[: rules.index(rule)]
            if not any(r.apply(e, ctx) is not None for r in earlier):
                return out
    if not e.args:
        return e
    args = [_everywhere(a, rule, rules, ctx) for a in e.args]
    if all(a is b for a, b in zip(args, e.args, strict=True)):
        return e
    return rebuild(e, args)


def rewrite(
    e: Expr,
    rules: Sequence[Rule],
    *,
    cap: int | None = None,
    lhs: str = "",
    record: bool = True,
    stage: str = "simplify",
    ctx: Any = None,
    by_position: bool = False,
    everywhere: bool = False,
    show: Callable[[Expr], Expr] | None = None,
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
    ctx : object, optional
        Passed to the rules' rewrites (the variable of a differentiation, the solver's facts).
    by_position : bool
        Take the first position where a rule applies, rather than the first rule that applies.
    everywhere : bool
        Apply the rule found at every place it fits, as one step.
    show : callable, optional
        Expr -> the expression a reader sees (recorded steps hold what it returns).

    Returns
    -------
    Expr
        The fixed point.
    list of Step
        The steps taken, in order; never one that prints like its input.
    """
    from gaussmix.calculus.printing import to_latex, to_text

    steps: list[Step] = []
    normal: dict[int, Expr] = {}
    if cap is None:
        cap = REWRITE_CAP + STEPS_PER_NODE * sum(1 for _ in e.walk())
    printed: tuple[Expr, str, str] | None = None  # the line shown last, and how it prints
    for _ in range(cap):
        found = _find(e, rules, normal, ctx, by_position)
        if found is None:
            return e, steps
        rule, path, new, identity = found
        after = _everywhere(e, rule, rules, ctx) if everywhere else _replace(e, path, new)
        if record:
            before_shown = show(e) if show is not None else e
            after_shown = show(after) if show is not None else after
            if printed is None or printed[0] is not before_shown:
                printed = (before_shown, to_text(before_shown), to_latex(before_shown))
            text, latex = to_text(after_shown), to_latex(after_shown)
            # a step that prints like its input (in text or in LaTeX) is not shown
            if text != printed[1] and latex != printed[2]:
                steps.append(
                    Step(rule.name, before_shown, after_shown, identity, lhs, stage, rule.kind)
                )
            printed = (after_shown, text, latex)
        e = after
    raise CalculusError(
        f"simplification did not settle within {cap} steps; please report the expression"
    )
