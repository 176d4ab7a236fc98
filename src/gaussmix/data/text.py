"""Text tables (CSV, TSV, whitespace-separated) read with pyarrow's CSV reader.

The choice is pyarrow, not pandas: it is already needed for Parquet, it parses in C++ on every
core, and its streaming reader (``open_csv``) walks a file larger than memory block by block, as
the ``.npy`` and Parquet sources do. What pyarrow does not do is done around it, on the bytes:

- the format is sniffed from the first lines (``sniff``): the separator (tab, semicolon, comma,
  then runs of whitespace, in that order of preference, the first that splits every line alike
  into more than one field), a header (the first line is not all numbers), decimal commas (a
  semicolon-separated file whose fields look like ``1,5``), R's row names (an empty first
  header field over a column counting 1, 2, 3, ...);
- ``#`` comment lines are blanked on the way in (``_Cleaned``), keeping physical line numbers,
  and runs of whitespace become one space for whitespace-separated files;
- column types come from a sample of the first lines: numeric columns are read as float64 and
  the others are left out with a note; missing values (empty, NA, NaN, null, ?, ...) become
  nulls and are dealt with by ``MissingPolicy`` in ``gaussmix.data.files``.

Errors are ``GaussmixError`` in our words: file, 1-based line or row, column name, what was
found and what to try. Notes (what was left out, what was detected) are returned, never printed.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from gaussmix.data.sources import check_unique_names
from gaussmix.errors import GaussmixError

# what reads as a missing value, beside the user's --na-values (R's and pandas' usual spellings)
NA_VALUES = ("", "NA", "N/A", "n/a", "NaN", "nan", "NAN", "null", "NULL", "None", "?", "#N/A")
SAMPLE_BYTES = 1 << 20  # the first MiB decides separator, header and column types
SAMPLE_LINES = 200
BLOCK_BYTES = 1 << 22  # pyarrow's block; also the unit of the cleaning filter
SEPARATORS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "space": " "}
WHITESPACE = " "  # the separator after runs of blanks are squeezed to one space

_NUMBER = re.compile(r"^\s*[-+]?(\d+([.]\d*)?|[.]\d+)([eE][-+]?\d+)?\s*$")
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+\s*$")
_COMMENT = re.compile(rb"(?m)^[ \t]*#[^\r\n]*")
_BLANKS = re.compile(rb"[ \t]+")
_EDGE_BLANKS = re.compile(rb"(?m)^ | $")


@dataclass(frozen=True)
class TextFormat:
    """What ``sniff`` found: how to split, whether there is a header, the decimal mark."""

    delimiter: str  # WHITESPACE for runs of blanks
    header: bool
    decimal: str
    names: tuple[str, ...]  # every column of the file, in order (x0, x1, ... without a header)
    notes: tuple[str, ...] = ()
    short_header: bool = False  # R's write.table: the header lacks the row names' field

    @property
    def given_names(self) -> bool:
        """Whether pyarrow is told the names (no header, or a header one field short)."""
        return not self.header or self.short_header

    @property
    def whitespace(self) -> bool:
        return self.delimiter == WHITESPACE


@dataclass(frozen=True)
class TextOptions:
    """The user's say over the reading: ``sep`` and ``decimal`` (None: detected),
    ``na_values`` beside ``NA_VALUES``."""

    sep: str | None = None
    decimal: str | None = None
    na_values: tuple[str, ...] = ()

    @property
    def nulls(self) -> list[str]:
        return list(dict.fromkeys((*NA_VALUES, *self.na_values)))


@dataclass
class TextColumns:
    """The columns of a text file: which are numeric, which were left out and why."""

    names: list[str]  # all of them
    numeric: list[str]
    left_out: list[str] = field(default_factory=list)  # text columns
    row_names: str | None = None  # R's row-name column, left out


def label(path: Path | str) -> str:
    """How messages name a file ('standard input' for ``-``)."""
    return "standard input" if str(path) == "-" else str(path)


# ------------------------------------------------------------------ bytes in
class _Cleaned(io.RawIOBase):
    """A binary stream with ``#`` comment lines blanked (their newline kept, so that line
    numbers stay the file's) and, for whitespace-separated text, runs of blanks squeezed."""

    def __init__(self, raw: IO[bytes], whitespace: bool, blank_header: bool = False) -> None:
        self._raw = raw
        self._whitespace = whitespace
        self._blank_header = blank_header  # the header line is blanked too (names are given)
        self._pending = b""  # cleaned bytes not yet handed out
        self._tail = b""  # an unfinished line, cleaned with the next block
        self._done = False

    def readable(self) -> bool:
        return True

    def _clean(self, data: bytes) -> bytes:
        if b"#" in data:
            data = _COMMENT.sub(b"", data)
        if self._whitespace:
            data = data.replace(b"\r\n", b"\n")
            data = _EDGE_BLANKS.sub(b"", _BLANKS.sub(b" ", data))
        return data

    def _fill(self) -> None:
        while not self._pending and not self._done:
            block = self._raw.read(BLOCK_BYTES)
            if not block:
                self._done = True
                self._pending = self._clean(self._tail)
                self._tail = b""
                return
            data = self._tail + block
            cut = data.rfind(b"\n") + 1
            self._tail = data[cut:]
            self._pending = self._clean(data[:cut])
            if self._blank_header and self._pending:
                self._pending, found = _blank_first_line(self._pending)
                self._blank_header = not found

    def readinto(self, buffer: Any) -> int:
        self._fill()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _blank_first_line(data: bytes) -> tuple[bytes, bool]:
    """``data`` with its first non-blank line emptied (newline kept), and whether there was one."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        if data[start:end].strip().removeprefix(b"\xef\xbb\xbf"):
            return data[:start] + data[end:], True
        start = end + 1
    return data, False


def _open_bytes(path: Path | str, stdin: bytes | None) -> IO[bytes]:
    if str(path) == "-":
        return io.BytesIO(stdin if stdin is not None else b"")
    return Path(path).open("rb")


def read_stdin() -> bytes:
    """All of standard input (it can be read only once, so it is kept in memory)."""
    return sys.stdin.buffer.read()


# ------------------------------------------------------------------ sniffing
def _sample_lines(head: bytes, complete: bool) -> list[str]:
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    lines = text.splitlines()
    if not complete and lines:
        lines = lines[:-1]  # the last line of a cut sample may be unfinished
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _split(line: str, delimiter: str) -> list[str]:
    if delimiter == WHITESPACE:
        return line.split()
    return next(csv.reader([line], delimiter=delimiter))


def _is_number(text: str, decimal: str) -> bool:
    if decimal != ".":
        text = text.replace(decimal, ".")
    return bool(_NUMBER.match(text))


def _consistent(lines: Sequence[str]) -> str | None:
    """The first separator that splits every line into the same number (> 1) of fields."""
    for delimiter in ("\t", ";", ",", WHITESPACE):
        counts = {len(_split(line, delimiter)) for line in lines}
        if len(counts) == 1 and counts.pop() > 1:
            return delimiter
    return None


def _guess_delimiter(lines: Sequence[str]) -> str:
    # every line alike, or else the rows alike (a header one field short: R's row names)
    found = _consistent(lines) or (_consistent(lines[1:]) if len(lines) > 2 else None)
    if found is not None:
        return found
    # no separator splits every line alike (a ragged file): the one most lines agree on
    for delimiter in ("\t", ";", ","):
        if any(len(_split(line, delimiter)) > 1 for line in lines):
            return delimiter
    return WHITESPACE


def _delimiter_of(sep: str) -> str:
    if sep.lower() in ("whitespace", "space", " "):
        return WHITESPACE
    sep = SEPARATORS.get(sep.lower(), sep)
    if len(sep) != 1:
        raise GaussmixError(
            f"--sep {sep!r} is not one character; use e.g. ',', ';', tab or whitespace"
        )
    return sep


def sniff(head: bytes, complete: bool, options: TextOptions, where: str) -> TextFormat:
    """The format of a text table from its first bytes ``head`` (all of it when ``complete``)."""
    lines = _sample_lines(head, complete)[:SAMPLE_LINES]
    if not lines:
        raise GaussmixError(
            f"{where} is empty (no line of data, only blank or # comment lines); it needs rows "
            "of numbers, with an optional header line first"
        )
    notes: list[str] = []
    delimiter = _delimiter_of(options.sep) if options.sep else _guess_delimiter(lines)
    decimal = options.decimal or "."
    if options.decimal is None and delimiter == ";":
        fields = [f for line in lines[1:] for f in _split(line, delimiter)]
        if fields and any(_DECIMAL_COMMA.match(f) for f in fields):
            decimal = ","
            notes.append("read decimal commas (1,5 as 1.5) in this ';'-separated file")
    first = [f.strip() for f in _split(lines[0], delimiter)]
    header = not all(_is_number(f, decimal) for f in first)
    names = tuple(first) if header else tuple(f"x{i}" for i in range(len(first)))
    if header and len(lines) == 1:
        raise GaussmixError(f"{where} has a header ({', '.join(first)}) but no rows of data")
    # R's write.table: every row one field longer than the header, the first being a row name
    short = header and {len(_split(line, delimiter)) for line in lines[1:]} == {len(first) + 1}
    if short:
        names = ("", *names)
    return TextFormat(delimiter, header, decimal, names, tuple(notes), short)


# ------------------------------------------------------------------ pyarrow
def _arrow_options(
    fmt: TextFormat,
    options: TextOptions,
    column_types: dict[str, Any] | None = None,
    include: Sequence[str] | None = None,
) -> tuple[Any, Any, Any]:
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(
        block_size=BLOCK_BYTES,
        column_names=list(fmt.names) if fmt.given_names else None,
        autogenerate_column_names=False,
    )
    parse = pacsv.ParseOptions(delimiter=fmt.delimiter, ignore_empty_lines=True)
    convert = pacsv.ConvertOptions(
        null_values=options.nulls,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        decimal_point=fmt.decimal,
        column_types=column_types,
        include_columns=list(include) if include is not None else None,
    )
    return read, parse, convert


def _column_kinds(
    sample: bytes, complete: bool, fmt: TextFormat, options: TextOptions, where: str
) -> TextColumns:
    """Numeric and text columns, judged on the sample; R's row names recognised."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not complete:
        sample = sample[: sample.rfind(b"\n") + 1]
    read, parse, convert = _arrow_options(fmt, options)
    try:
        table = pacsv.read_csv(
            _Cleaned(io.BytesIO(sample), fmt.whitespace, fmt.short_header),
            read_options=read,
            parse_options=parse,
            convert_options=convert,
        )
    except pa.ArrowInvalid as exc:
        raise explain(exc, sample, fmt, where) from None
    names = [str(n) for n in table.column_names]
    check_unique_names(names, f"{where}: the header")
    columns = TextColumns(names, [])
    for name, column in zip(names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind):
            columns.numeric.append(name)
        else:
            columns.left_out.append(name)
    if fmt.header and names and names[0] == "":
        first = table.column(0)
        counts = pa.types.is_integer(first.type) and np.array_equal(
            first.to_numpy(zero_copy_only=False), np.arange(1, len(first) + 1)
        )
        if counts or names[0] in columns.left_out:
            columns.row_names = names[0]
            for group in (columns.numeric, columns.left_out):
                if names[0] in group:
                    group.remove(names[0])
    return columns


