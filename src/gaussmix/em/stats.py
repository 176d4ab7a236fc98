"""The one kernel of the EM engine: E-step and accumulation in one pass over a block of rows.

Every backend (in-memory arrays, memory-mapped files, Parquet row groups, and later Dask or
PyTorch) walks its data in blocks, calls ``chunk_stats`` on each and folds the results with
``merge``. ``merge`` adds the sums (and keeps the worse of the two worst-explained points), so it
is associative with ``zeros`` as its identity: the order and size of the blocks never changes the
result beyond rounding. The M-step (``mstep.py``) is a pure function of the merged statistics.

The sums are about shifts c_k (the current means, ``Params.means``): sx = sum_n q_kn (x_n - c_k)
and the second moment sum_n q_kn (x_n - c_k)(x_n - c_k)' in the covariance type's layout, so the
covariance is never formed as E[xx'] - mu mu' (which loses every digit when the data sit far from
the origin). Responsibilities exist for one block at a time: the N x K matrix is never formed.

``chunk_stats`` is the kernel's one contract; two numpy implementations stand behind it and the
tests hold them to each other (a third, ``device.py``, takes rows of array-API libraries on their
device): the natural-parameter kernel (two GEMMs on shared features, see ``natural.py``; for
full covariances the second is a C loop over the pairs of non-negligible responsibility once
the components separate, ``_feature_sums``), and the componentwise kernel (the rows centred at
every component's mean, with triangular BLAS), which wins for full covariances with many
features and few components and is exact however far apart the components are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gaussmix.em import compiled
from gaussmix.em.covariance import NEGLIGIBLE, Covariance
from gaussmix.em.natural import FAST_SHIFT_LIMIT
from gaussmix.em.params import Params

Array = NDArray[np.float64]
DType = type[np.floating] | np.dtype


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


def _log_weights(params: Params) -> Array:
    with np.errstate(divide="ignore"):  # a zero weight gives log pi_k = -inf, as it should
        return np.log(params.weights)


def uses_natural_kernel(params: Params, dtype: DType = np.float64) -> bool:
    """Whether the natural-parameter kernel is the one to run: faster at this shape, and
    accurate for these parameters (no component too far from the mixture mean)."""
    if params.covariance.componentwise_preferred(params.n_components, params.n_features):
        return False
    return params.natural.max_shift <= FAST_SHIFT_LIMIT[np.dtype(dtype).name]


def _features(X: NDArray[np.floating], params: Params, dtype: DType = np.float64) -> Array:
    """T(X) features-major, shape (nq + D + 1, n): the quadratic features, X - c, and ones,
    in the compute dtype; by the C loop where it was built (``compiled.py``), else numpy."""
    natural = params.natural
    T = np.empty((natural.n_quadratic + X.shape[1] + 1, X.shape[0]), dtype=dtype)
    if compiled.features(params.covariance.features_kernel, X, natural.center, T):
        return T
    return _features_numpy(X, params, T)


def _features_numpy(X: NDArray[np.floating], params: Params, T: Array) -> Array:
    """``_features`` in numpy, written into T (the reference for the C loop)."""
    natural = params.natural
    nq, n_features = natural.n_quadratic, X.shape[1]
    dtype = T.dtype
    Xct = T[nq : nq + n_features]
    np.subtract(X.T, natural.center[:, None], out=Xct, casting="same_kind")
    prec_chol = params.precisions_cholesky.astype(dtype, copy=False)
    params.covariance.quadratic_features(Xct, prec_chol, T[:nq])
    T[-1] = 1.0
    return T


# Measured on this project's machines (OpenBLAS): a GEMM of up to about 2^20 multiply-adds
# takes a path without packing that runs the kernel's skinny shapes up to twice as fast
# (K = 16: F = 33 at 42 GFLOP/s over 1024 rows against 26-34 over 4096; F = 153 at 47 over
# 384 rows against 38, in float32 97 against 50). So a block's GEMMs above that size go a
# slice of rows at a time, each slice under it: W @ T in slices of up to 1024 rows, T q' in
# slices of 1024 rows when those fit (with F = 153 whole blocks run as fast). Fits: W2 and W6
# 10-12% faster; GEMMs under 2^20 whole (W3: cutting them cost 8%).
GEMM_ROWS, SMALL_GEMM = 1024, 2**20


def _slice_rows(n_rows: int, n_features: int, n_components: int) -> int:
    """Rows per slice for a GEMM over n_rows rows: all of them when the GEMM is small, else
    up to GEMM_ROWS (a multiple of 128) keeping each slice under SMALL_GEMM."""
    per_row = n_features * n_components
    if n_rows * per_row <= SMALL_GEMM:
        return n_rows
    return max(128, min(GEMM_ROWS, SMALL_GEMM // per_row // 128 * 128))


def _weights_times(Wt: Array, T: Array) -> Array:
    """Wt @ T (K, n) for T (F, n), in slices of rows (see ``GEMM_ROWS``)."""
    n = T.shape[1]
    step = _slice_rows(n, *Wt.shape[::-1])
    if step >= n:
        return Wt @ T
    out = np.empty((Wt.shape[0], n), dtype=np.result_type(Wt, T))
    for start in range(0, n, step):
        np.matmul(Wt, T[:, start : start + step], out=out[:, start : start + step])
    return out


def _times_transposed(T: Array, resp: Array) -> Array:
    """T @ resp.T (F, K) for T (F, n) and resp (K, n), summed over slices of GEMM_ROWS rows
    when each is under SMALL_GEMM (see ``GEMM_ROWS``)."""
    n, per_row = T.shape[1], T.shape[0] * resp.shape[0]
    if n * per_row <= SMALL_GEMM or GEMM_ROWS * per_row > SMALL_GEMM:
        return T @ resp.T
    out = T[:, :GEMM_ROWS] @ resp[:, :GEMM_ROWS].T
    for start in range(GEMM_ROWS, n, GEMM_ROWS):
        out += T[:, start : start + GEMM_ROWS] @ resp[:, start : start + GEMM_ROWS].T
    return out


# Once a mixture separates, most responsibilities are negligible (W1: about 1.07 components a
# row), and the C loop sums only the (row, component) pairs above NEGLIGIBLE times the block's
# largest for the component (in float32: its unit roundoff, 2^-24). It pays where the features
# are many and the pairs few: measured per block on one core (benchmarks/README.md), W1 (F =
# 153 features) 0.18-0.20 ms at 9% of the pairs, 0.31 at 17% against 0.60 ms for the GEMM
# T q'; at F = 45 it won 1.35x at 10% and lost at 16%; at F = 6 (W3) it lost 10x. Besides a
# cost per pair of about F + 128 multiply-adds, it reads every responsibility three times,
# which matters when F is small. In float32 the GEMM runs twice as fast (W1: 0.30 ms) and the
# loop as fast as in float64 (0.20-0.23 ms at 7-8%), so the share is halved.
def sparse_share(n_features_t: int, dtype: DType = np.float64) -> float:
    """The largest share of (row, component) pairs for which the C loop of ``_feature_sums``
    runs instead of the GEMM, for F = ``n_features_t`` features (0.27 at F = 153, 0.12 at
    F = 45, under 0.01 at F = 6; half that in float32)."""
    single = 0.5 if np.dtype(dtype) == np.float32 else 1.0
    return SPARSE_SCALE * single * (n_features_t - 4) / (2 * (n_features_t + 128))


SPARSE_SCALE = 1.0  # 0 sends every block to the GEMM


def _feature_sums(X: NDArray[np.floating], T: Array, resp: Array, params: Params) -> Array:
    """T @ resp.T (F, K): the sums of the features T (F, n) weighted by the responsibilities
    (K, n); for full covariances, where the block is sparse enough, by the C loop over the
    pairs of non-negligible responsibility (``compiled.feature_sums_full``), else by the GEMM
    (``_times_transposed``)."""
    if params.covariance.features_kernel == "full":
        limit = int(sparse_share(T.shape[0], resp.dtype) * resp.size)
        # every row of positive weight has a pair above the threshold: below n, never
        if limit >= resp.shape[1]:
            single = resp.dtype == np.float32
            negligible = float(np.finfo(np.float32).epsneg) if single else NEGLIGIBLE
            sums = compiled.feature_sums_full(X, params.natural.center, resp, negligible, limit)
            if sums is not None:
                return sums
    return _times_transposed(T, resp)


def log_prob_natural(X: NDArray[np.floating], params: Params, dtype: DType = np.float64) -> Array:
    """log pi_k + log N(x_n | mu_k, Sigma_k) = w_k' T(x_n), shape (K, n): one GEMM."""
    return _weights_times(
        params.natural.weights_t.astype(dtype, copy=False), _features(X, params, dtype)
    )


