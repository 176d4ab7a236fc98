"""EM with missing values: the kernel's expected statistics, the exact observed-data maximum,
monotonicity, accuracy against the usual remedies, inference, files and workers."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

from gaussmix import ComponentCollapseWarning, GaussianMixture
from gaussmix.em import Params, get_covariance, parallel
from gaussmix.em.missing import _lower_inverse, incomplete_stats, log_prob_observed, regroup
from tests.conftest import COVARIANCE_TYPES, mixture_data
from tests.test_em_properties import _regularisation_slack


def _holes(X: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """X with a fraction of its entries set to NaN completely at random, every row keeping
    at least one observed value."""
    rng = np.random.default_rng(seed)
    H = np.array(X, dtype=np.float64)
    mask = rng.random(H.shape) < fraction
    mask[mask.all(axis=1), 0] = False
    H[mask] = np.nan
    return H


def _random_params(covariance_type: str, K: int, D: int, seed: int) -> Params:
    rng = np.random.default_rng(seed)
    cov = get_covariance(covariance_type)
    full = np.array([a @ a.T + np.eye(D) for a in rng.normal(size=(K, D, D))])
    covariances = {
        "full": full,
        "tied": full[0],
        "diag": np.array([np.diag(c) for c in full]),
        "spherical": np.array([np.trace(c) / D for c in full]),
    }[covariance_type]
    weights = rng.dirichlet(np.ones(K))
    means = rng.normal(scale=2.0, size=(K, D))
    return Params(weights, means, cov.precisions_cholesky(covariances), cov, covariances)


def _layout(full_moments: np.ndarray, covariance_type: str) -> np.ndarray:
    """A (K, D, D) second moment in the covariance type's layout."""
    return {
        "full": lambda S: S,
        "tied": lambda S: S.sum(axis=0),
        "diag": lambda S: np.diagonal(S, axis1=1, axis2=2),
        "spherical": lambda S: np.trace(S, axis1=1, axis2=2),
    }[covariance_type](full_moments)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_expected_statistics_row_by_row(covariance_type: str) -> None:
    """The kernel's statistics equal the textbook ones computed one row at a time:
    q_kn from the observed marginal, E[x_m | x_o, k] by a linear solve, and the conditional
    covariance added to the second moment."""
    K, D = 3, 4
    params = _random_params(covariance_type, K, D, seed=1)
    X = _holes(mixture_data(2, n=120, n_features=D), 0.35, seed=3)
    rng = np.random.default_rng(5)
    weights = rng.uniform(0.0, 2.0, size=X.shape[0])
    mask = np.isnan(X)
    rows = mask.any(axis=1)
    got = incomplete_stats(X[rows], mask[rows], params, weights[rows])

    full = params.covariance.per_component(params.covariances, K, D)
    loglik, nk = 0.0, np.zeros(K)
    sx, sxx = np.zeros((K, D)), np.zeros((K, D, D))
    for x, w in zip(X[rows], weights[rows], strict=True):
        o, m = ~np.isnan(x), np.isnan(x)
        log_joint = np.array(
            [
                np.log(params.weights[k])
                + multivariate_normal(params.means[k, o], full[k][np.ix_(o, o)]).logpdf(x[o])
                for k in range(K)
            ]
        )
        top = log_joint.max()
        log_px = top + np.log(np.exp(log_joint - top).sum())
        q = np.exp(log_joint - log_px)
        loglik += w * log_px
        for k in range(K):
            S = full[k]
            xhat = x.copy()
            gain = S[np.ix_(m, o)] @ np.linalg.inv(S[np.ix_(o, o)])
            xhat[m] = params.means[k, m] + gain @ (x[o] - params.means[k, o])
            z = xhat - params.means[k]
            second = np.outer(z, z)
            second[np.ix_(m, m)] += S[np.ix_(m, m)] - gain @ S[np.ix_(o, m)]
            nk[k] += w * q[k]
            sx[k] += w * q[k] * z
            sxx[k] += w * q[k] * second
    assert got.loglik == pytest.approx(loglik, rel=1e-12)
    assert got.n == pytest.approx(weights[rows].sum(), rel=1e-12)
    np.testing.assert_allclose(got.nk, nk, rtol=1e-10)
    np.testing.assert_allclose(got.sx, sx, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(got.sxx, _layout(sxx, covariance_type), rtol=1e-9, atol=1e-10)
    assert not np.any(np.isnan(got.worst_x))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_no_nan_gives_the_same_fit(covariance_type: str) -> None:
    X = mixture_data(7, n=500, n_features=3)
    kwargs = dict(covariance_type=covariance_type, random_state=0, chunk_size=64, tol=1e-6)
    plain = GaussianMixture(3, **kwargs).fit(X)
    with_em = GaussianMixture(3, missing="em", **kwargs).fit(X)
    assert with_em.n_missing_ == 0
    np.testing.assert_array_equal(with_em.means_, plain.means_)
    np.testing.assert_array_equal(with_em.covariances_, plain.covariances_)
    assert with_em.lower_bounds_ == plain.lower_bounds_
    assert with_em.log_likelihood_ == plain.log_likelihood_
    np.testing.assert_array_equal(with_em.score_samples(X), plain.score_samples(X))


def test_regroup_passes_complete_blocks_on_untouched() -> None:
    X = mixture_data(1, n=400, n_features=3)
    H = X.copy()
    H[[105, 150, 151, 250], 1] = np.nan
    blocks = [(X[:100], None), (H[100:200], None), (H[200:300], None), (X[300:], None)]
    out = list(regroup(iter(blocks), group_rows=1000))
    assert out[0][0] is blocks[0][0] and out[0][2] is None  # untouched
    # the complete rows of the two holed blocks gathered into one block of the first's size
    assert out[1][2] is None and out[1][0].shape[0] == 100
    assert out[2][0] is blocks[3][0]
    rest = out[3:]  # at the end: the 96 complete rows left, then the 4 incomplete ones
    assert [b[2] is None for b in rest] == [True, False]
    assert rest[0][0].shape[0] == 96
    assert rest[1][0].shape[0] == 4 and np.isnan(rest[1][0]).any(axis=1).all()
    assert sum(b[0].shape[0] for b in out) == 400
    np.testing.assert_array_equal(
        np.sort(np.concatenate([b[0] for b in out if b[2] is None]), axis=0),
        np.sort(X[~np.isnan(H).any(axis=1)], axis=0),
    )


def test_lower_inverse() -> None:
    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 3, 6, 6))
    L = np.linalg.cholesky(A @ np.swapaxes(A, -1, -2) + np.eye(6))
    np.testing.assert_allclose(_lower_inverse(L), np.linalg.inv(L), rtol=1e-12, atol=1e-12)


