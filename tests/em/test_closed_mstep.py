"""The closed-form M-steps in C (``_kernels.c``'s mstep_closed through ``mstep.FitMStep``)
against the numpy M-step (``mstep.mstep``), their reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.em import compiled
from gaussmix.em.covariance import REGISTRY, get_covariance
from gaussmix.em.errors import DegenerateCovarianceError
from gaussmix.em.mstep import FitMStep, mstep, stats_from_resp
from gaussmix.em.params import Params
from gaussmix.em.prior import data_moments, resolve
from gaussmix.em.stats import SuffStats
from tests.conftest import mixture_data

needs_c = pytest.mark.skipif(not compiled.AVAILABLE, reason="the C loops were not built here")

CLOSED = ("VVV", "EEE", "VVI", "VII", "EII", "EEI", "EVI")
ITERATIVE = ("VEI", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV")


def test_the_registry_names_each_models_own_c_m_step() -> None:
    """Every closed-form model has a closed C M-step of its own name (E and V: EII's and
    VII's at D = 1); the iterative models stored in their layouts inherit none of those but
    name their own constrained one."""
    names = {cov.mclust: cov.compiled_mstep for cov in REGISTRY.values()}
    assert {m: names[m] for m in CLOSED} == {m: m for m in CLOSED}
    assert set(CLOSED) == set(compiled._MSTEP_MODELS)
    assert names["E"] == "EII" and names["V"] == "VII"
    assert {m: names[m] for m in ITERATIVE} == {m: m for m in ITERATIVE}
    assert set(ITERATIVE) == set(compiled.MSTEP_KERNELS)


def _rows(
    K: int, D: int, weighted: bool, empty: bool, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Random rows (n, D) far from the origin, random responsibilities (n, K) with component
    1 empty when ``empty``, and rows' weights (n,) (some near zero) or None."""
    rng = np.random.default_rng(seed)
    n = 12 * K + 3 * D
    X = rng.standard_normal((n, D)) @ rng.standard_normal((D, D)) + 5.0
    resp = rng.dirichlet(np.ones(K) * 0.7, size=n)
    if empty:
        resp[:, 1] = 0.0  # an empty component: N_k is the floor alone
        resp /= resp.sum(axis=1, keepdims=True)
    weights = rng.uniform(0.0, 2.0, size=n) if weighted else None
    return X, resp, weights


def _compare(got: Params, want: Params) -> None:
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14 * np.abs(b).max(), err_msg=name)


def _shifted(stats: SuffStats, cov: object, rng: np.random.Generator) -> SuffStats:
    """The same statistics about shifts off the means, as an EM iteration's are."""
    shift = stats.shift + 0.1 * rng.standard_normal(stats.shift.shape)
    move = shift - stats.shift
    return SuffStats(
        stats.n, 0.0, stats.nk, stats.sx - stats.nk[:, None] * move,
        cov.move_second_moment(stats.sxx, stats.sx, stats.nk, move),  # type: ignore[attr-defined]
        shift, np.inf, np.zeros(shift.shape[1]),
    )  # fmt: skip


@needs_c
@pytest.mark.parametrize("model", [*CLOSED, "E", "V"])
@pytest.mark.parametrize("weighted", [False, True])
def test_c_mstep_equals_numpy(model: str, weighted: bool) -> None:
    """K = 1..9, D = 1..10 (E and V: D = 1), reg_covar 0 and > 0, rows' weights or none:
    the whole M-step in C took them, and its parameters equal numpy's to 1e-10 relative."""
    cov = get_covariance(model)
    dims = [1] if model in ("E", "V") else range(1, 11)
    rng = np.random.default_rng(0)
    for K, D, reg_covar in itertools.product(range(1, 10), dims, (0.0, 1e-3)):
        # an empty component (N_k the floor alone) is degenerate without reg_covar
        X, resp, weights = _rows(K, D, weighted, K > 2 and reg_covar > 0, seed=K * 100 + D)
        stats = _shifted(stats_from_resp(X, resp, cov, weights), cov, rng)
        step = FitMStep(cov, (K, D), reg_covar)
        assert step.compiled is not None
        assert step.compiled(stats.nk, stats.sx, stats.sxx, stats.shift) is not None
        _compare(step(stats), mstep(stats, cov, reg_covar))


