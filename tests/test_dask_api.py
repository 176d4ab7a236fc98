"""The rest of the API on a Dask cluster: select, fit_predict, missing values, float32, and the
command line on a Parquet dataset (columns, text columns, --scale, select).

One LocalCluster of two single-threaded worker processes serves the module, in the same xdist
group as ``test_dask.py`` so that the two clusters never run at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gaussmix import GaussianMixture, select
from tests.conftest import mixture_data

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.xdist_group("dask")


def _same_records(got: Any, ref: Any, rtol: float = 1e-9) -> None:
    """The same grid, cell by cell: iterations, log-likelihood, criteria, entropy and the
    degeneracy rule's value; the same choice with the same parameters."""
    assert [r.model_name for r in got.records] == [r.model_name for r in ref.records]
    for a, b in zip(got.records, ref.records, strict=True):
        assert a.n_iter == b.n_iter, a.model_name
        assert a.n_parameters == b.n_parameters
        assert a.degenerate == b.degenerate
        for name in ("log_likelihood", "bic", "icl", "aic", "min_relative_variance"):
            assert getattr(a, name) == pytest.approx(getattr(b, name), rel=rtol), name
        assert a.entropy == pytest.approx(b.entropy, rel=1e-7, abs=1e-9)
    assert got.best_record.model_name == ref.best_record.model_name
    np.testing.assert_allclose(got.best.means_, ref.best.means_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(got.best.covariances_, ref.best.covariances_, rtol=rtol, atol=1e-12)


def test_select_on_dask_equals_select_in_memory(client: Any) -> None:
    """Fewer rows than init_sample_size: every start sees all rows on both sides (gathered on
    the workers for Dask), so the hierarchical and k-means starts are the same ones."""
    X = mixture_data(3, n=500, n_features=2, n_components=2)
    # K=1 (one start) and K=2 (the hierarchical start and a k-means one)
    grid = dict(n_components=[1, 2], covariance_types=["full", "EEE"], n_init=2, random_state=0)
    # a positive reg_covar: the same sums on both sides (with select's default, none, the rows in
    # memory take the lean pass's sums about each mean, lean.py, Dask the general pass's)
    grid |= {"reg_covar": 1e-6}
    ref = select(X, n_jobs=1, **grid)
    seen: list[str] = []
    got = select(da.from_array(X, chunks=250), progress=lambda r: seen.append(r.model_name), **grid)
    _same_records(got, ref)
    assert sorted(seen) == sorted(r.model_name for r in ref.records)
    assert (got.n_samples, got.n_features) == (500, 2)


def test_select_s_contest_on_dask_equals_the_contest_in_memory(client: Any) -> None:
    """Above hc.HC_MAX_ROWS rows, select's contest (its k-means starts and its starts from the
    other models' fits, selection._start_from) runs on the cluster as in memory."""
    from gaussmix.em.hc import HC_MAX_ROWS

    X = mixture_data(3, n=HC_MAX_ROWS + 200, n_features=2, n_components=3)
    grid = dict(n_components=[2, 3], covariance_types=["EEE", "VVV"], random_state=0)
    grid |= {"reg_covar": 1e-6}  # the same sums on both sides (the test above)
    ref = select(X, n_jobs=1, **grid)
    got = select(da.from_array(X, chunks=800), **grid)
    assert len(ref.contested) == 3 and got.contested == ref.contested
    _same_records(got, ref, rtol=1e-8)


def test_select_on_a_dask_frame_with_missing_values(client: Any) -> None:
    """missing='em' on Dask: the holes integrated out as in memory; the models keep the
    frame's column names."""
    import pandas as pd

    X = mixture_data(4, n=400, n_features=2, n_components=2)
    X[[3, 50, 51], [0, 1, 0]] = np.nan
    ref = select(X, [2], ["VVV"], missing="em", random_state=0, n_jobs=1)
    frame = dd.from_pandas(pd.DataFrame(X, columns=["u", "v"]), npartitions=3)
    got = select(frame, [2], ["VVV"], missing="em", random_state=0)
    _same_records(got, ref)
    assert list(got.best.feature_names_in_) == ["u", "v"]
    assert got.best.n_missing_ == 3
    with pytest.raises(ValueError, match=r"3 NaN or infinite value\(s\), the first in row 3"):
        select(frame, [2], ["VVV"])


def test_dask_missing_values_are_fitted_as_in_memory(client: Any) -> None:
    X = mixture_data(5, n=900)
    X[np.arange(0, 900, 37), np.arange(0, 900, 37) % 3] = np.nan
    options = dict(missing="em", random_state=0, tol=1e-6)
    ref = GaussianMixture(3, **options).fit(X)
    got = GaussianMixture(3, **options).fit(da.from_array(X, chunks=250))
    assert got.n_missing_ == ref.n_missing_ == 25
    assert got.n_iter_ == ref.n_iter_
    assert got.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-10)
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-10)
    assert got.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-10)
    X[7] = np.nan
    with pytest.raises(ValueError, match=r"every value missing \(row 7\)"):
        GaussianMixture(3, missing="em").fit(da.from_array(X, chunks=250))


