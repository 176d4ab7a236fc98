"""A Parquet file with nulls and NaN through fit, predict and info --data (streamed block by
block): the missing-value policy of a text file, its notes, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gaussmix.cli.app import app

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from tests.test_streamed_missing import write_holes  # noqa: E402


def _run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_fit_predict_and_info_on_a_streamed_file_with_holes(tmp_path: Path) -> None:
    from gaussmix import GaussianMixture

    path = tmp_path / "holes.parquet"
    X = write_holes(path)
    holed = np.isnan(X).any(axis=1)
    kept = X[~holed]
    fitted = _run("fit", path, "-k", "2", "--json", "--out", tmp_path / "m.npz")
    assert fitted.exit_code == 0, fitted.output
    assert fitted.stderr == (
        f"note: {int(np.isnan(X).sum())} missing values in {int(holed.sum())} rows are fitted "
        "(integrated out); --dropna leaves those rows out\n"
    )
    assert json.loads(fitted.stdout)["n_samples"] == len(X)
    dropped = _run("fit", path, "-k", "2", "--json", "--dropna")
    assert dropped.exit_code == 0, dropped.output
    assert dropped.stderr == (
        f"note: dropped {int(holed.sum())} of {len(X)} rows with missing values "
        f"({len(kept)} rows left)\n"
    )
    assert json.loads(dropped.stdout)["n_samples"] == len(kept)
    model = GaussianMixture.load(tmp_path / "m.npz").set_params(missing="em")
    for extra, rows in (((), X), (("--dropna",), kept)):
        predicted = _run("predict", tmp_path / "m.npz", path, *extra)
        assert predicted.exit_code == 0, predicted.output
        labels = [int(v) for v in predicted.stdout.split()[1:]]
        assert labels == model.predict(rows).tolist()
        info = _run("info", tmp_path / "m.npz", "--data", path, "--json", *extra)
        assert info.exit_code == 0, info.output
        scored = json.loads(info.stdout)["data"]
        assert scored["n_samples"] == len(rows)
        assert scored["log_likelihood"] == pytest.approx(model.score(rows) * len(rows))


def test_a_streamed_file_with_an_empty_column_fails_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    x = np.arange(10.0)
    y = pa.array([None] * 10, type=pa.float64())
    pq.write_table(pa.table({"x": x, "y": y}), path, row_group_size=4)
    model = tmp_path / "m.npz"
    assert _run("fit", path, "-k", "1", "--drop", "y", "--out", model).exit_code == 0
    said = {
        (): f"error: {path}: column 'y' has every value missing; leave it out (--drop y)\n",
        ("--dropna",): f"error: {path} has no rows of data left\n",
    }
    for extra, message in said.items():
        for command in (
            ("fit", path, "-k", "1"),
            ("select", path, "-k", "1-2"),
            ("predict", model, path, "--columns", "x,y"),
            ("info", model, "--data", path, "--columns", "x,y"),
        ):
            result = _run(*command, *extra)
            assert result.exit_code == 1, result.output
            assert result.stderr == message and result.stdout == ""


def test_a_streamed_npy_file_with_holes_is_fitted_or_its_rows_dropped(tmp_path: Path) -> None:
    X = write_holes(tmp_path / "unused.parquet")
    path = tmp_path / "holes.npy"
    np.save(path, X)
    holed = int(np.isnan(X).any(axis=1).sum())
    fitted = _run("fit", path, "-k", "2", "--json")
    assert fitted.exit_code == 0, fitted.output
    assert fitted.stderr.startswith(f"note: {int(np.isnan(X).sum())} missing values in {holed}")
    dropped = _run("fit", path, "-k", "2", "--json", "--dropna")
    assert dropped.exit_code == 0, dropped.output
    assert dropped.stderr == (
        f"note: dropped {holed} of {len(X)} rows with missing values ({len(X) - holed} rows left)\n"
    )
    assert json.loads(dropped.stdout)["n_samples"] == len(X) - holed


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_online_refuses_holes_in_one_line_and_fits_with_dropna(tmp_path: Path, kind: str) -> None:
    X = write_holes(tmp_path / "holes.parquet")
    path = tmp_path / f"holes.{kind}"
    if kind == "csv":
        np.savetxt(path, X, delimiter=",", header="a,b,c", comments="")
    first = int(np.argmax(np.isnan(X).any(axis=1))) + 1
    online = ("-k", "2", "--online", "--batch-size", "50")
    refused = _run("fit", path, *online)
    assert refused.exit_code == 1, refused.output
    assert refused.stderr.splitlines()[-1] == (
        f"error: --online fits complete rows only, and row {first} has a missing value; "
        "--dropna leaves such rows out, or fit without --online (missing values are then "
        "integrated out)"
    )
    assert "Traceback" not in refused.output
    dropped = _run("fit", path, *online, "--dropna", "--json")
    assert dropped.exit_code == 0, dropped.output
    assert json.loads(dropped.stdout)["n_samples"] == int((~np.isnan(X).any(axis=1)).sum())
