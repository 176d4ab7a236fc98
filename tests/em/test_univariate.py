"""The univariate models' whole fit in one C call (``lean.UnivariateLoop``, ``_kernels.c``'s
``univariate_em``) against run_em's Python loop, which stays the reference."""

from __future__ import annotations

import warnings
import weakref
from typing import Any, NamedTuple

import numpy as np
import pytest

from gaussmix import GaussianMixture, select
from gaussmix.data.sources import ArraySource
from gaussmix.em import compiled, lean
from gaussmix.em.covariance import REGISTRY, get_covariance
from gaussmix.em.errors import ComponentCollapseWarning
from gaussmix.em.init import initial_params
from gaussmix.em.loop import EMResult, run_em
from gaussmix.em.parallel import InProcess
from gaussmix.em.params import Params
from gaussmix.em.prior import Prior, data_moments, resolve
from gaussmix.errors import GaussmixError

needs_c = pytest.mark.skipif(not compiled.AVAILABLE, reason="the C loops were not built here")
RTOL = 1e-10


def _rows(seed: int, n: int = 240) -> np.ndarray:
    """One column: three groups of different spread, at an offset and scale of the seed's."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 3, size=n)
    X = rng.normal(size=n) * np.array([1.0, 0.3, 2.0])[groups] + groups * 3.0
    return (X * 10.0 ** rng.uniform(-3, 3) + rng.uniform(-1e3, 1e3))[:, None]


def _start(X: np.ndarray, model: str, k: int, seed: int = 0) -> Params:
    rng = np.random.RandomState(seed)
    cov = get_covariance(model)
    return initial_params(lambda: (X, None), k, cov, method="kmeans", rng=rng, reg_covar=1e-6)


class Run(NamedTuple):
    result: EMResult
    c_calls: int  # how many times the C loop ran


def _fit(X: np.ndarray, w: np.ndarray | None, params: Params, in_c: bool, **kwargs: Any) -> Run:
    """run_em on the rows, by the C loop (in_c) or run_em's Python loop."""
    calls: list[int] = []
    original = lean.UnivariateLoop.__call__

    def counted(self: lean.UnivariateLoop, *args: Any, **kw: Any) -> lean.WholeRun:
        calls.append(1)
        return original(self, *args, **kw)

    settings = {"tol": 1e-8, "max_iter": 300, "reg_covar": 1e-6, **kwargs}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lean, "UNIVARIATE_IN_C", in_c)
        patch.setattr(lean.UnivariateLoop, "__call__", counted)
        result = run_em(InProcess(ArraySource(X, w)), 4096, params, **settings)
    return Run(result, len(calls))


def _same(run_a: Run, run_b: Run) -> None:
    a, b = run_a.result, run_b.result
    assert a.n_iter == b.n_iter
    assert a.converged == b.converged
    assert a.reinitialized == b.reinitialized
    np.testing.assert_allclose(a.lower_bounds, b.lower_bounds, rtol=RTOL, atol=0)
    for name in ("weights", "means", "precisions_cholesky", "covariances"):
        got, want = getattr(a.params, name), getattr(b.params, name)
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=0, err_msg=name)


def _c_ran(run: Run) -> bool:
    return run.c_calls > 0


