"""Reading data files: text tables (CSV, TSV, whitespace), ``.npy`` and Parquet, or ``-``.

This is the one place that looks at a file's suffix. ``.npy`` and ``.parquet``/``.pq`` have their
own readers; ``-`` is standard input; every other file is read as a text table by
``gaussmix.data.text`` (pyarrow's CSV reader, format sniffed from the first lines). Every reader
returns a ``Table``: a 2-D float array, its column names and the notes a person should see
(columns left out, rows dropped); ``open_data`` also returns a block-by-block source for files too
large to hold (``.npy``, Parquet, and CSV files over ``STREAM_BYTES``). Columns are chosen
(``--columns``) and removed (``--drop``) by name or 1-based number, the same way for every format.

Missing values: ``MissingPolicy`` is decided in one place, ``DEFAULT_MISSING``. The default,
``"fit"``, keeps them as NaN with a note counting them, for ``GaussianMixture(missing="em")`` to
integrate out; ``"drop"`` drops the rows holding them, with a note; ``"error"`` counts them and
names the first. A file read block by block (``.npy``, Parquet, a large text file) is counted in
one pass when it is opened, with the same notes and errors (``count_holes``, ``holes_notes``);
under "drop" its rows with a hole are left out again on every pass. Errors are
``GaussmixError``s that name the file and say what to try; nothing here prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from gaussmix.data import text
from gaussmix.data.sources import DataSource, check_unique_names, rebatch, with_their_weights
from gaussmix.data.text import TextOptions, label
from gaussmix.errors import GaussmixError

SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".npy", ".parquet", ".pq")
NPY, PARQUET = (".npy",), (".parquet", ".pq")

MissingPolicy = Literal["fit", "error", "drop"]
# THE policy on rows with missing values for readers and the command line: kept as NaN and fitted
# by EM with the holes integrated out (GaussianMixture(missing="em")); --dropna gives "drop".
DEFAULT_MISSING: MissingPolicy = "fit"


def mixture_missing(policy: MissingPolicy) -> str:
    """The ``GaussianMixture(missing=...)`` a reading policy asks for: 'em' for "fit"."""
    return "em" if policy == "fit" else "error"


# a text file larger than this is read block by block on every pass instead of held in memory
STREAM_BYTES = 1 << 30
# rows per block of the one pass that counts a streamed Parquet file's missing values
SCAN_ROWS = 65536


@dataclass(frozen=True)
class Table:
    """Numeric data read from a file: ``X`` (n, D), its ``columns`` (D names) and the notes
    on how it was read (columns left out, rows dropped)."""

    X: NDArray[np.floating]
    columns: list[str]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReadOptions:
    """How to read a data file: ``columns`` to keep and ``drop`` to remove (names or 1-based
    numbers, as text), the text format's options and the policy on missing values."""

    columns: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    text: TextOptions = field(default_factory=TextOptions)
    missing: MissingPolicy = DEFAULT_MISSING


def resolve_columns(
    names: Sequence[str],
    columns: Sequence[str] | None,
    drop: Sequence[str],
    where: str,
    candidates: Sequence[str] | None = None,
) -> list[str]:
    """The names chosen by ``columns`` (all ``candidates`` when None) less ``drop``; each entry
    is a name or a 1-based column number of ``names`` (a name wins over a number)."""
    names = list(names)

    def one(item: str) -> str:
        item = item.strip()
        if item in names:
            return item
        if item.isdigit() and 1 <= int(item) <= len(names):
            return names[int(item) - 1]
        raise GaussmixError(
            f"{where} has no column {item!r}; its columns are {', '.join(names)} "
            f"(or give their numbers, 1 to {len(names)})"
        )

    chosen = [one(c) for c in columns] if columns else list(candidates or names)
    dropped = {one(c) for c in drop}
    chosen = list(dict.fromkeys(c for c in chosen if c not in dropped))
    if not chosen:
        raise GaussmixError(f"{where}: no column is left to fit; --drop removed every one")
    return chosen


def parse_list(text_value: str | None, option: str = "--columns") -> tuple[str, ...] | None:
    """Names or numbers from a comma-separated option (``--columns a,3``); None when not given."""
    if text_value is None:
        return None
    items = tuple(c.strip() for c in text_value.split(",") if c.strip())
    if not items:
        raise GaussmixError(
            f"{option} {text_value!r} names no column; give names or 1-based numbers "
            "separated by commas"
        )
    return items


