"""partial_fit: stepwise EM over mini-batches (``gaussmix.em.online``)."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.data.sources import ArraySource
from gaussmix.em import get_covariance, run_em
from gaussmix.em.online import blend, moved, online_step, step_size
from gaussmix.em.parallel import InProcess
from gaussmix.em.stats import chunk_stats
from tests.conftest import COVARIANCE_TYPES, mixture_data

# short fits on purpose: they stop before converging
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_moved_statistics_give_the_same_mstep(covariance_type: str) -> None:
    """Statistics moved to other shifts describe the same rows: the same M-step."""
    from gaussmix.em.mstep import estimate

    X = mixture_data(0, n=200)
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0, max_iter=2)
    params = model.fit(X)._params()
    stats = chunk_stats(X, params)
    shift = params.means + np.random.default_rng(0).normal(size=params.means.shape)
    cov = get_covariance(covariance_type)
    for a, b in zip(
        estimate(stats, cov, 1e-6), estimate(moved(stats, cov, shift), cov, 1e-6), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_eta_one_on_the_whole_data_is_batch_em(covariance_type: str) -> None:
    X = mixture_data(1, n=500)
    start = GaussianMixture(3, covariance_type=covariance_type, random_state=0, max_iter=0)
    params = start.fit(X)._params()
    batch = run_em(InProcess(ArraySource(X)), 256, params, tol=0.0, max_iter=6, reg_covar=1e-6)
    online, running = params, None
    for _ in range(6):
        step = online_step(InProcess(ArraySource(X)), 256, online, running, 1.0, reg_covar=1e-6)
        online, running = step.params, step.running
    np.testing.assert_allclose(online.means, batch.params.means, rtol=1e-10)
    np.testing.assert_allclose(online.covariances, batch.params.covariances, rtol=1e-10)
    np.testing.assert_allclose(online.weights, batch.params.weights, rtol=1e-10)


def test_first_partial_fit_is_one_em_iteration_from_the_same_start() -> None:
    X = mixture_data(2, n=400)
    w = np.random.default_rng(2).uniform(0.5, 2.0, 400)
    batch = GaussianMixture(3, random_state=5, max_iter=1).fit(X, sample_weight=w)
    online = GaussianMixture(3, random_state=5).partial_fit(X, sample_weight=w)
    np.testing.assert_allclose(online.means_, batch.means_, rtol=1e-10)
    np.testing.assert_allclose(online.covariances_, batch.covariances_, rtol=1e-10)
    assert online.lower_bound_ == pytest.approx(batch.lower_bound_, rel=1e-12)
    assert online.n_iter_ == 1


def test_step_sizes() -> None:
    assert step_size(1, 0.7) == pytest.approx(3.0**-0.7)
    assert step_size(8, 1.0) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="learning_decay"):
        GaussianMixture(2, learning_decay=0.5).partial_fit(mixture_data(0, n=50))


def test_blend_weights_the_batch_by_eta() -> None:
    X = mixture_data(3, n=300)
    params = GaussianMixture(3, random_state=0, max_iter=3).fit(X)._params()
    cov = params.covariance
    a, b = chunk_stats(X[:100], params), chunk_stats(X[100:], params)
    mixed = blend(blend(None, a, 0.3, cov), b, 0.25, cov)
    np.testing.assert_allclose(mixed.nk, 0.75 * a.nk / a.n + 0.25 * b.nk / b.n)
    assert mixed.n == pytest.approx(1.0)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_streaming_reaches_batch_em(covariance_type: str) -> None:
    """Mini-batches of a shuffled mixture's rows, two epochs: the log-likelihood of the whole
    data is within 1% of batch EM's."""
    X = mixture_data(4, n=6000, n_features=3, n_components=3)
    X = X[np.random.default_rng(4).permutation(X.shape[0])]
    batch = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    online = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    for _ in range(2):
        for start in range(0, X.shape[0], 500):
            online.partial_fit(X[start : start + 500])
    assert online.n_iter_ == 24
    assert online.score(X) == pytest.approx(batch.score(X), rel=0.01)
    assert abs(online.score(X) - batch.score(X)) < 0.01 * abs(batch.score(X))


def test_fit_restarts_the_running_statistics() -> None:
    X = mixture_data(5, n=300)
    model = GaussianMixture(2, random_state=0).partial_fit(X[:150]).partial_fit(X[150:])
    assert model.n_iter_ == 2
    model.fit(X)
    model.partial_fit(X)
    assert model.n_iter_ == 1
