"""Dask without a cluster: the threaded fallback, the merge tree, and imports kept lazy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.em.dask_workers import tree
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


@pytest.mark.parametrize("n_parts", [1, 2, 15, 16, 17, 40])
def test_merge_tree_keeps_row_order(n_parts: int) -> None:
    """A non-commutative combine (concatenation) shows the tree folds in row order."""
    import dask
    from dask import delayed

    parts = [delayed(str)(i) for i in range(n_parts)]

    def joined(a: str, b: str) -> str:
        return f"{a},{b}"

    (result,) = dask.compute(tree(parts, joined, fan_in=4))
    assert result == ",".join(str(i) for i in range(n_parts))


def test_numpy_fits_never_import_dask() -> None:
    code = (
        "import sys, numpy as np; from gaussmix import GaussianMixture; "
        "GaussianMixture(2, random_state=0).fit(np.random.default_rng(0).normal(size=(300, 2)))"
        ".predict(np.zeros((3, 2))); print('dask' in sys.modules, 'distributed' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
