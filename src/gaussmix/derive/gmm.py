"""The M-step of a Gaussian mixture, derived by the calculus engine from the EM surrogate.

The inputs are only these: the surrogate (the expected complete-data log-likelihood with the
responsibilities q_kn held fixed, written in the precision), the structure of the precision for
each covariance type, and the constraint on the weights. Everything else, every line of the
derivation and the closed forms of the updates, comes out of the engine:

* the gradient in each parameter, derived step by step (:func:`gaussmix.calculus.differentiate`);
* the stationary equation, solved by :class:`~gaussmix.derive.solve.Solver` (affine in the mean,
  or in the inverse of the precision);
* for the weights, the Lagrangian of the simplex constraint, its stationary equations in pi_k
  and in the multiplier, and their solution.

Sums over data points and components are indexed sums (``sum_n``, ``sum_k``) of indexed
variables (``x_n``, ``q_kn``, ``mu_k``): the derivation reads like the lecture's, and the
Kronecker delta of d/dmu_k sum_j f(mu_j) is a rule of the engine. The facts the solver may use
are stated with the inputs: q_kn are posterior probabilities (``sum_k(q_kn) = 1``), precisions
are positive definite (or positive), and ``N_k = sum_n(q_kn)`` abbreviates the soft count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gaussmix.calculus.derivative import differentiate
from gaussmix.calculus.display import latex_label
from gaussmix.calculus.errors import CalculusError
from gaussmix.calculus.expr import (
    Expr,
    Kind,
    Op,
    add,
    equation,
    map_dims,
    mul,
    num,
    sub,
    substitute,
    sumidx,
)
from gaussmix.calculus.lecture import Line, abbreviate, free_indices, replace_bound, view, why_rows
from gaussmix.calculus.numeric import evaluate
from gaussmix.calculus.ops import rebuild
from gaussmix.calculus.parse import parse
from gaussmix.calculus.printing import to_latex, to_text
from gaussmix.calculus.rewrite import P, Rule, Step, rewrite
from gaussmix.calculus.rules.simplify import RULES, TIDY_RULES
from gaussmix.derive.solve import Facts, Identity, Solver

__all__ = [
    "CONSTRAINT",
    "COVARIANCE_TYPES",
    "STRUCTURES",
    "SURROGATE",
    "GMMDerivation",
    "Structure",
    "derive_gmm",
]

# --- the inputs ---------------------------------------------------------------------------------

SURROGATE = "sum_n(sum_k(q_kn*(log(pi_k) + 1/2*logdet(P_k) - 1/2*(x_n - mu_k)'*P_k*(x_n - mu_k))))"
"""Q(pi, mu, P) = sum_n sum_k q_kn [log pi_k + log N(x_n | mu_k, inv(P_k))] + const, the
constant -D/2 log(2 pi) dropped; P_k is the precision, whose structure each type fixes."""

KINDS = {"q": "scalar", "pi": "positive", "x": "vector", "mu": "vector", "P": "spd"}
INDICES = "nk"  # n runs over the N data points, k over the K components

CONSTRAINT = ("sum_k(pi_k)", "1")
"""The weights lie on the simplex: sum_k pi_k = 1 (positivity holds at the solution)."""

MULTIPLIER = "lambda"

RESPONSIBILITIES = ("sum_k(q_kn)", "1")
"""q_kn is the posterior probability of component k for x_n: they sum to one over k."""

SOFT_COUNT = ("N_k", "sum_n(q_kn)")
"""The abbreviation N_k for the soft count of component k."""


@dataclass(frozen=True)
class Structure:
    """The structure of the precision for one covariance type.

    Attributes
    ----------
    name : str
        full, diag, spherical or tied.
    precision : str
        The precision P_k in terms of the free parameter.
    parameter : str
        The free parameter, as written (``Lambda_k``, ``tau_k``, ``Lambda``).
    kinds : dict
        Kinds of the parameter's name.
    positive_entries : bool
        The parameter is a vector of positive entries (so that diag of it is invertible).
    covariance : str
        The name of the covariance the M-step returns (the inverse of the precision).
    """

    name: str
    precision: str
    parameter: str
    kinds: dict[str, str]
    covariance: str
    positive_entries: bool = False


STRUCTURES: dict[str, Structure] = {
    "full": Structure("full", "Lambda_k", "Lambda_k", {"Lambda": "spd"}, "Sigma_k"),
    "diag": Structure(
        "diag", "diag(tau_k)", "tau_k", {"tau": "vector"}, "sigma2_k", positive_entries=True
    ),
    "spherical": Structure("spherical", "tau_k*eye", "tau_k", {"tau": "positive"}, "sigma2_k"),
    "tied": Structure("tied", "Lambda", "Lambda", {"Lambda": "spd"}, "Sigma"),
}

COVARIANCE_TYPES = tuple(STRUCTURES)


# --- the result ---------------------------------------------------------------------------------

SECTIONS = {
    "surrogate": "The surrogate",
    "means": "The means",
    "precisions": "The precisions and covariances",
    "weights": "The weights: a Lagrangian",
    "m-step": "The M-step",
}


@dataclass
class GMMDerivation:
    """The derived M-step for one covariance type.

    Attributes
    ----------
    covariance_type : str
    structure : Structure
        The structure of the precision it was derived for.
    steps : list of Step
        The derivation, in order; ``step.stage`` names its section (surrogate, means,
        precisions, weights, m-step).
    updates : dict of str to Expr
        The closed forms: ``weights`` (pi_k), ``means`` (mu_k), ``covariances`` (the inverse of
        the precision: Sigma_k, sigma2_k or Sigma).
    definitions : dict of str to Expr
        Abbreviations used by the updates (``N_k``).
    surrogate : Expr
        Q with the structured precision.
    lagrangian : Expr
        Q + lambda*(sum_k(pi_k) - 1).
    gradients : dict of str to Expr
        The gradient of the surrogate (of the Lagrangian for pi_k and lambda) in each parameter.
    parameters : dict of str to Expr
        The parameters as variables (``mu_k``, the precision parameter, ``pi_k``, ``lambda``).
    solutions : dict of str to Expr
        What each parameter was solved for (the precision itself, and the multiplier ``-N``).
    symbols : dict of str to Expr
        The names updates go by where the parameter is not itself the update (``Sigma_k``).
    evaluated : dict of str to Expr
        Updates with the other parameters' new values substituted (the covariance at the new
        mean): what the M-step evaluates.
    template : Expr
        The surrogate as written, in the precision P_k.
    """

    covariance_type: str
    structure: Structure
    steps: list[Step] = field(default_factory=list)
    updates: dict[str, Expr] = field(default_factory=dict)
    definitions: dict[str, Expr] = field(default_factory=dict)
    surrogate: Expr | None = None
    lagrangian: Expr | None = None
    gradients: dict[str, Expr] = field(default_factory=dict)
    parameters: dict[str, Expr] = field(default_factory=dict)
    solutions: dict[str, Expr] = field(default_factory=dict)
    symbols: dict[str, Expr] = field(default_factory=dict)
    evaluated: dict[str, Expr] = field(default_factory=dict)
    template: Expr | None = None

    # -- numbers -------------------------------------------------------------------------------
    def expanded(self, name: str) -> Expr:
        """An update as the M-step evaluates it: other parameters at their new values, and
        abbreviations written out (``N_k`` as ``sum_n(q_kn)``)."""
        e = self.evaluated.get(name, self.updates[name])
        for symbol, definition in self._definition_vars():
            e = substitute(e, symbol, definition)
        return e

    def _definition_vars(self) -> list[tuple[Expr, Expr]]:
        return [(_symbol(name), definition) for name, definition in self.definitions.items()]

    def mstep(
        self, X: ArrayLike, resp: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Evaluate the derived closed forms with numpy.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        resp : array_like of shape (n_samples, n_components)
            Responsibilities q_kn (rows sum to one).

        Returns
        -------
        weights : ndarray of shape (n_components,)
        means : ndarray of shape (n_components, n_features)
        covariances : ndarray
            In scikit-learn's layout: (n_components, n_features, n_features) for full,
            (n_components, n_features) for diag, (n_features, n_features) for tied,
            (n_components,) for spherical: an update indexed by k gives one value per
            component, one free of k a single value.
        """
        X = np.asarray(X, dtype=float)
        resp = np.asarray(resp, dtype=float)
        if X.ndim != 2 or resp.ndim != 2 or resp.shape[0] != X.shape[0]:
            raise ValueError(
                f"X must be (n_samples, n_features) and resp (n_samples, n_components); got "
                f"{X.shape} and {resp.shape}"
            )
        values: dict[str, Any] = {"x": X, "q": resp.T}
        out = []
        for name in ("weights", "means", "covariances"):
            e = self.expanded(name)
            if "k" in free_indices(e):
                value = np.array(
                    [evaluate(e, values, index_env={"k": k}) for k in range(resp.shape[1])]
                )
            else:
                value = np.asarray(evaluate(e, values), dtype=float)
            out.append(value)
        return out[0], out[1], out[2]

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
        """The M-step as equations: each update (as derived) and the abbreviations it uses."""
        targets = {
            "weights": self.parameters.get("pi_k"),
            "means": self.parameters.get("mu_k"),
            "covariances": self.symbols.get(
                "covariances", self.parameters.get(self.structure.parameter)
            ),
        }
        out = [equation(t, self.updates[name]) for name, t in targets.items() if t is not None]
        out += [equation(symbol, definition) for symbol, definition in self._definition_vars()]
        return out

    def view(self, detail: str = "lecture") -> list[Line]:
        """The derivation as lines: ``lecture`` groups the steps into one line per idea
        (:mod:`~gaussmix.calculus.lecture`), ``full`` is one line per step."""
        names = {self.surrogate: "Q"} if self.surrogate is not None else {}
        lines = view(self.steps, detail, names)
        if detail == "full" or self.surrogate is None:
            return lines
        # u_n = x_n - mu_k, the residual, as the lecture writes it (only where it occurs as is)
        x = _variable(self.surrogate, "x_n")
        residual = sub(x, _variable(self.surrogate, "mu_k"))
        u = Expr(Op.VAR, (), x.shape, name="u", kind=x.kind, indices=x.indices)
        q = parse("Q", {"Q": "scalar"})  # the surrogate, by the name its first line gives it
        abbreviations = [(q, self.surrogate), (u, residual), *self._definition_vars()]
        return abbreviate(lines, abbreviations + self._scatter(u, residual))

    def _scatter(self, u: Expr, residual: Expr) -> list[tuple[Expr, Expr]]:
        """S_k = sum_n(q_kn*u_n*u_n'), the scatter, as the covariance's update sums it: a
        matrix (S_k; S for tied, summed over k), its diagonal (diag) or its trace (spherical)."""
        update = self.updates.get("covariances")
        scatter = next((n for n in update.walk() if n.op is Op.SUMIDX), None) if update else None
        if scatter is None:
            return []
        matrix = Expr(Op.VAR, (), (u.shape[0], u.shape[0]), name="S", kind=Kind.SYMMETRIC,
                      indices=tuple(sorted(free_indices(scatter))))
        name = matrix if scatter.shape == matrix.shape else Expr(
            Op.DIAGV if scatter.is_vector else Op.TR, (matrix,),
            (u.shape[0], 1) if scatter.is_vector else (1, 1),
        )
        return [(name, replace_bound(scatter, residual, u))]

    def _line_sections(self, detail: str) -> list[tuple[str, list[Line]]]:
        out: list[tuple[str, list[Line]]] = []
        for line in self.view(detail):
            if not out or out[-1][0] != line.stage:
                out.append((line.stage, []))
            out[-1][1].append(line)
        return out

    def text(self, detail: str = "full") -> str:
        """The derivation as numbered text lines, each followed by its rule (``detail``:
        ``full``, every step, or ``lecture``, one line per idea)."""
        if detail != "full":
            return self._lecture_text(detail)
        lines = [f"M-step of a Gaussian mixture, {self.covariance_type} covariance"]
        number = 0
        for stage, steps in self.sections():
            lines += ["", SECTIONS.get(stage, stage)]
            for step, start in _with_starts(steps):
                if start:
                    lines.append(f"      {step.lhs} = {to_text(step.before)}")
                number += 1
                lines.append(f"{number:>4}. {_line(step)}")
                lines.append(f"        [{_why(step)}]")
        lines += ["", "   The updates:"] + [f"      {to_text(eq)}" for eq in self.results()]
        return "\n".join(lines)

    def _lecture_text(self, detail: str) -> str:
        lines = [f"M-step of a Gaussian mixture, {self.covariance_type} covariance"]
        number = 0
        for stage, group in self._line_sections(detail):
            lines += ["", SECTIONS.get(stage, stage)]
            for line in group:
                number += 1
                lines.append(f"{number:>4}. {line.text}")
                lines += why_rows(line.why)
        lines += ["", "   The updates:"] + [f"      {to_text(eq)}" for eq in self.results()]
        return "\n".join(lines)

    def latex(self, detail: str = "full") -> str:
        """The derivation as LaTeX: one ``aligned`` block per section (``detail``: ``full``,
        every step, or ``lecture``, one line per idea)."""
        blocks = [f"% M-step of a Gaussian mixture, {self.covariance_type} covariance"]
        if detail != "full":
            for stage, group in self._line_sections(detail):
                blocks.append(f"% {SECTIONS.get(stage, stage)}")
                rows = [f"& {line.latex} && {_latex_why(line)}" for line in group]
                if stage == "m-step":
                    rows += [f"& {to_latex(eq)} && \\text{{(update)}}" for eq in self.results()]
                blocks.append("\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}")
            return "\n".join(blocks)
        for stage, steps in self.sections():
            blocks.append(f"% {SECTIONS.get(stage, stage)}")
            rows = []
            for s, start in _with_starts(steps):
                if start:
                    rows.append(f"& {latex_label(s.lhs)} = {to_latex(s.before)}")
                rows.append(f"& {_line_latex(s)} && \\text{{({_escape(s.rule)})}}")
            if stage == "m-step":
                rows += [f"& {to_latex(eq)} && \\text{{(update)}}" for eq in self.results()]
            blocks.append("\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}")
        return "\n".join(blocks)

    def markdown(self, heading: str = "##", detail: str = "full") -> str:
        """The derivation as Markdown with LaTeX math (one numbered list per section)."""
        if detail != "full":
            return self._lecture_markdown(heading, detail)
        out = [f"{heading} {self.covariance_type.capitalize()} covariance", ""]
        number = 0
        for stage, steps in self.sections():
            out += [f"{heading}# {SECTIONS.get(stage, stage)}", ""]
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
        return "\n".join(out).rstrip() + "\n"

    def _repr_markdown_(self) -> str:
        """Jupyter: the derivation as Markdown with LaTeX math."""
        return self.markdown(heading="###", detail="lecture")

    def _repr_latex_(self) -> str:
        """Jupyter: the derivation's ``aligned`` blocks, one display equation per section."""
        blocks = self.latex("lecture").split("\n% ")[1:]
        return "\n".join(f"$${block.split(chr(10), 1)[1]}$$" for block in blocks)

    def _lecture_markdown(self, heading: str, detail: str) -> str:
        out = [f"{heading} {self.covariance_type.capitalize()} covariance", ""]
        number = 0
        for stage, group in self._line_sections(detail):
            out += [f"{heading}# {SECTIONS.get(stage, stage)}", ""]
            for line in group:
                number += 1
                out.append(f"{number}. ${line.latex}$  ")
                out.append(f"   {line.why_markdown}")
            out.append("")
        out += ["The updates:", ""] + [f"- ${to_latex(eq)}$" for eq in self.results()]
        return "\n".join(out).rstrip() + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The derivation as plain data (for JSON)."""
        return {
            "covariance_type": self.covariance_type,
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


# --- the derivation -----------------------------------------------------------------------------


def _rename_index(e: Expr, old: str, new: str) -> Expr:
    """``e`` with the summation index ``old`` called ``new`` (bound and in the variables)."""
    if e.op is Op.VAR:
        if old not in e.indices:
            return e
        return Expr(Op.VAR, (), e.shape, name=e.name, kind=e.kind,
                    indices=tuple(new if i == old else i for i in e.indices))
    if not e.args:
        return e
    args = [_rename_index(a, old, new) for a in e.args]
    if e.op is Op.SUMIDX and e.name == old:
        return sumidx(new, args[0])
    return rebuild(e, args)


def _symbol(name: str, kind: str = "positive") -> Expr:
    """A variable named in the derivation (N_k, Sigma_k), parsed with the problem's indices."""
    return parse(name, {name.split("_")[0]: kind}, indices=INDICES)


