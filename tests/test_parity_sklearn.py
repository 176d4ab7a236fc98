"""Parity with scikit-learn: from the same initial parameters, the same fit to 1e-7 relative."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture
from tests.conftest import COVARIANCE_TYPES, mixture_data


def _datasets() -> dict[str, tuple[np.ndarray, int]]:
    from gaussmix.datasets import load_faithful

    return {
        "faithful": (np.asarray(load_faithful().X), 3),
        "iris": (load_iris().data, 3),
        "wine": (load_wine().data, 3),
        "synthetic": (mixture_data(0, n=500, n_features=4, n_components=4), 4),
    }


DATASETS = _datasets()


def _initial(X: np.ndarray, K: int, covariance_type: str) -> dict[str, np.ndarray]:
    """Explicit initial parameters: a fit of one iteration from a k-means start."""
    start = SkGaussianMixture(K, covariance_type=covariance_type, max_iter=1, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X)
    return {
        "weights_init": start.weights_,
        "means_init": start.means_,
        "precisions_init": start.precisions_,
    }


def _assert_close(ours: np.ndarray, theirs: np.ndarray, rtol: float = 1e-7) -> None:
    # relative to the largest entry, so near-zero off-diagonal covariances are judged fairly
    scale = np.max(np.abs(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_same_fit_as_sklearn_from_same_start(dataset: str, covariance_type: str) -> None:
    X, K = DATASETS[dataset]
    init = _initial(X, K, covariance_type)
    kwargs = dict(covariance_type=covariance_type, tol=0.0, max_iter=20, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(K, **kwargs).fit(X)
        theirs = SkGaussianMixture(K, **kwargs).fit(X)
    _assert_close(ours.weights_, theirs.weights_)
    _assert_close(ours.means_, theirs.means_)
    _assert_close(ours.covariances_, theirs.covariances_)
    _assert_close(ours.precisions_cholesky_, theirs.precisions_cholesky_)
    assert ours.n_iter_ == theirs.n_iter_ == 20
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-7)
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-7)


# scikit-learn's tied M-step uses X'X over all rows, which assumes every row's responsibilities
# sum to one; the one-row-per-component start of k-means++ and random_from_data breaks that, so
# its initial tied covariance counts rows that belong to no component. gaussmix weights every row
# by its responsibilities, so those two starts differ for tied (and only there).
SAME_START = [
    (cov, init)
    for cov in COVARIANCE_TYPES
    for init in ("kmeans", "k-means++", "random", "random_from_data")
    if not (cov == "tied" and init in ("k-means++", "random_from_data"))
]


@pytest.mark.parametrize(("covariance_type", "init_params"), SAME_START)
def test_same_draws_as_sklearn_from_same_seed(covariance_type: str, init_params: str) -> None:
    X, K = DATASETS["iris"]
    kwargs = dict(
        covariance_type=covariance_type, init_params=init_params, n_init=2, random_state=7
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(K, **kwargs).fit(X)
        theirs = SkGaussianMixture(K, **kwargs).fit(X)
    _assert_close(ours.means_, theirs.means_, rtol=1e-6)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-8)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-8)
    assert ours.bic(X) == pytest.approx(theirs.bic(X), rel=1e-9)
    assert ours.aic(X) == pytest.approx(theirs.aic(X), rel=1e-9)
    np.testing.assert_allclose(ours.sample(50)[0], theirs.sample(50)[0], rtol=1e-6, atol=1e-9)
