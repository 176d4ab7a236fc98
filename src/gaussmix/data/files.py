"""Reading data files: CSV and TSV (header detected), ``.npy`` (memory-mapped) and Parquet.

Every reader returns a ``Table``: a 2-D float array and its column names. Errors name the file
and say what to try; nothing here prints.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".npy", ".parquet", ".pq")


@dataclass(frozen=True)
class Table:
    """Numeric data read from a file: ``X`` (n, D) and its ``columns`` (D names)."""

    X: NDArray[np.floating]
    columns: list[str]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _delimiter(path: Path, first_line: str) -> str | None:
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    if path.suffix.lower() == ".csv":
        return ","
    try:
        return csv.Sniffer().sniff(first_line, delimiters=",\t;").delimiter
    except csv.Error:
        return None  # whitespace


def _read_text(path: Path) -> Table:
    with path.open(encoding="utf-8-sig") as f:
        text = f.read()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path} is empty; it needs a header line (optional) and rows of numbers")
    delimiter = _delimiter(path, lines[0])
    fields = next(csv.reader([lines[0]], delimiter=delimiter or " ", skipinitialspace=True))
    fields = [f.strip() for f in fields if f.strip() or delimiter]
    has_header = not all(_is_number(f) for f in fields)
    body = lines[1:] if has_header else lines
    if not body:
        raise ValueError(f"{path} has a header but no rows of data")
    try:
        X = np.loadtxt(io.StringIO("\n".join(body)), delimiter=delimiter, ndmin=2)
    except ValueError as exc:
        raise ValueError(
            f"{path}: {exc}; every value after the header must be a number "
            "(use --columns to pick numeric columns)"
        ) from None
    columns = fields if has_header else [f"x{i}" for i in range(X.shape[1])]
    if len(columns) != X.shape[1]:
        raise ValueError(
            f"{path} has {len(columns)} header fields but {X.shape[1]} columns of numbers"
        )
    return Table(X, columns)


def _read_npy(path: Path) -> Table:
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{path} is not a readable numeric .npy file ({exc})") from None
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise ValueError(f"{path} holds a {X.ndim}-D array; gaussmix needs rows x features (2-D)")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{path} holds {X.dtype} values; gaussmix needs numbers")
    return Table(X, [f"x{i}" for i in range(X.shape[1])])


def require_pyarrow() -> None:
    """ImportError with the install command when pyarrow is missing."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError(
            "reading Parquet needs pyarrow: pip install 'gaussmix[parquet]'"
        ) from None


def _read_parquet(path: Path, columns: Sequence[str] | None) -> Table:
    require_pyarrow()
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=list(columns) if columns else None)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable Parquet file ({exc})") from None
    names = list(table.column_names)
    try:
        X = np.column_stack([table.column(c).to_numpy().astype(np.float64) for c in names])
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{path} has non-numeric columns ({exc}); pick numeric ones with --columns"
        ) from None
    return Table(X, names)


def select_columns(table: Table, columns: Sequence[str] | None) -> Table:
    """Keep the named columns, in the order given."""
    if not columns:
        return table
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"no column named {', '.join(map(repr, missing))}; the columns are "
            f"{', '.join(table.columns)}"
        )
    index = [table.columns.index(c) for c in columns]
    return Table(np.asarray(table.X[:, index]), list(columns))


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> Table:
    """Read a data file by its suffix (.csv, .tsv, .txt, .npy, .parquet)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        table = _read_npy(path)
    elif suffix in (".parquet", ".pq"):
        table = _read_parquet(path, columns)
    elif suffix in (".csv", ".tsv", ".tab", ".txt", ""):
        table = _read_text(path)
    else:
        raise ValueError(
            f"cannot read {path.name}: unknown file type {suffix!r}; use one of "
            f"{', '.join(SUFFIXES)}"
        )
    return select_columns(table, columns)


def standardize(
    X: NDArray[np.floating],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(X - mean) / std per column; returns the scaled data, the means and the scales."""
    X = np.asarray(X, dtype=np.float64)
    center = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    return (X - center) / scale, center, scale


def parse_columns(text: str | None) -> list[str] | None:
    """Column names from a comma-separated option (``--columns a,b``); None when not given."""
    if text is None:
        return None
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise ValueError(f"--columns {text!r} names no column; give names separated by commas")
    return names


def read_data(
    path: str | Path, columns: Sequence[str] | None = None, scale: bool = False
) -> tuple[NDArray[np.floating], list[str], dict[str, list[float]] | None]:
    """Read a data file for fitting: the rows (n, D), their column names and, with ``scale``,
    the standardisation applied ({"center": (D,), "scale": (D,)}, as saved with a model)."""
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