def _variable(e: Expr, full_name: str) -> Expr:
    for node in e.walk():
        if node.op is Op.VAR and node.full_name == full_name:
            return node
    raise CalculusError(f"{full_name} does not occur in {to_text(e)}")


def _relabel(steps: tuple[Step, ...], stage: str, function: str = "Q") -> list[Step]:
    names = {"df": f"d{function}", "G": "G"}
    return [
        Step(s.rule, s.before, s.after, s.identity, names.get(s.lhs, s.lhs), stage, s.kind)
        for s in steps
    ]


def _template(structure: Structure) -> tuple[Expr, Expr, Expr]:
    """The surrogate as written (in P_k), the structured precision, and P_k; the dimension of
    the data is named D."""
    kinds = {**KINDS, **structure.kinds}
    template = parse(SURROGATE, kinds, indices=INDICES)
    precision_var = _variable(template, "P_k")
    precision = parse(
        structure.precision, kinds, indices=INDICES, context=template, shape=precision_var.shape
    )
    feature = _variable(template, "x_n").shape[0]

    def named(e: Expr) -> Expr:
        return map_dims(e, lambda d: "D" if d == feature else d)

    return named(template), named(precision), named(precision_var)


def _facts(q: Expr, structure: Structure) -> Facts:
    facts = Facts()
    kinds = {**KINDS, **structure.kinds}
    sum_q = parse(RESPONSIBILITIES[0], kinds, indices=INDICES, context=q)
    facts.identities.append(Identity("responsibilities sum to one", sum_q, num(1)))
    count = _symbol(SOFT_COUNT[0])
    definition = parse(SOFT_COUNT[1], kinds, indices=INDICES, context=q)
    facts.definitions.append(Identity("soft count", count, definition))
    facts.nonzero.add(count)
    if structure.positive_entries:
        facts.positive_vectors.add(_variable(q, structure.parameter))
    return facts


