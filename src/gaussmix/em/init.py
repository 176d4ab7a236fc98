"""Initial parameters, drawn the way scikit-learn draws them.

Each method gives initial responsibilities (hard labels for k-means, k-means++ and
random_from_data; a random soft matrix for random; mclust's hierarchical agglomeration for hc,
``hc.py``), from which one M-step gives the parameters; user-given weights, means and precisions
replace the computed ones. With the same ``random_state`` the draws match scikit-learn's, so
both libraries start from the same point.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from numbers import Integral
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn import config_context  # type: ignore[attr-defined]  # (mypy misses the re-export)
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.utils import check_random_state

from gaussmix.em.covariance import Covariance
from gaussmix.em.hc import hc_start
from gaussmix.em.mstep import FitMStep, stats_from_resp
from gaussmix.em.params import Params
from gaussmix.em.prior import ResolvedPrior
from gaussmix.em.stats import SuffStats
from gaussmix.errors import GaussmixError

Array = NDArray[np.float64]

Data = NDArray[np.floating]
# a method's rows, K, random state (None for the methods of ``DRAWS_NOTHING``) and sample weights
InitMethod = Callable[
    [Data, int, "np.random.RandomState | None", "Array | None"], NDArray[np.number]
]


def drawing(rng: np.random.RandomState | None) -> np.random.RandomState:
    """The random state of a start that draws from it; None is a bug of the caller, which
    may leave it out only for the methods of ``DRAWS_NOTHING``."""
    if rng is None:
        raise RuntimeError("this initialisation draws random numbers but was given no state")
    return rng


# One kept RandomState per thread, reseeded for each fit that asks for a seed's state:
# ``RandomState(seed)`` takes about 0.1 ms (most of it the entropy an unseeded MT19937
# gathers before the seed replaces its state), ``seed(seed)`` about 2 us, to the same state.
_KEPT = threading.local()


def random_state_for_starts(seed: int | np.random.RandomState | None) -> np.random.RandomState:
    """scikit-learn's ``check_random_state(seed)``: the global state for None, a RandomState
    as it is, and for an integer a state seeded with it. That one is this thread's kept
    RandomState, reseeded: it is the caller's until the next call in this thread, so it
    is for the starts of one fit (which keep nothing of it: the k-means replay keeps a copy
    of its state), not for a state handed on."""
    if not isinstance(seed, Integral) or isinstance(seed, bool):
        return check_random_state(seed)
    kept: np.random.RandomState | None = getattr(_KEPT, "state", None)
    if kept is None:
        kept = _KEPT.state = np.random.RandomState(seed)
    else:
        kept.seed(seed)
    return kept


def _kmeans(
    X: Data, k: int, rng: np.random.RandomState | None, w: Array | None
) -> NDArray[np.number]:
    rng = drawing(rng)
    key = _kmeans_key(X, k, rng, w)
    if key is not None and key in _KMEANS:  # replayed: the labels, and the state k-means left
        labels, state = _KMEANS[key]
        rng.set_state(state)
        return labels.copy()
    # the rows and weights are checked already (finite, or filled for the start), and so are
    # the parameters: scikit-learn's own checks of both cost a fifth of a small k-means (0.2 ms)
    with config_context(assume_finite=True, skip_parameter_validation=True):
        labels = KMeans(n_clusters=k, n_init=1, random_state=rng).fit(X, sample_weight=w).labels_
    if key is not None:
        _KMEANS[key] = (labels, rng.get_state())
        if len(_KMEANS) > _KEEP_KMEANS:
            _KMEANS.popitem(last=False)
    return labels


# k-means labels by (rows, k, weights, random state in): every covariance model that starts from
# k-means with the same K and seed (the cells of a ``select`` grid) draws the same labels, so
# they are kept for small data and replayed with the random state k-means left behind
_KMEANS: OrderedDict[bytes, tuple[NDArray[np.number], Any]] = OrderedDict()
_KEEP_KMEANS = 32
_KMEANS_MAX_VALUES = 1_000_000


def _kmeans_key(X: Data, k: int, rng: np.random.RandomState, w: Array | None) -> bytes | None:
    if X.size > _KMEANS_MAX_VALUES:
        return None
    _, keys, pos, has_gauss, gauss = rng.get_state(legacy=True)
    return _digest(X, w, keys, np.asarray([k, pos, has_gauss, gauss]))


def _digest(X: Data, w: Array | None, *parts: Any) -> bytes:
    """A key of the rows X, their weights and ``parts`` (arrays of fixed dtype)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (np.ascontiguousarray(X), *parts):
        digest.update(np.asarray(part).tobytes())
    digest.update(repr((X.shape, X.dtype.str)).encode())
    if w is not None:
        digest.update(b"weights" + np.ascontiguousarray(w, dtype=np.float64).tobytes())
    return digest.digest()