def log_prob_componentwise(X: Array, params: Params) -> Array:
    """The same (K, n) from the rows centred at every component's mean."""
    log_gauss = params.covariance.log_gauss_rows(X, params.means, params.precisions_cholesky)
    return log_gauss + _log_weights(params)[:, None]


def log_prob(X: NDArray[np.floating], params: Params, dtype: DType = np.float64) -> Array:
    """log pi_k + log N(x_n | mu_k, Sigma_k) for a block of rows, components first: (K, n).

    ``dtype`` float32 computes the natural kernel's GEMM in single precision."""
    if uses_natural_kernel(params, dtype):
        return log_prob_natural(X, params, dtype)
    return log_prob_componentwise(np.asarray(X, dtype=np.float64), params)


def weighted_log_prob(X: NDArray[np.floating], params: Params, dtype: DType = np.float64) -> Array:
    """log pi_k + log N(x_n | mu_k, Sigma_k) for a block of rows, shape (n, K)."""
    return log_prob(X, params, dtype).T


# exp(-700) is about 1e-304, above the smallest normal float64 (2.2e-308): numpy's vectorised
# exp keeps to its fast path only for results safely above it (measured: 4.5x slower per
# element at -708 than at -705 or above). In float32 the normals end at e^-87.3.
EXP_FLOOR = {np.dtype(np.float64): -700.0, np.dtype(np.float32): -80.0}