# --- the plan: what the derivation does, section by section; every line is an engine step ------


@dataclass
class _State:
    """What the plan's actions share: the derivation so far and the facts of the problem."""

    d: GMMDerivation
    facts: Facts
    kinds: dict[str, str]


def _structure(state: _State, stage: str) -> None:
    """Q in the structured precision: substitute P_k := the structure's form."""
    d = state.d
    template, precision, precision_var = _template(d.structure)
    d.template = template
    solver = Solver(state.facts, stage)
    q = solver.substitute(
        template, precision_var, precision, f"{d.structure.name} covariance: P_k = "
        f"{d.structure.precision}", simplify=False,
    )
    q, tidy_steps = rewrite(q, TIDY_RULES, stage=stage)
    d.steps += [_lhs(s, "Q") for s in solver.steps] + [_lhs(s, "Q") for s in tidy_steps]
    d.surrogate = q
    # the facts of the problem, stated in the surrogate's variables
    state.facts = _facts(q, d.structure)
    d.definitions[SOFT_COUNT[0]] = state.facts.definitions[0].rhs


def _stationary(state: _State, stage: str, name: str, update: str) -> None:
    """The gradient in a parameter, its stationary equation and the solution (affine in the
    parameter or in its inverse: the covariance, named when the structure names it)."""
    d = state.d
    assert d.surrogate is not None  # the plan starts with the structure
    name = name or d.structure.parameter
    theta = _variable(d.surrogate, name)
    d.parameters[name] = theta
    derivation = differentiate(d.surrogate, theta)
    d.gradients[name] = derivation.gradient
    d.steps += _relabel(derivation.steps, stage)
    solver = Solver(state.facts, stage)
    final, u, u_value = solver.solve(solver.stationary(derivation.gradient), theta)
    d.solutions[name] = final.args[1]
    if u == theta:
        d.updates[update] = final.args[1]
    else:
        # the inverse of the precision is the covariance: inv(Lambda_k) = S is Sigma_k = S
        kind = "positive" if theta.is_scalar else "vector" if theta.is_vector else "symmetric"
        covariance = _symbol(d.structure.covariance, kind)
        d.symbols[update] = covariance
        named = solver.substitute(
            equation(u, u_value), u, covariance,
            f"{to_text(covariance)} := {to_text(u)}, the covariance", simplify=False,
        )
        d.updates[update] = named.args[1]
    d.steps += solver.steps


