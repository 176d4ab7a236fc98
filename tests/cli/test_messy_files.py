"""Everyday files through the command line (tests/data/messy): what it prints and its exit code.

Each file either fits, with the notes it should print on stderr, or fails with one line that
names the file, the row or line, the column, and what to try.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gaussmix.cli.app import app

MESSY = Path(__file__).parent.parent / "data" / "messy"
# every readable file of the set holds the same 40 rows of x and y
REFERENCE = np.loadtxt(MESSY / "tabs.tsv", delimiter="\t", skiprows=1)


def _fit(*args: str, stdin: str | None = None):
    runner = CliRunner()
    return runner.invoke(app, ["fit", *map(str, args), "-k", "2", "--json"], input=stdin)


def _means(result) -> np.ndarray:
    return np.asarray(sorted(json.loads(result.stdout)["means"]))


def _expected_means() -> np.ndarray:
    from gaussmix import GaussianMixture

    model = GaussianMixture(2, n_init=5, tol=1e-5, max_iter=1000, random_state=0)
    return np.asarray(sorted(model.fit(REFERENCE).means_.tolist()))


@pytest.mark.parametrize(
    ("name", "extra", "note"),
    [
        ("text_column.csv", (), "note: left out 1 text column: id\n"),
        ("label_column.csv", (), "note: left out 1 text column: species\n"),
        (
            "semicolon_decimal_comma.csv",
            (),
            "note: read decimal commas (1,5 as 1.5) in this ';'-separated file\n",
        ),
        ("semicolon_decimal_comma.csv", ("--sep", ";", "--decimal", ","), ""),
        ("bom.csv", (), ""),
        ("crlf.csv", (), ""),
        ("r_row_names.csv", (), "note: left out the unnamed first column (R's row names)\n"),
        ("r_write_table.txt", (), "note: left out the unnamed first column (R's row names)\n"),
        ("comments_blank_quoted.csv", (), ""),
        ("tabs.tsv", (), ""),
        ("whitespace.txt", (), ""),
        ("label_column.csv", ("--columns", "1,y"), ""),
        ("constant_column.csv", ("--drop", "c"), ""),
    ],
)
def test_file_fits_with_its_notes(name: str, extra: tuple[str, ...], note: str) -> None:
    result = _fit(MESSY / name, *extra)
    assert result.exit_code == 0, result.output
    assert result.stderr == note
    np.testing.assert_allclose(_means(result), _expected_means(), rtol=1e-6)


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        (
            "ragged.csv",
            (),
            "ragged.csv, line 6: 1 field(s) where the header has 2 ('-0.536'); every row needs "
            "the same number of fields",
        ),
        ("header_only.csv", (), "header_only.csv has a header (x, y) but no rows of data"),
        ("one_row.csv", (), "one_row.csv has 1 row of data; 2 components need at least 2"),
        ("folder", (), "folder is a folder; give a data file"),
        ("label_column.csv", ("--columns", "species"), "'species' hold text, not numbers"),
        ("label_column.csv", ("--columns", "4"), "has no column '4'; its columns are x, y, "),
        ("tabs.tsv", ("--decimal", ";"), "--decimal: ';': use . or ,"),
    ],
)
def test_file_fails_with_one_line(name: str, extra: tuple[str, ...], message: str) -> None:
    result = _fit(MESSY / name, *extra)
    assert result.exit_code in (1, 2), result.output
    assert message in " ".join(result.stderr.split())
    if result.exit_code == 1:
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert result.stdout == ""


FITTED_NOTE = (
    "note: 2 missing values in 2 rows are fitted (integrated out); --dropna leaves those rows out\n"
)


def _missing_rows() -> np.ndarray:
    from gaussmix.data.files import read_table

    return read_table(MESSY / "missing.csv").X


def test_missing_values_are_fitted_by_default_with_a_note() -> None:
    from gaussmix import GaussianMixture

    result = _fit(MESSY / "missing.csv")
    assert result.exit_code == 0, result.output
    assert result.stderr == FITTED_NOTE
    fit = json.loads(result.stdout)
    assert fit["n_samples"] == 40
    model = GaussianMixture(2, n_init=5, tol=1e-5, max_iter=1000, random_state=0, missing="em")
    expected = sorted(model.fit(_missing_rows()).means_.tolist())
    np.testing.assert_allclose(sorted(fit["means"]), expected, rtol=1e-8)


def test_select_fits_rows_with_missing_values() -> None:
    result = CliRunner().invoke(
        app, ["select", str(MESSY / "missing.csv"), "-k", "1-3", "--json", "--jobs", "1"]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == FITTED_NOTE
    chosen = json.loads(result.stdout)
    assert chosen["best"]["n_components"] == 2


@pytest.mark.parametrize("fit_args", [(), ("--dropna",)])
def test_predict_and_info_score_rows_with_missing_values(
    tmp_path: Path, fit_args: tuple[str, ...]
) -> None:
    from gaussmix import GaussianMixture

    model_path = tmp_path / "m.npz"
    fitted = _fit(MESSY / "missing.csv", *fit_args, "--out", model_path)
    assert fitted.exit_code == 0, fitted.output
    runner = CliRunner()
    predicted = runner.invoke(app, ["predict", str(model_path), str(MESSY / "missing.csv")])
    assert predicted.exit_code == 0, predicted.output
    labels = [int(v) for v in predicted.stdout.split()[1:]]
    # a model fitted with or without the holes scores them by the observed columns' marginal
    model = GaussianMixture.load(model_path).set_params(missing="em")
    assert labels == model.predict(_missing_rows()).tolist() and len(labels) == 40
    info = runner.invoke(
        app, ["info", str(model_path), "--data", str(MESSY / "missing.csv"), "--json"]
    )
    assert info.exit_code == 0, info.output
    scored = json.loads(info.stdout)["data"]
    assert scored["n_samples"] == 40
    assert scored["log_likelihood"] == pytest.approx(model.score(_missing_rows()) * 40)


def test_scale_and_plot_with_missing_values(tmp_path: Path) -> None:
    result = _fit(MESSY / "missing.csv", "--scale", "--plot", tmp_path / "m.png")
    assert result.exit_code == 0, result.output
    left_out = "note: the picture leaves out 2 rows with missing values\n"
    assert result.stderr == FITTED_NOTE + left_out
    scaling = json.loads(result.stdout)["scaling"]
    X = _missing_rows()
    np.testing.assert_allclose(scaling["center"], np.nanmean(X, axis=0))
    np.testing.assert_allclose(scaling["scale"], np.nanstd(X, axis=0))
    assert (tmp_path / "m.png").stat().st_size > 0


def test_missing_values_dropped_with_a_note() -> None:
    result = _fit(MESSY / "missing.csv", "--dropna")
    assert result.exit_code == 0, result.output
    assert result.stderr == "note: dropped 2 of 40 rows with missing values (38 rows left)\n"
    assert json.loads(result.stdout)["n_samples"] == 38


def test_more_missing_spellings(tmp_path: Path) -> None:
    path = tmp_path / "dots.csv"
    path.write_text("a,b\n1,2\n.,4\n5,6\n7,-999\n9,1\n")
    result = _fit(path, "--na-values", ".,-999", "--dropna")
    assert result.exit_code == 0, result.output
    assert "dropped 2 of 5 rows" in result.stderr


def test_stdin_is_read_with_a_dash() -> None:
    result = _fit("-", stdin=(MESSY / "label_column.csv").read_text())
    assert result.exit_code == 0, result.output
    assert result.stderr == "note: left out 1 text column: species\n"
    np.testing.assert_allclose(_means(result), _expected_means(), rtol=1e-6)


def test_empty_stdin() -> None:
    result = _fit("-", stdin="")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: standard input is empty")


def test_a_typo_deep_in_a_numeric_column_names_line_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gaussmix.data.text.SAMPLE_BYTES", 64)  # the typo after the sample
    path = tmp_path / "typo.csv"
    rows = "".join(f"s{i},{i},{i % 3}\n" for i in range(30))
    path.write_text("id,a,b\n" + rows + "s30,7,x1\n")  # the text column is not counted
    result = _fit(path)
    assert result.exit_code == 1, result.output
    assert "typo.csv, line 32, column 'b': 'x1' is not a number" in result.stderr
    assert "--na-values 'x1'" in result.stderr and "--drop 'b'" in result.stderr


def test_fit_and_select_name_the_same_degenerate_columns(tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "twins.csv"
    rng = np.random.default_rng(1)
    x = rng.normal(size=50)
    rows = "".join(f"{a},{b},{a},3\n" for a, b in zip(x, rng.normal(size=50), strict=True))
    path.write_text("x,y,x_again,c\n" + rows)
    fitted = runner.invoke(app, ["fit", str(path), "-k", "1", "--n-init", "1"])
    selected = runner.invoke(app, ["select", str(path), "-k", "1", "-c", "diag", "--jobs", "1"])
    for result in (fitted, selected):
        text = " ".join(result.stderr.split())
        assert "constant column(s) 'c'" in text
        assert "duplicated column(s) 'x_again' = 'x'" in text
    assert fitted.exit_code == 0, fitted.output
    assert selected.exit_code == 1 and "error: no fit could be chosen" in selected.stderr


def test_select_shows_the_whole_grid_when_every_fit_is_degenerate() -> None:
    # x takes three values only: with 3 or 4 components each one sits on rows of one x
    runner = CliRunner()
    # a regularised grid (without reg_covar, select's default, these fits fail: NA)
    args = ["select", str(MESSY / "ties.csv"), "-k", "3..4", "-c", "diag,full", "--jobs", "1"]
    args += ["--reg-covar", "1e-6"]
    table = runner.invoke(app, args)
    assert table.exit_code == 1
    rows = [line for line in table.stdout.splitlines() if line.startswith(("│ 3 │", "│ 4 │"))]
    assert len(rows) == 2 and all(row.count("!") == 2 for row in rows)  # every cell degenerate
    assert "* chosen" in table.stdout
    error = " ".join(table.stderr.split())
    assert error.startswith("error: no fit of the grid can be chosen")
    assert "try fewer components; they have no spread in column(s) 'x'" in error
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 1
    document = json.loads(as_json.stdout)
    assert document["best"] is None and len(document["fits"]) == 4
    assert all(fit["degenerate"] for fit in document["fits"])
