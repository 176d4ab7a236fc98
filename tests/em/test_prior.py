"""mclust's conjugate prior (em/prior.py): the MAP M-step of every model against a direct numerical
maximisation of the log posterior's surrogate, EM monotone in the log posterior, agreement with
R's mclust (a fixture written by tests/data/mclust_prior/make_fixture.py), a degenerate fit the
prior repairs, and the prior through the estimator, select, save/load and the command line."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from gaussmix import DegenerateCovarianceError, GaussianMixture, Prior, select
from gaussmix.datasets import load_faithful
from gaussmix.em.covariance import MCLUST_MODELS, UNIVARIATE_MODELS, get_covariance
from gaussmix.em.mstep import estimate, stats_from_resp
from gaussmix.em.params import Params
from gaussmix.em.prior import DataMoments, data_moments, log_prior, resolve
from tests.conftest import mixture_data
from tests.em.test_covariance_models import Parametrisation

ALL_MODELS = (*MCLUST_MODELS, *UNIVARIATE_MODELS)
FIXTURE = Path(__file__).parents[1] / "data" / "mclust_prior" / "fixture.json"
# the models whose components share one covariance: its prior counts once
ONE_COVARIANCE = {"EII", "EEI", "EEE", "E"}


def _layout(model: str) -> str:
    if model in {"EII", "VII", "E", "V"}:
        return "spherical"
    return "diag" if model in {"EEI", "VEI", "EVI", "VVI"} else "full"


def log_prior_direct(
    model: str,
    means: np.ndarray,
    sigmas: np.ndarray,
    mu_p: np.ndarray,
    kappa: float,
    nu: float,
    scale: np.ndarray,
) -> float:
    """log p(theta) + const from the densities themselves (Fraley and Raftery 2007):
    mu_k | Sigma_k ~ N(mu_P, Sigma_k / kappa); an inverse Wishart IW(nu, Lambda) on a whole
    matrix, an inverse gamma IG(nu/2, varsigma/2) on each variance (diagonal) or on the one
    variance (spherical, varsigma the mean of Lambda's diagonal), once per distinct covariance."""
    d = means.shape[1]
    total = 0.0
    for m, S in zip(means, sigmas, strict=True):
        r = m - mu_p
        total += -0.5 * np.linalg.slogdet(S / kappa)[1] - 0.5 * kappa * r @ np.linalg.solve(S, r)
    for S in sigmas[:1] if model in ONE_COVARIANCE else sigmas:
        layout = _layout(model)
        if layout == "full":
            total += -(nu + d + 1) / 2 * np.linalg.slogdet(S)[1]
            total += -0.5 * np.trace(np.linalg.solve(S, scale))
        elif layout == "diag":
            v = np.diagonal(S)
            total += np.sum(-(nu / 2 + 1) * np.log(v) - np.diagonal(scale) / (2 * v))
        else:
            s, varsigma = S[0, 0], np.trace(scale) / d
            total += -(nu / 2 + 1) * np.log(s) - varsigma / (2 * s)
    return float(total)


def _problem(model: str, seed: int) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray]:
    rng = np.random.default_rng(seed)
    d = 1 if model in UNIVARIATE_MODELS else 3
    X = rng.standard_normal((30, d)) @ rng.standard_normal((d, d)) + rng.standard_normal(d)
    resp = rng.dirichlet(np.ones(2) * 0.7, size=30)
    A = rng.standard_normal((d, d))
    scale = 0.3 * np.eye(d) + 0.1 * A @ A.T  # a scale the fit must notice
    return X, resp, d, 2, scale


def _minus_two_log_posterior(
    model: str,
    X: np.ndarray,
    resp: np.ndarray,
    means: np.ndarray,
    sigmas: np.ndarray,
    mu_p: np.ndarray,
    kappa: float,
    nu: float,
    scale: np.ndarray,
) -> float:
    """-2 [sum_kn q_kn log N(x_n | mu_k, Sigma_k) + log p(theta)], constants dropped."""
    total = 0.0
    for k, (m, S) in enumerate(zip(means, sigmas, strict=True)):
        Z = X - m
        total += resp[:, k].sum() * np.linalg.slogdet(S)[1]
        total += np.einsum("n,ni,ni->", resp[:, k], Z, np.linalg.solve(S, Z.T).T)
    return total - 2.0 * log_prior_direct(model, means, sigmas, mu_p, kappa, nu, scale)


