"""The lecture view of a derivation: one numbered line per idea, grouped from the full trace.

A recorded derivation (a list of :class:`~gaussmix.calculus.rewrite.Step`) is the full trace:
every rule application, bookkeeping included. A lecture cites far fewer: the product rule, the
trace trick, Jacobi's formula, reading the gradient off ``df = <G, dX>``, the stationary point,
cancelling an invertible factor, the Lagrangian, a substitution, an abbreviation. The view
groups the trace: each step of a cited rule closes a line, and the steps before it since the
last line (bookkeeping: signs, numbers, transposes, the mechanics of ``d``) are folded into it,
which then says "(simplified)". The first ``d(A + B) = dA + dB`` that drops terms free of the
variable becomes the line that isolates the terms containing it, naming the dropped ones. A
gradient is shown as read off and tidied (its transposes resolved), a result that only gets a
new name (``Sigma_k := inv(Lambda_k)``) follows the equation it renames, and a section's
trailing tidying finishes its last line. The stages of one differentiation are one argument;
the sections of a longer derivation never share a line.

Abbreviations (:func:`abbreviate`: ``u_n = x_n - mu_k``, ``S_k``, ``N_k``) change only how a
line prints: each is said once, where it first appears, and carries the indices a sum around
it binds (``u_kn`` under ``sum_k``).

Nothing is typed: a line's expression is the result of the last step it groups, and its steps
are kept (``line.steps``), so a line is re-derived, and checked, from the trace.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from gaussmix.calculus.display import latex_label
from gaussmix.calculus.expr import Expr, Kind, Op, d, equation, rebuild
from gaussmix.calculus.printing import to_latex, to_text
from gaussmix.calculus.rewrite import Step

__all__ = [
    "CITED",
    "DETAILS",
    "Line",
    "abbreviate",
    "format_lines",
    "free_indices",
    "lecture",
    "replace_bound",
    "view",
    "why_rows",
]

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
        "cancel",  # det(X)*tr(inv(X)*dX)/det(X) = tr(inv(X)*dX): Jacobi's log-det form
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
    introduces: tuple[Expr, ...] = ()
    """The abbreviations the printed line introduces, as equations (``u_n = x_n - mu_k``)."""
    dropped: tuple[Expr, ...] = ()
    """For the isolating line: the terms it drops, free of the variable."""

    @property
    def note(self) -> str:
        """What the printed line introduces, as text (``u_n = x_n - mu_k``)."""
        return ", ".join(to_text(eq) for eq in self.introduces)

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
    def why_markdown(self) -> str:
        """:attr:`why` in Markdown: the rule in italics, the identity and notes as code."""
        why = f"*{self.rule}*" + (f": `{self.identity}`" if self.identity else "")
        why += " (simplified)" if self.simplified and self.rule != ISOLATE else ""
        notes = ", ".join(f"${to_latex(eq)}$" for eq in self.introduces)
        return why + (f"; writing {notes}" if notes else "")

    @property
    def text(self) -> str:
        return _equation(self.lhs, self.shown or self.expr, to_text)

    @property
    def latex(self) -> str:
        return _equation(latex_label(self.lhs), self.shown or self.expr, to_latex)


def _equation(lhs: str, e: Expr, show: object) -> str:
    assert callable(show)
    body = show(e)
    return body if e.op is Op.EQ or not lhs else f"{lhs} = {body}"


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
            dropped = [
                t for t in terms if d(t) not in after and _free_of_diff(t, after) and bool(t.free)
            ]
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
        if not pending and lines and _tidies(lines[-1], step):
            # the gradient read off is shown tidied: G = sum_n(q_kn*Lambda_k*u_n), not
            # G = sum_n((1/2*q_kn*(Lambda_k*u_n)')' + ...)
            last = lines.pop()
            lines.append(replace(last, steps=(*last.steps, step)))
            continue
        if pending and _new_section(pending[-1], step) and _finishes(lines, pending):
            # trailing bookkeeping finishes the section's last line (pi_k = N_k/N)
            last = lines.pop()
            lines.append(replace(last, steps=last.steps + tuple(pending)))
            pending = []
        if pending and (_starts_differential(pending[-1], step) or _new_section(pending[-1], step)):
            lines.append(_merge(lines, _flush(pending)))
            pending = []
        if _starts_differential(steps[i - 1] if i else None, step):
            isolated = False
        pending.append(step)
        dropped = [] if isolated else _dropped(step)
        if dropped:
            named = tuple(_named(t, names or {}) for t in dropped)
            identity = _isolating(named, f"not depend on {_variable(steps[i:])}")
            line = Line(ISOLATE, identity, tuple(pending), dropped=named)
            isolated = True
        elif _cited(step, introduced):
            split = _named_equation(pending) if _names(step) else 0
            if split:
                # a new name (Sigma_k := inv(Lambda_k)) carries no solve: the equation it
                # renames, inv(Lambda_k) = S_k/N_k, is a line of its own
                solved = pending[split - 1]
                solution = Line(solved.rule, solved.identity, tuple(pending[:split]))
                lines.append(_merge(lines, solution))
                pending = pending[split:]
            line = Line(step.rule, step.identity, tuple(pending))
        else:
            continue
        lines.append(_merge(lines, line))
        pending = []
    if pending and _finishes(lines, pending):
        # trailing bookkeeping finishes the last line (pi_k = -N_k/(-N) is pi_k = N_k/N)
        last = lines.pop()
        lines.append(replace(last, steps=last.steps + tuple(pending)))
    elif pending:
        lines.append(_merge(lines, _flush(pending)))
    return lines


PHASES = frozenset({"differential", "simplify", "canonical", "identify"})
"""The stages of one differentiation (:func:`~gaussmix.calculus.differentiate`): a line may
span them; it never spans the sections of a longer derivation (the means, the weights)."""


def _new_section(previous: Step, step: Step) -> bool:
    return previous.stage != step.stage and not {previous.stage, step.stage} <= PHASES


def _named(term: Expr, names: Mapping[Expr, str]) -> Expr:
    """A dropped term, or the variable it goes by (the surrogate as ``Q``)."""
    name = names.get(term)
    return term if name is None else Expr(Op.VAR, (), term.shape, name=name, kind=Kind.SCALAR)


def _isolating(dropped: Sequence[Expr], identity: str) -> str:
    """The isolating line's reason: which terms do not depend on the variable; ``identity``
    (the reason as first written) is kept for the words after "not depend on"."""
    if not dropped:
        return identity
    verb = "does" if len(dropped) == 1 else "do"
    shown = " and ".join(to_text(t) for t in dropped)
    return f"{shown} {verb} not depend on {identity.rsplit('not depend on ', 1)[-1]}"


def _finishes(lines: list[Line], pending: list[Step]) -> bool:
    """Whether trailing steps only tidy the last line's right-hand side (``pi_k = -N_k/(-N)``
    to ``pi_k = N_k/N``; ``Q = ...``, its scalars gathered); otherwise they make a line of
    their own."""
    if not lines or lines[-1].stage != pending[-1].stage:
        return False
    last, result = lines[-1].expr, pending[-1].after
    if last.op is Op.EQ and result.op is Op.EQ:
        same_lhs = last.args[0] == result.args[0]
    else:  # Q = ... stays Q = ...
        same_lhs = (
            last.op is not Op.EQ
            and result.op is not Op.EQ
            and lines[-1].lhs != ""
            and (all(s.lhs == lines[-1].lhs for s in pending))
        )
    return same_lhs and all(s.kind != "calculus" for s in pending)


def _names(step: Step) -> bool:
    """Whether ``step`` gives its equation's left side a new name (``Lambda_k = inv(S)`` to
    ``Sigma_k = S``): the name on the left does not occur before it."""
    before, after = step.before, step.after
    if before.op is not Op.EQ or after.op is not Op.EQ or after.args[0].op is not Op.VAR:
        return False
    return after.args[0] not in set(before.walk())


def _named_equation(pending: list[Step]) -> int:
    """How many of the ``pending`` steps (the last one names the result) end at the equation
    the name rewrites: the last one with the same right side (``inv(Lambda_k) = S_k/N_k``
    before ``Sigma_k = S_k/N_k``), else all but the naming step; 0 when nothing precedes it."""
    rhs = pending[-1].after.args[1]
    for j in range(len(pending) - 2, -1, -1):
        after = pending[j].after
        if after.op is Op.EQ and after.args[1] == rhs:
            return j + 1
    return len(pending) - 1


def _tidies(line: Line, step: Step) -> bool:
    """Whether ``step`` only tidies the gradient ``line`` read off (same left side, no cited
    rule): it then belongs to that line."""
    return line.rule.startswith("identify") and step.lhs == line.lhs and step.rule not in CITED


def _flush(pending: list[Step]) -> Line:
    """A line of steps no cited rule closed, named after its last named identity."""
    named = [s for s in pending if s.kind == "calculus"] or pending
    return Line(named[-1].rule, named[-1].identity, tuple(pending))


def _starts_differential(previous: Step | None, step: Step) -> bool:
    """Whether ``step`` begins a new differential (``dQ = d(...)`` after other lines)."""
    starts = step.lhs.startswith("d") and step.before.op is Op.D
    return starts and (previous is None or previous.lhs != step.lhs)


def _cited(step: Step, introduced: set[str]) -> bool:
    if step.rule not in CITED:
        return False
    if step.rule == "abbreviate":
        if step.identity in introduced:
            return False
        introduced.add(step.identity)
    return True


def _merge(lines: list[Line], line: Line) -> Line:
    """``line``, taking in the previous line when it would print the same."""
    if lines and _repeats(lines[-1], line):
        return replace(line, steps=lines.pop().steps + line.steps)
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


def abbreviate(lines: Sequence[Line], abbreviations: Sequence[tuple[Expr, Expr]]) -> list[Line]:
    """The lines printed with abbreviations: ``(name, definition)`` pairs, the definition
    replaced by the name (:func:`replace_bound`) from the first line it occurs in, which says
    so (unless a line stated the definition itself, ``Q = ...``). The terms an isolating line
    names are abbreviated too.

    Parameters
    ----------
    lines : sequence of Line
    abbreviations : sequence of (Expr, Expr)
        The name (a variable, or an expression of one: ``diag(S_k)``) and the subexpression
        it stands for, in order: a later definition may use an earlier name.
    """
    out: list[Line] = []
    introduced: set[Expr] = set()
    for line in lines:
        shown, dropped = line.expr, line.dropped
        notes: list[Expr] = []
        for name, definition in abbreviations:
            if line.expr == definition or name in set(line.expr.walk()):
                # the line states it (Q = ...) or the engine's step wrote it (N_k): said there
                introduced.add(definition)
                continue
            shorter = replace_bound(shown, definition, name)
            if shorter != shown and definition not in introduced:
                introduced.add(definition)
                notes.append(equation(_as_shown(name, shorter), definition))
            shown = shorter
            dropped = tuple(replace_bound(t, definition, name) for t in dropped)
        out.append(
            replace(
                line,
                identity=_isolating(dropped, line.identity),
                dropped=dropped,
                shown=shown if shown != line.expr else None,
                introduces=tuple(notes),
            )
        )
    return out


def replace_bound(e: Expr, old: Expr, new: Expr, bound: tuple[str, ...] = ()) -> Expr:
    """``e`` with the subexpression ``old`` replaced by ``new`` everywhere; where a sum around
    it binds an index ``old`` depends on, a variable ``new`` takes that index too: the residual
    x_n - mu_k is ``u_n`` for a fixed k, and ``u_kn`` under ``sum_k``."""
    if e == old and e.shape == old.shape:
        return _with_indices(new, [i for i in bound if i in free_indices(old)])
    if not e.args or e.op is Op.DIFF:
        return e
    inner = (*bound, e.name) if e.op is Op.SUMIDX and e.name else bound
    args = [replace_bound(a, old, new, inner) for a in e.args]
    if all(a is b for a, b in zip(args, e.args, strict=True)):
        return e
    return rebuild(e, args)


def _as_shown(name: Expr, e: Expr) -> Expr:
    """The name as ``e`` writes it, with the most indices (``u_kn`` under ``sum_k``)."""
    if name.op is not Op.VAR:
        return name
    same = [n for n in e.walk() if n.op is Op.VAR and n.name == name.name]
    return max(same, key=lambda n: len(n.indices), default=name)


def _with_indices(e: Expr, indices: list[str]) -> Expr:
    extra = tuple(i for i in indices if i not in e.indices)
    if e.op is not Op.VAR or not extra:
        return e
    return Expr(Op.VAR, (), e.shape, name=e.name, kind=e.kind, indices=extra + e.indices)


def free_indices(e: Expr) -> set[str]:
    """The indices of ``e`` that no sum over them binds (``k`` in ``sum_n(q_kn*x_n)``)."""
    if e.op is Op.VAR:
        return set(e.indices)
    inner = set().union(*(free_indices(a) for a in e.args)) if e.args else set()
    return inner - {e.name} if e.op is Op.SUMIDX else inner


def format_lines(lines: Sequence[Line]) -> str:
    """Lecture lines as numbered text, each followed by its rule; the first line starts from
    the expression the derivation starts from (``df = d(f)``)."""
    out: list[str] = []
    if lines:
        first = lines[0].steps[0]
        out.append(f"      {_equation(first.lhs, first.before, to_text)}")
    for number, line in enumerate(lines, 1):
        out.append(f"{number:>4}. {line.text}")
        out += why_rows(line.why)
    return "\n".join(out)


WIDTH = 90
"""The widest a printed row of the lecture view may be (the issue's target)."""


def why_rows(why: str, indent: int = 8, width: int = WIDTH) -> list[str]:
    """A line's reason as bracketed rows under it, each under ``width`` characters: broken
    after a "; " where one fits, else between words."""
    room = width - indent - 2
    rows: list[str] = []
    for chunk in _chunks(f"[{why}]"):
        if rows and len(rows[-1].rstrip()) + 1 + len(chunk) <= room:
            rows[-1] = f"{rows[-1].rstrip()} {chunk}"
        else:
            rows += textwrap.wrap(chunk, room, break_long_words=False, break_on_hyphens=False)
    return [" " * (indent + (i > 0)) + row.strip() for i, row in enumerate(rows)]


def _chunks(text: str) -> list[str]:
    parts = text.split("; ")
    return [p + "; " for p in parts[:-1]] + parts[-1:]