_PARSE = re.compile(r"Expected (\d+) columns, got (\d+)")
_CONVERT = re.compile(r"In CSV column #(\d+): .*invalid value '(.*)'", re.S)


def explain(exc: Exception, data: bytes | Path, fmt: TextFormat, where: str) -> GaussmixError:
    """pyarrow's complaint about a text file, in our words, with the line it is about."""
    message = str(exc)
    ragged = _PARSE.search(message)
    if ragged:
        expected = int(ragged[1])
        line, fields = _find_line(data, fmt, lambda cells: len(cells) != expected)
        return GaussmixError(
            f"{where}, line {line}: {len(fields)} field(s) where the header has {expected} "
            f"({_short(fields, fmt)}); every row needs the same number of fields: check the "
            "separator (--sep) or quote the fields that contain it"
        )
    bad = _CONVERT.search(message)
    if bad:
        names = list(fmt.names)  # pyarrow counts the file's columns, included or not
        column = names[int(bad[1])] if int(bad[1]) < len(names) else f"#{int(bad[1]) + 1}"
        value = bad[2]
        position = fmt.names.index(column) if column in fmt.names else -1
        line, _ = _find_line(
            data, fmt, lambda cells: position < len(cells) and cells[position].strip() == value
        )
        return GaussmixError(
            f"{where}, line {line}, column {column!r}: {value!r} is not a number (the lines "
            f"before look numeric); mark it missing with --na-values {value!r} or leave the "
            f"column out with --drop {column!r}"
        )
    return GaussmixError(f"{where} cannot be read as a table of numbers: {message}")


