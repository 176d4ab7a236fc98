"""mclust's fourteen models (and E, V): parameter counts, M-steps against a numerical optimum,
EM monotone."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from gaussmix import (
    ComponentCollapseWarning,
    DegenerateCovarianceError,
    GaussianMixture,
    InnerIterationWarning,
)
from gaussmix.em.covariance import MCLUST_MODELS, REGISTRY, UNIVARIATE_MODELS, get_covariance
from gaussmix.em.mstep import estimate, stats_from_resp
from tests.conftest import mixture_data

ALL_MODELS = (*MCLUST_MODELS, *UNIVARIATE_MODELS)

# mclust's nVarParams (R/mclust.R), the covariances' free parameters for d features, G components
N_VAR_PARAMS: dict[str, Callable[[int, int], int]] = {
    "E": lambda d, G: 1,
    "V": lambda d, G: G,
    "EII": lambda d, G: 1,
    "VII": lambda d, G: G,
    "EEI": lambda d, G: d,
    "VEI": lambda d, G: G + (d - 1),
    "EVI": lambda d, G: 1 + G * (d - 1),
    "VVI": lambda d, G: G * d,
    "EEE": lambda d, G: d * (d + 1) // 2,
    "EVE": lambda d, G: 1 + G * (d - 1) + d * (d - 1) // 2,
    "VEE": lambda d, G: G + (d - 1) + d * (d - 1) // 2,
    "VVE": lambda d, G: G + G * (d - 1) + d * (d - 1) // 2,
    "EEV": lambda d, G: 1 + (d - 1) + G * d * (d - 1) // 2,
    "VEV": lambda d, G: G + (d - 1) + G * d * (d - 1) // 2,
    "EVV": lambda d, G: 1 - G + G * d * (d + 1) // 2,
    "VVV": lambda d, G: G * d * (d + 1) // 2,
}


def n_mclust_params(model: str, d: int, G: int) -> int:
    """mclust's nMclustParams: nVarParams + G d means + G - 1 proportions."""
    return N_VAR_PARAMS[model](d, G) + G * d + G - 1


def test_every_mclust_model_is_registered_under_its_name() -> None:
    assert set(N_VAR_PARAMS) == set(ALL_MODELS)
    assert {get_covariance(m).mclust for m in ALL_MODELS} == set(ALL_MODELS)
    # scikit-learn's four names are the same entries as mclust's
    for sk, mc in [("full", "VVV"), ("diag", "VVI"), ("tied", "EEE"), ("spherical", "VII")]:
        assert get_covariance(sk) is get_covariance(mc)
    assert len(REGISTRY) == len(ALL_MODELS)


@pytest.mark.parametrize("model", ALL_MODELS)
def test_parameter_counts_equal_mclusts(model: str) -> None:
    cov = get_covariance(model)
    for d in [1] if model in UNIVARIATE_MODELS else range(1, 8):
        for G in range(1, 10):
            ours = cov.n_parameters(G, d) + G * d + G - 1
            assert ours == n_mclust_params(model, d, G), (model, d, G)


@pytest.mark.parametrize("model", ["VEV", "EVE"])
def test_fitted_model_counts_its_parameters_as_mclust(model: str) -> None:
    X = mixture_data(1, n=200, n_features=3, n_components=2)
    fitted = GaussianMixture(2, covariance_type=model, random_state=0).fit(X)
    assert fitted._n_parameters() == n_mclust_params(model, 3, 2)
    assert np.isclose(
        fitted.bic(X), -2 * fitted.score(X) * 200 + n_mclust_params(model, 3, 2) * np.log(200)
    )


# --- the M-step against a direct numerical maximisation of the surrogate ------------------------
def _rotation(theta: np.ndarray, d: int) -> np.ndarray:
    """Cayley's map from d(d-1)/2 numbers to a rotation: (I - S)^{-1} (I + S), S skew."""
    S = np.zeros((d, d))
    S[np.triu_indices(d, 1)] = theta
    S = S - S.T
    return np.linalg.solve(np.eye(d) - S, np.eye(d) + S)


