"""The kernel: merge law, identity, chunk-size invariance, and no cancellation far from 0."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture
from gaussmix.em import (
    REGISTRY,
    Params,
    SuffStats,
    chunk_stats,
    estimate,
    get_covariance,
    merge,
    zeros,
)
from gaussmix.em.natural import FAST_SHIFT_LIMIT
from gaussmix.em.stats import (
    _slice_rows,
    _times_transposed,
    _weights_times,
    chunk_stats_componentwise,
    chunk_stats_natural,
    log_prob_componentwise,
    log_prob_natural,
    softmax_in_place,
)
from tests.conftest import COVARIANCE_TYPES, mixture_data


def random_params(rng: np.random.Generator, K: int, D: int, covariance_type: str) -> Params:
    """Valid parameters of the given structure: positive weights, SPD covariances."""
    cov = get_covariance(covariance_type)
    weights = rng.dirichlet(np.ones(K))
    means = rng.normal(size=(K, D))
    A = rng.normal(size=(K, D, D))
    full = A @ A.transpose(0, 2, 1) + D * np.eye(D)
    by_type = {
        "full": full,
        "tied": full[0],
        "diag": np.einsum("kii->ki", full),
        "spherical": np.einsum("kii->k", full) / D,
    }
    covariances = by_type[cov.name]
    return Params(weights, means, cov.precisions_cholesky(covariances), cov, covariances)


def assert_stats_equal(a: SuffStats, b: SuffStats) -> None:
    for field in ("n", "loglik", "nk", "sx", "sxx"):
        np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=1e-10, atol=1e-10)
    assert a.worst_loglik == pytest.approx(b.worst_loglik, rel=1e-12, abs=1e-12)
    np.testing.assert_array_equal(a.worst_x, b.worst_x)


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 60),
    D=st.integers(1, 4),
    K=st.integers(1, 3),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    split=st.floats(0, 1),
    weighted=st.booleans(),
)
def test_merge_law(
    seed: int, n: int, D: int, K: int, covariance_type: str, split: float, weighted: bool
) -> None:
    """stats(X) == merge(stats(X[:k]), stats(X[k:])) for any k, with or without weights."""
    rng = np.random.default_rng(seed)
    params = random_params(rng, K, D, covariance_type)
    X = rng.normal(scale=3, size=(n, D))
    w = rng.integers(0, 4, size=n).astype(float) if weighted else None
    k = round(split * n)
    whole = chunk_stats(X, params, w)
    left = chunk_stats(X[:k], params, None if w is None else w[:k])
    right = chunk_stats(X[k:], params, None if w is None else w[k:])
    merged = merge(left, right)
    for field in ("n", "loglik", "nk", "sx", "sxx"):
        np.testing.assert_allclose(
            getattr(merged, field), getattr(whole, field), rtol=1e-10, atol=1e-10
        )
    # GEMMs over blocks of other sizes round differently: the same row, to the last bits
    assert merged.worst_loglik == pytest.approx(whole.worst_loglik, rel=1e-12, abs=1e-12)


@given(seed=st.integers(0, 2**32 - 1), covariance_type=st.sampled_from(COVARIANCE_TYPES))
def test_zeros_is_the_identity_and_merge_is_associative(seed: int, covariance_type: str) -> None:
    rng = np.random.default_rng(seed)
    params = random_params(rng, 3, 2, covariance_type)
    a, b, c = (chunk_stats(rng.normal(size=(m, 2)), params) for m in (5, 1, 9))
    assert_stats_equal(merge(zeros(params), a), a)
    assert_stats_equal(merge(a, zeros(params)), a)
    assert_stats_equal(merge(merge(a, b), c), merge(a, merge(b, c)))


def test_merge_refuses_statistics_of_different_parameters() -> None:
    rng = np.random.default_rng(0)
    p, q = random_params(rng, 2, 2, "full"), random_params(rng, 2, 2, "full")
    X = rng.normal(size=(4, 2))
    with pytest.raises(ValueError, match="different parameters"):
        merge(chunk_stats(X, p), chunk_stats(X, q))


def test_responsibilities_sum_to_one_per_row() -> None:
    rng = np.random.default_rng(1)
    params = random_params(rng, 4, 3, "full")
    X = rng.normal(size=(50, 3))
    stats = chunk_stats(X, params)
    assert stats.nk.sum() == pytest.approx(50.0, rel=1e-12)
    assert stats.n == 50


def test_softmax_floor_gives_exact_zeros_and_the_log_sum_exp() -> None:
    """Terms far below a row's largest come out exactly 0 (a collapsed component's variance is
    then exactly 0, as with the exact exp), the rest agree with the exact softmax to 1e-300
    absolute, and the log-density is the log-sum-exp."""
    log_prob = np.array(
        [[0.0, -3.0, 5.0], [-1.0, -710.0, 5.0 - 2000.0], [-699.0, -3.5, 5.0 - 650.0]]
    )
    expected_log = logsumexp(log_prob, axis=0)
    expected = np.exp(log_prob - expected_log)
    resp, log_density = softmax_in_place(log_prob.copy())
    np.testing.assert_allclose(log_density, expected_log, rtol=1e-15)
    np.testing.assert_allclose(resp, expected, rtol=1e-15, atol=1e-300)
    assert resp[1, 1] == 0.0 and resp[1, 2] == 0.0
    assert resp[2, 0] > 0.0 and resp[2, 2] > 0.0  # above the floor: kept
    np.testing.assert_allclose(resp.sum(axis=0), 1.0, rtol=1e-15)
    # float32's floor sits above its subnormals (e^-87) in the same way
    single, log_single = softmax_in_place(np.array([[0.0], [-50.0], [-100.0]], dtype=np.float32))
    assert single.dtype == np.float32 and single[2, 0] == 0.0 and single[1, 0] > 0.0
    assert log_single[0] == pytest.approx(logsumexp([0.0, -50.0, -100.0]), abs=1e-6)


@pytest.mark.parametrize(
    ("n_rows", "n_features", "n_components", "slice_rows"),
    [
        (500, 20, 16, 500),  # under 2^20 multiply-adds: whole
        (4000, 20, 16, 1024),  # 1024-row slices and a part, both GEMMs
        (3000, 40, 30, 768),  # 768 x 1200 stays under 2^20; T q' runs whole
    ],
)
def test_gemms_taken_a_slice_of_rows_at_a_time_equal_one_gemm(
    n_rows: int, n_features: int, n_components: int, slice_rows: int
) -> None:
    rng = np.random.default_rng(n_rows)
    Wt = rng.normal(size=(n_components, n_features))
    T = rng.normal(size=(n_features, n_rows))
    resp = rng.random((n_components, n_rows))
    assert _slice_rows(n_rows, n_features, n_components) == slice_rows
    np.testing.assert_allclose(_weights_times(Wt, T), Wt @ T, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(_times_transposed(T, resp), T @ resp.T, rtol=1e-13, atol=1e-11)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_chunk_size_does_not_change_the_fit(covariance_type: str) -> None:
    X = mixture_data(3, n=400)
    fits = [
        GaussianMixture(3, covariance_type=covariance_type, random_state=0, chunk_size=c).fit(X)
        for c in (None, 1, 37)
    ]
    for other in fits[1:]:
        np.testing.assert_allclose(other.means_, fits[0].means_, rtol=1e-10)
        np.testing.assert_allclose(other.covariances_, fits[0].covariances_, rtol=1e-9)
        assert other.n_iter_ == fits[0].n_iter_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dataset", ["faithful", "synthetic"])
def test_offset_by_a_million_gives_the_same_covariances(
    covariance_type: str, dataset: str, faithful: np.ndarray
) -> None:
    """Statistics about the current means: no E[xx'] - mu mu' cancellation at 1e6."""
    X = faithful if dataset == "faithful" else mixture_data(5, n=500, n_features=3)
    offset = 1e6
    start = GaussianMixture(3, covariance_type=covariance_type, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X)
        kwargs = dict(
            covariance_type=covariance_type,
            tol=0.0,
            max_iter=30,
            weights_init=start.weights_,
            precisions_init=start.precisions_,
        )
        plain = GaussianMixture(3, means_init=start.means_, **kwargs).fit(X)
        shifted = GaussianMixture(3, means_init=start.means_ + offset, **kwargs).fit(X + offset)
    scale = np.abs(plain.covariances_).max()
    np.testing.assert_allclose(
        shifted.covariances_, plain.covariances_, rtol=1e-6, atol=1e-6 * scale
    )
    np.testing.assert_allclose(shifted.means_ - offset, plain.means_, atol=1e-6)
    np.testing.assert_allclose(shifted.weights_, plain.weights_, rtol=1e-6)


def test_registry_and_mclust_aliases() -> None:
    assert set(COVARIANCE_TYPES) <= set(REGISTRY)
    for alias, name in {"VVV": "full", "VVI": "diag", "EEE": "tied", "VII": "spherical"}.items():
        assert get_covariance(alias) is REGISTRY[name]
    with pytest.raises(ValueError, match="unknown covariance type 'VXV'"):
        get_covariance("VXV")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_covariance_precision_round_trip(covariance_type: str) -> None:
    rng = np.random.default_rng(2)
    params = random_params(rng, 3, 4, covariance_type)
    cov = params.covariance
    recovered = cov.covariances_from_precisions_cholesky(params.precisions_cholesky)
    np.testing.assert_allclose(recovered, params.stored_covariances, rtol=1e-10)
    again = cov.precisions_cholesky_from_precisions(cov.precisions(params.precisions_cholesky))
    np.testing.assert_allclose(cov.precisions(again), cov.precisions(params.precisions_cholesky))


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 80),
    D=st.integers(1, 5),
    K=st.integers(1, 4),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    weighted=st.booleans(),
)
def test_natural_kernel_equals_the_componentwise_one(
    seed: int, n: int, D: int, K: int, covariance_type: str, weighted: bool
) -> None:
    """The natural-parameter kernel (two GEMMs, statistics about the mixture mean) gives the
    M-step of the componentwise kernel (statistics about each component's own mean)."""
    rng = np.random.default_rng(seed)
    params = random_params(rng, K, D, covariance_type)
    X = rng.normal(scale=3, size=(n, D)) + 50.0
    w = rng.integers(0, 4, size=n).astype(float) if weighted else None
    fast, slow = chunk_stats_natural(X, params, w), chunk_stats_componentwise(X, params, w)
    assert fast.loglik == pytest.approx(slow.loglik, rel=1e-10)
    np.testing.assert_allclose(fast.nk, slow.nk, rtol=1e-10, atol=1e-12)
    # the fast kernel's sums about c cancel at the scale |x - c|^2 (documented in natural.py)
    scale = 1.0 + np.max(np.abs(X - params.natural.center)) ** 2
    fast_m = estimate(fast, params.covariance, 1e-6)
    slow_m = estimate(slow, params.covariance, 1e-6)
    for a, b in zip(fast_m, slow_m, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12 * scale)
    np.testing.assert_allclose(
        log_prob_natural(X, params), log_prob_componentwise(X, params), rtol=1e-10, atol=1e-9
    )


def test_far_components_use_the_exact_kernel() -> None:
    """A component 10^4 standard deviations from the mixture mean: the fast kernel would lose
    eight digits of its covariance, so the componentwise kernel runs and the fit stays exact."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1e-3, size=(200, 2)), rng.normal(10.0, 1.0, size=(200, 2))])
    cov = get_covariance("diag")
    covariances = np.array([[1e-6, 1e-6], [1.0, 1.0]])
    params = Params(
        np.array([0.5, 0.5]),
        np.array([[0.0, 0.0], [10.0, 10.0]]),
        cov.precisions_cholesky(covariances),
        cov,
        covariances,
    )
    assert params.natural.max_shift > FAST_SHIFT_LIMIT["float64"]
    stats = chunk_stats(X, params)
    reference = chunk_stats_componentwise(X, params)
    np.testing.assert_array_equal(stats.sxx, reference.sxx)
    _, _, variances = estimate(stats, cov, 0.0)
    np.testing.assert_allclose(variances[0], X[:200].var(axis=0), rtol=1e-3)