def _observed_loglik(X: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> float:
    total = 0.0
    for x in X:
        o = ~np.isnan(x)
        total += multivariate_normal(mean[o], cov[np.ix_(o, o)]).logpdf(x[o])
    return total


def test_single_gaussian_equals_the_direct_maximum_of_the_observed_likelihood() -> None:
    """One component, two features, a few rows missing one value: EM's fit is the maximum of
    sum_n log N(x_n^o | mu_o, Sigma_oo), found here by scipy without any EM."""
    rng = np.random.default_rng(0)
    X = rng.multivariate_normal([1.0, -2.0], [[2.0, 1.2], [1.2, 1.5]], size=40)
    X[[1, 4, 9, 17, 23], 0] = np.nan
    X[[2, 11, 30], 1] = np.nan

    def negative(theta: np.ndarray) -> float:
        L = np.array([[np.exp(theta[2]), 0.0], [theta[3], np.exp(theta[4])]])
        return -_observed_loglik(X, theta[:2], L @ L.T)

    complete = X[~np.isnan(X).any(axis=1)]
    L0 = np.linalg.cholesky(np.cov(complete.T))
    start = np.r_[complete.mean(axis=0), np.log(L0[0, 0]), L0[1, 0], np.log(L0[1, 1])]
    best = minimize(negative, start, method="BFGS", options={"gtol": 1e-9})
    L = np.array([[np.exp(best.x[2]), 0.0], [best.x[3], np.exp(best.x[4])]])

    model = GaussianMixture(1, missing="em", reg_covar=0.0, tol=1e-13, max_iter=1000).fit(X)
    np.testing.assert_allclose(model.means_[0], best.x[:2], atol=1e-5)
    np.testing.assert_allclose(model.covariances_[0], L @ L.T, atol=1e-5)
    assert model.score(X) * len(X) == pytest.approx(-best.fun, abs=1e-8)
    # and it is not the complete-case estimate
    assert not np.allclose(model.means_[0], complete.mean(axis=0), atol=1e-3)


@given(
    seed=st.integers(0, 2**32 - 1),
    n_features=st.integers(2, 4),
    n_components=st.integers(1, 3),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    fraction=st.floats(0.05, 0.5),
)
def test_observed_log_likelihood_never_decreases(
    seed: int, n_features: int, n_components: int, covariance_type: str, fraction: float
) -> None:
    X = _holes(mixture_data(seed, n=150, n_features=n_features), fraction, seed)
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.2, 2.0, size=X.shape[0])
    model = GaussianMixture(
        n_components,
        covariance_type=covariance_type,
        missing="em",
        tol=0.0,
        max_iter=20,
        random_state=seed % 1000,
        chunk_size=40,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ComponentCollapseWarning)
        model.fit(X, sample_weight=weights)
    steps = np.diff(model.lower_bounds_)
    reseeded = [t - 1 for t, _ in model.reinitialized_]
    steps = np.delete(steps, [i for i in reseeded if i < steps.size])
    slack = 1e-8 + _regularisation_slack(model)
    if steps.size:
        assert steps.min() >= -slack, f"fell by {-steps.min():.3g} (slack {slack:.3g})"
    final = float(np.average(model.score_samples(X), weights=weights))
    assert final >= model.lower_bounds_[-1] - slack