def _lagrangian(state: _State, stage: str, name: str, update: str) -> None:
    """The weights: the Lagrangian of the simplex constraint, its stationary equations in the
    weight and in the multiplier, and their solution."""
    d = state.d
    assert d.surrogate is not None
    q = d.surrogate
    pi = _variable(q, name)
    constraint = parse(CONSTRAINT[0], state.kinds, indices=INDICES, context=q)
    multiplier = parse(MULTIPLIER, {MULTIPLIER: "scalar"})
    lagrangian = LAGRANGIAN.apply(q, (multiplier, sub(constraint, parse(CONSTRAINT[1]))))
    assert lagrangian is not None  # Q is never an equation
    d.lagrangian = lagrangian
    d.parameters[name] = pi
    d.parameters[MULTIPLIER] = multiplier
    d.steps.append(
        Step(LAGRANGIAN.name, q, lagrangian,
             f"{LAGRANGIAN.identity}; here {CONSTRAINT[0]} = {CONSTRAINT[1]}",
             "L", stage, LAGRANGIAN.kind)
    )
    by_pi = differentiate(lagrangian, pi)
    by_multiplier = differentiate(lagrangian, multiplier)
    d.gradients[name] = by_pi.gradient
    d.gradients[MULTIPLIER] = by_multiplier.gradient
    d.steps += _relabel(by_pi.steps, stage, "L")
    solver = Solver(state.facts, stage)
    pi_solution, _, _ = solver.solve(solver.stationary(by_pi.gradient), pi)
    d.steps += solver.steps
    d.steps += _relabel(by_multiplier.steps, stage, "L")
    solver = Solver(state.facts, stage)
    eq = solver.stationary(by_multiplier.gradient)
    eq = solver.substitute(
        eq, pi, pi_solution.args[1],
        f"{name} = {to_text(pi_solution.args[1])} from the first equation",
    )
    eq = solver.count(eq, multiplier)
    lam_solution, _, _ = solver.solve(eq, multiplier)
    weights = solver.substitute(
        pi_solution, multiplier, lam_solution.args[1],
        f"{MULTIPLIER} = {to_text(lam_solution.args[1])}",
    )
    d.steps += solver.steps
    d.updates[update] = weights.args[1]
    d.solutions[name] = weights.args[1]
    d.solutions[MULTIPLIER] = lam_solution.args[1]


