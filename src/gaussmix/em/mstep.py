"""The M-step: a pure function from merged statistics to new parameters.

It is the stationary point of the surrogate (the expected complete-data log-likelihood with the
responsibilities q_kn held fixed)

    Q = sum_n sum_k q_kn [log pi_k + 1/2 log det Lambda_k - 1/2 (x_n - mu_k)' Lambda_k (x_n - mu_k)]

with Lambda_k = Sigma_k^{-1}, under sum_k pi_k = 1:

    N_k = sum_n q_kn,   pi_k = N_k / N   (Lagrange multiplier lambda = -N),
    mu_k = sum_n q_kn x_n / N_k,
    Sigma_k = sum_n q_kn (x_n - mu_k)(x_n - mu_k)' / N_k   (+ reg_covar I).

``gaussmix derive gmm`` derives these with the calculus engine; its tests check this module
against that derivation. With mclust's conjugate prior the M-step is the posterior mode
instead: the prior is added to the merged statistics (``prior.py`` says why that is exact).

``estimate`` and ``mstep`` are the reference. An EM fit calls its M-step through a
``FitMStep``, made once per fit, which runs the same arithmetic in C where the C loops were
built (``compiled.ClosedMStep``): at hundreds of rows the numpy M-step's twenty-odd calls on
K x D x D numbers took several times the E-step's one call, so buffers and their addresses
are held for the fit and a closed form's M-step is one foreign call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from numpy.typing import NDArray

from gaussmix.em.covariance import Covariance, get_covariance
from gaussmix.em.errors import DegenerateCovarianceError
from gaussmix.em.params import Params
from gaussmix.em.prior import ResolvedPrior
from gaussmix.em.stats import SuffStats, merge, zeros_at

Array = NDArray[np.float64]

# Added to N_k (as scikit-learn does) so that an empty component divides by a tiny number, not zero.
_NK_FLOOR = 10.0 * np.finfo(np.float64).eps


def estimate(
    stats: SuffStats,
    covariance: Covariance,
    reg_covar: float,
    start: Array | None = None,
    prior: ResolvedPrior | None = None,
) -> tuple[Array, Array, Array]:
    """Weights (K,), means (K, D) and covariances (type layout) from merged statistics; an
    iterative M-step starts from the covariances ``start`` (type layout) when given. With a
    conjugate ``prior`` (``prior.py``), the posterior mode: the means shrunk towards the prior
    mean, mu_k = (N_k xbar_k + kappa mu_P) / (N_k + kappa), and the model's M-step on the
    statistics with the prior's terms added."""
    nk, d = _counts_and_moves(stats)
    weights = nk / nk.sum()  # pi_k = N_k / N
    if prior is None:
        return weights, stats.shift + d, covariance.covariances(stats.sxx, nk, d, reg_covar, start)
    xbar = stats.shift + d
    kappa = prior.shrinkage
    means = (nk[:, None] * xbar + kappa * prior.mean) / (nk + kappa)[:, None]
    covariances = covariance.posterior_covariances(
        stats.sxx, nk, d, reg_covar, prior, xbar - prior.mean, start
    )
    return weights, means, covariances


def _counts_and_moves(stats: SuffStats) -> tuple[Array, Array]:
    """N_k (floored) and d_k = mu_k - c_k, the means' moves from the shifts."""
    nk = stats.nk + _NK_FLOOR
    return nk, stats.sx / nk[:, None]


