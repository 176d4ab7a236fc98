"""A multivariate fit's whole EM loop in one C call (``lean.WholeLoop``, ``_kernels.c``'s
``whole_em``) against run_em's Python loop with the same C E-step and M-step calls, which
stays the reference: the same operations in the same order, so the same fit."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import pytest

from gaussmix import GaussianMixture, select
from gaussmix.data.sources import ArraySource
from gaussmix.em import compiled, constrained, lean, mstep
from gaussmix.em.covariance import REGISTRY, get_covariance
from gaussmix.em.errors import (
    ComponentCollapseWarning,
    DegenerateCovarianceError,
    InnerIterationWarning,
)
from gaussmix.em.init import initial_params
from gaussmix.em.loop import EMResult, run_em
from gaussmix.em.parallel import InProcess
from gaussmix.em.params import Params
from gaussmix.em.prior import Prior, data_moments, resolve
from gaussmix.errors import GaussmixError

needs_c = pytest.mark.skipif(not compiled.AVAILABLE, reason="the C loops were not built here")
MODELS = sorted({cov.mclust for cov in REGISTRY.values()} - {"E", "V"})
# the same operations in the same order: equal on this machine; 1e-12 leaves room for a
# numpy whose sum of K numbers is ordered otherwise than the pairwise sum _kernels.c mirrors
RTOL = 1e-12


def _rows(seed: int, n: int = 180, d: int = 3) -> np.ndarray:
    """Three groups of different spread and orientation, at an offset and scale of the seed's."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 3, size=n)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(3, d, d))[groups].transpose(0, 2, 1)[0]
    X = X * np.array([1.0, 0.4, 2.0])[groups, None] + groups[:, None] * 3.0
    return X * 10.0 ** rng.uniform(-2, 2) + rng.uniform(-100, 100, size=d)


def _start(X: np.ndarray, model: str, k: int, seed: int = 0) -> Params:
    rng = np.random.RandomState(seed)
    cov = get_covariance(model)
    with warnings.catch_warnings():  # a start's own M-step at a cap a test set low
        warnings.simplefilter("ignore", InnerIterationWarning)
        return initial_params(lambda: (X, None), k, cov, method="kmeans", rng=rng, reg_covar=1e-6)


class Run(NamedTuple):
    result: EMResult
    c_calls: int  # how many times the whole loop was called
    warned: list[tuple[type[Warning], str]]


def _fit(X: np.ndarray, w: np.ndarray | None, params: Params, in_c: bool, **kwargs: Any) -> Run:
    """run_em on the rows, by the whole C loop (in_c) or run_em's Python loop."""
    calls: list[int] = []
    original = lean.WholeLoop.__call__

    def counted(self: lean.WholeLoop, *args: Any, **kw: Any) -> lean.WholeRun:
        calls.append(1)
        return original(self, *args, **kw)

    settings = {"tol": 1e-8, "max_iter": 400, "reg_covar": 1e-6, **kwargs}
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        patch.setattr(lean, "WHOLE_LOOP_IN_C", in_c)
        patch.setattr(lean.WholeLoop, "__call__", counted)
        result = run_em(InProcess(ArraySource(X, w)), 4096, params, **settings)
    return Run(result, len(calls), [(w.category, str(w.message)) for w in seen])


def _same(run_a: Run, run_b: Run) -> None:
    a, b = run_a.result, run_b.result
    assert a.n_iter == b.n_iter
    assert a.converged == b.converged
    assert a.reinitialized == b.reinitialized
    np.testing.assert_allclose(a.lower_bounds, b.lower_bounds, rtol=RTOL, atol=0)
    for name in ("weights", "means", "precisions_cholesky", "covariances"):
        got, want = getattr(a.params, name), getattr(b.params, name)
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-300, err_msg=name)
    assert [category for category, _ in run_a.warned] == [c for c, _ in run_b.warned]