def _at_the_new(state: _State, stage: str, parameter: str, update: str, into: str) -> None:
    """The stationary equations are solved together: an update written in terms of another
    parameter (the covariance, in the mean) is evaluated at that parameter's new value."""
    d = state.d
    target = d.symbols.get(into, d.parameters.get(into))
    assert target is not None
    solver = Solver(state.facts, stage)
    line = equation(target, d.updates[into])
    # the new value's own sums get an index of their own: sum_m(q_km*x_m)/N_k inside sum_n
    value = _rename_index(d.updates[update], "n", "m")
    out = solver.substitute(
        line, d.parameters[parameter], value,
        f"{parameter} = {to_text(d.updates[update])}, the new {update.rstrip('s')}",
        simplify=False,
    )
    d.steps += solver.steps
    d.evaluated[into] = out.args[1]


PLAN: list[tuple[str, Callable[..., None], dict[str, str]]] = [
    ("surrogate", _structure, {}),
    ("means", _stationary, {"name": "mu_k", "update": "means"}),
    ("precisions", _stationary, {"name": "", "update": "covariances"}),  # "": the structure's
    ("weights", _lagrangian, {"name": "pi_k", "update": "weights"}),
    ("m-step", _at_the_new, {"parameter": "mu_k", "update": "means", "into": "covariances"}),
]
"""The derivation, section by section: (section, action, its arguments)."""

