"""M-steps of the constrained covariance models Sigma_k = lambda_k D_k A_k D_k'.

Banfield and Raftery (1993) write a covariance as volume lambda_k (a number), shape A_k
(diagonal, det A_k = 1) and orientation D_k (orthogonal); each of the three is either the same
for every component (E), free per component (V), or, for shape and orientation, the identity (I).
With the responsibilities fixed, the covariance part of the surrogate is, to maximise,

    Q(Sigma) = -1/2 sum_k [N_k log det Sigma_k + tr(W_k Sigma_k^{-1})]

with W_k = sum_n q_kn (x_n - mu_k)(x_n - mu_k)' the weighted scatter (plus N_k reg_covar I, which
is how ``reg_covar`` enters: for the unconstrained models it is the same as adding it to the
covariance, and for the others it keeps the result inside the model).

One decomposition serves all fourteen models: the *eigenvalue* structure (the four diagonal
models EEI, VEI, EVI, VVI) is solved on diagonal statistics S (K, D), and the orientation decides
which statistics those are:

- I (axis-aligned): S_k = diag(W_k);
- V (free orientation): S_k = the eigenvalues of W_k (descending) and D_k its eigenvectors, optimal
  for any eigenvalues by von Neumann's trace inequality (Celeux and Govaert 1995);
- E (common orientation): S_k = diag(D' W_k D) for the common D, which has no closed form except
  for EEE. D is improved by sweeps of plane rotations, each pair of D's columns turned by the
  angle that is optimal with the eigenvalues held (Jacobi's method on the common-orientation
  problem, as Flury and Gautschi's algorithm for common principal components works pairwise),
  alternated with the exact eigenvalue step; VEE instead alternates the exact updates of
  C = D A D' and the volumes (Celeux and Govaert 1995).

Every iteration maximises Q over one block of parameters, or a minorant of it that touches at the
current point, so Q never decreases; an iteration stops when Q changes by less than
``INNER_TOL`` relatively, or at its cap. VEI's problem is convex in the logarithms of volumes
and shapes, so its iteration finds the maximum; VEE's and the common-orientation ones start from
the previous parameters when given or from the pooled scatter's eigenvectors.

Two caps. An M-step without a start (the first of a fit, ``mstep_from_resp``) runs to
``INNER_MAX_ITER`` and warns there (``InnerIterationWarning``, naming the model and the change
left). Within EM an M-step starts from the previous M-step's covariances (the orientation among
the candidates, the volumes and shapes from them), so any number of inner iterations leaves Q at
least where the previous parameters had it: a generalised EM step (Dempster, Laird and Rubin
1977), which keeps EM monotone and its fixed points (where the M-step no longer moves, it is
at a stationary point of Q). Those M-steps stop at ``WARM_MAX_ITER`` without a warning, the next
one going on from there. Browne and McNicholas's (2014) majorise-minimise steps for the common
orientation, which the rotation sweeps replaced, are where that cap was reached: on data whose
variances span ten orders of magnitude (R's state.x77) their minorants are as loose as a
scatter's largest eigenvalue is large against its smallest, and they ran to the cap of 500 in
1066 of the 1148 M-steps of the EVE and VVE cells of ``select``; on the M-steps measured there
the sweeps converge in 3-12, to a lower objective than the MM steps' (benchmarks/README.md).

For D <= 16 the inner loops run in C where the C loops were built (``compiled.py``: EVE's and
VVE's whole M-step, ``orientation_sweeps``; VEI's alternation; the free orientations'
eigenvectors by Jacobi), doing the same arithmetic; the numpy loops here are their reference,
and run where C declines (a statistic that is not finite).
The seven iterative and eigen models' M-steps (``Covariance.covariances`` and
``covariances_and_factors``, so EM's and the first one's) go further: ``whole_mstep`` runs the
layout's scatter, the M-step here and the precisions' factors as one C call
(``compiled.constrained_mstep``), since at hundreds of rows the numpy calls around the loops
cost more than the loops.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from gaussmix.em.errors import InnerIterationWarning

Array = NDArray[np.float64]

INNER_MAX_ITER = 500
INNER_TOL = 1.5e-8  # mclust's inner tolerance, sqrt(machine epsilon)
# the cap of an M-step that starts from the previous parameters (EM's iterations): a
# generalised EM step. The rotation sweeps, and VEI's and VEE's alternations, take a few dozen
# at most where a fit is sound; what runs on to the cap is a component drifting towards a
# singular covariance (state.x77's EVE,6: 10 M-steps at the old cap of 500, then the fit
# fails). 100 against 500 changed one of the 1512 cells of select on twelve sets, banknote's
# EVE,5, by 0.006 of BIC (benchmarks/README.md)
WARM_MAX_ITER = 100

# An eigenvalue solver: diagonal statistics S (K, D) and counts N (K,) -> variances (K, D),
# optionally warm-started from earlier variances (K, D).
EigenSolver = Callable[[Array, Array, "Array | None"], Array]


def diag_objective(S: Array, nk: Array, variances: Array) -> float:
    """-2 Q for diagonal covariances: sum_k [N_k sum_j log v_kj + sum_j S_kj / v_kj]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _diag_objective(S, nk, variances)


