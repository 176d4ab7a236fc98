"""Why a claimed gradient is wrong: the slips a student makes, recognised numerically.

A claim that disagrees with the gradient is usually one slip away from it. This module names the
slip, by fitting numbers at random points of the right structure (never by comparing texts, so
that any way of writing the claim is recognised):

* a constant factor or a sign: claim = a*G for one number a;
* a transpose: claim = a*G' (the numerator layout);
* the convention for a symmetric variable: the Matrix Cookbook's G + G' - G.*eye, or a claim
  whose symmetric part is G (the gradient for an unconstrained variable), or, for a variable
  not declared symmetric, the symmetric gradient (G + G')/2;
* a coefficient on one additive term: f = f_1 + ... + f_m (sums flattened through signs,
  scalings and indexed sums), and claim = b_1 G_1 + ... + b_m G_m, the b_i fitted by least
  squares over the entries at several points; a term whose b_i is not 1 was counted b_i times
  (the forum's slip: the term 1/2*(x-m)'*P*(x-m) counted twice, that is, twice the gradient of
  1/2*logdet(P) - 1/2*(x-m)'*P*(x-m)).

A fit counts only when it reproduces the claim to :data:`FIT_TOLERANCE` and its coefficients are
simple fractions; otherwise the claim just "differs", with the counterexample the caller gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from gaussmix.calculus.derivative import differentiate
from gaussmix.calculus.errors import CalculusError
from gaussmix.calculus.expr import SCALAR, Expr, Op, add_all, div, mul, neg, num, sumidx
from gaussmix.calculus.numeric import evaluate, iter_points
from gaussmix.calculus.printing import to_text
from gaussmix.calculus.rules.canonical import tidy

__all__ = ["FIT_TOLERANCE", "Diagnosis", "additive_terms", "diagnose", "times"]

FIT_TOLERANCE = 1e-8
"""Relative residual below which a fitted form counts as the claim."""

_POINTS = 4


@dataclass(frozen=True)
class Diagnosis:
    """The slip that turns the gradient into the claim.

    Attributes
    ----------
    slip : str
        ``factor``, ``sign``, ``transpose``, ``symmetric convention`` (the symmetric gradient of
        an undeclared variable), ``cookbook``, ``symmetric part`` or ``term``.
    reason : str
        One line for a person: what the claim is, in terms of the gradient.
    """

    slip: str
    reason: str


def additive_terms(f: Expr) -> list[Expr]:
    """``f`` as a list of terms whose sum it is.

    Sums are flattened through negation, a scalar factor, a division by a scalar and an indexed
    sum: ``sum_n(q_n*(a + b))`` gives ``sum_n(q_n*a)`` and ``sum_n(q_n*b)``.

    Parameters
    ----------
    f : Expr

    Returns
    -------
    list of Expr
        At least one term; their sum equals ``f``.
    """
    op = f.op
    if op is Op.ADD:
        return [t for a in f.args for t in additive_terms(a)]
    if op is Op.NEG:
        return [neg(t) for t in additive_terms(f.args[0])]
    if op is Op.SCALE:  # c*(a + b) and (a + b)*A both distribute
        c, a = f.args
        parts = additive_terms(a)
        if len(parts) > 1:
            return [mul(c, t) for t in parts]
        weights = additive_terms(c)
        return [mul(w, a) for w in weights] if len(weights) > 1 else [f]
    if op is Op.DIV:
        parts = additive_terms(f.args[0])
        return [div(t, f.args[1]) for t in parts] if len(parts) > 1 else [f]
    if op is Op.SUMIDX:
        parts = additive_terms(f.args[0])
        return [sumidx(f.name, t) for t in parts] if len(parts) > 1 else [f]
    return [f]


def times(a: Fraction) -> str:
    """A factor in words: ``twice``, ``minus``, ``half``, ``3 times``, ``2/3 times``."""
    words = {Fraction(2): "twice", Fraction(-1): "minus", Fraction(1, 2): "half"}
    if a in words:
        return words[a]
    return f"{a} times"


def _counted(b: Fraction, term: str) -> str:
    if b == 0:
        return f"the term {term} left out"
    if b == -1:
        return f"the sign of the term {term} flipped"
    if b == 2:
        return f"the term {term} counted twice"
    if b.denominator == 1 and b > 0:
        return f"the term {term} counted {b} times"
    return f"the term {term} multiplied by {b}"


def _simple(x: float) -> Fraction | None:
    """``x`` as a fraction of small denominator, when it is one (to rounding)."""
    if not np.isfinite(x):
        return None
    f = Fraction(x).limit_denominator(24)
    return f if abs(float(f) - x) <= 1e-6 * max(1.0, abs(x)) else None


def _unsigned(term: Expr) -> Expr:
    return term.args[0] if term.op is Op.NEG else term


def _scaled(term: Expr, c: Fraction) -> Expr:
    if c == 1:
        return term
    if c == -1:
        return _unsigned(term) if term.op is Op.NEG else neg(term)
    if term.op is Op.NEG:
        return neg(mul(num(c), term.args[0]))
    return mul(num(c), term) if c > 0 else neg(mul(num(-c), term))


def _fit(columns: Sequence[Any], target: Any) -> tuple[Any, float, float]:
    """Least squares target ~ columns @ b: (b, relative residual, conditioning)."""
    a = np.stack([np.ravel(c) for c in columns], axis=1)
    y = np.ravel(target)
    b, *_ = np.linalg.lstsq(a, y, rcond=None)
    scale = max(float(np.linalg.norm(y)), 1e-300)
    residual = float(np.linalg.norm(a @ b - y)) / scale
    s = np.linalg.svd(a, compute_uv=False)
    conditioning = float(s[-1] / s[0]) if s[0] > 0 else 0.0
    return b, residual, conditioning


def diagnose(f: Expr, gradient: Expr, wrt: Expr, claim: Expr, seed: int = 0) -> Diagnosis | None:
    """The slip that makes ``claim`` out of the gradient, if it is one of the known ones.

    Parameters
    ----------
    f : Expr
        The scalar function.
    gradient : Expr
        Its gradient with respect to ``wrt`` (the engine's).
    wrt : Expr
        The variable.
    claim : Expr
        The claimed gradient, parsed in the terms of ``f``, of the shape of ``wrt``.
    seed : int

    Returns
    -------
    Diagnosis or None
        None when the claim is none of the known slips away from the gradient.
    """
    # Tidied (numbers first, signs out), so that a term reads as a student would write it:
    # sum_n(q_kn*(1/2*logdet(P_k))) is sum_n(1/2*q_kn*logdet(P_k)).
    terms = [tidy(t) for t in additive_terms(f) if t.depends_on(wrt)]
    try:
        term_grads = [differentiate(t, wrt).gradient for t in terms] if len(terms) > 1 else []
    except CalculusError:
        term_grads = []
    env = {i: 1 for i in wrt.indices}
    gs, cs, parts = [], [], []
    try:
        for point in iter_points(f, seed + 1, _POINTS, also=(gradient, claim), index_env=env):
            g = np.asarray(
                evaluate(gradient, point.values, sizes=point.sizes, index_env=env), dtype=float
            )
            c = np.asarray(evaluate(claim, point.values, shape=g.shape, index_env=env), float)
            gi = [
                np.asarray(evaluate(t, point.values, shape=g.shape, index_env=env), float)
                for t in term_grads
            ]
            if c.shape != g.shape:
                return None
            gs.append(g)
            cs.append(c)
            parts.append(gi)
    except CalculusError:
        return None
    g_all, c_all = np.stack(gs), np.stack(cs)
    if float(np.linalg.norm(c_all)) == 0.0:
        return Diagnosis("factor", "the claim is zero, but the gradient is not")
    (a,), residual, _ = _fit([g_all], c_all)
    factor = _simple(float(a))
    if residual < FIT_TOLERANCE and factor is not None and factor != 1:
        if factor == -1:
            return Diagnosis("sign", "the claim is the gradient with the opposite sign")
        return Diagnosis("factor", f"the claim is {times(factor)} the gradient")
    if g_all.ndim == 3 and g_all.shape[1] == g_all.shape[2] > 1:
        g_t = np.transpose(g_all, (0, 2, 1))
        (a,), residual, _ = _fit([g_t], c_all)
        factor = _simple(float(a))
        if residual < FIT_TOLERANCE and factor is not None and not np.allclose(g_t, g_all):
            also = "" if factor == 1 else f", times {factor}"
            return Diagnosis(
                "transpose",
                f"the claim is the transpose of the gradient{also} (the numerator layout); the "
                f"gradient has the shape of {wrt.full_name}, entry (i, j) the derivative in "
                "entry (i, j)",
            )
        symmetric = wrt.kind is not None and wrt.kind.is_symmetric
        if not symmetric and np.allclose(c_all, (g_all + g_t) / 2, rtol=1e-8, atol=1e-12):
            return Diagnosis(
                "symmetric convention",
                f"the claim is the symmetric gradient (G + G')/2, which is the gradient when "
                f"{wrt.full_name} is symmetric: declare it with --types {wrt.name}:symmetric",
            )
        if symmetric:
            eye = np.eye(g_all.shape[1])
            if np.allclose(c_all, 2 * g_all - g_all * eye, rtol=1e-8, atol=1e-12):
                return Diagnosis(
                    "cookbook",
                    "the claim is the Matrix Cookbook's G + G' - G.*eye; for a symmetric "
                    "variable this engine gives the symmetric gradient (G + G')/2",
                )
            sym = (c_all + np.transpose(c_all, (0, 2, 1))) / 2
            if np.allclose(sym, g_all, rtol=1e-8, atol=1e-12):
                return Diagnosis(
                    "symmetric part",
                    "the claim has the right symmetric part but is not symmetric; the "
                    "gradient for a symmetric variable is (G + G')/2",
                )
    if term_grads:
        return _term_slip(f, terms, parts, c_all)
    return None


def _term_slip(f: Expr, terms: list[Expr], parts: list[list[Any]], c_all: Any) -> Diagnosis | None:
    columns = [np.stack([p[i] for p in parts]) for i in range(len(terms))]
    b, residual, conditioning = _fit(columns, c_all)
    if residual >= FIT_TOLERANCE or conditioning < 1e-8:
        return None
    coefficients = [_simple(float(x)) for x in b]
    if any(c is None for c in coefficients):
        return None
    fitted = [c for c in coefficients if c is not None]
    wrong = [i for i, c in enumerate(fitted) if c != 1]
    if not wrong:
        return None
    shown = [to_text(_unsigned(terms[i])) for i in wrong]
    if len(wrong) > 1:
        listing = ", ".join(f"{s} by {fitted[i]}" for s, i in zip(shown, wrong, strict=True))
        return Diagnosis("term", f"the claim is the gradient with its terms weighted: {listing}")
    j = wrong[0]
    reason = f"the claim is the gradient with {_counted(fitted[j], shown[0])}"
    if fitted[j] not in (0, 1):
        # claim = b_j*G_j + sum_i G_i = b_j * gradient of (f_j + sum_i f_i/b_j); the terms
        # without the variable are left out (their gradient is zero whatever their weight).
        alpha = fitted[j]
        scaled = [t if i == j else _scaled(t, 1 / alpha) for i, t in enumerate(terms)]
        equivalent = add_all(scaled, SCALAR)
        reason += f"; equivalently, {times(alpha)} the gradient of {to_text(equivalent)}"
    return Diagnosis("term", reason)