def _kmeans_standardised(
    X: Data, k: int, rng: np.random.RandomState | None, w: Array | None
) -> NDArray[np.number]:
    # k-means on columns of unit variance: on raw columns one large-scale feature (diabetes'
    # insulin) decides every start alone
    X = np.asarray(X, dtype=np.float64)
    sd = X.std(axis=0)
    return _kmeans((X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0), k, rng, w)


def _kmeans_plusplus(
    X: Data, k: int, rng: np.random.RandomState | None, w: Array | None
) -> NDArray[np.number]:
    _, indices = kmeans_plusplus(X, k, random_state=drawing(rng), sample_weight=w)
    return _one_hot_rows(X.shape[0], k, indices)


def _random(
    X: Data, k: int, rng: np.random.RandomState | None, w: Array | None
) -> NDArray[np.number]:
    resp = drawing(rng).uniform(size=(X.shape[0], k))
    return resp / resp.sum(axis=1)[:, np.newaxis]


def _random_from_data(
    X: Data, k: int, rng: np.random.RandomState | None, w: Array | None
) -> NDArray[np.number]:
    indices = drawing(rng).choice(X.shape[0], size=k, replace=False)
    return _one_hot_rows(X.shape[0], k, indices)


def _hc(X: Data, k: int, rng: np.random.RandomState | None, w: Array | None) -> NDArray[np.number]:
    # deterministic, and the same tree for every K and model of a data set (hc.py); mclust's
    # agglomeration has no sample weights, so they enter only through the M-step. Inside
    # ``shared_starts`` the rows' cut at k is kept by their identity (hc.py finds its tree by
    # a digest of their bytes, a few microseconds a fit of a grid that cuts it at nine K)
    shared = _SHARED.get()
    if shared is None:
        return hc_start(X, k)
    entry = shared.get(("hc", id(X), k))
    if entry is None or entry[0] is not X:
        entry = shared[("hc", id(X), k)] = (X, None, hc_start(X, k))
    return entry[2].copy()


