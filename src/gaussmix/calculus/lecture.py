"""The lecture view of a derivation: one numbered line per idea, grouped from the full trace.

A recorded derivation (a list of :class:`~gaussmix.calculus.rewrite.Step`) is the full trace:
every rule application, bookkeeping included. A lecture cites far fewer: the product rule, the
trace trick, Jacobi's formula, reading the gradient off ``df = <G, dX>``, the stationary point,
cancelling an invertible factor, the Lagrangian, a substitution, an abbreviation. The view
groups the trace: each step of a cited rule closes a line, and the steps before it since the
last line (bookkeeping: signs, numbers, transposes, the mechanics of ``d``) are folded into it,
which then says "(simplified)". The first ``d(A + B) = dA + dB`` that drops terms free of the
variable becomes the line that isolates the terms containing it, naming the dropped ones.

Nothing is typed: a line's expression is the result of the last step it groups, and its steps
are kept (``line.steps``), so a line is re-derived, and checked, from the trace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gaussmix.calculus.expr import Expr, Op, d
from gaussmix.calculus.printing import to_latex, to_text
from gaussmix.calculus.rewrite import Step

__all__ = ["CITED", "DETAILS", "Line", "abbreviate", "format_lines", "lecture", "view"]

CITED = frozenset(
    {
        "product",
        "trace trick",
        "Jacobi (log-determinant)",
        "Jacobi",
        "quotient",
        "inverse",
        "identify",
        "identify the gradient",
        "identify the derivative",
        "symmetric gradient",
        "stationary point",
        "cancel an invertible factor",
        "Lagrangian",
        "substitute",
        "abbreviate",
    }
)
"""The rules a lecture cites by name; every other step is folded into the next cited one (an
abbreviation is cited where it is introduced, and folded where it is used again)."""

ISOLATE = "isolate the terms"
"""The name of the line that drops the terms free of the variable."""

DETAILS = ("lecture", "full")
"""The views of a derivation: grouped (``lecture``) or every step (``full``)."""


@dataclass(frozen=True)
class Line:
    """One line of the lecture view.

    Attributes
    ----------
    rule : str
        The cited rule (or :data:`ISOLATE`).
    identity : str
        Its identity, or for the isolating line which terms were dropped and why.
    steps : tuple of Step
        The steps of the full trace the line groups, in order; the last one is the cited one.
    """

    rule: str
    identity: str
    steps: tuple[Step, ...]
    shown: Expr | None = None
    """The expression as printed, with abbreviations (``u_n`` for ``x_n - mu_k``) put in by
    :func:`abbreviate`; None: :attr:`expr` itself."""
    note: str = ""
    """What the printed line introduces (``u_n = x_n - mu_k``)."""

    @property
    def expr(self) -> Expr:
        """The line's expression: the result of the last step it groups."""
        return self.steps[-1].after

    @property
    def before(self) -> Expr:
        """The expression the line starts from: the first grouped step's ``before``."""
        return self.steps[0].before

    @property
    def lhs(self) -> str:
        return self.steps[-1].lhs

    @property
    def stage(self) -> str:
        return self.steps[-1].stage

    @property
    def simplified(self) -> bool:
        """Whether bookkeeping steps were folded into the line."""
        return len(self.steps) > 1

    @property
    def why(self) -> str:
        """The rule, its identity, and "(simplified)" when bookkeeping was folded in."""
        why = f"{self.rule}: {self.identity}" if self.identity else self.rule
        why += " (simplified)" if self.simplified and self.rule != ISOLATE else ""
        return why + (f"; writing {self.note}" if self.note else "")

    @property
    def text(self) -> str:
        return _equation(self.lhs, self.shown or self.expr, to_text)

    @property
    def latex(self) -> str:
        return _equation(_latex_lhs(self.lhs), self.shown or self.expr, to_latex)


