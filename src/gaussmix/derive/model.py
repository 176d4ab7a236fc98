"""One plan runner for every derivation of a closed-form maximiser: the GMM's M-step and a
student's own model.

A derivation here is a *plan*: a list of (section, action, arguments) run in order on a shared
state. The actions are few and generic:

* :func:`stationary`: the gradient of the objective (or of the Lagrangian) in one unknown, its
  stationary equation and the solution, affine in the unknown or in its inverse (the solver of
  :mod:`~gaussmix.derive.solve`). An equation that does not contain its unknown (the derivative
  in a multiplier is the constraint) gets the earlier solutions written in terms of it put in,
  is solved for it, and its value goes back into those solutions: exactly how a lecture solves
  pi_k = -N_k/lambda together with sum_k(pi_k) = 1.
* :func:`lagrangian`: L = f + lambda*(g - c) for a linear equality constraint g = c.
* :func:`at_the_new`: an update written in terms of another unknown (the covariance, in the
  mean) evaluated at that unknown's new value.

:func:`derive_model` builds the plan from what a student types (the objective, the unknowns,
the constraints, facts such as ``sum_k(q_kn) = 1``); :func:`gaussmix.derive.derive_gmm` runs a
plan of its own (the structure of the precision first) through the same :func:`run`. Nothing a
reader sees is typed: every line is an engine step. The solver refuses what it cannot isolate,
naming the equation; a factor it must divide by and cannot show to be nonzero is assumed so,
and the derivation says which (``assumptions``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gaussmix.calculus.derivative import differentiate
from gaussmix.calculus.display import latex_label
from gaussmix.calculus.errors import CalculusError
from gaussmix.calculus.expr import Expr, Op, add, equation, mul, num, sub, substitute, sumidx
from gaussmix.calculus.lecture import Line, free_indices, view, why_rows
from gaussmix.calculus.numeric import evaluate, random_point
from gaussmix.calculus.ops import rebuild
from gaussmix.calculus.parse import parse, parse_kinds
from gaussmix.calculus.printing import to_latex, to_text
from gaussmix.calculus.rewrite import P, Rule, Step
from gaussmix.calculus.rules.simplify import RULES
from gaussmix.derive.solve import Facts, Identity, Solver

__all__ = [
    "LAGRANGIAN",
    "Derivation",
    "ModelDerivation",
    "Plan",
    "State",
    "at_the_new",
    "derive_model",
    "lagrangian",
    "rename_index",
    "run",
    "stationary",
    "variable",
]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?")

MULTIPLIERS = ("lambda", "nu", "eta", "kappa", "gamma")
"""Names given to the multipliers of the constraints, in order, skipping names in use."""

FRESH_INDICES = "mjlprstuvw"
"""Letters a substituted value's own sums are renamed to where its index is taken already."""


# --- the result ---------------------------------------------------------------------------------


