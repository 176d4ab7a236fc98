"""Rows held in a Dask collection: a ``dask.array.Array`` or a ``dask.dataframe.DataFrame``.

This source is where rows come from when they live on a Dask cluster; the passes over them run
there too (``gaussmix.em.dask_workers``), so a fit never pulls the rows to this process: only the
parameters go out, inside the tasks, and the statistics of the row chunks come back (merged
on the worker for runs of neighbouring chunks it holds).

Three decisions:

* With an active ``distributed.Client`` the rows are persisted on the workers for the length of
  the fit (the memory is the cluster's, not this process's), and kept as a collection Dask can
  rebuild: a worker that dies loses its blocks, and the scheduler recomputes them from the
  collection's own graph (rows sent with ``client.scatter`` could not be rebuilt). Without a
  client the passes run on Dask's local threaded scheduler in this process and nothing is
  persisted: each pass reads the collection again, as a Parquet file is read today.
* A dask collection is recognised before scikit-learn's validation (which would compute it into
  one array here) and without importing dask: a dask object exists only once dask is imported.
* The blocks are the collection's row chunks (all columns in one chunk); each is walked by the
  kernel in blocks of the estimator's ``chunk_size`` rows. On a cluster a pass is one task per
  worker, whatever the number of chunks; without one, one per chunk, so there row chunks of
  tens of MB keep the scheduling small against the arithmetic.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gaussmix.data.sources import (
    as_float,
    check_missing_counts,
    check_unique_names,
    nonfinite_error,
)
from gaussmix.errors import GaussmixError

Array = NDArray[np.float64]

PARQUET = (".parquet", ".pq")


def is_dask_collection(X: object) -> bool:
    """Whether X is a Dask collection (without importing dask: none exists before it is)."""
    dask = sys.modules.get("dask")
    return dask is not None and bool(dask.is_dask_collection(X))


def on_dask(X: object) -> bool:
    """Whether X's rows live in Dask: a dask collection or a ``DaskSource``."""
    return isinstance(X, DaskSource) or is_dask_collection(X)


GLOB_CHARACTERS = frozenset("*?[")


def is_dataset_path(path: str | os.PathLike[str]) -> bool:
    """Whether a path names a Parquet dataset of many files: a directory holding Parquet
    files, or a glob (any other directory is left to the file readers' message)."""
    if Path(path).is_dir():
        return any(f.suffix.lower() in PARQUET for f in Path(path).iterdir())
    return bool(GLOB_CHARACTERS & set(str(path)))


def parquet_files(path: str | os.PathLike[str]) -> list[str]:
    """The Parquet files of a directory, a glob (``data/*.parquet``) or one file, sorted;
    FileNotFoundError when there are none, ValueError for a file of another kind."""
    text = str(path)
    if Path(path).is_dir():
        files = sorted(str(f) for f in Path(path).iterdir() if f.suffix.lower() in PARQUET)
    elif GLOB_CHARACTERS & set(text):
        files = sorted(glob.glob(text))
    else:
        files = [text] if Path(path).exists() else []
    if not files:
        raise FileNotFoundError(f"no Parquet files at {path} (a file, a directory or a glob)")
    not_parquet = [f for f in files if Path(f).suffix.lower() not in PARQUET]
    if not_parquet:
        raise GaussmixError(
            f"{not_parquet[0]} is not a .parquet file; a dataset on Dask is read from Parquet"
        )
    return files


