"""GaussianMixture on a Dask cluster: the same fit as in memory, through a killed worker too.

One LocalCluster of two single-threaded worker processes serves the whole module; the tests
share one xdist group, so a single pytest-xdist worker holds it.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.mixture import iteration_hook
from tests.conftest import COVARIANCE_TYPES, mixture_data

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.xdist_group("dask")


def _same_fit(a: GaussianMixture, b: GaussianMixture, rtol: float = 1e-10) -> None:
    assert a.n_iter_ == b.n_iter_
    assert abs(a.lower_bound_ - b.lower_bound_) <= rtol * abs(b.lower_bound_)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.means_, b.means_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_dask_fit_equals_in_memory_fit(client: Any, covariance_type: str, weighted: bool) -> None:
    X = mixture_data(3, n=1500)
    w = np.random.default_rng(1).uniform(0.2, 3.0, X.shape[0]) if weighted else None
    # init_sample_size below n: the rows k-means sees are gathered on the workers
    options = dict(covariance_type=covariance_type, random_state=0, tol=1e-6, init_sample_size=900)
    ref = GaussianMixture(3, **options).fit(X, sample_weight=w)
    Xd = da.from_array(X, chunks=400)
    wd = None if w is None else da.from_array(w, chunks=500)  # rechunked to X's chunks
    got = GaussianMixture(3, **options).fit(Xd, sample_weight=wd)
    _same_fit(got, ref)
    assert got.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-10)


def test_dask_dataframe_columns_and_lazy_outputs(client: Any) -> None:
    import pandas as pd

    X = mixture_data(4, n=900)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    ddf = dd.from_pandas(frame, npartitions=3)
    ref = GaussianMixture(3, random_state=0).fit(X)
    got = GaussianMixture(3, random_state=0).fit(ddf)
    _same_fit(got, ref)
    assert list(got.feature_names_in_) == ["a", "b", "c"]
    Xd = da.from_array(X, chunks=250)
    proba = got.predict_proba(Xd)
    labels = got.predict(Xd)
    density = got.score_samples(Xd)
    for lazy in (proba, labels, density):
        assert isinstance(lazy, da.Array)
        assert lazy.chunks[0] == Xd.chunks[0]
    assert proba.chunks[1] == (3,)
    np.testing.assert_allclose(proba.compute(), ref.predict_proba(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(labels.compute(), ref.predict(X))
    np.testing.assert_allclose(density.compute(), ref.score_samples(X), rtol=1e-10)
    assert got.score(Xd) == pytest.approx(ref.score(X), rel=1e-10)
    assert got.bic(Xd) == pytest.approx(ref.bic(X), rel=1e-10)
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        got.predict(da.from_array(np.zeros((5, 2))))


def test_dask_input_errors_name_the_problem(client: Any) -> None:
    X = mixture_data(5, n=300)
    X[17, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or infinite value.*row 17"):
        GaussianMixture(2).fit(da.from_array(X, chunks=100))
    w = da.from_array(-np.ones(300), chunks=100)
    with pytest.raises(ValueError, match="negative"):
        GaussianMixture(2).fit(da.from_array(mixture_data(5, n=300), chunks=100), sample_weight=w)
    frame = dd.from_dict({"a": np.arange(10.0), "s": ["x"] * 10}, npartitions=2)
    with pytest.raises(ValueError, match=r"non-numeric column.*'s'"):
        GaussianMixture(1).fit(frame)


def test_a_pass_on_the_cluster_is_one_task_per_worker_merged_in_row_order(client: Any) -> None:
    """The chunks go out grouped by the worker that holds them, and their results are merged
    here in row order (a non-commutative combine, concatenation, shows the order)."""
    from gaussmix.data.dask_source import DaskSource
    from gaussmix.em.dask_workers import DaskWorkers

    def first_rows(share: Any, map_blocks: Any) -> str:  # local: pickled by value
        return str(int(share.X[0, 0]))

    def joined(a: str, b: str) -> str:
        return f"{a},{b}" if a else b

    X = da.from_array(np.arange(60.0).reshape(-1, 1), chunks=3)  # 20 chunks
    workers = DaskWorkers(DaskSource.open(X, sample_weight=np.ones(60)))
    assert workers.fold(first_rows, joined, "") == ",".join(str(3 * i) for i in range(20))
    groups = workers._groups
    assert sorted(map(len, groups)) == [10, 10]  # one task per worker, each its share
    assert sorted(i for group in groups for i in group) == list(range(20))


def test_chunks_persisted_on_one_worker_are_spread_for_the_fit(client: Any) -> None:
    """Dask may persist the chunks on one worker; a fit then moves half of them, once."""
    from gaussmix.data.dask_source import DaskSource
    from gaussmix.em.dask_workers import DaskWorkers

    X = mixture_data(3, n=800, n_features=2, n_components=2)
    first = sorted(client.scheduler_info()["workers"])[0]
    rows = client.persist(da.from_array(X, chunks=100), workers=[first])
    distributed.wait(rows)
    assert {w for ws in client.who_has(rows).values() for w in ws} == {first}
    source = DaskSource.open(rows)
    workers = DaskWorkers(source)
    task_stats = GaussianMixture(2, random_state=0).fit(X)  # the reference fit
    got = GaussianMixture(2, random_state=0).fit(rows)
    _same_fit(got, task_stats)
    workers.run(lambda share, map_blocks: share.n_samples)
    assert sorted(map(len, workers._groups)) == [4, 4]
    holders = client.who_has(workers._rows)
    assert {holders[f.key][0] for f in workers._rows} == set(client.scheduler_info()["workers"])


def test_runs_one_worker_holds_are_merged_there_with_the_same_bits(client: Any) -> None:
    """Chunks placed in runs (all on one worker, then half moved) or interleaved as Dask
    places them: the runs a worker holds whole are merged there, and the merge tree, so the
    result, is the same for every placement and without a client."""
    from gaussmix.data.dask_source import DaskSource
    from gaussmix.em.dask_workers import DaskWorkers, fold_runs

    def first_rows(share: Any, map_blocks: Any) -> str:  # local: pickled by value
        return str(int(share.X[0, 0]))

    def bracketed(a: str, b: str) -> str:
        return f"({a}+{b})" if a else b

    chunks = da.from_array(np.arange(60.0).reshape(-1, 1), chunks=3)  # 20 chunks
    expected = fold_runs([str(3 * i) for i in range(20)], bracketed, "", 4)
    first = sorted(client.scheduler_info()["workers"])[0]
    together = client.persist(chunks, workers=[first])
    distributed.wait(together)
    in_runs = DaskWorkers(DaskSource.open(together), run_length=4)
    assert in_runs.fold(first_rows, bracketed, "") == expected
    # chunks 0-9 on one worker, 10-19 on the other: runs 0, 1, 3 and 4 merged there
    assert sorted(r for whole, _, _ in in_runs._plans() for r in whole) == [0, 1, 3, 4]
    interleaved = DaskWorkers(DaskSource.open(chunks), run_length=4)
    assert interleaved.fold(first_rows, bracketed, "") == expected


def test_fit_survives_a_killed_worker(client: Any) -> None:
    """A worker process killed mid-fit loses its persisted blocks; the scheduler rebuilds them
    from the collection's graph and the fit ends with the very same parameters."""
    X = mixture_data(6, n=4000, n_features=4, n_components=4)
    options = dict(random_state=1, tol=0.0, max_iter=12)

    def fit() -> GaussianMixture:
        with pytest.warns(Warning):  # did not converge: tol=0 runs every iteration
            return GaussianMixture(4, **options).fit(da.from_array(X, chunks=500))

    undisturbed = fit()
    pids = set(client.run(os.getpid).values())
    killed: list[int] = []

    def kill_one(iteration: int, lower_bound: float) -> None:
        if iteration == 4 and not killed:
            pid = sorted(pids)[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    with iteration_hook(kill_one):
        disturbed = fit()
    assert killed
    client.wait_for_workers(2, timeout=60)
    deadline = time.monotonic() + 30
    while killed[0] in set(client.run(os.getpid).values()) and time.monotonic() < deadline:
        time.sleep(0.2)  # pragma: no cover - the nanny has already restarted it
    assert killed[0] not in set(client.run(os.getpid).values())
    assert disturbed.n_iter_ == undisturbed.n_iter_ == 12
    np.testing.assert_array_equal(disturbed.means_, undisturbed.means_)
    np.testing.assert_array_equal(disturbed.covariances_, undisturbed.covariances_)
    np.testing.assert_array_equal(disturbed.lower_bounds_, undisturbed.lower_bounds_)


def test_cli_fits_a_parquet_directory_on_the_scheduler(client: Any, tmp_path: Any) -> None:
    import json

    import pandas as pd
    from typer.testing import CliRunner

    import gaussmix.cli.main  # noqa: F401  (registers every command)
    from gaussmix.cli.app import app

    X = mixture_data(8, n=1200, n_features=2, n_components=2)
    for i in range(3):
        part = pd.DataFrame(X[i * 400 : (i + 1) * 400], columns=["u", "v"])
        part.to_parquet(tmp_path / f"part{i}.parquet")
    address = client.scheduler.address
    args = ["fit", str(tmp_path), "-k", "2", "--seed", "0", "--scheduler", address, "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.stdout)
    # the command line's own defaults (several starts, a tight tolerance), not the library's
    from gaussmix.cli.commands_em import MAX_ITER, N_INIT, TOL

    ref = GaussianMixture(2, n_init=N_INIT, tol=TOL, max_iter=MAX_ITER, random_state=0).fit(X)
    assert fitted["columns"] == ["u", "v"]
    assert fitted["n_samples"] == 1200
    # several starts reach the same optimum in either order of the components; which of the
    # tied starts wins depends on the last bits of sums taken in another order
    means = np.asarray(fitted["means"])
    np.testing.assert_allclose(
        means[np.argsort(means[:, 0])], ref.means_[np.argsort(ref.means_[:, 0])], rtol=1e-10
    )
    assert fitted["log_likelihood"] == pytest.approx(ref.log_likelihood_, rel=1e-10)


def test_partial_fit_on_a_dask_batch(client: Any) -> None:
    X = mixture_data(9, n=800)
    ref = GaussianMixture(3, random_state=0).partial_fit(X[:400]).partial_fit(X[400:])
    got = GaussianMixture(3, random_state=0)
    got.partial_fit(da.from_array(X[:400], chunks=150)).partial_fit(
        da.from_array(X[400:], chunks=150)
    )
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-10)
    np.testing.assert_allclose(got.covariances_, ref.covariances_, rtol=1e-10)


def test_after_a_failover_the_chunks_are_grouped_afresh(client: Any) -> None:
    """A worker killed between passes: the next pass is recomputed elsewhere with the same
    result, and, its group having run away from the chunks' worker, the pass after groups the
    chunks afresh over the workers there are then."""
    from gaussmix.data.dask_source import DaskSource
    from gaussmix.em.dask_workers import DaskWorkers

    def first_rows(share: Any, map_blocks: Any) -> str:  # local: pickled by value
        return str(int(share.X[0, 0]))

    def bracketed(a: str, b: str) -> str:
        return f"({a}+{b})" if a else b

    workers = DaskWorkers(DaskSource.open(da.from_array(np.arange(48.0)[:, None], chunks=3)), 4)
    expected = workers.fold(first_rows, bracketed, "")
    before = set(client.scheduler_info()["workers"])
    assert set(workers._holders) == before
    victim = workers._holders[0]
    os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
    assert workers.fold(first_rows, bracketed, "") == expected
    assert workers._groups == []  # to be grouped afresh
    deadline = time.monotonic() + 60
    while victim in client.scheduler_info()["workers"] and time.monotonic() < deadline:
        time.sleep(0.2)  # pragma: no cover - the scheduler has already removed it
    client.wait_for_workers(2, timeout=60)
    assert workers.fold(first_rows, bracketed, "") == expected
    now = set(client.scheduler_info()["workers"])
    # both workers hold a group (how many chunks each is Dask's: a copy may run elsewhere)
    assert victim not in now and set(workers._holders) == now


def test_each_pass_runs_every_group_on_the_worker_holding_its_chunks(client: Any) -> None:
    """Over many passes every group's task is held to its chunks' worker, strictly (so never
    stolen), and ran there; the result is the same unpinned. Unpinned, the tasks of a pass
    over two chunks (a task group of many tasks on under 5 dependencies: "root-ish") are
    queued and given to whichever worker asks first: 56 of 60 ran away in one trial."""
    from gaussmix.data.dask_source import DaskSource
    from gaussmix.em.dask_workers import DaskWorkers

    def first_rows(share: Any, map_blocks: Any) -> str:  # local: pickled by value
        return str(int(share.X[0, 0]))

    def joined(a: str, b: str) -> str:
        return f"{a},{b}" if a else b

    rows = client.persist(da.from_array(np.arange(60.0).reshape(-1, 1), chunks=30))
    workers = DaskWorkers(DaskSource.open(rows))
    expected = "0,30"
    for _ in range(30):
        assert workers.fold(first_rows, joined, "") == expected
    assert set(workers._holders) == set(client.scheduler_info()["workers"])
    assert workers.tasks == 30 * len(workers._holders) and workers.away == 0
    assert workers.passes == 30 and workers.task_cpu > 0  # group tasks' thread CPU, summed

    def restrictions(dask_scheduler: Any, keys: list[str]) -> list[tuple[list[str], bool]]:
        tasks = [dask_scheduler.tasks[key] for key in keys]
        return [(sorted(ts.worker_restrictions or ()), ts.loose_restrictions) for ts in tasks]

    last = [future.key for future in workers._held[-1]]
    held = client.run_on_scheduler(restrictions, keys=last)
    assert held == [([holder], False) for holder in workers._holders]
    unpinned = DaskWorkers(DaskSource.open(rows))
    unpinned.pin = False
    assert unpinned.fold(first_rows, joined, "") == expected
    last = [future.key for future in unpinned._held[-1]]
    assert client.run_on_scheduler(restrictions, keys=last) == [([], False)] * 2


def test_a_worker_that_joins_mid_fit_is_given_chunks(client: Any) -> None:
    """A worker that joins between passes is seen within ``HELD_PASSES`` passes: the chunks
    are grouped afresh, the newcomer holds its share, and the passes keep their bits."""
    from gaussmix.data.dask_source import DaskSource
    from gaussmix.em.dask_workers import HELD_PASSES, DaskWorkers

    def first_rows(share: Any, map_blocks: Any) -> str:  # local: pickled by value
        return str(int(share.X[0, 0]))

    def bracketed(a: str, b: str) -> str:
        return f"({a}+{b})" if a else b

    rows = client.persist(da.from_array(np.arange(63.0).reshape(-1, 1), chunks=3))  # 21 chunks
    workers = DaskWorkers(DaskSource.open(rows), run_length=4)
    expected = workers.fold(first_rows, bracketed, "")
    before = set(client.scheduler_info()["workers"])
    client.cluster.scale(3)
    try:
        client.wait_for_workers(3, timeout=60)
        for _ in range(HELD_PASSES):
            assert workers.fold(first_rows, bracketed, "") == expected
        now = set(client.scheduler_info()["workers"])
        assert len(now - before) == 1 and set(workers._holders) == now
        assert sorted(map(len, workers._groups)) == [7, 7, 7]
        assert workers.away == 0
    finally:
        client.cluster.scale(2)
        deadline = time.monotonic() + 60
        while len(client.scheduler_info()["workers"]) > 2 and time.monotonic() < deadline:
            time.sleep(0.2)