def parse_columns(text_value: str | None) -> list[str] | None:
    """Column names from a comma-separated option (``--columns a,b``); None when not given."""
    items = parse_list(text_value)
    return None if items is None else list(items)


# ------------------------------------------------------------------ missing values
def apply_missing(
    X: NDArray[np.floating],
    missing: NDArray[np.bool_],
    columns: Sequence[str],
    policy: MissingPolicy,
    where: str,
) -> tuple[NDArray[np.floating], list[str]]:
    """Rows with missing values: kept as NaN with a note (``"fit"``), an error that counts them
    and names the first (``"error"``), or dropped with a note (``"drop"``); an error when no
    row is left (or there was none)."""
    rows = missing.any(axis=1)
    if not rows.any():
        kept, notes = X, []
    elif policy == "fit":
        empty = missing.all(axis=1)
        unobserved = np.asarray(missing.all(axis=0))
        check_fittable(int(empty.sum()), int(np.argmax(empty)), unobserved, columns, where)
        kept, notes = X, [fitted_note(int(missing.sum()), int(rows.sum()))]
    elif policy == "error":
        r = int(np.argmax(rows))
        first = (r, columns[int(np.argmax(missing[r]))])
        raise missing_error(where, int(missing.sum()), int(rows.sum()), first)
    else:
        kept, notes = X[~rows], [dropped_note(int(rows.sum()), len(X))]
    if kept.shape[0] == 0:
        raise GaussmixError(f"{where} has no rows of data left")
    return kept, notes


def missing_error(where: str, values: int, rows: int, first: tuple[int, str]) -> GaussmixError:
    """The error of the "error" policy: how many, and the first (0-based row, column name)."""
    return GaussmixError(
        f"{where} has {values} missing value(s) (empty, NA, NaN, null, ?) in {rows} row(s), "
        f"the first in row {first[0] + 1}, column {first[1]!r}; --dropna leaves those rows out "
        "(or fill the values in)"
    )


def check_fittable(
    empty_rows: int,
    first_empty: int,
    empty_columns: NDArray[np.bool_],
    columns: Sequence[str],
    where: str,
) -> None:
    """The "fit" policy's refusals: a row or a column with no observed value (EM has nothing to
    learn from it), one line naming the first (``first_empty``: 0-based row)."""
    if empty_columns.any():
        name = columns[int(np.argmax(empty_columns))]
        raise GaussmixError(
            f"{where}: column {name!r} has every value missing; leave it out (--drop {name})"
        )
    if empty_rows:
        raise GaussmixError(
            f"{where}: row {first_empty + 1} has every value missing ({empty_rows} such "
            "row(s)); --dropna leaves rows with missing values out"
        )


def fitted_note(values: int, rows: int) -> str:
    """The note of the "fit" policy."""
    return (
        f"{values} missing value{'s' if values != 1 else ''} in {rows} row"
        f"{'s' if rows != 1 else ''} {'are' if values != 1 else 'is'} fitted (integrated out); "
        f"--dropna leaves {'those rows' if rows != 1 else 'that row'} out"
    )


def dropped_note(dropped: int, n_rows: int) -> str:
    """The note of the "drop" policy."""
    return f"dropped {dropped} of {n_rows} rows with missing values ({n_rows - dropped} rows left)"


@dataclass(frozen=True)
class Holes:
    """The missing entries of a file counted block by block (``count_holes``): ``n_rows`` rows,
    ``values`` missing in ``rows`` of them, the first (0-based row, column index) or None,
    ``empty_rows`` rows with nothing observed (the first ``first_empty``) and the columns with
    nothing observed (``unobserved`` (D,))."""

    n_rows: int
    values: int
    rows: int
    first: tuple[int, int] | None
    empty_rows: int
    first_empty: int
    unobserved: NDArray[np.bool_]

    def kept(self, policy: MissingPolicy) -> int:
        """The rows a source yields under ``policy``: all, or those without a hole."""
        return self.n_rows - self.rows if policy == "drop" else self.n_rows


