"""The drop-in behaviours scikit-learn's own tests found, held here against scikit-learn itself
(so they stay checked where its test files are not installed): warm start, float32 kept, the
single-row component with reg_covar=0."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture
from tests.conftest import COVARIANCE_TYPES, mixture_data


def _calls_until_converged(cls: type, X: np.ndarray, calls: int = 20) -> int | None:
    model = cls(2, warm_start=True, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for call in range(1, calls + 1):
            model.fit(X)
            if model.converged_:
                return call
    return None


def test_warm_start_compares_with_the_previous_lower_bound() -> None:
    X = np.random.RandomState(0).randn(200, 2)
    ours = _calls_until_converged(GaussianMixture, X)
    assert ours is not None
    assert ours == _calls_until_converged(SkGaussianMixture, X)


def test_warm_refit_of_a_converged_model_takes_one_iteration() -> None:
    X = mixture_data(3, n=300, n_features=2, n_components=2)
    model = GaussianMixture(2, random_state=0, tol=1e-6).fit(X)
    model.set_params(warm_start=True, max_iter=100)
    model.fit(X)
    assert model.converged_ and model.n_iter_ == 1


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_rows_give_float32_results(covariance_type: str) -> None:
    X = mixture_data(4, n=300, n_features=3).astype(np.float32)
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    reference = SkGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(model, name).dtype == getattr(reference, name).dtype == np.float32, name
        np.testing.assert_allclose(getattr(model, name), getattr(reference, name), rtol=2e-3)
    assert model.score_samples(X).dtype == np.float32
    assert model.predict_proba(X).dtype == np.float32
    # float64 rows given to a float32 model come back float64, as numpy promotes
    assert model.score_samples(X.astype(np.float64)).dtype == np.float64


def test_float32_fit_still_accumulates_in_float64() -> None:
    # far from the origin, float32 sums of squares about 0 would lose every digit of the spread
    X = (mixture_data(5, n=400, n_features=2, n_components=2) + 3000.0).astype(np.float32)
    ours = GaussianMixture(2, random_state=0).fit(X)
    exact = GaussianMixture(2, random_state=0).fit(X.astype(np.float64))
    np.testing.assert_allclose(ours.covariances_, exact.covariances_, rtol=1e-4)


def test_single_row_component_with_no_regularisation_fits() -> None:
    """A component on one row: its variance rounds to a tiny value, never below zero."""
    X = np.random.RandomState(0).uniform(size=(30, 3))
    means_init = np.vstack([X[0], X[1], X[2:].mean(axis=0)])
    model = GaussianMixture(
        3,
        covariance_type="spherical",
        reg_covar=0.0,
        means_init=means_init,
        weights_init=[1 / 30, 1 / 30, 28 / 30],
        precisions_init=[1e6, 1e6, 10.0],
        max_iter=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    assert np.all(model.covariances_ >= 0.0)
    assert np.all(model.covariances_[:2] < 1e-12)


def test_identical_rows_with_no_regularisation_still_raise() -> None:
    X = np.vstack([np.ones((5, 2)), np.zeros((5, 2))])
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(10, covariance_type="diag", reg_covar=0.0, random_state=0).fit(X)


@pytest.mark.parametrize("n_features", [1, 2])  # one column: the iterations of one C call
def test_verbose_lines_and_the_iteration_hook_see_every_iteration(
    n_features: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from gaussmix.mixture import iteration_hook

    X = mixture_data(3, n=300, n_features=n_features, n_components=2)
    kind = "V" if n_features == 1 else "full"
    options = {"covariance_type": kind, "random_state": 0, "tol": 1e-8, "max_iter": 40}
    quiet = GaussianMixture(2, **options).fit(X)  # no hook, verbose 0: no callback at all
    seen: list[tuple[int, float]] = []
    with iteration_hook(lambda n, bound: seen.append((n, bound))):
        hooked = GaussianMixture(2, verbose=2, verbose_interval=1, **options).fit(X)
    assert [n for n, _ in seen] == list(range(1, hooked.n_iter_ + 1))
    assert [bound for _, bound in seen] == hooked.lower_bounds_ == quiet.lower_bounds_
    lines = [line for line in capsys.readouterr().err.splitlines() if "Iteration " in line]
    assert len(lines) == hooked.n_iter_
