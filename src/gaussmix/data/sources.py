"""Data sources: objects that hand the EM loop its rows one block at a time.

The EM loop sees only ``chunks(rows)``; an in-memory array, a ``numpy.memmap``, an ``.npy`` file
read block by block and a Parquet file read in row groups all look the same to it. A file source
holds no rows between blocks, so the memory of a fit does not grow with the data: a 2 GB ``.npy``
file is fitted in a few hundred MB (benchmarks/README.md).

A source is validated once, block by block (``check_finite_blocks``), and yields float64 blocks.
``RowsWithoutHoles`` wraps a file source to leave out the rows holding a NaN on every pass
(--dropna on a file too large to hold), re-cut into blocks of the asked size.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from gaussmix.errors import GaussmixError

Array = NDArray[np.float64]

# Working memory of one block of the kernel: rows x (nq + D + K) float64 values for the
# natural-parameter kernel (features and responsibilities). Measured on 2-core machines with
# 2 MB of L2 cache per core (benchmarks/README.md): blocks of about 2 MB, which stay in one
# core's cache, beat 6 MB ones by 10-20% once each core works through its own share of the
# rows; but each block has its fixed costs, and blocks of fewer than about 4096 rows were
# slower (W1: 1,551 rows, 54 against 49 ms per iteration), so a block grows to 4096 rows as
# long as it stays under 6 MB.
WORKING_BYTES = 2 * 2**20
ENOUGH_ROWS, MAX_WORKING_BYTES = 4096, 6 * 2**20
MIN_ROWS, MAX_ROWS = 256, 65536


def default_chunk_size(floats_per_row: int) -> int:
    """Rows per block for a kernel whose working arrays take ``floats_per_row`` float64 values
    for each row: about 2 MB of them, or up to 4096 rows while that stays under 6 MB."""
    row_bytes = 8 * max(1, floats_per_row)
    rows = max(WORKING_BYTES // row_bytes, min(ENOUGH_ROWS, MAX_WORKING_BYTES // row_bytes))
    return int(min(MAX_ROWS, max(MIN_ROWS, rows)))


class DataSource(Protocol):
    """Rows in blocks. ``chunks(rows)`` yields (X_block (m, D) float64, weights (m,) or None)."""

    @property
    def n_samples(self) -> int: ...

    @property
    def n_features(self) -> int: ...

    @property
    def sample_weight(self) -> Array | None: ...

    def chunks(self, rows: int) -> Iterator[tuple[NDArray[np.floating], Array | None]]: ...

    def take(self, indices: NDArray[np.intp]) -> Array:
        """The rows at sorted ``indices``, in memory (for initialising on a sample)."""
        ...

    def with_weights(self, sample_weight: Array | None) -> DataSource:
        """The same rows with these sample weights."""
        ...


def total_weight(source: DataSource) -> float:
    """sum_n w_n (n_samples without weights)."""
    w = source.sample_weight
    return float(source.n_samples if w is None else w.sum())


def _weights_of(w: Array | None, start: int, stop: int) -> Array | None:
    return None if w is None else w[start:stop]


def with_their_weights(
    blocks: Iterable[NDArray[np.floating]], sample_weight: Array | None
) -> Iterator[tuple[NDArray[np.floating], Array | None]]:
    """Each of ``blocks`` (the rows in order) with its rows' slice of ``sample_weight``."""
    start = 0
    for block in blocks:
        stop = start + block.shape[0]
        yield block, _weights_of(sample_weight, start, stop)
        start = stop


def as_float(block: NDArray[np.generic]) -> NDArray[np.floating]:
    """float32 and float64 blocks as they are (the kernel computes in its own dtype), anything
    else as float64."""
    if block.dtype in (np.float32, np.float64):
        return np.asarray(block)
    return np.asarray(block, dtype=np.float64)