def test_nullable_integer_columns_are_numbers_with_nan(client: Any) -> None:
    """pandas' Int64 (what Parquet integers with nulls become): NA is NaN, a missing value."""
    import pandas as pd

    X = np.round(mixture_data(11, n=300, n_features=2, n_components=2) * 10)
    X[5, 0] = np.nan
    frame = pd.DataFrame({"a": pd.array(X[:, 0], dtype="Int64"), "b": X[:, 1]})
    got = GaussianMixture(2, missing="em", random_state=0).fit(dd.from_pandas(frame, 2))
    ref = GaussianMixture(2, missing="em", random_state=0).fit(X)
    assert got.n_missing_ == 1
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-10)


def test_fit_predict_on_dask_is_lazy_with_the_rows_chunks(client: Any) -> None:
    X = mixture_data(6, n=800)
    ref = GaussianMixture(3, random_state=0)
    expected = ref.fit_predict(X)
    Xd = da.from_array(X, chunks=300)
    got = GaussianMixture(3, random_state=0)
    labels = got.fit_predict(Xd)
    assert isinstance(labels, da.Array)
    assert labels.chunks == (Xd.chunks[0],)
    np.testing.assert_array_equal(labels.compute(), expected)
    assert got.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-10)


def test_float32_rows_on_dask_give_float32_as_in_memory(client: Any) -> None:
    X = mixture_data(7, n=600).astype(np.float32)
    ref = GaussianMixture(2, random_state=0).fit(X)
    Xd = da.from_array(X, chunks=250)
    got = GaussianMixture(2, random_state=0).fit(Xd)
    assert got.means_.dtype == got.covariances_.dtype == np.float32
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-5)
    proba, density = got.predict_proba(Xd), got.score_samples(Xd)
    assert proba.dtype == density.dtype == np.float32
    assert proba.compute().dtype == np.float32
    np.testing.assert_allclose(density.compute(), ref.score_samples(X), rtol=1e-5)


@pytest.mark.parametrize("covariance_type", ["VVV", "EEI"])
def test_a_prior_on_dask_takes_the_data_moments_on_the_cluster(
    client: Any, covariance_type: str, monkeypatch: Any
) -> None:
    """prior='mclust' on Dask: the data's mean and covariance are reduced on the workers (no
    row chunk is brought here), and the MAP fit is the in-memory one."""
    from gaussmix.data.dask_source import DaskSource

    X = mixture_data(12, n=900)
    w = np.random.default_rng(3).uniform(0.5, 2.0, X.shape[0])
    options = dict(covariance_type=covariance_type, prior="mclust", random_state=0, tol=1e-8)
    ref = GaussianMixture(3, **options).fit(X, sample_weight=w)

    def no_rows_here(self: Any, rows: int) -> Any:
        raise AssertionError("the rows were brought to the client")

    monkeypatch.setattr(DaskSource, "chunks", no_rows_here)
    Xd, wd = da.from_array(X, chunks=250), da.from_array(w, chunks=250)
    got = GaussianMixture(3, **options).fit(Xd, sample_weight=wd)
    assert got.n_iter_ == ref.n_iter_
    assert got.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-10)
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-10)
    np.testing.assert_allclose(got.covariances_, ref.covariances_, rtol=1e-10)
    assert got.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-10)
    # partial_fit makes its prior from the first batch, on the cluster as well
    first = GaussianMixture(3, **options).partial_fit(X[:450])
    batch = GaussianMixture(3, **options).partial_fit(da.from_array(X[:450], chunks=200))
    np.testing.assert_allclose(batch.means_, first.means_, rtol=1e-10)


