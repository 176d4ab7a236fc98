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


# ------------------------------------------------------------------ column names and holes
def test_a_dask_frame_naming_a_column_twice_is_refused_in_one_line() -> None:
    import pandas as pd

    dd = pytest.importorskip("dask.dataframe")
    frame = pd.DataFrame(mixture_data(1, n=40), columns=["a", "a", "b"])
    with pytest.raises(ValueError, match=r"^the Dask DataFrame names 'a' more than once; give"):
        GaussianMixture(2).fit(dd.from_pandas(frame, npartitions=2))


@pytest.mark.parametrize("seed", range(6))
def test_the_holes_are_counted_on_dask_as_in_numpy(seed: int) -> None:
    """One pass of reductions gives what numpy gives on the whole array: the counts, the first
    hole's row and column, the empty rows and the columns never observed."""
    from gaussmix.data.dask_source import missing_summary

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 4))
    X[rng.random(X.shape) < [0.0, 0.05, 0.02, 0.1][seed % 4]] = np.nan
    X[rng.integers(60, size=seed % 3)] = np.nan  # some empty rows
    if seed == 5:
        X[:, 2] = np.nan  # a column never observed
    got = missing_summary(da.from_array(X, chunks=7))
    nan = np.isnan(X)
    rows = np.flatnonzero(nan.any(axis=1))
    assert (got.values, got.rows) == (nan.sum(), rows.size)
    if rows.size:
        assert (got.first_row, got.first_column) == (rows[0], np.argmax(nan[rows[0]]))
    else:
        assert (got.first_row, got.first_column) == (-1, -1)
    empty = np.flatnonzero(nan.all(axis=1))
    assert (got.empty_rows, got.first_empty) == (empty.size, empty[0] if empty.size else -1)
    np.testing.assert_array_equal(got.unobserved, nan.all(axis=0))


def _parquet(path: Any, names: str, column: Any) -> None:
    """A Parquet file of columns named by the letters of ``names``, each ``column``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table([column] * len(names), names=list(names)), path)


def test_wrong_column_names_in_parquet_files_are_one_line_before_a_cluster_starts(
    tmp_path: Any, monkeypatch: Any
) -> None:
    """A Parquet file (read in memory) or a dataset naming a column twice says what a text
    header naming it twice says; a dataset whose files lack a chosen column, or asked for a
    column it lacks, is refused from the files' footers before a local cluster starts."""
    from typer.testing import CliRunner

    import gaussmix.cli.main  # registers every command
    import gaussmix.em.dask_workers
    from gaussmix.cli.app import app

    def no_cluster(scheduler: Any = None) -> Any:
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(gaussmix.em.dask_workers, "dask_client", no_cluster)
    x = np.arange(6.0)
    (tmp_path / "twice").mkdir()
    (tmp_path / "lacking").mkdir()
    _parquet(tmp_path / "twice.parquet", "aab", x)
    _parquet(tmp_path / "twice" / "p0.parquet", "aab", x)
    (tmp_path / "twice.csv").write_text("a,a,b\n1,2,3\n4,5,6\n")
    _parquet(tmp_path / "lacking" / "p0.parquet", "ab", x)
    _parquet(tmp_path / "lacking" / "p1.parquet", "ac", x)

    def error(*args: str) -> str:
        result = CliRunner().invoke(app, ["fit", *args, "-k", "1"])
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and len(result.output.splitlines()) == 1
        return str(result.output.strip())

    same = "names 'a' more than once; give every column its own name"
    assert error(str(tmp_path / "twice.csv")).endswith(f"twice.csv: the header {same}")
    assert error(str(tmp_path / "twice.parquet")).endswith(f"twice.parquet: the schema {same}")
    assert error(str(tmp_path / "twice")).endswith(f"p0.parquet: the schema {same}")
    lacking = tmp_path / "lacking"
    assert error(str(lacking)) == (
        f"error: {lacking / 'p1.parquet'} has no column 'b', which {lacking / 'p0.parquet'} "
        f"has; every file of {lacking} needs the columns fitted (choose common ones with "
        "--columns)"
    )
    assert error(str(lacking), "--columns", "a,zz") == (
        f"error: {lacking} has no column 'zz'; its columns are a, b (or give their numbers, 1 to 2)"
    )


# ------------------------------------------------------------------ the merge tree
def bracketed(a: str, b: str) -> str:
    """A combine that shows the tree: neither commutative nor associative."""
    return f"({a}+{b})" if a else b


def test_a_pass_is_merged_by_runs_of_chunks_then_the_runs() -> None:
    from gaussmix.em.dask_workers import fold_runs, runs_of, whole_runs

    assert runs_of(7, 3) == [range(0, 3), range(3, 6), range(6, 7)]
    assert fold_runs(list("abcde"), bracketed, "", 2) == "(((a+b)+(c+d))+e)"
    assert fold_runs(list("abc"), bracketed, "", 16) == "((a+b)+c)"
    # a worker holding chunks 0-5 and 8 of 10 holds runs 0 and 1 (of 3) whole
    assert whole_runs([0, 1, 2, 3, 4, 5, 8], 10, 3) == ([0, 1], [8])
    assert whole_runs([9], 10, 3) == ([3], [])
    X = da.from_array(np.arange(15.0).reshape(-1, 1), chunks=3)  # 5 chunks, threads here
    got = DaskWorkers(DaskSource.open(X), run_length=2).fold(first_rows, bracketed, "")
    assert got == "(((0+3)+(6+9))+12)"