class Parametrisation:
    """Sigma_k = lambda_k D_k A_k D_k' from free parameters: log volumes, log shapes (the last of
    each set fixed by det A = 1) and the orientations through Cayley's map."""

    def __init__(self, model: str, d: int, G: int) -> None:
        self.d, self.G = d, G
        letters = model + "II" if model in UNIVARIATE_MODELS else model
        self.volume, self.shape, self.orientation = letters[0], letters[1], letters[2]
        n_vol = 1 if self.volume == "E" else G
        n_shape = {"I": 0, "E": d - 1, "V": G * (d - 1)}[self.shape]
        n_rot = {"I": 0, "E": d * (d - 1) // 2, "V": G * d * (d - 1) // 2}[self.orientation]
        self.sizes = (n_vol, n_shape, n_rot)
        self.size = sum(self.sizes)

    def covariances(self, theta: np.ndarray) -> np.ndarray:
        d, G = self.d, self.G
        n_vol, n_shape, _ = self.sizes
        vol = np.broadcast_to(np.exp(theta[:n_vol]), (G,))
        shape_free = theta[n_vol : n_vol + n_shape].reshape(-1, d - 1) if n_shape else None
        rot = theta[n_vol + n_shape :]
        out = np.empty((G, d, d))
        m = d * (d - 1) // 2
        for k in range(G):
            if shape_free is None:
                log_a = np.zeros(d)
            else:
                row = shape_free[0 if self.shape == "E" else k]
                log_a = np.append(row, -row.sum())
            if self.orientation == "I":
                D = np.eye(d)
            else:
                part = rot[:m] if self.orientation == "E" else rot[k * m : (k + 1) * m]
                D = _rotation(part, d)
            out[k] = vol[k] * (D * np.exp(log_a)) @ D.T
        return out


def minus_two_q(covariances: np.ndarray, W: np.ndarray, nk: np.ndarray) -> float:
    """sum_k N_k log det Sigma_k + tr(W_k Sigma_k^{-1})."""
    total = 0.0
    for S, Wk, n in zip(covariances, W, nk, strict=True):
        total += n * np.linalg.slogdet(S)[1] + np.trace(np.linalg.solve(S, Wk))
    return total


def _problem(model: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Random rows and responsibilities; the model's M-step covariances (K, D, D), the scatter
    matrices W (K, D, D) about the new means, and N (K,)."""
    rng = np.random.default_rng(seed)
    d = 1 if model in UNIVARIATE_MODELS else 3
    G = 2
    X = rng.standard_normal((40, d)) @ rng.standard_normal((d, d)) + rng.standard_normal(d)
    resp = rng.dirichlet(np.ones(G) * 0.7, size=40)
    cov = get_covariance(model)
    stats = stats_from_resp(X, resp, cov)
    _, means, covariances = estimate(stats, cov, 0.0)
    nk = resp.sum(axis=0)
    W = np.einsum("nk,nkd,nke->kde", resp, X[:, None] - means, X[:, None] - means)
    return cov.per_component(covariances, G, d), W, nk, d, G


@pytest.mark.parametrize("model", ALL_MODELS)
@pytest.mark.parametrize("seed", [0])
def test_mstep_maximises_the_surrogate_over_the_model(model: str, seed: int) -> None:
    ours, W, nk, d, G = _problem(model, seed)
    param = Parametrisation(model, d, G)
    assert param.size == N_VAR_PARAMS[model](d, G)  # the parametrisation is mclust's
    rng = np.random.default_rng(seed)
    best = np.inf
    for _ in range(3):
        theta0 = rng.normal(scale=0.5, size=param.size)
        result = minimize(
            lambda t: minus_two_q(param.covariances(t), W, nk),
            theta0,
            method="BFGS",
            options={"gtol": 1e-10, "maxiter": 5000},
        )
        best = min(best, result.fun)
    value = minus_two_q(ours, W, nk)
    assert abs(value - best) <= 1e-6 * max(1.0, abs(best)), (value, best)


@pytest.mark.parametrize("model", ["VEI", "VEE", "EVE", "VVE", "VEV"])
def test_iterative_mstep_reports_its_cap(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from gaussmix.em import constrained
    from gaussmix.em.errors import InnerIterationWarning

    monkeypatch.setattr(constrained, "INNER_MAX_ITER", 1)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3)) * [1.0, 2.0, 3.0]
    resp = rng.dirichlet(np.ones(3), size=50)
    cov = get_covariance(model)
    with pytest.warns(InnerIterationWarning, match=f"{model} M-step stopped at its cap of 1 "):
        estimate(stats_from_resp(X, resp, cov), cov, 0.0)


@pytest.mark.parametrize("model", ["VEI", "VEE", "EVE", "VVE", "VEV"])
def test_an_mstep_from_a_start_stops_at_its_own_cap_silently(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within EM (a start given) the M-step stops at WARM_MAX_ITER without a warning (a
    generalised EM step, the next goes on from it), in C and in numpy alike: one inner step
    gives the same covariances both ways, and they differ from the uncapped M-step's."""
    from gaussmix.em import compiled, constrained

    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 3)) * [1.0, 2.0, 3.0] @ rng.standard_normal((3, 3))
    cov = get_covariance(model)
    first, second = (stats_from_resp(X, rng.dirichlet(np.ones(3), size=60), cov) for _ in range(2))
    start = estimate(first, cov, 0.0)[2]
    full = estimate(second, cov, 0.0, start)[2]
    monkeypatch.setattr(constrained, "WARM_MAX_ITER", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InnerIterationWarning)
        one = estimate(second, cov, 0.0, start)[2]  # in C where the C loops were built
        monkeypatch.setattr(compiled, "_LIB", None)
        other = estimate(second, cov, 0.0, start)[2]  # numpy's loops
    np.testing.assert_allclose(one, other, rtol=1e-10, atol=1e-12 * np.abs(one).max())
    assert not np.allclose(one, full, rtol=1e-6)


def test_univariate_names_refuse_several_features() -> None:
    X = mixture_data(0, n=50, n_features=2, n_components=1)
    with pytest.raises(ValueError, match="'E' is for one feature and the data have 2; use 'EII'"):
        GaussianMixture(1, covariance_type="E").fit(X)


