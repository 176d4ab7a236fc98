"""The lean pass (``lean.py``, ``_kernels.c``'s ``estep_rows``) against the general one."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy.special import xlogy

from gaussmix.data.sources import ArraySource
from gaussmix.em import REGISTRY, compiled, lean
from gaussmix.em.covariance import get_covariance
from gaussmix.em.init import initial_params
from gaussmix.em.loop import run_em
from gaussmix.em.parallel import InProcess
from gaussmix.em.params import Params
from gaussmix.em.stats import SuffStats, chunk_stats_componentwise, chunk_stats_natural
from tests.conftest import mixture_data

needs_c = pytest.mark.skipif(not compiled.AVAILABLE, reason="the C loops were not built here")
MODELS = sorted(REGISTRY)
N_FEATURES = {"E": 1, "V": 1}
LEAN_MAX_WORK = lean.LEAN_MAX_WORK


def _data(model: str, seed: int = 5, n: int = 400) -> np.ndarray:
    return mixture_data(seed, n=n, n_features=N_FEATURES.get(model, 3), n_components=3)


def _weights(n: int, seed: int = 1) -> np.ndarray:
    """Positive weights of varied size, and some rows of weight zero."""
    w = np.random.default_rng(seed).uniform(0.2, 3.0, size=n)
    w[::17] = 0.0
    return w


def _start(X: np.ndarray, model: str, k: int = 3) -> Params:
    rng = np.random.RandomState(0)
    return initial_params(
        lambda: (X, None), k, get_covariance(model), method="kmeans", rng=rng, reg_covar=1e-6
    )


def _fit(X: np.ndarray, w: np.ndarray | None, params: Params, max_work: int):
    lean.LEAN_MAX_WORK = max_work
    try:
        workers = InProcess(ArraySource(X, w))
        return run_em(workers, 4096, params, tol=0.0, max_iter=25, reg_covar=1e-6)
    finally:
        lean.LEAN_MAX_WORK = LEAN_MAX_WORK


def _close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-12) -> None:
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


def _same_params(a: Params, b: Params, rtol: float = 1e-12) -> None:
    _close(a.weights, b.weights, rtol)
    _close(a.means, b.means, rtol)
    _close(a.covariances, b.covariances, rtol)
    _close(a.precisions_cholesky, b.precisions_cholesky, rtol)


@pytest.mark.parametrize("rows", ["float64", "float32"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("model", MODELS)
def test_lean_fit_equals_the_general_one(model: str, weighted: bool, rows: str) -> None:
    """25 iterations from the same start: the lower bounds and the parameters to 1e-12."""
    X = _data(model).astype(rows)
    w = _weights(len(X)) if weighted else None
    params = _start(np.asarray(X, dtype=np.float64), model)
    lean_fit = _fit(X, w, params, LEAN_MAX_WORK)
    general = _fit(X, w, params, 0)
    assert lean_fit.n_iter == general.n_iter == 25
    _close(np.array(lean_fit.lower_bounds), np.array(general.lower_bounds))
    _same_params(lean_fit.params, general.params)


def test_the_general_pass_runs_when_the_lean_one_does_not_apply() -> None:
    X = _data("full")
    params = _start(X, "full")
    workers = InProcess(ArraySource(X))
    assert isinstance(lean.lean_pass(workers, params, np.float64, False, 1e-6), lean.LeanPass)
    assert lean.lean_pass(workers, params, np.float32, False, 1e-6) is None  # float32 kernel
    assert lean.lean_pass(workers, params, np.float64, True, 1e-6) is None  # missing entries
    assert lean.lean_pass(workers, params, np.float64, False, 0.0) is None  # no reg_covar
    big = lean.LEAN_MAX_WORK // lean.lean_work(1, 3, 3) + 1
    rows = InProcess(ArraySource(np.zeros((big, 3))))
    assert lean.lean_pass(rows, params, np.float64, False, 1e-6) is None  # above the threshold


def _field_close(a: SuffStats, b: SuffStats) -> None:
    assert a.n == pytest.approx(b.n, rel=1e-13)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-13)
    for name in ("nk", "sx", "sxx"):
        _close(getattr(a, name), getattr(b, name), 1e-12)
    assert a.worst_loglik == pytest.approx(b.worst_loglik, rel=1e-13)
    np.testing.assert_array_equal(a.worst_x, b.worst_x)
    assert a.shift is b.shift


@needs_c
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("model", ["full", "tied", "diag", "spherical", "E"])
def test_c_pass_equals_the_numpy_kernels(model: str, weighted: bool) -> None:
    """One pass (300 rows: two tiles and a part) against both numpy kernels, also at
    parameters with a component of weight 0."""
    X = _data(model, seed=8, n=300)
    w = _weights(len(X), seed=3) if weighted else None
    p = _start(X, model, k=4)
    weights = np.array([0.5, 0.3, 0.2, 0.0])
    params = Params(weights, p.means, p.precisions_cholesky, p.covariance, p.stored_covariances)
    pass_ = lean.LeanPass(X, w, params.covariance, params.n_components)
    assert pass_.rows is not None
    got = pass_(params)
    _field_close(got, chunk_stats_componentwise(X, params, w))
    assert got.nk[3] == 0.0  # log 0 = -inf: exactly no responsibility
    at_start = pass_(p)
    _field_close(at_start, chunk_stats_natural(X, p, w))
    # the numpy fallback of the lean pass is the general kernel on the one block
    pass_.rows = None
    _field_close(at_start, pass_(p))


@needs_c
def test_a_pass_owns_its_statistics() -> None:
    """Each call's statistics are its own arrays (the C loop's buffers are reused), the worst
    row is the data's, and the pass never writes its rows."""
    X = _data("VEI", seed=4, n=200)
    p = _start(X, "VEI")
    before = X.copy()
    pass_ = lean.LeanPass(X, None, p.covariance, p.n_components)
    first = pass_(p)
    kept = {name: getattr(first, name).copy() for name in ("nk", "sx", "sxx", "worst_x")}
    moved = Params(p.weights[::-1].copy(), p.means + 0.5, p.precisions_cholesky, p.covariance)
    second = pass_(moved)
    assert not np.array_equal(second.sx, kept["sx"])
    for name, value in kept.items():
        np.testing.assert_array_equal(getattr(first, name), value)
    row = np.flatnonzero((X == first.worst_x).all(axis=1))
    assert row.size >= 1
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize(
    "nk",
    [[5.0, 3.0, 2.0], [5.0, 0.0, 2.0], [np.nan, 4.0, 1e-12], [np.nan, 4.0, 6.0],
     [4.0, np.nan, 1e-12], [1e-12, 1e-13, 9.0], [], [np.inf, 1e-20]],
)  # fmt: skip
def test_collapsed_components_are_those_below_the_threshold(nk: list[float]) -> None:
    """loop._collapsed's shortcut for the common case gives the exact answer, NaN included."""
    from gaussmix.em.loop import COLLAPSED_WEIGHT, _collapsed

    counts = np.array(nk, dtype=np.float64)
    k = counts.size
    stats = SuffStats(
        n=10.0, loglik=0.0, nk=counts, sx=np.zeros((k, 2)), sxx=np.zeros((k, 2)),
        shift=np.zeros((k, 2)), worst_loglik=0.0, worst_x=np.zeros(2),
    )  # fmt: skip
    expected = np.flatnonzero(counts < COLLAPSED_WEIGHT * 10.0)
    np.testing.assert_array_equal(_collapsed(stats), expected)


