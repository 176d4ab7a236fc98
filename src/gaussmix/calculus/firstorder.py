"""The first-order definition of the gradient, with numbers: f(X + tH) = f(X) + t<G, H> + o(t).

The finite-difference check of :mod:`~gaussmix.calculus.numeric` answers "is G right?" with one
relative error. This module shows *why* G is the gradient, in the student's own definition: at
a random point X and a random unit direction H (of the variable's structure), for t = 1e-1 ...
1e-5, the change f(X + tH) - f(X), the first-order term t<G, H>, and their difference divided
by t, which goes to zero (linearly in t) exactly when G is the gradient. For a wrong G it
settles on <G_true - G, H> instead, a visible nonzero number. The rows are plain data; the
command line renders them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussmix.calculus.errors import CalculusError
from gaussmix.calculus.expr import Expr
from gaussmix.calculus.numeric import _shifted, evaluate, random_direction, random_point

__all__ = ["STEPS", "FirstOrder", "FirstOrderRow", "first_order"]

STEPS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)
"""The values of t, largest first."""


@dataclass(frozen=True)
class FirstOrderRow:
    """One t: the change of f, the first-order term, and their difference over t.

    Attributes
    ----------
    t : float
    change : float
        f(X + tH) - f(X).
    linear : float
        t <G, H>.
    remainder : float
        (change - linear) / t; goes to zero with t for the gradient.
    """

    t: float
    change: float
    linear: float

    @property
    def remainder(self) -> float:
        return (self.change - self.linear) / self.t


@dataclass(frozen=True)
class FirstOrder:
    """The first-order definition at one random point along one random direction.

    Attributes
    ----------
    variable : str
        The variable's name as written (``X``, ``mu_k``).
    value : float
        f(X).
    rows : tuple of FirstOrderRow
        One per t, largest t first.
    point : dict
        The values of every variable at X.
    direction : float or ndarray
        H, of unit norm, in the variable's layout.
    """

    variable: str
    value: float
    rows: tuple[FirstOrderRow, ...]
    point: dict[str, Any]
    direction: Any

    @property
    def converges(self) -> bool:
        """Whether (change - linear)/t shrinks with t: by 10x or more from the first t to the
        last, or stays at rounding level (f affine in the variable)."""
        first, last = abs(self.rows[0].remainder), abs(self.rows[-1].remainder)
        floor = 1e-7 * (1.0 + abs(self.value))
        return last <= floor or last <= first / 10


def first_order(
    f: Expr,
    gradient: Expr,
    wrt: Expr,
    seed: int = 0,
    steps: Sequence[float] = STEPS,
) -> FirstOrder:
    """f(X + tH) - f(X) against t<G, H> at a random point, for each t.

    Parameters
    ----------
    f : Expr
        A scalar expression.
    gradient : Expr
        A gradient of ``f`` with respect to ``wrt`` (the engine's, or a claim), of its shape.
    wrt : Expr
        The variable X (an indexed variable is moved at index 1, as in the other checks).
    seed : int
    steps : sequence of float
        The values of t.

    Returns
    -------
    FirstOrder

    Raises
    ------
    CalculusError
        When no random point makes f and G finite, or f is not finite at X + tH.
    """
    env = {i: 1 for i in wrt.indices}
    point = random_point(f, seed, also=(gradient,), index_env=env)
    rng = np.random.default_rng([seed, 2])
    h = random_direction(wrt, rng, point.sizes, env)
    g = np.asarray(evaluate(gradient, point.values, sizes=point.sizes, index_env=env), float)
    h_slice = np.asarray(h, dtype=float)
    if wrt.indices:
        h_slice = h_slice[tuple(env[i] for i in wrt.indices)]
    inner = float(np.sum(g * h_slice.reshape(g.shape)))

    def at(t: float) -> float:
        moved = _shifted(point.values, wrt.name, h, t)
        return float(evaluate(f, moved, sizes=point.sizes, index_env=env))

    f0 = at(0.0)
    rows = []
    for t in steps:
        ft = at(t)
        if not np.isfinite(ft):
            raise CalculusError(
                f"f is not finite at {wrt.full_name} + {t:g}*H, so the first-order table "
                "cannot be shown at this point; try another --seed"
            )
        rows.append(FirstOrderRow(t, ft - f0, t * inner))
    return FirstOrder(wrt.full_name, f0, tuple(rows), point.values, h)
