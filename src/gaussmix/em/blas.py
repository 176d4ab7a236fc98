"""Triangular BLAS that releases the GIL, so two threads run it on two cores.

NumPy's ``matmul`` releases the GIL but only does GEMM (plus SYRK for ``a.T @ a``); scipy's
Python BLAS wrappers (``scipy.linalg.blas.dtrmm``, ``dsyrk``) hold it for the whole call. The
componentwise kernel's two products are triangular (``rows @ P`` with P upper triangular) and
symmetric (``B' B``), half a GEMM each, so this module calls the same Fortran BLAS that scipy
exports to Cython (``scipy.linalg.cython_blas``, a stable public interface) through ``ctypes``,
which releases the GIL for the length of every foreign call. Both functions work in place on
C-ordered float64 arrays: a C-ordered (n, D) array is the Fortran-ordered (D, n) matrix of its
transpose, so no copy is made.

If that interface cannot be reached (a SciPy built without it), both fall back to scipy's
Python wrappers: the same numbers, on one core. ``GIL_FREE`` says which is in use.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.linalg.blas import dsyrk, dtrmm

Array = NDArray[np.float64]

_int = ctypes.POINTER(ctypes.c_int)
_double = ctypes.POINTER(ctypes.c_double)
_char = ctypes.c_char_p
_ptr = ctypes.c_void_p


def _cython_blas(name: str, *argtypes: Any) -> Callable[..., None]:
    """The Fortran BLAS routine ``name`` from scipy.linalg.cython_blas, as a ctypes function."""
    from scipy.linalg import cython_blas

    capsule = cython_blas.__pyx_capi__[name]
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    address = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    return ctypes.CFUNCTYPE(None, *argtypes)(address)


try:
    # dtrmm(side, uplo, transa, diag, m, n, alpha, a, lda, b, ldb)
    _DTRMM = _cython_blas("dtrmm", *[_char] * 4, _int, _int, _double, _ptr, _int, _ptr, _int)
    # dsyrk(uplo, trans, n, k, alpha, a, lda, beta, c, ldc)
    _DSYRK = _cython_blas(
        "dsyrk", _char, _char, _int, _int, _double, _ptr, _int, _double, _ptr, _int
    )
    GIL_FREE = True
except (ImportError, AttributeError, KeyError, ValueError, OSError):  # pragma: no cover
    GIL_FREE = False


def _call(routine: Callable[..., None], *args: bytes | int | float | Array) -> None:
    """Call a Fortran routine, every argument by reference: flags as bytes, arrays by their
    data pointer, Python ints as C ints and floats as C doubles."""
    refs: list[Any] = []
    for arg in args:
        if isinstance(arg, bytes):
            refs.append(arg)
        elif isinstance(arg, np.ndarray):
            refs.append(arg.ctypes.data)
        elif isinstance(arg, int):
            refs.append(ctypes.byref(ctypes.c_int(arg)))
        else:
            refs.append(ctypes.byref(ctypes.c_double(arg)))
    routine(*refs)


def _check(a: Array, name: str) -> None:
    if a.dtype != np.float64 or not a.flags.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous float64 array")


def times_upper_in_place(rows: Array, upper: Array, gil_free: bool = GIL_FREE) -> Array:
    """rows := rows @ upper for C-ordered rows (n, D) and an upper triangular (D, D) ``upper``
    (only its upper triangle is read): TRMM, D^2/2 multiply-adds per row. Returns ``rows``."""
    _check(rows, "rows")
    upper = np.ascontiguousarray(upper, dtype=np.float64)
    n_rows, n_features = rows.shape
    if n_rows == 0:
        return rows
    if not gil_free:
        rows[...] = dtrmm(1.0, upper.T, rows.T, lower=1).T
        return rows
    # Fortran sees rows' (D, n) and upper' (lower triangular): rows' := upper' rows'
    _call(
        _DTRMM, b"L", b"L", b"N", b"N", n_features, n_rows, 1.0, upper, n_features, rows, n_features
    )
    return rows


def gram(rows: Array, gil_free: bool = GIL_FREE) -> Array:
    """rows' rows (m, m), symmetric, for C-ordered rows (n, m): SYRK, half a GEMM."""
    _check(rows, "rows")
    n_rows, width = rows.shape
    if not gil_free:
        upper = np.triu(dsyrk(1.0, rows.T))
    else:
        # Fortran sees rows' (m, n); its lower triangle of rows' rows is our upper one
        upper = np.zeros((width, width))
        if n_rows:
            _call(_DSYRK, b"L", b"N", width, n_rows, 1.0, rows, width, 0.0, upper, width)
    # the upper triangle mirrored (the lower one is zero): upper + (its strict upper
    # triangle)', each entry as upper + np.triu(upper, 1).T gives it, with a mask made once
    # per size (np.triu's masks cost more than a small gram, ~10 us; select's grids take
    # hundreds of small grams for their starts' statistics)
    return upper + np.where(_strictly_lower(width), upper.T, 0.0)


@cache
def _strictly_lower(width: int) -> NDArray[np.bool_]:
    mask = np.tri(width, width, -1, dtype=bool)
    mask.flags.writeable = False
    return mask
