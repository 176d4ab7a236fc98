"""GaussianMixtureImputer: the exact conditional mean and spread for one Gaussian, draws,
mixtures, and scikit-learn's transformer protocol (Pipeline)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from gaussmix import GaussianMixtureImputer
from tests.conftest import mixture_data
from tests.em.test_missing import _holes

COV = np.array([[2.0, 1.2, 0.4], [1.2, 1.5, -0.3], [0.4, -0.3, 1.0]])


def _gaussian_holes(n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal([1.0, -1.0, 3.0], COV, size=n)
    return X, _holes(X, 0.25, seed)


def test_single_gaussian_fills_the_exact_conditional_mean_and_std() -> None:
    _, H = _gaussian_holes()
    imputer = GaussianMixtureImputer().fit(H)
    filled, std = imputer.transform(H, return_std=True)
    mu, S = imputer.mixture_.means_[0], imputer.mixture_.covariances_[0]
    for x, f, s in zip(H, filled, std, strict=True):
        m, o = np.isnan(x), ~np.isnan(x)
        np.testing.assert_array_equal(f[o], x[o])
        assert np.all(s[o] == 0.0)
        if m.any():
            gain = np.linalg.solve(S[np.ix_(o, o)], S[np.ix_(o, m)]).T
            np.testing.assert_allclose(f[m], mu[m] + gain @ (x[o] - mu[o]), rtol=1e-10)
            var = S[np.ix_(m, m)] - gain @ S[np.ix_(o, m)]
            np.testing.assert_allclose(s[m], np.sqrt(np.diag(var)), rtol=1e-10)


def test_draws_have_the_conditional_distribution() -> None:
    _, H = _gaussian_holes(n=200)
    imputer = GaussianMixtureImputer().fit(H)
    row = np.array([[np.nan, 0.5, np.nan]])
    mean, std = imputer.transform(row, return_std=True)
    draws = np.vstack(
        [
            imputer.transform(np.repeat(row, 500, axis=0), sample=True, random_state=s)
            for s in range(8)
        ]
    )
    assert np.all(draws[:, 1] == 0.5)
    # 4000 draws: the sample mean within 4 standard errors, the spread within 5%
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean[0])[[0, 2]], 4 * std[0, [0, 2]] / 63)
    np.testing.assert_allclose(draws.std(0)[[0, 2]], std[0, [0, 2]], rtol=0.05)
    again = imputer.transform(row, sample=True, random_state=3)
    np.testing.assert_array_equal(again, imputer.transform(row, sample=True, random_state=3))
    assert not np.array_equal(again, imputer.transform(row, sample=True, random_state=4))


def test_mixture_std_includes_the_spread_between_components() -> None:
    """A hole whose row sits between two clusters: its std is wider than either component's
    conditional std, and its mean lies between the two components' conditional means."""
    rng = np.random.default_rng(1)
    X = np.vstack(
        [rng.normal([0.0, 0.0], 0.3, size=(300, 2)), rng.normal([0.0, 6.0], 0.3, size=(300, 2))]
    )
    H = X.copy()
    H[::7, 1] = np.nan
    imputer = GaussianMixtureImputer(2, random_state=0).fit(H)
    mean, std = imputer.transform(np.array([[0.0, np.nan]]), return_std=True)
    assert 1.0 < mean[0, 1] < 5.0  # x_0 = 0 says nothing about the cluster
    assert std[0, 1] > 2.0  # between-component spread, the components' own are ~0.3
    sure, sure_std = imputer.transform(np.array([[0.0, 6.2]]), return_std=True)
    assert sure_std[0, 1] == 0.0 and sure[0, 1] == 6.2


def test_mixture_imputation_is_closer_to_the_truth_than_column_means() -> None:
    X = mixture_data(5, n=800, n_features=4, n_components=3)
    H = _holes(X, 0.2, seed=6)
    holes = np.isnan(H)
    ours = GaussianMixtureImputer(3, random_state=0).fit_transform(H)
    theirs = SimpleImputer().fit_transform(H)
    err_ours = np.sqrt(np.mean((ours[holes] - X[holes]) ** 2))
    err_mean = np.sqrt(np.mean((theirs[holes] - X[holes]) ** 2))
    assert err_ours < 0.6 * err_mean


def test_in_a_pipeline() -> None:
    X, H = _gaussian_holes(n=300, seed=2)
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1
    pipeline = make_pipeline(GaussianMixtureImputer(random_state=0), LinearRegression())
    pipeline.fit(H, y)
    direct = LinearRegression().fit(GaussianMixtureImputer(random_state=0).fit_transform(H), y)
    np.testing.assert_allclose(pipeline.predict(H), direct.predict(pipeline[0].transform(H)))
    scores = cross_val_score(pipeline, H, y, cv=3)
    baseline = cross_val_score(make_pipeline(SimpleImputer(), LinearRegression()), H, y, cv=3)
    assert scores.mean() > baseline.mean()
    assert pipeline[0].get_feature_names_out().tolist() == ["x0", "x1", "x2"]


def test_refuses_what_it_cannot_use() -> None:
    _, H = _gaussian_holes(n=100)
    imputer = GaussianMixtureImputer().fit(H)
    with pytest.raises(ValueError, match="features"):
        imputer.transform(H[:, :2])
    bad = H.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        imputer.transform(bad)


def test_float32_rows_give_float32_values() -> None:
    _, H = _gaussian_holes(n=200)
    filled, std = GaussianMixtureImputer().fit(H).transform(H.astype(np.float32), return_std=True)
    assert filled.dtype == np.float32 and std.dtype == np.float32
    assert not np.isnan(filled).any()