def parquet_dataset(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> Any:
    """The Parquet files at ``path`` (``parquet_files``) as a lazy
    ``dask.dataframe.DataFrame`` of the named (default: all) columns."""
    files = parquet_files(path)
    _require_dask()
    import dask.dataframe as dd

    try:
        return dd.read_parquet(files, columns=list(columns) if columns else None)
    except (OSError, ValueError, KeyError) as exc:
        raise GaussmixError(f"cannot read the Parquet files at {path} ({exc})") from None


def active_client() -> Any | None:
    """The active ``distributed.Client``, or None (then Dask's threaded scheduler runs here)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:  # "No clients found"
        return None


def _require_dask() -> None:
    try:
        import dask.array  # noqa: F401
    except ImportError:
        raise ImportError(
            "fitting a Dask collection needs dask: pip install 'gaussmix[dask]'"
        ) from None


def _is_numeric(dtype: Any) -> bool:
    """Whether a DataFrame column's dtype holds numbers (pandas' own dtypes included)."""
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(dtype))


def _is_extension(dtype: Any) -> bool:
    """Whether a DataFrame column's dtype is one of pandas' own (nullable) dtypes."""
    import pandas as pd

    return isinstance(dtype, pd.api.extensions.ExtensionDtype)


def _as_rows(X: Any) -> tuple[Any, list[str] | None]:
    """A 2-D dask array of numbers with known row chunks and one column chunk, and the column
    names of a DataFrame (None for an array)."""
    import dask.array as da
    import dask.dataframe as dd

    columns: list[str] | None = None
    if isinstance(X, dd.Series):
        X = X.to_frame()
    if isinstance(X, dd.DataFrame):
        bad = [str(c) for c, t in X.dtypes.items() if not _is_numeric(t)]
        if bad:
            raise GaussmixError(
                f"the Dask DataFrame has non-numeric column(s) {', '.join(map(repr, bad))}; "
                "select numeric ones, e.g. df[['a', 'b']]"
            )
        columns = [str(c) for c in X.columns]
        check_unique_names(columns, "the Dask DataFrame")
        # pandas' nullable columns (Int64, Float64: what Parquet integers with nulls become)
        # as float64, a null as NaN; as they are they would make an array of objects
        nullable = {c: "float64" for c, t in X.dtypes.items() if _is_extension(t)}
        if nullable:
            X = X.astype(nullable)
        # chunk sizes counted on the array itself, below: lengths=True counts the partitions
        # of the optimised frame, which may join small Parquet files into fewer (dask 2026.8)
        X = X.to_dask_array()
    if not isinstance(X, da.Array):
        raise TypeError(
            f"cannot fit a {type(X).__name__}: gaussmix takes a dask.array.Array or a "
            "dask.dataframe.DataFrame"
        )
    if X.ndim == 1:
        raise GaussmixError(
            "Expected 2D array, got 1D array instead. Reshape your data with "
            "X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single sample"
        )
    if X.ndim != 2:
        raise GaussmixError(f"X is a {X.ndim}-D dask array; gaussmix needs rows x features (2-D)")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X holds {X.dtype} values; pass numbers only")
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X, columns


def _weights_as(sample_weight: Any, X: Any) -> Any:
    """The weights as a dask array with the row chunks of X (validated on the cluster for a
    dask array, here for an array-like)."""
    import dask.array as da

    from gaussmix.validation import check_sample_weight

    n = X.shape[0]
    if not is_dask_collection(sample_weight):
        w = check_sample_weight(sample_weight, n)
        return None if w is None else da.from_array(w, chunks=(X.chunks[0],))
    w = sample_weight
    if not isinstance(w, da.Array):
        w = w.to_dask_array()  # chunk sizes counted on the array (see ``_as_rows``)
    if any(np.isnan(c) for c in w.chunks[0]):
        w = w.compute_chunk_sizes()
    if w.shape != (n,):
        raise GaussmixError(
            f"sample_weight has shape {w.shape}; expected ({n},), one weight per row"
        )
    w = w.astype(np.float64).rechunk((X.chunks[0],))
    return w


def _check_weights(w: Any) -> None:
    import dask
    import dask.array as da

    nonfinite = ~da.isfinite(w)
    negative = w < 0
    n_bad, first_bad, n_neg, first_neg, total = dask.compute(
        nonfinite.sum(), da.argmax(nonfinite), negative.sum(), da.argmax(negative), w.sum()
    )
    if n_bad:
        raise GaussmixError(
            f"sample_weight contains {n_bad} NaN or infinite value(s), the first at row "
            f"{first_bad}; weights must be finite"
        )
    if n_neg:
        raise GaussmixError(
            f"sample_weight has {n_neg} negative value(s), the first at row {first_neg}; "
            "weights must be >= 0"
        )
    if not total > 0:
        raise GaussmixError("sample_weight sums to zero; give at least one row a positive weight")


def _check_finite(X: Any, name: str = "X") -> None:
    """One pass on the cluster: the message ``check_finite_blocks`` gives for other sources."""
    import dask
    import dask.array as da

    bad_rows = (~da.isfinite(X)).sum(axis=1)
    total, first = dask.compute(bad_rows.sum(), da.argmax(bad_rows > 0))
    if total:
        raise nonfinite_error(name, int(total), int(first))


def _check_missing(X: Any, name: str = "X", fitting: bool = True) -> int:
    """One pass on the cluster: ``check_missing_blocks``'s refusals for rows whose NaN are
    missing entries (with ``fitting``, an empty row or column too); the number of missing
    entries."""
    import dask
    import dask.array as da

    nan = da.isnan(X)
    infinite = da.isinf(X)
    empty = nan.all(axis=1)
    counts = dask.compute(
        infinite.sum(),
        da.argmax(infinite.any(axis=1)),
        da.any(empty),
        da.argmax(empty),
        X.shape[0] - nan.sum(axis=0),
        nan.sum(),
    )
    n_inf, first_inf, any_empty, first_empty, observed, n_missing = counts
    first = int(first_empty) if any_empty else -1
    check_missing_counts(name, int(n_inf), int(first_inf), first, observed, fitting)
    return int(n_missing)


@dataclass(frozen=True)
class Holes:
    """Where the missing values (NaN) of rows are: ``values`` NaN in ``rows`` rows, the first
    in row ``first_row``, column ``first_column`` (0-based, -1 when none); ``empty_rows`` rows
    with no observed value, the first ``first_empty``; ``unobserved`` (n_features,) columns
    with none."""

    values: int
    rows: int
    first_row: int
    first_column: int
    empty_rows: int
    first_empty: int
    unobserved: NDArray[np.bool_]


def missing_summary(X: Any) -> Holes:
    """The ``Holes`` of a dask array (n_samples, n_features), reduced on the cluster in one
    pass (the first hole's column too: the column whose first NaN comes first)."""
    import dask
    import dask.array as da

    nan = da.isnan(X)
    holes, empty = nan.any(axis=1), nan.all(axis=1)
    counts = dask.compute(
        nan.sum(),
        holes.sum(),
        empty.sum(),
        da.argmax(empty),
        nan.any(axis=0),
        da.argmax(nan, axis=0),
        X.shape[0] - nan.sum(axis=0),
    )
    values, rows, n_empty, first_empty, has_nan, first_nan, observed = counts
    first_row = first_column = -1
    if rows:
        firsts = np.where(has_nan, first_nan, X.shape[0])  # each column's first NaN row
        first_column = int(np.argmin(firsts))
        first_row = int(firsts[first_column])
    return Holes(
        int(values),
        int(rows),
        first_row,
        first_column,
        int(n_empty),
        int(first_empty) if n_empty else -1,
        np.asarray(observed) == 0,
    )


def column_moments(X: Any) -> tuple[Array, Array]:
    """The mean and the standard deviation (ddof 0) of each column of a dask array over its
    observed values (NaN left out), reduced on the cluster: two (n_features,) arrays."""
    import dask
    import dask.array as da

    mean, sd = dask.compute(da.nanmean(X, axis=0), da.nanstd(X, axis=0))
    return np.asarray(mean, dtype=np.float64), np.asarray(sd, dtype=np.float64)


@dataclass(frozen=True)
class DaskSource:
    """Rows of a 2-D dask array chunked by rows only, with optional weights chunked alike.

    Attributes
    ----------
    X : dask array (n_samples, n_features).
    weights : dask array (n_samples,) with the row chunks of X, or None.
    columns : the column names of a DataFrame, or None.
    n_missing : NaN entries, missing values (0 unless opened with ``allow_nan``).
    """

    X: Any
    weights: Any = None
    columns: list[str] | None = None
    n_missing: int = 0

    @classmethod
    def open(
        cls, X: Any, sample_weight: Any = None, allow_nan: bool = False, fitting: bool = True
    ) -> DaskSource:
        """Validate a dask collection (on the cluster) and persist it there when a
        ``distributed.Client`` is active.

        Parameters
        ----------
        X : dask.array.Array (n_samples, n_features) or dask.dataframe.DataFrame of numeric
            columns.
        sample_weight : dask array or array-like (n_samples,), or None.
        allow_nan : NaN marks a missing entry (``GaussianMixture(missing="em")``): counted,
            and refused only where a row or a column has no observed value; else refused.
        fitting : with ``allow_nan``, refuse a row or a column with no observed value (False:
            the caller says so in its own words, from ``missing_summary``).
        """
        if isinstance(X, DaskSource):  # already open: only weights given here are new
            if X.n_missing and not allow_nan:
                raise GaussmixError(
                    f"these rows hold {X.n_missing} missing value(s) (NaN); fit them with "
                    "missing='em'"
                )
            if sample_weight is None:
                return X
            rows, weights, columns = X.X, _weights_as(sample_weight, X.X), X.columns
            n_missing = X.n_missing
        else:
            _require_dask()
            rows, columns = _as_rows(X)
            weights = _weights_as(sample_weight, rows)
            if active_client() is not None:
                import dask

                rows, weights = dask.persist(rows, weights)
            n_missing = _check_missing(rows, fitting=fitting) if allow_nan else 0
            if not allow_nan:
                _check_finite(rows)
        if weights is not None and is_dask_collection(sample_weight):
            _check_weights(weights)
        return cls(rows, weights, columns, n_missing)

    @classmethod
    def lazy(cls, X: Any) -> DaskSource:
        """The rows of a dask collection as they are: neither checked nor persisted (for the
        lazy per-row outputs of ``predict`` and the like)."""
        if isinstance(X, DaskSource):
            return X
        _require_dask()
        return cls(*_as_rows(X))

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of the rows (float32 rows give float32 fitted attributes and outputs)."""
        return np.dtype(self.X.dtype)

    @property
    def sample_weight(self) -> Any:
        """The weights as a dask array (n_samples,), or None."""
        return self.weights

    def with_weights(self, sample_weight: Any) -> DaskSource:
        if sample_weight is None:
            return replace(self, weights=None)
        return replace(self, weights=_weights_as(sample_weight, self.X))

    def blocks(self) -> list[tuple[Any, Any]]:
        """(rows, weights) of each row chunk as ``dask.delayed`` objects (weights None when
        there are none), in row order."""
        xs = self.X.to_delayed(optimize_graph=False).ravel()
        if self.weights is None:
            return [(x, None) for x in xs]
        ws = self.weights.to_delayed(optimize_graph=False).ravel()
        return list(zip(xs, ws, strict=True))

    def chunks(self, rows: int) -> Iterator[tuple[NDArray[np.floating], Array | None]]:
        """The rows brought here one row chunk at a time, in blocks of ``rows`` (a pass in this
        process: the fits do not use it, streaming with ``partial_fit`` does)."""
        import dask

        for x, w in self.blocks():
            block, weights = dask.compute(x, w)
            block = as_float(np.asarray(block))
            for start in range(0, block.shape[0], rows):
                yield (
                    block[start : start + rows],
                    None if weights is None else np.asarray(weights[start : start + rows]),
                )

    def take(self, indices: NDArray[np.intp]) -> Array:
        """The rows at sorted ``indices``, gathered on the workers and brought here."""
        return np.asarray(self.X[np.asarray(indices)].compute(), dtype=np.float64)

    def take_weights(self, indices: NDArray[np.intp]) -> Array | None:
        """The weights at sorted ``indices``, brought here (None without weights)."""
        if self.weights is None:
            return None
        return np.asarray(self.weights[np.asarray(indices)].compute(), dtype=np.float64)

    def workers(self) -> Any:
        """The executor of the passes over these rows: its blocks on the Dask scheduler."""
        from gaussmix.em.dask_workers import DaskWorkers

        return DaskWorkers(self)


def standardized(source: DaskSource, center: Array, scale: Array) -> DaskSource:
    """The rows of ``source`` less ``center`` over ``scale`` (each (n_features,)), lazily: a
    graph on its chunks, nothing computed (weights dropped, columns and holes kept)."""
    return replace(source, X=(source.X - center) / scale, weights=None)


def map_rows(
    source: DaskSource,
    per_block: Callable[[NDArray[np.floating]], Any],
    trailing: tuple[int, ...],
    dtype: Any,
) -> Any:
    """``per_block`` applied to every row chunk of the source, lazily: a dask array
    (n_samples, *trailing) with its row chunks.

    Parameters
    ----------
    source : the rows (n_samples, n_features).
    per_block : picklable; (m, n_features) rows -> (m, *trailing) values.
    trailing : the shape of the output beyond the rows.  dtype : the output's dtype.
    """
    import dask.array as da

    rows = source.X
    chunks = (rows.chunks[0], *((t,) for t in trailing))
    return da.map_blocks(
        per_block,
        rows,
        chunks=chunks,
        drop_axis=[] if trailing else [1],
        dtype=dtype,
        meta=np.empty((0,) * (1 + len(trailing)), dtype=dtype),
    )
