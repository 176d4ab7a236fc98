"""The kernel for arrays of other libraries (PyTorch, CuPy, array_api_strict), on their device.

scikit-learn's route to GPUs is the array API: under ``sklearn.config_context(
array_api_dispatch=True)`` an estimator computes with the namespace of its input, on the device
the input lives on. Here only the per-row work goes there: ``chunk_stats_device`` runs the E-step
and the sums of a block of device rows in that namespace, and its statistics (K x D^2 numbers)
come back to the host as a ``SuffStats``, folded by the same ``merge`` and handed to the same
M-step, re-seeding and convergence test as every other block; the new parameters go back to the
device once per pass. The initialisation runs on the host, on the rows it samples. The arithmetic
is the componentwise kernel's (rows centred at each component's mean: exact however far apart
the components lie), in ``dtype`` (float64 unless the estimator's ``dtype`` says float32).

The E-step depends on the covariance model only through the layout its parameters are stored
in (``Covariance.layout`` in the registry: mclust's models share the four of scikit-learn's
types, differing in their M-step alone), so the two per-layout facts below serve every model.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gaussmix.em.covariance import LOG_2PI
from gaussmix.em.params import Params
from gaussmix.em.stats import DType, SuffStats

Array = NDArray[np.float64]

# Per storage layout, the rows Y_k with ||y_kn||^2 the Mahalanobis distance, from the rows
# centred at mu_k (n, D) and the precision Cholesky factors in that layout (P P' = precision)
_SCALED = {
    "full": lambda Z, P, k: Z @ P[k, :, :],
    "tied": lambda Z, P, k: Z @ P,
    "diag": lambda Z, P, k: Z * P[k, :],
    "spherical": lambda Z, P, k: Z * P[k],
}


def _second_moment(layout: str, xp: Any, parts: list[tuple[Any, Any]]) -> Any:
    """sum_n q_kn z_kn z_kn' in the storage layout from each component's (q_k (n,), Z_k (n, D))."""
    if layout == "diag":
        return xp.stack([q @ (Z * Z) for q, Z in parts])
    if layout == "spherical":
        return xp.stack([q @ xp.sum(Z * Z, axis=1) for q, Z in parts])
    full = [(Z * q[:, None]).T @ Z for q, Z in parts]
    return sum(full[1:], full[0]) if layout == "tied" else xp.stack(full)


def namespace_of(X: object) -> tuple[Any, Any] | None:
    """(namespace, device) of X when scikit-learn's array API dispatch is on and X is an array of
    another library than numpy; None otherwise (numpy, lists, data frames, dispatch off)."""
    from sklearn._config import get_config  # (sklearn re-exports it lazily; mypy cannot see)

    if isinstance(X, np.ndarray) or not get_config()["array_api_dispatch"]:
        return None
    return _located(X)


def _located(X: object) -> tuple[Any, Any] | None:
    """(namespace, device) of an array of another library than numpy, whatever the dispatch
    setting (scikit-learn's is per thread, and the kernel runs in worker threads); else None."""
    if isinstance(X, np.ndarray) or not hasattr(X, "shape") or not hasattr(X, "dtype"):
        return None
    from sklearn.externals import array_api_compat

    try:
        xp = array_api_compat.array_namespace(X)
    except TypeError:  # not an array of a library the array API knows
        return None
    if array_api_compat.is_numpy_namespace(xp):
        return None
    return xp, array_api_compat.device(X)


def to_host(a: Any) -> Array:
    """A float64 numpy copy of an array of any library (numpy arrays and lists as they are)."""
    if a is None or isinstance(a, (np.ndarray, list, tuple, float, int)):
        return np.asarray(a, dtype=np.float64)
    from sklearn.utils._array_api import move_to

    return np.asarray(move_to(a, xp=np, device="cpu"), dtype=np.float64)


def on_host(a: Any) -> NDArray[np.floating]:
    """A numpy array as it is; an array of another library copied to the host (float64)."""
    return a if isinstance(a, np.ndarray) else to_host(a)


def like(reference: Any, a: NDArray[Any], dtype: Any = None) -> Any:
    """``a`` in the namespace and on the device of ``reference`` (as it is for numpy)."""
    located = _located(reference)
    if located is None:
        return a
    xp, device = located
    out = xp.asarray(a, device=device)
    return out if dtype is None else xp.astype(out, dtype)


@dataclass(frozen=True)
class DeviceSource:
    """Rows of an array-API library, on their device: a data source whose blocks stay there.

    ``dtype`` is the numpy dtype matching the rows' (float32 or float64); weights are numpy,
    on the host, moved to the device block by block.
    """

    X: Any
    xp: Any
    device: Any
    dtype: np.dtype
    sample_weight: Array | None = None

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def chunks(self, rows: int) -> Iterator[tuple[Any, Array | None]]:
        w = self.sample_weight
        for start in range(0, self.n_samples, rows):
            stop = min(start + rows, self.n_samples)
            yield self.X[start:stop, ...], None if w is None else w[start:stop]

    def take(self, indices: NDArray[np.intp]) -> Array:
        """The rows at ``indices``, copied to the host in float64 (for the initialisation)."""
        index = self.xp.asarray(np.asarray(indices, dtype=np.int64), device=self.device)
        return to_host(self.xp.take(self.X, index, axis=0))

    def with_weights(self, sample_weight: Array | None) -> DeviceSource:
        return replace(self, sample_weight=sample_weight)


def device_rows(
    estimator: Any, X: Any, located: tuple[Any, Any], *, reset: bool, min_rows: int
) -> DeviceSource:
    """X validated by scikit-learn (2-D, finite, feature count) and kept on its device; integer
    rows become float64."""
    from sklearn.utils.validation import validate_data

    xp, device = located
    X = validate_data(
        estimator, X, reset=reset, dtype=None, ensure_min_samples=min_rows, ensure_2d=True
    )
    if not xp.isdtype(X.dtype, "real floating"):
        X = xp.astype(X, xp.float64)
    dtype = np.dtype(np.float32) if X.dtype == xp.float32 else np.dtype(np.float64)
    return DeviceSource(X, xp, device, dtype)


@dataclass(frozen=True)
class _OnDevice:
    """The parameters the kernel reads, in the compute dtype on one device."""

    means: Any
    prec_chol: Any
    offset: Any  # (K,) log pi_k + log det P_k - D/2 log 2 pi
    dtype: Any


# parameters moved to a device once per parameter set (one pass), not once per block
_MOVED: weakref.WeakKeyDictionary[Params, dict[tuple[str, str, str], _OnDevice]] = (
    weakref.WeakKeyDictionary()
)


def _on_device(params: Params, xp: Any, device: Any, dtype: DType) -> _OnDevice:
    key = (xp.__name__, str(device), np.dtype(dtype).name)
    moved = _MOVED.setdefault(params, {})
    if key not in moved:
        target = getattr(xp, np.dtype(dtype).name)
        k, d = params.n_components, params.n_features
        log_det = params.covariance.log_det_precision_cholesky(params.precisions_cholesky, k, d)
        with np.errstate(divide="ignore"):  # a zero weight: log pi_k = -inf, as it should
            offset = np.log(params.weights) + log_det - 0.5 * d * LOG_2PI

        def put(a: Array) -> Any:
            return xp.asarray(np.ascontiguousarray(a), dtype=target, device=device)

        moved[key] = _OnDevice(
            put(params.means), put(params.precisions_cholesky), put(offset), target
        )
    return moved[key]


def _centred(X: Any, on: _OnDevice, xp: Any) -> list[Any]:
    X = xp.astype(X, on.dtype, copy=False)
    return [X - on.means[k, :] for k in range(on.means.shape[0])]


def log_prob(X: Any, params: Params, dtype: DType = np.float64) -> Any:
    """log pi_k + log N(x_n | mu_k, Sigma_k) for a block of device rows, shape (n, K)."""
    xp, _, on, Zs = _prepare(X, params, dtype)
    return _log_prob(params, on, Zs, xp)


def _prepare(X: Any, params: Params, dtype: DType) -> tuple[Any, Any, _OnDevice, list[Any]]:
    located = _located(X)
    if located is None:  # pragma: no cover - callers dispatch on device rows only
        raise TypeError("the device kernel takes rows of an array-API library")
    xp, device = located
    on = _on_device(params, xp, device, dtype)
    return xp, device, on, _centred(X, on, xp)


def _log_prob(params: Params, on: _OnDevice, Zs: list[Any], xp: Any) -> Any:
    scaled = _SCALED[params.covariance.layout]
    scaled_rows = (scaled(Z, on.prec_chol, k) for k, Z in enumerate(Zs))
    distance = [xp.sum(Y * Y, axis=1) for Y in scaled_rows]
    return on.offset - 0.5 * xp.stack(distance, axis=1)


def softmax(log_prob: Any, xp: Any) -> tuple[Any, Any]:
    """Responsibilities (n, K) and log p(x_n) (n,), shifted by each row's maximum."""
    top = xp.max(log_prob, axis=1, keepdims=True)
    terms = xp.exp(log_prob - top)
    total = xp.sum(terms, axis=1, keepdims=True)
    return terms / total, (xp.log(total) + top)[:, 0]


def chunk_stats_device(
    X: Any, params: Params, weights: Array | None = None, dtype: DType = np.float64
) -> SuffStats:
    """``chunk_stats`` (same contract, same statistics) for a block of device rows."""
    xp, device, on, Zs = _prepare(X, params, dtype)
    resp, log_norm = softmax(_log_prob(params, on, Zs, xp), xp)
    if weights is None:
        loglik, count, candidates = float(xp.sum(log_norm)), float(X.shape[0]), log_norm
    else:
        w = xp.asarray(weights, dtype=on.dtype, device=device)
        resp = resp * w[:, None]
        loglik, count = float(xp.sum(w * log_norm)), float(weights.sum())
        candidates = xp.where(w > 0, log_norm, xp.asarray(np.inf, dtype=on.dtype, device=device))
    worst = int(xp.argmin(candidates))
    parts = [(resp[:, k], Z) for k, Z in enumerate(Zs)]
    return SuffStats(
        n=count,
        loglik=loglik,
        nk=to_host(xp.sum(resp, axis=0)),
        sx=to_host(xp.stack([q @ Z for q, Z in parts])),
        sxx=to_host(_second_moment(params.covariance.layout, xp, parts)),
        shift=params.means,
        worst_loglik=float(candidates[worst]),
        worst_x=to_host(X[worst, :]),
    )


def per_row(source: DeviceSource, params: Params, rows: int, dtype: DType, what: str) -> Any:
    """``what`` of every row, on the rows' device: "log_density" (n,), "label" (n,) or
    "responsibilities" (n, K), in the compute dtype."""
    xp = source.xp
    parts = []
    for X, _ in source.chunks(rows):
        log_p = log_prob(X, params, dtype)
        if what == "label":
            parts.append(xp.argmax(log_p, axis=1))
            continue
        resp, log_density = softmax(log_p, xp)
        parts.append(log_density if what == "log_density" else resp)
    return xp.concat(parts, axis=0)


def log_likelihood(source: DeviceSource, params: Params, rows: int, dtype: DType) -> float:
    """sum_n w_n log p(x_n) over the device rows."""
    total = 0.0
    for X, w in source.chunks(rows):
        _, log_density = softmax(log_prob(X, params, dtype), source.xp)
        total += float(source.xp.sum(log_density)) if w is None else float(w @ to_host(log_density))
    return total
