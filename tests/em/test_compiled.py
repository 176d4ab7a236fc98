"""The C loops (``_kernels.c``) against their numpy references in ``stats.py``."""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture
from gaussmix.em import compiled, stats
from gaussmix.em.covariance import NEGLIGIBLE
from gaussmix.em.stats import (
    EXP_FLOOR,
    SuffStats,
    _features,
    _features_numpy,
    _weights_times,
    chunk_stats_natural,
    softmax_numpy,
)
from tests.conftest import COVARIANCE_TYPES, mixture_data

needs_c = pytest.mark.skipif(not compiled.AVAILABLE, reason="the C loops were not built here")


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and shutil.which("cc")),
    reason="no C compiler: gaussmix runs the numpy loops",
)
def test_the_c_loops_are_built_where_there_is_a_compiler() -> None:
    if os.environ.get("GAUSSMIX_COMPILED") == "0":
        pytest.skip("GAUSSMIX_COMPILED=0")
    assert compiled.AVAILABLE


def _log_probs(K: int, n: int, dtype: type, seed: int = 0) -> np.ndarray:
    """Log-probabilities as a well-separated mixture makes them: spread over hundreds of nats,
    some components impossible (-inf), some terms below the floor."""
    rng = np.random.default_rng(seed)
    L = rng.normal(scale=300.0, size=(K, n)) - 50.0
    if K > 1:
        L[K // 2, : n // 3] = -np.inf
    return L.astype(dtype)


@needs_c
@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-14), (np.float32, 2e-6)])
@pytest.mark.parametrize(("K", "n"), [(16, 1300), (1, 7), (5, 512), (3, 0)])
def test_softmax_equals_numpy(dtype: type, rtol: float, K: int, n: int) -> None:
    L = _log_probs(K, n, dtype)
    want, want_log = softmax_numpy(L.copy())
    got = L.copy()
    got_log = compiled.softmax(got, EXP_FLOOR[np.dtype(dtype)])
    assert got_log is not None and got_log.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_allclose(got_log, want_log, rtol=rtol)
    # far terms are exactly 0 in both, and every column sums to one
    np.testing.assert_array_equal(got == 0, want == 0)
    if n:
        np.testing.assert_allclose(got.sum(axis=0), 1.0, rtol=10 * rtol)


@needs_c
def test_exp_to_a_few_ulp() -> None:
    """With two components at 0 and x the responsibility of the second is e^x / (1 + e^x): the
    C loop's polynomial exp against numpy's over the range it serves (up to -690: nearer the
    floor -700, taking e^-700 off magnifies any rounding)."""
    x = np.linspace(-690.0, 0.0, 200_001)
    L = np.vstack([np.zeros_like(x), x])
    want, want_log = softmax_numpy(L.copy())
    got_log = compiled.softmax(L, EXP_FLOOR[np.dtype(np.float64)])
    assert got_log is not None
    assert np.max(np.abs(L[1] / want[1] - 1.0)) < 2e-15
    # log(1 + e^x): an ulp of e^x can round 1 + e^x the other way, an absolute 2^-53
    np.testing.assert_allclose(got_log, want_log, rtol=1e-15, atol=2.0**-52)


@needs_c
@pytest.mark.parametrize("kind", ["full", "diag", "spherical"])
@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-13), (np.float32, 1e-6)])
def test_features_equal_numpy(kind: str, dtype: type, rtol: float) -> None:
    X = mixture_data(3, n=300, n_features=5) + 1e3  # 300 rows: two tiles and a part
    model = GaussianMixture(3, covariance_type=kind, random_state=0, max_iter=3).fit(X)
    params = model._params()
    F = params.natural.n_quadratic + X.shape[1] + 1
    want = _features_numpy(X, params, np.empty((F, len(X)), dtype=dtype))
    got = np.empty_like(want)
    assert compiled.features(kind, X, params.natural.center, got)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max() * 1e-3)


