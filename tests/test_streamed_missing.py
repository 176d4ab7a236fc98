"""gaussmix.data: a Parquet or ``.npy`` file streamed block by block (``open_data`` without
``--scale``) under the missing-value policy, as the same file read into memory: nulls and NaN
fitted with the note, refused in the text reader's words, or their rows left out on every pass
(``RowsWithoutHoles``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gaussmix import GaussianMixture, GaussmixError
from gaussmix.data import NpySource, ParquetSource
from gaussmix.data.files import ReadOptions, open_data, read_table
from gaussmix.data.sources import RowsWithoutHoles
from tests.conftest import mixture_data

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

DROP = ReadOptions(missing="drop")


def write_holes(path: Path, n: int = 300, seed: int = 0) -> np.ndarray:
    """Three columns in row groups of 64 rows, with holes three ways: nulls in a float column
    ('a'), NaN in another ('b') and nulls in an integer one ('c'); returns the rows with NaN
    for every hole (n, 3)."""
    X = mixture_data(seed, n=n, n_features=3, n_components=2)
    X[:, 2] = np.round(X[:, 2] * 10)
    rng = np.random.default_rng(seed)
    holes = rng.random(X.shape) < 0.04
    holes[holes.all(axis=1), 0] = False  # no row without an observed value
    X[holes] = np.nan
    table = pa.table(
        {
            "a": pa.array(X[:, 0], mask=holes[:, 0]),
            "b": pa.array(X[:, 1]),  # NaN, not null
            "c": pa.array(np.nan_to_num(X[:, 2]).astype(np.int64), mask=holes[:, 2]),
        }
    )
    assert table.column("a").null_count and table.column("c").null_count
    pq.write_table(table, path, row_group_size=64)
    return X


def holes_file(folder: Path, kind: str) -> tuple[Path, np.ndarray, str]:
    """``write_holes`` as a Parquet file or as a ``.npy`` (NaN for every hole); the file, its
    rows and its column names."""
    if kind == "parquet":
        path = folder / "holes.parquet"
        return path, write_holes(path), "abc"
    X = write_holes(folder / "unused.parquet")
    np.save(folder / "holes.npy", X)
    return folder / "holes.npy", X, ("x0", "x1", "x2")


def _fit(X, sample_weight=None, **kwargs) -> GaussianMixture:
    model = GaussianMixture(2, n_init=2, random_state=0, chunk_size=50, **kwargs)
    return model.fit(X, sample_weight=sample_weight)


def _assert_same_fit(a: GaussianMixture, b: GaussianMixture, rtol: float) -> None:
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=rtol)
    np.testing.assert_allclose(a.means_, b.means_, rtol=rtol)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=rtol)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=rtol)


@pytest.mark.parametrize("kind", ["parquet", "npy"])
def test_holes_are_fitted_by_default_with_the_in_memory_note(tmp_path: Path, kind: str) -> None:
    path, X, _ = holes_file(tmp_path, kind)
    loaded = open_data(path)
    assert isinstance(loaded.X, (ParquetSource, NpySource)) and loaded.X.n_samples == len(X)
    in_memory = read_table(path)
    assert loaded.notes == in_memory.notes
    holed = int(np.isnan(X).any(axis=1).sum())
    assert loaded.notes[-1].startswith(f"{int(np.isnan(X).sum())} missing values in {holed} rows")
    np.testing.assert_array_equal(loaded.X.take(np.arange(len(X))), X)
    streamed = _fit(loaded.X, missing="em")
    held = _fit(in_memory.X, missing="em")
    assert streamed.n_missing_ == held.n_missing_ == int(np.isnan(X).sum())
    _assert_same_fit(streamed, held, 1e-8)


@pytest.mark.parametrize("kind", ["parquet", "npy"])
def test_dropna_leaves_the_rows_out_on_every_pass(tmp_path: Path, kind: str) -> None:
    path, X, _ = holes_file(tmp_path, kind)
    kept = X[~np.isnan(X).any(axis=1)]
    loaded = open_data(path, DROP)
    assert isinstance(loaded.X, RowsWithoutHoles) and loaded.X.n_samples == len(kept) < len(X)
    assert loaded.notes == read_table(path, options=DROP).notes
    assert loaded.notes[-1] == (
        f"dropped {len(X) - len(kept)} of {len(X)} rows with missing values ({len(kept)} rows left)"
    )
    # blocks of the asked size whatever the row groups and the rows left out
    sizes = [len(block) for block, _ in loaded.X.chunks(50)]
    assert sizes[:-1] == [50] * (len(sizes) - 1) and sum(sizes) == len(kept)
    np.testing.assert_array_equal(loaded.X.take(np.arange(len(kept))), kept)
    # the same blocks as the array without those rows: the same fit
    _assert_same_fit(_fit(loaded.X), _fit(kept), 1e-10)
    weights = np.linspace(0.5, 2.0, len(kept))
    _assert_same_fit(_fit(loaded.X, weights), _fit(kept, weights), 1e-10)


@pytest.mark.parametrize("kind", ["parquet", "npy"])
def test_the_error_policy_names_the_first_hole(tmp_path: Path, kind: str) -> None:
    path, X, names = holes_file(tmp_path, kind)
    r = int(np.argmax(np.isnan(X).any(axis=1)))
    column = names[int(np.argmax(np.isnan(X[r])))]
    error = ReadOptions(missing="error")
    with pytest.raises(GaussmixError) as streamed:
        open_data(path, error)
    with pytest.raises(GaussmixError) as held:
        read_table(path, options=error)
    assert str(streamed.value) == str(held.value)
    assert f"the first in row {r + 1}, column {column!r}" in str(streamed.value)


@pytest.mark.parametrize("hole", ["null", "nan"])
def test_empty_columns_and_rows_are_refused_in_the_text_readers_words(
    tmp_path: Path, hole: str
) -> None:
    path = tmp_path / "empty.parquet"
    x = np.arange(10.0)
    empty = pa.array([None] * 10, type=pa.float64()) if hole == "null" else pa.array(x * np.nan)
    pq.write_table(pa.table({"x": x, "y": empty}), path, row_group_size=4)
    for options in (ReadOptions(), DROP):
        with pytest.raises(GaussmixError) as held:
            read_table(path, options=options)
        with pytest.raises(GaussmixError) as streamed:
            open_data(path, options)
        assert str(streamed.value) == str(held.value)
    with pytest.raises(GaussmixError, match=r"column 'y' has every value missing.*--drop y"):
        open_data(path)
    with pytest.raises(GaussmixError, match="has no rows of data left"):
        open_data(path, DROP)
    y = x.copy()
    y[5] = np.nan
    pq.write_table(pa.table({"x": pa.array(x, mask=x == 5), "y": y}), path, row_group_size=4)
    with pytest.raises(GaussmixError, match=r"row 6 has every value missing \(1 such row"):
        open_data(path)
    assert open_data(path, DROP).X.n_samples == 9


def test_a_file_without_holes_streams_as_before(tmp_path: Path) -> None:
    path = tmp_path / "full.parquet"
    X = mixture_data(1, n=200, n_features=2, n_components=2)
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1]}), path, row_group_size=64)
    for options in (ReadOptions(), DROP):
        loaded = open_data(path, options)
        assert isinstance(loaded.X, ParquetSource)
        assert loaded.notes == () and loaded.X.n_samples == 200


def test_npy_columns_read_into_memory_have_the_same_policy(tmp_path: Path) -> None:
    path, X, _ = holes_file(tmp_path, "npy")
    rows = X[:, :2]
    holed = np.isnan(rows).any(axis=1)
    two = ReadOptions(columns=("x0", "x1"))
    loaded = open_data(path, two)
    assert isinstance(loaded.X, np.ndarray)
    np.testing.assert_array_equal(loaded.X, rows)
    assert loaded.notes[-1].startswith(f"{int(np.isnan(rows).sum())} missing values")
    dropped = open_data(path, ReadOptions(columns=("x0", "x1"), missing="drop"))
    np.testing.assert_array_equal(dropped.X, rows[~holed])
    assert dropped.notes == (
        f"dropped {int(holed.sum())} of {len(X)} rows with missing "
        f"values ({int((~holed).sum())} rows left)",
    )
