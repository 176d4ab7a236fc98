"""Where rows come from: in-memory arrays and memory maps, ``.npy`` and Parquet files, each
walked in blocks; and readers of CSV/TSV/.npy/Parquet tables."""

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
    "DataSource",
    "NpySource",
    "ParquetSource",
    "default_chunk_size",
    "open_source",
]
