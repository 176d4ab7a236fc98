"""Input checks that say what was wrong and what to try, in one line.

scikit-learn's ``validate_data`` does the bulk of the work (types, shapes, feature names); the
checks here run around it where a more helpful message is possible: 1-D input, non-numeric
values, NaN/inf (how many, and the first row), sample weights and user-given precisions.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import validate_data

from gaussmix.data.sources import ArraySource, check_finite_blocks
from gaussmix.em.covariance import Covariance
from gaussmix.em.errors import DegenerateCovarianceError
from gaussmix.errors import DegenerateDataWarning, GaussmixError

Array = NDArray[np.float64]

_BLOCK = 1 << 16


def validate_rows(
    estimator: Any,
    X: ArrayLike,
    *,
    reset: bool,
    ensure_min_samples: int = 1,
    allow_nan: bool = False,
) -> NDArray[np.floating]:
    """A 2-D float array of finite values (float64 or float32); memmaps are not copied.
    ``allow_nan``: NaN (missing values) are let through, for ``check_missing_blocks``."""
    if not scipy.sparse.issparse(X):
        ndim = getattr(X, "ndim", None)
        if ndim is None:
            ndim = np.ndim(np.asarray(X, dtype=object))
        if ndim == 1:
            raise GaussmixError(
                "Expected 2D array, got 1D array instead. Reshape your data with "
                "X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single sample"
            )
        columns = getattr(X, "columns", None)
        if columns is not None and getattr(X, "dtypes", None) is not None:
            from gaussmix.data.sources import check_unique_names

            check_unique_names([str(c) for c in columns], "the DataFrame")
        X = _as_numeric(X)
    X_valid: NDArray[np.floating] = validate_data(
        estimator,
        X,
        reset=reset,
        dtype=[np.float64, np.float32],
        ensure_min_samples=ensure_min_samples,
        ensure_all_finite=False,
    )
    if not allow_nan:
        check_finite(X_valid, "X")
    return X_valid


def _as_numeric(X: Any) -> Any:
    """Reject non-numeric values with a TypeError that quotes the offending conversion."""
    dtypes = getattr(X, "dtypes", None)  # a DataFrame keeps its column names for validate_data
    if dtypes is not None:
        kinds = {np.dtype(d).kind if isinstance(d, np.dtype) else "O" for d in dtypes}
        if kinds <= set("biuf"):
            return X
        values = np.asarray(X)
    else:
        values = np.asarray(X) if not isinstance(X, np.ndarray) else X
    if values.dtype.kind in "biufc":
        return X
    try:
        values.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"X holds non-numeric values ({exc}); pass numbers only, e.g. select numeric columns"
        ) from None
    return X


def check_finite(X: NDArray[np.floating], name: str) -> None:
    """ValueError naming how many values are NaN or infinite and the first row holding one."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(X)):
            return
    # something is not finite (or the sum overflowed): count and locate it block by block
    check_finite_blocks(ArraySource(X), _BLOCK, name)


def check_sample_weight(sample_weight: ArrayLike | None, n_samples: int) -> Array | None:
    """Validated (n_samples,) float64 weights, or None for unit weights."""
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"sample_weight holds non-numeric values ({exc})") from None
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.shape != (n_samples,):
        raise GaussmixError(
            f"sample_weight has shape {w.shape}; expected ({n_samples},), one weight per row"
        )
    bad = np.flatnonzero(~np.isfinite(w))
    if bad.size:
        raise GaussmixError(
            f"sample_weight contains {bad.size} NaN or infinite value(s), the first at row "
            f"{bad[0]}; weights must be finite"
        )
    negative = np.flatnonzero(w < 0)
    if negative.size:
        raise GaussmixError(
            f"sample_weight has {negative.size} negative value(s), the first at row "
            f"{negative[0]}; weights must be >= 0"
        )
    if not w.sum() > 0:
        raise GaussmixError("sample_weight sums to zero; give at least one row a positive weight")
    return w


def check_precisions(
    precisions: ArrayLike, covariance: Covariance, n_components: int, n_features: int
) -> Array:
    """User-given precisions (``precisions_init``): right shape, symmetric, positive definite."""
    P = np.asarray(precisions, dtype=np.float64)
    expected = covariance.shape(n_components, n_features)
    if P.shape != expected:
        raise GaussmixError(
            f"precisions_init has shape {P.shape}; a '{covariance.name}' model with "
            f"{n_components} components and {n_features} features expects {expected}"
        )
    if not np.all(np.isfinite(P)):
        raise GaussmixError("precisions_init contains NaN or infinite values")
    if covariance.matrix_layout and not np.allclose(P, np.swapaxes(P, -1, -2)):
        raise GaussmixError(f"'{covariance.name}' precisions_init must be symmetric")
    try:
        covariance.precisions_cholesky_from_precisions(P)
    except DegenerateCovarianceError:
        raise GaussmixError(
            f"'{covariance.name}' precisions_init must be positive definite (positive for "
            "diag and spherical)"
        ) from None
    return P


def degenerate_columns(
    X: NDArray[np.floating], columns: list[str], drop_hint: bool = True
) -> list[str]:
    """One message per kind: the constant columns, and the columns that duplicate an earlier
    one; along either, every covariance of a mixture is singular (fit and select say the
    same). ``drop_hint`` adds the command line's ``--drop`` option to the advice."""
    X = np.asarray(X)
    messages: list[str] = []
    if X.shape[0] < 2:
        return messages
    # over the observed values: a column with holes (missing='em') is not constant for them
    spread = np.nanmax(X, axis=0) - np.nanmin(X, axis=0)
    constant = [columns[j] for j in np.flatnonzero(~(spread > 0))]
    if constant:
        hint = f" (--drop {','.join(constant)})" if drop_hint else ""
        messages.append(
            f"constant column(s) {', '.join(map(repr, constant))}: every covariance is "
            f"singular along them; leave them out{hint}"
        )
    # duplicates: only columns with equal sums and sums of squares can be equal
    sums = X.sum(axis=0)
    squares = np.einsum("ij,ij->j", X, X)
    twins: list[tuple[str, str]] = []
    varying = np.flatnonzero(spread > 0)
    for a, j in enumerate(varying):
        for i in varying[:a]:
            if sums[i] == sums[j] and squares[i] == squares[j] and np.array_equal(X[:, i], X[:, j]):
                twins.append((columns[j], columns[i]))
                break
    if twins:
        hint = f" (--drop {','.join(copy for copy, _ in twins)})" if drop_hint else ""
        pairs = ", ".join(f"{copy!r} = {first!r}" for copy, first in twins)
        messages.append(
            f"duplicated column(s) {pairs}: full and tied covariances are singular along their "
            f"difference; leave the copies out{hint}"
        )
    return messages


def warn_degenerate_columns(
    X: NDArray[np.floating], columns: list[str] | None, stacklevel: int = 3
) -> None:
    """A ``DegenerateDataWarning`` per kind of degenerate column (``degenerate_columns``);
    columns are named by ``columns`` or by 1-based number."""
    names = columns if columns is not None else [str(j + 1) for j in range(X.shape[1])]
    for message in degenerate_columns(X, names, drop_hint=False):
        warnings.warn(message, DegenerateDataWarning, stacklevel=stacklevel)