@needs_c
def test_what_the_c_loops_leave_to_numpy() -> None:
    X = mixture_data(4, n=200, n_features=3)
    params = GaussianMixture(2, random_state=0, max_iter=2).fit(X)._params()
    T = np.empty((params.natural.n_quadratic + 4, 200))
    assert compiled.features("full", X, params.natural.center, T)
    for rows in (np.asfortranarray(X), X.astype(np.float32)):  # other layouts and dtypes
        assert not compiled.features("full", rows, params.natural.center, T.copy())
    np.testing.assert_allclose(_features(np.asfortranarray(X), params), T, rtol=1e-13)
    assert not compiled.features(None, X, params.natural.center, T)  # tied: numpy's GEMM
    with pytest.raises(ValueError, match="cannot go into"):
        compiled.features("diag", X, params.natural.center, T)
    L = _log_probs(4, 100, np.float64)
    assert compiled.softmax(L[:, ::2], -700.0) is None  # not contiguous
    assert compiled.softmax(L.astype(np.float16), -700.0) is None
    assert compiled.softmax(L.astype(np.float32), -700.0) is None  # below float's normals


def _block(n: int, D: int, K: int, iterations: int, seed: int = 0) -> tuple:
    """Rows, parameters after a few iterations, the features T and the responsibilities."""
    X = mixture_data(seed, n=n, n_features=D, n_components=K, spread=6.0) + 100.0
    with pytest.warns(ConvergenceWarning):
        model = GaussianMixture(K, max_iter=iterations, tol=0.0, random_state=0).fit(X)
    params = model._params()
    T = _features(X, params)
    resp = softmax_numpy(_weights_times(params.natural.weights_t, T))[0]
    return X, params, T, resp


@needs_c
@pytest.mark.parametrize(("n", "D", "K"), [(300, 5, 3), (1037, 16, 16), (64, 1, 2), (5, 7, 4)])
@pytest.mark.parametrize(("dtype", "negligible"), [(np.float64, NEGLIGIBLE), (np.float32, 2**-24)])
def test_feature_sums_equal_the_gemm_over_the_pairs_that_count(
    n: int, D: int, K: int, dtype: type, negligible: float
) -> None:
    """The C loop's sums over the pairs of non-negligible responsibility equal the GEMM T q'
    over the same pairs to rounding (in float64, also for float32 responsibilities), and in
    float64 the GEMM over every pair to far below 1e-12."""
    X, params, T, resp64 = _block(n, D, K, iterations=3)
    resp64[0, ::7] *= 1e-20  # negligible beside the block's largest for component 0
    if K > 2:
        resp64[2] = 0.0  # a component no row belongs to
    resp = resp64.astype(dtype)
    center = params.natural.center
    got = compiled.feature_sums_full(X, center, resp, negligible, resp.size)
    assert got is not None and got.shape == (T.shape[0], K)
    q = resp.astype(np.float64)
    kept = np.where(q > q.max(axis=1, keepdims=True) * negligible, q, 0.0)
    scale = np.abs(T) @ np.abs(q.T)  # the size of each sum's terms
    np.testing.assert_array_less(np.abs(got - T @ kept.T), 1e-14 * scale + 1e-300)
    if dtype is np.float64:
        np.testing.assert_array_less(np.abs(got - T @ q.T), 1e-13 * scale + 1e-300)
    if K > 2:
        assert not got[:, 2].any()
    # more pairs above the threshold than allowed: nothing, the GEMM runs instead
    pairs = int((kept > 0).sum())
    assert compiled.feature_sums_full(X, center, resp, negligible, pairs - 1) is None
    assert compiled.feature_sums_full(X, center, resp, negligible, pairs) is not None