@needs_c
@pytest.mark.parametrize("relative", [False, True], ids=["mean", "relative"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("model", ["E", "V", "spherical", "EII"])
@pytest.mark.parametrize("k", range(1, 10))
def test_c_fit_equals_the_python_loop(k: int, model: str, weighted: bool, relative: bool) -> None:
    """From k-means starts on random 1-D data, to convergence under either stopping rule
    (tolerances of each rule's scale), with weights (some zero) or none."""
    X = _rows(k)
    w = None
    if weighted:
        w = np.random.default_rng(k).uniform(0.1, 3.0, size=len(X))
        w[::13] = 0.0
    params = _start(X, model, k, seed=k)
    tol = 1e-10 if relative else 1e-7
    c_fit = _fit(X, w, params, True, tol=tol, relative=relative)
    python = _fit(X, w, params, False, tol=tol, relative=relative)
    assert _c_ran(c_fit) and not _c_ran(python)
    _same(c_fit, python)
    assert c_fit.result.n_iter >= 2 or k == 1


@needs_c
@pytest.mark.parametrize("model", ["E", "V"])
def test_max_iter_and_warm_starts(model: str) -> None:
    """max_iter reached (not converged, the cap's count of lower bounds), then warm starts
    from there: the previous lower bound is what the first iteration is compared with, so a
    converged fit refitted with max_iter=1 converges at once."""
    X = _rows(11)
    params = _start(X, model, 4)
    c_fit, python = (_fit(X, None, params, in_c, tol=0.0, max_iter=17) for in_c in (True, False))
    _same(c_fit, python)
    capped = c_fit.result
    assert capped.n_iter == 17 and not capped.converged and len(capped.lower_bounds) == 17
    warm = {"lower_bound": capped.lower_bound, "tol": 1e-6}
    again = [_fit(X, None, capped.params, in_c, **warm) for in_c in (True, False)]
    _same(*again)
    converged = again[0]
    assert converged.result.converged
    warm = {"lower_bound": converged.result.lower_bound, "tol": 1e-6, "max_iter": 1}
    once = [_fit(X, None, converged.result.params, in_c, **warm) for in_c in (True, False)]
    _same(*once)
    assert once[0].result.n_iter == 1 and once[0].result.converged


@needs_c
def test_more_iterations_than_one_c_call_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C loop's lower bounds go in batches of UnivariateEM.BATCH: a fit longer than
    several batches is the same fit."""
    monkeypatch.setattr(compiled.UnivariateEM, "BATCH", 7)
    X = _rows(3)
    params = _start(X, "V", 5)
    for max_iter in (7, 20, 60):
        c_fit, python = (_fit(X, None, params, c, tol=0.0, max_iter=max_iter) for c in (1, 0))
        _same(c_fit, python)
        assert c_fit.result.n_iter == max_iter


@needs_c
@pytest.mark.parametrize("model", ["E", "V"])
def test_a_component_on_one_row(model: str) -> None:
    """A component that takes one far row (its variance reg_covar): no event, all in C."""
    X = np.vstack([_rows(4, n=150), [[1e4]]])
    params = _start(X, model, 4)
    assert np.isclose(params.means[:, 0], 1e4).any()
    c_fit, python = (_fit(X, None, params, in_c) for in_c in (True, False))
    _same(c_fit, python)
    assert not c_fit.result.reinitialized
    if model == "V":
        assert c_fit.result.params.covariances.min() < 1e-5


@needs_c
@pytest.mark.parametrize("model", ["E", "V"])
@pytest.mark.parametrize("reg_covar", [1e-6, 1e-2])
def test_a_collapsing_component_is_the_python_loop_s(model: str, reg_covar: float) -> None:
    """A component started far from every row explains none (N_k < 1e-8 n): the C loop stops
    before the iteration, Python re-seeds it at the worst-explained row with its warning, and
    the C loop does the rest."""
    X = _rows(6, n=200)
    p = _start(X, model, 3)
    means = p.means.copy()
    means[1] = X.max() + 1e3 * X.std()
    params = Params(p.weights, means, p.precisions_cholesky, p.covariance, p.stored_covariances)
    results = []
    for in_c in (True, False):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            results.append(_fit(X, None, params, in_c, reg_covar=reg_covar))
        assert [w.category for w in seen] == [ComponentCollapseWarning]
    _same(*results)
    assert results[0].result.reinitialized == [(1, 1)]
    assert results[0].c_calls == 2 and results[0].result.n_iter > 2


@needs_c
@pytest.mark.parametrize("model", ["E", "V"])
def test_without_reg_covar_the_fit_is_the_python_loop_s(model: str) -> None:
    """reg_covar = 0: the general pass's fit (the lean pass needs reg_covar > 0; its module
    docstring says why), so the C loop does not run; on these rows the C loop's fit at a tiny
    positive reg_covar is the same to rounding."""
    X = _rows(9)
    params = _start(X, model, 3)
    without = [_fit(X, None, params, in_c, reg_covar=0.0) for in_c in (True, False)]
    assert not _c_ran(without[0]) and not _c_ran(without[1])
    _same(*without)
    lean_c = _fit(X, None, params, True, reg_covar=1e-300)  # positive: the lean pass and C
    assert _c_ran(lean_c)
    general = without[0].result.lower_bounds
    np.testing.assert_allclose(lean_c.result.lower_bounds, general, rtol=1e-9)


@needs_c
def test_a_component_collapsing_later_hands_back_mid_fit() -> None:
    """A weight that EM drives to zero over several iterations: the C loop's iterations,
    Python's for the one that collapses, the C loop's again, as the Python loop alone."""
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(0.0, 1.0, 300), rng.normal(12.0, 1.0, 300)])[:, None]
    cov = get_covariance("V")
    # a third component between the groups, with a tiny weight and a wide variance
    variances = np.array([1.0, 40.0, 1.0])
    params = Params(
        np.array([0.5, 1e-6, 0.5]), np.array([[0.0], [6.0], [12.0]]),
        cov.precisions_cholesky(variances), cov, variances,
    )  # fmt: skip
    results = []
    for in_c in (True, False):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            results.append(_fit(X, None, params, in_c, tol=0.0, max_iter=200))
        assert ComponentCollapseWarning in [w.category for w in seen]
    _same(*results)
    first = results[0].result.reinitialized[0][0]
    assert first > 1  # C did the iterations before it
    assert results[0].c_calls == len(results[0].result.reinitialized) + 1


@needs_c
def test_a_lower_bound_that_is_not_finite_is_the_python_loop_s_error() -> None:
    X = np.array([[1e300], [-1e300], [0.0], [1.0], [2.0], [3.0]])
    cov = get_covariance("V")
    variances = np.array([1.0, 1.0])
    params = Params(
        np.array([0.5, 0.5]), np.array([[0.0], [2.0]]), cov.precisions_cholesky(variances),
        cov, variances,
    )  # fmt: skip
    messages = []
    for in_c in (True, False):
        with pytest.raises(GaussmixError, match="not finite") as error:
            _fit(X, None, params, in_c)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


@needs_c
def test_the_callback_sees_every_iteration() -> None:
    X = _rows(8)
    params = _start(X, "E", 3)
    seen: dict[bool, list[tuple[int, float]]] = {True: [], False: []}
    for in_c in (True, False):
        run = _fit(X, None, params, in_c, callback=lambda i, lb, c=in_c: seen[c].append((i, lb)))
        assert [i for i, _ in seen[in_c]] == list(range(1, run.result.n_iter + 1))
        assert [lb for _, lb in seen[in_c]] == run.result.lower_bounds
    np.testing.assert_allclose(seen[True], seen[False], rtol=RTOL)


@needs_c
@pytest.mark.parametrize("shrinkage", [0.01, 0.0])
@pytest.mark.parametrize("model", ["E", "V", "spherical", "EII"])
@pytest.mark.parametrize("k", [1, 2, 4, 9])
def test_with_a_prior(k: int, model: str, shrinkage: float) -> None:
    """MAP-EM under mclust's conjugate prior (its defaults, from the data's moments), with the
    means shrunk or not: the posterior mode in C as in mstep.estimate."""
    X = _rows(30 + k)
    cov = get_covariance(model)
    prior = resolve(Prior(shrinkage=shrinkage), data_moments(lambda: [(X, None)]), k, cov)
    assert prior is not None
    params = _start(X, model, k, seed=k)
    c_fit, python = (_fit(X, None, params, c, prior=prior) for c in (True, False))
    assert _c_ran(c_fit) and not _c_ran(python)
    _same(c_fit, python)
    plain = _fit(X, None, params, True)
    assert plain.result.lower_bounds != c_fit.result.lower_bounds  # the prior did something


@needs_c
def test_a_prior_through_the_estimator(monkeypatch: pytest.MonkeyPatch) -> None:
    X = _rows(40)
    fits = []
    for in_c in (True, False):
        monkeypatch.setattr(lean, "UNIVARIATE_IN_C", in_c)
        fits.append(GaussianMixture(3, covariance_type="E", prior="mclust", random_state=0).fit(X))
    assert fits[0].n_iter_ == fits[1].n_iter_
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(fits[0], name), getattr(fits[1], name), rtol=RTOL)


def test_which_fits_run_in_c() -> None:
    """The registry says which models have the univariate M-step; several features, the lean
    pass declining (or no C loops) keep to the Python loop."""
    assert {name for name, cov in REGISTRY.items() if cov.univariate} == {
        "E", "V", "spherical", "EII",
    }  # fmt: skip
    X = _rows(1)
    pass_ = lean.lean_pass(InProcess(ArraySource(X)), _start(X, "V", 2), np.float64, False, 1e-6)
    in_c = ("E", "V", "spherical", "EII")
    for model in (*in_c, "diag", "full", "tied", "EEI"):
        loop = lean.univariate_loop(pass_, _start(X, model, 2), None)
        assert (loop is not None) == (model in in_c and compiled.AVAILABLE)
    assert lean.univariate_loop(None, _start(X, "V", 2), None) is None
    X2 = np.hstack([X, X**2])
    two = _start(X2, "EII", 2)
    pass2 = lean.lean_pass(InProcess(ArraySource(X2)), two, np.float64, False, 1e-6)
    assert lean.univariate_loop(pass2, two, None) is None


@needs_c
def test_select_on_one_column_is_the_python_loop_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole grid on one column, C against the Python loop: every cell's BIC, the choice."""
    X = _rows(21, n=155)
    kwargs = {"n_jobs": 1, "random_state": 0}
    c_grid = select(X, range(1, 8), "all", **kwargs)
    monkeypatch.setattr(lean, "UNIVARIATE_IN_C", False)
    python = select(X, range(1, 8), "all", **kwargs)
    assert [(r.mclust, r.n_components) for r in c_grid.records] == [
        (r.mclust, r.n_components) for r in python.records
    ]
    np.testing.assert_allclose(
        [r.bic for r in c_grid.records], [r.bic for r in python.records], rtol=RTOL
    )
    assert (c_grid.best_record.mclust, c_grid.best_record.n_components) == (
        python.best_record.mclust,
        python.best_record.n_components,
    )
    gm = GaussianMixture(3, covariance_type="V", random_state=0).fit(X)
    monkeypatch.setattr(lean, "UNIVARIATE_IN_C", True)
    gm_c = GaussianMixture(3, covariance_type="V", random_state=0).fit(X)
    assert gm_c.n_iter_ == gm.n_iter_
    np.testing.assert_allclose(gm_c.covariances_, gm.covariances_, rtol=RTOL)
    np.testing.assert_allclose(gm_c.lower_bound_, gm.lower_bound_, rtol=RTOL)