def _matched_errors(model: GaussianMixture, means: np.ndarray, covs: np.ndarray) -> float:
    """sum over components of ||mu - mu_true|| + ||Sigma - Sigma_true||_F, components matched
    by the best permutation."""
    K = means.shape[0]
    best = np.inf
    for perm in itertools.permutations(range(K)):
        err = sum(
            np.linalg.norm(model.means_[p] - means[k])
            + np.linalg.norm(model.covariances_[p] - covs[k])
            for k, p in enumerate(perm)
        )
        best = min(best, err)
    return best


def test_mcar_fit_beats_dropping_rows_and_mean_imputation() -> None:
    """20% of the entries missing completely at random from a known mixture (6 correlated
    features, so only 0.8^6 = 26% of the rows are complete): EM with the holes integrated out
    lands closer to the true means and covariances than fitting the complete rows only or the
    mean-imputed table, on every seed, by a margin."""
    rng = np.random.default_rng(0)
    D, K, n = 6, 2, 1000
    means = np.array([[0.0] * D, [4.0, 3.0, -3.0, 2.0, 0.0, 1.0]])
    base = np.full((D, D), 0.7) + 0.3 * np.eye(D)
    covs = np.array([base, 1.5 * base])
    roots = np.linalg.cholesky(covs)
    kwargs = dict(n_components=K, random_state=0, tol=1e-6, max_iter=500, n_init=2)
    ratios = []
    for seed in range(3):
        labels = rng.integers(K, size=n)
        X = means[labels] + np.einsum("nd,ned->ne", rng.normal(size=(n, D)), roots[labels])
        H = _holes(X, 0.2, seed)
        em = GaussianMixture(missing="em", **kwargs).fit(H)
        dropped = GaussianMixture(**kwargs).fit(H[~np.isnan(H).any(axis=1)])
        mean_imputed = GaussianMixture(**kwargs).fit(
            np.where(np.isnan(H), np.nanmean(H, axis=0), H)
        )
        e_em = _matched_errors(em, means, covs)
        e_drop = _matched_errors(dropped, means, covs)
        e_mean = _matched_errors(mean_imputed, means, covs)
        ratios.append((e_em / e_drop, e_em / e_mean))
    ratio = np.array(ratios)
    assert ratio[:, 0].max() < 0.85 and ratio[:, 0].mean() < 0.7, ratios  # vs complete rows
    assert ratio[:, 1].max() < 0.35, ratios  # vs mean imputation


def test_inference_uses_the_observed_marginal() -> None:
    X = mixture_data(3, n=400, n_features=3, n_components=2)
    H = _holes(X, 0.2, seed=4)
    model = GaussianMixture(2, missing="em", random_state=0).fit(H)
    rows = H[:30]
    expected = []
    for x in rows:
        o = ~np.isnan(x)
        joint = [
            w * multivariate_normal(mu[o], S[np.ix_(o, o)]).pdf(x[o])
            for w, mu, S in zip(model.weights_, model.means_, model.covariances_, strict=True)
        ]
        expected.append(joint)
    expected_arr = np.array(expected)
    np.testing.assert_allclose(model.score_samples(rows), np.log(expected_arr.sum(1)), rtol=1e-10)
    proba = expected_arr / expected_arr.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(rows), proba, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(model.predict(rows), proba.argmax(axis=1))
    log_l = model.score_samples(H).sum()
    assert model.bic(H) == pytest.approx(-2 * log_l + model._n_parameters() * np.log(len(H)))
    assert model.aic(H) == pytest.approx(-2 * log_l + 2 * model._n_parameters())
    assert model.log_likelihood_ == pytest.approx(log_l, rel=1e-10)
    # a row with nothing observed: the prior
    empty = np.full((1, 3), np.nan)
    np.testing.assert_allclose(model.predict_proba(empty)[0], model.weights_, rtol=1e-12)
    assert model.score_samples(empty)[0] == pytest.approx(0.0, abs=1e-12)