LAGRANGIAN = Rule(
    "Lagrangian",
    "L = Q + lambda*(g - c) for a constraint g = c",
    P(where=lambda e: e.is_scalar and e.op is not Op.EQ),
    lambda m: add(m.node, mul(m.ctx[0], m.ctx[1])),
    kind="calculus",
)
"""A constrained maximum is a stationary point of the Lagrangian."""


def derive_gmm(covariance_type: str = "full") -> GMMDerivation:
    """Derive the M-step of a Gaussian mixture for a covariance type.

    Parameters
    ----------
    covariance_type : {"full", "diag", "spherical", "tied"}

    Returns
    -------
    GMMDerivation
        ``.steps`` (the derivation as data), ``.updates`` (closed forms of the weights, means
        and covariances), ``.mstep(X, resp)`` (those closed forms evaluated with numpy),
        ``.text()``, ``.latex()``, ``.markdown()``.

    Raises
    ------
    ValueError
        For an unknown covariance type.
    """
    if covariance_type not in STRUCTURES:
        raise ValueError(
            f"unknown covariance type {covariance_type!r}; use one of {', '.join(STRUCTURES)}"
        )
    structure = STRUCTURES[covariance_type]
    d = GMMDerivation(covariance_type, structure)
    kinds = {**KINDS, **structure.kinds}
    state = _State(d, Facts(), kinds)
    for stage, action, arguments in PLAN:
        action(state, stage, **arguments)
    return d


def _lhs(step: Step, lhs: str) -> Step:
    return Step(step.rule, step.before, step.after, step.identity, lhs, step.stage, step.kind)
