"""The C loops of the natural-parameter kernel (``_kernels.c``), when they were built.

``pip install`` builds them where a C compiler is found (``setup.py``, an optional extension);
they are plain C, loaded with ``ctypes`` (which lets go of the GIL while they run). Each
function here returns None or False when it cannot take its arguments (no library, another
dtype or layout), and the caller runs the numpy version in ``stats.py``, which is the
reference the tests hold these to. ``GAUSSMIX_COMPILED=0`` in the environment keeps to numpy.

``estep_rows`` is the lean pass's whole E-step with its statistics (``lean.py``): a ``RowsPass``
holds one fit's rows and buffers with their addresses, so an iteration costs one foreign call
and a few copies (asking numpy for an array's address costs about as much as a small ufunc).
``univariate_em`` goes one step further for the one-feature models E and V: a ``UnivariateEM``
runs a whole fit's iterations, E-step and M-step, in one call (``lean.UnivariateLoop``), and
``whole_em`` the same for every other model whose M-step is one of the two below: a
``WholeEM`` calls ``estep_rows`` and that M-step in turn, iteration after iteration
(``lean.WholeLoop``). ``whole_fit`` is a whole fit of those models from its start's
statistics, the start's M-step, ``whole_em`` and the final E-step in one call (a
``WholeFit``, for ``GaussianMixture._fit_validated``: the fits of ``select``'s grid).

``constrained_mstep`` is the same for the M-step of the iterative and eigen models
(``Covariance.compiled_mstep``): a ``ConstrainedMstep`` per thread and shape holds its buffers.
``mstep_closed`` is the M-step of a fit of a closed-form model (VVV, EEE, VVI, VII, EII, EEI,
EVI; ``mstep.FitMStep``): a ``ClosedMStep`` per fit holds its buffers, one call an iteration.

``feature_sums_full`` replaces the natural kernel's second GEMM for full covariances on blocks
where few responsibilities count (``stats._feature_sums``; its reference is that GEMM).

Measured (benchmarks/README.md), the softmax in one sweep instead of seven numpy passes and the
features built from each tile of rows while it is in cache: W1 fits 16% faster, W2, W3 and W6
10-12%, W1 in float32 17%.
"""

from __future__ import annotations

import ctypes
import importlib.util
import math
import os
import threading
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

Float = TypeVar("Float", bound=np.floating[Any])

_P, _N, _F = ctypes.c_void_p, ctypes.c_long, ctypes.c_double
_ROWS = 128  # the features' tile of rows (ROWS in _kernels.c)
_SUM_ROWS = 256  # feature_sums_full's rows at a time (SUM_ROWS in _kernels.c)
_LEAN_ROWS = 128  # estep_rows's tile of rows (LEAN_ROWS in _kernels.c)
_KINDS = ("full", "diag", "spherical")


def _load() -> ctypes.CDLL | None:
    if os.environ.get("GAUSSMIX_COMPILED", "1") == "0":
        return None
    try:
        spec = importlib.util.find_spec("gaussmix.em._kernels")
    except (ImportError, ValueError):  # pragma: no cover - a broken installation
        return None
    if spec is None or not spec.origin or not os.path.exists(spec.origin):
        return None
    try:
        lib = ctypes.CDLL(spec.origin)
    except OSError:  # pragma: no cover - built for another machine
        return None
    for suffix in ("f64", "f32"):
        getattr(lib, f"softmax_{suffix}").argtypes = [_P, _N, _N, _P, _F]
        for kind in _KINDS:
            getattr(lib, f"features_{kind}_{suffix}").argtypes = [_P, _N, _N, _P, _P, _P]
        sums = getattr(lib, f"feature_sums_full_{suffix}")
        sums.argtypes = [_P, _N, _N, _P, _P, _N, _F, _N, _P, _P]
        sums.restype = _N
    lib.estep_rows.argtypes = [_N, _P, _P, _N, _N, _N, _P, _F, _P, _P]
    lib.estep_rows.restype = None
    lib.estep_rows_entropy.argtypes = lib.estep_rows.argtypes
    lib.estep_rows_entropy.restype = None
    lib.univariate_em.argtypes = [_N, _P, _P, _N, _N, _P, _F, _F, _F, _P, _F, _N, _N, _F, _F]
    lib.univariate_em.argtypes += [_P, _P, _P]
    lib.univariate_em.restype = _N
    lib.whole_em.argtypes = [_N, _N, _N, _P, _P, _N, _N, _N, _P, _F, _F, _F, _F, _N, _N, _F]
    lib.whole_em.argtypes += [_F, _F, _N, _P, _P, _P, _P, _N]
    lib.whole_em.restype = _N
    lib.whole_em_work.argtypes = [_N, _N, _N, _N, _N]
    lib.whole_em_work.restype = _N
    lib.whole_fit.argtypes = [_N, _N, _N, _P, _P, _N, _N, _N, _P, _P, _F, _F, _F, _F, _N, _N]
    lib.whole_fit.argtypes += [_F, _F, _N, _N, _F, _P, _P, _P, _P]
    lib.whole_fit.restype = _N
    lib.whole_fit_work.argtypes = [_N, _N, _N, _N, _N]
    lib.whole_fit_work.restype = _N
    lib.precision_factors.argtypes = [_P, _N, _N, _P, _P]
    lib.precision_factors.restype = _N
    lib.orientation_sweeps.argtypes = [_P, _P, _N, _N, _N, _F, _F, _N, _P, _P, _P, _P]
    lib.orientation_sweeps.restype = _N
    lib.vei_loop.argtypes = [_P, _P, _N, _N, _F, _F, _N, _P, _P, _P, _P]
    lib.vei_loop.restype = _N
    lib.symmetric_eigen.argtypes = [_P, _N, _N, _P, _P, _P]
    lib.symmetric_eigen.restype = _N
    lib.common_orientation.argtypes = [_P, _P, _N, _N, _P, _N, _N, _F, _N, _P, _P, _P, _P]
    lib.common_orientation.restype = _N
    lib.constrained_mstep.argtypes = [_N, _N, _N, _P, _N, _F, _F, _N, _P, _P]
    lib.constrained_mstep.restype = _N
    lib.constrained_mstep_work.argtypes = [_N, _N, _N]
    lib.constrained_mstep_work.restype = _N
    # hierarchical agglomeration
    lib.hc_merge_loop.argtypes = [_P, _P, _N, _N, _F, _P, _P, _P]
    lib.hc_merge_loop.restype = _N
    lib.mstep_closed.argtypes = [_N, _P, _N, _N, _F, _F, _P, _P]
    lib.mstep_closed.restype = _N
    return lib


