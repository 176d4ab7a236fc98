"""gaussmix.data: the text reader (pyarrow's CSV reader with sniffing around it), column choice
by name or number, the missing-value policy, and CSV files streamed block by block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gaussmix import GaussianMixture, GaussmixError
from gaussmix.data import files, text
from gaussmix.data.files import CsvSource, ReadOptions, open_data, read_table

MESSY = Path(__file__).parent / "data" / "messy"
EXAMPLE = Path(__file__).parent.parent / "docs" / "faithful-messy.csv"


def test_every_spelling_of_the_same_table_reads_the_same() -> None:
    reference = read_table(MESSY / "tabs.tsv")
    for name in (
        "bom.csv",
        "crlf.csv",
        "comments_blank_quoted.csv",
        "r_row_names.csv",
        "semicolon_decimal_comma.csv",
        "text_column.csv",
        "label_column.csv",
    ):
        table = read_table(MESSY / name)
        np.testing.assert_array_equal(table.X, reference.X, err_msg=name)
        assert table.columns == ["x", "y"], name


def test_headerless_whitespace_file_gets_generated_names() -> None:
    table = read_table(MESSY / "whitespace.txt")
    assert table.columns == ["x0", "x1"]
    np.testing.assert_array_equal(table.X, read_table(MESSY / "tabs.tsv").X)


def test_columns_and_drop_by_name_or_number() -> None:
    path = MESSY / "constant_column.csv"
    assert read_table(path, ["3", "x"]).columns == ["c", "x"]
    assert read_table(path, options=ReadOptions(drop=("2",))).columns == ["x", "c"]
    with pytest.raises(GaussmixError, match="no column is left"):
        read_table(path, options=ReadOptions(drop=("x", "y", "c")))


def test_separator_override() -> None:
    # read as commas, the header "x;y" is one field and every row, with its decimal comma, three
    with pytest.raises(GaussmixError, match=r"line 2: 3 field\(s\) where the header has 1"):
        read_table(
            MESSY / "semicolon_decimal_comma.csv",
            options=ReadOptions(text=text.TextOptions(sep=",")),
        )
    with pytest.raises(
        GaussmixError,
        match=r"no numeric column \(x, y read as text, split on "
        r"';' with decimal mark '.'\); check --sep and --decimal",
    ):
        read_table(
            MESSY / "semicolon_decimal_comma.csv",
            options=ReadOptions(text=text.TextOptions(sep=";", decimal=".")),
        )


def test_missing_policy_is_one_setting() -> None:
    assert files.DEFAULT_MISSING == "fit"
    fitted = read_table(MESSY / "missing.csv")
    assert fitted.X.shape == (40, 2) and np.isnan(fitted.X).sum() == 2
    assert fitted.notes[-1] == (
        "2 missing values in 2 rows are fitted (integrated out); --dropna leaves those rows out"
    )
    with pytest.raises(GaussmixError, match="the first in row 3, column 'y'"):
        read_table(MESSY / "missing.csv", options=ReadOptions(missing="error"))
    kept = read_table(MESSY / "missing.csv", options=ReadOptions(missing="drop"))
    assert kept.X.shape == (38, 2) and not np.isnan(kept.X).any()


def test_a_parquet_file_read_into_memory_has_the_same_missing_policy(tmp_path: Path) -> None:
    """Nulls of a Parquet file read into memory (``--scale``, the API) are the text file's
    missing values: fitted with its note, refused or dropped in its words."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    csv = read_table(MESSY / "missing.csv")
    path = tmp_path / "missing.parquet"
    pd.DataFrame(csv.X, columns=csv.columns).to_parquet(path)
    fitted = read_table(path)
    np.testing.assert_array_equal(fitted.X, csv.X)
    assert fitted.notes[-1] == csv.notes[-1]
    with pytest.raises(
        GaussmixError, match=r"missing\.parquet has 2 missing value.*row 3, column 'y'"
    ):
        read_table(path, options=ReadOptions(missing="error"))
    kept = read_table(path, options=ReadOptions(missing="drop"))
    drop = ReadOptions(missing="drop")
    np.testing.assert_array_equal(kept.X, read_table(MESSY / "missing.csv", options=drop).X)
    X = csv.X.copy()
    X[4] = np.nan
    pd.DataFrame(X, columns=csv.columns).to_parquet(path)
    with pytest.raises(GaussmixError, match="row 5 has every value missing"):
        read_table(path)


def test_duplicate_header_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("a,a\n1,2\n3,4\n")
    with pytest.raises(GaussmixError, match="names 'a' more than once"):
        read_table(path)


def test_binary_file_is_not_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "blob.dat"
    path.write_bytes(b"\x00\x01\x02" * 10)
    with pytest.raises(GaussmixError, match="binary data"):
        read_table(path)