@needs_c
@pytest.mark.parametrize("relative", [False, True], ids=["mean", "relative"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("model", MODELS)
def test_c_fit_equals_the_python_loop(model: str, k: int, weighted: bool, relative: bool) -> None:
    """From k-means starts on random 3-D data, to convergence under either stopping rule
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
    assert c_fit.c_calls > 0 and python.c_calls == 0
    _same(c_fit, python)
    assert c_fit.result.n_iter >= 2


def test_the_models_list_is_mclust_s_fourteen() -> None:
    assert len(MODELS) == 14 and {"VVV", "EII", "EVE", "VEI"} <= set(MODELS)


@needs_c
@pytest.mark.parametrize("model", ["VVV", "EEE", "VEI", "EVE", "VEV"])
def test_max_iter_batches_and_warm_starts(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """max_iter reached over several calls of the C loop (BATCH iterations each), then a warm
    start from there: the previous lower bound is what the first iteration is compared with,
    so a converged fit refitted with max_iter=1 converges at once."""
    monkeypatch.setattr(compiled.WholeEM, "BATCH", 7)
    X = _rows(11)
    params = _start(X, model, 3)
    c_fit, python = (_fit(X, None, params, in_c, tol=0.0, max_iter=23) for in_c in (True, False))
    _same(c_fit, python)
    capped = c_fit.result
    assert capped.n_iter == 23 and not capped.converged and len(capped.lower_bounds) == 23
    warm = {"lower_bound": capped.lower_bound, "tol": 1e-6}
    again = [_fit(X, None, capped.params, in_c, **warm) for in_c in (True, False)]
    _same(*again)
    converged = again[0].result
    assert converged.converged
    warm = {"lower_bound": converged.lower_bound, "tol": 1e-6, "max_iter": 1}
    once = [_fit(X, None, converged.params, in_c, **warm) for in_c in (True, False)]
    _same(*once)
    assert once[0].result.n_iter == 1 and once[0].result.converged


@needs_c
def test_a_kept_loop_keeps_its_own_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C loop's buffers are kept per thread and shape (``compiled.whole_em``): one made
    with a short history (BATCH = 7) is not the one a later fit of that shape gets with the
    longer BATCH, whose iterations would run past its buffer (they did: a later test's fit
    read a NaN log-likelihood), and each loop's batch is its own buffer's."""
    X = _rows(11)
    params = _start(X, "VVV", 3)
    cov = params.covariance
    shape = cov.shape(3, X.shape[1])

    def kept() -> compiled.WholeEM:
        loop = compiled.whole_em(X, None, cov.layout, "VVV", True, (3, X.shape[1]), shape)
        assert loop is not None
        return loop

    with monkeypatch.context() as patch:
        patch.setattr(compiled.WholeEM, "BATCH", 7)
        short = _fit(X, None, params, True, tol=0.0, max_iter=30)
        assert kept().batch == kept().history.size == 7
    assert kept().batch == kept().history.size == compiled.WholeEM.BATCH
    long = _fit(X, None, params, True, tol=0.0, max_iter=30)
    _same(long, short)
    _same(long, _fit(X, None, params, False, tol=0.0, max_iter=30))


def _far_start(X: np.ndarray, model: str) -> Params:
    """Three components, the second's mean far from every row: it explains none."""
    p = _start(X, model, 3)
    means = p.means.copy()
    means[1] = X.max(axis=0) + 1e3 * X.std(axis=0)
    return Params(p.weights, means, p.precisions_cholesky, p.covariance, p.stored_covariances)


@needs_c
@pytest.mark.parametrize("model", ["VVV", "EEI", "VII", "VEE", "EVV"])
def test_a_collapsing_component_is_the_python_loop_s(model: str) -> None:
    """A component started far from every row explains none (N_k < 1e-8 n): the C loop stops
    before the iteration, Python re-seeds it at the worst-explained row with its warning, and
    the C loop does the rest."""
    X = _rows(6, n=200)
    params = _far_start(X, model)
    c_fit, python = (_fit(X, None, params, in_c) for in_c in (True, False))
    _same(c_fit, python)
    assert ComponentCollapseWarning in [category for category, _ in c_fit.warned]
    assert c_fit.result.reinitialized[0] == (1, 1)
    assert c_fit.c_calls == len(c_fit.result.reinitialized) + 1
    assert c_fit.result.n_iter > 2


@needs_c
def test_a_component_collapsing_later_hands_back_mid_fit() -> None:
    """A weight that EM drives to zero over several iterations: the C loop's iterations,
    Python's for the one that collapses, the C loop's again, as the Python loop alone."""
    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(0.0, 1.0, (300, 2)), rng.normal(12.0, 1.0, (300, 2))])
    cov = get_covariance("VVI")
    # a third component between the groups, with a tiny weight and a wide variance
    variances = np.array([[1.0, 1.0], [40.0, 40.0], [1.0, 1.0]])
    params = Params(
        np.array([0.5, 1e-6, 0.5]), np.array([[0.0, 0.0], [6.0, 6.0], [12.0, 12.0]]),
        cov.precisions_cholesky(variances), cov, variances,
    )  # fmt: skip
    c_fit, python = (_fit(X, None, params, in_c, tol=0.0, max_iter=200) for in_c in (1, 0))
    _same(c_fit, python)
    assert c_fit.result.reinitialized and c_fit.result.reinitialized[0][0] > 1
    assert c_fit.c_calls == len(c_fit.result.reinitialized) + 1


