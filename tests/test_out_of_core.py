"""Data larger than memory: memmaps, .npy and Parquet files give the in-memory fit, and the
memory of a fit does not grow with the number of rows."""

from __future__ import annotations

import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture
from gaussmix.data import NpySource, ParquetSource
from gaussmix.em import parallel
from tests.conftest import COVARIANCE_TYPES, mixture_data

X = mixture_data(11, n=3000, n_features=3)


def _fit(data: object, covariance_type: str = "full", **kwargs: object) -> GaussianMixture:
    model = GaussianMixture(
        3, covariance_type=covariance_type, random_state=0, chunk_size=700, **kwargs
    )
    return model.fit(data)


def _assert_same_fit(a: GaussianMixture, b: GaussianMixture) -> None:
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-9)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-12)
    assert a.n_iter_ == b.n_iter_
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, rel=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_memmap_and_npy_path_equal_the_in_memory_fit(tmp_path: Path, covariance_type: str) -> None:
    path = tmp_path / "x.npy"
    np.save(path, X)
    in_memory = _fit(X, covariance_type)
    _assert_same_fit(_fit(np.load(path, mmap_mode="r"), covariance_type), in_memory)
    from_path = _fit(path, covariance_type)
    _assert_same_fit(from_path, in_memory)
    np.testing.assert_array_equal(from_path.predict(path), in_memory.predict(X))


def test_float32_npy_file(tmp_path: Path) -> None:
    path = tmp_path / "x32.npy"
    np.save(path, X.astype(np.float32))
    _assert_same_fit(_fit(path), _fit(X.astype(np.float32)))


def test_parquet_file_with_columns(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"a": X[:, 0], "label": ["x"] * len(X), "b": X[:, 1], "c": X[:, 2]})
    path = tmp_path / "x.parquet"
    pq.write_table(table, path, row_group_size=500)
    source = ParquetSource.open(path, columns=["a", "b", "c"])
    _assert_same_fit(_fit(source), _fit(X))
    with pytest.raises(ValueError, match="'label' are not numeric"):
        _fit(path)
    with pytest.raises(ValueError, match="no column 'z'"):
        ParquetSource.open(path, columns=["a", "z"])


def test_sample_weights_with_a_file(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, X)
    w = np.random.default_rng(0).integers(0, 3, size=len(X)).astype(float)
    a = GaussianMixture(3, random_state=0, chunk_size=500).fit(path, sample_weight=w)
    b = GaussianMixture(3, random_state=0, chunk_size=500).fit(X, sample_weight=w)
    _assert_same_fit(a, b)


def test_bad_files(tmp_path: Path) -> None:
    bad = X.copy()
    bad[1234, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match=r"1 NaN or infinite value\(s\), the first in row 1234"):
        _fit(tmp_path / "nan.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="3-D"):
        _fit(tmp_path / "cube.npy")
    (tmp_path / "x.json").write_text("[[1, 2]]")
    with pytest.raises(ValueError, match=r"reads \.npy, \.parquet and text tables"):
        _fit(tmp_path / "x.json")
    np.save(tmp_path / "short.npy", X)
    data = (tmp_path / "short.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(data[:-100])
    with pytest.raises(ValueError, match="truncated"):
        NpySource.open(tmp_path / "short.npy")
    with pytest.raises(FileNotFoundError):
        _fit(tmp_path / "missing.npy")
    model = _fit(X)
    np.save(tmp_path / "two.npy", X[:, :2])
    with pytest.raises(ValueError, match="2 features, but GaussianMixture is expecting 3"):
        model.predict(tmp_path / "two.npy")


def _traced_mb(model: GaussianMixture, data: object) -> float:
    """Peak traced memory of a fit, in MB: this process's and its forked workers'."""
    parallel.reset_worker_memory()
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak + parallel.worker_memory()) / 2**20


def _extra_memory_mb(path: Path) -> float:
    """Peak traced memory of a fit from a file, in MB (the rows themselves stay on disk)."""
    model = GaussianMixture(4, covariance_type="full", max_iter=3, tol=0.0, random_state=0)
    return _traced_mb(model, path)


def test_memory_of_a_fit_does_not_grow_with_n(tmp_path: Path) -> None:
    """tracemalloc at 150k and 600k rows (18 MB and 72 MB of data): the same few MB."""
    rng = np.random.default_rng(0)
    small, large = tmp_path / "small.npy", tmp_path / "large.npy"
    np.save(small, rng.normal(size=(150_000, 15)))
    np.save(large, rng.normal(size=(600_000, 15)))
    at_small, at_large = _extra_memory_mb(small), _extra_memory_mb(large)
    assert at_large < 100
    # four times the rows, not 2 MB more: no per-row array (450k more rows x 8 bytes = 3.6 MB)
    assert at_large - at_small < 2.0, (at_small, at_large)


def test_memory_of_an_in_memory_fit_is_bounded() -> None:
    """Beyond X itself, an array fit needs blocks, not copies: under 100 MB at 600k x 15."""
    Xl = np.random.default_rng(1).normal(size=(600_000, 15))
    model = GaussianMixture(4, max_iter=3, tol=0.0, random_state=0)
    assert _traced_mb(model, Xl) < 100
