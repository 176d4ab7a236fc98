"""EM's stopping rules: the change of the mean log-likelihood (scikit-learn's) and mclust's
relative change of the total, |L_t - L_{t-1}| / (1 + |L_t|)."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import GaussianMixture
from tests.conftest import mixture_data


@pytest.mark.parametrize("tol", [1e-3, 1e-5])
def test_relative_rule_stops_at_the_first_small_relative_change(tol: float) -> None:
    X = mixture_data(4, n=300, n_features=2, n_components=3, spread=2.0)
    model = GaussianMixture(
        3, covariance_type="VVV", tol=tol, convergence="relative", max_iter=1000, random_state=0
    ).fit(X)
    assert model.converged_
    total = X.shape[0] * np.asarray(model.lower_bounds_)  # L_t, the total log-likelihood
    change = np.abs(np.diff(total)) / (1.0 + np.abs(total[1:]))
    assert change[-1] < tol
    assert np.all(change[:-1] >= tol)


def test_relative_rule_is_the_mean_rule_scaled_by_the_total() -> None:
    # |L_t - L_{t-1}| / (1 + |L_t|) = n |l_t - l_{t-1}| / (1 + n |l_t|): with tol_mean set to
    # the relative threshold times (1 + |L|) / n at the end, both rules stop together
    X = mixture_data(5, n=400, n_features=2, n_components=2)
    relative = GaussianMixture(2, tol=1e-6, convergence="relative", max_iter=1000, random_state=0)
    relative.fit(X)
    n, last = X.shape[0], relative.lower_bounds_[-1]
    mean = GaussianMixture(2, tol=1e-6 * (1 + n * abs(last)) / n, max_iter=1000, random_state=0)
    mean.fit(X)
    assert mean.convergence == "mean"  # the default, scikit-learn's
    assert abs(mean.n_iter_ - relative.n_iter_) <= 1


def test_unknown_rule_is_refused() -> None:
    X = mixture_data(5, n=50, n_features=2, n_components=2)
    with pytest.raises(ValueError, match="convergence"):
        GaussianMixture(2, convergence="absolute").fit(X)