# The two helpers without their errstate contexts, for loops already inside one (a context
# costs as much as a few small ufuncs, and the inner iterations call these every step).
def _diag_objective(S: Array, nk: Array, variances: Array) -> float:
    return float((nk[:, None] * np.log(variances) + S / variances).sum())


def _geometric_mean(values: Array) -> Array:
    with np.errstate(divide="ignore"):
        return _geometric_mean_inside(values)


def _geometric_mean_inside(values: Array) -> Array:
    return np.asarray(np.exp(np.log(values).sum(axis=-1) / values.shape[-1]))  # (= mean)


def _max_iter(start: object | None) -> int:
    """The inner cap of an M-step: ``WARM_MAX_ITER`` from a start, else ``INNER_MAX_ITER``."""
    return INNER_MAX_ITER if start is None else WARM_MAX_ITER


def _cap_reached(model: str, change: float, start: object | None = None) -> None:
    if start is not None:
        return  # a generalised EM step: the next M-step goes on from here
    warnings.warn(
        f"the {model} M-step stopped at its cap of {INNER_MAX_ITER} inner iterations with the "
        f"surrogate still changing by {change:.1e} (relative); the fit may be slightly off",
        InnerIterationWarning,
        stacklevel=4,
    )


def _converged(previous: float, current: float) -> bool:
    if not np.isfinite(current):
        return True  # a degenerate fit: the caller's positivity check says so
    return abs(previous - current) <= INNER_TOL * (1.0 + abs(current))


# --- the four eigenvalue structures --------------------------------------------------------
def vvi(S: Array, nk: Array, start: Array | None = None) -> Array:
    """Free volume and shape: v_k = S_k / N_k."""
    return S / nk[:, None]


def eei(S: Array, nk: Array, start: Array | None = None) -> Array:
    """Common volume and shape: v_k = sum_k S_k / N for every k."""
    return np.repeat((S.sum(axis=0) / nk.sum())[None, :], S.shape[0], axis=0)


def evi(S: Array, nk: Array, start: Array | None = None) -> Array:
    """Common volume, free shape: A_k = S_k / g(S_k), lambda = sum_k g(S_k) / N (g: geometric
    mean, so det A_k = 1)."""
    g = _geometric_mean(S)
    with np.errstate(divide="ignore", invalid="ignore"):
        return S / g[:, None] * (g.sum() / nk.sum())


def vei(S: Array, nk: Array, start: Array | None = None, model: str = "VEI") -> Array:
    """Free volume, common shape, by alternating the exact updates
    A = sum_k S_k / lambda_k normalised to det 1, lambda_k = sum_j S_kj / A_j / (D N_k)
    (``model`` names the model in the cap's warning)."""
    from gaussmix.em import compiled  # the C loops load on first use

    n_features = S.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        volume = S.mean(axis=1) / nk if start is None else _geometric_mean_inside(start)  # (K,)
        shape = np.ones(n_features)
        variances = volume[:, None] * shape
        objective = _diag_objective(S, nk, variances)
        done = compiled.vei_loop(S, nk, volume, objective, INNER_TOL, _max_iter(start))
        if done is not None:  # the same loop in C (small D)
            variances, steps, objective, previous = done
            if steps == 0:
                _cap_reached(model, abs(previous - objective) / (1.0 + abs(objective)), start)
            return variances
        for _ in range(_max_iter(start)):
            shape = (S / volume[:, None]).sum(axis=0)
            shape = shape / _geometric_mean_inside(shape)
            volume = (S / shape).sum(axis=1) / (n_features * nk)
            variances = volume[:, None] * shape
            previous, objective = objective, _diag_objective(S, nk, variances)
            if _converged(previous, objective):
                return variances
    _cap_reached(model, abs(previous - objective) / (1.0 + abs(objective)), start)
    return variances


