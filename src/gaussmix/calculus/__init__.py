"""Matrix calculus: gradients of matrix expressions, derived step by step and checked numerically.

>>> from gaussmix.calculus import grad
>>> r = grad("x'*A*x", wrt="A", types={"x": "vector", "A": "matrix"})
>>> str(r)
"x*x'"
>>> r.latex
'x x^\\\\top'

The method is Magnus and Neudecker's: differentials with one rule per operator
(``rules/diff.py``), the canonical form tr(G'*dX) (``rules/canonical.py``), then simplification
to the form a textbook prints (``rules/simplify.py``); every step is recorded. Conventions: the
gradient has the shape of the variable (denominator layout), and for a variable declared
``symmetric`` it is the symmetric gradient (G + G')/2. See docs/calculus.md.
"""

from gaussmix.calculus.derivative import Derivation, differentiate
from gaussmix.calculus.errors import CalculusError, ParseError
from gaussmix.calculus.expr import Expr, Kind, Op
from gaussmix.calculus.gradient import Agreement, Gradient, grad
from gaussmix.calculus.numeric import evaluate, random_point
from gaussmix.calculus.parse import parse
from gaussmix.calculus.printing import to_latex, to_text
from gaussmix.calculus.rewrite import Rule, Step, rewrite

__all__ = [
    "Agreement",
    "CalculusError",
    "Derivation",
    "Expr",
    "Gradient",
    "Kind",
    "Op",
    "ParseError",
    "Rule",
    "Step",
    "differentiate",
    "evaluate",
    "grad",
    "parse",
    "random_point",
    "rewrite",
    "to_latex",
    "to_text",
]
