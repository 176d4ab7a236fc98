"""mclust's hierarchical start: the merge sequence of its hcVVV on SVD-scaled data."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.em import hc

# mclust 6.0.0 (Debian's r-cran-mclust): hclass(hc(X, "VVV", use = "SVD"), G) for the 30 rows
# of ``_small()``, one digit per row (cluster numbers in order of first appearance)
MCLUST_HCLASS = {
    2: "111111111111111222222222222222",
    3: "122122212222222333333333333333",
    4: "123122212222322444444444444444",
    5: "123122214442342555555555555555",
    8: "123422245552352666766786767678",
}


def _small() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.vstack([rng.normal(size=(15, 3)), rng.normal(size=(15, 3)) * 0.5 + 3])


def _canonical(labels: np.ndarray) -> str:
    """Cluster numbers by order of first appearance, from 1."""
    order: dict[int, int] = {}
    return "".join(str(order.setdefault(int(v), len(order) + 1)) for v in labels)


@pytest.mark.parametrize("k", sorted(MCLUST_HCLASS))
def test_merge_sequence_is_mclusts(k: int) -> None:
    groups, merges = hc.hc_tree(hc.svd_scaled(_small()))
    assert merges.shape == (29, 2)
    assert _canonical(hc.cut(groups, merges, k)) == MCLUST_HCLASS[k]


def test_first_merge_is_the_closest_pair_and_identical_rows_start_together() -> None:
    Z = np.array([[0.0, 0.0], [5.0, 5.0], [0.1, 0.0], [5.0, 5.0], [9.0, 0.0]])
    groups, merges = hc.hc_tree(Z)
    assert groups[1] == groups[3] and len(set(groups.tolist())) == 4
    first = sorted(np.flatnonzero(np.isin(groups, merges[0])).tolist())
    assert first == [0, 2]
    assert _canonical(hc.cut(groups, merges, 1)) == "11111"


def test_svd_scaling_whitens_the_standardised_data() -> None:
    X = _small() * [1.0, 100.0, 0.01]
    Z = hc.svd_scaled(X)
    # Z' Z = diag(singular values) of the standardised data: orthogonal columns
    gram = Z.T @ Z
    np.testing.assert_allclose(gram, np.diag(np.diag(gram)), atol=1e-10)


def test_hc_init_is_shared_and_deterministic() -> None:
    X = _small()
    hc._TREES.clear()
    a = GaussianMixture(3, covariance_type="VEV", init_params="hc").fit(X)
    b = GaussianMixture(2, covariance_type="EII", init_params="hc").fit(X)
    assert len(hc._TREES) == 1  # one tree for both fits
    again = GaussianMixture(3, covariance_type="VEV", init_params="hc", random_state=7).fit(X)
    np.testing.assert_allclose(again.means_, a.means_)
    assert b.converged_


def test_hc_needs_as_many_distinct_rows_as_components() -> None:
    X = np.repeat([[0.0, 1.0], [2.0, 3.0]], 5, axis=0)
    with pytest.raises(ValueError, match="needs 3 distinct rows to start 3 components"):
        hc.hc_resp(X, 3)