def quantile_classes(x: NDArray[np.floating], k: int) -> NDArray[np.intp]:
    """mclust's ``qclass(x, k)``: labels 0..k-1 of the values x (n,) by k classes between
    quantiles, mclust's start for one feature (it grows no tree there).

    The cut points are the quantiles at 0, 1/m, ..., 1 (R's type 7, linear between order
    statistics) for the smallest m >= k + 1 that gives k + 1 distinct ones; where there are
    more, the left end of each of the smallest gaps is dropped (ties: the first gap). A value
    goes to the class whose interval [q_i, q_{i+1}) holds it, the ends widened by
    sd(x) sqrt(eps) so that the extremes are in. The quantiles are R's arithmetic, operation
    by operation (``seq``'s i * (1 / m), then ``1 + (n - 1) p``, its floor and ceiling), so
    that a cut that R puts a rounding error above a value, and so the value below it, is the
    same cut here (rivers, k = 5: 505.00000000000028).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    n = x.size
    ordered = np.sort(x)
    # the k + 1 to a few tens of cut points in Python's floats: numpy's calls on arrays of ten
    # values cost more than their arithmetic (a tenth of a small fit)
    m, q = k, list[float]()
    while len(q) < k + 1:
        m += 1
        step = 1.0 / (m - 1)
        cuts = []
        for i in range(m):
            index = 1.0 + (n - 1) * (1.0 if i == m - 1 else i * step)
            lo, hi = math.floor(index), math.ceil(index)
            below, above = ordered.item(lo - 1), ordered.item(hi - 1)
            h = index - lo
            cuts.append((1.0 - h) * below + h * above if index > lo and above != below else below)
        q = sorted(set(cuts))
    if len(q) > k + 1:  # the left ends of the smallest gaps go (a stable sort: the first)
        gaps = [right - left for left, right in itertools.pairwise(q)]
        drop = set(sorted(range(len(gaps)), key=gaps.__getitem__)[: len(q) - k - 1])
        q = [value for i, value in enumerate(q) if i not in drop]
    # x in [q_i, q_{i+1}) with the ends widened: the class is the number of inner cuts <= x
    return np.asarray(np.searchsorted(np.array(q[1:-1]), x, side="right"), dtype=np.intp)


def _quantile(
    X: Data, k: int, rng: np.random.RandomState | None, w: Array | None
) -> NDArray[np.number]:
    # mclust's start for one feature; it draws nothing, and the weights enter the M-step only
    if X.shape[1] != 1:
        raise GaussmixError(
            f"init_params='quantile' is for one feature; the data have {X.shape[1]}: use 'hc'"
        )
    return quantile_classes(np.asarray(X)[:, 0], k)


def _one_hot_rows(n_rows: int, k: int, indices: NDArray[np.intp]) -> Array:
    resp = np.zeros((n_rows, k))
    resp[indices, np.arange(k)] = 1.0
    return resp


INIT_METHODS: dict[str, InitMethod] = {
    "kmeans": _kmeans,
    "kmeans_standardised": _kmeans_standardised,
    "k-means++": _kmeans_plusplus,
    "random": _random,
    "random_from_data": _random_from_data,
    "hc": _hc,
    "quantile": _quantile,
}
# the methods that draw no random numbers: a fit need not make a random state for them
DRAWS_NOTHING = frozenset({"hc", "quantile"})


def start_statistics(
    X: Data,
    sample_weight: Array | None,
    n_components: int,
    covariance: Covariance,
    method: str,
    rng: np.random.RandomState | None,
) -> SuffStats:
    """The statistics of the initial responsibilities that ``method`` (``INIT_METHODS``) draws
    for the rows X and their weights, from which the start's M-step gives its parameters;
    inside ``shared_starts`` those of labels taken already for these rows are replayed."""
    resp = INIT_METHODS[method](X, n_components, rng, sample_weight)
    shared = _SHARED.get()
    if shared is None or resp.ndim != 1:
        return stats_from_resp(X, resp, covariance, sample_weight, n_components=n_components)
    # the rows and weights by identity (the entry holds them: the grid's arrays), the labels
    # by value, and the code that takes their statistics: one per storage layout
    code = type(covariance).labelled_second_moment
    key = (id(X), id(sample_weight), n_components, resp.tobytes(), code)
    entry = shared.get(key)
    if entry is None or entry[0] is not X or entry[1] is not sample_weight:
        stats = stats_from_resp(X, resp, covariance, sample_weight, n_components=n_components)
        entry = shared[key] = (X, sample_weight, stats)
    return _copy_stats(entry[2])


def _copy_stats(stats: SuffStats) -> SuffStats:
    # field by field: ``dataclasses.replace`` over ``fields`` took 6 us, this 2; the test that
    # every array field is copied holds the list
    return SuffStats(
        n=stats.n,
        loglik=stats.loglik,
        nk=stats.nk.copy(),
        sx=stats.sx.copy(),
        sxx=stats.sxx.copy(),
        shift=stats.shift.copy(),
        worst_loglik=stats.worst_loglik,
        worst_x=stats.worst_x.copy(),
    )


# Within ``shared_starts``: start statistics by rows, weights, labels and layout code (and
# the hierarchical start's labels by rows and K)
_SHARED: ContextVar[dict[tuple[Any, ...], tuple[Any, Any, Any]] | None] = ContextVar(
    "gaussmix_shared_starts", default=None
)


@contextmanager
def shared_starts() -> Iterator[None]:
    """Within the block (the fits of one of ``select``'s grids in this process), the fits
    that start from the same labels of the same rows share their statistics in each storage
    layout (``start_statistics``): the fourteen models of one K start from the same
    hierarchical labels and take them in four layouts, some 15 us each at 31 x 3 rows, a
    copy of them 2 us; and the hierarchical start's labels of one K. The numbers are the same
    either way; the rows must not change within the block."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def initial_params(
    rows: Callable[[], tuple[Data, Array | None]],
    n_components: int,
    covariance: Covariance,
    *,
    method: str,
    rng: np.random.RandomState | None,
    reg_covar: float,
    weights_init: Array | None = None,
    means_init: Array | None = None,
    precisions_init: Array | None = None,
    prior: ResolvedPrior | None = None,
) -> Params:
    """Initial parameters for EM.

    Parameters
    ----------
    rows : returns the rows the initialisation sees, (n, D) (an array or memmap), and their
        (n,) sample weights or None; only called when the user did not give every parameter.
    n_components : K.  covariance : the covariance structure.
    method : one of ``INIT_METHODS``.  rng : the random state (consumed as scikit-learn does;
        None for a method of ``DRAWS_NOTHING``).
    reg_covar : added to the diagonal of the initial covariances.
    weights_init, means_init, precisions_init : user-given values that replace the computed ones.
    prior : a conjugate prior: the first M-step is its posterior mode too (as mclust's ``me``).
    """
    covariances: Array | None = None
    if weights_init is not None and means_init is not None and precisions_init is not None:
        weights, means = weights_init, means_init
    else:
        X, sample_weight = rows()
        stats = start_statistics(X, sample_weight, n_components, covariance, method, rng)
        # the M-step a fit's iterations run (in C where they do), on these statistics
        step = FitMStep(covariance, stats.sx.shape, reg_covar, prior).unchecked(stats)
        weights = step.weights if weights_init is None else weights_init
        means = step.means if means_init is None else means_init
        covariances, prec_chol = step.covariances, step.precisions_cholesky
    if precisions_init is not None:
        prec_chol = covariance.precisions_cholesky_from_precisions(precisions_init)
        covariances = None
    elif covariances is None:  # pragma: no cover - the first branch needs precisions_init
        raise ValueError("no precisions to start from")
    return Params(
        weights=np.asarray(weights, dtype=np.float64),
        means=np.asarray(means, dtype=np.float64),
        precisions_cholesky=prec_chol,
        covariance=covariance,
        stored_covariances=covariances,
    )