@needs_c
@pytest.mark.parametrize("model", ["VEE", "EVE", "VVE", "VEI", "VEV"])
def test_an_inner_cap_within_em_is_silent_as_in_the_python_loop(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An iterative M-step from the previous covariances stopping at its cap
    (constrained.WARM_MAX_ITER: a generalised EM step): the C loop finishes that iteration and
    stops, Python goes on without a warning, as its own loop does, and C goes on: the same
    fit."""
    monkeypatch.setattr(constrained, "WARM_MAX_ITER", 1)
    monkeypatch.setattr(constrained, "INNER_TOL", 0.0)
    X = _rows(5)
    params = _start(X, model, 3)
    c_fit, python = (_fit(X, None, params, in_c, max_iter=12, tol=0.0) for in_c in (1, 0))
    _same(c_fit, python)
    assert c_fit.warned == python.warned
    assert not [c for c, _ in c_fit.warned if c is InnerIterationWarning]


@needs_c
def test_an_m_step_c_declines_keeps_the_fit_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """VVE with four components on 24 rows, whose orientation steps (once Procrustes problems
    without a unique solution) constrained_mstep used to decline (numpy's M-step then took the
    fit's iterations in run_em's loop): the whole loop keeps the fit in C, the Python loop's
    fit all the same."""
    declined: list[bool] = []
    original = lean.WholeLoop.__call__

    def watched(self: lean.WholeLoop, *args: Any, **kw: Any) -> lean.WholeRun:
        run = original(self, *args, **kw)
        declined.append(self.declined)
        return run

    monkeypatch.setattr(lean.WholeLoop, "__call__", watched)
    X = np.random.default_rng(1).normal(size=(24, 3)) * np.array([1.0, 3.0, 0.3])
    params = _start(X, "VVE", 4, seed=1)
    c_fit, python = (_fit(X, None, params, in_c, max_iter=200) for in_c in (True, False))
    _same(c_fit, python)
    assert declined and not any(declined) and c_fit.result.n_iter > 2


@needs_c
def test_a_lower_bound_that_is_not_finite_is_the_python_loop_s_error() -> None:
    X = np.vstack([_rows(3, n=40), [[1e300, 0.0, 0.0], [-1e300, 0.0, 0.0]]])
    cov = get_covariance("VVV")
    covariances = np.stack([np.eye(3)] * 2)
    params = Params(
        np.array([0.5, 0.5]), X[:2].copy(), cov.precisions_cholesky(covariances), cov,
        covariances,
    )  # fmt: skip
    messages = []
    for in_c in (True, False):
        with pytest.raises(GaussmixError, match="not finite") as error:
            _fit(X, None, params, in_c)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


@needs_c
@pytest.mark.parametrize("model", ["VVV", "EEE", "EVE", "VEV", "EEV", "VEE"])
def test_a_degenerate_covariance_is_the_python_loop_s_error(model: str) -> None:
    """Two proportional columns with a reg_covar below their rounding: the C M-step declines,
    the iteration is handed back, and the numpy M-step raises its named error, as without C."""
    X = _rows(7, n=60)
    X[:, 1] = 3.0 * X[:, 0]
    params = _start(X, model, 2)
    messages = []
    for in_c in (True, False):
        with pytest.raises(DegenerateCovarianceError) as error:
            _fit(X, None, params, in_c, reg_covar=1e-300)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


@needs_c
def test_the_callback_sees_every_iteration() -> None:
    X = _rows(8)
    params = _start(X, "EEV", 3)
    seen: dict[bool, list[tuple[int, float]]] = {True: [], False: []}
    for in_c in (True, False):
        run = _fit(X, None, params, in_c, callback=lambda i, lb, c=in_c: seen[c].append((i, lb)))
        assert [i for i, _ in seen[in_c]] == list(range(1, run.result.n_iter + 1))
        assert [lb for _, lb in seen[in_c]] == run.result.lower_bounds
    np.testing.assert_allclose(seen[True], seen[False], rtol=RTOL)


@needs_c
def test_which_fits_run_in_c(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every model whose registry entry names its C M-step, at the shapes that M-step takes;
    one feature's E and V models keep their own loop; a prior, the lean pass declining, or
    too many features keep to the Python loop."""
    X = _rows(1)

    def loop(rows: np.ndarray, model: str, prior: Any = None) -> object:
        params = _start(rows, model, 2)
        pass_ = lean.lean_pass(InProcess(ArraySource(rows)), params, np.float64, False, 1e-6)
        return lean.whole_loop(pass_, params, prior)

    for model in MODELS:
        assert isinstance(loop(X, model), lean.WholeLoop), model
    one = X[:, :1].copy()
    assert isinstance(loop(one, "V"), lean.UnivariateLoop)
    assert isinstance(loop(one, "VVV"), lean.WholeLoop)
    cov = get_covariance("VVV")
    prior = resolve(Prior(), data_moments(lambda: [(X, None)]), 2, cov)
    assert loop(X, "VVV", prior) is None
    wide = np.random.default_rng(0).normal(size=(60, 17))
    assert loop(wide, "VVV") is None and loop(wide, "VEV") is None
    assert isinstance(loop(wide, "VVI"), lean.WholeLoop)  # variances: no limit
    params = _start(X, "VVV", 2)
    assert lean.whole_loop(None, params, None) is None
    monkeypatch.setattr(lean, "WHOLE_LOOP_IN_C", False)
    assert loop(X, "VVV") is None


@needs_c
def test_select_is_the_python_loop_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole grid, C against the Python loop: every cell's BIC and iterations, the choice;
    and an estimator's fit."""
    X = _rows(21, n=120)
    kwargs = {"n_jobs": 1, "random_state": 0}
    c_grid = select(X, range(1, 6), "all", **kwargs)
    monkeypatch.setattr(lean, "WHOLE_LOOP_IN_C", False)
    python = select(X, range(1, 6), "all", **kwargs)
    cells = [(r.mclust, r.n_components) for r in python.records]
    assert [(r.mclust, r.n_components) for r in c_grid.records] == cells
    np.testing.assert_allclose(
        [r.bic for r in c_grid.records], [r.bic for r in python.records], rtol=RTOL
    )
    assert [r.n_iter for r in c_grid.records] == [r.n_iter for r in python.records]
    gm = GaussianMixture(3, covariance_type="VEV", random_state=0).fit(X)
    monkeypatch.setattr(lean, "WHOLE_LOOP_IN_C", True)
    gm_c = GaussianMixture(3, covariance_type="VEV", random_state=0).fit(X)
    assert gm_c.n_iter_ == gm.n_iter_
    np.testing.assert_allclose(gm_c.covariances_, gm.covariances_, rtol=RTOL)
    np.testing.assert_allclose(gm_c.lower_bound_, gm.lower_bound_, rtol=RTOL)


def _tied_rows(seed: int, n: int = 30, d: int = 3) -> np.ndarray:
    """Three groups rounded to one decimal: rows that coincide in a feature, so that a
    component of a large K without reg_covar goes numerically singular (a variance of rounding
    size against the data's) before it goes exactly so."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 3, size=n)
    X = rng.normal(size=(n, d)) * np.array([1.0, 0.4, 2.0])[groups, None] + groups[:, None] * 3.0
    return np.round(X, 1)


def _outcome(X: np.ndarray, params: Params, in_c: bool) -> tuple[Run | None, str, list[int]]:
    """run_em as inside select (mclust's arithmetic: reg_covar = 0, a zero variance singular,
    FitMStep's singular rule): the run, or None and the error's message, and the iterations
    the callback saw."""
    seen: list[int] = []
    variance = X.var(axis=0)
    with lean.zero_variance_is_singular(), mstep.singular_fails(variance):
        try:
            run = _fit(X, None, params, in_c, reg_covar=0.0, callback=lambda i, _: seen.append(i))
        except DegenerateCovarianceError as error:
            return None, str(error), seen
    return run, "", seen


# (seed of _tied_rows, K) per model: fits the singular rule fails, which the C loop ran on
# without its check (to another error at another iteration, or to a fitted cell)
SINGULAR_CASES = {
    "VVV": [(5, 4), (10, 5), (15, 4)],
    "VII": [(29, 5)],
    "EVI": [(10, 7), (15, 6)],
    "VVE": [(2, 4), (7, 5)],
    "VEE": [(18, 7)],
    "VEI": [(14, 6)],
}


@needs_c
@pytest.mark.parametrize("model", sorted(SINGULAR_CASES))
def test_select_s_singular_rule_is_the_python_loop_s(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without reg_covar, inside select's rule (mstep.singular_fails), from k-means starts of
    many components on rounded rows: FitMStep checks its M-steps 1, 2, 4, 8, ... and every
    64th for a numerically singular covariance, and so does the C loop, handing such an
    iteration to Python, whose error is the same at the same iteration. Without the C loop's
    check (no scale passed) these fits ran on in C."""
    cases = [(_tied_rows(seed), seed, k) for seed, k in SINGULAR_CASES[model]]
    starts = [(X, _start(X, model, k, seed=seed)) for X, seed, k in cases]
    python = [_outcome(X, params, False) for X, params in starts]
    for run, error, _ in python:
        assert run is None and "numerically singular" in error
    for (X, params), (_, error, seen) in zip(starts, python, strict=True):
        c_run, c_error, c_seen = _outcome(X, params, True)
        assert c_run is None and (c_error, c_seen) == (error, seen)
    monkeypatch.setattr(lean, "singular_scale", lambda: None)
    for (X, params), (_, error, seen) in zip(starts, python, strict=True):
        assert _outcome(X, params, True)[1:] != (error, seen)


@needs_c
@pytest.mark.parametrize("model", ["VVV", "VVE", "VEV", "EEV", "VVI"])
def test_fits_the_singular_rule_lets_through_are_the_python_loop_s(model: str) -> None:
    """The same setting on rows the rule passes or fails at other M-steps: the same fit, or
    the same error at the same iteration (a not positive definite covariance between the
    rule's checks is the M-step's own error, C's hand-back as before)."""
    for seed, k in [(1, 3), (3, 4), (7, 5), (20, 6)]:
        X = _tied_rows(seed)
        params = _start(X, model, k, seed=seed)
        (c_run, c_error, c_seen), (run, error, seen) = (
            _outcome(X, params, in_c) for in_c in (True, False)
        )
        assert (c_error, c_seen) == (error, seen), (seed, k)
        if run is None:
            assert c_run is None
        else:
            assert c_run is not None
            _same(c_run, run)


@needs_c
def test_select_s_grid_is_the_python_loop_s_without_reg_covar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """select's grid on rounded rows, where many cells fail by the singular rule: every
    record the same with the whole C loop as without it (failed, degenerate, error, BIC,
    iterations)."""
    X = _tied_rows(1)
    kwargs = {"n_jobs": 1, "random_state": 0}
    c_grid = select(X, range(1, 8), "all", **kwargs)
    monkeypatch.setattr(lean, "WHOLE_LOOP_IN_C", False)
    python = select(X, range(1, 8), "all", **kwargs)
    assert len(c_grid.records) == len(python.records)
    errors = [r.error for r in python.records]
    assert [r.error for r in c_grid.records] == errors
    assert any(e is not None and "numerically singular" in e for e in errors)
    for got, want in zip(c_grid.records, python.records, strict=True):
        assert (got.mclust, got.n_components) == (want.mclust, want.n_components)
        assert (got.degenerate, got.converged, got.n_iter) == (
            want.degenerate, want.converged, want.n_iter,
        )  # fmt: skip
        np.testing.assert_allclose(
            [got.bic, got.min_relative_variance], [want.bic, want.min_relative_variance],
            rtol=1e-10, equal_nan=True,
        )  # fmt: skip


@needs_c
def test_a_declined_m_step_keeps_the_rest_of_the_fit_in_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """constrained_mstep declines (returns < 0) where VEE's volumes would come from start
    covariances that are not positive definite (their Cholesky factors fail), which numpy's
    M-step takes (slogdet's log |det|): a start whose stored covariances have one eigenvalue's
    sign flipped beside valid precisions. The whole loop returns status 4 before its first
    iteration, numpy's M-step takes it, and ``declined`` keeps every further iteration in
    run_em's loop (whose M-step is C's again from positive definite covariances), with no
    other call of the C loop: the Python loop's fit."""
    X = _rows(4)
    params = _start(X, "VEE", 3, seed=4)
    covariances = params.covariances.copy()
    values, vectors = np.linalg.eigh(covariances[1])  # the second's smallest eigenvalue negated
    covariances[1] = (vectors * values * np.array([-1.0, 1.0, 1.0])) @ vectors.T
    start = Params(
        params.weights, params.means, params.precisions_cholesky, params.covariance, covariances
    )
    statuses: list[int] = []
    declined: list[bool] = []
    original_call, original_loop = compiled.WholeEM.__call__, lean.WholeLoop.__call__

    def counted(self: compiled.WholeEM, *args: Any) -> int:
        statuses.append(original_call(self, *args))
        return statuses[-1]

    def watched(self: lean.WholeLoop, *args: Any, **kw: Any) -> lean.WholeRun:
        run = original_loop(self, *args, **kw)
        declined.append(self.declined)
        return run

    monkeypatch.setattr(compiled.WholeEM, "__call__", counted)
    monkeypatch.setattr(lean.WholeLoop, "__call__", watched)
    c_fit, python = (_fit(X, None, start, in_c, max_iter=200) for in_c in (True, False))
    assert statuses == [4]  # one C call, declined before its first iteration: no retry
    assert declined == [True] * c_fit.result.n_iter  # run_em asks; the flag answers at once
    assert c_fit.result.n_iter > 2 and c_fit.result.converged
    _same(c_fit, python)