def mstep(
    stats: SuffStats,
    covariance: Covariance,
    reg_covar: float,
    start: Array | None = None,
    prior: ResolvedPrior | None = None,
) -> Params:
    """New parameters from the merged statistics of all rows.

    The means maximise the surrogate whatever the covariances are, so the covariances are the
    covariance model's M-step at those means (``Covariance.constrain``).

    Parameters
    ----------
    stats : statistics of the whole data set, taken about shifts c_k.
    covariance : the covariance structure.
    reg_covar : non-negative number added to the diagonal of every covariance.
    start : the current covariances, where an iterative M-step starts (so EM stays monotone).
    prior : a conjugate prior (``gaussmix.em.prior``): the posterior mode instead (MAP-EM).
    """
    if prior is None:  # the covariances with their factors: one C call for some models
        nk, d = _counts_and_moves(stats)
        covariances, factors = covariance.covariances_and_factors(
            stats.sxx, nk, d, reg_covar, start
        )
        weights, means = nk / nk.sum(), stats.shift + d
    else:
        weights, means, covariances = estimate(stats, covariance, reg_covar, start, prior)
        factors = covariance.precisions_cholesky(covariances)
    return Params(
        weights=weights,
        means=means,
        precisions_cholesky=factors,
        covariance=covariance,
        stored_covariances=covariances,
    )


class FitMStep:
    """One fit's M-step: ``mstep`` with the fit's covariance structure, ``reg_covar`` and
    ``prior``, called once per EM iteration as ``step(stats, start)``.

    A closed-form model whose registry entry names its C M-step (``Covariance.compiled_mstep``:
    VVV, EEE, VVI, VII, EII, EEI, EVI) runs it in one foreign call with buffers held for the
    fit (``compiled.ClosedMStep``), the same arithmetic as ``estimate`` and
    ``precisions_cholesky``: at hundreds of rows the numpy M-step's twenty-odd small calls
    cost several times the lean E-step. ``mstep`` itself runs for the other models (the
    iterative and eigen ones, whose ``compiled_mstep`` names their C there), without the C
    loops (``GAUSSMIX_COMPILED=0``), with a prior, and for a degenerate covariance, where it
    raises the named error as always.

    Parameters
    ----------
    covariance : the covariance structure.
    means_shape : (K, D), the shape of the means.
    reg_covar : non-negative number added to the diagonal of every covariance.
    prior : a conjugate prior (``gaussmix.em.prior``), or None.
    """

    def __init__(
        self,
        covariance: Covariance,
        means_shape: tuple[int, int],
        reg_covar: float,
        prior: ResolvedPrior | None = None,
    ) -> None:
        from gaussmix.em import compiled  # the C loops load on first use (``gaussmix info``)

        self.covariance, self.reg_covar, self.prior = covariance, reg_covar, prior
        # M-steps so far (``singular_fails``' checks); run_em sets it to the fit's where some
        # of them were a whole C loop's (``lean.WholeLoop``), which checks on the same count
        self.calls = 0
        self.compiled = None
        if prior is None:
            self.compiled = compiled.closed_mstep(
                covariance.compiled_mstep,
                means_shape,
                covariance.shape(*means_shape),
                covariance.matrix_layout,
                reg_covar,
                _NK_FLOOR,
            )

    def __call__(self, stats: SuffStats, start: Array | None = None) -> Params:
        """New parameters from the merged statistics of all rows (``mstep``); ``start``: the
        current covariances, where an iterative M-step starts."""
        params = self.unchecked(stats, start)
        self.calls += 1
        # some microseconds: at the first M-steps, where collapses happen, then every 64th
        # (``_kernels.c``'s whole_em checks the same M-steps)
        if self.calls & (self.calls - 1) == 0 or self.calls % 64 == 0:
            scale = _SINGULAR_SCALE.get()
            if scale is not None:
                _check_conditioning(params, scale)
        return params

    def unchecked(self, stats: SuffStats, start: Array | None = None) -> Params:
        """The M-step without the count and the check of ``singular_fails``: also the start's,
        from the statistics of the initial responsibilities (``init.initial_params``)."""
        if self.compiled is not None:
            done = self.compiled(stats.nk, stats.sx, stats.sxx, stats.shift)
            if done is not None:
                weights, means, covariances, factors = done
                return Params(weights, means, factors, self.covariance, covariances)
        return mstep(stats, self.covariance, self.reg_covar, start, self.prior)