def test_a_large_csv_streams_and_fits_as_the_array_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "STREAM_BYTES", 1000)
    monkeypatch.setattr(text, "BLOCK_BYTES", 2048)  # many pyarrow blocks, cut mid-line
    options = ReadOptions(missing="drop")
    loaded = open_data(EXAMPLE, options)
    assert isinstance(loaded.X, CsvSource) and loaded.X.n_samples == 270
    assert loaded.columns == ["eruptions", "waiting"]
    assert any("block by block" in note for note in loaded.notes)
    assert [len(block) for block, _ in loaded.X.chunks(100)] == [100, 100, 70]
    in_memory = read_table(EXAMPLE, options=options).X
    np.testing.assert_array_equal(loaded.X.take(np.arange(270)), in_memory)
    streamed = GaussianMixture(2, random_state=0).fit(loaded.X)
    held = GaussianMixture(2, random_state=0).fit(in_memory)
    np.testing.assert_allclose(streamed.means_, held.means_, rtol=1e-10)


def test_a_large_csv_with_missing_values_is_refused_under_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(files, "STREAM_BYTES", 1000)
    with pytest.raises(GaussmixError, match=r"2 missing value.*row 5, column 'waiting'"):
        open_data(EXAMPLE, ReadOptions(missing="error"))


def test_a_large_csv_with_missing_values_streams_and_fits_them_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(files, "STREAM_BYTES", 1000)
    monkeypatch.setattr(text, "BLOCK_BYTES", 2048)
    loaded = open_data(EXAMPLE)
    assert isinstance(loaded.X, CsvSource) and loaded.X.n_samples == 272
    assert "2 missing values in 2 rows are fitted (integrated out)" in loaded.notes[-2]
    in_memory = read_table(EXAMPLE).X
    np.testing.assert_array_equal(loaded.X.take(np.arange(272)), in_memory)
    streamed = GaussianMixture(2, random_state=0, missing="em").fit(loaded.X)
    held = GaussianMixture(2, random_state=0, missing="em").fit(in_memory)
    assert streamed.n_missing_ == held.n_missing_ == 2
    np.testing.assert_allclose(streamed.means_, held.means_, rtol=1e-8)


@pytest.mark.parametrize("stream", [False, True])
def test_fit_policy_refuses_empty_rows_and_columns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stream: bool
) -> None:
    if stream:
        monkeypatch.setattr(files, "STREAM_BYTES", 10)
    path = tmp_path / "holes.csv"
    path.write_text("a,b\n1,2\nNA,\n5,6\nNA,NA\n")
    with pytest.raises(GaussmixError, match=r"row 2 has every value missing \(2 such row"):
        open_data(path)
    path.write_text("a,b\n1,\n3,NA\n5,\n")
    with pytest.raises(GaussmixError, match=r"column 'b' has every value missing.*--drop b"):
        open_data(path)


def test_the_estimator_fits_a_csv_path_with_missing_values() -> None:
    by_path = GaussianMixture(2, random_state=0, missing="em").fit(str(EXAMPLE))
    held = GaussianMixture(2, random_state=0, missing="em").fit(read_table(EXAMPLE).X)
    assert by_path.n_missing_ == 2
    np.testing.assert_allclose(by_path.means_, held.means_, rtol=1e-8)
    # without missing='em' the library's own message, not the command line's --dropna
    with pytest.raises(ValueError, match="2 NaN or infinite value") as caught:
        GaussianMixture(2).fit(str(EXAMPLE))
    assert "--dropna" not in str(caught.value)


def test_the_estimator_fits_a_csv_path_block_by_block(tmp_path: Path) -> None:
    path = tmp_path / "faithful.csv"
    path.write_text(EXAMPLE.read_text().replace(";NA;", ";70;"))
    by_path = GaussianMixture(2, random_state=0).fit(str(path))
    held = GaussianMixture(2, random_state=0).fit(read_table(path, options=ReadOptions()).X)
    np.testing.assert_allclose(by_path.means_, held.means_, rtol=1e-10)


def test_the_library_warns_about_constant_and_duplicated_columns() -> None:
    import pandas as pd

    from gaussmix import DegenerateDataWarning, select

    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    frame = pd.DataFrame({"x": x, "y": rng.normal(size=60), "x2": x})
    with pytest.warns(DegenerateDataWarning, match=r"duplicated column\(s\) 'x2' = 'x'"):
        GaussianMixture(1).fit(frame)
    with pytest.warns(DegenerateDataWarning, match=r"duplicated column\(s\) 'x2' = 'x'"):
        select(frame, [1], ["diag"], n_jobs=1)
    with pytest.warns(DegenerateDataWarning, match=r"constant column\(s\) '2'"):
        GaussianMixture(1).fit(np.c_[x, np.ones(60)])
