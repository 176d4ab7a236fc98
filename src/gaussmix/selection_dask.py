"""``select`` on rows that live on a Dask cluster: the grid's data side, not a second grid.

``select`` keeps its own loop over the cells; for a dask collection it only changes where the
rows are and who runs the passes. The rows are opened once for the whole grid
(``DaskSource.open``: checked, and persisted on the workers when a ``distributed.Client`` is
active), and every cell's ``GaussianMixture`` fits that same source, so each EM pass runs on
the workers (``gaussmix.em.dask_workers``) and only the statistics come back. The cells run one
after another in this process: the cluster is the parallelism, and worker processes of
joblib here would each hold a client and compete for the same workers.

The starts see what a fit's starts see: a uniform sample of ``init_sample_size`` rows gathered
on the workers (all rows up to that size), so the hierarchical start (O(n^2), grown on at most
``hc.HC_MAX_ROWS`` of them) and the k-means ones never need the whole data here. Every cell
with the same seed draws the same sample, so a gathered sample is kept for the next cells
(``SampledOnce``) instead of being gathered again per start. The data's variance (for the
degeneracy rule) and the classification entropy of each fit are reduced on the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import xlogy

from gaussmix.data.dask_source import DaskSource, column_moments

if TYPE_CHECKING:
    from gaussmix.mixture import GaussianMixture

Array = NDArray[np.float64]

# gathered samples kept: a cell's starts draw at most a few distinct ones, the same in every cell
KEPT_SAMPLES = 4


@dataclass(frozen=True)
class SampledOnce(DaskSource):
    """A ``DaskSource`` that keeps the last ``KEPT_SAMPLES`` row samples it gathered, by their
    indices, so that the cells of a grid drawing the same sample gather it once."""

    kept: dict[bytes, tuple[Array, Array | None]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def _sample(self, indices: NDArray[np.intp]) -> tuple[Array, Array | None]:
        key = np.asarray(indices, dtype=np.int64).tobytes()
        if key not in self.kept:
            if len(self.kept) >= KEPT_SAMPLES:
                self.kept.pop(next(iter(self.kept)))
            rows, weights = DaskSource.take(self, indices), DaskSource.take_weights(self, indices)
            self.kept[key] = (rows, weights)
        return self.kept[key]

    def take(self, indices: NDArray[np.intp]) -> Array:
        return self._sample(indices)[0].copy()

    def take_weights(self, indices: NDArray[np.intp]) -> Array | None:
        weights = self._sample(indices)[1]
        return None if weights is None else weights.copy()


def open_rows(X: Any, missing: str) -> tuple[SampledOnce, Array]:
    """The rows of a dask collection for a whole grid, and each feature's variance over its
    observed values (n_features,), reduced on the cluster.

    Parameters
    ----------
    X : dask.array.Array (n_samples, n_features), dask.dataframe.DataFrame of numeric columns
        or a ``DaskSource``.
    missing : 'error' or 'em', as for ``GaussianMixture``.
    """
    source = DaskSource.open(X, allow_nan=missing == "em")
    if source.n_samples < 2:
        raise ValueError(
            f"Found {source.n_samples} sample(s) while a minimum of 2 is required by "
            "GaussianMixture"
        )
    _, sd = column_moments(source.X)
    rows = SampledOnce(source.X, source.weights, source.columns, source.n_missing)
    return rows, sd**2


def _entropy_of_rows(resp: Array) -> Array:
    """-sum_k t_nk log t_nk of each row (m,) of responsibilities (m, K); 0 log 0 = 0."""
    return np.asarray(-xlogy(resp, resp).sum(axis=1))


def classification_entropy(model: GaussianMixture, rows: Any) -> float:
    """EN(t) = -sum_n sum_k t_nk log t_nk of the responsibilities of the rows, summed on the
    cluster (only the number comes here)."""
    import dask.array as da

    resp = model.predict_proba(rows)
    per_row = da.map_blocks(_entropy_of_rows, resp, drop_axis=1, dtype=np.float64)
    return float(per_row.sum().compute())
