"""The options of every command that reads a data file (fit, select, predict, info --data).

They are declared once here, as ``Annotated`` types, and turned into one
``gaussmix.data.files.ReadOptions`` by ``read_options``; the reading itself, and every decision on
formats, columns and missing values, belongs to ``gaussmix.data``. ``print_notes`` shows what
the reader reports (columns left out, rows dropped) as ``note:`` lines on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from gaussmix.data.files import ReadOptions

DATA_HELP = (
    "Data: a text table (.csv, .tsv, .txt: separator and header detected), .npy, .parquet, "
    "or - for standard input."
)

Columns = Annotated[
    str | None,
    typer.Option("--columns", help="Columns to use, by name or 1-based number: a,b or 1,3."),
]
Drop = Annotated[
    str | None,
    typer.Option("--drop", help="Columns to leave out, by name or 1-based number."),
]
Sep = Annotated[
    str | None,
    typer.Option("--sep", help="Field separator: ',', ';', tab or whitespace (default: detected)."),
]
Decimal = Annotated[
    str | None,
    typer.Option(
        "--decimal",
        help="Decimal mark: . or , (default: '.', ',' detected in ';'-separated files).",
    ),
]
NaValues = Annotated[
    str | None,
    typer.Option(
        "--na-values",
        help="More spellings of a missing value, comma-separated (empty, NA, NaN, null and ? "
        "always are).",
    ),
]
DropNa = Annotated[
    bool,
    typer.Option(
        "--dropna",
        help="Leave out rows with missing values (default: fit them, integrated out).",
    ),
]


def read_options(
    columns: str | None,
    drop: str | None = None,
    sep: str | None = None,
    decimal: str | None = None,
    na_values: str | None = None,
    dropna: bool = False,
) -> ReadOptions:
    """The command line's data options as one ``ReadOptions``."""
    from gaussmix.data.files import DEFAULT_MISSING, ReadOptions, parse_list
    from gaussmix.data.text import TextOptions

    if decimal is not None and decimal not in (".", ","):
        raise typer.BadParameter(f"{decimal!r}: use . or ,", param_hint="--decimal")
    return ReadOptions(
        columns=parse_list(columns),
        drop=parse_list(drop, "--drop") or (),
        text=TextOptions(
            sep=sep,
            decimal=decimal,
            na_values=tuple(v.strip() for v in (na_values or "").split(",") if v.strip()),
        ),
        missing="drop" if dropna else DEFAULT_MISSING,
    )


def print_notes(notes: tuple[str, ...] | list[str]) -> None:
    """What the reader reports, one ``note:`` line each on stderr."""
    for note in notes:
        sys.stderr.write(f"note: {note}\n")


def data_name(path: Path) -> str:
    """How tables name a data file ('standard input' for -)."""
    return "standard input" if str(path) == "-" else path.name