@pytest.mark.parametrize("model", ALL_MODELS)
def test_map_mstep_maximises_the_log_posterior_over_the_model(model: str) -> None:
    X, resp, d, G, scale = _problem(model, 0)
    mu_p, kappa, nu = X.mean(axis=0) + 0.5, 0.7, d + 2.5
    cov = get_covariance(model)
    moments = DataMoments(float(len(X)), X.mean(axis=0), np.cov(X.T).reshape(d, d))
    prior = resolve(Prior(shrinkage=kappa, mean=mu_p, dof=nu, scale=scale), moments, G, cov)
    assert prior is not None
    _, means, covariances = estimate(stats_from_resp(X, resp, cov), cov, 0.0, prior=prior)
    ours = _minus_two_log_posterior(
        model, X, resp, means, cov.per_component(covariances, G, d), mu_p, kappa, nu, scale
    )
    param = Parametrisation(model, d, G)

    def objective(t: np.ndarray) -> float:
        m = t[: G * d].reshape(G, d)
        return _minus_two_log_posterior(
            model, X, resp, m, param.covariances(t[G * d :]), mu_p, kappa, nu, scale
        )

    rng = np.random.default_rng(1)
    best = np.inf
    for _ in range(3):
        t0 = np.concatenate([np.tile(X.mean(axis=0), G), rng.normal(scale=0.5, size=param.size)])
        result = minimize(objective, t0, method="BFGS", options={"gtol": 1e-10, "maxiter": 5000})
        best = min(best, result.fun)
    assert abs(ours - best) <= 1e-6 * max(1.0, abs(best)), (ours, best)
    # the prior moved the fit: without it the M-step is elsewhere
    _, means_ml, _ = estimate(stats_from_resp(X, resp, cov), cov, 0.0)
    assert not np.allclose(means, means_ml, atol=1e-3)


def test_registry_log_prior_is_the_densities() -> None:
    """log_prior (from the registry's prior_terms) equals the direct densities up to a
    constant: the difference is the same at two parameter values, for every model."""
    for model in ALL_MODELS:
        X, resp, d, G, scale = _problem(model, 3)
        cov = get_covariance(model)
        moments = DataMoments(float(len(X)), X.mean(axis=0), np.cov(X.T).reshape(d, d))
        prior = resolve(Prior(shrinkage=0.4, dof=d + 1.5, scale=scale), moments, G, cov)
        assert prior is not None
        gaps = []
        for r in (resp, resp[::-1]):
            w, means, covariances = estimate(stats_from_resp(X, r, cov), cov, 0.0)
            params = Params(w, means, cov.precisions_cholesky(covariances), cov, covariances)
            direct = log_prior_direct(
                model,
                means,
                cov.per_component(covariances, G, d),
                prior.mean,
                0.4,
                d + 1.5,
                scale,
            )
            gaps.append(log_prior(params, prior) - direct)
        assert gaps[0] == pytest.approx(gaps[1], abs=1e-9), model


# --- EM with the prior never lowers the log posterior -------------------------------------
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), model=st.sampled_from(ALL_MODELS), k=st.integers(1, 3))
def test_map_em_is_monotone_in_the_log_posterior(seed: int, model: str, k: int) -> None:
    d = 1 if model in UNIVARIATE_MODELS else 2
    X = mixture_data(seed, n=60, n_features=d, n_components=2)
    cov = get_covariance(model)
    posterior: list[float] = []
    model_ = GaussianMixture(
        k,
        covariance_type=model,
        prior="mclust",
        reg_covar=0.0,
        tol=0.0,
        max_iter=1,
        random_state=seed,
        warm_start=True,
    )
    prior = resolve("mclust", data_moments(lambda: [(X, None)]), k, cov)
    assert prior is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(12):
            model_.fit(X)
            if model_.n_reinitialized_:
                return  # a re-seeded component leaves EM: nothing to compare
            params = model_._params()
            posterior.append(float(model_.score(X) * len(X)) + log_prior(params, prior))
    steps = np.diff(posterior)
    assert np.all(steps >= -1e-9 * np.abs(posterior[1:])), (model, steps)


# --- agreement with R's mclust -------------------------------------------------------------
def _start(G: int, X: np.ndarray) -> np.ndarray:
    """The fixture's start rules (its provenance states them), as one-hot rows."""
    faithful = load_faithful().X
    if G == 2:
        labels = np.where(faithful[:, 0] > 3, 0, 1)
    else:
        labels = np.digitize(faithful[:, 1], [60, 75], right=True)
    return np.eye(G)[labels]


# E, V, VII, VVI, EEE, VVV: mclust's Fortran has these very formulas
EXACT = {"E", "V", "VII", "VVI", "EEE", "VVV"}