_LIB = _load()
AVAILABLE = _LIB is not None


def loaded() -> bool:
    """Whether the C loops are there now (tests switch them off by setting ``_LIB``)."""
    return _LIB is not None


_SUFFIX = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}
# the lowest floor each C exp serves with 2^k normal (_kernels.c: exp_nonpositive, expf_...)
_LOWEST_FLOOR = {"f64": -700.0, "f32": -87.0}


def softmax(log_prob: NDArray[Float], floor: float) -> NDArray[Float] | None:
    """Turn the (K, n) log-probabilities into responsibilities in place and return the
    log-densities (n,), as ``stats.softmax_numpy``; None if the C loop cannot take them."""
    suffix = _SUFFIX.get(log_prob.dtype)
    if _LIB is None or suffix is None or log_prob.ndim != 2 or not log_prob.flags.c_contiguous:
        return None
    if not log_prob.flags.writeable or floor < _LOWEST_FLOOR[suffix]:
        return None
    n_components, n = log_prob.shape
    log_density: NDArray[Float] = np.empty(n, dtype=log_prob.dtype)
    getattr(_LIB, f"softmax_{suffix}")(
        log_prob.ctypes.data, n_components, n, log_density.ctypes.data, floor
    )
    return log_density


def features(
    kind: str | None,
    X: NDArray[np.floating],
    center: NDArray[np.float64],
    out: NDArray[np.floating],
) -> bool:
    """Write the natural kernel's features of the rows X (n, D) about ``center`` into ``out``
    (nq + D + 1, n), for the quadratic features of ``kind`` ("full", "diag", "spherical");
    False, writing nothing, if the C loop cannot take them."""
    suffix = _SUFFIX.get(out.dtype)
    if _LIB is None or kind not in _KINDS or suffix is None:
        return False
    if X.dtype != np.float64 or not (X.flags.c_contiguous and out.flags.c_contiguous):
        return False
    n, n_features = X.shape
    quadratic = {"full": n_features * (n_features + 1) // 2, "diag": n_features, "spherical": 1}
    if out.shape != (quadratic[kind] + n_features + 1, n) or center.shape != (n_features,):
        raise ValueError(f"features of {X.shape} rows cannot go into {out.shape}")
    center = np.ascontiguousarray(center, dtype=np.float64)
    scratch = np.empty(n_features * _ROWS)
    getattr(_LIB, f"features_{kind}_{suffix}")(
        X.ctypes.data, n, n_features, center.ctypes.data, out.ctypes.data, scratch.ctypes.data
    )
    return True


def feature_sums_full(
    X: NDArray[np.floating],
    center: NDArray[np.float64],
    resp: NDArray[np.floating],
    negligible: float,
    max_pairs: int,
) -> NDArray[np.float64] | None:
    """The natural kernel's sums T q' (nq + D + 1, K) for full covariances: the features of
    the rows X (n, D) about ``center`` (as ``features("full", ...)`` makes them) weighted by the
    responsibilities ``resp`` (K, n), summed over the (row, component) pairs whose
    responsibility is above ``negligible`` times the block's largest for that component
    (``_kernels.c``), in float64 for float64 or float32 responsibilities. None when the C loop
    cannot take them (rows not C-ordered float64) or more than ``max_pairs`` pairs are above
    it (then the GEMM runs). The result is the transposed view of a C-ordered (K, nq + D + 1)
    array."""
    suffix = _SUFFIX.get(resp.dtype)
    if _LIB is None or suffix is None or X.dtype != np.float64:
        return None
    if not (X.flags.c_contiguous and resp.flags.c_contiguous):
        return None
    (n, n_features), n_components = X.shape, resp.shape[0]
    if resp.shape != (n_components, n) or center.shape != (n_features,):
        raise ValueError(f"sums of {X.shape} rows cannot take {resp.shape} responsibilities")
    center = np.ascontiguousarray(center, dtype=np.float64)
    G = np.empty((n_components, n_features * (n_features + 1) // 2 + n_features + 1))
    # the thresholds, then up to _SUM_ROWS rows of one component: q, indices, z, q z
    scratch = np.empty(n_components + 2 * _SUM_ROWS + 2 * n_features * (_SUM_ROWS + 16))
    pairs = getattr(_LIB, f"feature_sums_full_{suffix}")(
        X.ctypes.data, n, n_features, center.ctypes.data, resp.ctypes.data, n_components,
        negligible, max_pairs, G.ctypes.data, scratch.ctypes.data,
    )  # fmt: skip
    return None if pairs < 0 else G.T


# Above this many features LAPACK's blocked factorisations beat precision_factors's loops
# (and the call overhead it saves is small beside them).
PRECISION_FACTORS_MAX_FEATURES = 16


def precision_factors(covariances: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """The upper triangular P_k = C_k^-T (C_k the lower Cholesky factor of covariance k) of a
    (K, D, D) or (D, D) stack, as ``covariance._Matrix.precisions_cholesky`` computes with
    LAPACK; None when the C loop cannot take them or some matrix is not positive definite (the
    caller's LAPACK path then says which)."""
    if _LIB is None or covariances.dtype != np.float64 or covariances.ndim not in (2, 3):
        return None
    d = covariances.shape[-1]
    if d > PRECISION_FACTORS_MAX_FEATURES or covariances.shape[-2] != d:
        return None
    S = np.ascontiguousarray(covariances)
    k = 1 if S.ndim == 2 else S.shape[0]
    P = np.empty_like(S)
    scratch = np.empty((d, d))
    failed = _LIB.precision_factors(S.ctypes.data, k, d, P.ctypes.data, scratch.ctypes.data)
    return P if failed < 0 else None


# estep_rows's code for each storage layout (Covariance.layout)
_LAYOUTS = {"full": 0, "tied": 1, "diag": 2, "spherical": 3}


def _packed(*shapes: tuple[int, ...]) -> tuple[NDArray[np.float64], list[NDArray[np.float64]]]:
    """One flat float64 buffer holding arrays of these shapes one after another (the layout a
    C function reads from or writes to one address), and a view of it in each shape."""
    # in Python's integers: numpy's prod and cumsum on a few tuples took some 15 us, a whole
    # small fit's iterations' worth, and every fit makes several of these
    sizes = [math.prod(shape) for shape in shapes]
    flat = np.empty(sum(sizes))
    views, start = [], 0
    for size, shape in zip(sizes, shapes, strict=True):
        views.append(flat[start : start + size].reshape(shape))
        start += size
    return flat, views


# A grid's fits (``select``: 126 cells of a few dozen rows) each made their C loops' buffers
# and asked for their addresses, some 25 us a fit: the buffers are kept per thread and shape
# (layout, K, D; model), as ``constrained_mstep``'s are, and rebound to each fit's rows
_ROWS_PASSES = threading.local()
_WHOLE_EMS = threading.local()
_UNIVARIATE_EMS = threading.local()


class _Bound:
    """The rows (and weights) a kept C call's arguments point to, by weak reference: the call
    keeps no rows alive, and rows that died are never taken for new rows at their address."""

    __slots__ = ("rows", "weights")

    def __init__(
        self, X: NDArray[np.float64] | None = None, weights: NDArray[np.float64] | None = None
    ) -> None:
        self.rows = None if X is None else weakref.ref(X)
        self.weights = None if weights is None else weakref.ref(weights)

    def holds(self, X: NDArray[np.float64], weights: NDArray[np.float64] | None) -> bool:
        if self.rows is None or self.rows() is not X:
            return False
        return (weights is None) if self.weights is None else self.weights() is weights


def _kept_calls(kept: threading.local) -> dict[Any, Any]:
    calls: dict[Any, Any] | None = getattr(kept, "calls", None)
    if calls is None:
        calls = kept.calls = {}
    return calls


Call = TypeVar("Call", bound="_RowsCall")


class _RowsCall:
    """A C call over rows, kept per thread and shape (``_kept``) and pointed at each fit's
    rows by ``bind``; a subclass sets ``lib`` and makes its arguments in ``_point``."""

    lib: ctypes.CDLL
    _bound: _Bound

    def bind(self: Call, X: NDArray[np.float64], weights: NDArray[np.float64] | None) -> Call:
        """This call over the rows X and weights (C-ordered float64, of its shape); the rows
        are the caller's, who keeps them alive while it calls (the C loop reads them by
        address). Binding the rows bound already asks for no address."""
        if not self._bound.holds(X, weights):
            self._point(X, None if weights is None else weights.ctypes.data)
            self._bound = _Bound(X, weights)
        return self

    def _point(self, X: NDArray[np.float64], weights: int | None) -> None:
        """Make the call's arguments for the rows X and the weights' address."""
        raise NotImplementedError


def _kept(
    kept: threading.local,
    key: tuple[Any, ...],
    make: Callable[[], Call],
    X: NDArray[np.float64],
    weights: NDArray[np.float64] | None,
) -> Call:
    """This thread's call of ``key`` (made by ``make`` if new, or for another library), bound
    to the rows X and weights."""
    calls = _kept_calls(kept)
    call = calls.get(key)
    if call is None or call.lib is not _LIB:
        call = calls[key] = make()
        return call
    return call.bind(X, weights)


class RowsPass(_RowsCall):
    """One fit's call of ``estep_rows``: the rows X (n, D) in float64 and their weights (n,)
    or None, with buffers for parameters whose covariances have the storage layout
    ``layout`` and the shape ``shape`` (``Covariance.shape``); calling it with the parameters
    returns the statistics as one flat array (``_kernels.c``: N_k, the sums about the means,
    the second moments in the layout, then the log-likelihood, the total weight, the worst
    log-density and its row). Build it with ``rows_pass``."""

    def __init__(
        self,
        lib: ctypes.CDLL,
        X: NDArray[np.float64],
        weights: NDArray[np.float64] | None,
        layout: str,
        means_shape: tuple[int, int],
        shape: tuple[int, ...],
    ) -> None:
        d, k = means_shape[1], means_shape[0]
        size = math.prod(shape)
        self.param, (self.means, self.mixing, self.precision) = _packed((k, d), (k,), shape)
        # and one more for estep_rows_entropy's entropy
        self.out = np.empty(k + k * d + size + 5)
        self.scratch = np.empty((2 * d + k + 5) * _LEAN_ROWS + k)
        self._call, self._entropy_call = lib.estep_rows, lib.estep_rows_entropy
        self._layout, self._param = _LAYOUTS[layout], self.param.ctypes.data
        self._buffers = (self.out.ctypes.data, self.scratch.ctypes.data)
        self.lib, self._bound = lib, _Bound()
        self.bind(X, weights)

    def _point(self, X: NDArray[np.float64], weights: int | None) -> None:
        n, d = X.shape
        k = self.mixing.shape[0]
        self._args = (self._layout, X.ctypes.data, weights, n, d, k, self._param)

    def __call__(
        self,
        means: NDArray[np.float64],
        mixing: NDArray[np.float64],
        prec_chol: NDArray[np.float64],
        floor: float,
    ) -> NDArray[np.float64]:
        """The statistics (a new flat array) at the means (K, D), weights (K,) and precision
        Cholesky factors (the layout's shape); ``floor`` as in ``softmax`` (>= -700)."""
        # slice assignment: the copy of np.copyto without its dispatch (a third of a
        # microsecond each, per iteration)
        self.means[...] = means
        self.mixing[...] = mixing
        self.precision[...] = prec_chol
        self._call(*self._args, floor, *self._buffers)
        return self.out[:-1].copy()

    def loglik_and_entropy(
        self,
        means: NDArray[np.float64],
        mixing: NDArray[np.float64],
        prec_chol: NDArray[np.float64],
        floor: float,
    ) -> tuple[float, float]:
        """The same pass's log-likelihood sum_n w_n log p(x_n) and classification entropy
        -sum_n sum_k t_nk log t_nk (rows unweighted) at these parameters."""
        self.means[...] = means
        self.mixing[...] = mixing
        self.precision[...] = prec_chol
        self._entropy_call(*self._args, floor, *self._buffers)
        return float(self.out[-5]), float(self.out[-1])


def rows_pass(
    X: NDArray[np.float64],
    weights: NDArray[np.float64] | None,
    layout: str,
    means_shape: tuple[int, int],
    shape: tuple[int, ...],
) -> RowsPass | None:
    """A ``RowsPass`` for these C-ordered float64 rows (and weights), or None without the C
    loops."""
    if _LIB is None or layout not in _LAYOUTS:
        return None
    for array in (X, weights):
        if array is not None and (array.dtype != np.float64 or not array.flags.c_contiguous):
            raise ValueError("estep_rows takes C-ordered float64 rows and weights")
    key = (layout, means_shape, shape)
    make = partial(RowsPass, _LIB, X, weights, layout, means_shape, shape)
    return _kept(_ROWS_PASSES, key, make, X, weights)


class UnivariateEM(_RowsCall):
    """One fit's call of ``univariate_em``: the whole EM loop of mclust's model E
    (``equal``) or V on the rows X (n, 1) in float64 with weights (n,) or None, for K
    components (``lean.py``), with a conjugate prior's terms ``prior`` (4,) or None
    (``_kernels.c``). Build it with ``univariate_em``."""

    # iterations per foreign call: the history buffer's length, however large max_iter is
    BATCH = 4096

    def __init__(
        self,
        lib: ctypes.CDLL,
        X: NDArray[np.float64],
        weights: NDArray[np.float64] | None,
        n_components: int,
        equal: bool,
        prior: NDArray[np.float64] | None,
    ) -> None:
        k = n_components
        self.prior = None if prior is None else np.array(prior, dtype=np.float64)
        self.param, views = _packed((k,), (k,), (k,), (k,))
        self.means, self.mixing, self.precision, self.variances = views
        self.batch = self.BATCH  # this buffer's, whatever BATCH becomes (tests set it)
        self.history = np.empty(self.batch)
        self.work = np.empty((k + 7) * _LEAN_ROWS + 10 * k + 4)
        self.result = np.empty(1)
        self._call, self._equal, self.lib = lib.univariate_em, int(equal), lib
        self._buffers = (self.history.ctypes.data, self.work.ctypes.data, self.result.ctypes.data)
        # the final E-step (``loglik_and_entropy``): the parameters' first 3 K values are
        # estep_rows's for the spherical layout at D = 1, so it reads them where they are
        self._entropy_call = lib.estep_rows_entropy
        self._entropy_out = np.empty(3 * k + 5)
        self._entropy_buffers = (self._entropy_out.ctypes.data, self.work.ctypes.data)
        self._bound = _Bound()
        self.bind(X, weights)

    def _point(self, X: NDArray[np.float64], weights: int | None) -> None:
        n, k = X.shape[0], self.mixing.shape[0]
        self._args = (self._equal, X.ctypes.data, weights, n, k, self.param.ctypes.data)
        self._entropy_args = (_LAYOUTS["spherical"], X.ctypes.data, weights, n, 1, k)

    def loglik_and_entropy(
        self,
        means: NDArray[np.float64],
        mixing: NDArray[np.float64],
        prec_chol: NDArray[np.float64],
        floor: float,
    ) -> tuple[float, float]:
        """``RowsPass.loglik_and_entropy`` on these rows, by the same C function (the work
        buffer holds its scratch: (K + 7) LEAN_ROWS + K doubles of it), at the means (K,),
        weights (K,) and precision factors (K,)."""
        np.copyto(self.means, means)
        np.copyto(self.mixing, mixing)
        np.copyto(self.precision, prec_chol)
        self._entropy_call(
            *self._entropy_args, self.param.ctypes.data, floor, *self._entropy_buffers
        )
        return float(self._entropy_out[-5]), float(self._entropy_out[-1])

    def __call__(
        self,
        means: NDArray[np.float64],
        mixing: NDArray[np.float64],
        prec_chol: NDArray[np.float64],
        *,
        reg_covar: float,
        nk_floor: float,
        collapsed: float,
        tol: float,
        relative: bool,
        max_iter: int,
        floor: float,
        previous: float,
    ) -> tuple[int, NDArray[np.float64]]:
        """Iterate from the means (K,), weights (K,) and precision factors (K,): up to
        ``max_iter`` iterations, ``previous`` the lower bound the first is compared with; the
        other arguments are ``loop.run_em``'s and ``mstep.py``'s (``nk_floor``), ``collapsed``
        its ``COLLAPSED_WEIGHT``, ``floor`` as in ``softmax``. Returns (status, lower bounds
        of the finished iterations): status 1 converged, 0 at max_iter, 2 when the next
        iteration is Python's (``_kernels.c``); the parameters after the last finished
        iteration are in ``means``, ``mixing``, ``precision`` and ``variances``."""
        np.copyto(self.means, means)
        np.copyto(self.mixing, mixing)
        np.copyto(self.precision, prec_chol)
        terms = None if self.prior is None else self.prior.ctypes.data
        settings = (reg_covar, nk_floor, collapsed, terms, tol, int(relative))
        parts = [np.empty(0)]
        status, left = 0, max_iter
        while left > 0:
            batch = min(left, self.batch)
            status = self._call(*self._args, *settings, batch, floor, previous, *self._buffers)
            steps = int(self.result[0])
            parts.append(self.history[:steps].copy())
            left -= steps
            if status != 0 or steps == 0:
                break
            previous = float(self.history[steps - 1])
        return status, np.concatenate(parts)


def univariate_em(
    X: NDArray[np.float64],
    weights: NDArray[np.float64] | None,
    n_components: int,
    equal: bool,
    prior: NDArray[np.float64] | None = None,
) -> UnivariateEM | None:
    """A ``UnivariateEM`` for these C-ordered float64 rows (n, 1) (and weights), or None
    without the C loops. ``prior``: a conjugate prior's shrinkage, mean, scale per component
    that shares it and the count it adds to each N_k, or None."""
    if _LIB is None:
        return None
    if X.ndim != 2 or X.shape[1] != 1:
        raise ValueError(f"univariate_em takes one column; the rows have shape {X.shape}")
    for array in (X, weights):
        if array is not None and (array.dtype != np.float64 or not array.flags.c_contiguous):
            raise ValueError("univariate_em takes C-ordered float64 rows and weights")
    if prior is not None:
        return UnivariateEM(_LIB, X, weights, n_components, equal, prior)
    # without a prior, this thread's loop of this K and model, rebound to these rows
    key = (n_components, equal, UnivariateEM.BATCH)
    make = partial(UnivariateEM, _LIB, X, weights, n_components, equal, None)
    return _kept(_UNIVARIATE_EMS, key, make, X, weights)


def _whole_codes(layout: str, model: str) -> tuple[int, int, int]:
    """whole_em's and whole_fit's codes for a layout and an M-step: the storage layout, the
    family (0 a closed form's ``mstep_closed``, 1 ``constrained_mstep``) and the model in it."""
    if model in _MSTEP_MODELS:
        return _LAYOUTS[layout], 0, _MSTEP_MODELS[model]
    return _LAYOUTS[layout], 1, MSTEP_KERNELS[model]


class WholeEM(_RowsCall):
    """One fit's call of ``whole_em``: the whole EM loop of a multivariate fit on the rows X
    (n, D) in float64 with weights (n,) or None, for parameters of K components whose
    covariances have the storage layout ``layout`` and shape ``shape`` (``Covariance``), with
    the M-step named ``model`` (``Covariance.compiled_mstep``: a key of ``_MSTEP_MODELS`` or of
    ``MSTEP_KERNELS``) (``lean.WholeLoop``, ``_kernels.c``). Build it with ``whole_em``.

    Its parameters, history, result and work space are one buffer, whose address is asked
    once (each ``ctypes.data`` costs about 2 us, and a small fit's iterations take tens)."""

    # iterations per foreign call: the history buffer's length, however large max_iter is
    BATCH = 1024

    def __init__(
        self,
        lib: ctypes.CDLL,
        X: NDArray[np.float64],
        weights: NDArray[np.float64] | None,
        layout: str,
        model: str,
        means_shape: tuple[int, int],
        shape: tuple[int, ...],
    ) -> None:
        d, k = means_shape[1], means_shape[0]
        kind, family, code = _whole_codes(layout, model)
        work = lib.whole_em_work(family, code, k, d, kind)
        # the parameters (whole_em's param), the history, the result, the work space
        self.batch = batch = self.BATCH  # this buffer's, whatever BATCH becomes (tests set it)
        layout_of = ((k, d), (k,), shape, shape, (batch,), (4,), (work,))
        self.flat, views = _packed(*layout_of)
        self.means, self.mixing, self.precision, self.covariances = views[:4]
        self.history, self.result = views[4], views[5]
        base = self.flat.ctypes.data
        history = base + 8 * sum(view.size for view in views[:4])
        result, space = history + 8 * batch, history + 8 * (batch + 4)
        self._call = lib.whole_em
        self._head = (kind, family, code)
        self._base, self.lib = base, lib
        self._buffers = (history, space, result)
        self._bound = _Bound()
        self.bind(X, weights)

    def _point(self, X: NDArray[np.float64], weights: int | None) -> None:
        n, d = X.shape
        k = self.mixing.shape[0]
        self._args = (*self._head, X.ctypes.data, weights, n, d, k, self._base)

    def __call__(
        self, settings: tuple[float, float, float, float, int], max_iter: int, floor: float,
        previous: float, inner: tuple[float, int], scale: int | None = None, calls: int = 0,
    ) -> int:  # fmt: skip
        """Iterate from the parameters in ``means``, ``mixing``, ``precision`` and
        ``covariances`` (set them, or leave them from the last call to go on): at most
        ``max_iter`` iterations (and one ``BATCH``), ``previous`` the lower bound the first is
        compared with; ``settings`` (reg_covar, nk_floor, collapsed, tol, relative) are
        ``loop.run_em``'s and ``mstep.py``'s, ``collapsed`` its ``COLLAPSED_WEIGHT``,
        ``floor`` as in ``softmax``, ``inner`` (tol, max_iter) constrained.py's. Returns the
        status: 1 converged, 0 at max_iter, 2 when the next iteration is Python's, 3 after an
        iteration whose M-step stopped at its cap (``capped``; then the fit goes on), 4 when
        the next iteration is Python's because the iterative M-step declined it. The
        lower bounds of the finished iterations are ``history[:result[0]]``, the parameters
        after the last one in the four buffers. ``scale``: inside ``mstep.singular_fails``
        the address of the data's variance per feature (D doubles), whose check of the
        M-steps ``FitMStep`` would check (``calls``: the fit's M-steps before this call)
        hands a numerically singular one to Python (status 2)."""
        batch = min(max_iter, self.batch)
        status = self._call(
            *self._args, *settings, batch, floor, previous, *inner, *self._buffers, scale, calls
        )
        return int(status)

    @property
    def capped(self) -> tuple[float, float] | None:
        """After a call: the last objective of the last iteration's M-step and the one before
        it when that M-step stopped at its cap, else None."""
        if self.result[1] == 0.0:
            return None
        return float(self.result[2]), float(self.result[3])


def whole_em(
    X: NDArray[np.float64],
    weights: NDArray[np.float64] | None,
    layout: str,
    model: str,
    matrices: bool,
    means_shape: tuple[int, int],
    shape: tuple[int, ...],
) -> WholeEM | None:
    """A ``WholeEM`` for these C-ordered float64 rows (and weights) and the model whose C
    M-step is named ``model`` (``Covariance.compiled_mstep``; its covariances whole matrices
    when ``matrices``), or None where an iteration's M-step would not be C's (no C loops, no
    C M-step, too many features: ``_mstep_in_c``)."""
    return _kept_whole(WholeEM, _WHOLE_EMS, X, weights, layout, model, matrices, means_shape, shape)


Whole = TypeVar("Whole", "WholeEM", "WholeFit")


def _kept_whole(
    cls: type[Whole], kept: threading.local, X: NDArray[np.float64],
    weights: NDArray[np.float64] | None, layout: str, model: str, matrices: bool,
    means_shape: tuple[int, int], shape: tuple[int, ...],
) -> Whole | None:  # fmt: skip
    """This thread's ``cls`` call (``WholeEM`` or ``WholeFit``) of the shape, bound to these
    rows and weights; None where an iteration's M-step would not be C's (``_mstep_in_c``)."""
    if _LIB is None or layout not in _LAYOUTS or not _mstep_in_c(model, means_shape[1], matrices):
        return None
    for array in (X, weights):
        if array is not None and (array.dtype != np.float64 or not array.flags.c_contiguous):
            raise ValueError(f"{cls.__name__} takes C-ordered float64 rows and weights")
    key = (layout, model, means_shape, shape, cls.BATCH)
    make = partial(cls, _LIB, X, weights, layout, model, means_shape, shape)
    return _kept(kept, key, make, X, weights)


class WholeFit(_RowsCall):
    """One fit's call of ``whole_fit`` (``_kernels.c``): a whole fit of the rows X (n, D) in
    float64 with weights (n,) or None, for K components of the storage layout ``layout`` and
    shape ``shape`` with the M-step named ``model``, from the statistics of its start (set
    ``nk``, ``sx``, ``sxx`` and ``shift``, then call it): the start's M-step, ``whole_em``'s
    iterations and the final E-step, the parameters left in ``means``, ``mixing``,
    ``precision`` and ``covariances``. Build it with ``whole_fit``."""

    # the most iterations (the history buffer's length)
    BATCH = WholeEM.BATCH

    def __init__(
        self,
        lib: ctypes.CDLL,
        X: NDArray[np.float64],
        weights: NDArray[np.float64] | None,
        layout: str,
        model: str,
        means_shape: tuple[int, int],
        shape: tuple[int, ...],
    ) -> None:
        k, d = means_shape
        kind, family, code = _whole_codes(layout, model)
        self.batch = self.BATCH
        # the history and the work space are this thread's scratch (``_scratch``), which every
        # shape's call shares: a grid's hundred-odd shapes each held 50-60 KB of their own
        self._scratch = self.batch + lib.whole_fit_work(family, code, k, d, kind)
        self._n_estep = k + k * d + math.prod(shape) + 4
        # the parameters (whole_em's param), the start's statistics, the result
        layout_of = ((k, d), (k,), shape, shape, (k,), (k, d), shape, (k, d), (4,))
        self.flat, views = _packed(*layout_of)
        self.means, self.mixing, self.precision, self.covariances = views[:4]
        self.nk, self.sx, self.sxx, self.shift = views[4:8]
        self.result = views[8]
        address = [self.flat.ctypes.data]
        for view in views[:-1]:
            address.append(address[-1] + 8 * view.size)
        self._param, self._stats, self._result = address[0], address[4], address[8]
        self._call, self._head, self.lib = lib.whole_fit, (kind, family, code), lib
        self._bound = _Bound()
        self.bind(X, weights)

    @property
    def history(self) -> NDArray[np.float64]:
        """After a call: the lower bounds of its iterations (``history[:result[0]]``)."""
        return _scratch(self._scratch)[0][: self.batch]

    @property
    def estep(self) -> NDArray[np.float64]:
        """After a call that handed an iteration back (status 6): whole_em's E-step output
        for it (the statistics, log-likelihood, total weight, worst log-density and its row),
        at the work space's start."""
        return _scratch(self._scratch)[0][self.batch : self.batch + self._n_estep]

    def _point(self, X: NDArray[np.float64], weights: int | None) -> None:
        n, d = X.shape
        k = self.mixing.shape[0]
        self._args = (*self._head, X.ctypes.data, weights, n, d, k, self._stats, self._param)

    def __call__(
        self, settings: tuple[float, float, float, float, int], max_iter: int, floor: float,
        inner: tuple[float, int, int], scale: int | None = None, warm: float | None = None,
    ) -> int:  # fmt: skip
        """The fit from the statistics set: ``settings`` (reg_covar, nk_floor, collapsed,
        tol, relative), ``max_iter`` (at most ``BATCH``) and ``floor`` as ``WholeEM``'s,
        ``inner`` (tol, warm cap, the start's cold cap) constrained.py's, ``scale`` as
        ``WholeEM``'s; ``warm``: a warm start's lower bound, the fit from the parameters set
        (not the statistics). Returns 1 converged, 0 at max_iter (the lower bounds in
        ``history[:result[0]]``, the final log-likelihood and entropy ``result[1:3]``), 5 when
        the start's M-step is the Python path's, 6 when an iteration is (the parameters it
        starts from and its E-step's output ``estep`` left)."""
        if max_iter > self.batch:
            raise ValueError(f"whole_fit runs at most {self.batch} iterations")
        head = self._args if warm is None else (*self._args[:-2], None, self._param)
        previous = -math.inf if warm is None else warm
        history = _scratch(self._scratch)[1]
        work = history + 8 * self.batch
        status = self._call(
            *head, *settings, max_iter, floor, *inner, previous, history, work, self._result, scale
        )
        return int(status)


_WHOLE_FITS = threading.local()
_SCRATCH = threading.local()


def _scratch(size: int) -> tuple[NDArray[np.float64], int]:
    """This thread's scratch of at least ``size`` doubles, and its address (grown, never
    shrunk; a call's results in it are read before the thread's next call)."""
    kept: tuple[NDArray[np.float64], int] | None = getattr(_SCRATCH, "kept", None)
    if kept is None or kept[0].size < size:
        buffer = np.empty(max(size, 2 * (0 if kept is None else kept[0].size)))
        kept = _SCRATCH.kept = (buffer, buffer.ctypes.data)
    return kept


def whole_fit(
    X: NDArray[np.float64],
    weights: NDArray[np.float64] | None,
    layout: str,
    model: str,
    matrices: bool,
    means_shape: tuple[int, int],
    shape: tuple[int, ...],
) -> WholeFit | None:
    """This thread's ``WholeFit`` of the shape, bound to these C-ordered float64 rows (and
    weights), or None where ``whole_em`` would be (``_mstep_in_c``)."""
    return _kept_whole(
        WholeFit, _WHOLE_FITS, X, weights, layout, model, matrices, means_shape, shape
    )


# Above this many features the inner loops' O(D^3) C arithmetic stops being small beside the
# numpy calls it saves (and the Jacobi polar factor is meant for small matrices).
INNER_LOOP_MAX_FEATURES = 16


def _inner_loop_library(n_features: int, *arrays: NDArray[np.floating[Any]]) -> ctypes.CDLL | None:
    if n_features > INNER_LOOP_MAX_FEATURES or any(a.dtype != np.float64 for a in arrays):
        return None
    return _LIB


def orientation_sweeps(
    W: NDArray[np.float64],
    nk: NDArray[np.float64],
    equal_volume: bool,
    orientation: NDArray[np.float64],
    variances: NDArray[np.float64],
    objective: float,
    tol: float,
    max_iter: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], int, float, float] | None:
    """``constrained.common_orientation``'s loop of rotation sweeps in C from the orientation
    (D, D) and the variances (K, D) whose objective is ``objective``, for the scatters W
    (K, D, D) and counts nk (K,); EVE's eigenvalue step when ``equal_volume``, else VVE's.
    Returns (orientation, variances, steps, objective, previous objective), steps 0 when the
    cap was reached; None when the C loop cannot take them. (``common_orientation`` runs this
    loop inside its one C call; this binding runs it alone, from a start of one's own.)"""
    n_components, n_features = variances.shape
    lib = _inner_loop_library(n_features, W, nk)
    if lib is None:
        return None
    W, nk = (np.ascontiguousarray(a) for a in (W, nk))
    D = np.array(orientation, dtype=np.float64, order="C")
    v = np.array(variances, dtype=np.float64, order="C")
    work = np.empty((n_components + 1) * n_features**2 + 3 * n_components * n_features)
    result = np.array([objective, objective])
    steps = lib.orientation_sweeps(
        W.ctypes.data, nk.ctypes.data, n_components, n_features, int(equal_volume), objective,
        tol, max_iter, D.ctypes.data, v.ctypes.data, work.ctypes.data, result.ctypes.data,
    )  # fmt: skip
    return D, v, int(steps), float(result[0]), float(result[1])


def vei_loop(
    S: NDArray[np.float64],
    nk: NDArray[np.float64],
    volume: NDArray[np.float64],
    objective: float,
    tol: float,
    max_iter: int,
) -> tuple[NDArray[np.float64], int, float, float] | None:
    """``constrained.vei``'s alternation in C from the volumes (K,) whose variances have the
    objective ``objective``, for the diagonal statistics S (K, D) and counts nk (K,). Returns
    (variances (K, D), steps, objective, previous objective), steps 0 when the cap was
    reached; None without the C loops."""
    n_components, n_features = S.shape
    lib = _inner_loop_library(n_features, S, nk, volume)
    if lib is None:
        return None
    S, nk = np.ascontiguousarray(S), np.ascontiguousarray(nk)
    lam = np.array(volume, dtype=np.float64, order="C")
    v = np.empty((n_components, n_features))
    shape = np.empty(n_features)
    result = np.array([objective, objective])
    steps = lib.vei_loop(
        S.ctypes.data, nk.ctypes.data, n_components, n_features, objective, tol, max_iter,
        lam.ctypes.data, v.ctypes.data, shape.ctypes.data, result.ctypes.data,
    )  # fmt: skip
    return v, int(steps), float(result[0]), float(result[1])


def eigh_descending(
    W: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """The eigenvalues (K, D), descending, and eigenvectors (K, D, D) of the symmetric stack W
    (K, D, D) by Jacobi rotations in C: ``np.linalg.eigh`` reversed, to rounding (vectors up to
    sign); None when the C loop cannot take them (then numpy's eigh runs)."""
    n_components, n_features = W.shape[0], W.shape[-1]
    lib = _inner_loop_library(n_features, W)
    if lib is None or W.ndim != 3:
        return None
    W = np.ascontiguousarray(W)
    values = np.empty((n_components, n_features))
    vectors = np.empty((n_components, n_features, n_features))
    scratch = np.empty((n_features, n_features))
    failed = lib.symmetric_eigen(
        W.ctypes.data, n_components, n_features, values.ctypes.data, vectors.ctypes.data,
        scratch.ctypes.data,
    )  # fmt: skip
    return (values, vectors) if failed < 0 else None


def common_orientation(
    W: NDArray[np.float64],
    nk: NDArray[np.float64],
    pooled: NDArray[np.float64],
    equal_volume: bool,
    tol: float,
    max_iter: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], int, float, float] | None:
    """``constrained.common_orientation`` in one C call: the starts from the eigenvectors of
    each matrix of ``pooled`` (C, D, D), then ``orientation_sweeps``'s loop, for the scatters W
    (K, D, D) and counts nk (K,). Returns (orientation, variances, code, objective, previous
    objective): code the inner steps done, 0 at the cap, -2 when the best start is degenerate
    (its objective not finite; the orientation and variances are that start's); None when the
    C loop cannot take them (then numpy's runs)."""
    n_components, n_features = W.shape[0], W.shape[-1]
    lib = _inner_loop_library(n_features, W, nk, pooled)
    if lib is None:
        return None
    W, nk, pooled = (np.ascontiguousarray(a) for a in (W, nk, pooled))
    D = np.empty((n_features, n_features))
    v = np.empty((n_components, n_features))
    size = (n_components + len(pooled)) * (n_features + 1) * n_features
    square = (n_components + 8) * n_features**2
    work = np.empty(size + square + 5 * n_components * n_features + 2 * n_components)
    result = np.empty(2)
    code = lib.common_orientation(
        W.ctypes.data, nk.ctypes.data, n_components, n_features, pooled.ctypes.data,
        len(pooled), int(equal_volume), tol, max_iter, D.ctypes.data, v.ctypes.data,
        work.ctypes.data, result.ctypes.data,
    )  # fmt: skip
    if code == -1:
        return None  # a scatter that is not finite: numpy's loop runs
    return D, v, int(code), float(result[0]), float(result[1])


# --- the constrained M-steps whole (``_kernels.c``: constrained_mstep) ---------------------
# Above this many features their M-step stays in constrained.py (its inner loops still in C
# up to INNER_LOOP_MAX_FEATURES); 0 keeps every one there (benchmarks compare the two).
WHOLE_MSTEP_MAX_FEATURES = 16
# constrained_mstep's code for each model (``Covariance.compiled_mstep``)
MSTEP_KERNELS = {"VEI": 0, "VEE": 1, "EVE": 2, "VVE": 3, "EEV": 4, "VEV": 5, "EVV": 6}

MstepResult = tuple[NDArray[np.float64], "NDArray[np.float64] | None", int, float, float]


class ConstrainedMstep:
    """The buffers of one model's ``constrained_mstep`` at one shape, with their addresses:
    calling it with the statistics copies them in, makes one foreign call and copies the
    covariances and their factors out (asking numpy for an address costs about as much as a
    small copy, so the addresses are asked once). Made by ``constrained_mstep``, one per
    thread and shape (fits in threads each have their own)."""

    def __init__(self, lib: ctypes.CDLL, code: int, shape: tuple[int, ...]) -> None:
        k, d = shape[0], shape[1]
        self.input, (self.nk, self.d, self.sxx, self.start) = _packed((k,), (k, d), shape, shape)
        self.out, (self.covariances, self.factors, self.result) = _packed(shape, shape, (3,))
        self.work = np.empty(lib.constrained_mstep_work(code, k, d))
        self._call = lib.constrained_mstep
        self._head = (code, k, d, self.input.ctypes.data)
        self._tail = (self.out.ctypes.data, self.work.ctypes.data)

    def __call__(
        self,
        sxx: NDArray[np.float64],
        nk: NDArray[np.float64],
        d: NDArray[np.float64],
        reg_covar: float,
        start: NDArray[np.float64] | None,
        tol: float,
        max_iter: int,
    ) -> MstepResult | None:
        self.nk[...] = nk  # slice assignment: RowsPass.__call__ says why
        self.d[...] = d
        self.sxx[...] = sxx
        if start is not None:
            self.start[...] = start
        code = self._call(*self._head, start is not None, reg_covar, tol, max_iter, *self._tail)
        if code < 0:
            return None
        objective, previous, made = self.result.tolist()
        factors = self.factors.copy() if made else None
        return self.covariances.copy(), factors, int(code), objective, previous


_MSTEPS = threading.local()


def constrained_mstep(
    model: str,
    sxx: NDArray[np.float64],
    nk: NDArray[np.float64],
    d: NDArray[np.float64],
    reg_covar: float,
    start: NDArray[np.float64] | None,
    tol: float,
    max_iter: int,
) -> MstepResult | None:
    """The M-step of ``model`` (one of ``MSTEP_KERNELS``) from the shifted statistics, as
    ``Covariance.covariances`` then ``precisions_cholesky`` compute it, in one C call:
    the second moment ``sxx`` (the layout: (K, D, D), VEI's (K, D)), the counts nk (K,), the
    means' moves d (K, D), reg_covar and the previous covariances ``start`` (the layout) or
    None. Returns (covariances, their precisions' Cholesky factors or None where one is not
    positive definite, the inner steps (0 at the cap), the last objective, the one before);
    None when the C loop cannot take them (then numpy's M-step runs)."""
    n_features = d.shape[1]
    if _LIB is None or n_features > WHOLE_MSTEP_MAX_FEATURES or model not in MSTEP_KERNELS:
        return None
    key = (model, sxx.shape)
    calls = _kept_calls(_MSTEPS)
    call = calls.get(key)
    if call is None:
        if sxx.dtype != np.float64 or d.shape[0] != sxx.shape[0]:
            return None
        call = calls[key] = ConstrainedMstep(_LIB, MSTEP_KERNELS[model], sxx.shape)
    return call(sxx, nk, d, reg_covar, start, tol, max_iter)


# hierarchical agglomeration (hc.py grows its trees on at most HC_MAX_ROWS rows: the (m, m)
# costs below take 8 m^2 bytes, as the numpy loop's do)


def hc_merge_loop(
    n: NDArray[np.float64], means: NDArray[np.float64], alpha: float
) -> NDArray[np.intp] | None:
    """``hc.hc_tree``'s merge loop in one C call: the (m - 1, 2) merged pairs of the m >= 2
    initial clusters of counts n (m,) and means (m, D), criterion constant ``alpha``; each cost
    to the bit the numpy loop's (``hc._merge_loop``), so the same merges. None when the C loop
    cannot take them (no library, other shapes, a cost that is NaN)."""
    if _LIB is None or means.ndim != 2 or n.shape != means.shape[:1] or n.shape[0] < 2:
        return None
    n = np.ascontiguousarray(n, dtype=np.float64)
    means = np.ascontiguousarray(means, dtype=np.float64)
    m, d = means.shape
    work = np.empty(m * m + m * (d * d + d + 4) + 3 * d * d + d)
    iwork = np.empty(2 * m, dtype=np.int64)
    merges = np.empty((m - 1, 2), dtype=np.int64)
    failed = _LIB.hc_merge_loop(
        n.ctypes.data, means.ctypes.data, m, d, alpha, work.ctypes.data,
        iwork.ctypes.data, merges.ctypes.data,
    )  # fmt: skip
    return None if failed else merges.astype(np.intp, copy=False)


# --- closed-form M-steps ------------------------------------------------------------------
# mstep_closed's code for each model with its whole M-step in C (Covariance.compiled_mstep)
_MSTEP_MODELS = {"VVV": 0, "EEE": 1, "VVI": 2, "VII": 3, "EII": 4, "EEI": 5, "EVI": 6}


class ClosedMStep:
    """One fit's call of ``mstep_closed`` for the model ``model`` (a key of
    ``_MSTEP_MODELS``): buffers for the statistics and the parameters of K components, D
    features and covariances of shape ``shape`` (``Covariance.shape``), with their addresses,
    so that an M-step costs four copies in, one foreign call and four copies out. Build it
    with ``closed_mstep``."""

    def __init__(
        self,
        lib: ctypes.CDLL,
        model: str,
        means_shape: tuple[int, int],
        shape: tuple[int, ...],
        reg_covar: float,
        nk_floor: float,
    ) -> None:
        k, d = means_shape
        self.lib = lib
        self.stats, (self.nk, self.sx, self.sxx, self.shift) = _packed((k,), (k, d), shape, (k, d))
        # the result's parts (_kernels.c): weights, N_k (unused here), means, covariances,
        # the precisions' Cholesky factors
        out, (weights, _, means, covariances, factors) = _packed((k,), (k,), (k, d), shape, shape)
        self.out = out
        self.parts = (weights, means, covariances, factors)
        self.scratch = np.empty(2 * k + k * d + d * d)
        self._call = lib.mstep_closed
        self._args = (
            _MSTEP_MODELS[model], self.stats.ctypes.data, k, d, reg_covar, nk_floor,
            out.ctypes.data, self.scratch.ctypes.data,
        )  # fmt: skip

    def __call__(
        self,
        nk: NDArray[np.float64],
        sx: NDArray[np.float64],
        sxx: NDArray[np.float64],
        shift: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], ...] | None:
        """From the statistics ``stats.SuffStats`` holds (N_k, the sums and second moments
        about the shifts, the shifts), new arrays: weights (K,), means (K, D), covariances and
        the precisions' Cholesky factors (both of ``shape``); None when some covariance is
        degenerate (the numpy M-step then says which)."""
        self.nk[...] = nk
        self.sx[...] = sx
        self.sxx[...] = sxx
        self.shift[...] = shift
        if self._call(*self._args) >= 0:
            return None
        return tuple(part.copy() for part in self.parts)


# Above this many features LAPACK's factorisations serve the matrix layouts better (as for
# precision_factors); the variances have no such limit.
CLOSED_MSTEP_MAX_FEATURES = PRECISION_FACTORS_MAX_FEATURES


def closed_mstep(
    model: str | None,
    means_shape: tuple[int, int],
    shape: tuple[int, ...],
    matrices: bool,
    reg_covar: float,
    nk_floor: float,
) -> ClosedMStep | None:
    """A ``ClosedMStep`` for the model named ``model`` (``Covariance.compiled_mstep``) whose
    covariances are whole matrices when ``matrices``; None without the C loops, for a model
    without a C M-step (None), or for matrices of more than ``CLOSED_MSTEP_MAX_FEATURES``
    features."""
    if _LIB is None or model not in _MSTEP_MODELS:
        return None
    if not _mstep_in_c(model, means_shape[1], matrices):
        return None
    # kept per thread and shape, as the calls over rows are (each call copies its statistics
    # in and its results out, so consecutive fits share one): making it cost 10 us, a fit's
    # start and its first M-step each asked for one
    key = (model, means_shape, shape, reg_covar, nk_floor)
    calls = _kept_calls(_CLOSED_MSTEPS)
    call: ClosedMStep | None = calls.get(key)
    if call is None or call.lib is not _LIB:
        call = calls[key] = ClosedMStep(_LIB, model, means_shape, shape, reg_covar, nk_floor)
    return call


_CLOSED_MSTEPS = threading.local()


def _mstep_in_c(model: str | None, n_features: int, matrices: bool) -> bool:
    """Whether the M-step named ``model`` (``Covariance.compiled_mstep``) runs in C for this
    many features: a closed form's (whose covariances are whole matrices when ``matrices``)
    up to ``CLOSED_MSTEP_MAX_FEATURES`` for matrices, an iterative or eigen model's up to
    ``WHOLE_MSTEP_MAX_FEATURES``."""
    if model in _MSTEP_MODELS:
        return not matrices or n_features <= CLOSED_MSTEP_MAX_FEATURES
    return model in MSTEP_KERNELS and n_features <= WHOLE_MSTEP_MAX_FEATURES
