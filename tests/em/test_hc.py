"""mclust's hierarchical start: the merge sequence of its hcVVV on SVD-scaled data, and the C
merge loop against the numpy one."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.datasets import load_faithful
from gaussmix.em import compiled, hc

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


# The C merge loop (compiled.hc_merge_loop) against the numpy one (hc._merge_loop): every cost
# is computed in the same order, so the merges are equal, ties (equal costs) included.
needs_c = pytest.mark.skipif(not compiled.AVAILABLE, reason="the C loops were not built here")


def _both(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, n, means, alpha = hc._start(Z)
    want = hc._merge_loop(n.copy(), means.copy(), alpha)
    got = compiled.hc_merge_loop(n, means, alpha)
    assert got is not None
    return got, want


@needs_c
@pytest.mark.parametrize("n_features", range(1, 11))
@pytest.mark.parametrize("kind", ["normal", "rounded", "lattice"])
def test_the_c_merge_loop_equals_numpy(n_features: int, kind: str) -> None:
    rng = np.random.default_rng(n_features)
    if kind == "normal":  # SVD-scaled, as hc_resp grows its trees
        Z = hc.svd_scaled(rng.normal(size=(45, n_features)) * rng.uniform(0.5, 3, n_features))
    elif kind == "rounded":  # repeated rows and many near-equal costs
        Z = hc.svd_scaled(np.round(rng.normal(size=(45, n_features)), 1))
    else:  # integer points: equal differences, so many exactly equal costs
        Z = rng.integers(0, 6 if n_features <= 2 else 3, size=(40, n_features)).astype(float)
    got, want = _both(Z)
    np.testing.assert_array_equal(got, want)


@needs_c
def test_the_c_merge_loop_equals_numpy_on_bundled_sets() -> None:
    from sklearn.datasets import load_diabetes, load_iris, load_wine

    wine = load_wine().data
    sets = [load_faithful().X, load_iris().data, load_diabetes().data[:150]]
    sets += [wine[:, :d] for d in (1, 3, 5, 6, 7, 8, 9, 10)]
    for X in sets:
        got, want = _both(hc.svd_scaled(X))
        np.testing.assert_array_equal(got, want)


@needs_c
def test_the_c_merge_loop_declines_what_it_cannot_take(monkeypatch: pytest.MonkeyPatch) -> None:
    means = np.array([[0.0], [np.nan], [2.0]])
    assert compiled.hc_merge_loop(np.ones(3), means, 1.0) is None  # a NaN cost
    monkeypatch.setattr(compiled, "_LIB", None)  # GAUSSMIX_COMPILED=0, or no C compiler
    assert compiled.hc_merge_loop(np.ones(2), means[[0, 2]], 1.0) is None
    groups, merges = hc.hc_tree(hc.svd_scaled(_small()))  # the numpy loop then runs
    assert _canonical(hc.cut(groups, merges, 3)) == MCLUST_HCLASS[3]


def test_ties_go_to_the_first_pair() -> None:
    """Five equally spaced points: every neighbouring pair costs the same, the first merges."""
    _, merges = hc.hc_tree(np.arange(5.0)[:, None])
    assert merges[0].tolist() == [0, 1]


@pytest.mark.parametrize("n_features", range(1, 11))
def test_scaled_det_is_the_determinant(n_features: int) -> None:
    rng = np.random.default_rng(n_features)
    A = rng.normal(size=(6, n_features, n_features + 2))
    W = A @ A.transpose(0, 2, 1)
    W[0] = np.outer(A[0, :, 0], A[0, :, 0]) if n_features > 1 else 0.0  # not positive definite
    n = rng.integers(2, 50, size=6).astype(float)
    want = np.linalg.det(W / n[:, None, None])
    got = hc._scaled_det(W, n)
    np.testing.assert_allclose(got[1:], want[1:], rtol=1e-10)
    assert abs(got[0]) <= 1e-12 * abs(got[1:]).max()


def test_cut_replays_the_merges() -> None:
    groups, merges = hc.hc_tree(hc.svd_scaled(load_faithful().X))
    m = merges.shape[0] + 1
    for k in (1, 2, 3, 9, 50, m - 1, m):
        parent = np.arange(m)  # each merge in turn: j's cluster joins i's
        for i, j in merges[: m - k]:
            parent[parent == j] = i
        _, want = np.unique(parent[groups], return_inverse=True)
        np.testing.assert_array_equal(hc.cut(groups, merges, k), want.reshape(-1))
