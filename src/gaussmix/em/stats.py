"""The one kernel of the EM engine: E-step and accumulation in one pass over a block of rows.

Every backend (in-memory arrays, memory-mapped files, Parquet row groups, and later Dask or
PyTorch) walks its data in blocks, calls ``chunk_stats`` on each and folds the results with
``merge``. ``merge`` adds the sums (and keeps the worse of the two worst-explained points), so it
is associative with ``zeros`` as its identity: the order and size of the blocks never changes the
result beyond rounding. The M-step (``mstep.py``) is a pure function of the merged statistics.

The sums are taken about shifts c_k (the current means, ``Params.means``):
sx = sum_n q_kn (x_n - c_k) and the second moment sum_n q_kn (x_n - c_k)(x_n - c_k)' in the
covariance type's layout, so the covariance is never formed as E[xx'] - mu mu' (which loses
every digit when the data sit far from the origin). Responsibilities exist for one block at a
time: the N x K matrix is never formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp

from gaussmix.em.covariance import Covariance
from gaussmix.em.natural import FAST_SHIFT_LIMIT
from gaussmix.em.params import Params

Array = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class SuffStats:
    """Sufficient statistics of a set of rows under fixed parameters.

    Attributes
    ----------
    n : total sample weight sum_n w_n.
    loglik : sum_n w_n log p(x_n) under the parameters the statistics were taken at.
    nk : (K,) N_k = sum_n w_n q_kn.
    sx : (K, D) sum_n w_n q_kn (x_n - c_k).
    sxx : second moment about the shifts, in the covariance type's layout
        (full (K, D, D), diag (K, D), tied (D, D), spherical (K,)).
    shift : (K, D) the shifts c_k (the means of the parameters).
    worst_loglik : min_n log p(x_n) over rows of positive weight (+inf for no rows).
    worst_x : (D,) the row attaining ``worst_loglik`` (where a collapsed component is re-seeded).
    """

    n: float
    loglik: float
    nk: Array
    sx: Array
    sxx: Array
    shift: Array
    worst_loglik: float
    worst_x: Array


def zeros(params: Params) -> SuffStats:
    """The statistics of no rows: the identity of ``merge``."""
    return zeros_at(params.covariance, params.means)


def zeros_at(covariance: Covariance, shift: Array) -> SuffStats:
    """The statistics of no rows about the shifts ``shift`` (K, D)."""
    k, d = shift.shape
    return SuffStats(
        n=0.0,
        loglik=0.0,
        nk=np.zeros(k),
        sx=np.zeros((k, d)),
        sxx=covariance.zero_second_moment(k, d),
        shift=shift,
        worst_loglik=np.inf,
        worst_x=np.zeros(d),
    )


def merge(a: SuffStats, b: SuffStats) -> SuffStats:
    """Statistics of the union of two disjoint sets of rows taken under the same parameters."""
    if a.shift is not b.shift and not np.array_equal(a.shift, b.shift):
        raise ValueError("cannot merge statistics taken at different parameters")
    worst = a if a.worst_loglik <= b.worst_loglik else b
    return SuffStats(
        n=a.n + b.n,
        loglik=a.loglik + b.loglik,
        nk=a.nk + b.nk,
        sx=a.sx + b.sx,
        sxx=a.sxx + b.sxx,
        shift=a.shift,
        worst_loglik=worst.worst_loglik,
        worst_x=worst.worst_x,
    )


def centred(X: Array, params: Params) -> Array:
    """Z (K, n, D) with Z[k, n] = x_n - mu_k."""
    return X[None, :, :] - params.means[:, None, :]


def _log_weights(params: Params) -> Array:
    with np.errstate(divide="ignore"):  # a zero weight gives log pi_k = -inf, as it should
        return np.log(params.weights)


def _fast(params: Params) -> bool:
    """Whether the natural-parameter kernel is accurate for these parameters."""
    return params.natural.max_shift <= FAST_SHIFT_LIMIT


def _features(X: Array, params: Params) -> Array:
    """T(X) features-major, shape (nq + D, n): the quadratic features, then X - c."""
    natural = params.natural
    nq = natural.n_quadratic
    T = np.empty((nq + X.shape[1], X.shape[0]))
    np.subtract(X.T, natural.center[:, None], out=T[nq:])
    params.covariance.quadratic_features(T[nq:], params.precisions_cholesky, T[:nq])
    return T


def _log_prob_fast(T: Array, params: Params) -> Array:
    """log pi_k + log N(x_n | mu_k, Sigma_k) = w_k' T(x_n) + b_k, shape (K, n): one GEMM."""
    log_prob = params.natural.weights_t @ T
    log_prob += params.natural.offsets
    return log_prob