# --- EM is monotone for all sixteen ------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    model=st.sampled_from(ALL_MODELS),
    n_features=st.integers(2, 3),
    n_components=st.integers(1, 3),
)
def test_em_is_monotone_for_every_model(
    seed: int, model: str, n_features: int, n_components: int
) -> None:
    d = 1 if model in UNIVARIATE_MODELS else n_features
    X = mixture_data(seed % 1000, n=80, n_features=d, n_components=2)
    fitted = GaussianMixture(
        n_components,
        covariance_type=model,
        reg_covar=0.0,
        tol=0.0,
        max_iter=15,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ComponentCollapseWarning)
        try:
            fitted.fit(X)
        except DegenerateCovarianceError:
            assume(False)
    steps = np.diff(fitted.lower_bounds_)
    reseeded = [t - 1 for t, _ in fitted.reinitialized_]
    steps = np.delete(steps, [i for i in reseeded if i < steps.size])
    if steps.size:
        assert steps.min() >= -1e-9, f"{model}: the log-likelihood fell by {-steps.min():.3g}"


ITERATIVE_MODELS = ("VEI", "VEE", "EVE", "VVE", "VEV")


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    model=st.sampled_from(ITERATIVE_MODELS),
    n_features=st.integers(2, 6),
    n_components=st.integers(1, 4),
    cap=st.integers(1, 3),
    spread=st.sampled_from([0.0, 2.0, 5.0]),
    in_c=st.booleans(),
)
# a start with a variance at reg_covar against others of 1e10, where an MM step raised -2Q by
# 73 (rounding) until such a step was undone
@example(seed=8, model="EVE", n_features=5, n_components=3, cap=1, spread=5.0, in_c=True)
@example(seed=8, model="VVE", n_features=5, n_components=3, cap=1, spread=5.0, in_c=False)
def test_a_capped_mstep_from_the_last_one_never_lowers_the_surrogate(
    seed: int, model: str, n_features: int, n_components: int, cap: int, spread: float, in_c: bool
) -> None:
    """Generalised EM: started from the previous M-step's covariances and cut at
    WARM_MAX_ITER inner iterations, the M-step's covariances have -2Q at most the start's under
    the new statistics, in C and in numpy; columns whose scales span up to five orders of
    magnitude (state.x77's) included."""
    from gaussmix.em import compiled, constrained

    rng = np.random.default_rng(seed)
    n = 12 * n_components + 2 * n_features
    scales = np.logspace(0, spread, n_features)
    X = rng.standard_normal((n, n_features)) @ rng.standard_normal((n_features, n_features))
    X = X * scales
    cov = get_covariance(model)
    # as in EM, the responsibilities move a little between two M-steps (so the start is
    # nearly optimal for the second, and a cold start cut short would not reach it)
    resp = rng.dirichlet(np.ones(n_components) * 0.7, size=n)
    moved = resp * np.exp(0.05 * rng.standard_normal(resp.shape))
    first = stats_from_resp(X, resp, cov)
    second = stats_from_resp(X, moved / moved.sum(axis=1, keepdims=True), cov)
    reg = 1e-6
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", InnerIterationWarning)
        patch.setattr(constrained, "WARM_MAX_ITER", cap)
        if not in_c:
            patch.setattr(compiled, "_LIB", None)
        try:
            start = estimate(first, cov, reg)[2]
            new = estimate(second, cov, reg, start)[2]
        except DegenerateCovarianceError:
            assume(False)
    nk = second.nk + 10.0 * np.finfo(np.float64).eps
    d = second.sx / nk[:, None]
    W = cov.scatter(second.sxx, nk, d, reg)
    if W.ndim == 2:  # VEI's diagonal layout
        W = np.stack([np.diag(w) for w in W])
    per = [cov.per_component(c, n_components, n_features) for c in (start, new)]
    before, after = (minus_two_q(c, W, nk) for c in per)
    assert after <= before + 1e-9 * (1.0 + abs(before)), (before, after)


@pytest.mark.parametrize("model", MCLUST_MODELS)
def test_a_singular_scatter_is_a_degenerate_covariance_or_a_fit(model: str) -> None:
    # component 1 has no spread along the second axis: each model either pools it away or says
    # so as DegenerateCovarianceError, never with a numpy error or a warning
    W = np.stack([np.diag([1.0, 2.0, 3.0]), np.diag([1.0, 0.0, 2.0])])
    nk = np.array([3.0, 2.0])
    cov = get_covariance(model)
    layout = {
        (2, 3, 3): W,
        (2, 3): np.diagonal(W, axis1=1, axis2=2).copy(),
        (3, 3): W.sum(axis=0),
        (2,): np.trace(W, axis1=1, axis2=2) / 3,
    }[cov.shape(2, 3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        covariances = cov.constrain(layout, nk, None)
        try:
            cov.precisions_cholesky(covariances)
        except DegenerateCovarianceError:
            return
    assert np.all(np.isfinite(covariances))