@needs_c
def test_c_pass_with_a_component_far_out() -> None:
    """A component 1e4 standard deviations away from the rest: exact like the componentwise
    kernel (statistics about each mean), where the natural one would cancel digits."""
    X = _data("full", seed=2, n=200)
    p = _start(X, "full")
    means = p.means.copy()
    means[2] += 1e4
    params = Params(p.weights, means, p.precisions_cholesky, p.covariance, p.stored_covariances)
    pass_ = lean.LeanPass(X, None, params.covariance, params.n_components)
    _field_close(pass_(params), chunk_stats_componentwise(X, params))


@needs_c
@pytest.mark.parametrize("n_features", [1, 2, 5, 16])
def test_precision_factors_equal_lapack(n_features: int) -> None:
    from gaussmix.em.covariance import _cholesky_lower, _inverse_transpose_of_lower

    rng = np.random.default_rng(n_features)
    A = rng.normal(size=(4, n_features, 2 * n_features))
    S = A @ np.swapaxes(A, 1, 2) + 1e-3 * np.eye(n_features)
    for stack in (S, S[0]):
        got = compiled.precision_factors(stack)
        assert got is not None
        want = _inverse_transpose_of_lower(_cholesky_lower(stack, shared=stack.ndim == 2))
        _close(got, want, 1e-12)
        assert np.all(np.tril(got, -1) == 0.0)


@needs_c
def test_precision_factors_leave_the_degenerate_to_lapack() -> None:
    S = np.array([np.eye(3), np.diag([1.0, 0.0, 1.0]), np.eye(3)])
    assert compiled.precision_factors(S) is None
    S[1, 1, 1] = np.nan
    assert compiled.precision_factors(S) is None
    assert compiled.precision_factors(np.eye(20)) is None  # large D: LAPACK's