def log_prob_reference(X: Array, params: Params) -> Array:
    """The same (K, n) from the centred rows x_n - mu_k of every component."""
    log_gauss = params.covariance.log_gauss(centred(X, params), params.precisions_cholesky)
    return log_gauss + _log_weights(params)[:, None]


def weighted_log_prob(X: Array, params: Params) -> Array:
    """log pi_k + log N(x_n | mu_k, Sigma_k) for a block of rows; shape (n, K)."""
    X = np.asarray(X, dtype=np.float64)
    if _fast(params):
        return _log_prob_fast(_features(X, params), params).T
    return log_prob_reference(X, params).T


def chunk_stats(X: Array, params: Params, weights: Array | None = None) -> SuffStats:
    """E-step and accumulation over one block of rows.

    Parameters
    ----------
    X : (n, D) the rows.
    params : the current parameters.
    weights : (n,) non-negative sample weights, or None for ones.

    Returns
    -------
    SuffStats of the block. The responsibilities
    q_kn = pi_k N(x_n | mu_k, Sigma_k) / sum_j pi_j N(x_n | mu_j, Sigma_j)
    are computed in log space (log-sum-exp) and discarded with the block.

    Notes
    -----
    Runs the natural-parameter kernel (``natural.py``: two GEMMs, statistics about the mixture
    mean) unless a component sits so far from that mean that its covariance would lose more than
    six digits; then the reference kernel (statistics about each component's own mean).
    """
    if X.shape[0] == 0:
        return zeros(params)
    if not _fast(params):
        return chunk_stats_reference(X, params, weights)
    natural = params.natural
    nq = natural.n_quadratic
    T = _features(X, params)
    log_prob = _log_prob_fast(T, params)  # (K, n)
    # softmax over components, in place: log_prob becomes the responsibilities
    top = log_prob.max(axis=0)
    log_prob -= top
    np.exp(log_prob, out=log_prob)
    total = log_prob.sum(axis=0)
    log_norm = top + np.log(total)  # log p(x_n)
    resp = log_prob
    resp /= total
    loglik, count, candidates = _weighted_sums(resp, log_norm, weights)
    G = T @ resp.T  # (nq + D, K): every component's sums of the features about c
    nk = resp.sum(axis=1)
    cov = params.covariance
    # move the sums from c to each component's mean mu_k = c + e_k (K D^2 work per block), so
    # that every kernel's statistics mean the same thing and merge with each other
    E = params.means - natural.center
    sxx = cov.second_moment_from_features(G[:nq], T[nq:], resp)
    sx = G[nq:].T
    worst = int(np.argmin(candidates))
    return SuffStats(
        n=count,
        loglik=loglik,
        nk=nk,
        sx=sx - nk[:, None] * E,
        sxx=cov.move_second_moment(sxx, sx, nk, E),
        shift=params.means,
        worst_loglik=float(candidates[worst]),
        worst_x=np.array(X[worst], dtype=np.float64),
    )


def _weighted_sums(
    resp: Array, log_norm: Array, weights: Array | None
) -> tuple[float, float, Array]:
    """Weight the responsibilities in place; return the log-likelihood sum, the total weight and
    the log-densities of the rows that may be re-seeding candidates (weight > 0)."""
    if weights is None:
        return float(log_norm.sum()), float(log_norm.shape[0]), log_norm
    weights = np.asarray(weights, dtype=np.float64)
    resp *= weights
    candidates = np.where(weights > 0, log_norm, np.inf)
    return float(weights @ log_norm), float(weights.sum()), candidates


def chunk_stats_reference(X: Array, params: Params, weights: Array | None = None) -> SuffStats:
    """The reference kernel: plain numpy, statistics about each component's own mean.

    Same contract as ``chunk_stats``; it forms the (K, n, D) array of x_n - mu_k, so it costs
    K times the memory traffic of the fast kernel, and it is exact however far apart the
    components are. The tests compare the two.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] == 0:
        return zeros(params)
    Z = centred(X, params)  # (K, n, D)
    log_prob = log_prob_reference(X, params)  # (K, n)
    log_norm = logsumexp(log_prob, axis=0)  # (n,) log p(x_n)
    resp = np.exp(log_prob - log_norm)  # (K, n)
    loglik, count, candidates = _weighted_sums(resp, log_norm, weights)
    worst = int(np.argmin(candidates))
    A = resp[:, :, None] * Z  # responsibility-weighted centred rows
    return SuffStats(
        n=count,
        loglik=loglik,
        nk=resp.sum(axis=1),
        sx=A.sum(axis=1),
        sxx=params.covariance.second_moment(A, Z),
        shift=params.means,
        worst_loglik=float(candidates[worst]),
        worst_x=X[worst].copy(),
    )