@dataclass(frozen=True)
class ArraySource:
    """Rows of an in-memory array (or a ``numpy.memmap``), read per block as float64."""

    X: NDArray[np.floating]
    sample_weight: Array | None = None

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def chunks(self, rows: int) -> Iterator[tuple[NDArray[np.floating], Array | None]]:
        for start in range(0, self.n_samples, rows):
            block = as_float(self.X[start : start + rows])
            yield block, _weights_of(self.sample_weight, start, start + rows)

    def with_weights(self, sample_weight: Array | None) -> DataSource:
        return replace(self, sample_weight=sample_weight)

    def slice_rows(self, start: int, stop: int) -> ArraySource:
        """Rows start to stop (a view: no row is copied)."""
        return ArraySource(self.X[start:stop], _weights_of(self.sample_weight, start, stop))

    def take(self, indices: NDArray[np.intp]) -> Array:
        return np.asarray(self.X[indices], dtype=np.float64)


@dataclass(frozen=True)
class NpySource:
    """Rows of a C-ordered 2-D ``.npy`` file, read block by block with ``pread``.

    Nothing is mapped into memory, so resident memory stays at the blocks in flight however
    large the file is (a memory map would keep every page it touched resident).
    """

    path: Path
    dtype: np.dtype
    shape: tuple[int, int]
    offset: int
    sample_weight: Array | None = None

    @classmethod
    def open(cls, path: str | Path, sample_weight: Array | None = None) -> NpySource:
        """Read the header of an ``.npy`` file; ValueError if it is not 2-D numeric C-order."""
        path = Path(path)
        with path.open("rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(f)
            except ValueError:
                raise GaussmixError(
                    f"{path} is not a readable .npy file (no NumPy header)"
                ) from None
            offset = f.tell()
        if len(shape) == 1:
            shape = (shape[0], 1)
        if len(shape) != 2 or fortran or dtype.kind not in "biuf" or dtype.hasobject:
            raise GaussmixError(
                f"{path} holds a {'Fortran-ordered ' if fortran else ''}{len(shape)}-D "
                f"{dtype} array; gaussmix reads 2-D C-ordered numeric .npy files "
                "(np.save(path, np.ascontiguousarray(X)))"
            )
        size = offset + shape[0] * shape[1] * dtype.itemsize
        if path.stat().st_size < size:
            raise GaussmixError(f"{path} is truncated: the header promises {shape} {dtype} values")
        return cls(path, dtype, (int(shape[0]), int(shape[1])), offset, sample_weight)

    @property
    def n_samples(self) -> int:
        return self.shape[0]

    @property
    def n_features(self) -> int:
        return self.shape[1]

    def _read(self, fd: int, start: int, stop: int) -> NDArray[np.floating]:
        row_bytes = self.shape[1] * self.dtype.itemsize
        data = os.pread(fd, (stop - start) * row_bytes, self.offset + start * row_bytes)
        block = np.frombuffer(data, dtype=self.dtype).reshape(stop - start, self.shape[1])
        return as_float(block)

    def chunks(self, rows: int) -> Iterator[tuple[NDArray[np.floating], Array | None]]:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for start in range(0, self.n_samples, rows):
                stop = min(start + rows, self.n_samples)
                yield self._read(fd, start, stop), _weights_of(self.sample_weight, start, stop)
        finally:
            os.close(fd)

    def with_weights(self, sample_weight: Array | None) -> DataSource:
        return replace(self, sample_weight=sample_weight)

    def slice_rows(self, start: int, stop: int) -> NpySource:
        """Rows start to stop of the file (nothing is read)."""
        row_bytes = self.shape[1] * self.dtype.itemsize
        return replace(
            self,
            shape=(stop - start, self.shape[1]),
            offset=self.offset + start * row_bytes,
            sample_weight=_weights_of(self.sample_weight, start, stop),
        )

    def take(self, indices: NDArray[np.intp]) -> Array:
        return take_by_scan(self, indices)


def rebatch(blocks: Iterable[NDArray[np.floating]], rows: int) -> Iterator[NDArray[np.floating]]:
    """The rows of ``blocks`` (of any lengths, in order) again, in blocks of ``rows`` rows (the
    last one shorter); a block of the right length passes as it is."""
    pending: list[NDArray[np.floating]] = []
    size = 0
    for block in blocks:
        if not size and len(block) == rows:
            yield block
            continue
        pending.append(block)
        size += len(block)
        while size >= rows:
            joined = np.concatenate(pending)
            yield joined[:rows]
            rest = joined[rows:]
            pending, size = [rest], len(rest)
    if size:
        yield np.concatenate(pending)


@dataclass(frozen=True)
class ParquetSource:
    """Rows of a Parquet file, read in batches on every pass (pyarrow); nulls are NaN."""

    path: Path
    columns: list[str]
    n_samples: int
    sample_weight: Array | None = None

    @classmethod
    def open(
        cls,
        path: str | Path,
        columns: Sequence[str] | None = None,
        sample_weight: Array | None = None,
    ) -> ParquetSource:
        """Read the schema; ValueError for missing or non-numeric columns."""
        from gaussmix.data.files import require_pyarrow

        require_pyarrow()
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        try:
            meta = pq.ParquetFile(path)
        except (OSError, ValueError, pa.ArrowException):
            raise GaussmixError(f"{path} is not a readable Parquet file") from None
        schema = meta.schema_arrow
        names = list(columns) if columns else list(schema.names)
        missing = [c for c in names if c not in schema.names]
        if missing:
            raise GaussmixError(
                f"{path} has no column {', '.join(map(repr, missing))}; its columns are "
                f"{', '.join(schema.names)}"
            )
        bad = [
            c
            for c in names
            if not (
                pa.types.is_integer(schema.field(c).type)
                or pa.types.is_floating(schema.field(c).type)
            )
        ]
        if bad:
            raise GaussmixError(
                f"{path}: column(s) {', '.join(map(repr, bad))} are not numeric; pick numeric "
                "ones with columns=[...] (--columns)"
            )
        return cls(path, names, int(meta.metadata.num_rows), sample_weight)

    @property
    def n_features(self) -> int:
        return len(self.columns)

    def chunks(self, rows: int) -> Iterator[tuple[NDArray[np.floating], Array | None]]:
        import pyarrow.parquet as pq

        batches = pq.ParquetFile(self.path).iter_batches(batch_size=rows, columns=self.columns)
        # a null is NaN here (an integer column with nulls comes as float64)
        blocks = (
            np.column_stack(
                [batch.column(i).to_numpy(zero_copy_only=False) for i in range(batch.num_columns)]
            ).astype(np.float64)
            for batch in batches
        )
        return with_their_weights(blocks, self.sample_weight)

    def with_weights(self, sample_weight: Array | None) -> DataSource:
        return replace(self, sample_weight=sample_weight)

    def take(self, indices: NDArray[np.intp]) -> Array:
        return take_by_scan(self, indices)


@dataclass(frozen=True)
class RowsWithoutHoles:
    """The rows of a file source that hold no NaN, left out again on every pass (--dropna on a
    file read block by block), in blocks of the asked size; ``n_samples`` counts the rows kept
    (``gaussmix.data.files`` counts them in the pass that opens the file)."""

    source: DataSource
    n_samples: int
    sample_weight: Array | None = None

    @property
    def n_features(self) -> int:
        return self.source.n_features

    def chunks(self, rows: int) -> Iterator[tuple[NDArray[np.floating], Array | None]]:
        kept = (block[~np.isnan(block).any(axis=1)] for block, _ in self.source.chunks(rows))
        return with_their_weights(rebatch(kept, rows), self.sample_weight)

    def with_weights(self, sample_weight: Array | None) -> DataSource:
        return replace(self, sample_weight=sample_weight)

    def take(self, indices: NDArray[np.intp]) -> Array:
        return take_by_scan(self, indices)


def take_by_scan(source: DataSource, indices: NDArray[np.intp], rows: int = 65536) -> Array:
    """The rows at sorted ``indices``, gathered in one pass over the source's blocks."""
    parts = []
    start = 0
    for block, _ in source.chunks(rows):
        stop = start + block.shape[0]
        inside = indices[(indices >= start) & (indices < stop)]
        parts.append(block[inside - start])
        start = stop
    return np.vstack(parts)


def check_finite_blocks(source: DataSource, rows: int, name: str = "X") -> None:
    """One pass over the source: ValueError naming how many values are NaN or infinite and the
    first row holding one (the same message as for in-memory arrays)."""
    bad_total = 0
    first = -1
    start = 0
    for block, _ in source.chunks(rows):
        bad = ~np.isfinite(block)
        count = int(bad.sum())
        if count and first < 0:
            first = start + int(np.argmax(bad.any(axis=1)))
        bad_total += count
        start += block.shape[0]
    if bad_total:
        raise nonfinite_error(name, bad_total, first)


def nonfinite_error(name: str, count: int, first_row: int) -> GaussmixError:
    """The error for ``count`` NaN or infinite values in ``name``, the first in ``first_row``."""
    return GaussmixError(
        f"Input {name} contains {count} NaN or infinite value(s), the first in row "
        f"{first_row}; remove or impute them before fitting"
    )


def check_missing_blocks(
    source: DataSource, rows: int, name: str = "X", fitting: bool = True
) -> int:
    """One pass over a source whose NaN are missing entries: ValueError for an infinite value,
    and, when ``fitting``, for a row or a column with no observed value (EM cannot estimate
    anything from it). Returns the number of missing entries."""
    infinite = missing = 0
    first_infinite = first_empty = -1
    observed = np.zeros(source.n_features, dtype=np.int64)
    start = 0
    for block, _ in source.chunks(rows):
        nan = np.isnan(block)
        inf = np.isinf(block)
        if inf.any():
            if first_infinite < 0:
                first_infinite = start + int(np.argmax(inf.any(axis=1)))
            infinite += int(inf.sum())
        missing += int(nan.sum())
        observed += block.shape[0] - nan.sum(axis=0)
        empty = nan.all(axis=1)
        if fitting and first_empty < 0 and empty.any():
            first_empty = start + int(np.argmax(empty))
        start += block.shape[0]
    check_missing_counts(name, infinite, first_infinite, first_empty, observed, fitting)
    return missing


def check_unique_names(names: Sequence[str], where: str) -> None:
    """GaussmixError (one line) naming the column names given more than once; ``where`` says
    whose names they are ("data.csv: the header", "the Dask DataFrame")."""
    twice = sorted(n for n, count in Counter(names).items() if count > 1)
    if twice:
        raise GaussmixError(
            f"{where} names {', '.join(map(repr, twice))} more than once; give every column "
            "its own name"
        )


def check_missing_counts(
    name: str,
    infinite: int,
    first_infinite: int,
    first_empty: int,
    observed: NDArray[np.integer],
    fitting: bool = True,
) -> None:
    """The refusals of ``check_missing_blocks`` from its counts (also counted on a Dask
    cluster): infinite values, and when ``fitting`` a row (first_empty >= 0, 0-based) or a
    column (``observed`` (D,) values per column) with no observed value."""
    if infinite:
        raise GaussmixError(
            f"Input {name} contains {infinite} infinite value(s), the first in row "
            f"{first_infinite}; NaN marks a missing value, infinity is not one"
        )
    if fitting and first_empty >= 0:
        raise GaussmixError(
            f"Input {name} has a row with every value missing (row {first_empty}); such rows "
            "carry no information: drop them before fitting"
        )
    unobserved = np.flatnonzero(np.asarray(observed) == 0)
    if fitting and unobserved.size:
        raise GaussmixError(
            f"Input {name} has {unobserved.size} column(s) with every value missing (the first "
            f"is column {unobserved[0]}); drop them before fitting"
        )


def open_source(
    X: str | os.PathLike[str],
    sample_weight: Array | None = None,
    columns: Sequence[str] | None = None,
) -> DataSource:
    """A file source for a path: ``.npy`` (read by blocks), ``.parquet``/``.pq``, or a text table
    (``.csv``, ``.tsv``, ``.txt``: ``gaussmix.data.files.CsvSource``, missing values kept as NaN
    for the estimator's own check: an error, or fitted with missing='em')."""
    path = Path(X)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if columns:
            raise GaussmixError(".npy files have no column names; select columns before saving")
        return NpySource.open(path, sample_weight)
    if suffix in (".parquet", ".pq"):
        return ParquetSource.open(path, columns, sample_weight)
    if suffix in (".csv", ".tsv", ".tab", ".txt"):
        from gaussmix.data.files import CsvSource, ReadOptions

        options = ReadOptions(columns=tuple(columns) if columns else None, missing="fit")
        source, _ = CsvSource.open(path, options)  # text tables parsed block by block
        return source.with_weights(sample_weight)
    raise GaussmixError(
        f"cannot stream {path.name}: fit() reads .npy, .parquet and text tables (.csv, .tsv, "
        ".txt) from disk; load other files into an array first (gaussmix.data.files.read_table)"
    )
