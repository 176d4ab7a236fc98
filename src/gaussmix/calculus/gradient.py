"""The public face of the engine: ``grad`` and the result it returns.

``grad("x'*A*x", wrt="A")`` parses the expression, derives the gradient step by step
(:mod:`~gaussmix.calculus.derivative`) and wraps it in a :class:`Gradient`, which prints as the
gradient, renders as LaTeX in Jupyter, evaluates numerically, checks itself against finite
differences and judges a claimed gradient. Conventions: the gradient has the shape of the
variable (denominator layout), and for a variable declared ``symmetric`` it is the symmetric
gradient (G + G')/2.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gaussmix.calculus.claims import diagnose
from gaussmix.calculus.derivative import Derivation, differentiate
from gaussmix.calculus.display import gradient_markdown, latex_label
from gaussmix.calculus.errors import CalculusError
from gaussmix.calculus.expr import Expr, Kind, Op
from gaussmix.calculus.firstorder import FirstOrder, first_order
from gaussmix.calculus.kinds import assumed_kinds, describe_kinds, summed_indices
from gaussmix.calculus.lecture import Line, format_lines, view
from gaussmix.calculus.numeric import (
    directional_error,
    evaluate,
    iter_points,
)
from gaussmix.calculus.parse import as_kind, parse, parse_kinds
from gaussmix.calculus.printing import to_latex, to_text
from gaussmix.calculus.rewrite import Step

__all__ = ["CHECK_TOLERANCE", "Agreement", "Gradient", "convention", "grad"]

CHECK_TOLERANCE = 1e-6
"""A relative finite-difference error below this counts as a passed check."""

AGREE_TOLERANCE = 1e-8
"""A claimed gradient agrees when it is within this relative distance at every test point."""

TypesArg = Mapping[str, "str | Kind"] | str | None


def convention(wrt: Expr) -> str:
    """The convention the gradient follows, in one sentence."""
    name = wrt.full_name
    if wrt.is_scalar:
        return f"the derivative with respect to the scalar {name}"
    text = f"the gradient has the shape of {name} (denominator layout)"
    if wrt.kind is not None and wrt.kind.is_symmetric:
        text += (
            f"; {name} is symmetric, so this is the symmetric gradient (G + G')/2, "
            "not the Matrix Cookbook's G + G' - G.*eye"
        )
    return text


@dataclass(frozen=True)
class Agreement:
    """The verdict on a claimed gradient; true when the claim agrees.

    Attributes
    ----------
    agrees : bool
    claim : str
        The claim, as parsed and printed.
    error : float
        Largest relative distance between the claim and the gradient over the test points.
    counterexample : dict or None
        Values of the variables at which the claim is wrong (None when it agrees).
    claimed, expected : ndarray or float or None
        The claim's and the gradient's values at the counterexample.
    reason : str
        One line explaining the verdict; for a known slip (a factor, a sign, a transpose, the
        symmetric convention, a term counted the wrong number of times) it says which.
    slip : str
        The kind of slip (see :mod:`~gaussmix.calculus.claims`), or '' when none is known.
    """

    agrees: bool
    claim: str
    error: float
    reason: str
    counterexample: dict[str, Any] | None = field(default=None, repr=False)
    claimed: Any = field(default=None, repr=False)
    expected: Any = field(default=None, repr=False)
    slip: str = ""

    def __bool__(self) -> bool:
        return self.agrees


class Gradient:
    """The gradient of a scalar expression, with its derivation.

    Attributes
    ----------
    expr : Expr
        The function f.
    wrt : Expr
        The variable.
    gradient : Expr
        The gradient, of the shape of the variable.
    steps : list of Step
        The derivation; each step has ``.rule``, ``.before``, ``.after``, ``.text``, ``.latex``.
    differential : Expr
        df in canonical form.
    assumed : dict of str to Kind
        The kinds of the names nobody declared, as written (``{"pi_k": Kind.SCALAR}``),
        inferred from the expression and the letter convention.
    """

    def __init__(
        self,
        derivation: Derivation,
        types: Mapping[str, Kind],
        indices: str = "",
        assumed: Mapping[str, Kind] | None = None,
    ):
        self._derivation = derivation
        self._types = dict(types)
        self.assumed: dict[str, Kind] = dict(assumed or {})
        self._indices = indices
        self.expr = derivation.expr
        self.wrt = derivation.wrt
        self.gradient = derivation.gradient
        self.differential = derivation.differential
        self.steps: list[Step] = list(derivation.steps)

    # -- printing ------------------------------------------------------------------------------
    def __str__(self) -> str:
        return to_text(self.gradient)

    def __repr__(self) -> str:
        return f"Gradient(d/d{self.wrt.full_name} {to_text(self.expr)} = {self})"

    @property
    def latex(self) -> str:
        """The gradient in LaTeX (no dollars)."""
        return to_latex(self.gradient)

    @property
    def convention(self) -> str:
        """The convention the gradient follows."""
        return convention(self.wrt)

    @property
    def assumptions(self) -> str:
        """The kinds assumed for undeclared names: ``pi_k, lambda scalars; x_n vector``."""
        return describe_kinds(self.assumed)

    def _repr_markdown_(self) -> str:
        """Jupyter: the gradient, its convention, the kinds assumed and the derivation."""
        return gradient_markdown(self)

    def _repr_latex_(self) -> str:
        name = to_latex(self.wrt)
        return f"$\\nabla_{{{name}}}\\, {to_latex(self.expr)} = {self.latex}$"

    def view(self, detail: str = "lecture") -> list[Line]:
        """The derivation as lines: ``lecture`` groups the steps into one line per idea
        (:mod:`~gaussmix.calculus.lecture`), ``full`` is one line per step."""
        return view(self.steps, detail)

    def derivation(self, detail: str = "full") -> str:
        """The numbered derivation as text (``detail``: ``full``, every step, or ``lecture``)."""
        if detail != "full":
            return format_lines(self.view(detail))
        return format_steps(self.steps, self.expr)

    def derivation_latex(self, detail: str = "full") -> str:
        """The derivation as a LaTeX ``aligned`` block (``detail``: ``full``, every step, or
        ``lecture``, one line per idea)."""
        lines = []
        lhs = ""
        for i, step in enumerate(self.view(detail)):
            if i == 0 or step.lhs != lhs:
                lhs = step.lhs
                label = latex_label(lhs)
                start = to_latex(step.before) if step.lhs != "G" or i == 0 else ""
                if start:
                    lines.append(f"{label} &= {start}")
                    lines.append(f"&= {to_latex(step.expr)} && \\text{{({_esc(step.rule)})}}")
                else:
                    lines.append(
                        f"{label} &= {to_latex(step.expr)} && \\text{{({_esc(step.rule)})}}"
                    )
                continue
            lines.append(f"&= {to_latex(step.expr)} && \\text{{({_esc(step.rule)})}}")
        body = " \\\\\n".join(lines)
        return f"\\begin{{aligned}}\n{body}\n\\end{{aligned}}"

    # -- numbers -------------------------------------------------------------------------------
    def _split(self, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
        env = {k: int(v) for k, v in values.items() if k in self._indices and len(k) == 1}
        return {k: v for k, v in values.items() if k not in env}, env

    def __call__(self, **values: Any) -> Any:
        """The numeric gradient at the given values (same shape as the variable's value).

        For an indexed variable, give the index too: ``r(k=0, mu=..., ...)``.
        """
        values, env = self._split(values)
        shape = None
        if self.wrt.name in values and not self.wrt.indices:
            shape = np.shape(values[self.wrt.name])
        return evaluate(self.gradient, values, shape=shape, index_env=env)

    def value(self, **values: Any) -> Any:
        """The numeric value of the expression itself."""
        values, env = self._split(values)
        return evaluate(self.expr, values, index_env=env)

    def check(self, seed: int = 0) -> float:
        """Relative error of the gradient against central finite differences.

        Directions are random and respect the variable's structure; points are random values of
        the right structure (symmetric, positive definite, positive entries where needed).

        Parameters
        ----------
        seed : int

        Returns
        -------
        float
            The largest relative error; below :data:`CHECK_TOLERANCE` for a correct gradient.
        """
        return directional_error(self.expr, self.gradient, self.wrt, seed=seed)

    def first_order(self, seed: int = 0, claim: str | Expr | None = None) -> FirstOrder:
        """The first-order definition at a random point: f(X + tH) - f(X) against t<G, H>.

        Parameters
        ----------
        seed : int
        claim : str or Expr, optional
            A claimed gradient to put in the place of G (its remainder does not go to zero
            when it is wrong).

        Returns
        -------
        FirstOrder
            ``.rows``: for t = 1e-1 ... 1e-5, the change, t<G, H> and their difference over t,
            which goes to zero for the gradient.

        Raises
        ------
        CalculusError
            For a claim that does not parse or does not have the shape of the variable.
        """
        g = self.gradient
        if isinstance(claim, Expr):
            g = claim
        elif claim is not None:
            g = parse(
                claim, self._types, indices=self._indices, context=self.expr, shape=self.wrt.shape
            )
        return first_order(self.expr, g, self.wrt, seed)

    def agrees_with(self, claim: str | Expr, seed: int = 0) -> Agreement:
        """Whether a claimed gradient equals this one, at random points of the right structure.

        Parameters
        ----------
        claim : str or Expr
            The claimed gradient, in the input syntax (the same types apply).
        seed : int

        Returns
        -------
        Agreement
            True when it agrees; otherwise False, with a counterexample.
        """
        if isinstance(claim, Expr):
            c = claim
        else:
            try:
                c = parse(claim, self._types, indices=self._indices, context=self.expr)
            except CalculusError as exc:
                raise CalculusError(
                    f"in the claim: {exc.message}", source=exc.source, position=exc.position
                ) from None
        text = to_text(c)
        if c.is_scalar != self.wrt.is_scalar or (c.shape[1] == 1) != (self.wrt.shape[1] == 1):
            return Agreement(
                False,
                text,
                float("inf"),
                f"the claim is {_kind_word(c)} but {self.wrt.full_name} is {_kind_word(self.wrt)}",
            )
        rows, cols = self.wrt.shape
        if c.shape == (cols, rows) != (rows, cols):
            return Agreement(
                False,
                text,
                float("inf"),
                f"the claim has the shape of {self.wrt.full_name}' (the numerator layout); "
                f"the gradient has the shape of {self.wrt.full_name}: transpose the claim",
                slip="transpose",
            )
        if not isinstance(claim, Expr):
            try:
                c = parse(
                    claim,
                    self._types,
                    indices=self._indices,
                    context=self.expr,
                    shape=self.wrt.shape,
                )
            except CalculusError as exc:
                return Agreement(
                    False,
                    text,
                    float("inf"),
                    f"the claim does not have the shape of {self.wrt.full_name}: {exc.message}",
                )
        shapes = {v.name: v.shape for v in self.expr.walk() if v.op is Op.VAR}
        for v in c.walk():
            if v.op is Op.VAR and shapes.get(v.name, v.shape) != v.shape:
                return Agreement(
                    False,
                    text,
                    float("inf"),
                    f"the claim needs {v.name} to be {_shape_text(v.shape)}, but in the "
                    f"expression it is {_shape_text(shapes[v.name])}",
                )
        worst = 0.0
        env = {i: 1 for i in self.wrt.indices}
        for point in iter_points(self.expr, seed, 3, also=(self.gradient, c), index_env=env):
            expected = np.asarray(
                evaluate(self.gradient, point.values, sizes=point.sizes, index_env=env),
                dtype=float,
            )
            try:
                claimed = np.asarray(
                    evaluate(c, point.values, shape=expected.shape, index_env=env), dtype=float
                )
            except CalculusError as exc:
                return Agreement(
                    False,
                    text,
                    float("inf"),
                    f"the claim cannot be evaluated: {exc.message}",
                    point.values,
                )
            if claimed.shape != expected.shape:
                return Agreement(
                    False,
                    text,
                    float("inf"),
                    f"the claim has shape {claimed.shape} but the gradient has "
                    f"shape {expected.shape}",
                    point.values,
                    claimed,
                    expected,
                )
            scale = max(float(np.linalg.norm(expected)), float(np.linalg.norm(claimed)), 1e-300)
            error = float(np.linalg.norm(claimed - expected)) / scale
            worst = max(worst, error)
            if error > AGREE_TOLERANCE:
                found = diagnose(self.expr, self.gradient, self.wrt, c, seed)
                return Agreement(
                    False,
                    text,
                    error,
                    found.reason
                    if found
                    else "the claim differs from the gradient at a random point",
                    point.values,
                    claimed,
                    expected,
                    found.slip if found else "",
                )
        return Agreement(True, text, worst, f"agrees with {self} at 3 random points")

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain data (for JSON)."""
        return {
            "expression": to_text(self.expr),
            "wrt": self.wrt.full_name,
            "types": {k: v.value for k, v in sorted(self._types.items())},
            "assumed": {k: v.value for k, v in self.assumed.items()},
            "gradient": str(self),
            "latex": self.latex,
            "convention": self.convention,
            "differential": to_text(self.differential),
            "steps": [
                {
                    "rule": s.rule,
                    "identity": s.identity,
                    "lhs": s.lhs,
                    "before": to_text(s.before),
                    "after": to_text(s.after),
                }
                for s in self.steps
            ],
        }


def _esc(text: str) -> str:
    return text.replace("_", "\\_").replace("&", "\\&")


def _shape_text(shape: tuple[object, object]) -> str:
    rows, cols = shape
    return "a scalar" if shape == (1, 1) else f"{rows}×{cols}"


def _kind_word(e: Expr) -> str:
    if e.is_scalar:
        return "a scalar"
    if e.shape[1] == 1:
        return "a vector"
    if e.shape[0] == 1:
        return "a row vector"
    return "a matrix"


def format_steps(steps: list[Step], expr: Expr | None = None) -> str:
    """A derivation as numbered text lines, ``lhs = expression   [rule: identity]``.

    The first line is the starting expression (``df = d(f)``); each step gives the whole new
    expression. Simplification steps show their rule's name, the others the identity too.
    """
    rows: list[tuple[str, str, str]] = []
    lhs = None
    for step in steps:
        if lhs is None:
            rows.append(("", f"{step.lhs} = {to_text(step.before)}", ""))
        pad = " " * len(step.lhs)
        prefix = f"{step.lhs} = " if step.lhs != lhs and lhs is not None else f"{pad} = "
        lhs = step.lhs
        why = step.rule
        if step.identity and step.stage != "simplify":
            why = f"{step.rule}: {step.identity}"
        number = f"{sum(1 for r in rows if r[0]) + 1}."
        rows.append((number, prefix + to_text(step.after), why))
    width = min(max((len(r[1]) for r in rows), default=0), 56)
    lines = []
    for number, body, why in rows:
        line = f"{number:>4} {body}"
        if why:
            line = f"{line:<{width + 5}}  [{why}]"
        lines.append(line.rstrip())
    return "\n".join(lines)


def _find_variable(e: Expr, wrt: str) -> Expr:
    found: dict[str, Expr] = {}
    for node in e.walk():
        if node.op is Op.VAR:
            found.setdefault(node.full_name, node)
    if wrt in found:
        return found[wrt]
    names = sorted(found)
    near = difflib.get_close_matches(wrt, names, n=1, cutoff=0.5)
    hint = f"; did you mean {near[0]}?" if near else ""
    listing = ", ".join(names) if names else "none"
    raise CalculusError(f"{wrt} does not appear in {to_text(e)} (its variables: {listing}){hint}")


def grad(
    expr: str | Expr,
    wrt: str,
    types: TypesArg = None,
    *,
    indices: str = "",
) -> Gradient:
    """The gradient of a scalar matrix expression, derived step by step.

    Parameters
    ----------
    expr : str or Expr
        The expression, e.g. ``"x'*A*x"``, ``"log(det(X))"``.
    wrt : str
        The variable, e.g. ``"A"`` (``"mu_k"`` for an indexed variable).
    types : mapping of str to str, or str, optional
        Kinds of names: ``{"x": "vector", "S": "symmetric"}`` or ``"x:vector,S:symmetric"``.
        Undeclared names take the kinds that make the expression a well-formed scalar; the
        letter convention (a-g scalars, h-z vectors, A-Z matrices, ``mu`` a vector, ``Sigma``
        and ``Lambda`` symmetric, other Greek names scalars) decides what that leaves open, and
        one-letter names always follow it. ``r.assumed`` says what was assumed.
    indices : str, optional
        Index letters for indexed names and sums (``"nk"`` for ``x_n``, ``sum_n(...)``);
        by default the letters the text sums over (``sum_n(...)`` makes n an index).

    Returns
    -------
    Gradient
        ``str(r)`` is the gradient (``"x*x'"``), ``r.latex`` its LaTeX, ``r.steps`` the derivation,
        ``r(**values)`` its value, ``r.check()`` the finite-difference error,
        ``r.agrees_with(claim)`` the verdict on a claimed gradient.

    Raises
    ------
    CalculusError
        For anything the engine cannot do: a syntax or shape error, a non-scalar expression, a
        variable that does not occur, an operation without a differentiation rule. The engine
        never returns a wrong or silently zero gradient.
    """
    if not indices and isinstance(expr, str):
        indices = summed_indices(expr)  # sum_n(...) sums over n
    kinds = parse_kinds(types) if isinstance(types, str) else dict(types or {})
    typed = {name: as_kind(name, kind) for name, kind in kinds.items()}
    f = expr if isinstance(expr, Expr) else parse(expr, typed, indices=indices, infer=True)
    if not isinstance(expr, Expr):
        names = {n for node in f.walk() if node.op is Op.VAR for n in (node.name, node.full_name)}
        unused = sorted(set(typed) - names)
        if unused:
            raise CalculusError(
                f"types name {', '.join(unused)}, which the expression does not use "
                f"(its variables: {', '.join(sorted(names)) or 'none'})"
            )
    variable = _find_variable(f, wrt)
    try:
        derivation = differentiate(f, variable)
    except RecursionError:
        raise CalculusError(
            "the expression is too deeply nested to differentiate; split it into parts"
        ) from None
    assumed = {} if isinstance(expr, Expr) else assumed_kinds(f, typed)
    return Gradient(derivation, typed, indices, assumed)