def count_holes(masks: Iterable[NDArray[np.bool_]]) -> Holes:
    """One pass over the missing-value masks ((m, D) each) of a file's blocks, in order."""
    n = values = rows = empty_rows = 0
    first: tuple[int, int] | None = None
    first_empty = 0
    observed: NDArray[np.bool_] | None = None
    for missing in masks:
        holed = missing.any(axis=1)
        empty = missing.all(axis=1)
        seen = np.asarray(~missing.all(axis=0))
        observed = seen if observed is None else observed | seen
        if empty.any() and not empty_rows:
            first_empty = n + int(np.argmax(empty))
        empty_rows += int(empty.sum())
        if holed.any() and first is None:
            r = int(np.argmax(holed))
            first = (n + r, int(np.argmax(missing[r])))
        values += int(missing.sum())
        rows += int(holed.sum())
        n += len(missing)
    unobserved = np.zeros(0, dtype=bool) if observed is None else ~observed
    return Holes(n, values, rows, first, empty_rows, first_empty, unobserved)


def holes_notes(
    holes: Holes, columns: Sequence[str], policy: MissingPolicy, where: str
) -> list[str]:
    """``apply_missing`` for a file read block by block, from its ``Holes``: the note of the
    policy (none without holes), or its error; with "drop", an error when no row is left."""
    if holes.first is None:
        return []
    if policy == "error":
        r, c = holes.first
        raise missing_error(where, holes.values, holes.rows, (r, columns[c]))
    if policy == "fit":
        check_fittable(holes.empty_rows, holes.first_empty, holes.unobserved, columns, where)
        return [fitted_note(holes.values, holes.rows)]
    if holes.rows == holes.n_rows:
        raise GaussmixError(f"{where} has no rows of data left")
    return [dropped_note(holes.rows, holes.n_rows)]


# ------------------------------------------------------------------ formats
def _read_npy(path: Path) -> Table:
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:
        raise GaussmixError(
            f"{path} is not a numeric .npy file (it holds Python objects or is damaged); save "
            "numbers with np.save(path, X.astype(float))"
        ) from None
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise GaussmixError(
            f"{path} holds a {X.ndim}-D array; gaussmix needs rows x features (2-D)"
        )
    if X.dtype.kind not in "biuf":
        raise GaussmixError(f"{path} holds {X.dtype} values; gaussmix needs numbers")
    return Table(X, default_names(X.shape[1]))


def default_names(n_features: int) -> list[str]:
    """The names of columns a file does not name: x0, x1, ..."""
    return [f"x{i}" for i in range(n_features)]