def log_density_in_place(log_prob: Array) -> Array:
    """log p(x_n) = log sum_k exp(log_prob[k, n]), shape (n,); ``log_prob`` (K, n) is consumed."""
    return softmax_in_place(log_prob)[1]


def softmax_in_place(log_prob: Array) -> tuple[Array, Array]:
    """Responsibilities (K, n), computed in place over ``log_prob``, and log p(x_n) (n,):
    log-sum-exp over components, shifted by the row maximum so nothing overflows. By the C
    loop where it was built (one sweep, ``compiled.py``), else by ``softmax_numpy``."""
    log_density = compiled.softmax(log_prob, EXP_FLOOR[log_prob.dtype])
    if log_density is not None:
        return log_prob, log_density
    return softmax_numpy(log_prob)


def softmax_numpy(log_prob: Array) -> tuple[Array, Array]:
    """``softmax_in_place`` in numpy (the reference for the C loop)."""
    top = log_prob.max(axis=0)
    log_prob -= top
    # exp near or among the subnormals runs several times slower, so terms are raised to
    # EXP_FLOOR first, and exp(EXP_FLOOR) is taken off every term after: those below the floor
    # come out exactly 0 (as exp gives for the far ones, and as a collapsed component's
    # zero variance needs to be seen), the others move by 1e-304 (float32: 2e-35), nothing
    # next to the row's largest term, e^0 = 1
    floor = np.asarray(EXP_FLOOR[log_prob.dtype], dtype=log_prob.dtype)
    # against a row of floors: numpy's loop against a scalar runs at half the speed
    np.maximum(log_prob, np.full((1, log_prob.shape[1]), floor), out=log_prob)
    np.exp(log_prob, out=log_prob)
    log_prob -= np.exp(floor)
    total = log_prob.sum(axis=0)
    log_prob *= 1.0 / total
    return log_prob, top + np.log(total)


def _weighted_sums(
    resp: Array, log_norm: Array, weights: Array | None
) -> tuple[float, float, Array]:
    """Weight the responsibilities in place; return the log-likelihood sum, the total weight and
    the log-densities of the rows that may be re-seeding candidates (weight > 0)."""
    if weights is None:
        return float(log_norm.sum(dtype=np.float64)), float(log_norm.shape[0]), log_norm
    resp *= weights.astype(resp.dtype, copy=False)
    candidates = np.where(weights > 0, log_norm, np.inf)
    return float(weights @ log_norm.astype(np.float64)), float(weights.sum()), candidates