def _equation(lhs: str, e: Expr, show: object) -> str:
    assert callable(show)
    body = show(e)
    return body if e.op is Op.EQ or not lhs else f"{lhs} = {body}"


def _latex_lhs(lhs: str) -> str:
    return {"dQ": "\\mathrm{d}Q", "dL": "\\mathrm{d}L", "df": "\\mathrm{d}f"}.get(lhs, lhs)


def _terms(e: Expr) -> list[Expr]:
    if e.op is Op.ADD:
        return [t for a in e.args for t in _terms(a)]
    return [e]


def _dropped(step: Step) -> list[Expr]:
    """The terms a ``d(A + B) = dA + dB`` step dropped (their differential is zero)."""
    if step.rule != "sum":
        return []
    after = set(step.after.walk())
    for node in step.before.walk():
        if node.op is Op.D and node.args[0].op is Op.ADD:
            terms = _terms(node.args[0])
            dropped = [t for t in terms if d(t) not in after and _free_of_diff(t, after)]
            if dropped and len(dropped) < len(terms):
                return dropped
    return []


def _free_of_diff(term: Expr, after: set[Expr]) -> bool:
    # a term kept by the rule shows up as d(term) or, once taken apart, inside another d(...)
    return not any(n.op is Op.D and term in set(n.walk()) for n in after)


def _variable(steps: Sequence[Step]) -> str:
    for s in steps:
        for node in s.after.walk():
            if node.op is Op.DIFF:
                return to_text(node.args[0])
    return "the variable"


def lecture(steps: Sequence[Step], names: Mapping[Expr, str] | None = None) -> list[Line]:
    """Group a full trace into the lines of a lecture.

    Parameters
    ----------
    steps : sequence of Step
        The full trace, in order.
    names : mapping of Expr to str, optional
        Names a dropped term goes by in the isolating line (the surrogate as ``Q``).

    Returns
    -------
    list of Line
        Each closes with a cited rule (or isolates the terms containing the variable); trailing
        bookkeeping makes a last line named after its last step. A line whose text and LaTeX
        equal the previous line's is merged into the next one.
    """
    lines: list[Line] = []
    pending: list[Step] = []
    introduced: set[str] = set()
    isolated = False
    for i, step in enumerate(steps):
        if pending and pending[-1].stage != step.stage and _finishes(lines, pending):
            # trailing bookkeeping finishes the section's last line (pi_k = N_k/N)
            last = lines.pop()
            lines.append(Line(last.rule, last.identity, last.steps + tuple(pending)))
            pending = []
        if pending and (_starts_differential(pending[-1], step) or pending[-1].stage != step.stage):
            lines.append(_merge(lines, _flush(pending)))
            pending = []
        if _starts_differential(steps[i - 1] if i else None, step):
            isolated = False
        pending.append(step)
        dropped = [] if isolated else _dropped(step)
        if dropped:
            shown = " and ".join((names or {}).get(t) or to_text(t) for t in dropped)
            verb = "does" if len(dropped) == 1 else "do"
            line = Line(
                ISOLATE, f"{shown} {verb} not depend on {_variable(steps[i:])}", tuple(pending)
            )
            isolated = True
        elif _cited(step, introduced):
            line = Line(step.rule, step.identity, tuple(pending))
        else:
            continue
        lines.append(_merge(lines, line))
        pending = []
    if pending and _finishes(lines, pending):
        # trailing bookkeeping finishes the last line (pi_k = -N_k/(-N) is pi_k = N_k/N)
        last = lines.pop()
        lines.append(Line(last.rule, last.identity, last.steps + tuple(pending)))
    elif pending:
        lines.append(_merge(lines, _flush(pending)))
    return lines


