"""gaussmix demo / fit / predict, in-process: outputs, files and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.datasets import load_faithful
from tests.conftest import mixture_data


def test_demo_prints_tables_and_writes_the_picture(gaussmix_cli, tmp_path: Path) -> None:
    out = tmp_path / "demo.png"
    result = gaussmix_cli("demo", "--out", out)
    assert result.exit_code == 0, result.output
    assert "K=2: log-likelihood -1130.26" in result.stdout
    assert "K=3: log-likelihood" in result.stdout
    assert "mean log-likelihood per iteration" in result.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_csv_table_and_json(gaussmix_cli, faithful_csv: Path) -> None:
    result = gaussmix_cli("fit", faithful_csv, "-k", 2, "--seed", 0)
    assert result.exit_code == 0, result.output
    assert "mean eruptions" in result.stdout and "BIC" in result.stdout
    as_json = gaussmix_cli("fit", faithful_csv, "-k", 2, "--seed", 0, "--json")
    fitted = json.loads(as_json.stdout)
    # the command line's defaults are select's, not the library's
    reference = GaussianMixture(2, n_init=5, tol=1e-5, max_iter=1000, random_state=0)
    reference.fit(load_faithful().X)
    np.testing.assert_allclose(fitted["means"], reference.means_)
    assert fitted["columns"] == ["eruptions", "waiting"]
    assert fitted["lower_bounds"] == pytest.approx(reference.lower_bounds_)
    assert fitted["log_likelihood"] == pytest.approx(reference.score(load_faithful().X) * 272)


def test_fit_table_of_many_features_shows_the_first_ones(gaussmix_cli, tmp_path: Path) -> None:
    """Two columns per feature would not fit a terminal: the table keeps the first three and
    says where the rest are."""
    data = tmp_path / "wide.npy"
    np.save(data, mixture_data(0, n=200, n_features=12))
    result = gaussmix_cli("fit", data, "-k", 2, "--seed", 0)
    assert result.exit_code == 0, result.output
    assert "the first 3 of 12 features" in " ".join(result.stdout.split())
    assert "mean x2" in result.stdout and "mean x3" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 100


def test_fit_npy_with_mclust_name_and_save_then_predict(gaussmix_cli, tmp_path: Path) -> None:
    X = mixture_data(0, n=120, n_features=3)
    data = tmp_path / "x.npy"
    np.save(data, X)
    model = tmp_path / "m.npz"
    plot = tmp_path / "m.png"
    result = gaussmix_cli(
        "fit", data, "-k", 3, "--covariance", "VVI", "--seed", 1, "--out", model, "--plot", plot
    )
    assert result.exit_code == 0, result.output
    assert model.exists() and plot.exists()
    labels = gaussmix_cli("predict", model, data)
    assert labels.exit_code == 0, labels.output
    lines = labels.stdout.strip().splitlines()
    assert lines[0] == "component" and len(lines) == 121
    reference = GaussianMixture(
        3, covariance_type="diag", n_init=5, tol=1e-5, max_iter=1000, random_state=1
    )
    expected = reference.fit(X).predict(X)
    np.testing.assert_array_equal([int(v) for v in lines[1:]], expected)
    proba = gaussmix_cli("predict", model, data, "--proba")
    rows = np.loadtxt(proba.stdout.splitlines()[1:], delimiter=",")
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-5)


def test_scaled_fit_predicts_on_raw_data(gaussmix_cli, faithful_csv: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.npz"
    assert gaussmix_cli("fit", faithful_csv, "-k", 2, "--scale", "--out", model).exit_code == 0
    labels = gaussmix_cli("predict", model, faithful_csv).stdout.splitlines()[1:]
    sizes = sorted(np.bincount([int(v) for v in labels]))
    assert sizes == [97, 175]  # the two eruption types


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("fit", "missing.csv", "-k", "2"), "no such file: missing.csv"),
        (("fit", "{csv}", "-k", "2", "--covariance", "VXV"), "unknown covariance type 'VXV'"),
        (("fit", "{csv}", "-k", "2", "--columns", "speed"), "has no column 'speed'"),
        (("fit", "{csv}", "-k", "500"), "500 components need at least 500"),
        (("predict", "{csv}", "{csv}"), "is not a gaussmix model but a text file"),
    ],
)
def test_user_errors_are_one_line_and_exit_1(
    gaussmix_cli, faithful_csv: Path, args: tuple[str, ...], message: str
) -> None:
    result = gaussmix_cli(*(a.format(csv=faithful_csv) for a in args))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_nan_in_file_is_fitted_with_a_note(gaussmix_cli, tmp_path: Path) -> None:
    path = tmp_path / "holes.csv"
    path.write_text("a,b\n1,2\n3,nan\n5,6\n7,8\n")
    result = gaussmix_cli("fit", path, "-k", 1)
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "note: 1 missing value in 1 row is fitted (integrated out); --dropna leaves that row out\n"
    )
    assert "4 rows" in result.stdout


def test_text_column_is_left_out_with_a_note(gaussmix_cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3,x\n")
    result = gaussmix_cli("fit", path, "-k", 1)
    assert result.exit_code == 0, result.output
    assert result.stderr == "note: left out 1 text column: b\n"
    assert "mean a" in result.stdout and "mean b" not in result.stdout


def test_usage_errors_exit_2(gaussmix_cli, faithful_csv: Path) -> None:
    assert gaussmix_cli("fit", faithful_csv, "-k", 0).exit_code == 2
    assert gaussmix_cli("fit", faithful_csv).exit_code == 2
    assert gaussmix_cli("frobnicate").exit_code == 2


def test_fit_and_predict_stream_npy_and_parquet(gaussmix_cli, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X = mixture_data(3, n=900, n_features=2)
    np.save(tmp_path / "x.npy", X)
    pq.write_table(
        pa.table({"u": X[:, 0], "name": ["r"] * len(X), "v": X[:, 1]}), tmp_path / "x.parquet"
    )
    reference = GaussianMixture(2, random_state=0).fit(X)
    as_json = gaussmix_cli("fit", tmp_path / "x.npy", "-k", 2, "--seed", 0, "--json")
    fitted = json.loads(as_json.stdout)
    np.testing.assert_allclose(fitted["means"], reference.means_, rtol=1e-10)
    assert fitted["bic"] == pytest.approx(reference.bic(X), rel=1e-10)
    model = tmp_path / "m.npz"
    result = gaussmix_cli(
        "fit",
        tmp_path / "x.parquet",
        "-k",
        2,
        "--seed",
        0,
        "--columns",
        "u,v",
        "--out",
        model,
        "--plot",
        tmp_path / "p.png",
    )
    assert result.exit_code == 0, result.output
    assert "mean u" in result.stdout and (tmp_path / "p.png").exists()
    labels = gaussmix_cli("predict", model, tmp_path / "x.parquet").stdout.splitlines()[1:]
    np.testing.assert_array_equal([int(v) for v in labels], reference.predict(X))


def test_fit_online_streams_batches(gaussmix_cli, tmp_path: Path) -> None:
    X = mixture_data(7, n=1000, n_features=2, n_components=2)
    path = tmp_path / "rows.npy"
    np.save(path, X)
    result = gaussmix_cli(
        "fit", path, "-k", "2", "--seed", "0", "--online", "--batch-size", "300",
        "--epochs", "2", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.stdout)
    assert fitted["n_iter"] == 8  # four batches (300, 300, 300, 100), twice
    assert fitted["n_samples"] == 1000
    batch = GaussianMixture(2, random_state=0).fit(X)
    assert fitted["log_likelihood"] == pytest.approx(batch.score(X) * 1000, rel=0.01)


def test_fit_dataset_path_errors_before_any_cluster(gaussmix_cli, tmp_path: Path) -> None:
    result = gaussmix_cli("fit", tmp_path / "none*.parquet", "-k", "2")
    assert result.exit_code == 1
    assert "no Parquet files at" in result.output
    (tmp_path / "rows.csv").write_text("a\n1\n")
    result = gaussmix_cli("fit", tmp_path / "*.csv", "-k", "2")
    assert result.exit_code == 1
    assert "is not a .parquet file" in result.output
