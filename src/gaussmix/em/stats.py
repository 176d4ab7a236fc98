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


def weighted_log_prob(X: Array, params: Params) -> Array:
    """log pi_k + log N(x_n | mu_k, Sigma_k) for a block of rows; shape (n, K)."""
    log_gauss = params.covariance.log_gauss(centred(X, params), params.precisions_cholesky)
    with np.errstate(divide="ignore"):  # a zero weight gives log pi_k = -inf, as it should
        log_weights = np.log(params.weights)
    return (log_gauss + log_weights[:, None]).T


def chunk_stats(X: Array, params: Params, weights: Array | None = None) -> SuffStats:
    """E-step and accumulation over one block of rows.

    Parameters
    ----------
    X : (n, D) the rows.
    params : the current parameters; their means are the shifts of the statistics.
    weights : (n,) non-negative sample weights, or None for ones.

    Returns
    -------
    SuffStats of the block. The responsibilities
    q_kn = pi_k N(x_n | mu_k, Sigma_k) / sum_j pi_j N(x_n | mu_j, Sigma_j)
    are computed in log space (log-sum-exp) and discarded with the block.
    """
    X = np.asarray(X, dtype=np.float64)
    n_rows = X.shape[0]
    if n_rows == 0:
        return zeros(params)
    cov = params.covariance
    Z = centred(X, params)  # (K, n, D)
    with np.errstate(divide="ignore"):
        log_weights = np.log(params.weights)
    log_prob = cov.log_gauss(Z, params.precisions_cholesky) + log_weights[:, None]  # (K, n)
    log_norm = logsumexp(log_prob, axis=0)  # (n,) log p(x_n)
    resp = np.exp(log_prob - log_norm)  # (K, n)
    if weights is None:
        total = float(n_rows)
        loglik = float(log_norm.sum())
        candidates = log_norm
    else:
        weights = np.asarray(weights, dtype=np.float64)
        total = float(weights.sum())
        loglik = float(weights @ log_norm)
        resp *= weights
        candidates = np.where(weights > 0, log_norm, np.inf)
    worst = int(np.argmin(candidates))
    A = resp[:, :, None] * Z  # responsibility-weighted centred rows
    return SuffStats(
        n=total,
        loglik=loglik,
        nk=resp.sum(axis=1),
        sx=A.sum(axis=1),
        sxx=cov.second_moment(A, Z),
        shift=params.means,
        worst_loglik=float(candidates[worst]),
        worst_x=X[worst].copy(),
    )