def _fixture_fits() -> list[dict[str, object]]:
    """The fixture's fits compared here: the six models with mclust's formulas at K = 2 and 3,
    the other six at K = 2 (at K = 3 mclust's different M-steps end in other optima, VEI's
    in NA); V,3 is left out: mclust took 19,853 iterations to converge."""
    fits = json.loads(FIXTURE.read_text())["fits"]
    return [
        f
        for f in fits
        if f["loglik"] is not None
        and f["iterations"] < 1000
        and (f["model"] in EXACT or f["G"] == 2)
    ]


@pytest.mark.parametrize("fit", _fixture_fits(), ids=lambda f: f"{f['model']},{f['G']}")
def test_map_em_agrees_with_mclust(fit: dict[str, object]) -> None:
    model, G = str(fit["model"]), int(fit["G"])  # type: ignore[call-overload]
    X = load_faithful().X[:, :1] if model in UNIVARIATE_MODELS else load_faithful().X
    cov = get_covariance(model)
    prior = resolve("mclust", data_moments(lambda: [(X, None)]), G, cov)
    weights, means, covariances = estimate(
        stats_from_resp(X, _start(G, X), cov), cov, 0.0, prior=prior
    )
    gm = GaussianMixture(
        G,
        covariance_type=model,
        prior="mclust",
        reg_covar=0.0,
        tol=1e-14,
        max_iter=5000,
        weights_init=weights,
        means_init=means,
        precisions_init=cov.precisions(cov.precisions_cholesky(covariances)),
    ).fit(X)
    loglik = float(fit["loglik"])  # type: ignore[arg-type]
    if model in EXACT:
        assert gm.log_likelihood_ == pytest.approx(loglik, rel=1e-8)
        np.testing.assert_allclose(gm.means_, fit["mean"], rtol=1e-7)
        sigma = cov.per_component(gm.covariances_, G, X.shape[1])
        np.testing.assert_allclose(sigma, fit["sigma"], rtol=1e-7)
        np.testing.assert_allclose(gm.weights_, fit["pro"], rtol=1e-7)
        # BIC as mclust reports it with a prior: the log-likelihood at the MAP, usual count
        assert gm._n_parameters() == fit["n_parameters"]
        assert -gm.bic(X) == pytest.approx(float(fit["bic"]), rel=1e-8)  # type: ignore[arg-type]
    else:
        # mclust's own code is not the mode of one prior there (em/prior.py): close, not equal
        assert gm.log_likelihood_ == pytest.approx(loglik, rel=5e-3)


# --- what the prior is for ---------------------------------------------------------------
def _duplicated_rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    spread = rng.normal(0.0, 1.0, size=(60, 2))
    return np.vstack([spread, np.tile([[4.0, 4.0]], (8, 1))])  # 8 copies of one row


def test_the_prior_repairs_a_fit_on_duplicated_rows() -> None:
    X = _duplicated_rows()
    kwargs = {"covariance_type": "VVV", "reg_covar": 0.0, "random_state": 0}
    with pytest.raises(DegenerateCovarianceError):
        GaussianMixture(2, **kwargs).fit(X)
    gm = GaussianMixture(2, prior="mclust", **kwargs).fit(X)
    assert np.isfinite(gm.log_likelihood_)
    assert np.all(np.linalg.eigvalsh(gm.covariances_) > 0)
    # one component holds the copies, with a small but positive covariance from the prior
    k = int(np.argmin(np.linalg.det(gm.covariances_)))
    np.testing.assert_allclose(gm.means_[k], [4.0, 4.0], atol=0.05)


def test_a_prior_of_its_own_and_the_defaults() -> None:
    X = load_faithful().X
    default = GaussianMixture(2, prior="mclust", random_state=0).fit(X)
    same = GaussianMixture(2, prior=Prior(), random_state=0).fit(X)
    np.testing.assert_allclose(default.means_, same.means_)
    strong = GaussianMixture(2, prior=Prior(shrinkage=50.0), random_state=0).fit(X)
    centre = X.mean(axis=0)
    # a heavier prior pulls the means towards the column means
    assert np.abs(strong.means_ - centre).sum() < np.abs(default.means_ - centre).sum()


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        (Prior(shrinkage=-1.0), "shrinkage must be >= 0"),
        (Prior(mean=[1.0, 2.0, 3.0]), "prior's mean has 3 values and the data 2 columns"),
        (Prior(dof=0.0), "dof must be > 0"),
        (Prior(scale=-1.0), "scale must be positive"),
        (Prior(scale=[[1.0, 2.0], [2.0, 1.0]]), "scale must be positive"),
    ],
)
def test_a_bad_prior_is_one_clear_line(prior: Prior, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2, prior=prior).fit(load_faithful().X)