def _short(fields: Sequence[str], fmt: TextFormat) -> str:
    text = (" " if fmt.whitespace else fmt.delimiter).join(fields)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _find_line(data: bytes | Path, fmt: TextFormat, bad: Any) -> tuple[int | str, list[str]]:
    """The first (1-based) physical line after the header whose fields satisfy ``bad``."""
    stream: IO[bytes] = io.BytesIO(data) if isinstance(data, bytes) else data.open("rb")
    with stream:
        seen_header = not fmt.header
        for number, raw in enumerate(stream, start=1):
            line = raw.decode("utf-8", errors="replace").removeprefix("\ufeff").rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not seen_header:
                seen_header = True
                continue
            cells = _split(line, fmt.delimiter)
            if bad(cells):
                return number, cells
    return "?", []


# ------------------------------------------------------------------ reading
@dataclass(frozen=True)
class TextTable:
    """What a text file holds once read: float64 columns with nulls as NaN, plus notes."""

    X: NDArray[np.float64]
    columns: list[str]
    missing: NDArray[np.bool_]  # (n, D): True where a value was missing
    notes: tuple[str, ...]


def describe(
    path: Path | str,
    options: TextOptions,
    stdin: bytes | None = None,
) -> tuple[TextFormat, TextColumns]:
    """Sniff a text file's format and judge its columns from its first MiB."""
    where = label(path)
    with _open_bytes(path, stdin) as f:
        head = f.read(SAMPLE_BYTES + 1)
    complete = len(head) <= SAMPLE_BYTES
    head = head[:SAMPLE_BYTES]
    fmt = sniff(head, complete, options, where)
    return fmt, _column_kinds(head, complete, fmt, options, where)