@needs_c
def test_a_kept_loop_fits_as_a_new_one() -> None:
    # a grid's fits of one K and model reuse this thread's C loop and its buffers, rebound
    # to each fit's rows: each fit is the one a fresh loop gives, to the bit, whatever ran
    # before, and the kept loops hold no rows alive
    X = _rows(11)
    compiled._UNIVARIATE_EMS.__dict__.clear()
    fresh = {
        (model, k): _fit(X, None, _start(X, model, k), True).result
        for model in ("E", "V")
        for k in (2, 3)
    }
    other = X[::-1].copy()  # other rows between: the kept loops are rebound to them and back
    for seed in (1, 0):
        _fit(other, None, _start(other, "V", 2), True)
        for (model, k), expected in fresh.items():
            got = _fit(X, None, _start(X, model, k, seed), True).result
            if seed == 0:
                np.testing.assert_array_equal(got.params.means, expected.params.means)
                np.testing.assert_array_equal(got.params.covariances, expected.params.covariances)
                assert got.lower_bounds == expected.lower_bounds
    kept = compiled._UNIVARIATE_EMS.calls
    assert len(kept) == 4
    gone = weakref.ref(other)
    del other
    assert gone() is None  # no kept loop holds the rows


@needs_c
@pytest.mark.parametrize("weighted", [False, True])
def test_the_final_e_step_by_the_kept_loop_is_the_rows_pass_s(weighted: bool) -> None:
    X = _rows(12)
    w = np.random.default_rng(3).uniform(0.5, 2.0, size=X.shape[0]) if weighted else None
    pool = InProcess(ArraySource(X, w))
    for model, k in (("V", 3), ("E", 2)):
        params = _start(X, model, k)
        by_loop = lean.final_pass(pool, params, np.float64, False, 1e-6)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(lean, "UNIVARIATE_IN_C", False)  # estep_rows_entropy by a RowsPass
            by_rows = lean.final_pass(pool, params, np.float64, False, 1e-6)
        assert by_loop is not None and by_loop == by_rows
