"""Bundled data sets."""

from __future__ import annotations

from importlib.resources import as_file, files

from gaussmix.data.files import Table, read_table


def load_faithful() -> Table:
    """Old Faithful geyser eruptions: 272 rows, columns ``eruptions`` (minutes) and ``waiting``
    (minutes to the next eruption); Azzalini and Bowman (1990), as shipped with R."""
    with as_file(files(__package__) / "faithful.csv") as path:
        return read_table(path)


__all__ = ["load_faithful"]