def _finishes(lines: list[Line], pending: list[Step]) -> bool:
    """Whether trailing steps only tidy the last line's right-hand side (``pi_k = -N_k/(-N)``
    to ``pi_k = N_k/N``); otherwise they make a line of their own."""
    if not lines or lines[-1].stage != pending[-1].stage:
        return False
    last, result = lines[-1].expr, pending[-1].after
    same_lhs = last.op is Op.EQ and result.op is Op.EQ and last.args[0] == result.args[0]
    return same_lhs and all(s.kind != "calculus" for s in pending)


def _flush(pending: list[Step]) -> Line:
    """A line of steps no cited rule closed, named after its last named identity."""
    named = [s for s in pending if s.kind == "calculus"] or pending
    return Line(named[-1].rule, named[-1].identity, tuple(pending))


def _starts_differential(previous: Step | None, step: Step) -> bool:
    """Whether ``step`` begins a new differential (``dQ = d(...)`` after other lines)."""
    starts = step.lhs.startswith("d") and step.before.op is Op.D
    return starts and (previous is None or previous.lhs != step.lhs)


def _cited(step: Step, introduced: set[str]) -> bool:
    if step.kind != "calculus" or step.rule not in CITED:
        return False
    if step.rule == "abbreviate":
        if step.identity in introduced:
            return False
        introduced.add(step.identity)
    return True


def _merge(lines: list[Line], line: Line) -> Line:
    """``line``, taking in the previous line when it would print the same."""
    if lines and _repeats(lines[-1], line):
        return Line(line.rule, line.identity, lines.pop().steps + line.steps)
    return line


def _repeats(previous: Line, line: Line) -> bool:
    return previous.text == line.text or previous.latex == line.latex


def view(
    steps: Sequence[Step], detail: str = "lecture", names: Mapping[Expr, str] | None = None
) -> list[Line]:
    """The steps as lines: grouped (``lecture``) or one line per step (``full``)."""
    if detail not in DETAILS:
        raise ValueError(f"unknown detail {detail!r}; use one of {', '.join(DETAILS)}")
    if detail == "full":
        return [Line(s.rule, s.identity, (s,)) for s in steps]
    return lecture(steps, names)


def abbreviate(
    lines: Sequence[Line],
    abbreviations: Sequence[tuple[Expr, Expr]],
    replace: Callable[[Expr, Expr, Expr], Expr],
) -> list[Line]:
    """The lines printed with abbreviations: ``(name, definition)`` pairs, the definition
    replaced by the name (with ``replace(e, old, new)``, the solver's replacement) from the first
    line it occurs in, which says so (unless a line stated the definition itself, ``Q = ...``).

    Parameters
    ----------
    lines : sequence of Line
    abbreviations : sequence of (Expr, Expr)
        The name (a variable) and the subexpression it stands for.
    replace : callable
        ``replace(e, old, new)``: ``e`` with the subexpression ``old`` replaced by ``new``.
    """
    out: list[Line] = []
    introduced: set[Expr] = set()
    for line in lines:
        shown, notes = line.expr, []
        for name, definition in abbreviations:
            if line.expr == definition:  # the line states it (Q = ...): introduced there
                introduced.add(name)
                continue
            shorter = replace(shown, definition, name)
            if shorter != shown and name not in introduced:
                introduced.add(name)
                notes.append(f"{to_text(name)} = {to_text(definition)}")
            shown = shorter
        out.append(replace_line(line, shown, ", ".join(notes)))
    return out


def replace_line(line: Line, shown: Expr, note: str) -> Line:
    return Line(line.rule, line.identity, line.steps, shown if shown != line.expr else None, note)


def format_lines(lines: Sequence[Line]) -> str:
    """Lecture lines as numbered text, each followed by its rule; the first line starts from
    the expression the derivation starts from (``df = d(f)``)."""
    out: list[str] = []
    if lines:
        first = lines[0].steps[0]
        out.append(f"      {_equation(first.lhs, first.before, to_text)}")
    for number, line in enumerate(lines, 1):
        out.append(f"{number:>4}. {line.text}")
        out.append(f"        [{line.why}]")
    return "\n".join(out)