@needs_c
def test_what_feature_sums_leave_to_the_gemm() -> None:
    X, params, _, resp = _block(200, 3, 2, iterations=2)
    center = params.natural.center
    for rows, q in [
        (X.astype(np.float32), resp),  # float32 rows
        (np.asfortranarray(X), resp),
        (X, np.asfortranarray(resp)),
    ]:
        assert compiled.feature_sums_full(rows, center, q, NEGLIGIBLE, q.size) is None
    with pytest.raises(ValueError, match="cannot take"):
        compiled.feature_sums_full(X, center, resp[:, 1:].copy(), NEGLIGIBLE, resp.size)


def _count_sparse_sums(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """From now on, each call of ``compiled.feature_sums_full`` appends whether it summed
    (True) or left the block to the GEMM (False) to the list returned."""
    calls: list[bool] = []
    sparse = compiled.feature_sums_full

    def counted(*args: object) -> object:
        result = sparse(*args)  # type: ignore[arg-type]
        calls.append(result is not None)
        return result

    monkeypatch.setattr(compiled, "feature_sums_full", counted)
    return calls


@needs_c
@pytest.mark.parametrize("weighted", [False, True])
def test_block_statistics_with_the_sparse_sums_equal_those_of_the_gemm(
    monkeypatch: pytest.MonkeyPatch, weighted: bool
) -> None:
    """A separated mixture's block (about one component a row): the kernel takes the C loop's
    sums, and its statistics equal those of the GEMM to 1e-12."""
    X, params, _, _ = _block(3000, 12, 6, iterations=5)
    w = np.random.default_rng(1).integers(0, 3, size=len(X)).astype(float) if weighted else None
    calls = _count_sparse_sums(monkeypatch)
    got = chunk_stats_natural(X, params, w)
    assert calls == [True]
    monkeypatch.setattr(stats, "SPARSE_SCALE", 0.0)  # every block to the GEMM
    want = chunk_stats_natural(X, params, w)
    assert calls == [True]  # not asked again
    assert got.loglik == want.loglik and got.n == want.n  # the same first GEMM and softmax
    # sx about the means is a difference of sums of size N_k |x - c| (sxx: N_k |x - c|^2)
    reach = np.abs(X - params.natural.center).max()
    for name, power in (("nk", 0), ("sx", 1), ("sxx", 2)):
        a, b = getattr(got, name), getattr(want, name)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * want.nk.max() * reach**power)


