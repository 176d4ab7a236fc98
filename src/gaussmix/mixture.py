"""``GaussianMixture``: a drop-in for ``sklearn.mixture.GaussianMixture`` on the chunked EM engine.

The estimator validates its input, builds a data source, draws initial parameters the way
scikit-learn does and hands them to ``gaussmix.em.run_em``; it holds no EM arithmetic of its own.
Beyond scikit-learn it takes ``sample_weight`` in ``fit``, walks the data in blocks of
``chunk_size`` rows (the N x K responsibility matrix is never formed), records the history of the
lower bound in ``lower_bounds_``, re-seeds collapsed components, and saves to a pickle-free file.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import xlogy
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from gaussmix.data.dask_source import on_dask
from gaussmix.data.sources import (
    ArraySource,
    DataSource,
    check_finite_blocks,
    check_missing_blocks,
    default_chunk_size,
    open_source,
)
from gaussmix.em import (
    ALIASES,
    INIT_METHODS,
    REGISTRY,
    EMResult,
    Params,
    compiled,
    device,
    get_covariance,
    initial_params,
    lean,
    run_em,
)
from gaussmix.em.device import DeviceSource
from gaussmix.em.init import DRAWS_NOTHING, drawing, random_state_for_starts, start_statistics
from gaussmix.em.lean import final_pass
from gaussmix.em.loop import COLLAPSED_WEIGHT
from gaussmix.em.missing import Block, fill_for_init, log_prob_observed, regroup
from gaussmix.em.mstep import FitMStep
from gaussmix.em.parallel import BlockMap, Workers, forked_shares, workers
from gaussmix.em.prior import MCLUST, Prior, ResolvedPrior, data_moments, moments_on, resolve
from gaussmix.em.stats import log_density_in_place, log_prob, softmax_in_place
from gaussmix.validation import (
    check_precisions,
    check_sample_weight,
    validate_rows,
    warn_degenerate_columns,
)

Array = NDArray[np.float64]
# What fit and predict take: an array-like, a path to a .npy or Parquet file, or a data source.
Data = Any


def _is_source(X: object) -> bool:
    return all(hasattr(X, name) for name in ("chunks", "take", "n_samples", "n_features"))


def _rows_dtype(source: DataSource) -> type[np.floating]:
    """float32 for rows stored as float32 (an array, a .npy file), else float64: the dtype of
    the fitted attributes and outputs, as scikit-learn keeps float32 input float32."""
    stored = source.X.dtype if isinstance(source, ArraySource) else getattr(source, "dtype", None)
    return np.float32 if stored == np.float32 else np.float64


__all__ = ["GaussianMixture", "iteration_hook"]

_ITERATION_HOOK: ContextVar[Callable[[int, float], None] | None] = ContextVar(
    "gaussmix_iteration_hook", default=None
)


@contextmanager
def iteration_hook(hook: Callable[[int, float], None]) -> Iterator[None]:
    """Within the block, every EM iteration of every fit calls ``hook(iteration, lower_bound)``
    (the command line draws its progress bars with it)."""
    token = _ITERATION_HOOK.set(hook)
    try:
        yield
    finally:
        _ITERATION_HOOK.reset(token)


# Per-block reductions of the (m, K) matrix of log pi_k + log N(x_n | mu_k, Sigma_k).
# (K, m), components first; each may consume its argument.
_BlockReduce = Callable[[Array], Any]


def _log_density(log_prob: Array) -> Array:
    return log_density_in_place(log_prob)


def _label(log_prob: Array) -> NDArray[np.intp]:
    return log_prob.argmax(axis=0)


def _responsibilities(log_prob: Array) -> Array:
    return np.ascontiguousarray(softmax_in_place(log_prob)[0].T)


# the same reductions on a device (``gaussmix.em.device.per_row``)
_ON_DEVICE: dict[_BlockReduce, str] = {
    _log_density: "log_density",
    _label: "label",
    _responsibilities: "responsibilities",
}
_FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")


def _label_and_log_density(log_prob: Array) -> tuple[NDArray[np.intp], Array]:
    return _label(log_prob), _log_density(log_prob)


def _reduce_blocks(
    params: Params,
    rows: int,
    dtype: Any,
    reduce: _BlockReduce,
    share: DataSource,
    map_blocks: BlockMap[Any, Any],
) -> list[Any]:
    """``reduce`` of the (K, m) weighted log-probabilities of each block of a share of the rows,
    in order; only the blocks in flight have their log-probabilities in memory."""
    return list(
        map_blocks(
            lambda block: reduce(log_prob_observed(block[0], params, dtype)), share.chunks(rows)
        )
    )


def _log_likelihood_of_share(
    params: Params, rows: int, dtype: Any, share: DataSource, map_blocks: BlockMap[Any, Any]
) -> float:
    """sum_n w_n log p(x_n) over a share of the rows, summed block by block (nothing per row
    is kept; rows with missing values gathered by ``regroup``, as order does not matter)."""

    def block_sum(block: Block) -> float:
        log_density = log_density_in_place(log_prob_observed(block[0], params, dtype))
        if block[1] is None:
            return float(log_density.sum(dtype=np.float64))
        return float(block[1] @ log_density.astype(np.float64, copy=False))

    return float(sum(map_blocks(block_sum, regroup(share.chunks(rows)))))


def _log_likelihood_and_entropy_of_share(
    params: Params,
    rows: int,
    dtype: Any,
    missing: bool,
    share: DataSource,
    map_blocks: BlockMap[Any, Any],
) -> tuple[float, float]:
    """``_log_likelihood_of_share`` (the same sums, to the bit) and, from the same
    responsibilities t, the share's classification entropy -sum_n sum_k t_nk log t_nk (rows
    unweighted, as ``selection.classification_entropy``). Rows known to hold no NaN
    (``missing`` False) skip the two searches for them, which find none."""
    log_prob_of = log_prob_observed if missing else log_prob

    def block_sums(block: Block) -> tuple[float, float]:
        resp, log_density = softmax_in_place(log_prob_of(block[0], params, dtype))
        entropy = -float(xlogy(resp, resp).sum())  # 0 log 0 = 0
        if block[1] is None:
            return float(log_density.sum(dtype=np.float64)), entropy
        return float(block[1] @ log_density.astype(np.float64, copy=False)), entropy

    blocks = share.chunks(rows)
    parts = list(map_blocks(block_sums, regroup(blocks) if missing else blocks))
    return float(sum(part[0] for part in parts)), float(sum(part[1] for part in parts))


# The shape beyond the rows and the dtype of each per-row output, given K (for lazy dask arrays).
_PER_ROW_OUTPUT: dict[_BlockReduce, Callable[[int], tuple[tuple[int, ...], Any]]] = {
    _log_density: lambda k: ((), np.float64),
    _label: lambda k: ((), np.intp),
    _responsibilities: lambda k: ((k,), np.float64),
}


def _per_row_of_chunk(
    params: Params, rows: int, dtype: Any, reduce: _BlockReduce, X: NDArray[np.floating]
) -> Any:
    """``reduce`` of one dask row chunk, its blocks in turn, concatenated."""
    from gaussmix.data.sources import as_float

    chunk = ArraySource(as_float(X))
    return np.concatenate(_reduce_blocks(params, rows, dtype, reduce, chunk, map))


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture model fitted by Expectation-Maximization.

    The model is p(x) = sum_k pi_k N(x | mu_k, Sigma_k). Each EM iteration computes the
    responsibilities q_kn = pi_k N(x_n | mu_k, Sigma_k) / sum_j pi_j N(x_n | mu_j, Sigma_j)
    (E-step, in log space) and then the stationary point of the surrogate (M-step):
    N_k = sum_n q_kn, pi_k = N_k / N, mu_k = sum_n q_kn x_n / N_k,
    Sigma_k = sum_n q_kn (x_n - mu_k)(x_n - mu_k)' / N_k + reg_covar I.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    covariance_type : {'full', 'tied', 'diag', 'spherical'} or one of mclust's models
        {'EII', 'VII', 'EEI', 'VEI', 'EVI', 'VVI', 'EEE', 'VEE', 'EVE', 'VVE', 'EEV', 'VEV',
        'EVV', 'VVV'} ('E', 'V' for one feature), default='full'
        Covariance structure of the components; 'full', 'diag', 'tied' and 'spherical' are
        mclust's VVV, VVI, EEE and VII.
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood per iteration (or on
        its relative change: ``convergence``).
    convergence : {'mean', 'relative'}, default='mean'
        What ``tol`` bounds. 'mean': the change of the mean log-likelihood per row, as
        scikit-learn. 'relative': mclust's rule, |L_t - L_{t-1}| / (1 + |L_t|) with L the
        total log-likelihood (mclust's default tol is 1e-5).
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of every covariance.
    max_iter : int, default=100
        Number of EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the best lower bound is kept.
    init_params : {'kmeans', 'kmeans_standardised', 'k-means++', 'random', 'random_from_data',
        'hc', 'quantile'}, default='kmeans'
        How initial responsibilities are drawn; 'kmeans_standardised' runs k-means on columns
        scaled to unit variance; 'hc' is mclust's model-based hierarchical agglomeration
        (deterministic, grown once per data set for every K and model); 'quantile', for one
        feature, is mclust's start there, K classes between quantiles (its ``qclass``).
    weights_init : array of shape (K,), default=None
    means_init : array of shape (K, D), default=None
    precisions_init : array, default=None
        Shape (K,) spherical, (D, D) tied, (K, D) diag, (K, D, D) full.
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
        Start ``fit`` from the previous solution (and use one initialisation).
    verbose : int, default=0
        1 prints the initialisations and convergence, 2 also the lower bound every
        ``verbose_interval`` iterations (on stderr).
    verbose_interval : int, default=10
    chunk_size : int or None, default=None
        Rows per block of the E-step; None keeps a block's working arrays near 2 MB (one
        core's cache), or up to 4096 rows while they stay under 6 MB.
    n_threads : int or None, default=None
        Workers that share the rows; None uses every available core. On Linux, a fit of an
        array, a memmap or a ``.npy`` file with at least 50,000 rows forks a worker process
        per extra core, which sees the rows through shared pages (nothing is copied); other
        fits, and ``predict``/``score_samples``, share blocks among threads. Set 1 when
        fitting several models in parallel; ``GAUSSMIX_FORK=0`` in the environment keeps
        every fit to threads.
    init_sample_size : int or None, default=100_000
        The initialisation (k-means, k-means++, random) sees a uniform sample of this many rows
        when there are more; None shows it every row. Up to this size the draws are
        scikit-learn's; beyond it, initialisation costs O(init_sample_size), not O(n_samples).
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        Precision of the E-step's GEMMs and softmax. float32 is about twice as fast for full
        covariances (benchmarks/README.md); its block sums are still added, and the M-step
        done, in float64; an iteration where a component lies more than ~300 standard
        deviations from the mixture mean, or whose M-step is not positive definite, runs in
        float64. This is the precision of the computation only: the fitted attributes and
        the outputs take the dtype of the rows (float32 rows give float32, as in
        scikit-learn) whatever it is. The lower bound is accurate to about 1e-5 relative, so
        a ``tol`` far below that cannot be met.
    missing : {'error', 'em'}, default='error'
        What a NaN in X means. 'error': a NaN is refused (as scikit-learn does), since it is
        often a mistake upstream (a failed parse, 0/0) rather than a value known to be absent.
        'em': NaN marks a missing entry, integrated out exactly (``gaussmix.em.missing``): the
        E-step uses the marginal density of each row's observed part, the M-step the expected
        statistics E[x_m | x_o, k] and E[x_m x_m' | x_o, k], so the fit is the maximum
        likelihood estimate when values are missing at random (the chance of a value being
        missing may depend on the observed values, not on the missing one). Rows without NaN
        go through the same kernel as with 'error' (no NaN: the same fit). ``lower_bounds_``,
        ``score``, ``score_samples``, ``bic`` and ``aic`` are then the observed-data
        log-likelihood, and ``predict``/``predict_proba`` use the observed part of each row.
        A row or a column with every value missing is refused in ``fit``. Opt-in, so that
        scikit-learn's estimator checks (which expect an error on NaN unless the estimator's
        ``allow_nan`` tag says otherwise) hold for the default; with 'em' the tag is set.
        Infinite values are refused either way. To fill the holes, see
        ``gaussmix.GaussianMixtureImputer``.
    learning_decay : float in (0.5, 1], default=0.7
        ``partial_fit``'s step sizes eta_t = (t + 2)^(-learning_decay) (named as scikit-learn's
        online LDA names it): smaller forgets old batches faster.
    prior : None, 'mclust' or a ``gaussmix.Prior``, default=None
        mclust's conjugate prior (Fraley and Raftery 2007, ``priorControl()``): the fit is the
        posterior mode (MAP-EM), the means shrunk towards the data's mean and the covariances
        towards a scaled data covariance, so no component collapses onto a few rows. 'mclust'
        takes every default of mclust (shrinkage 0.01, the column means, dof D + 2, scale
        var(X) / K^(2/D)); a ``Prior`` sets any of them. ``lower_bounds_``,
        ``log_likelihood_``, ``score``, ``bic`` and ``aic`` stay the log-likelihood at those
        parameters, without the prior's term, as mclust reports them
        (``gaussmix.em.prior``). ``partial_fit`` makes it from its first batch.

    Attributes
    ----------
    weights_ : (K,) mixing proportions.
    means_ : (K, D) means.
    covariances_ : covariances (layout as ``precisions_init``).
    precisions_ : inverses of the covariances, same layout.
    precisions_cholesky_ : Cholesky factors P of the precisions, precision = P P'.
    converged_ : bool, whether the best initialisation converged.
    n_iter_ : int, iterations of the best initialisation.
    lower_bound_ : float, mean log-likelihood of the best initialisation's last E-step.
    lower_bounds_ : list of float, the mean log-likelihood at every iteration of the best
        initialisation (non-decreasing for exact EM).
    n_reinitialized_ : int, how many times a collapsed component was re-seeded.
    reinitialized_ : list of (iteration, component), when and which component was re-seeded.
    log_likelihood_ : float, total (weighted) log-likelihood of the training rows under the
        final parameters (what BIC and AIC are computed from).
    n_samples_fit_ : int, rows of the training data.
    n_missing_ : int, missing entries (NaN) in the training data (0 unless missing='em').
    n_features_in_ : int.  feature_names_in_ : (D,) when X had string column names.
    """

    _parameter_constraints: dict[str, list[Any]] = {  # noqa: RUF012  (scikit-learn's protocol)
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(set(REGISTRY) | set(ALIASES))],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "convergence": [StrOptions({"mean", "relative"})],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions(set(INIT_METHODS))],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "init_sample_size": [Interval(Integral, 1, None, closed="left"), None],
        "dtype": [Options(type, {np.float64, np.float32})],
        "missing": [StrOptions({"error", "em"})],
        "learning_decay": [Interval(Real, 0.5, 1.0, closed="right")],
        "prior": [None, StrOptions({MCLUST}), Prior],
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: ArrayLike | None = None,
        means_init: ArrayLike | None = None,
        precisions_init: ArrayLike | None = None,
        random_state: int | np.random.RandomState | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        chunk_size: int | None = None,
        n_threads: int | None = None,
        init_sample_size: int | None = 100_000,
        dtype: type[np.floating] = np.float64,
        missing: str = "error",
        learning_decay: float = 0.7,
        prior: Prior | str | None = None,
        convergence: str = "mean",
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.n_threads = n_threads
        self.init_sample_size = init_sample_size
        self.dtype = dtype
        self.missing = missing
        self.learning_decay = learning_decay
        self.prior = prior
        self.convergence = convergence

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.missing == "em"
        return tags

    # ------------------------------------------------------------------ validation
    def _source(
        self,
        X: Data,
        sample_weight: ArrayLike | None = None,
        *,
        reset: bool,
        min_rows: int = 1,
        fitting: bool = False,
    ) -> DataSource:
        """Validated rows as a data source: arrays via scikit-learn's validation, paths (.npy,
        .parquet) and data sources by one blockwise pass that checks every value is finite
        (with missing='em', that none is infinite; ``fitting`` sets ``n_missing_``); dask
        collections on their cluster, before scikit-learn's validation would compute them."""
        if on_dask(X):
            from gaussmix.data.dask_source import DaskSource

            dask_source = DaskSource.open(X, sample_weight, allow_nan=self.missing == "em")
            self._check_n_features_of(dask_source, reset)
            if reset and dask_source.columns is not None:
                self.feature_names_in_ = np.asarray(dask_source.columns, dtype=object)
            if fitting:
                self.n_missing_ = dask_source.n_missing  # counted on the cluster
            return dask_source
        allow_nan = self.missing == "em"
        if isinstance(X, (str, os.PathLike)) or _is_source(X):
            source = open_source(X) if isinstance(X, (str, os.PathLike)) else X
            self._check_n_features_of(source, reset)
            if not allow_nan:
                check_finite_blocks(source, self._chunk_rows(source.n_features))
        elif (located := device.namespace_of(X)) is not None:  # array API: rows stay on device
            source = device.device_rows(self, X, located, reset=reset, min_rows=min_rows)
        else:
            X_valid = validate_rows(
                self, X, reset=reset, ensure_min_samples=min_rows, allow_nan=allow_nan
            )
            source = ArraySource(X_valid)
        n_missing = 0
        if allow_nan and not isinstance(source, DeviceSource):  # device rows: validated finite
            rows = self._chunk_rows(source.n_features)
            n_missing = check_missing_blocks(source, rows, fitting=fitting)
        if fitting:
            self.n_missing_ = n_missing
        if source.n_samples < min_rows:
            raise ValueError(
                f"Found {source.n_samples} sample(s) while a minimum of {min_rows} is required "
                "by GaussianMixture"
            )
        if isinstance(source, DeviceSource) and sample_weight is not None:
            sample_weight = device.to_host(sample_weight)  # weights live on the host
        weights = check_sample_weight(sample_weight, source.n_samples)
        return source.with_weights(weights) if weights is not None else source

    def _check_n_features_of(self, source: DataSource, reset: bool) -> None:
        if reset:
            self.n_features_in_ = source.n_features
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif source.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {source.n_features} features, but GaussianMixture is expecting "
                f"{self.n_features_in_} features as input."
            )

    def _validate_inits(self, n_features: int) -> dict[str, Array | None]:
        K = self.n_components
        get_covariance(self.covariance_type).check_n_features(n_features)
        out: dict[str, Array | None] = {"weights": None, "means": None, "precisions": None}
        if self.weights_init is not None:
            w = device.to_host(self.weights_init)
            if w.shape != (K,):
                raise ValueError(f"weights_init has shape {w.shape}; expected ({K},)")
            if np.any(w < 0) or np.any(w > 1) or not np.isclose(w.sum(), 1.0, atol=1e-6):
                raise ValueError("weights_init must lie in [0, 1] and sum to 1; normalise them")
            out["weights"] = w
        if self.means_init is not None:
            m = device.to_host(self.means_init)
            if m.shape != (K, n_features):
                raise ValueError(f"means_init has shape {m.shape}; expected ({K}, {n_features})")
            out["means"] = m
        if self.precisions_init is not None:
            cov = get_covariance(self.covariance_type)
            P = device.to_host(self.precisions_init)
            out["precisions"] = check_precisions(P, cov, K, n_features)
        return out

    # ------------------------------------------------------------------ fitting
    def fit(
        self, X: Data, y: object = None, sample_weight: ArrayLike | None = None
    ) -> GaussianMixture:
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features); a ``numpy.memmap``; a path to a
            ``.npy`` or Parquet file (read block by block on every iteration, never whole); or
            a ``gaussmix.data`` source (e.g. ``ParquetSource.open(path, columns=[...])``); a
            ``dask.array.Array`` or ``dask.dataframe.DataFrame`` (fitted on its cluster, see
            ``gaussmix.data.dask_source``).
        y : ignored.
        sample_weight : array-like or dask array of shape (n_samples,), default=None
            Non-negative weights; an integer weight counts a row that many times.

        Returns
        -------
        self
        """
        with self._fitting(X, sample_weight) as (source, pool):
            # a final E-step: the log-likelihood of the final parameters (BIC without the data)
            if isinstance(source, DeviceSource):
                rows = self._chunk_rows(source.n_features)
                params = self._params()
                self.log_likelihood_ = device.log_likelihood(source, params, rows, self.dtype)
                return self
            self.log_likelihood_ = self._final_log_likelihood(source, pool)
        return self

    def _final_log_likelihood(self, source: DataSource, pool: Workers) -> float:
        """sum_n w_n log p(x_n) under the fitted parameters, a pass by ``pool``'s workers
        (only one number per share comes back), or the lean pass's where it serves the fit
        (``lean.final_pass``: the same number as ``_fit_validated``'s)."""
        params = self._params()
        final = final_pass(pool, params, self.dtype, self.n_missing_ > 0, self.reg_covar)
        if final is not None:
            return final[0]
        task = partial(
            _log_likelihood_of_share, params, self._chunk_rows(source.n_features), self.dtype
        )
        return float(sum(pool.run(task)))

    def partial_fit(
        self, X: Data, y: object = None, sample_weight: ArrayLike | None = None
    ) -> GaussianMixture:
        """One step of stepwise (online) EM on a mini-batch (``gaussmix.em.online``).

        The first call initialises from its batch (as ``fit`` does, ``n_init`` ignored) and
        takes one EM step on it; each later call t blends the batch's statistics into the
        running ones with eta_t = (t + 2)^(-learning_decay) and runs the M-step. ``fit``
        starts the running statistics afresh.

        Parameters
        ----------
        X : a batch, as for ``fit`` (arrays, files, sources, dask collections).
        y : ignored.
        sample_weight : array-like of shape (n_batch,), default=None

        Returns
        -------
        self
        """
        from gaussmix.em.online import online_step, step_size

        state = getattr(self, "_online", None)
        self._validate_params()
        source = self._source(X, sample_weight, reset=state is None, fitting=True)
        if self.n_missing_:
            raise ValueError("partial_fit takes complete rows only; this batch has NaN")
        rows = self._chunk_rows(source.n_features)
        if state is None:
            if source.n_samples < self.n_components:
                raise ValueError(
                    f"the first batch of partial_fit has {source.n_samples} row(s); it needs at "
                    f"least n_components = {self.n_components} to initialise from"
                )
            rng = check_random_state(self.random_state)
            # the prior is made from the first batch's moments and kept for the later steps
            self._online_prior = self._resolved_prior(source)
            params = self._initial(source, rng, prior=self._online_prior)
            running, t, history = None, 0, []
        else:
            running, t, history = state
            params = self._params()
        with workers(source, rows, self.n_threads, fork=False) as pool:
            step = online_step(
                pool,
                rows,
                params,
                running,
                step_size(t, self.learning_decay),
                reg_covar=self.reg_covar,
                dtype=self.dtype,
                prior=getattr(self, "_online_prior", None),
                rows_seen=(self.n_samples_fit_ if t > 0 else 0) + source.n_samples,
            )
        history = [*history, step.lower_bound]
        self._set_params(step.params)
        self._online = (step.running, t + 1, history)
        self.converged_ = False  # stepwise EM has no stopping rule: the data decide
        self.n_iter_ = t + 1
        self.lower_bound_ = step.lower_bound
        self.lower_bounds_ = list(history)
        self.reinitialized_: list[tuple[int, int]] = []
        self.n_reinitialized_ = 0
        seen: int = self.n_samples_fit_ if t > 0 else 0
        self.n_samples_fit_: int = seen + source.n_samples  # rows seen by the steps so far
        return self

    def fit_predict(
        self, X: Data, y: object = None, sample_weight: ArrayLike | None = None
    ) -> NDArray[np.intp]:
        """Fit, then return the component of each row (n_samples,): for a dask collection a
        lazy dask array with X's row chunks, as ``predict`` gives."""
        with self._fitting(X, sample_weight) as (source, pool):
            if on_dask(source):  # the labels stay on the cluster until asked for
                self.log_likelihood_ = self._final_log_likelihood(source, pool)
                lazy: NDArray[np.intp] = self._per_row_dask(source, _label)
                return lazy
            if isinstance(source, DeviceSource):
                self.log_likelihood_ = device.log_likelihood(
                    source, self._params(), self._chunk_rows(source.n_features), self.dtype
                )
                labels: NDArray[np.intp] = self._per_row(source, _label)
                return labels
            # the final E-step of ``fit``, keeping the labels: they agree with fit(X).predict(X)
            parts = self._map_blocks(pool, _label_and_log_density)
        self.log_likelihood_ = self._total(source, [part[1] for part in parts])
        return np.concatenate([part[0] for part in parts])

    def _total(self, source: DataSource, log_density: list[Array]) -> float:
        """sum_n w_n log p(x_n) from the per-block log-densities."""
        w = source.sample_weight
        if w is None:
            return float(sum(np.sum(part) for part in log_density))
        total, start = 0.0, 0
        for part in log_density:
            total += float(w[start : start + part.shape[0]] @ part)
            start += part.shape[0]
        return total

    @contextmanager
    def _fitting(
        self, X: Data, sample_weight: ArrayLike | None
    ) -> Iterator[tuple[DataSource, Workers]]:
        """Validate, run EM and set the fitted attributes; yields the validated source and the
        workers that ran EM, still there for a final pass."""
        self._validate_params()
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        source = self._source(X, sample_weight, reset=do_init, min_rows=2, fitting=True)
        if isinstance(source, ArraySource):  # constant or duplicated columns: a warning
            names = getattr(self, "feature_names_in_", None)
            warn_degenerate_columns(source.X, None if names is None else list(names), 5)
        with self._em(source, do_init) as pool:
            yield source, pool

    @contextmanager
    def _em(
        self, source: DataSource, do_init: bool, resume: lean.WholeFitRun | None = None
    ) -> Iterator[Workers]:
        """EM from each initialisation on validated rows (the parameters validated too), the
        fitted attributes set; yields the workers that ran it, still there for a final pass.
        ``resume``: the first initialisation's EM so far (``_whole_fit``), which goes on."""
        if source.n_samples < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = "
                f"{self.n_components}, n_samples = {source.n_samples}; use fewer components"
            )
        inits = self._validate_inits(source.n_features)
        rng = self._random_state(source, do_init)
        with workers(source, self._chunk_rows(source.n_features), self.n_threads) as pool:
            prior = self._resolved_prior(source, pool)
            best = self._fit_inits(source, inits, rng, do_init, pool, prior, resume)
            # the caller of fit: _adopt, here, contextlib, _fitting, contextlib, fit
            self._adopt(best, source, stacklevel=7)
            yield pool

    def _adopt(self, best: EMResult, source: DataSource, stacklevel: int) -> None:
        """The fitted attributes of the best initialisation's EM on ``source`` (warned about
        at ``stacklevel`` when it did not converge)."""
        if not best.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=stacklevel,
            )
        self._set_params(best.params, _rows_dtype(source))
        if isinstance(source, DeviceSource):  # the fitted attributes live where the rows do
            for name in _FITTED_ARRAYS:
                setattr(self, name, device.like(source.X, getattr(self, name)))
        self.converged_ = best.converged
        self.n_iter_ = best.n_iter
        self.lower_bound_ = best.lower_bound
        self.lower_bounds_ = list(best.lower_bounds)
        self.reinitialized_ = list(best.reinitialized)
        self.n_reinitialized_ = len(best.reinitialized)
        self.n_samples_fit_ = source.n_samples
        self.__dict__.pop("_online", None)  # partial_fit starts afresh after a fit

    def _fit_validated(
        self, source: DataSource, n_missing: int = 0, feature_names: NDArray[Any] | None = None
    ) -> float:
        """``fit`` of rows and parameters validated already, by ``select`` once for its whole
        grid (rows ``n_missing`` NaN and their ``feature_names``; the parameters, which differ
        between cells only in K, covariance type, start and seed, each checked there): the same
        fit without the per-fit checks, which cost as much as the EM of a small fit; where it
        can, the whole fit in one C call (``_whole_fit``).

        Returns
        -------
        float : the classification entropy -sum_n sum_k t_nk log t_nk of the final
            responsibilities t, from the final E-step that gives ``log_likelihood_``.
        """
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        if do_init:  # as ``_source`` sets them
            self.n_features_in_ = source.n_features
            self.__dict__.pop("feature_names_in_", None)
            if feature_names is not None:
                self.feature_names_in_ = feature_names.copy()
        self.n_missing_ = n_missing
        done = self._whole_fit(source, warm=not do_init)
        if isinstance(done, float):
            return done
        with self._em(source, do_init, done) as pool:
            params = self._fitted_params()
            final = final_pass(pool, params, self.dtype, n_missing > 0, self.reg_covar)
            if final is None:
                task = partial(
                    _log_likelihood_and_entropy_of_share,
                    params,
                    self._chunk_rows(source.n_features),
                    self.dtype,
                    n_missing > 0,
                )
                shares = pool.run(task)
                final = sum(share[0] for share in shares), sum(share[1] for share in shares)
        self.log_likelihood_ = float(final[0])
        return float(final[1])

    def _whole_fit(self, source: DataSource, warm: bool = False) -> float | lean.WholeFitRun | None:
        """``_fit_validated``'s fit in one C call (``lean.WholeFit``: the start's M-step, the
        iterations, the final E-step), where its path would run each of them in C one after
        another (one start, no prior, hook or verbose output, rows in this process that the
        lean pass serves, a model whose iterations a ``lean.WholeLoop`` runs): the fitted
        attributes set and the classification entropy returned, the same numbers to the bit
        (the Python between those calls cost a small fit several times their arithmetic).
        Where the path runs Python, it takes over: at the start (its M-step raises the named
        error of a degenerate covariance here, or else the fit is the path's from its start,
        the random state as it was: None), or at an iteration of run_em's (the EM so far, from
        which ``_fit_inits`` goes on). ``warm``: a warm start's fit, from the fitted parameters;
        with weights, means and precisions all given, from those.
        """
        n, n_features = source.n_samples, source.n_features
        if (self.n_init != 1 and not warm) or self.verbose or self.prior is not None:
            return None
        if n < self.n_components:
            return None
        if not 1 <= self.max_iter <= compiled.WholeFit.BATCH or _ITERATION_HOOK.get() is not None:
            return None
        inits = self._validate_inits(n_features)
        given = all(value is not None for value in inits.values())  # the start is the user's
        if not given and any(value is not None for value in inits.values()):
            return None
        threads = self.n_threads
        if threads != 1 and forked_shares(source, self._chunk_rows(n_features), threads):
            return None
        cov = get_covariance(self.covariance_type)
        whole = lean.whole_fit(
            source, cov, self.n_components, self.dtype, self.n_missing_ > 0, self.reg_covar
        )
        if whole is None:
            return None
        fit = partial(
            whole, max_iter=self.max_iter, tol=self.tol, reg_covar=self.reg_covar,
            relative=self.convergence == "relative", collapsed=COLLAPSED_WEIGHT,
        )  # fmt: skip
        if warm:  # from the fitted parameters, as _fit_inits starts a warm start's run_em
            return self._adopt_whole(fit(None, warm=(self._params(), self.lower_bound_)), source)
        if given:  # from the given parameters, as _fit_inits starts run_em from them
            start = self._initial(source, None, inits)
            return self._adopt_whole(fit(None, warm=(start, -np.inf)), source)
        rng = self._random_state(source, True)
        state = None if rng is None else rng.get_state()
        X, weights = self._init_rows(source, rng)  # no missing entries to fill for the start
        stats = start_statistics(X, weights, self.n_components, cov, self.init_params, rng)
        run = fit(stats)
        if run is None:
            # the path's start M-step on the same statistics: its named error, if it raises
            # one (a covariance not positive definite), is the fit's
            FitMStep(cov, stats.sx.shape, self.reg_covar).unchecked(stats)
            if rng is not None and state is not None:  # the start's draws are the path's again
                rng.set_state(state)
            return None
        return self._adopt_whole(run, source)

    def _adopt_whole(
        self, run: lean.WholeFitRun | None, source: DataSource
    ) -> float | lean.WholeFitRun | None:
        """A finished whole fit's attributes set, and its classification entropy; else the
        unfinished run, for run_em to go on from (after ``_handed_back_mstep``, which raises
        where that iteration's M-step does)."""
        if run is None:
            return None
        if not run.finished:
            self._handed_back_mstep(run)
            return run
        best = EMResult(run.params, run.lower_bounds, run.converged, len(run.lower_bounds))
        # the caller of _fit_validated: _adopt, here, _whole_fit, _fit_validated
        self._adopt(best, source, stacklevel=5)
        self.log_likelihood_ = run.log_likelihood
        return run.entropy

    def _handed_back_mstep(self, run: lean.WholeFitRun) -> None:
        """The M-step of the iteration a whole fit handed back, as run_em would take it (the
        same statistics, parameters and count of M-steps): where it raises the named error
        of a degenerate covariance, as the iterations handed back mostly do, the fit's error
        is raised here, without run_em's set-up; else run_em takes the iteration (again)."""
        stats = run.pending
        if stats is None or run.declined or not math.isfinite(stats.loglik / stats.n):
            # an iteration of the univariate loop's, numpy's M-step (C declined: it is slow
            # and seldom fails), or run_em's own error: run_em's alone
            return
        params = run.params
        step = FitMStep(params.covariance, params.means.shape, self.reg_covar)
        step.calls = len(run.lower_bounds)  # run_em's count: the iterations before this one
        step(stats, params.covariances)

    def _random_state(self, source: DataSource, do_init: bool) -> np.random.RandomState | None:
        """The random state the initialisations draw from; None where they draw nothing (a
        warm start; a start of ``DRAWS_NOTHING``, mclust's hierarchical one, on every row):
        making a RandomState takes about 0.1 ms, a tenth of a small fit of ``select``'s (so a
        seed reseeds this thread's kept one, ``init.random_state_for_starts``, which this
        fit's starts alone use)."""
        if not do_init or (
            self.init_params in DRAWS_NOTHING and self._init_sees_every_row(source.n_samples)
        ):
            return None
        return random_state_for_starts(self.random_state)

    def _init_sees_every_row(self, n_samples: int) -> bool:
        return self.init_sample_size is None or n_samples <= self.init_sample_size

    def _resolved_prior(
        self, source: DataSource, pool: Workers | None = None
    ) -> ResolvedPrior | None:
        """The conjugate prior for this model, K and data (two passes for the data's moments;
        on Dask by the source's workers, ``pool`` when given, so the rows stay there)."""
        if self.prior is None:
            return None
        rows = self._chunk_rows(source.n_features)
        if on_dask(source):
            from gaussmix.em.dask_workers import DaskWorkers

            moments = moments_on(DaskWorkers(source) if pool is None else pool, rows)
        else:
            moments = data_moments(lambda: source.chunks(rows))
        return resolve(self.prior, moments, self.n_components, get_covariance(self.covariance_type))

    def _init_rows(
        self, source: DataSource, rng: np.random.RandomState | None
    ) -> tuple[NDArray[np.floating], Array | None]:
        """The rows the initialisation sees: all of them, or a uniform sample of
        ``init_sample_size`` rows when there are more (and always for file sources)."""
        n = source.n_samples
        if self._init_sees_every_row(n):
            if isinstance(source, ArraySource):
                return source.X, source.sample_weight
            rows = np.arange(n)
        else:
            rows = np.sort(drawing(rng).choice(n, size=self.init_sample_size, replace=False))
        take_weights = getattr(source, "take_weights", None)  # a DaskSource: on its workers
        if take_weights is not None:
            return source.take(rows), take_weights(rows)
        w = source.sample_weight
        return source.take(rows), None if w is None else w[rows]

    def _init_rows_filled(
        self, source: DataSource, rng: np.random.RandomState | None
    ) -> tuple[NDArray[np.floating], Array | None]:
        """``_init_rows`` with missing entries filled by column means (a start for k-means)."""
        X, weights = self._init_rows(source, rng)
        return fill_for_init(X), weights

    def _initial(
        self,
        source: DataSource,
        rng: np.random.RandomState | None,
        inits: dict[str, Array | None] | None = None,
        prior: ResolvedPrior | None = None,
    ) -> Params:
        """Initial parameters from the rows ``_init_rows`` gives and the user's inits."""
        inits = self._validate_inits(source.n_features) if inits is None else inits
        return initial_params(
            lambda: self._init_rows_filled(source, rng),
            self.n_components,
            get_covariance(self.covariance_type),
            method=self.init_params,
            rng=rng,
            reg_covar=self.reg_covar,
            weights_init=inits["weights"],
            means_init=inits["means"],
            precisions_init=inits["precisions"],
            prior=prior,
        )

    def _fit_inits(
        self,
        source: DataSource,
        inits: dict[str, Array | None],
        rng: np.random.RandomState | None,
        do_init: bool,
        pool: Workers,
        prior: ResolvedPrior | None = None,
        resume: lean.WholeFitRun | None = None,
    ) -> EMResult:
        """Run EM from each initialisation; the result with the best final lower bound. The
        first goes on from ``resume`` (its parameters after its lower bounds) when given."""
        best: EMResult | None = None
        for init in range(self.n_init if do_init else 1):
            done: list[float] = []
            pending, declined = None, False
            if resume is not None and init == 0:
                params, done = resume.params, resume.lower_bounds
                pending, declined = resume.pending, resume.declined
            elif do_init:
                params = self._initial(source, rng, inits, prior)
            else:
                params = self._params()
            self._report(1, f"Initialization {init}")
            result = run_em(
                pool,
                self._chunk_rows(source.n_features),
                params,
                tol=self.tol,
                max_iter=self.max_iter,
                reg_covar=self.reg_covar,
                callback=self._progress(time.perf_counter()),
                dtype=self.dtype,
                lower_bound=-np.inf if do_init else self.lower_bound_,
                missing=self.n_missing_ > 0,
                prior=prior,
                relative=self.convergence == "relative",
                done=done,
                pending=pending,
                declined=declined,
            )
            self._report(1, f"Initialization converged: {result.converged}")
            if best is None or result.lower_bound > best.lower_bound:
                best = result
        if best is None:  # pragma: no cover - n_init >= 1 is validated
            raise RuntimeError("no initialisation ran")
        return best

    def _progress(self, start: float) -> Callable[[int, float], None] | None:
        """The per-iteration callback of ``run_em``: the progress hook and the verbose lines;
        None where neither listens (a fit of ``select``'s grid calls nothing per iteration)."""
        hook = _ITERATION_HOOK.get()
        if hook is None and self.verbose < 2:
            return None

        def callback(n_iter: int, lower_bound: float) -> None:
            if hook is not None:
                hook(n_iter, lower_bound)
            if self.verbose >= 2 and n_iter % self.verbose_interval == 0:
                elapsed = time.perf_counter() - start
                self._report(
                    2, f"  Iteration {n_iter}\t time lapse {elapsed:.5f}s\t ll {lower_bound:.5f}"
                )

        return callback

    def _report(self, level: int, message: str) -> None:
        if self.verbose >= level:
            sys.stderr.write(message + "\n")

    # ------------------------------------------------------------------ parameters
    def _set_params(self, params: Params, dtype: type[np.floating] = np.float64) -> None:
        """The fitted attributes, in the dtype of the rows fitted (as scikit-learn's)."""
        cov = params.covariance
        self.weights_ = params.weights.astype(dtype, copy=False)  # (see _FITTED_ARRAYS)
        self.means_ = params.means.astype(dtype, copy=False)
        self.covariances_ = params.covariances.astype(dtype, copy=False)
        self.precisions_cholesky_ = params.precisions_cholesky.astype(dtype, copy=False)
        self.precisions_ = cov.precisions(params.precisions_cholesky).astype(dtype, copy=False)

    def _params(self) -> Params:
        """The fitted parameters in float64, whatever the attributes' dtype (the engine's)."""
        check_is_fitted(self)
        return self._fitted_params()

    def _fitted_params(self) -> Params:
        """``_params`` where the model is known to be fitted (no check)."""
        return Params(
            weights=device.to_host(self.weights_),
            means=device.to_host(self.means_),
            precisions_cholesky=device.to_host(self.precisions_cholesky_),
            covariance=get_covariance(self.covariance_type),
            stored_covariances=device.to_host(self.covariances_),
        )

    def _n_parameters(self) -> int:
        """Number of free parameters: covariances, means and K - 1 weights."""
        return self._params().n_parameters()

    # ------------------------------------------------------------------ inference
    def _chunk_rows(self, n_features: int) -> int:
        if self.chunk_size:
            return int(self.chunk_size)
        cov, K = get_covariance(self.covariance_type), self.n_components
        if cov.componentwise_preferred(K, n_features):
            # one component's centred rows, and its weighted rows; the responsibilities
            per_row = 3 * n_features + 2 * K
        else:
            per_row = cov.n_quadratic(n_features) + n_features + 1 + K  # features, resp
        return default_chunk_size(per_row)

    def _map_blocks(self, pool: Workers, reduce: _BlockReduce) -> list[Any]:
        """``reduce`` of the (K, m) weighted log-probabilities of each block of rows, in order."""
        rows = self._chunk_rows(self.n_features_in_)
        task = partial(_reduce_blocks, self._params(), rows, self.dtype, reduce)
        return [part for share in pool.run(task) for part in share]

    def _per_row(self, X: Data, reduce: _BlockReduce) -> Any:
        """The per-row outputs of ``reduce`` over all blocks of the rows of X, concatenated
        (one pass: threads, as forking would not pay); real outputs in the dtype scikit-learn
        gives, that of the rows and the fitted attributes together."""
        check_is_fitted(self)
        if on_dask(X):
            return self._per_row_dask(X, reduce)
        source = X if isinstance(X, DeviceSource) else self._source(X, reset=False)
        rows = self._chunk_rows(source.n_features)
        if isinstance(source, DeviceSource):
            out = device.per_row(source, self._params(), rows, self.dtype, _ON_DEVICE[reduce])
            if reduce is _label:
                return out
            return source.xp.astype(out, source.X.dtype)
        with workers(source, rows, self.n_threads, fork=False) as pool:
            result = np.concatenate(self._map_blocks(pool, reduce))
        if result.dtype.kind != "f":
            return result
        return result.astype(np.result_type(_rows_dtype(source), self.means_.dtype), copy=False)

    def _per_row_dask(self, X: Data, reduce: _BlockReduce) -> Any:
        """``_per_row`` of a dask collection: a lazy dask array with X's row chunks."""
        from gaussmix.data.dask_source import DaskSource, map_rows

        source = DaskSource.lazy(X)
        self._check_n_features_of(source, reset=False)
        trailing, dtype = _PER_ROW_OUTPUT[reduce](self.n_components)
        rows = self._chunk_rows(self.n_features_in_)
        per_chunk = partial(_per_row_of_chunk, self._params(), rows, self.dtype, reduce)
        out = map_rows(source, per_chunk, trailing, dtype)
        if np.dtype(dtype).kind != "f":
            return out
        # float32 rows and attributes give float32 outputs, as for arrays (``_per_row``)
        return out.astype(np.result_type(_rows_dtype(source), self.means_.dtype), copy=False)

    def score_samples(self, X: Data) -> Array:
        """Log-density log p(x_n) of each row, shape (n_samples,) (for a dask collection a lazy
        dask array with its row chunks, as ``predict`` and ``predict_proba`` give)."""
        result: Array = self._per_row(X, _log_density)
        return result

    def score(self, X: Data, y: object = None) -> float:
        """Mean log-likelihood of the rows."""
        if on_dask(X):
            total, n = self._summed_log_density(X)
            return total / n
        return float(device.on_host(self.score_samples(X)).mean())

    def _summed_log_density(self, X: Data) -> tuple[Any, int]:
        """sum_n log p(x_n) and the number of rows; for a dask collection summed on the
        cluster (only the number comes here)."""
        if on_dask(X):
            lazy: Any = self.score_samples(X)
            return float(lazy.sum().compute()), int(lazy.shape[0])
        log_density = device.on_host(self.score_samples(X))
        return log_density.sum(), int(log_density.shape[0])

    def predict(self, X: Data) -> NDArray[np.intp]:
        """The most probable component of each row, shape (n_samples,)."""
        result: NDArray[np.intp] = self._per_row(X, _label)
        return result

    def predict_proba(self, X: Data) -> Array:
        """Responsibilities q_kn, shape (n_samples, n_components)."""
        result: Array = self._per_row(X, _responsibilities)
        return result

    def sample(self, n_samples: int = 1) -> tuple[Array, NDArray[np.intp]]:
        """Draw rows from the fitted mixture.

        Returns
        -------
        X : (n_samples, D) rows, grouped by component.  y : (n_samples,) their components.
        """
        params = self._params()
        if n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples}; it must be >= 1")
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, params.weights)
        X = params.covariance.sample(rng, params.means, params.covariances, counts)
        y = np.repeat(np.arange(self.n_components), counts)
        # in the namespace and on the device of the fitted attributes (numpy, for numpy fits)
        return device.like(self.means_, X), device.like(self.means_, y)

    def bic(self, X: Data) -> float:
        """Bayesian information criterion, -2 log L + p log n (lower is better)."""
        total, n = self._summed_log_density(X)
        return float(-2 * total + self._n_parameters() * np.log(n))

    def aic(self, X: Data) -> float:
        """Akaike information criterion, -2 log L + 2 p (lower is better)."""
        total, _ = self._summed_log_density(X)
        return float(-2 * total + 2 * self._n_parameters())

    # ------------------------------------------------------------------ persistence
    def save(
        self,
        path: str | Path,
        *,
        columns: list[str] | None = None,
        scaling: dict[str, list[float]] | None = None,
    ) -> Path:
        """Write the fitted model to ``path`` (.npz, no pickle), atomically.

        See ``gaussmix.io`` for the format; ``columns`` and ``scaling`` describe the data.
        """
        from gaussmix.io import save_model

        return save_model(self, path, columns=columns, scaling=scaling)

    @classmethod
    def load(cls, path: str | Path) -> GaussianMixture:
        """Read a model written by ``save``."""
        from gaussmix.io import load_model

        return load_model(path)