@dataclass
class Derivation:
    """A derived closed-form maximiser: the steps and what they found.

    Attributes
    ----------
    title : str
        The heading of the printed derivation.
    function : str
        The objective's name in the lines (``f``; ``Q`` for a surrogate).
    steps : list of Step
        The derivation, in order; ``step.stage`` names its section.
    titles : dict of str to str
        Each section's heading.
    objective : Expr
        The function maximised.
    lagrangian : Expr or None
        The objective plus a multiplier times each constraint, when there are constraints.
    updates : dict of str to Expr
        The closed forms, by name (for a model, the unknown's name).
    targets : dict of str to Expr
        The variable each update gives (``mu_k``; ``Sigma_k`` for an update of the inverse).
    definitions : dict of str to Expr
        Abbreviations used by the updates (``N_k``).
    gradients : dict of str to Expr
        The gradient of the objective (of the Lagrangian for a constrained unknown and a
        multiplier) in each unknown.
    parameters : dict of str to Expr
        The unknowns (and multipliers) as variables.
    solutions : dict of str to Expr
        What each unknown and multiplier was solved for.
    symbols : dict of str to Expr
        The names updates go by where the unknown is not itself the update (``Sigma_k``).
    evaluated : dict of str to Expr
        Updates with the other unknowns' new values substituted: what to evaluate.
    assumptions : list of str
        Factors assumed nonzero or invertible to divide by them.
    indices : str
        The index letters of the problem.
    on_lagrangian : set of str
        The unknowns (and multipliers) whose gradient is that of the Lagrangian.
    """

    title: str = ""
    function: str = "f"
    steps: list[Step] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)
    objective: Expr | None = None
    lagrangian: Expr | None = None
    updates: dict[str, Expr] = field(default_factory=dict)
    targets: dict[str, Expr] = field(default_factory=dict)
    definitions: dict[str, Expr] = field(default_factory=dict)
    gradients: dict[str, Expr] = field(default_factory=dict)
    parameters: dict[str, Expr] = field(default_factory=dict)
    solutions: dict[str, Expr] = field(default_factory=dict)
    symbols: dict[str, Expr] = field(default_factory=dict)
    evaluated: dict[str, Expr] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    indices: str = ""
    on_lagrangian: set[str] = field(default_factory=set)
    identities: list[Expr] = field(default_factory=list)
    """Facts of the problem the solver used left to right (``sum_k(q_kn) = 1``)."""
    coupled: dict[str, list[str]] = field(default_factory=dict)
    """Updates written in terms of unknowns whose own updates depend on unknowns."""

    # -- numbers -------------------------------------------------------------------------------
    def expanded(self, name: str) -> Expr:
        """An update as it is evaluated: other unknowns at their new values, and abbreviations
        written out (``N_k`` as ``sum_n(q_kn)``)."""
        e = self.evaluated.get(name, self.updates[name])
        for symbol, definition in self.definition_vars():
            e = substitute(e, symbol, definition)
        return e

    def definition_vars(self) -> list[tuple[Expr, Expr]]:
        """The abbreviations as (variable, definition) pairs."""
        out = []
        for name, definition in self.definitions.items():
            base = name.split("_")[0]
            symbol = parse(name, {base: "scalar"}, indices=self.indices or "nk")
            out.append((symbol, definition))
        return out

    def function_of(self, name: str) -> Expr:
        """The function whose gradient in ``name`` was taken (the Lagrangian or the objective)."""
        function = self.lagrangian if name in self.on_lagrangian else self.objective
        if function is None:
            raise CalculusError(f"{name} is not an unknown of this derivation")
        return function

    def solve_at(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The unknowns' values at data ``values`` (the closed forms evaluated with numpy).

        Parameters
        ----------
        values : mapping of str to array_like
            A value for every variable that is not an unknown, by base name (indexed
            variables with one leading axis per index, as
            :func:`~gaussmix.calculus.numeric.evaluate` takes them).

        Returns
        -------
        dict of str to ndarray or float
            By base name, the unknowns and the multipliers: one indexed by k has a leading
            axis of the size of k.
        """
        counts = _index_counts(self.objective, values) if self.objective is not None else {}
        known = dict(values)
        out: dict[str, Any] = {}
        for name, target in self.targets.items():
            out[target.name] = _evaluate_indexed(self.expanded(name), target, known, counts)
            known[target.name] = out[target.name]
        for name, v in self.parameters.items():
            if v.name not in out and name in self.solutions:
                e = self.solutions[name]
                for symbol, definition in self.definition_vars():
                    e = substitute(e, symbol, definition)
                out[v.name] = _evaluate_indexed(e, v, known, counts)
                known[v.name] = out[v.name]
        return out

    def check(self, seed: int = 0) -> dict[str, tuple[float, float]]:
        """Each gradient at a random point and at the derived solution there.

        The data (every variable that is not an unknown) are random; the unknowns are first
        random too, then the closed forms evaluated on the data. Returns, per unknown, the
        largest norm of its gradient (over the values of its indices) at the random point and
        at the solution: the second is zero up to rounding when the derivation is right.
        Updates written in terms of each other (``coupled``) are each checked at the others'
        random values, the maximiser given them.
        """
        if self.objective is None:
            raise CalculusError("nothing was derived")
        functions = [self.objective] + ([self.lagrangian] if self.lagrangian is not None else [])
        gradients = tuple(self.gradients.values())
        env = {i: 1 for g in gradients for i in free_indices(g)}
        point = random_point(functions[-1], seed, also=gradients, index_env=env)
        unknowns = {v.name for v in self.parameters.values()}
        data = _satisfying(
            self.identities, {k: v for k, v in point.values.items() if k not in unknowns}
        )
        counts = _index_counts(functions[-1], point.values)
        if self.coupled:
            # each update at the others' random values: the maximiser given them
            solutions = {}
            for name, target in self.targets.items():
                value = _evaluate_indexed(
                    self.expanded(name), target, {**point.values, **data}, counts
                )
                solutions[name] = {**point.values, **data, target.name: value}
            at = {name: solutions.get(name, {**point.values, **data}) for name in self.gradients}
        else:
            joint = {**point.values, **data, **self.solve_at(data)}
            at = {name: joint for name in self.gradients}
        out = {}
        for name, gradient in self.gradients.items():
            wrt = self.parameters[name]
            out[name] = (
                _largest(gradient, wrt, point.values, counts),
                _largest(gradient, wrt, at[name], counts),
            )
        return out

    # -- printing ------------------------------------------------------------------------------
    def sections(self) -> list[tuple[str, list[Step]]]:
        """The steps grouped by section, in order."""
        out: list[tuple[str, list[Step]]] = []
        for step in self.steps:
            if not out or out[-1][0] != step.stage:
                out.append((step.stage, []))
            out[-1][1].append(step)
        return out

    def results(self) -> list[Expr]:
        """The closed forms as equations, and the abbreviations they use."""
        out = [equation(self.targets[name], u) for name, u in self.updates.items()]
        out += [equation(symbol, definition) for symbol, definition in self.definition_vars()]
        return out

    def view(self, detail: str = "lecture") -> list[Line]:
        """The derivation as lines: ``lecture`` groups the steps into one line per idea
        (:mod:`~gaussmix.calculus.lecture`), ``full`` is one line per step."""
        names = {self.objective: self.function} if self.objective is not None else {}
        return view(self.steps, detail, names)

    def _line_sections(self, detail: str) -> list[tuple[str, list[Line]]]:
        out: list[tuple[str, list[Line]]] = []
        for line in self.view(detail):
            if not out or out[-1][0] != line.stage:
                out.append((line.stage, []))
            out[-1][1].append(line)
        return out

    def _head(self) -> list[str]:
        """Lines before the first section: the objective, for a model (a GMM's first section
        derives its surrogate)."""
        return []

    def _tail(self) -> list[str]:
        out = [f"   {note}" for note in self.notes()]
        if self.assumptions:
            out.append(f"   assuming: {'; '.join(self.assumptions)}")
        return ["", *out] if out else []

    def notes(self) -> list[str]:
        """What the reader should know about the updates (those written in each other)."""
        if not self.coupled:
            return []
        names = sorted({*self.coupled, *(n for others in self.coupled.values() for n in others)})
        return [
            f"{' and '.join(names)} are written in terms of each other: no closed form for them "
            "together; each update is the maximiser given the others (iterate them)"
        ]

    def text(self, detail: str = "full") -> str:
        """The derivation as numbered text lines, each followed by its rule (``detail``:
        ``full``, every step, or ``lecture``, one line per idea)."""
        lines = [self.title, *self._head()]
        number = 0
        if detail != "full":
            for stage, group in self._line_sections(detail):
                lines += ["", self.titles.get(stage, stage)]
                for line in group:
                    number += 1
                    lines.append(f"{number:>4}. {line.text}")
                    lines += why_rows(line.why)
        else:
            for stage, steps in self.sections():
                lines += ["", self.titles.get(stage, stage)]
                for step, start in _with_starts(steps):
                    if start:
                        lines.append(f"      {step.lhs} = {to_text(step.before)}")
                    number += 1
                    lines.append(f"{number:>4}. {_line(step)}")
                    lines.append(f"        [{_why(step)}]")
        lines += ["", "   The updates:"] + [f"      {to_text(eq)}" for eq in self.results()]
        return "\n".join(lines + self._tail())

    def latex(self, detail: str = "full") -> str:
        """The derivation as LaTeX: one ``aligned`` block per section (``detail``: ``full``,
        every step, or ``lecture``, one line per idea)."""
        blocks = [f"% {self.title}"]
        if detail != "full":
            sections = self._line_sections(detail)
            for i, (stage, group) in enumerate(sections):
                blocks.append(f"% {self.titles.get(stage, stage)}")
                rows = [f"& {line.latex} && {_latex_why(line)}" for line in group]
                if i == len(sections) - 1:
                    rows += [f"& {to_latex(eq)} && \\text{{(update)}}" for eq in self.results()]
                blocks.append("\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}")
            return "\n".join(blocks)
        steps_sections = self.sections()
        for i, (stage, steps) in enumerate(steps_sections):
            blocks.append(f"% {self.titles.get(stage, stage)}")
            rows = []
            for s, start in _with_starts(steps):
                if start:
                    rows.append(f"& {latex_label(s.lhs)} = {to_latex(s.before)}")
                rows.append(f"& {_line_latex(s)} && \\text{{({_escape(s.rule)})}}")
            if i == len(steps_sections) - 1:
                rows += [f"& {to_latex(eq)} && \\text{{(update)}}" for eq in self.results()]
            blocks.append("\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}")
        return "\n".join(blocks)

    def heading(self) -> str:
        """The Markdown heading's words."""
        return self.title

    def markdown(self, heading: str = "##", detail: str = "full") -> str:
        """The derivation as Markdown with LaTeX math (one numbered list per section)."""
        out = [f"{heading} {self.heading()}", ""]
        number = 0
        if detail != "full":
            for stage, group in self._line_sections(detail):
                out += [f"{heading}# {self.titles.get(stage, stage)}", ""]
                for line in group:
                    number += 1
                    out.append(f"{number}. ${line.latex}$  ")
                    out.append(f"   {line.why_markdown}")
                out.append("")
        else:
            for stage, steps in self.sections():
                out += [f"{heading}# {self.titles.get(stage, stage)}", ""]
                for step, start in _with_starts(steps):
                    if start:
                        out.append(f"   ${latex_label(step.lhs)} = {to_latex(step.before)}$")
                        out.append("")
                    number += 1
                    rule = _why(step)
                    name, _, identity = rule.partition(": ")
                    why = f"*{name}*" + (f": `{identity}`" if identity else "")
                    out.append(f"{number}. ${_line_latex(step)}$  ")
                    out.append(f"   {why}")
                out.append("")
        out += ["The updates:", ""] + [f"- ${to_latex(eq)}$" for eq in self.results()]
        out += [line for note in self.notes() for line in ("", note[0].upper() + note[1:] + ".")]
        if self.assumptions:
            out += ["", "Assuming: " + "; ".join(f"`{a}`" for a in self.assumptions) + "."]
        return "\n".join(out).rstrip() + "\n"

    def _repr_markdown_(self) -> str:
        """Jupyter: the derivation as Markdown with LaTeX math, in the lecture view."""
        return self.markdown(heading="###", detail="lecture")

    def _repr_latex_(self) -> str:
        """Jupyter: the derivation's ``aligned`` blocks, one display equation per section."""
        blocks = self.latex("lecture").split("\n% ")[1:]
        return "\n".join(f"$${block.split(chr(10), 1)[1]}$$" for block in blocks)

    def to_dict(self) -> dict[str, Any]:
        """The derivation as plain data (for JSON)."""
        out: dict[str, Any] = {
            "updates": {k: to_text(v) for k, v in self.updates.items()},
            "definitions": {k: to_text(v) for k, v in self.definitions.items()},
            "steps": [
                {
                    "section": s.stage,
                    "rule": s.rule,
                    "identity": s.identity,
                    "line": _line(s),
                    "latex": _line_latex(s),
                }
                for s in self.steps
            ],
        }
        if self.assumptions:
            out["assumptions"] = list(self.assumptions)
        return out


@dataclass
class ModelDerivation(Derivation):
    """The derivation of a student's model (:func:`derive_model`)."""

    text_input: str = ""
    constraints: list[Expr] = field(default_factory=list)

    def results(self) -> list[Expr]:
        """The closed forms, the multipliers' values, and the abbreviations."""
        out = [equation(self.targets[name], u) for name, u in self.updates.items()]
        given = {t.full_name for t in self.targets.values()}
        out += [
            equation(self.parameters[name], value)
            for name, value in self.solutions.items()
            if name not in given and name in self.parameters
        ]
        out += [equation(symbol, definition) for symbol, definition in self.definition_vars()]
        return out

    def _head(self) -> list[str]:
        head = [f"      f = {self.text_input}"] if self.text_input else []
        head += [f"      subject to {to_text(c)}" for c in self.constraints]
        return head


_SIMPLIFY = frozenset(r.name for r in RULES)


def _why(step: Step) -> str:
    """The rule, with its identity unless it is a simplification (whose name says enough)."""
    if step.identity and (step.rule not in _SIMPLIFY or step.stage == "surrogate"):
        return f"{step.rule}: {step.identity}"
    return step.rule


def _with_starts(steps: list[Step]) -> list[tuple[Step, bool]]:
    """Each step, and whether it starts a differential (its 'before' is shown first)."""
    out = []
    previous = ""
    for s in steps:
        out.append((s, s.lhs.startswith("d") and s.lhs != previous))
        previous = s.lhs
    return out


def _line(step: Step) -> str:
    after = to_text(step.after)
    return after if step.after.op is Op.EQ or not step.lhs else f"{step.lhs} = {after}"


def _line_latex(step: Step) -> str:
    after = to_latex(step.after)
    if step.after.op is Op.EQ or not step.lhs:
        return after
    return f"{latex_label(step.lhs)} = {after}"


def _latex_why(line: Line) -> str:
    """A lecture line's rule in LaTeX, with the abbreviations it introduces."""
    why = f"\\text{{({_escape(line.rule)}"
    if not line.introduces:
        return why + ")}"
    notes = ", ".join(to_latex(eq) for eq in line.introduces)
    return f"{why}; writing }} {notes}\\text{{)}}"


def _escape(text: str) -> str:
    return text.replace("_", "\\_").replace("&", "\\&").replace("#", "\\#")


# --- the runner ---------------------------------------------------------------------------------


@dataclass
class State:
    """What the plan's actions share: the derivation so far and the facts of the problem."""

    d: Derivation
    facts: Facts
    kinds: dict[str, str] = field(default_factory=dict)


Action = Callable[..., None]
Plan = list[tuple[str, Action, dict[str, Any]]]


def run(plan: Plan, state: State) -> Derivation:
    """Run a plan: each (section, action, arguments) in order, on the shared state."""
    for stage, action, arguments in plan:
        action(state, stage, **arguments)
    state.d.assumptions = list(state.facts.assumed)
    return state.d


def _relabel(steps: Iterable[Step], stage: str, function: str) -> list[Step]:
    names = {"df": f"d{function}", "G": "G"}
    return [
        Step(s.rule, s.before, s.after, s.identity, names.get(s.lhs, s.lhs), stage, s.kind)
        for s in steps
    ]


def variable(e: Expr, full_name: str) -> Expr:
    """The variable of ``e`` written ``full_name`` (``mu_k``)."""
    for node in e.walk():
        if node.op is Op.VAR and node.full_name == full_name:
            return node
    raise CalculusError(f"{full_name} does not occur in {to_text(e)}")


def stationary(
    state: State,
    stage: str,
    name: str,
    update: str,
    covariance: Expr | None = None,
    note: str = "from the first equation",
) -> None:
    """The gradient in one unknown, its stationary equation, and the solution.

    Affine in the unknown or in its inverse; ``covariance`` names the inverse when the
    equation is solved in it (``Sigma_k := inv(Lambda_k)``). An equation free of its unknown
    (the constraint, for a multiplier) has the earlier solutions written in terms of the
    unknown put in, is solved, and the value goes back into those solutions.
    """
    d = state.d
    on_lagrangian = name in d.on_lagrangian and d.lagrangian is not None
    function = d.lagrangian if on_lagrangian else d.objective
    if function is None:
        raise CalculusError("internal error: the plan has no objective yet")
    theta = d.parameters.get(name) or variable(function, name)
    d.parameters[name] = theta
    derivation = differentiate(function, theta)
    d.gradients[name] = derivation.gradient
    d.steps += _relabel(derivation.steps, stage, "L" if on_lagrangian else d.function)
    solver = Solver(state.facts, stage)
    eq = solver.stationary(derivation.gradient)
    if not eq.depends_on(theta):
        _solve_through_earlier(state, solver, eq, name, theta, note)
        d.steps += solver.steps
        return
    final, u, u_value = solver.solve(eq, theta)
    d.solutions[name] = final.args[1]
    if u == theta or covariance is None:
        d.updates[update] = final.args[1]
        d.targets[update] = theta
    else:
        # the inverse of the precision is the covariance: inv(Lambda_k) = S is Sigma_k = S
        d.symbols[update] = covariance
        d.targets[update] = covariance
        named = solver.substitute(
            equation(u, u_value),
            u,
            covariance,
            f"{to_text(covariance)} := {to_text(u)}, the covariance",
            simplify=False,
        )
        d.updates[update] = named.args[1]
    d.steps += solver.steps


def _solve_through_earlier(
    state: State, solver: Solver, eq: Expr, name: str, theta: Expr, note: str
) -> None:
    d = state.d
    earlier = [(p, s) for p, s in d.solutions.items() if s.depends_on(theta)]
    if not earlier:
        raise CalculusError(
            f"the stationary equation in {name}, {to_text(eq)}, does not contain {name}, and "
            f"no unknown solved before it is written in terms of {name}: put {name} after the "
            "unknowns it determines in --for"
        )
    for p, s in earlier:
        eq = solver.substitute(eq, d.parameters[p], s, f"{p} = {to_text(s)} {note}")
    eq = solver.count(eq, theta)
    final, _, _ = solver.solve(eq, theta)
    value = final.args[1]
    d.solutions[name] = value
    for p, s in earlier:
        back = solver.substitute(
            equation(d.parameters[p], s), theta, _fresh_sums(value, s), f"{name} = {to_text(value)}"
        )
        d.solutions[p] = back.args[1]
        for update, target in d.targets.items():
            if target == d.parameters[p]:
                d.updates[update] = back.args[1]


def _multiplier_term(multiplier: Expr, g: Expr) -> Expr:
    # lambda*(g - c), summed over the constraint's free indices (one constraint per k)
    term = mul(multiplier, g)
    for index in sorted(free_indices(term)):
        term = sumidx(index, term)
    return term


LAGRANGIAN = Rule(
    "Lagrangian",
    "L = Q + lambda*(g - c) for a constraint g = c",
    P(where=lambda e: e.is_scalar and e.op is not Op.EQ),
    lambda m: add(m.node, _multiplier_term(m.ctx[0], m.ctx[1])),
    kind="calculus",
)
"""A constrained maximum is a stationary point of the Lagrangian (a constraint with a free
index is one constraint per value of it, each with its multiplier: their terms are summed)."""


def lagrangian(
    state: State,
    stage: str,
    constraint: tuple[Expr, Expr],
    multiplier: Expr,
    text: str,
    unknowns: Sequence[str],
) -> None:
    """L = f + multiplier*(g - c) for the constraint g = c (added to the Lagrangian so far);
    the gradients in ``unknowns`` (those the constraint contains) and in the multiplier are
    then taken of L."""
    d = state.d
    before = d.lagrangian if d.lagrangian is not None else d.objective
    if before is None:
        raise CalculusError("internal error: the plan has no objective yet")
    g, c = constraint
    out = LAGRANGIAN.apply(before, (multiplier, sub(g, c)))
    if out is None:
        raise CalculusError("internal error: the Lagrangian needs a scalar objective")
    d.lagrangian = out
    d.on_lagrangian |= {multiplier.full_name, *unknowns}
    free = sorted(free_indices(g) | free_indices(c))
    each = f", one per {', '.join(free)}" if free else ""
    d.steps.append(
        Step(
            LAGRANGIAN.name,
            before,
            out,
            f"{LAGRANGIAN.identity}; here {text}{each}",
            "L",
            stage,
            LAGRANGIAN.kind,
        )
    )


def at_the_new(state: State, stage: str, parameter: str, update: str, into: str) -> None:
    """The stationary equations are solved together: an update written in terms of another
    unknown (the covariance, in the mean) is evaluated at that unknown's new value."""
    d = state.d
    target = d.targets[into]
    solver = Solver(state.facts, stage)
    line = equation(target, d.evaluated.get(into, d.updates[into]))
    value = _fresh_sums(d.updates[update], line, inside=True)
    out = solver.substitute(
        line,
        d.parameters[parameter],
        value,
        f"{parameter} = {to_text(d.updates[update])}, the new {update.rstrip('s')}",
        simplify=False,
    )
    d.steps += solver.steps
    d.evaluated[into] = out.args[1]


# --- indices --------------------------------------------------------------------------------------


def _indices_in(e: Expr) -> set[str]:
    out: set[str] = set()
    for node in e.walk():
        if node.op is Op.VAR:
            out |= set(node.indices)
        elif node.op is Op.SUMIDX:
            out.add(node.name)
    return out


def _bound(e: Expr) -> list[str]:
    seen: list[str] = []
    for node in e.walk():
        if node.op is Op.SUMIDX and node.name not in seen:
            seen.append(node.name)
    return seen


def _fresh_sums(value: Expr, into: Expr, inside: bool = False) -> Expr:
    """``value`` with each of its own sums over an index free in ``into`` renamed to a fresh
    letter (p_jk = sum_n(q_kn*x_jn)/sum_m(...)); ``inside``: over any index ``into`` uses, as
    where the value goes inside its sums (sum_m(q_km*x_m)/N_k inside sum_n)."""
    taken = _indices_in(into) | _indices_in(value)
    clash = _indices_in(into) if inside else free_indices(into)
    for index in _bound(value):
        if index in clash:
            fresh = next(i for i in FRESH_INDICES if i not in taken)
            taken.add(fresh)
            value = rename_index(value, index, fresh)
    return value


def rename_index(e: Expr, old: str, new: str) -> Expr:
    """``e`` with the summation index ``old`` called ``new`` (bound and in the variables)."""
    if e.op is Op.VAR:
        if old not in e.indices:
            return e
        return Expr(
            Op.VAR,
            (),
            e.shape,
            name=e.name,
            kind=e.kind,
            indices=tuple(new if i == old else i for i in e.indices),
        )
    if not e.args:
        return e
    args = [rename_index(a, old, new) for a in e.args]
    if e.op is Op.SUMIDX and e.name == old:
        return sumidx(new, args[0])
    return rebuild(e, args)


def _index_counts(e: Expr, values: Mapping[str, Any]) -> dict[str, int]:
    """How many terms each index runs over, read off the values of the indexed variables."""
    counts: dict[str, int] = {}
    for node in e.walk():
        if node.op is Op.VAR and node.indices and node.name in values:
            shape = np.shape(values[node.name])
            for axis, index in enumerate(node.indices):
                if axis < len(shape):
                    counts.setdefault(index, int(shape[axis]))
    return counts


def _satisfying(identities: Sequence[Expr], values: dict[str, Any]) -> dict[str, Any]:
    """Random data made to satisfy the facts of the form sum_i(v_..) = 1 (responsibilities):
    v divided by its sum along i. Other facts are left to the data."""
    out = dict(values)
    for fact in identities:
        total, one = fact.args
        body = total.args[0] if total.op is Op.SUMIDX else None
        if body is None or body.op is not Op.VAR or one != num(1) or body.name not in out:
            continue
        v = np.abs(np.asarray(out[body.name], dtype=float))
        axis = body.indices.index(total.name) if total.name in body.indices else None
        if axis is not None:
            out[body.name] = v / v.sum(axis=axis, keepdims=True)
    return out


def _largest(e: Expr, wrt: Expr, values: Mapping[str, Any], counts: Mapping[str, int]) -> float:
    cells = np.asarray(_evaluate_indexed(e, wrt, values, counts), dtype=float)
    free = len([i for i in wrt.indices if i in counts])
    flat = cells.reshape(int(np.prod(cells.shape[:free])), -1) if free else cells.reshape(1, -1)
    return float(np.max(np.linalg.norm(flat, axis=1)))


def _evaluate_indexed(
    e: Expr, target: Expr, values: Mapping[str, Any], counts: Mapping[str, int]
) -> Any:
    """``e`` evaluated for every value of the target's indices (one leading axis each)."""
    free = [i for i in target.indices if i in counts]
    if not free:
        return evaluate(e, values, counts=counts)
    grids = np.indices([counts[i] for i in free]).reshape(len(free), -1).T
    cells = [
        np.asarray(
            evaluate(e, values, counts=counts, index_env=dict(zip(free, at, strict=True))),
            dtype=float,
        )
        for at in grids.tolist()
    ]
    stacked = np.stack(cells)
    return stacked.reshape(*[counts[i] for i in free], *stacked.shape[1:])


# --- a student's model ----------------------------------------------------------------------------


def _split_equation(text: str, what: str) -> tuple[str, str]:
    if text.count("=") != 1:
        raise CalculusError(f"the {what} {text!r} must be one equation 'LEFT = RIGHT'")
    left, right = (part.strip() for part in text.split("="))
    if not left or not right:
        raise CalculusError(f"the {what} {text!r} has an empty side")
    return left, right


def _linear_in(g: Expr, unknowns: Sequence[Expr]) -> list[Expr]:
    """The unknowns ``g`` contains; raises unless it is affine in them."""
    found = [u for u in unknowns if g.depends_on(u)]
    for u in found:
        gradient = differentiate(g, u).gradient
        if any(gradient.depends_on(v) for v in unknowns):
            raise CalculusError(
                f"the constraint {to_text(g)} is not linear in {u.full_name}; the engine "
                "handles linear equality constraints only"
            )
    return found


def derive_model(
    objective: str,
    wrt: Sequence[str],
    *,
    constraints: Sequence[str] = (),
    indices: str = "",
    types: Mapping[str, str] | str | None = None,
    facts: Sequence[str] = (),
) -> ModelDerivation:
    """Derive the closed-form maximiser of a student's objective.

    The same plan as :func:`~gaussmix.derive.derive_gmm` runs on the objective: for each
    unknown, its gradient (of the Lagrangian if it occurs in a constraint), the stationary
    equation and its solution, affine in the unknown or in its inverse; for each linear
    equality constraint a multiplier, solved from the constraint with the earlier solutions
    put in. Kinds of undeclared names are inferred from the objective
    (:mod:`~gaussmix.calculus.kinds`).

    Parameters
    ----------
    objective : str
        The function to maximise, e.g. ``"sum_n(sum_k(q_kn*(x_n*log(lambda_k) - lambda_k)))"``.
    wrt : sequence of str
        The unknowns, as written (``lambda_k``), in the order to solve them; a multiplier the
        objective contains goes after the unknowns it determines.
    constraints : sequence of str
        Linear equality constraints ``"sum_k(pi_k) = 1"``; each gets a multiplier.
    indices : str
        The index letters (``"nk"``); ``x_n`` is then x indexed by n.
    types : mapping of str to str, or str, optional
        Kinds of names the inference should not decide (``{"Lambda": "spd"}`` or
        ``"Lambda:spd"``).
    facts : sequence of str
        Facts of the problem: ``"N_k = sum_n(q_kn)"`` (a new name on the left: an
        abbreviation, written for its expression) or ``"sum_k(q_kn) = 1"`` (an identity).

    Returns
    -------
    ModelDerivation
        ``.updates`` (closed forms by unknown), ``.solve_at(values)``, ``.text()``,
        ``.latex()``, ``.markdown()``, ``.assumptions``.

    Raises
    ------
    CalculusError
        For an objective or constraint that does not parse, an unknown it does not contain, a
        constraint that is not linear, or an equation the solver cannot isolate (named).
    """
    index_letters = "".join(i for i in indices if i.isalpha())
    types = parse_kinds(types) if isinstance(types, str) else dict(types or {})
    f = parse(objective, types, indices=index_letters, infer=True)
    if not wrt:
        raise CalculusError("name at least one unknown to solve for (--for mu_k)")
    unknowns = []
    for name in wrt:
        if not any(v.op is Op.VAR and v.full_name == name for v in f.walk()):
            raise CalculusError(
                f"{name} does not occur in {to_text(f)}; write the unknowns of --for as the "
                "objective writes them (with their indices: mu_k)"
            )
        unknowns.append(variable(f, name))
    state = State(
        ModelDerivation(
            title=f"Stationary point of f in {', '.join(wrt)}",
            objective=f,
            indices=index_letters,
            text_input=objective,
        ),
        Facts(assume=True),
    )
    d = state.d
    assert isinstance(d, ModelDerivation)
    _read_facts(state, f, facts, index_letters)
    taken = {v.name for v in f.walk() if v.op is Op.VAR}
    plan: Plan = []
    pending: list[tuple[Expr, tuple[Expr, Expr], str, list[Expr]]] = []
    for text in constraints:
        left, right = _split_equation(text, "constraint")
        g = parse(left, types, indices=index_letters, context=f)
        c = parse(right, types, indices=index_letters, context=f)
        if not g.is_scalar or not c.is_scalar:
            raise CalculusError(f"the constraint {text!r} must be an equation of scalars")
        found = _linear_in(sub(g, c), unknowns)
        if not found:
            raise CalculusError(
                f"the constraint {text!r} contains none of the unknowns {', '.join(wrt)}"
            )
        name = next(m for m in MULTIPLIERS if m not in taken)
        taken.add(name)
        free = "".join(sorted(free_indices(g) | free_indices(c)))
        written = f"{name}_{free}" if free else name
        multiplier = parse(written, {name: "scalar"}, indices=index_letters)
        d.constraints.append(equation(g, c))
        pending.append((multiplier, (g, c), f"{left} = {right}", found))
    added: set[int] = set()
    for u in unknowns:
        here = [i for i, (_, _, _, found) in enumerate(pending) if u in found and i not in added]
        stage = u.full_name
        d.titles[stage] = f"The stationary point in {u.full_name}"
        for i in here:
            multiplier, constraint, text, found = pending[i]
            plan.append(
                (
                    stage,
                    lagrangian,
                    {
                        "constraint": constraint,
                        "multiplier": multiplier,
                        "text": text,
                        "unknowns": [v.full_name for v in found],
                    },
                )
            )
            d.titles[stage] = f"The stationary point in {u.full_name}: a Lagrangian"
        plan.append((stage, stationary, {"name": u.full_name, "update": u.full_name}))
        for i in here:
            multiplier = pending[i][0]
            plan.append(
                (
                    stage,
                    stationary,
                    {
                        "name": multiplier.full_name,
                        "update": multiplier.full_name,
                        "note": f"from the equation in {u.full_name}",
                    },
                )
            )
            added.add(i)
    run(plan, state)
    _evaluate_together(state, unknowns)
    return d


def _read_facts(state: State, f: Expr, facts: Sequence[str], indices: str) -> None:
    names = {v.full_name for v in f.walk() if v.op is Op.VAR}
    for text in facts:
        left, right = _split_equation(text, "fact")
        rhs = parse(right, indices=indices, context=f)
        lead = left.split("_")[0]
        if left not in names and _NAME.fullmatch(left):
            kind = "scalar" if rhs.is_scalar else "vector" if rhs.is_vector else "matrix"
            lhs = parse(left, {lead: kind}, indices=indices)
            state.facts.definitions.append(Identity("definition", lhs, rhs))
            state.d.definitions[left] = rhs
        else:
            lhs = parse(left, indices=indices, context=f)
            state.facts.identities.append(Identity("fact", lhs, rhs))
            state.d.identities.append(equation(lhs, rhs))


def _evaluate_together(state: State, unknowns: Sequence[Expr]) -> None:
    """Each update written in terms of another unknown whose own update is free of the
    unknowns is evaluated at that unknown's new value (the variance at the new mean)."""
    d = state.d
    by_variable = {t.full_name: name for name, t in d.targets.items()}
    for name in list(d.updates):
        for u in unknowns:
            other = by_variable.get(u.full_name)
            if other is None or other == name or not d.updates[name].depends_on(u):
                continue
            if any(d.updates[other].depends_on(v) for v in unknowns):
                # coupled: no closed form to put in; each is the maximiser given the other
                d.coupled[name] = [v.full_name for v in unknowns if d.updates[name].depends_on(v)]
                continue
            d.titles.setdefault("together", "Solved together")
            at_the_new(state, "together", u.full_name, other, name)