@needs_c
def test_a_fit_with_the_sparse_sums_equals_the_fit_with_the_gemm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X = mixture_data(8, n=4000, n_features=12, n_components=6, spread=6.0)

    def fit() -> GaussianMixture:
        return GaussianMixture(6, random_state=0, tol=1e-6, max_iter=300).fit(X)

    calls = _count_sparse_sums(monkeypatch)
    with_sparse = fit()
    assert any(calls)  # the later iterations took the C loop's sums
    monkeypatch.setattr(stats, "SPARSE_SCALE", 0.0)
    with_gemm = fit()
    assert with_sparse.n_iter_ == with_gemm.n_iter_
    np.testing.assert_allclose(with_sparse.lower_bounds_, with_gemm.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(with_sparse.means_, with_gemm.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(with_sparse.covariances_, with_gemm.covariances_, rtol=1e-10)


@needs_c
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_float32_fit_with_the_sparse_sums_equals_the_fit_with_the_sgemm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In float32 the loop sums in float64 what sgemm sums in float32: the fits agree to
    float32's rounding."""
    X = mixture_data(8, n=4000, n_features=16, n_components=8, spread=6.0)

    def fit() -> GaussianMixture:
        model = GaussianMixture(8, random_state=0, tol=0.0, max_iter=25, dtype=np.float32)
        return model.fit(X)

    calls = _count_sparse_sums(monkeypatch)
    with_sparse = fit()
    assert any(calls)
    monkeypatch.setattr(stats, "SPARSE_SCALE", 0.0)
    with_sgemm = fit()
    assert with_sparse.lower_bound_ == pytest.approx(with_sgemm.lower_bound_, rel=1e-5)
    np.testing.assert_allclose(with_sparse.means_, with_sgemm.means_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(with_sparse.covariances_, with_sgemm.covariances_, atol=1e-4)


@needs_c
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_a_fit_with_the_c_loops_equals_the_numpy_fit(
    monkeypatch: pytest.MonkeyPatch, covariance_type: str
) -> None:
    X = mixture_data(6, n=2000, n_features=4)

    def fit() -> GaussianMixture:
        return GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)

    with_c = fit()
    monkeypatch.setattr(compiled, "_LIB", None)
    with_numpy = fit()
    assert with_c.n_iter_ == with_numpy.n_iter_
    np.testing.assert_allclose(with_c.lower_bounds_, with_numpy.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(with_c.means_, with_numpy.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(with_c.covariances_, with_numpy.covariances_, rtol=1e-9)


# --- the inner loops of the constrained M-steps (constrained.py) ----------------------------
def _scatters(K: int, D: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """K weighted scatter matrices (K, D, D) of random rows about their means, and N (K,)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((30 * K + 3 * D, D)) @ rng.standard_normal((D, D))
    resp = rng.dirichlet(np.ones(K) * 0.8, size=X.shape[0])
    nk = resp.sum(axis=0)
    means = resp.T @ X / nk[:, None]
    W = np.einsum("nk,nkd,nke->kde", resp, X[:, None] - means, X[:, None] - means)
    return W, nk


@needs_c
@pytest.mark.parametrize("model", ["EVE", "VVE", "VEV", "VEI", "EEV", "EVV"])
@pytest.mark.parametrize(("K", "D"), [(1, 2), (2, 2), (3, 3), (5, 4), (4, 7), (3, 16)])
@pytest.mark.parametrize("warm", [False, True])
def test_inner_loops_in_c_equal_numpy(
    model: str, K: int, D: int, warm: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The M-step with its inner loop in C (compiled.common_orientation, vei_loop) and its
    eigenvectors by Jacobi (compiled.eigh_descending) against the same in numpy,
    from the same start, cold and warm (the previous M-step's covariances, as EM passes them)."""
    from gaussmix.em.covariance import get_covariance

    W, nk = _scatters(K, D, seed=K * 100 + D)
    W_next, _ = _scatters(K, D, seed=K * 100 + D + 1)
    cov = get_covariance(model)
    if model == "VEI":  # the diagonal layout: its scatter is the diagonals
        W, W_next = (np.diagonal(w, axis1=1, axis2=2).copy() for w in (W, W_next))

    def mstep() -> np.ndarray:
        start = cov.constrain(W, nk, None) if warm else None
        return cov.constrain(W_next, nk, start)

    calls = []
    for name in ("common_orientation", "vei_loop", "eigh_descending"):
        original = getattr(compiled, name)
        monkeypatch.setattr(compiled, name, lambda *a, f=original: calls.append(f(*a)) or calls[-1])
    got = mstep()
    assert calls and all(c is not None for c in calls)  # C took them
    monkeypatch.setattr(compiled, "INNER_LOOP_MAX_FEATURES", 0)
    want = mstep()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())


def _numpy_sweeps(
    W: np.ndarray, nk: np.ndarray, D: np.ndarray, v: np.ndarray, steps: int, equal_volume: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` sweeps of constrained.common_orientation's rotations in numpy from the
    orientation D and variances v: (orientation, variances)."""
    from gaussmix.em import constrained

    solve = constrained.evi if equal_volume else constrained.vvi
    D = D.copy()
    A = np.einsum("li,klj->kij", D, W @ D)
    for _ in range(steps):
        M = 1.0 / v
        for i in range(D.shape[0] - 1):
            for j in range(i + 1, D.shape[0]):
                constrained._rotate_pair(D, A, M, i, j)
        v = solve(np.diagonal(A, axis1=1, axis2=2).copy(), nk, v)
    return D, v


@needs_c
@pytest.mark.parametrize("equal_volume", [False, True])
def test_orientation_sweeps_are_numpy_sweeps_and_lower_the_objective(equal_volume: bool) -> None:
    """Each sweep of plane rotations (C) is numpy's (constrained._rotate_pair) to rounding and
    lowers -2Q; converged, the orientation is stationary: for every pair of its columns
    sum_k (1/v_ki - 1/v_kj) (D' W_k D)_ij = 0, the condition the pair's rotation solves."""
    from gaussmix.em import constrained

    W, nk = _scatters(4, 5, seed=7)
    D0 = np.linalg.eigh(W.sum(axis=0))[1][:, ::-1].copy()
    solve = constrained.evi if equal_volume else constrained.vvi
    v0 = solve(constrained._rotated_diagonals(W, D0), nk, None)
    objectives = []
    for steps in range(1, 5):
        done = compiled.orientation_sweeps(W, nk, equal_volume, D0, v0, np.inf, 0.0, steps)
        assert done is not None and done[2] == 0  # the cap: tol 0 is never met here
        D, v = _numpy_sweeps(W, nk, D0, v0, steps, equal_volume)
        np.testing.assert_allclose(
            constrained._assemble(done[0], done[1]), constrained._assemble(D, v), rtol=1e-10
        )
        objectives.append(done[3])
    assert np.all(np.diff(objectives) <= 0.0)
    assert objectives[-1] < constrained.diag_objective(
        constrained._rotated_diagonals(W, D0), nk, v0
    )
    done = compiled.orientation_sweeps(W, nk, equal_volume, D0, v0, np.inf, 1e-15, 10_000)
    assert done is not None and done[2] > 0
    D, v = done[0], done[1]
    A = np.einsum("li,klj->kij", D, W @ D)
    M = 1.0 / v
    for i in range(4):
        for j in range(i + 1, 5):
            terms = (M[:, i] - M[:, j]) * A[:, i, j]
            scale = np.abs(M[:, i] - M[:, j]) @ np.sqrt(A[:, i, i] * A[:, j, j])
            assert abs(terms.sum()) <= 1e-5 * scale


@needs_c
@pytest.mark.parametrize("model", ["EVE", "VVE"])
def test_common_orientation_takes_scatters_over_ten_orders_of_magnitude(model: str) -> None:
    """Columns whose variances span ten orders of magnitude (R's state.x77: areas against
    illiteracy rates) and a component on one row (its scatter reg_covar I) leave the Procrustes
    matrices rank deficient to rounding, where the C loop declined and numpy's SVD ran: C
    takes them now, each inner step lowers -2Q (to rounding) and the M-step's objective is
    numpy's to 1e-9."""
    from gaussmix.em import constrained
    from gaussmix.em.covariance import get_covariance

    W, nk = _scatters(3, 6, seed=11)
    scales = np.logspace(0, 5, 6)
    W = W * np.outer(scales, scales)
    W[2] = 1e-6 * np.eye(6)
    nk[2] = 1.0
    pooled = constrained._pooled(W, None)
    objectives = []
    for steps in range(1, 8):
        done = compiled.common_orientation(W, nk, pooled, model == "EVE", 0.0, steps)
        assert done is not None
        objectives.append(done[3])
    assert np.all(np.diff(objectives) <= 1e-12 * np.abs(objectives[:-1]))
    cov = get_covariance(model)

    def objective(covariances: np.ndarray) -> float:  # -2Q
        _, logdet = np.linalg.slogdet(covariances)
        return float(nk @ logdet + np.einsum("kij,kji->", W, np.linalg.inv(covariances)))

    got = objective(cov.constrain(W, nk, None))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compiled, "INNER_LOOP_MAX_FEATURES", 0)
        want = objective(cov.constrain(W, nk, None))
    np.testing.assert_allclose(got, want, rtol=1e-9)


@needs_c
@pytest.mark.parametrize("D", [1, 2, 3, 5, 16])
def test_jacobi_eigen_equals_lapack(D: int) -> None:
    """Eigenvalues to rounding, eigenvectors up to sign, including a repeated eigenvalue pair
    (where only the subspace is defined) and a singular matrix."""
    rng = np.random.default_rng(D)
    A = rng.standard_normal((4, D, D))
    W = A @ np.swapaxes(A, 1, 2)
    W[1] = W[1] @ np.diag(np.r_[np.zeros(1), np.ones(D - 1)]) @ W[1]  # singular
    Q = np.linalg.qr(rng.standard_normal((D, D)))[0]
    W[2] = Q @ np.diag(np.r_[2.0, 2.0, np.arange(D - 2.0)][:D]) @ Q.T  # a repeated pair
    done = compiled.eigh_descending(W)
    assert done is not None
    values, vectors = done
    want_values, want_vectors = np.linalg.eigh(W)
    scale = np.abs(want_values).max(axis=1, keepdims=True)
    np.testing.assert_allclose(values, want_values[:, ::-1], rtol=0, atol=1e-13 * scale.max())
    rebuilt = vectors @ (values[:, :, None] * np.swapaxes(vectors, 1, 2))
    np.testing.assert_allclose(rebuilt, W, atol=1e-13 * scale.max())
    identity = np.broadcast_to(np.eye(D), W.shape)
    np.testing.assert_allclose(np.swapaxes(vectors, 1, 2) @ vectors, identity, atol=1e-14)
    for k in (0, 3):  # distinct values: the same vectors up to sign
        dots = np.abs(np.einsum("ij,ij->j", vectors[k], want_vectors[k][:, ::-1]))
        np.testing.assert_allclose(dots, 1.0, atol=1e-10)
    W[3, 0, 0] = np.nan
    assert compiled.eigh_descending(W) is None


# --- the constrained M-steps whole in one C call (compiled.constrained_mstep) ---------------
WHOLE_MSTEP_MODELS = ["VEI", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV"]


def _shifted_stats(model: str, K: int, D: int, seed: int) -> SuffStats:
    """Statistics of random rows under random responsibilities about shifts that are not the
    means (so the scatter's d_k d_k' term is exercised), as the lean pass gives them."""
    from gaussmix.em.covariance import get_covariance
    from gaussmix.em.mstep import resp_stats

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((30 * K + 3 * D, D)) @ rng.standard_normal((D, D))
    resp = rng.dirichlet(np.ones(K) * 0.8, size=X.shape[0])
    shift = resp.T @ X / resp.sum(axis=0)[:, None] + 0.1 * rng.standard_normal((K, D))
    return resp_stats(X, resp, shift, get_covariance(model))


def _spy_whole(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per call of compiled.constrained_mstep, whether C took it."""
    taken: list[bool] = []
    original = compiled.constrained_mstep

    def spy(*args: object) -> object:
        done = original(*args)  # type: ignore[arg-type]
        taken.append(done is not None)
        return done

    monkeypatch.setattr(compiled, "constrained_mstep", spy)
    return taken


@needs_c
@pytest.mark.filterwarnings("ignore::gaussmix.em.errors.InnerIterationWarning")
@pytest.mark.parametrize("model", WHOLE_MSTEP_MODELS)
@pytest.mark.parametrize(("K", "D"), [(1, 2), (2, 2), (3, 3), (5, 4), (4, 7), (3, 16)])
@pytest.mark.parametrize("warm", [False, True])
def test_whole_mstep_in_c_equals_numpy(
    model: str, K: int, D: int, warm: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mstep's covariances and precisions' factors from one C call (scatter, constrained
    M-step, assembly, factors) equal the numpy M-step's (every C loop off) to 1e-10, cold and
    warm (the previous M-step's covariances as the start, as EM passes them)."""
    from gaussmix.em.covariance import get_covariance
    from gaussmix.em.mstep import mstep

    cov = get_covariance(model)
    first = _shifted_stats(model, K, D, seed=K * 100 + D)
    second = _shifted_stats(model, K, D, seed=K * 100 + D + 1)

    def run() -> tuple[np.ndarray, np.ndarray]:
        start = mstep(first, cov, 1e-6).covariances if warm else None
        params = mstep(second, cov, 1e-6, start)
        return params.covariances, params.precisions_cholesky

    taken = _spy_whole(monkeypatch)
    got = run()
    assert taken and all(taken)  # C took every M-step (K = 1 too)
    monkeypatch.setattr(compiled, "_LIB", None)
    want = run()
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12 * np.abs(w).max())


@needs_c
@pytest.mark.parametrize("model", ["VEI", "VEE", "EVE", "VVE", "VEV"])
def test_whole_mstep_reports_its_cap(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from gaussmix.em import constrained
    from gaussmix.em.covariance import get_covariance
    from gaussmix.em.errors import InnerIterationWarning
    from gaussmix.em.mstep import mstep

    monkeypatch.setattr(constrained, "INNER_MAX_ITER", 1)
    taken = _spy_whole(monkeypatch)
    with pytest.warns(InnerIterationWarning, match=f"{model} M-step stopped at its cap of 1 "):
        mstep(_shifted_stats(model, 3, 3, seed=1), get_covariance(model), 0.0)
    assert taken == [True]


@needs_c
@pytest.mark.parametrize("model", WHOLE_MSTEP_MODELS)
def test_whole_mstep_degenerate_covariance_raises_as_numpy(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A constant feature and no reg_covar: a covariance that is not positive definite; C
    leaves the factors to LAPACK's path, which names the component as numpy's M-step does."""
    from gaussmix.em.covariance import get_covariance
    from gaussmix.em.errors import DegenerateCovarianceError
    from gaussmix.em.mstep import mstep, resp_stats

    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 3))
    X[:, 1] = 1.0
    resp = rng.dirichlet(np.ones(3), size=60)
    shift = np.tile(np.array([0.0, 1.0, 0.0]), (3, 1))
    stats = resp_stats(X, resp, shift, get_covariance(model))
    with pytest.raises(DegenerateCovarianceError) as error:
        mstep(stats, get_covariance(model), 0.0)
    monkeypatch.setattr(compiled, "_LIB", None)
    with pytest.raises(DegenerateCovarianceError) as numpy_error:
        mstep(stats, get_covariance(model), 0.0)
    assert str(error.value) == str(numpy_error.value)


@needs_c
def test_whole_mstep_declines_what_it_does_not_take() -> None:
    """Above WHOLE_MSTEP_MAX_FEATURES, and for statistics that are not finite (numpy's M-step
    then says what is wrong)."""
    stats = _shifted_stats("VEV", 2, compiled.WHOLE_MSTEP_MAX_FEATURES + 1, seed=2)
    nk = stats.nk
    d = stats.sx / nk[:, None]
    assert compiled.constrained_mstep("VEV", stats.sxx, nk, d, 1e-6, None, 1e-8, 10) is None
    stats = _shifted_stats("VEV", 2, 3, seed=2)
    sxx = stats.sxx.copy()
    sxx[1, 0, 0] = np.nan
    d = stats.sx / stats.nk[:, None]
    assert compiled.constrained_mstep("VEV", sxx, stats.nk, d, 1e-6, None, 1e-8, 10) is None
    assert compiled.constrained_mstep("VEV", stats.sxx, stats.nk, d, 1e-6, None, 1e-8, 10)


@needs_c
def test_whole_mstep_buffers_are_per_thread() -> None:
    """Fits in threads (select's cells) each have their own C M-step buffers: the same fits
    in four threads at once equal them one after another."""
    from concurrent.futures import ThreadPoolExecutor

    X = mixture_data(4, n=400, n_features=3, n_components=3)

    def fit(seed: int) -> np.ndarray:
        model = GaussianMixture(3, covariance_type="VEV", random_state=seed, max_iter=50)
        return np.asarray(model.fit(X).covariances_)

    serial = [fit(seed) for seed in range(8)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(fit, range(8)))
    for a, b in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(a, b)
