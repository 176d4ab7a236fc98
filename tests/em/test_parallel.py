"""Both cores: forked workers give the fit of one process, report their errors and memory, and
go away after the fit."""

from __future__ import annotations

import multiprocessing
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture
from gaussmix.data import ArraySource, NpySource
from gaussmix.em import parallel
from gaussmix.mixture import iteration_hook
from tests.conftest import COVARIANCE_TYPES, mixture_data

X = mixture_data(5, n=3000, n_features=3)


@pytest.fixture
def fork_small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fork for a few thousand rows, so that tests see the workers."""
    monkeypatch.setattr(parallel, "FORK_MIN_ROWS", 0)


def _workers_alive() -> set[int | None]:
    return {p.pid for p in multiprocessing.active_children() if p.name == "gaussmix-worker"}


def _blocks(source: Any, rows: int) -> list[np.ndarray]:
    return [np.array(block) for block, _ in source.chunks(rows)]


def test_shares_are_the_blocks_of_one_pass(fork_small: None, tmp_path: Path) -> None:
    w = np.arange(len(X), dtype=float)
    np.save(tmp_path / "x.npy", X)
    for source in (ArraySource(X, w), NpySource.open(tmp_path / "x.npy", w)):
        shares = parallel.shares_of(source, rows=700, n_workers=2)
        assert shares is not None and len(shares) == 2
        # 5 blocks of 700 rows (the last 200): 3 blocks and 2, cut at a block boundary
        assert [s.n_samples for s in shares] == [2100, 900]
        mine = [b for s in shares for b in _blocks(s, 700)]
        theirs = _blocks(source, 700)
        assert [b.shape for b in mine] == [b.shape for b in theirs]
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(
            np.concatenate([s.sample_weight for s in shares]),  # type: ignore[misc]
            w,
        )


def test_when_not_to_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    source = ArraySource(X)
    assert parallel.shares_of(source, rows=700, n_workers=2) is None  # too few rows to pay
    monkeypatch.setattr(parallel, "FORK_MIN_ROWS", 0)
    assert parallel.shares_of(source, rows=700, n_workers=1) is None
    assert parallel.shares_of(source, rows=2000, n_workers=2) is None  # one block each
    with parallel.workers(source, 700, n_threads=1) as pool:
        assert isinstance(pool, parallel.InProcess)
    with parallel.workers(source, 700, n_threads=2, fork=False) as pool:
        assert isinstance(pool, parallel.InProcess)
    monkeypatch.setattr(parallel, "FORK", False)  # GAUSSMIX_FORK=0
    with parallel.workers(source, 700, n_threads=2) as pool:
        assert isinstance(pool, parallel.InProcess)


def _fit(data: Any, n_threads: int, **kwargs: Any) -> tuple[GaussianMixture, set[int | None]]:
    """A fit, and the worker processes it started (alive at its iterations, not before)."""
    before = _workers_alive()
    seen: set[int | None] = set()
    model = GaussianMixture(3, random_state=0, chunk_size=500, n_threads=n_threads, **kwargs)
    with iteration_hook(lambda *_: seen.update(_workers_alive())):
        model.fit(data)
    return model, seen - before


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_forked_fit_equals_the_fit_in_one_process(fork_small: None, covariance_type: str) -> None:
    forked, seen = _fit(X, 2, covariance_type=covariance_type)
    alone, seen_alone = _fit(X, 1, covariance_type=covariance_type)
    assert len(seen) == 1 and not seen_alone  # one worker beside this process, then none
    # the same blocks, summed in another order: equal to rounding
    np.testing.assert_allclose(forked.means_, alone.means_, rtol=1e-10)
    np.testing.assert_allclose(forked.covariances_, alone.covariances_, rtol=1e-9)
    np.testing.assert_allclose(forked.lower_bounds_, alone.lower_bounds_, rtol=1e-12)
    assert forked.n_iter_ == alone.n_iter_
    assert forked.log_likelihood_ == pytest.approx(alone.log_likelihood_, rel=1e-12)


def test_forked_fit_of_files_weights_and_labels(fork_small: None, tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, X)
    w = np.random.default_rng(0).integers(0, 3, size=len(X)).astype(float)
    alone = GaussianMixture(3, random_state=0, chunk_size=500, n_threads=1)
    labels = alone.fit_predict(X, sample_weight=w)
    for data in (path, np.load(path, mmap_mode="r")):
        forked = GaussianMixture(3, random_state=0, chunk_size=500, n_threads=2)
        np.testing.assert_array_equal(forked.fit_predict(data, sample_weight=w), labels)
        # tens of iterations carry the rounding of the weighted sums along
        np.testing.assert_allclose(forked.lower_bounds_, alone.lower_bounds_, rtol=1e-10)
        np.testing.assert_allclose(forked.covariances_, alone.covariances_, rtol=1e-9)


def test_workers_go_away_after_the_fit(fork_small: None) -> None:
    _, seen = _fit(X, 2)
    assert seen
    deadline = time.monotonic() + 10
    while _workers_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _workers_alive()


def _fail_on_the_second_share(share: Any, map_blocks: Any) -> int:
    if share.n_samples < 2000:  # the child's share (900 rows); this process has 2100
        raise ValueError("bad block in the worker")
    return int(share.n_samples)


def _count(share: Any, map_blocks: Any) -> int:
    return int(share.n_samples)


def test_a_worker_error_reaches_the_caller(fork_small: None) -> None:
    shares = parallel.shares_of(ArraySource(X), 700, 2)
    assert shares is not None
    pool = parallel.Forked(shares)
    try:
        with pytest.raises(ValueError, match="bad block in the worker"):
            pool.run(_fail_on_the_second_share)
        assert pool.run(_count) == [2100, 900]  # no reply was left behind in the pipe
    finally:
        pool.close()


def test_a_dead_worker_gives_a_clear_error(fork_small: None) -> None:
    shares = parallel.shares_of(ArraySource(X), 700, 2)
    assert shares is not None
    pool = parallel.Forked(shares)
    try:
        child = pool.children[0][0]
        child.kill()
        child.join(timeout=10)
        with pytest.raises(RuntimeError, match=r"worker process stopped .* n_threads=1"):
            pool.run(_count)
    finally:
        pool.close(failed=True)


def test_worker_memory_is_traced(fork_small: None) -> None:
    """tracemalloc here cannot see a child's arrays: the workers report theirs."""

    def fit() -> None:
        model = GaussianMixture(3, random_state=0, chunk_size=500, n_threads=2, max_iter=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X)

    parallel.reset_worker_memory()
    tracemalloc.start()
    try:
        fit()
    finally:
        tracemalloc.stop()
    # at least one block's features and responsibilities (500 rows x 13 float64 values)
    assert parallel.worker_memory() > 500 * 13 * 8
    parallel.reset_worker_memory()
    fit()
    assert parallel.worker_memory() == 0  # nothing traced, nothing reported


def test_one_thread_holds_the_limits_for_the_fits_inside(monkeypatch: pytest.MonkeyPatch) -> None:
    controller = parallel._controller()
    limits: list[dict[str, Any]] = []

    class Counting:
        def limit(self, **kwargs: Any) -> Any:
            limits.append(kwargs)
            return controller.limit(**kwargs)

    monkeypatch.setattr(parallel, "_controller", Counting)
    with parallel.one_thread():
        for _ in range(3):  # a grid's fits, each with its one-thread block map
            with parallel.block_map(1) as map_blocks:
                assert map_blocks is map
                blas = [pool for pool in controller.info() if pool["user_api"] == "blas"]
                assert all(pool["num_threads"] == 1 for pool in blas)
    assert limits == [{"limits": 1, "user_api": None}]  # set once, for all three
    with parallel.block_map(1):  # alone, a fit sets them itself
        pass
    assert len(limits) == 2