# Inside ``singular_fails`` (select's fits): the data's variance per feature (module docstring)
_SINGULAR_SCALE: ContextVar[Array | None] = ContextVar("gaussmix_singular_scale", default=None)
# a variance this fraction of the data's in some direction is singular in float64
_SINGULAR_FRACTION = float(np.finfo(np.float64).eps)


def singular_scale() -> Array | None:
    """Inside ``singular_fails`` the data's variance per feature it was given, else None."""
    return _SINGULAR_SCALE.get()


@contextmanager
def singular_fails(data_variance: Array) -> Iterator[None]:
    """Within the block an EM M-step whose covariance is numerically singular raises
    ``DegenerateCovarianceError``, as mclust's M-steps return NA: a component whose variance,
    given the features before it (the precision factor's diagonal), is at most float64's eps
    times the data's ``data_variance`` (D,). Without ``reg_covar`` a collapse towards a
    covariance that its constraint keeps from being exactly singular (a shared orientation)
    would otherwise run to ``max_iter`` (``select`` on MASS's ships, a column with two
    values: 130 s). Such a fit is degenerate by ``select``'s rule whatever the threshold."""
    token = _SINGULAR_SCALE.set(np.asarray(data_variance, dtype=np.float64))
    try:
        yield
    finally:
        _SINGULAR_SCALE.reset(token)


def _check_conditioning(params: Params, data_variance: Array) -> None:
    """Raise when some component's variance in some direction is at most ``_SINGULAR_FRACTION``
    of the data's (a conditional variance bounds the smallest eigenvalue from above)."""
    cov, n_features = params.covariance, params.n_features
    factors = params.precisions_cholesky
    diagonal = np.diagonal(factors, axis1=-2, axis2=-1) if cov.matrix_layout else factors
    with np.errstate(over="ignore"):  # an overflow is a singular covariance too
        if cov.shape(1, n_features)[-1] == n_features:  # one factor per feature: 1 / sd_d
            worst = float(np.max(diagonal * diagonal * data_variance))
        else:  # one variance per component (spherical), against the widest feature's
            worst = float(np.max(diagonal * diagonal)) * float(data_variance.max())
    if not worst < 1.0 / _SINGULAR_FRACTION:
        raise DegenerateCovarianceError(
            "a covariance is numerically singular (a variance below 2.2e-16 of the data's); "
            "try fewer components or a positive reg_covar"
        )


def resp_stats(
    X: Array, resp: Array, shift: Array, covariance: Covariance, weights: Array | None = None
) -> SuffStats:
    """Statistics of rows under *given* responsibilities (initialisation, verification).

    Parameters
    ----------
    X : (n, D) rows.  resp : (n, K) responsibilities.  shift : (K, D) shifts c_k.
    weights : (n,) sample weights or None.
    """
    resp_t = np.asarray(resp, dtype=np.float64).T  # (K, n)
    if weights is not None:
        resp_t = resp_t * weights
    if X.shape[0] == 0:
        return zeros_at(covariance, shift)
    sx, sxx = covariance.moments_rows(resp_t, X, shift)
    return SuffStats(
        n=float(X.shape[0] if weights is None else np.sum(weights)),
        loglik=0.0,
        nk=resp_t.sum(axis=1),
        sx=sx,
        sxx=sxx,
        shift=shift,
        worst_loglik=np.inf,
        worst_x=np.zeros(shift.shape[1]),
    )


def _resp_block(resp: NDArray[np.number], rows: slice, n_components: int) -> Array:
    """Rows of the responsibilities; hard labels (n,) become one-hot rows (m, K)."""
    block = resp[rows]
    if block.ndim == 1:
        return np.eye(n_components)[block]
    return np.asarray(block, dtype=np.float64)