# --- orientations ------------------------------------------------------------------------
def free_orientation(W: Array, nk: Array, solve: EigenSolver, start: Array | None = None) -> Array:
    """Sigma_k = L_k diag(v_k) L_k' with W_k = L_k diag(omega_k) L_k' (omega descending) and
    v = solve(omega, N): the EEV, VEV, EVV (and VVV) models. W (K, D, D) -> (K, D, D); an
    iterative solver starts from the eigenvalues of the previous covariances ``start``."""
    from gaussmix.em import compiled  # the C loops load on first use

    done = compiled.eigh_descending(W)  # small D: Jacobi in C, without LAPACK's call overhead
    if done is None:
        omega, vectors = np.linalg.eigh(W)
        omega, vectors = omega[:, ::-1], vectors[:, :, ::-1]  # descending, paired
    else:
        omega, vectors = done
    previous: Array | None = None
    if start is not None:
        eigen = compiled.eigh_descending(start)
        previous = np.asarray(np.linalg.eigvalsh(start)[:, ::-1]) if eigen is None else eigen[0]
    variances = solve(np.clip(omega, 0.0, None), nk, previous)
    return _assemble(vectors, variances)


def _assemble(vectors: Array, variances: Array) -> Array:
    """D_k diag(v_k) D_k' for D (D, D) shared or (K, D, D), v (K, D)."""
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite: the caller's check
        scaled = vectors * variances[:, None, :]
        cov = np.matmul(scaled, np.swapaxes(vectors, -1, -2))  # a shared D broadcasts
    return np.asarray(0.5 * (cov + np.swapaxes(cov, -1, -2)))


def _rotated_diagonals(W: Array, D: Array) -> Array:
    """diag(D' W_k D) for every k, shape (K, D)."""
    return np.einsum("ji,kjl,li->ki", D, W, D)


def _pooled(W: Array, start: Array | None) -> Array:
    """The matrices whose eigenvectors are the candidate orientations (C, D, D): the pooled
    scatter, and a generic combination of the previous covariances (which share theirs)."""
    pooled = [W.sum(axis=0)]
    if start is not None:
        weights = np.arange(1.0, start.shape[0] + 1.0)
        pooled.append(np.einsum("k,kij->ij", weights, start))
    return np.stack(pooled)


def _common_start(W: Array, start: Array | None) -> list[Array]:
    """Candidate orientations: the eigenvectors of each of ``_pooled``, by descending
    eigenvalue (the order of C's, which the sweeps' order of pairs follows)."""
    return list(np.linalg.eigh(_pooled(W, start))[1][:, :, ::-1])


def _rotate_pair(D: Array, A: Array, M: Array, i: int, j: int) -> None:
    """Turn columns i and j of D, and rows and columns i and j of every A_k = D' W_k D, by the
    angle that minimises sum_k tr(A_k diag(M_k)) (in place): with t the angle, that pair's part
    is alpha cos 2t + beta sin 2t + const, so 2t = atan2(-beta, -alpha)."""
    m = M[:, i] - M[:, j]
    alpha = float((0.5 * m * (A[:, i, i] - A[:, j, j])).sum())
    beta = float((m * A[:, i, j]).sum())
    if not (beta != 0.0 or alpha > 0.0):  # the pair is optimal already (or not finite)
        return
    half = 0.5 * math.atan2(-beta, -alpha)
    c, s = math.cos(half), math.sin(half)
    di, dj = D[:, i].copy(), D[:, j].copy()
    D[:, i], D[:, j] = c * di + s * dj, c * dj - s * di
    aii, ajj, aij = A[:, i, i].copy(), A[:, j, j].copy(), A[:, i, j].copy()
    ai, aj = A[:, :, i].copy(), A[:, :, j].copy()
    A[:, :, i] = A[:, i, :] = c * ai + s * aj
    A[:, :, j] = A[:, j, :] = c * aj - s * ai
    A[:, i, i] = c * c * aii + 2.0 * c * s * aij + s * s * ajj
    A[:, j, j] = s * s * aii - 2.0 * c * s * aij + c * c * ajj
    A[:, i, j] = A[:, j, i] = (c * c - s * s) * aij + c * s * (ajj - aii)


