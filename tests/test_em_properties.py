"""Laws of EM: the log-likelihood never falls, weights count rows, degenerate data is handled."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from gaussmix import ComponentCollapseWarning, DegenerateCovarianceError, GaussianMixture
from tests.conftest import COVARIANCE_TYPES, mixture_data


@given(
    seed=st.integers(0, 2**32 - 1),
    n_features=st.integers(1, 4),
    true_components=st.integers(1, 4),
    n_components=st.integers(1, 4),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    n_rows=st.integers(60, 300),
    init_params=st.sampled_from(["kmeans", "k-means++", "random", "random_from_data"]),
)
def test_em_never_decreases_the_log_likelihood(
    seed: int,
    n_features: int,
    true_components: int,
    n_components: int,
    covariance_type: str,
    n_rows: int,
    init_params: str,
) -> None:
    X = mixture_data(seed, n=n_rows, n_features=n_features, n_components=true_components)
    model = GaussianMixture(
        n_components,
        covariance_type=covariance_type,
        init_params=init_params,
        tol=0.0,
        max_iter=25,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ComponentCollapseWarning)
        model.fit(X)
    history = np.asarray(model.lower_bounds_)
    steps = np.diff(history)
    # steps[t - 1] goes from iteration t to t + 1; a component re-seeded in iteration t's M-step
    # restarts the climb there, so that one step is not an EM step
    reseeded = [t - 1 for t, _ in model.reinitialized_]
    steps = np.delete(steps, [i for i in reseeded if i < steps.size])
    if steps.size == 0:
        return
    # reg_covar (1e-6) makes the M-step maximise Q only up to second order in reg_covar over a
    # component's smallest variance: about sum_k pi_k D (reg_covar / lambda_min,k)^2 per row,
    # which matters when a component sits on a few rows (hypothesis found one at 2e-4)
    slack = 1e-8 + _regularisation_slack(model)
    assert steps.min() >= -slack, f"log-likelihood fell by {-steps.min():.3g} (slack {slack:.3g})"
    # and the final parameters are at least as good as the last E-step's
    assert model.score(X) >= history[-1] - slack


def _regularisation_slack(model: GaussianMixture) -> float:
    """sum_k pi_k D (reg_covar / smallest variance of component k)^2."""
    cov, kind = np.asarray(model.covariances_), model.covariance_type
    smallest = {
        "full": lambda: np.array([np.linalg.eigvalsh(c).min() for c in cov]),
        "tied": lambda: np.full(model.n_components, np.linalg.eigvalsh(cov).min()),
        "diag": lambda: cov.min(axis=1),
        "spherical": lambda: cov,
    }[kind]()
    ratio = model.reg_covar / smallest
    return float(np.sum(model.weights_ * model.n_features_in_ * ratio**2))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows(covariance_type: str) -> None:
    rng = np.random.default_rng(4)
    X = mixture_data(4, n=150, n_features=2)
    weights = rng.integers(0, 4, size=len(X))
    start = GaussianMixture(3, covariance_type=covariance_type, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X)
    kwargs = dict(
        covariance_type=covariance_type,
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
        tol=1e-10,
        max_iter=200,
    )
    weighted = GaussianMixture(3, **kwargs).fit(X, sample_weight=weights)
    repeated = GaussianMixture(3, **kwargs).fit(np.repeat(X, weights, axis=0))
    np.testing.assert_allclose(weighted.weights_, repeated.weights_, rtol=1e-10)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-10)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-9)
    np.testing.assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-10)
    assert weighted.n_iter_ == repeated.n_iter_


def test_weights_change_the_fit() -> None:
    """A weighted fit is not the unweighted one (the weights are not ignored)."""
    X = mixture_data(8, n=200, n_features=2, n_components=2)
    w = np.where(X[:, 0] > np.median(X[:, 0]), 5.0, 1.0)
    a = GaussianMixture(2, random_state=0).fit(X)
    b = GaussianMixture(2, random_state=0).fit(X, sample_weight=w)
    assert not np.allclose(np.sort(a.weights_), np.sort(b.weights_), atol=1e-3)


def test_collapsed_component_is_reseeded_at_the_worst_explained_point() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, size=(150, 2)), rng.normal(8, 1, size=(150, 2))])
    X = np.vstack([X, [[30.0, -30.0]]])  # one outlier, the worst-explained row
    means = np.array([[0.0, 0.0], [8.0, 8.0], [1e4, 1e4]])  # the third explains nothing
    precisions = np.array([np.eye(2), np.eye(2), np.eye(2) * 100])
    model = GaussianMixture(
        3,
        weights_init=np.array([0.5, 0.5 - 1e-12, 1e-12]),
        means_init=means,
        precisions_init=precisions,
        max_iter=50,
    )
    with pytest.warns(ComponentCollapseWarning, match="component 2 collapsed"):
        model.fit(X)
    assert model.n_reinitialized_ >= 1
    # after re-seeding at the outlier, component 2 explains it
    assert model.predict([[30.0, -30.0]])[0] == 2
    assert np.all(model.weights_ > 0)


def test_not_positive_definite_after_reg_covar_names_the_component() -> None:
    X = np.column_stack([np.arange(20.0), np.ones(20)])  # a constant column: zero variance
    with pytest.raises(DegenerateCovarianceError, match=r"component 0 .* reg_covar") as info:
        GaussianMixture(1, reg_covar=0.0).fit(X)
    assert info.value.component == 0
    assert "\n" not in str(info.value)
    # and the advice works
    GaussianMixture(1, reg_covar=1e-6).fit(X)


def test_non_convergence_warns() -> None:
    X = mixture_data(1, n=300)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        GaussianMixture(3, max_iter=2, tol=1e-12, random_state=0).fit(X)


def test_warm_start_continues_from_the_previous_solution() -> None:
    X = mixture_data(2, n=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(3, warm_start=True, max_iter=3, tol=0, random_state=0).fit(X)
        first = model.lower_bounds_[-1]
        model.fit(X)
    assert model.lower_bounds_[0] >= first - 1e-12
    reference = GaussianMixture(3, max_iter=6, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference.fit(X)
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-10)


def test_fit_predict_agrees_with_predict() -> None:
    X = mixture_data(6, n=300)
    model = GaussianMixture(3, random_state=0)
    labels = model.fit_predict(X)
    np.testing.assert_array_equal(labels, model.predict(X))


def test_float32_input_is_accepted() -> None:
    X = mixture_data(7, n=300)
    a = GaussianMixture(3, random_state=0).fit(X.astype(np.float32))
    assert a.means_.dtype == np.float32  # kept float32, as scikit-learn does
    assert np.isfinite(a.lower_bound_)


def test_log_likelihood_is_that_of_the_final_parameters() -> None:
    X = mixture_data(9, n=250)
    w = np.random.default_rng(0).integers(1, 3, size=len(X)).astype(float)
    model = GaussianMixture(3, random_state=0).fit(X, sample_weight=w)
    assert model.log_likelihood_ == pytest.approx(w @ model.score_samples(X), rel=1e-12)
    unweighted = GaussianMixture(3, random_state=0).fit(X)
    assert unweighted.log_likelihood_ == pytest.approx(unweighted.score(X) * len(X), rel=1e-12)
    assert unweighted.bic(X) == pytest.approx(
        -2 * unweighted.log_likelihood_ + unweighted._n_parameters() * np.log(len(X))
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_kernel_matches_float64(covariance_type: str) -> None:
    X = mixture_data(12, n=4000, n_features=5, n_components=4)
    kwargs = dict(covariance_type=covariance_type, random_state=0, tol=1e-5, max_iter=500)
    single = GaussianMixture(4, dtype=np.float32, **kwargs).fit(X)
    double = GaussianMixture(4, **kwargs).fit(X)
    assert single.means_.dtype == np.float64
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-4)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(single.covariances_, double.covariances_, rtol=1e-3, atol=1e-3)


def test_float32_redoes_a_degenerate_m_step_in_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    """An M-step from single-precision sums that is not positive definite is redone from
    float64 sums; in float64 the same failure is the user's error."""
    from gaussmix.em.mstep import FitMStep  # run_em's M-step, one per fit

    real_mstep = FitMStep.__call__
    calls = {"n": 0}

    def failing_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise DegenerateCovarianceError("not positive definite", component=0)
        return real_mstep(*args, **kwargs)

    monkeypatch.setattr(FitMStep, "__call__", failing_once)
    X = mixture_data(13, n=500)
    model = GaussianMixture(3, dtype=np.float32, random_state=0).fit(X)
    assert calls["n"] >= 2 and np.isfinite(model.lower_bound_)
    calls["n"] = 0
    from gaussmix.em import lean  # float64: the Python loop's M-step (the C loop's hands back)

    monkeypatch.setattr(lean, "WHOLE_LOOP_IN_C", False)
    with pytest.raises(DegenerateCovarianceError):
        GaussianMixture(3, random_state=0).fit(X)