def stats_from_resp(
    X: NDArray[np.floating],
    resp: NDArray[np.number],
    covariance: Covariance,
    weights: Array | None = None,
    n_components: int | None = None,
    chunk_size: int = 65536,
) -> SuffStats:
    """Merged statistics of all rows under given responsibilities, about their own means.

    Parameters
    ----------
    X : (n, D) rows.
    resp : (n, K) responsibilities, or (n,) integer labels (hard assignments; then pass
        ``n_components``).
    covariance : the covariance structure.  weights : (n,) sample weights or None.
    """
    K = resp.shape[1] if resp.ndim == 2 else int(n_components or resp.max() + 1)
    n_rows = X.shape[0]
    if resp.ndim == 1 and n_rows * (K + X.shape[1] ** 2) <= _LABELLED_MAX_VALUES:
        return _labelled_stats(np.asarray(X, dtype=np.float64), resp, K, covariance, weights)
    blocks = [slice(s, s + chunk_size) for s in range(0, n_rows, chunk_size)]
    # shift by the means themselves: one pass for the means, then the scatter about them
    nk = np.zeros(K)
    sums = np.zeros((K, X.shape[1]))
    for rows in blocks:
        q = _resp_block(resp, rows, K)
        if weights is not None:
            q = q * weights[rows, None]
        nk += q.sum(axis=0)
        sums += q.T @ np.asarray(X[rows], dtype=np.float64)
    shift = sums / (nk + _NK_FLOOR)[:, None]
    total = zeros_at(covariance, shift)
    for rows in blocks:
        part_weights = None if weights is None else weights[rows]
        block = np.asarray(X[rows], dtype=np.float64)
        q = _resp_block(resp, rows, K)
        total = merge(total, resp_stats(block, q, shift, covariance, part_weights))
    return total


# Hard labels of at most this many values of one-hot rows and outer products (16 MB) take
# ``_labelled_stats``: a grid's starts (hierarchical, k-means, quantile classes) all are labels
_LABELLED_MAX_VALUES = 1 << 21


def _labelled_stats(
    X: Array, labels: NDArray[np.number], n_components: int, covariance: Covariance,
    weights: Array | None,
) -> SuffStats:  # fmt: skip
    """``stats_from_resp`` of hard labels (n,): each row centred once, at its own component's
    mean, and every sum one product with the (K, n) one-hot rows (the layout's
    ``labelled_second_moment``). The general path's per-block one-hot rows, merges and
    per-component products cost a small fit's start several times as much (14 us against
    31-209 us at 31 x 3 rows, K = 3 to 9); the two agree to rounding."""
    n = X.shape[0]
    onehot = np.zeros((n_components, n))
    onehot[labels, np.arange(n)] = 1.0 if weights is None else weights
    nk = onehot.sum(axis=1)
    shift = (onehot @ X) / (nk + _NK_FLOOR)[:, None]
    Z = X - shift[labels]
    return SuffStats(
        n=float(n if weights is None else np.sum(weights)),
        loglik=0.0,
        nk=nk,
        sx=onehot @ Z,
        sxx=covariance.labelled_second_moment(onehot, Z),
        shift=shift,
        worst_loglik=np.inf,
        worst_x=np.zeros(X.shape[1]),
    )


def mstep_from_resp(
    X: Array,
    resp: Array,
    covariance_type: str,
    reg_covar: float = 0.0,
    weights: Array | None = None,
) -> tuple[Array, Array, Array]:
    """The M-step for given responsibilities, in scikit-learn's layout.

    Parameters
    ----------
    X : (n, D) data.  resp : (n, K) responsibilities q_kn.
    covariance_type : a name of the covariance registry ('full', 'diag', 'tied', 'spherical',
        or one of mclust's models 'EII' ... 'VVV', 'E', 'V').
    reg_covar : added to the diagonal.  weights : (n,) sample weights or None.

    Returns
    -------
    weights (K,), means (K, D), covariances in the type's layout (full (K, D, D), diag (K, D),
    tied (D, D), spherical (K,); ``gaussmix.em.covariance``).
    """
    X = np.asarray(X, dtype=np.float64)
    resp = np.asarray(resp, dtype=np.float64)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    cov = get_covariance(covariance_type)
    return estimate(stats_from_resp(X, resp, cov, w), cov, reg_covar)