def common_orientation(
    W: Array, nk: Array, solve: EigenSolver, model: str, start: Array | None = None
) -> Array:
    """Sigma_k = D diag(v_k) D' with one orientation D for every k: the EVE and VVE models.

    With the variances v_k held, D minimises sum_k tr(W_k D M_k D') (M_k = diag(1 / v_k)) over
    the orthogonal matrices; a sweep turns each pair of D's columns in turn by the plane
    rotation that minimises it exactly (a 2 x 2 problem, ``_rotate_pair``: Jacobi's method with
    Flury and Gautschi's pairwise view of a common orientation), and the eigenvalues are then
    solved exactly for the new D. Every rotation and every eigenvalue step lowers -2Q or keeps
    it, whatever the conditioning: on R's state.x77 (variances from 0.4 to 7e9) Browne and
    McNicholas's MM steps, which this replaces, moved D by steps as small as a scatter's
    smallest eigenvalue is against its largest and ran up to 3519 steps per M-step (median 365
    of eleven measured) to a higher objective than the 3-12 sweeps of this loop reach
    (benchmarks/README.md). A sweep that
    raises the objective all the same (rounding) is undone and ends the loop, so the M-step
    never lowers Q. W (K, D, D) -> covariances (K, D, D).
    """
    from gaussmix.em import compiled  # the C loops load on first use

    if solve is evi or solve is vvi:  # small D: all of it in one C call, where it can
        done = compiled.common_orientation(
            W, nk, _pooled(W, start), solve is evi, INNER_TOL, _max_iter(start)
        )
        if done is not None:
            D, variances, steps, objective, previous = done
            if steps == 0:
                _cap_reached(model, abs(previous - objective) / (1.0 + abs(objective)), start)
            return _assemble(D, variances)
    n_features = W.shape[-1]
    starts = []
    for D0 in _common_start(W, start):
        S0 = _rotated_diagonals(W, D0)
        v0 = solve(S0, nk, None)
        starts.append((diag_objective(S0, nk, v0), D0, v0))
    objective, D, variances = min(starts, key=lambda candidate: candidate[0])
    if not np.isfinite(objective):  # a zero variance: degenerate, the caller's check says so
        return _assemble(D, variances)

    D = D.copy()
    A = np.einsum("li,klj->kij", D, W @ D)  # (K, D, D): D' W_k D
    upper = np.triu(A)
    A = upper + np.swapaxes(np.triu(A, 1), 1, 2)  # symmetric, from the upper triangle
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(_max_iter(start)):
            M = 1.0 / variances  # (K, D): the diagonals of the inverse eigenvalue matrices
            last = D.copy(), variances
            for i in range(n_features - 1):
                for j in range(i + 1, n_features):
                    _rotate_pair(D, A, M, i, j)
            S = np.diagonal(A, axis1=1, axis2=2).copy()
            variances = solve(S, nk, variances)
            previous, objective = objective, _diag_objective(S, nk, variances)
            if objective > previous:  # rounding raised it: the sweep before stands
                return _assemble(*last)
            if _converged(previous, objective):
                return _assemble(D, variances)
    _cap_reached(model, abs(previous - objective) / (1.0 + abs(objective)), start)
    return _assemble(D, variances)


def vee(W: Array, nk: Array, start: Array | None = None) -> Array:
    """Sigma_k = lambda_k C with det C = 1, by alternating the exact updates
    C = sum_k W_k / lambda_k normalised to det 1 and lambda_k = tr(W_k C^{-1}) / (D N_k).
    W (K, D, D) -> covariances (K, D, D)."""
    n_features = W.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if start is None:
            volume = np.trace(W, axis1=1, axis2=2) / (n_features * nk)
        else:
            volume = np.exp(np.linalg.slogdet(start)[1] / n_features)
        objective = np.inf
        C = np.full((n_features, n_features), np.nan)
        for _ in range(_max_iter(start)):
            C = np.einsum("k,kij->ij", 1.0 / volume, W)
            sign, logdet = np.linalg.slogdet(C)
            if sign <= 0:  # a singular scatter: degenerate, the caller's check says so
                C = np.full_like(C, np.nan)
                break
            C = C / np.exp(logdet / n_features)
            C_inv = np.linalg.inv(C)
            traces = np.einsum("kij,ji->k", W, C_inv)
            volume = traces / (n_features * nk)
            # -2Q = sum_k N_k D log lambda_k + tr(W_k C^{-1}) / lambda_k   (det C = 1)
            previous = objective
            objective = float((nk * n_features * np.log(volume) + traces / volume).sum())
            if _converged(previous, objective):
                break
        else:
            _cap_reached("VEE", abs(previous - objective) / (1.0 + abs(objective)), start)
        cov = volume[:, None, None] * C
    return np.asarray(0.5 * (cov + np.swapaxes(cov, 1, 2)))


def whole_mstep(
    model: str, sxx: Array, nk: Array, d: Array, reg_covar: float, start: Array | None
) -> tuple[Array, Array | None] | None:
    """The M-step of ``model`` from the shifted statistics in one C call
    (``compiled.constrained_mstep``: the scatter, this module's M-step and the precisions'
    Cholesky factors, or None for them where a covariance is not positive definite), warning
    at the cap as the loops here do; None where C declines (then the loops here run)."""
    from gaussmix.em import compiled  # the C loops load on first use

    done = compiled.constrained_mstep(
        model, sxx, nk, d, reg_covar, start, INNER_TOL, _max_iter(start)
    )
    if done is None:
        return None
    covariances, factors, steps, objective, previous = done
    if steps == 0:
        _cap_reached(model, abs(previous - objective) / (1.0 + abs(objective)), start)
    return covariances, factors
