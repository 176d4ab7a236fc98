"""Text and LaTeX printers, driven by the operator table.

Each printer writes a node with the form its operator's entry names
(:mod:`~gaussmix.calculus.ops`, forms in :mod:`~gaussmix.calculus.forms`) and puts parentheses
exactly where the precedences of the table need them. The text printer writes the input syntax
back, so that ``parse(to_text(e)) == e`` (except for differentials, which are not input); the
LaTeX printer writes textbook notation (``X^{-\\top}``, ``\\operatorname{tr}``, ``\\odot``) and
keeps every parenthesis the meaning needs, ``(\\sum_n q_{kn})\\,\\mu_k`` included.
"""

from __future__ import annotations

from gaussmix.calculus.expr import Expr, Op
from gaussmix.calculus.forms import ATOM, PRODUCT, latex_name, spread_scalar
from gaussmix.calculus.ops import OPS

__all__ = ["latex_name", "precedence", "spread_scalar", "to_latex", "to_text"]


def precedence(e: Expr) -> int:
    """The text precedence of a node (a fraction like 1/2 prints as a quotient)."""
    if e.op is Op.NUM:
        assert e.value is not None  # invariant of NUM nodes
        return ATOM if e.value.denominator == 1 else PRODUCT
    return OPS[e.op].precedence


def _latex_precedence(e: Expr) -> int:
    if e.op is Op.NUM:
        return ATOM  # \frac{..}{..} is a single block
    spec = OPS[e.op]
    return spec.latex_precedence if spec.latex_precedence is not None else spec.precedence


class _Text:
    latex = False

    def show(self, e: Expr) -> str:
        return OPS[e.op].text(e, self)

    def wrap(self, e: Expr, minimum: int) -> str:
        text = self.show(e)
        return f"({text})" if precedence(e) < minimum else text

    def precedence(self, e: Expr) -> int:
        return precedence(e)


class _Latex:
    latex = True

    def show(self, e: Expr) -> str:
        return OPS[e.op].latex(e, self)

    def wrap(self, e: Expr, minimum: int) -> str:
        text = self.show(e)
        return f"\\left({text}\\right)" if _latex_precedence(e) < minimum else text

    def precedence(self, e: Expr) -> int:
        return _latex_precedence(e)


_TEXT = _Text()
_LATEX = _Latex()


def to_text(e: Expr) -> str:
    """The expression in the input syntax; ``parse(to_text(e)) == e``.

    Parameters
    ----------
    e : Expr
        Any expression (differentials print as ``dX`` and ``d(...)``, which do not parse back).

    Returns
    -------
    str
    """
    return _TEXT.show(e)


def to_latex(e: Expr) -> str:
    """The expression in LaTeX (math mode, without the dollars).

    Parameters
    ----------
    e : Expr

    Returns
    -------
    str
        For example ``x x^\\top`` for ``x*x'``, ``X^{-\\top}`` for ``inv(X)'``.
    """
    return _LATEX.show(e)