@needs_c
def test_the_c_pass_lets_go_of_the_gil() -> None:
    """While one thread is inside estep_rows, this thread runs Python: it sees the statistics
    half accumulated (0 < sum N_k < n), which it never could if the call held the GIL (it
    would see the buffer only before the call, NaN, or after it, sum N_k = n). No timing:
    only the order of what is seen."""
    rng = np.random.default_rng(0)
    n, k = 2_000_000, 8
    X = rng.normal(size=(n, 1))
    means = np.linspace(-2, 2, k)[:, None]
    covariance = get_covariance("spherical")
    params = Params(np.full(k, 1 / k), means, np.ones(k), covariance, np.ones(k))
    rows = compiled.rows_pass(X, None, "spherical", (k, 1), (k,))
    assert rows is not None
    for _ in range(5):
        rows.out[:] = np.nan
        thread = threading.Thread(
            target=rows, args=(params.means, params.weights, params.precisions_cholesky, -700.0)
        )
        thread.start()
        seen = False
        while thread.is_alive() and not seen:
            total = float(rows.out[:k].sum())
            seen = 0.0 < total < 0.99 * n
        thread.join()
        if seen:
            break
    assert seen
    assert float(rows.out[:k].sum()) == pytest.approx(n)


@needs_c
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("model", ["full", "tied", "diag", "spherical", "EVE", "VEI", "E"])
def test_the_final_pass_is_the_general_one_s(model: str, weighted: bool) -> None:
    """A fit's final E-step in the C pass (``lean.final_pass``): the log-likelihood and the
    classification entropy of the general pass (mixture.py's), to rounding, also with a
    component of weight 0 (its responsibilities exactly 0: 0 log 0 = 0)."""
    from gaussmix.mixture import _log_likelihood_and_entropy_of_share

    X = _data(model, seed=9, n=300)
    w = _weights(len(X), seed=4) if weighted else None
    p = _start(X, model, k=4)
    zero = Params(np.array([0.5, 0.3, 0.2, 0.0]), p.means, p.precisions_cholesky, p.covariance)
    workers = InProcess(ArraySource(X, w))
    got = lean.final_pass(workers, p, np.float64, False, 1e-6)
    want = _log_likelihood_and_entropy_of_share(p, 4096, np.float64, False, workers.source, map)
    assert got is not None and got[1] > 0.0
    np.testing.assert_allclose(got, want, rtol=1e-11)
    # directly: log-sum-exp of log pi_k + log N(x | mu_k, Sigma_k), t log t summed
    for params in (p, zero):
        cov = params.covariance
        with np.errstate(divide="ignore"):
            log_prob = cov.log_gauss_rows(X, params.means, params.precisions_cholesky)
            log_prob = log_prob + np.log(params.weights)[:, None]
        top = log_prob.max(axis=0)
        log_density = top + np.log(np.exp(log_prob - top).sum(axis=0))
        resp = np.exp(log_prob - log_density)
        loglik = float(log_density @ (np.ones(len(X)) if w is None else w))
        entropy = -float(xlogy(resp, resp).sum())
        got = lean.final_pass(workers, params, np.float64, False, 1e-6)
        np.testing.assert_allclose(got, (loglik, entropy), rtol=1e-11)


def test_the_final_pass_declines_where_the_general_pass_serves() -> None:
    X = _data("full", n=100)
    p = _start(X, "full")
    workers = InProcess(ArraySource(X))
    assert lean.final_pass(workers, p, np.float32, False, 1e-6) is None
    assert lean.final_pass(workers, p, np.float64, True, 1e-6) is None  # missing entries
    assert lean.final_pass(workers, p, np.float64, False, 0.0) is None  # the fit's pass
    if not compiled.AVAILABLE:
        assert lean.final_pass(workers, p, np.float64, False, 1e-6) is None


@needs_c
def test_kept_passes_follow_the_rows_of_each_fit() -> None:
    """The C calls' buffers are kept per thread and shape (``compiled.rows_pass``,
    ``whole_em``): two lean passes of one shape over different rows, called in turn, each
    give their own rows' statistics, and a fit after the rows of another died (new rows,
    perhaps at the same address) is that of its own rows."""
    X, Y = _data("full", seed=2, n=120), _data("full", seed=3, n=120)
    p = _start(X, "full")
    a = lean.LeanPass(X, None, p.covariance, p.n_components)
    b = lean.LeanPass(Y, None, p.covariance, p.n_components)
    first = a(p)
    _field_close(b(p), chunk_stats_natural(Y, p, None))
    _field_close(a(p), first)
    assert first.loglik != b(p).loglik
    fits = []
    for seed in (6, 7, 6):  # each fit's rows die before the next are made
        Z = _data("VVE", seed=seed, n=150)
        fits.append(run_em(InProcess(ArraySource(Z)), 4096, _start(Z, "VVE"), tol=0.0,
                           max_iter=10, reg_covar=1e-6).lower_bound)  # fmt: skip
        del Z
    assert fits[0] == fits[2] != fits[1]