def test_log_prob_observed_of_complete_rows_is_todays() -> None:
    X = mixture_data(5, n=50, n_features=3)
    params = _random_params("full", 3, 3, seed=2)
    from gaussmix.em.stats import log_prob

    np.testing.assert_array_equal(log_prob_observed(X, params), log_prob(X, params))


def test_missing_values_need_opting_in() -> None:
    H = _holes(mixture_data(1, n=100, n_features=3), 0.1, seed=1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        GaussianMixture(2).fit(H)
    assert GaussianMixture(missing="em").__sklearn_tags__().input_tags.allow_nan
    assert not GaussianMixture().__sklearn_tags__().input_tags.allow_nan


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda H: H.__setitem__((7, slice(None)), np.nan), r"every value missing \(row 7\)"),
        (
            lambda H: H.__setitem__((slice(None), 2), np.nan),
            r"1 column\(s\) with every value missing \(the first is column 2\)",
        ),
        (lambda H: H.__setitem__((3, 0), np.inf), r"1 infinite value\(s\), the first in row 3"),
    ],
)
def test_what_cannot_be_fitted_is_refused_clearly(change: object, message: str) -> None:
    H = mixture_data(1, n=100, n_features=3)
    H[::9, 0] = np.nan
    change(H)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2, missing="em").fit(H)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_npy_and_parquet_files_with_holes_fit_out_of_core(
    tmp_path: Path, covariance_type: str
) -> None:
    H = _holes(mixture_data(11, n=3000, n_features=3), 0.15, seed=2)
    kwargs = dict(covariance_type=covariance_type, random_state=0, chunk_size=700, missing="em")
    in_memory = GaussianMixture(3, **kwargs).fit(H)
    np.save(tmp_path / "h.npy", H)
    from_npy = GaussianMixture(3, **kwargs).fit(tmp_path / "h.npy")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    # Parquet's own nulls (not NaN values) in two columns, NaN values in the third
    columns = {
        name: pa.array(H[:, j], mask=np.isnan(H[:, j]) if j < 2 else None)
        for j, name in enumerate("abc")
    }
    pq.write_table(pa.table(columns), tmp_path / "h.parquet", row_group_size=500)
    from_parquet = GaussianMixture(3, **kwargs).fit(tmp_path / "h.parquet")
    for model in (from_npy, from_parquet):
        assert model.n_missing_ == int(np.isnan(H).sum())
        np.testing.assert_allclose(model.means_, in_memory.means_, rtol=1e-10)
        np.testing.assert_allclose(model.covariances_, in_memory.covariances_, rtol=1e-9)
        np.testing.assert_allclose(model.lower_bounds_, in_memory.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(
        from_npy.score_samples(tmp_path / "h.npy"), in_memory.score_samples(H), rtol=1e-12
    )


def test_forked_workers_give_the_in_process_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    H = _holes(mixture_data(12, n=4000, n_features=3), 0.15, seed=3)
    kwargs = dict(random_state=0, chunk_size=500, missing="em", tol=1e-8)
    alone = GaussianMixture(3, n_threads=1, **kwargs).fit(H)
    monkeypatch.setattr(parallel, "FORK_MIN_ROWS", 0)
    forked = GaussianMixture(3, n_threads=2, **kwargs).fit(H)
    np.testing.assert_allclose(forked.means_, alone.means_, rtol=1e-9)
    np.testing.assert_allclose(forked.lower_bounds_, alone.lower_bounds_, rtol=1e-11)


def test_saved_model_keeps_taking_missing_values(tmp_path: Path) -> None:
    H = _holes(mixture_data(3, n=300, n_features=3), 0.2, seed=8)
    model = GaussianMixture(2, missing="em", random_state=0).fit(H)
    loaded = GaussianMixture.load(model.save(tmp_path / "m.npz"))
    assert loaded.missing == "em"
    np.testing.assert_allclose(loaded.score_samples(H), model.score_samples(H), rtol=1e-12)


def test_float32_rows_with_holes() -> None:
    H = _holes(mixture_data(4, n=600, n_features=3), 0.2, seed=9)
    kwargs = dict(random_state=0, missing="em", tol=0.0, max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        single = GaussianMixture(3, dtype=np.float32, **kwargs).fit(H.astype(np.float32))
        double = GaussianMixture(3, **kwargs).fit(H)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-4, atol=1e-4)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-5)


def test_fit_predict_with_holes_agrees_with_predict() -> None:
    H = _holes(mixture_data(6, n=400, n_features=3), 0.2, seed=10)
    model = GaussianMixture(3, missing="em", random_state=0)
    labels = model.fit_predict(H)
    np.testing.assert_array_equal(labels, model.predict(H))
    assert model.log_likelihood_ == pytest.approx(model.score_samples(H).sum(), rel=1e-10)
