"""Where rows come from: in-memory arrays and memory maps, ``.npy`` and Parquet files, each
walked in blocks; Dask collections on their cluster; and readers of CSV/TSV/.npy/Parquet
tables."""

from gaussmix.data.dask_source import DaskSource
from gaussmix.data.sources import (
    ArraySource,
    DataSource,
    NpySource,
    ParquetSource,
    default_chunk_size,
    open_source,
)

__all__ = [
    "ArraySource",
    "DaskSource",
    "DataSource",
    "NpySource",
    "ParquetSource",
    "default_chunk_size",
    "open_source",
]
