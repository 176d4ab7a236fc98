"""Where rows come from: in-memory arrays and memory maps, files; each walked in blocks."""

from gaussmix.data.sources import ArraySource, DataSource, default_chunk_size

__all__ = ["ArraySource", "DataSource", "default_chunk_size"]