def require_pyarrow() -> None:
    """ImportError with the install command when pyarrow is missing."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError("reading CSV and Parquet needs pyarrow: pip install pyarrow") from None


def _parquet_schema(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).schema_arrow
    except (OSError, pa.ArrowException):
        raise GaussmixError(
            f"{path} is not a readable Parquet file (damaged, or another format with a "
            ".parquet suffix)"
        ) from None


def _parquet_columns(
    path: Path, options: ReadOptions, where: str | None = None
) -> tuple[list[str], list[str]]:
    """The numeric columns chosen from a Parquet file, and the text ones left out (``where``
    names the data in errors: the file, or the dataset whose first file it is)."""
    import pyarrow as pa

    schema = _parquet_schema(path)
    names = list(schema.names)
    check_unique_names(names, f"{path}: the schema")
    where = where or str(path)

    def numeric(name: str) -> bool:
        kind = schema.field(name).type
        return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))

    candidates = [n for n in names if numeric(n)]
    chosen = resolve_columns(names, options.columns, options.drop, where, candidates)
    _refuse_text(chosen, [n for n in names if not numeric(n)], where)
    left_out = [n for n in names if not numeric(n) and n not in chosen]
    return chosen, left_out


def _refuse_text(chosen: Sequence[str], text_columns: Sequence[str], where: str) -> None:
    asked = [c for c in chosen if c in text_columns]
    if asked:
        raise GaussmixError(
            f"{where}: column(s) {', '.join(map(repr, asked))} hold text, not numbers; "
            "gaussmix fits numeric columns only"
        )


def _left_out_note(left_out: Sequence[str]) -> list[str]:
    if not left_out:
        return []
    plural = "s" if len(left_out) > 1 else ""
    return [f"left out {len(left_out)} text column{plural}: {', '.join(left_out)}"]


def _read_parquet(path: Path, options: ReadOptions) -> Table:
    require_pyarrow()
    import pyarrow.parquet as pq

    chosen, left_out = _parquet_columns(path, options)
    table = pq.read_table(path, columns=chosen)
    X = np.column_stack([table.column(c).to_numpy().astype(np.float64) for c in chosen])
    # nulls (and NaN) under the missing-value policy, as in a text file or a dataset
    where = label(path)
    X, notes = apply_missing(X, np.isnan(X), chosen, options.missing, where)
    return Table(X, chosen, tuple(_left_out_note(left_out) + notes))


def _read_text(path: Path | str, options: ReadOptions, stdin: bytes | None = None) -> Table:
    require_pyarrow()
    where = label(path)
    fmt, kinds = text.describe(path, options.text, stdin)
    chosen = _text_columns(fmt, kinds, options, where)
    numbers, missing = text.read_numeric(path, fmt, chosen, options.text, stdin)
    X, dropped = apply_missing(numbers, missing, chosen, options.missing, where)
    notes = text.text_notes(fmt, kinds, chosen, bool(options.columns)) + dropped
    return Table(X, chosen, tuple(notes))


def _text_columns(
    fmt: text.TextFormat, kinds: text.TextColumns, options: ReadOptions, where: str
) -> list[str]:
    names = [n for n in kinds.names if n != kinds.row_names]
    if not kinds.numeric and not options.columns:
        shown = "'" + (fmt.delimiter if not fmt.whitespace else "whitespace") + "'"
        raise GaussmixError(
            f"{where} has no numeric column ({', '.join(names)} read as text, split on "
            f"{shown} with decimal mark '{fmt.decimal}'); check --sep and --decimal"
        )
    chosen = resolve_columns(names, options.columns, options.drop, where, kinds.numeric)
    _refuse_text(chosen, kinds.left_out, where)
    return chosen


def _check_path(path: Path) -> None:
    if path.is_dir():
        raise GaussmixError(
            f"{path} is a folder; give a data file ({', '.join(SUFFIXES)}, or - for standard input)"
        )
    if not path.exists():
        raise GaussmixError(f"no such file: {path}")


def _looks_binary(path: Path) -> bool:
    with path.open("rb") as f:
        return b"\0" in f.read(4096)


def read_table(
    path: str | Path,
    columns: Sequence[str] | None = None,
    options: ReadOptions | None = None,
) -> Table:
    """Read a data file into memory: ``.npy``, ``.parquet``/``.pq``, ``-`` (standard input) or
    a text table (any other name). ``columns`` (names or 1-based numbers) overrides
    ``options.columns``."""
    options = options or ReadOptions()
    if columns is not None:
        options = replace(options, columns=tuple(columns))
    if str(path) == "-":
        return _read_text("-", options, text.read_stdin())
    path = Path(path)
    _check_path(path)
    suffix = path.suffix.lower()
    if suffix in NPY:
        table = _read_npy(path)
        chosen = resolve_columns(table.columns, options.columns, options.drop, str(path))
        index = [table.columns.index(c) for c in chosen]
        X = table.X if index == list(range(len(table.columns))) else np.asarray(table.X[:, index])
        X, notes = apply_missing(X, np.isnan(X), chosen, options.missing, label(path))
        return Table(X, chosen, tuple(notes))
    if suffix in PARQUET:
        return _read_parquet(path, options)
    if suffix == ".npz":
        raise GaussmixError(
            f"{path} is a NumPy archive (a saved model?), not a data table; give the data "
            "as .csv, .npy or .parquet"
        )
    if _looks_binary(path):
        raise GaussmixError(
            f"{path} is not a text table (it holds binary data); gaussmix reads "
            f"{', '.join(SUFFIXES)}"
        )
    return _read_text(path, options)


# ------------------------------------------------------------------ streaming text
@dataclass(frozen=True)
class CsvSource:
    """Rows of a text table, parsed block by block on every pass (pyarrow's ``open_csv``);
    rows with missing values are dropped on every pass when the policy says so."""

    path: Path
    fmt: text.TextFormat
    columns: list[str]
    options: TextOptions
    n_samples: int
    drop_missing: bool
    sample_weight: NDArray[np.float64] | None = None

    @classmethod
    def open(cls, path: Path, options: ReadOptions) -> tuple[CsvSource, list[str]]:
        """One pass to count the rows and check for missing values; the source and its notes."""
        where = label(path)
        fmt, kinds = text.describe(path, options.text)
        chosen = _text_columns(fmt, kinds, options, where)
        holes = count_holes(
            missing for _, missing in text.stream_numeric(path, fmt, chosen, options.text)
        )
        notes = text.text_notes(fmt, kinds, chosen, bool(options.columns))
        notes += holes_notes(holes, chosen, options.missing, where)
        notes.append(
            f"{where} is read block by block on every pass (larger than {STREAM_BYTES >> 20} MiB)"
        )
        drop = options.missing == "drop"
        source = cls(path, fmt, chosen, options.text, holes.kept(options.missing), drop)
        return source, notes

    @property
    def n_features(self) -> int:
        return len(self.columns)

    def _blocks(self) -> Iterator[NDArray[np.float64]]:
        for X, missing in text.stream_numeric(self.path, self.fmt, self.columns, self.options):
            yield X[~missing.any(axis=1)] if self.drop_missing else X

    def chunks(
        self, rows: int
    ) -> Iterator[tuple[NDArray[np.floating], NDArray[np.float64] | None]]:
        return with_their_weights(rebatch(self._blocks(), rows), self.sample_weight)

    def with_weights(self, sample_weight: NDArray[np.float64] | None) -> CsvSource:
        return replace(self, sample_weight=sample_weight)

    def take(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        from gaussmix.data.sources import take_by_scan

        return take_by_scan(self, indices)


# ------------------------------------------------------------------ for fitting
@dataclass(frozen=True)
class Loaded:
    """Data opened for fitting: rows in memory or a block-by-block source, column names, the
    standardisation applied (None without --scale) and the notes to show."""

    X: Any  # NDArray[np.floating] or a DataSource
    columns: list[str]
    scaling: dict[str, list[float]] | None
    notes: tuple[str, ...]


def open_data(
    path: str | Path,
    options: ReadOptions | None = None,
    scale: bool = False,
    dask: bool = False,
) -> Loaded:
    """The rows of a data file for fitting. ``.npy`` and Parquet files, and text files over
    ``STREAM_BYTES``, are sources read block by block on every pass (unless ``scale`` needs
    the rows in memory, or ``.npy`` columns are chosen); everything else is an array. A
    directory or glob of Parquet files (and, with ``dask``, one Parquet file) is a source on
    the active Dask client (``open_dataset``)."""
    from gaussmix.data.dask_source import is_dataset_path

    options = options or ReadOptions()
    if dask or (str(path) != "-" and is_dataset_path(path)):
        return open_dataset(path, options, scale)
    if str(path) != "-" and not scale:
        path = Path(path)
        _check_path(path)
        suffix = path.suffix.lower()
        if suffix in NPY and not options.columns and not options.drop:
            from gaussmix.data.sources import NpySource

            npy = NpySource.open(path)
            names = default_names(npy.n_features)
            source, notes = _with_policy(npy, names, options, path)
            return Loaded(source, names, None, tuple(notes))
        if suffix in PARQUET:
            from gaussmix.data.sources import ParquetSource

            require_pyarrow()
            chosen, left_out = _parquet_columns(path, options)
            parquet, notes = _with_policy(
                ParquetSource.open(path, columns=chosen), chosen, options, path
            )
            return Loaded(parquet, chosen, None, tuple(_left_out_note(left_out) + notes))
        if (
            suffix not in NPY + PARQUET + (".npz",)
            and os.path.getsize(path) > STREAM_BYTES
            and not _looks_binary(path)
        ):
            require_pyarrow()
            csv_source, notes = CsvSource.open(path, options)
            return Loaded(csv_source, csv_source.columns, None, tuple(notes))
    table = read_table(path, options=options)
    if not scale:
        return Loaded(table.X, table.columns, None, table.notes)
    X, center, spread = standardize(table.X)
    scaling = {"center": center.tolist(), "scale": spread.tolist()}
    return Loaded(X, table.columns, scaling, table.notes)


def _with_policy(
    source: DataSource, columns: list[str], options: ReadOptions, path: Path
) -> tuple[DataSource, list[str]]:
    """A file source (``.npy``, Parquet) under the missing-value policy, its NaN (nulls)
    counted in one pass as a large text file's are: fitted by EM with the note, refused in the
    text reader's words, or their rows left out on every pass (``RowsWithoutHoles``)."""
    from gaussmix.data.sources import RowsWithoutHoles

    holes = count_holes(np.isnan(block) for block, _ in source.chunks(SCAN_ROWS))
    notes = holes_notes(holes, columns, options.missing, label(path))
    if options.missing == "drop" and holes.rows:
        return RowsWithoutHoles(source, holes.kept("drop")), notes
    return source, notes


def open_dataset(path: str | Path, options: ReadOptions, scale: bool = False) -> Loaded:
    """A directory or glob of Parquet files (or one Parquet file) as a ``DaskSource`` on the
    active Dask client, read as one Parquet file is: the columns chosen by name or number and
    the text columns left out by the first file's schema, the missing-value policy applied,
    and with ``scale`` the columns standardised by their mean and standard deviation reduced
    on the cluster (over the observed values, as ``standardize``)."""
    from gaussmix.data.dask_source import (
        DaskSource,
        column_moments,
        missing_summary,
        parquet_dataset,
    )

    where = str(path)
    chosen, left_out = dataset_columns(path, options)
    frame = parquet_dataset(path, chosen)
    notes = _left_out_note(left_out)
    if options.missing == "drop":
        n_rows = len(frame)
        source = DaskSource.open(frame.dropna())
        if source.n_samples == 0:
            raise GaussmixError(f"{where} has no rows of data left")
        if source.n_samples < n_rows:
            notes.append(dropped_note(n_rows - source.n_samples, n_rows))
    else:
        # the policy's refusals in the text reader's words, from counts taken on the cluster
        source = DaskSource.open(frame, allow_nan=True, fitting=False)
        if source.n_missing:
            holes = missing_summary(source.X)
            if options.missing == "error":
                first = (holes.first_row, chosen[holes.first_column])
                raise missing_error(where, holes.values, holes.rows, first)
            check_fittable(holes.empty_rows, holes.first_empty, holes.unobserved, chosen, where)
            notes.append(fitted_note(holes.values, holes.rows))
    if not scale:
        return Loaded(source, chosen, None, tuple(notes))
    center, spread = column_moments(source.X)
    spread = unit_spread(spread)
    scaled = DaskSource.open((source.X - center) / spread, allow_nan=True)
    scaled = DaskSource(scaled.X, None, chosen, scaled.n_missing)
    scaling = {"center": center.tolist(), "scale": spread.tolist()}
    return Loaded(scaled, chosen, scaling, tuple(notes))


def dataset_columns(path: str | Path, options: ReadOptions) -> tuple[list[str], list[str]]:
    """The numeric columns chosen from a Parquet dataset (a directory, a glob or one file) by
    its first file's schema, and the text ones left out; every file's schema is read (its
    footer, not its rows) for names given twice and for the chosen columns, so that what is
    wrong with the files is said before a cluster starts."""
    from gaussmix.data.dask_source import parquet_files

    files = parquet_files(path)
    require_pyarrow()
    chosen, left_out = _parquet_columns(Path(files[0]), options, str(path))
    for file in files[1:]:
        names = list(_parquet_schema(Path(file)).names)
        check_unique_names(names, f"{file}: the schema")
        lacking = [c for c in chosen if c not in names]
        if lacking:
            raise GaussmixError(
                f"{file} has no column {', '.join(map(repr, lacking))}, which {files[0]} has; "
                f"every file of {path} needs the columns fitted (choose common ones with "
                "--columns)"
            )
    return chosen, left_out


def unit_spread(scale: NDArray[np.float64]) -> NDArray[np.float64]:
    """The standard deviations ``standardize`` divides by: a constant column's 0 is 1 (it is
    only centred)."""
    return np.where(scale == 0, 1.0, scale)


def standardize(
    X: NDArray[np.floating],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(X - mean) / std per column over the observed values (NaN stays NaN); returns the scaled
    data, the means and the scales."""
    X = np.asarray(X, dtype=np.float64)
    center = np.nanmean(X, axis=0)
    scale = unit_spread(np.nanstd(X, axis=0))
    return (X - center) / scale, center, scale


def read_data(
    path: str | Path, columns: Sequence[str] | None = None, scale: bool = False
) -> tuple[NDArray[np.floating], list[str], dict[str, list[float]] | None]:
    """Read a data file into memory for fitting: the rows (n, D), their column names and, with
    ``scale``, the standardisation applied ({"center": (D,), "scale": (D,)})."""
    table = read_table(path, columns)
    if not scale:
        return table.X, table.columns, None
    X, center, spread = standardize(table.X)
    return X, table.columns, {"center": center.tolist(), "scale": spread.tolist()}


def unstandardize(
    X: NDArray[np.floating], scaling: dict[str, list[float]] | None
) -> NDArray[np.float64]:
    """Undo ``standardize``: X * scale + center, shape (n, D); X itself when ``scaling`` is None."""
    rows: NDArray[np.float64] = np.asarray(X, dtype=np.float64)
    if not scaling:
        return rows
    return rows * np.asarray(scaling["scale"]) + np.asarray(scaling["center"])
