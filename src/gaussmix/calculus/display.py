"""How results render in Jupyter: Markdown with LaTeX math, built from the recorded steps.

IPython asks an object for ``_repr_markdown_`` and ``_repr_latex_`` and the notebook shows the
richest it can. A gradient shows as Markdown (the gradient, its convention, the kinds assumed
and the numbered derivation, each line an engine step with its rule) and as LaTeX (the gradient
alone, an equation); the derivation is the lecture view, one line per idea. Nothing here is
typed by hand: every line comes from a :class:`Step` or a group of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gaussmix.calculus.printing import to_latex
from gaussmix.calculus.rewrite import Step

if TYPE_CHECKING:
    from gaussmix.calculus.derivative import Derivation
    from gaussmix.calculus.gradient import Gradient

__all__ = [
    "derivation_markdown",
    "gradient_markdown",
    "latex_label",
    "step_markdown",
    "steps_markdown",
]

_LABELS = {"df": "\\mathrm{d}f", "dQ": "\\mathrm{d}Q", "dL": "\\mathrm{d}L"}


def latex_label(lhs: str) -> str:
    """What a step's left-hand side is called in LaTeX: ``df`` is ``\\mathrm{d}f``."""
    return _LABELS.get(lhs, lhs)


def _code(text: str) -> str:
    return f"`{text.replace('`', '')}`"


def step_markdown(step: Step) -> str:
    """One step as a Markdown line: ``$lhs = after$ — *rule*: `identity```.

    An identification step reads ``df = ..., so G = ...`` (its two sides are not equal).
    """
    after = to_latex(step.after)
    if step.stage == "identify":
        df = to_latex(step.before)
        math = f"\\mathrm{{d}}f = {df}, \\text{{ so }} {latex_label(step.lhs)} = {after}"
    elif step.lhs:
        math = f"{latex_label(step.lhs)} = {after}"
    else:
        math = after
    why = f"*{step.rule}*" + (f": {_code(step.identity)}" if step.identity else "")
    return f"${math}$ — {why}"


def gradient_markdown(r: Gradient, detail: str = "lecture") -> str:
    """A gradient and its derivation as Markdown (what a notebook shows for ``r``).

    Parameters
    ----------
    r : Gradient
    detail : {"lecture", "full"}
        The derivation's lines: one per idea (the lecture view), or one per step.

    Returns
    -------
    str
    """
    wrt = to_latex(r.wrt)
    lines = [
        f"$\\nabla_{{{wrt}}}\\, f = {r.latex}$ for $f = {to_latex(r.expr)}$",
        "",
        f"*convention*: {r.convention}  ",
    ]
    if r.assumed:
        lines.append(f"*assuming*: {r.assumptions}")
    lines.append("")
    if detail == "full":
        return "\n".join(lines) + steps_markdown(r.steps)
    view = r.view(detail)
    if view:
        first = view[0].steps[0]
        lines.append(f"0. ${latex_label(first.lhs)} = {to_latex(first.before)}$")
    lines += [f"{i}. ${line.latex}$ — {line.why_markdown}" for i, line in enumerate(view, 1)]
    return "\n".join(lines) + "\n"


def steps_markdown(steps: Sequence[Step]) -> str:
    """Steps as a numbered Markdown list: the starting line (0.), then one line per step."""
    if not steps:
        return ""
    lines = [f"0. ${latex_label(steps[0].lhs)} = {to_latex(steps[0].before)}$"]
    lines += [f"{i}. {step_markdown(s)}" for i, s in enumerate(steps, start=1)]
    return "\n".join(lines) + "\n"


def derivation_markdown(derivation: Derivation) -> str:
    """A :class:`~gaussmix.calculus.derivative.Derivation` as Markdown: the result, the steps."""
    wrt = to_latex(derivation.wrt)
    head = (
        f"$\\nabla_{{{wrt}}}\\, f = {to_latex(derivation.gradient)}$ for "
        f"$f = {to_latex(derivation.expr)}$\n\n"
    )
    return head + steps_markdown(derivation.steps)