def test_partial_fit_takes_the_prior() -> None:
    """The first step of stepwise EM on the whole data is one MAP-EM iteration from the same
    start: the prior weighs against the rows seen, as in fit."""
    X = load_faithful().X
    kwargs = {"covariance_type": "VEV", "prior": "mclust", "random_state": 0}
    online = GaussianMixture(2, **kwargs).partial_fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        batch = GaussianMixture(2, max_iter=1, **kwargs).fit(X)
    np.testing.assert_allclose(online.means_, batch.means_, rtol=1e-10)
    # VEV's inner iteration: fit warm-starts it, stepwise EM does not; both stop within its
    # tolerance (1.5e-8 relative in the surrogate)
    np.testing.assert_allclose(online.covariances_, batch.covariances_, rtol=1e-6)
    without = GaussianMixture(2, covariance_type="VEV", random_state=0).partial_fit(X)
    assert not np.allclose(online.covariances_, without.covariances_, rtol=1e-6)


def test_prior_round_trips_in_a_model_file(tmp_path: Path) -> None:
    X = load_faithful().X
    prior = Prior(shrinkage=0.2, mean=[3.0, 70.0], dof=5.0, scale=[[0.5, 0.1], [0.1, 20.0]])
    gm = GaussianMixture(2, prior=prior, random_state=0).fit(X)
    loaded = GaussianMixture.load(gm.save(tmp_path / "m.npz"))
    assert loaded.prior == prior
    assert (
        GaussianMixture.load(
            GaussianMixture(2, prior="mclust").fit(X).save(tmp_path / "d.npz")
        ).prior
        == "mclust"
    )


def test_select_takes_the_prior() -> None:
    X = load_faithful().X
    result = select(X, [2, 3], ["VVV", "EEE"], prior="mclust", n_jobs=1, random_state=0)
    assert result.best.prior == "mclust"
    ref = GaussianMixture(
        result.best.n_components, covariance_type=result.best.covariance_type, prior="mclust"
    )
    assert ref.prior == result.best.prior


def test_data_moments_weigh_rows_as_copies_and_leave_out_holes() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 3))
    w = rng.integers(1, 4, size=40).astype(float)
    weighted = data_moments(lambda: [(X[:25], w[:25]), (X[25:], w[25:])])
    repeated = np.repeat(X, w.astype(int), axis=0)
    assert weighted.n == repeated.shape[0]
    np.testing.assert_allclose(weighted.mean, repeated.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(weighted.covariance, np.cov(repeated.T), rtol=1e-12)
    holes = X.copy()
    holes[[3, 7], 1] = np.nan
    complete = data_moments(lambda: [(holes, None)])
    np.testing.assert_allclose(complete.mean, np.delete(X, [3, 7], axis=0).mean(axis=0))


def test_models_that_coincide_still_coincide_with_the_prior() -> None:
    """With one component every model with the same layout family is the same model, and in one
    dimension the spherical, diagonal and full ones are: the prior keeps them equal (its scale
    and count are the same there), so a grid may fit such cells once."""
    rng = np.random.default_rng(4)

    def fitted(model: str, X: np.ndarray, K: int) -> np.ndarray:
        cov = get_covariance(model)
        resp = rng_resp[K]
        prior = resolve("mclust", data_moments(lambda: [(X, None)]), K, cov)
        _, _, covariances = estimate(stats_from_resp(X, resp, cov), cov, 0.0, prior=prior)
        return cov.per_component(covariances, K, X.shape[1])

    X = rng.normal(size=(50, 3)) * [1.0, 2.0, 0.5]
    rng_resp = {1: np.ones((50, 1)), 2: rng.dirichlet([1.0, 1.0], size=50)}
    for group in (["EII", "VII"], ["EEI", "VEI", "EVI", "VVI"], ["EEE", "VEE", "EEV", "VVV"]):
        first = fitted(group[0], X, 1)
        for model in group[1:]:
            np.testing.assert_allclose(fitted(model, X, 1), first, rtol=1e-7, err_msg=model)
    x = X[:, :1]
    for group in (["E", "EII", "EEI", "EEE"], ["V", "VII", "VVI", "VVV"]):
        first = fitted(group[0], x, 2)
        for model in group[1:]:
            np.testing.assert_allclose(fitted(model, x, 2), first, rtol=1e-10, err_msg=model)