@needs_c
@pytest.mark.parametrize("model", CLOSED)
def test_a_degenerate_covariance_is_named_as_before(model: str) -> None:
    """Component 1 on one row (zero scatter) without reg_covar: C declines, and the numpy
    M-step raises the error naming the component (the shared covariance: none), as without C."""
    cov = get_covariance(model)
    X = mixture_data(2, n=40, n_features=3)
    resp = np.eye(3)[np.arange(40) % 3]
    stats = stats_from_resp(X, resp, cov)
    sx, sxx = stats.sx.copy(), stats.sxx.copy()
    sx[1] = 0.0
    if cov.one_covariance:  # shared: degenerate only when every component is
        sxx[...] = 0.0
        sx[...] = 0.0
    else:
        sxx[1] = 0.0
    stats = SuffStats(stats.n, 0.0, stats.nk, sx, sxx, stats.shift, np.inf, np.zeros(3))
    step = FitMStep(cov, (3, 3), 0.0)
    assert step.compiled is not None
    assert step.compiled(stats.nk, stats.sx, stats.sxx, stats.shift) is None
    with pytest.raises(DegenerateCovarianceError) as want:
        mstep(stats, cov, 0.0)
    with pytest.raises(DegenerateCovarianceError) as got:
        step(stats)
    assert str(got.value) == str(want.value)
    assert got.value.component == want.value.component


def test_what_fit_mstep_leaves_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A prior, an iterative model (its own C, constrained_mstep), whole matrices
    above the size limit, and no C loops (GAUSSMIX_COMPILED=0) run ``mstep``, with its
    results."""
    X = mixture_data(3, n=200, n_features=3)
    resp = np.eye(3)[np.arange(200) % 3]
    full = get_covariance("VVV")
    prior = resolve("mclust", data_moments(lambda: [(X, None)]), 3, full)
    stats = stats_from_resp(X, resp, full)
    step = FitMStep(full, (3, 3), 1e-6, prior)
    assert step.compiled is None
    _compare(step(stats), mstep(stats, full, 1e-6, None, prior))
    for model in ITERATIVE:
        assert FitMStep(get_covariance(model), (3, 3), 1e-6).compiled is None
    monkeypatch.setattr(compiled, "CLOSED_MSTEP_MAX_FEATURES", 2)
    for model in ("VVV", "EEE"):
        assert FitMStep(get_covariance(model), (3, 3), 1e-6).compiled is None
    step = FitMStep(get_covariance("VVI"), (3, 3), 1e-6)  # the variances have no size limit
    assert (step.compiled is None) == (not compiled.AVAILABLE)
    monkeypatch.setattr(compiled, "_LIB", None)
    step = FitMStep(get_covariance("EEE"), (3, 3), 1e-6)
    assert step.compiled is None
    tied = get_covariance("EEE")
    stats = stats_from_resp(X, resp, tied)
    _compare(step(stats), mstep(stats, tied, 1e-6))


@needs_c
@pytest.mark.parametrize("model", CLOSED)
def test_a_fit_with_the_c_mstep_equals_the_numpy_fit(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """Whole fits (the lean pass, so C from the E-step to the next), with the C M-step and
    with numpy's: the same iterations, bounds and parameters to rounding."""
    X = mixture_data(7, n=300, n_features=3)

    def fit() -> GaussianMixture:
        return GaussianMixture(4, covariance_type=model, random_state=0, tol=1e-8).fit(X)

    with_c = fit()
    monkeypatch.setattr(compiled, "_MSTEP_MODELS", {})
    with_numpy = fit()
    assert with_c.n_iter_ == with_numpy.n_iter_
    np.testing.assert_allclose(with_c.lower_bounds_, with_numpy.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(with_c.means_, with_numpy.means_, rtol=1e-10)
    np.testing.assert_allclose(with_c.covariances_, with_numpy.covariances_, rtol=1e-10)
    np.testing.assert_allclose(with_c.weights_, with_numpy.weights_, rtol=1e-10)
