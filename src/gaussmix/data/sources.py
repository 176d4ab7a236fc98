"""Data sources: objects that hand the EM loop its rows one block at a time.

The EM loop sees only ``n_features``, ``total_weight`` and ``chunks()``; an in-memory array, a
``numpy.memmap`` or a file read in row groups all look the same to it, and the E-step kernel never
holds more than one block of responsibilities.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

# Working memory of one block of the natural-parameter kernel: rows x (nq + D + K) float64
# values (features and responsibilities), about 6 MB. Measured (benchmarks/README.md): blocks
# that stay in cache beat larger ones by up to 2x, and GEMMs need a few hundred rows to be
# efficient. The reference kernel's (K, rows, D) arrays are then well under 32 MB.
WORKING_BYTES = 6 * 2**20
MIN_ROWS, MAX_ROWS = 256, 65536


def default_chunk_size(n_components: int, n_features: int, n_quadratic: int | None = None) -> int:
    """Rows per block so that the kernel's working arrays take about 6 MB.

    ``n_quadratic`` is the covariance type's number of quadratic features (D (D + 1) / 2 for
    full covariances, the default).
    """
    nq = n_features * (n_features + 1) // 2 if n_quadratic is None else n_quadratic
    rows = WORKING_BYTES // (8 * (nq + n_features + n_components))
    return int(min(MAX_ROWS, max(MIN_ROWS, rows)))


class DataSource(Protocol):
    """Rows in blocks: ``chunks()`` yields (X_block (m, D) float64, weights (m,) or None)."""

    @property
    def n_samples(self) -> int: ...

    @property
    def n_features(self) -> int: ...

    @property
    def total_weight(self) -> float: ...

    def chunks(self) -> Iterator[tuple[Array, Array | None]]: ...


@dataclass(frozen=True)
class ArraySource:
    """Rows of an array-like of shape (n, D): an ndarray or a ``numpy.memmap`` (read per block)."""

    X: NDArray[np.floating]
    sample_weight: Array | None
    chunk_size: int

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def total_weight(self) -> float:
        if self.sample_weight is None:
            return float(self.n_samples)
        return float(self.sample_weight.sum())

    def chunks(self) -> Iterator[tuple[Array, Array | None]]:
        for start in range(0, self.n_samples, self.chunk_size):
            rows = slice(start, start + self.chunk_size)
            block = np.asarray(self.X[rows], dtype=np.float64)
            yield block, None if self.sample_weight is None else self.sample_weight[rows]