# ------------------------------------------------------------------ the command line
def _write_dataset(folder: Path, X: np.ndarray) -> None:
    """Three Parquet files of columns a, b, c, a text column and a constant column; one NaN."""
    import pandas as pd

    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["kind"] = ["x", "y"] * (len(X) // 2)
    frame["const"] = 1.0
    folder.mkdir()
    third = len(X) // 3
    for i in range(3):
        frame.iloc[i * third : (i + 1) * third].to_parquet(folder / f"part{i}.parquet")
    frame.to_parquet(folder.parent / "whole.parquet")


def _run(args: list[str]) -> Any:
    from typer.testing import CliRunner

    import gaussmix.cli.main  # noqa: F401  (registers every command)
    from gaussmix.cli.app import app

    return CliRunner().invoke(app, args)


def test_cli_dataset_reads_columns_as_one_parquet_file_does(client: Any, tmp_path: Path) -> None:
    """--drop by number, the text column's note, a missing value fitted, --scale computed on
    the cluster: the same fit and the same standardisation as for the one file."""
    X = mixture_data(8, n=600, n_components=2)
    X[:, 2] *= 50.0
    X[7, 1] = np.nan
    _write_dataset(tmp_path / "ds", X)
    address = client.scheduler.address
    common = ["-k", "2", "--drop", "5", "--scale", "--json", "--seed", "0", "--n-init", "2"]
    one = _run(["fit", str(tmp_path / "whole.parquet"), *common])
    assert one.exit_code == 0, one.output
    many = _run(["fit", str(tmp_path / "ds"), *common, "--scheduler", address])
    assert many.exit_code == 0, many.output
    assert "left out 1 text column: kind" in many.stderr
    assert "1 missing value in 1 row is fitted" in many.stderr
    a, b = json.loads(one.stdout), json.loads(many.stdout)
    assert b["columns"] == a["columns"] == ["a", "b", "c"]
    np.testing.assert_allclose(b["scaling"]["center"], a["scaling"]["center"], rtol=1e-12)
    np.testing.assert_allclose(b["scaling"]["scale"], a["scaling"]["scale"], rtol=1e-12)
    assert b["log_likelihood"] == pytest.approx(a["log_likelihood"], rel=1e-9)
    order_a, order_b = (
        np.argsort(np.asarray(a["means"])[:, 0]),
        np.argsort(np.asarray(b["means"])[:, 0]),
    )
    np.testing.assert_allclose(
        np.asarray(b["means"])[order_b], np.asarray(a["means"])[order_a], rtol=1e-8, atol=1e-10
    )
    asked_text = _run(["fit", str(tmp_path / "ds"), "-k", "2", "--columns", "a,kind",
                       "--scheduler", address])  # fmt: skip
    assert asked_text.exit_code == 1
    assert "'kind' hold text" in asked_text.output
    dropped = _run(["fit", str(tmp_path / "ds"), "-k", "2", "--drop", "const", "--dropna",
                    "--n-init", "1", "--scheduler", address, "--json"])  # fmt: skip
    assert dropped.exit_code == 0, dropped.output
    assert "dropped 1 of 600 rows with missing values (599 rows left)" in dropped.stderr
    assert json.loads(dropped.stdout)["n_samples"] == 599


def test_cli_dataset_refuses_empty_rows_and_columns_as_a_text_file_does(
    client: Any, tmp_path: Path
) -> None:
    """A row or a column with every value missing: the text reader's words (the data named,
    the row 1-based, what to try), from counts taken on the cluster."""
    import pandas as pd

    X = mixture_data(13, n=300, n_features=2, n_components=2)
    address = client.scheduler.address
    for name, holes in (("row", (slice(151, 152), slice(None))), ("column", (slice(None), 1))):
        Y = X.copy()
        Y[holes] = np.nan
        frame = pd.DataFrame(Y, columns=["a", "b"])
        folder = tmp_path / name
        folder.mkdir()
        for i in range(3):
            frame.iloc[i * 100 : (i + 1) * 100].to_parquet(folder / f"p{i}.parquet")
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        text = _run(["fit", str(tmp_path / f"{name}.csv"), "-k", "2"])
        many = _run(["fit", str(folder), "-k", "2", "--scheduler", address])
        assert text.exit_code == many.exit_code == 1, many.output
        expected = text.output.replace(str(tmp_path / f"{name}.csv"), "DATA")
        assert many.output.replace(str(folder), "DATA") == expected
        assert len(expected.splitlines()) == 1 and f"{name} " in expected


def test_cli_select_on_a_dataset_equals_select_on_the_file(client: Any, tmp_path: Path) -> None:
    X = mixture_data(9, n=450, n_features=3, n_components=2)
    _write_dataset(tmp_path / "ds", X)
    # --reg-covar: the same sums on both sides (test_select_on_dask_equals_select_in_memory)
    common = ["-k", "1..2", "-c", "VVV,EII", "--columns", "a,b", "--json", "--reg-covar", "1e-6"]
    one = _run(["select", str(tmp_path / "whole.parquet"), *common, "--jobs", "1"])
    assert one.exit_code == 0, one.output
    address = client.scheduler.address
    many = _run(["select", str(tmp_path / "ds"), *common, "--scheduler", address])
    assert many.exit_code == 0, many.output
    a, b = json.loads(one.stdout), json.loads(many.stdout)
    assert b["best"]["mclust"] == a["best"]["mclust"]
    assert b["n_samples"] == a["n_samples"] == 450
    for fit_a, fit_b in zip(a["fits"], b["fits"], strict=True):
        # the same optimum; which start reached it may differ where two starts tie to
        # rounding (here EII,2's hierarchical and k-means starts, 3e-16 apart): the last bits
        # of the final E-step decide, the lean C pass's in memory, the general pass's on Dask
        assert fit_b["log_likelihood"] == pytest.approx(fit_a["log_likelihood"], rel=1e-9)


def test_cli_predict_on_a_dataset_writes_what_the_file_gives(tmp_path: Path) -> None:
    """No scheduler: Dask's threaded scheduler here, the labels written chunk by chunk."""
    X = mixture_data(10, n=300, n_components=2)
    _write_dataset(tmp_path / "ds", X)
    model = tmp_path / "m.npz"
    fitted = _run(["fit", str(tmp_path / "whole.parquet"), "-k", "2", "--drop", "const",
                   "--n-init", "1", "--out", str(model)])  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    for extra in (["--drop", "const"], ["--drop", "const", "--proba"]):
        one = _run(["predict", str(model), str(tmp_path / "whole.parquet"), *extra])
        many = _run(["predict", str(model), str(tmp_path / "ds"), *extra])
        assert one.exit_code == many.exit_code == 0, many.output
        assert many.stdout == one.stdout
        assert len(many.stdout.splitlines()) == 301


def test_cli_a_scaled_model_scores_a_dataset_lazily(tmp_path: Path, monkeypatch: Any) -> None:
    """A model fitted with --scale: predict, --proba and info --data standardise a dataset's
    rows on Dask, chunk by chunk (no row, and no per-row output, gathered here whole), and
    give what the one file gives."""
    from gaussmix.data.dask_source import DaskSource
    from gaussmix.em import device

    X = mixture_data(14, n=300, n_components=2)
    X[:, 1] *= 40.0
    _write_dataset(tmp_path / "ds", X)
    model, whole = tmp_path / "m.npz", str(tmp_path / "whole.parquet")
    fitted = _run(["fit", whole, "-k", "2", "--drop", "const", "--scale", "--n-init", "1",
                   "--out", str(model)])  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    commands = [
        ["predict", str(model), "DATA", "--drop", "const"],
        ["predict", str(model), "DATA", "--drop", "const", "--proba"],
        ["info", str(model), "--data", "DATA", "--drop", "const", "--json"],
    ]
    expected = [_run([whole if a == "DATA" else a for a in args]) for args in commands]

    def not_here(*args: Any) -> Any:
        raise AssertionError("rows or per-row values were brought here whole")

    monkeypatch.setattr(DaskSource, "take", not_here)
    monkeypatch.setattr(DaskSource, "chunks", not_here)
    monkeypatch.setattr(device, "on_host", not_here)
    for args, one in zip(commands, expected, strict=True):
        many = _run([str(tmp_path / "ds") if a == "DATA" else a for a in args])
        assert one.exit_code == many.exit_code == 0, many.output
        if args[0] == "predict":
            assert many.stdout == one.stdout
            continue
        a, b = json.loads(one.stdout)["data"], json.loads(many.stdout)["data"]
        assert b["n_samples"] == a["n_samples"] == 300
        assert b["log_likelihood"] == pytest.approx(a["log_likelihood"], rel=1e-10)
        assert b["bic"] == pytest.approx(a["bic"], rel=1e-10)
