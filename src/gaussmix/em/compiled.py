"""The C loops of the natural-parameter kernel (``_kernels.c``), when they were built.

``pip install`` builds them where a C compiler is found (``setup.py``, an optional extension);
they are plain C, loaded with ``ctypes`` (which lets go of the GIL while they run). Each
function here returns None or False when it cannot take its arguments (no library, another
dtype or layout), and the caller runs the numpy version in ``stats.py``, which is the
reference the tests hold these to. ``GAUSSMIX_COMPILED=0`` in the environment keeps to numpy.

Measured (benchmarks/README.md), the softmax in one sweep instead of seven numpy passes and the
features built from each tile of rows while it is in cache: W1 fits 16% faster, W2, W3 and W6
10-12%, W1 in float32 17%.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

Float = TypeVar("Float", bound=np.floating[Any])

_P, _N, _F = ctypes.c_void_p, ctypes.c_long, ctypes.c_double
_ROWS = 128  # the features' tile of rows (ROWS in _kernels.c)
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
    return lib


_LIB = _load()
AVAILABLE = _LIB is not None
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
