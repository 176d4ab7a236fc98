"""Saving and loading without pickle; atomic writes; clear errors for foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gaussmix import GaussianMixture, GaussmixError, Prior
from gaussmix.io import FORMAT_VERSION
from tests.conftest import COVARIANCE_TYPES, mixture_data

X = mixture_data(1, n=200, n_features=3)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_round_trip(tmp_path: Path, covariance_type: str) -> None:
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    path = model.save(tmp_path / "model.npz", columns=["a", "b", "c"])
    loaded = GaussianMixture.load(path)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    # same parameters bit for bit; BLAS may round the last bits differently for arrays that sit
    # at other addresses, so the predictions agree to rounding
    np.testing.assert_allclose(
        loaded.predict_proba(X), model.predict_proba(X), rtol=1e-12, atol=1e-15
    )
    assert loaded.lower_bounds_ == model.lower_bounds_
    assert loaded.get_params() == model.get_params()
    assert loaded.columns_ == ["a", "b", "c"]
    with np.load(path, allow_pickle=False) as archive:  # readable without pickle
        meta = json.loads(str(archive["metadata"]))
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["fit"]["n_samples"] == 200


def test_feature_names_survive(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["u", "v", "w"])
    model = GaussianMixture(2, random_state=0).fit(frame)
    loaded = GaussianMixture.load(model.save(tmp_path / "m.npz"))
    assert list(loaded.feature_names_in_) == ["u", "v", "w"]
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


def test_interrupted_save_leaves_the_old_file_and_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = GaussianMixture(2, random_state=0).fit(X)
    target = tmp_path / "model.npz"
    model.save(target)
    before = target.read_bytes()

    def broken_savez(file, **arrays):  # type: ignore[no-untyped-def]
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        GaussianMixture(3, random_state=1).fit(X).save(target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_truncated_file(tmp_path: Path) -> None:
    path = GaussianMixture(2, random_state=0).fit(X).save(tmp_path / "m.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable gaussmix model") as info:
        GaussianMixture.load(path)
    assert "\n" not in str(info.value)


def test_foreign_files(tmp_path: Path) -> None:
    other = tmp_path / "other.npz"
    np.savez(other, a=np.ones(3))
    with pytest.raises(ValueError, match="not a gaussmix model"):
        GaussianMixture.load(other)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(GaussmixError, match="is not a gaussmix model but a text file"):
        GaussianMixture.load(text)
    zipped = tmp_path / "cut.npz"
    zipped.write_bytes(other.read_bytes()[:40])
    with pytest.raises(GaussmixError, match="not a readable gaussmix model"):
        GaussianMixture.load(zipped)
    with pytest.raises(FileNotFoundError, match="no such model file"):
        GaussianMixture.load(tmp_path / "missing.npz")


def _contents(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def test_pickled_arrays_are_refused(tmp_path: Path) -> None:
    path = GaussianMixture(2, random_state=0).fit(X).save(tmp_path / "m.npz")
    contents = _contents(path)
    contents["weights"] = np.array([{"a": 1}, None], dtype=object)  # stored with pickle
    np.savez(path, **contents)
    with pytest.raises(ValueError, match="not a readable gaussmix model"):
        GaussianMixture.load(path)


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = GaussianMixture(2, random_state=0).fit(X).save(tmp_path / "m.npz")
    contents = _contents(path)
    meta = json.loads(str(contents["metadata"]))
    meta["format_version"] = FORMAT_VERSION + 1
    contents["metadata"] = np.array(json.dumps(meta))
    np.savez(path, **contents)
    with pytest.raises(ValueError, match="upgrade gaussmix"):
        GaussianMixture.load(path)


def test_saved_files_get_the_usual_permissions(tmp_path: Path) -> None:
    import os

    path = GaussianMixture(2, random_state=0).fit(X).save(tmp_path / "m.npz")
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_every_constructor_parameter_round_trips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each parameter set away from its default comes back from the file."""
    K, D = 2, 3
    rng = np.random.default_rng(0)
    means = X[:K].copy()
    given = {
        "n_components": K,
        "covariance_type": "diag",
        "tol": 1e-4,
        "reg_covar": 1e-5,
        "max_iter": 50,
        "n_init": 2,
        "init_params": "random_from_data",
        "weights_init": np.array([0.25, 0.75]),
        "means_init": means,
        "precisions_init": rng.uniform(0.5, 2.0, size=(K, D)),
        "random_state": 7,
        "warm_start": True,
        "verbose": 1,
        "verbose_interval": 5,
        "chunk_size": 64,
        "n_threads": 1,
        "init_sample_size": 150,
        "dtype": np.float32,
        "missing": "em",
        "learning_decay": 0.9,
        "prior": Prior(shrinkage=0.05, mean=X.mean(axis=0), dof=6.0, scale=[0.5, 1.0, 2.0]),
        "convergence": "relative",
    }
    defaults = GaussianMixture().get_params()
    assert set(given) == set(defaults)  # a new parameter must be added here, and to the format
    for name, value in given.items():
        assert not np.array_equal(np.asarray(value), np.asarray(defaults[name])), name
    model = GaussianMixture(**given).fit(X)
    assert "Initialization" in capsys.readouterr().err  # verbose=1 reports on stderr
    loaded = GaussianMixture.load(model.save(tmp_path / "model.npz"))
    for name, value in loaded.get_params().items():
        if isinstance(given[name], np.ndarray):
            np.testing.assert_array_equal(value, given[name])
        else:
            assert value == given[name], name
    assert loaded.dtype is np.float32


def test_float32_fit_round_trips(tmp_path: Path) -> None:
    model = GaussianMixture(2, random_state=0).fit(X.astype(np.float32))
    loaded = GaussianMixture.load(model.save(tmp_path / "model.npz"))
    assert loaded.means_.dtype == np.float32
    np.testing.assert_array_equal(loaded.covariances_, model.covariances_)
