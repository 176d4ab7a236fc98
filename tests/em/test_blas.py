"""GIL-free triangular BLAS, and the componentwise kernel's moments that use it."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix.em import get_covariance
from gaussmix.em.blas import GIL_FREE, gram, times_upper_in_place
from gaussmix.em.covariance import NEGLIGIBLE, centred
from gaussmix.em.stats import softmax_in_place


def test_scipys_cython_blas_is_reached() -> None:
    """Without it the componentwise kernel still works, but on one core."""
    assert GIL_FREE


@pytest.mark.parametrize("gil_free", [True, False])
@pytest.mark.parametrize("n_rows", [0, 1, 7, 1000])
@pytest.mark.parametrize("n_features", [1, 5, 64])
def test_times_upper_and_gram_match_numpy(gil_free: bool, n_rows: int, n_features: int) -> None:
    rng = np.random.default_rng(n_rows + n_features)
    rows = rng.normal(size=(n_rows, n_features))
    square = rng.normal(size=(n_features, n_features))
    expected = rows @ np.triu(square)  # only the upper triangle may be read
    out = times_upper_in_place(rows.copy(), square, gil_free=gil_free)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    product = gram(rows, gil_free=gil_free)
    np.testing.assert_allclose(product, rows.T @ rows, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(product, product.T)
    # the mirror is np.triu's, entry for entry (the statistics of every start go through it)
    triangle = np.triu(product)
    np.testing.assert_array_equal(product, triangle + np.triu(triangle, 1).T)


def test_views_that_blas_cannot_read_in_place_are_refused() -> None:
    rows = np.ones((4, 6))[:, ::2]
    with pytest.raises(ValueError, match="C-contiguous float64"):
        times_upper_in_place(rows, np.eye(3))
    with pytest.raises(ValueError, match="C-contiguous float64"):
        gram(rows.astype(np.float32))


def test_rows_of_negligible_responsibility_do_not_change_the_moments() -> None:
    """Well-separated components: most rows are left out of most components' sums (gathered),
    and the moments still equal the sums over every row to rounding."""
    rng = np.random.default_rng(3)
    n_features, n_components = 3, 4
    means = rng.normal(scale=5.0, size=(n_components, n_features))
    X = np.vstack([m + rng.normal(size=(150, n_features)) for m in means])
    log_prob = -0.5 * np.einsum("knd,knd->kn", centred(X, means), centred(X, means))
    resp, _ = softmax_in_place(log_prob)
    kept = resp > resp.max(axis=1, keepdims=True) * NEGLIGIBLE
    assert (kept.sum(axis=1) < X.shape[0] // 2).all()  # every component gathers its rows
    Z = centred(X, means)
    sx, sxx = get_covariance("full").moments_rows(resp, X, means)
    np.testing.assert_allclose(sx, np.einsum("kn,knd->kd", resp, Z), rtol=1e-12, atol=1e-9)
    expected = np.einsum("kn,kni,knj->kij", resp, Z, Z)
    np.testing.assert_allclose(sxx, expected, rtol=1e-12, atol=1e-9)