def text_notes(
    fmt: TextFormat, columns: TextColumns, chosen: Sequence[str], asked: bool = False
) -> list[str]:
    """The notes on what was detected and left out; text columns only when the columns were
    not ``asked`` for by name (--columns)."""
    notes = list(fmt.notes)
    if columns.row_names is not None and not asked:
        notes.append("left out the unnamed first column (R's row names)")
    text = [] if asked else [c for c in columns.left_out if c not in chosen]
    if text:
        plural = "s" if len(text) > 1 else ""
        notes.append(f"left out {len(text)} text column{plural}: {', '.join(text)}")
    return notes


def read_numeric(
    path: Path | str,
    fmt: TextFormat,
    include: Sequence[str],
    options: TextOptions,
    stdin: bytes | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The ``include`` columns of a text file as float64 (n, D) and where values were missing."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    where = label(path)
    types = {name: pa.float64() for name in include}
    read, parse, convert = _arrow_options(fmt, options, types, include)
    try:
        with _open_bytes(path, stdin) as f:
            table = pacsv.read_csv(
                _Cleaned(f, fmt.whitespace, fmt.short_header),
                read_options=read,
                parse_options=parse,
                convert_options=convert,
            )
    except pa.ArrowInvalid as exc:
        source: bytes | Path = stdin if stdin is not None else Path(path)
        raise explain(exc, source, fmt, where) from None
    return _to_numpy(table)


def _to_numpy(table: Any) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    n = table.num_rows
    X = np.empty((n, table.num_columns), dtype=np.float64)
    missing = np.zeros((n, table.num_columns), dtype=bool)
    for j, column in enumerate(table.columns):
        values = column.to_numpy(zero_copy_only=False)
        X[:, j] = values
        if column.null_count:
            missing[:, j] = column.is_null().to_numpy(zero_copy_only=False)
    return X, missing


def stream_numeric(
    path: Path, fmt: TextFormat, include: Sequence[str], options: TextOptions
) -> Iterator[tuple[NDArray[np.float64], NDArray[np.bool_]]]:
    """The ``include`` columns of a text file, one pyarrow block at a time (open_csv)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {name: pa.float64() for name in include}
    read, parse, convert = _arrow_options(fmt, options, types, include)
    with path.open("rb") as f:
        try:
            reader = pacsv.open_csv(
                _Cleaned(f, fmt.whitespace, fmt.short_header),
                read_options=read,
                parse_options=parse,
                convert_options=convert,
            )
            for batch in reader:
                yield _to_numpy(batch)
        except pa.ArrowInvalid as exc:
            raise explain(exc, path, fmt, label(path)) from None
