"""Dask without a cluster: the threaded fallback, the merge in row order, and imports kept lazy."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.data.dask_source import DaskSource
from gaussmix.em.dask_workers import DaskWorkers, balance, by_holder
from tests.conftest import mixture_data

da = pytest.importorskip("dask.array")


def test_without_a_client_dask_runs_in_this_process() -> None:
    from gaussmix.data.dask_source import active_client

    assert active_client() is None
    X = mixture_data(11, n=700)
    ref = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    got = GaussianMixture(3, covariance_type="diag", random_state=0)
    got.fit(da.from_array(X, chunks=200))
    assert got.n_iter_ == ref.n_iter_
    assert got.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-10)
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-10)


def first_rows(share: Any, map_blocks: Any) -> str:
    """A task naming its chunk by its first row (the rows are 0, 1, 2, ...)."""
    return str(int(share.X[0, 0]))


def joined(a: str, b: str) -> str:
    return f"{a},{b}" if a else b


@pytest.mark.parametrize("n_chunks", [1, 2, 15, 40])
def test_a_pass_merges_the_chunks_in_row_order(n_chunks: int) -> None:
    """A non-commutative combine (concatenation) shows the fold runs in row order."""
    X = da.from_array(np.arange(n_chunks * 3.0).reshape(-1, 1), chunks=3)
    got = DaskWorkers(DaskSource.open(X)).fold(first_rows, joined, "")
    assert got == ",".join(str(3 * i) for i in range(n_chunks))


def test_chunks_are_grouped_by_the_worker_holding_them() -> None:
    class Future:
        def __init__(self, key: str) -> None:
            self.key = key

    futures = [Future(k) for k in "abcde"]
    holders = {"a": ("w2",), "b": ("w1",), "c": ("w2", "w1"), "d": ("w2",), "e": ()}
    # c is held by both: the first by name; e by none (being recomputed): a group of its own
    assert by_holder(futures, holders) == {"w2": [0, 3], "w1": [1, 2], "": [4]}


def test_a_crowded_worker_gives_its_excess_chunks_to_the_others() -> None:
    assert balance({"a": [0, 1, 2, 3]}, ["a", "b"]) == {2: "b", 3: "b"}
    assert balance({"a": [0, 1, 2], "b": [3]}, ["a", "b", "c"]) == {2: "c"}
    assert balance({"a": [0, 2], "b": [1, 3]}, ["a", "b"]) == {}
    assert balance({"a": [0], "": [1]}, ["a", "b"]) == {1: "b"}  # held by none


def test_numpy_fits_never_import_dask() -> None:
    code = (
        "import sys, numpy as np; from gaussmix import GaussianMixture; "
        "GaussianMixture(2, random_state=0).fit(np.random.default_rng(0).normal(size=(300, 2)))"
        ".predict(np.zeros((3, 2))); print('dask' in sys.modules, 'distributed' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