def chunk_stats(
    X: NDArray[np.floating],
    params: Params,
    weights: Array | None = None,
    dtype: DType = np.float64,
) -> SuffStats:
    """E-step and accumulation over one block of rows.

    Parameters
    ----------
    X : (n, D) the rows.
    params : the current parameters.
    weights : (n,) non-negative sample weights, or None for ones.
    dtype : float64, or float32 for the natural kernel's GEMMs and softmax in single precision
        (its block sums are then added, moved and merged in float64).

    Returns
    -------
    SuffStats of the block, about the current means. The responsibilities
    q_kn = pi_k N(x_n | mu_k, Sigma_k) / sum_j pi_j N(x_n | mu_j, Sigma_j)
    are computed in log space (log-sum-exp) and discarded with the block.

    Notes
    -----
    Runs the natural-parameter kernel (``natural.py``: two GEMMs) unless the componentwise
    kernel is faster at this shape, or a component sits so far from the mixture mean that its
    covariance would lose more than six digits in the natural one.
    Rows of another array library (PyTorch, CuPy, ...) go to ``device.py``'s kernel, which
    computes on their device and returns the same statistics on the host.
    """
    if X.shape[0] == 0:
        return zeros(params)
    if not isinstance(X, np.ndarray):  # rows of another array library, on its device
        from gaussmix.em.device import chunk_stats_device

        return chunk_stats_device(X, params, weights, dtype)
    if uses_natural_kernel(params, dtype):
        return chunk_stats_natural(X, params, weights, dtype)
    return chunk_stats_componentwise(X, params, weights)


def chunk_stats_natural(
    X: NDArray[np.floating],
    params: Params,
    weights: Array | None = None,
    dtype: DType = np.float64,
) -> SuffStats:
    """The natural-parameter kernel (see ``natural.py``); same contract as ``chunk_stats``."""
    natural = params.natural
    nq = natural.n_quadratic
    T = _features(X, params, dtype)
    resp, log_norm = softmax_in_place(
        _weights_times(natural.weights_t.astype(dtype, copy=False), T)
    )
    loglik, count, candidates = _weighted_sums(resp, log_norm, weights)
    # (nq + D + 1, K): every component's sums of the features about c, and N_k; from here on
    # float64 whatever the compute dtype
    G = np.asarray(_feature_sums(X, T, resp, params), dtype=np.float64)
    nk = G[-1]
    cov = params.covariance
    # move the sums from c to each component's mean mu_k = c + e_k (K D^2 work per block), so
    # that both kernels' statistics mean the same thing and merge with each other
    E = params.means - natural.center
    sx = G[nq:-1].T
    sxx = np.asarray(cov.second_moment_from_features(G[:nq], T[nq:-1], resp), dtype=np.float64)
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


def chunk_stats_componentwise(
    X: NDArray[np.floating], params: Params, weights: Array | None = None
) -> SuffStats:
    """The componentwise kernel: statistics about each component's own mean.

    Same contract as ``chunk_stats``. It centres the rows at every component's mean, so it
    moves K x D values per row where the natural kernel moves D (D + 1) / 2 + D: it wins for
    full covariances with many features and few components (where it makes one component's
    centred rows at a time, and leaves rows of negligible responsibility out of a component's
    second moment, see ``covariance.NEGLIGIBLE``), and it is exact however far the components
    lie from each other. It is also the reference the tests hold the natural kernel to.
    """
    X64: Array = np.asarray(X, dtype=np.float64)
    if X64.shape[0] == 0:
        return zeros(params)
    resp, log_norm = softmax_in_place(log_prob_componentwise(X64, params))
    loglik, count, candidates = _weighted_sums(resp, log_norm, weights)
    worst = int(np.argmin(candidates))
    sx, sxx = params.covariance.moments_rows(resp, X64, params.means)
    return SuffStats(
        n=count,
        loglik=loglik,
        nk=resp.sum(axis=1),
        sx=sx,
        sxx=sxx,
        shift=params.means,
        worst_loglik=float(candidates[worst]),
        worst_x=X64[worst].copy(),
    )
