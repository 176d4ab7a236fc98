"""The array-API kernel (em/device.py): the same statistics as the numpy kernel, computed with
the rows' own library on their device; GaussianMixture under scikit-learn's array API dispatch.

array_api_strict's second device ("device1") stands for a GPU: anything that left the device
or mixed devices would raise there. Skipped where a library is not installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sklearn

from gaussmix import GaussianMixture
from gaussmix.em import REGISTRY, UNIVARIATE_MODELS, Params, get_covariance, merge
from gaussmix.em.stats import chunk_stats_componentwise, zeros
from tests.conftest import COVARIANCE_TYPES, mixture_data

# every model of the registry: mclust's fourteen (scikit-learn's four among them) and E, V
ALL_MODELS = tuple(REGISTRY)


def _rows_for(covariance_type: str, seed: int, n: int) -> np.ndarray:
    """mixture_data's rows, one column of them for mclust's univariate E and V."""
    X = mixture_data(seed, n=n)
    return X[:, :1].copy() if covariance_type in UNIVARIATE_MODELS else X


def _strict(X: np.ndarray) -> Any:
    xps = pytest.importorskip("array_api_strict")
    return xps.asarray(X, device=xps.Device("device1"))


def _torch(X: np.ndarray) -> Any:
    torch = pytest.importorskip("torch")
    return torch.asarray(X)


LIBRARIES = [pytest.param(_strict, id="array_api_strict"), pytest.param(_torch, id="torch")]


def _params(covariance_type: str, X: np.ndarray) -> Params:
    cov = get_covariance(covariance_type)
    model = GaussianMixture(3, covariance_type=covariance_type, max_iter=2, random_state=0)
    model.fit(X)
    return Params(model.weights_, model.means_ + 0.1, model.precisions_cholesky_, cov)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter=2
@pytest.mark.parametrize("to_device", LIBRARIES)
@pytest.mark.parametrize("covariance_type", ALL_MODELS)
def test_device_statistics_are_the_numpy_kernels(to_device: Any, covariance_type: str) -> None:
    from gaussmix.em.device import chunk_stats_device

    X = _rows_for(covariance_type, 0, 120)
    params = _params(covariance_type, X)
    w = np.random.default_rng(1).uniform(0.0, 2.0, size=len(X))
    w[5] = 0.0
    expected = chunk_stats_componentwise(X, params, w)
    Xd = to_device(X)
    # two blocks merged, as a pass over a device source does
    got = merge(
        merge(zeros(params), chunk_stats_device(Xd[:50, ...], params, w[:50])),
        chunk_stats_device(Xd[50:, ...], params, w[50:]),
    )
    for name in ("nk", "sx", "sxx", "worst_x"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-10)
    assert got.loglik == pytest.approx(expected.loglik, rel=1e-12)
    assert got.n == pytest.approx(expected.n)
    assert got.worst_loglik == pytest.approx(expected.worst_loglik, rel=1e-12)


@pytest.mark.parametrize("to_device", LIBRARIES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_on_the_device_matches_numpy(to_device: Any, covariance_type: str) -> None:
    from sklearn.utils._array_api import device, get_namespace, move_to

    X = mixture_data(2, n=300)
    ref = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    Xd = to_device(X)
    with sklearn.config_context(array_api_dispatch=True):
        model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(Xd)
        xp = get_namespace(Xd)[0]
        outputs = {
            "means_": model.means_,
            "covariances_": model.covariances_,
            "predict_proba": model.predict_proba(Xd),
            "score_samples": model.score_samples(Xd),
        }
        labels = model.predict(Xd)
        for value in [*outputs.values(), labels, model.sample(5)[0]]:
            assert get_namespace(value)[0] is xp
            assert device(value) == device(Xd)
        assert isinstance(model.bic(Xd), float)
    expected = {
        "means_": ref.means_,
        "covariances_": ref.covariances_,
        "predict_proba": ref.predict_proba(X),
        "score_samples": ref.score_samples(X),
    }
    for name, value in outputs.items():
        np.testing.assert_allclose(
            move_to(value, xp=np, device="cpu"), expected[name], rtol=1e-7, atol=1e-10
        )
    np.testing.assert_array_equal(move_to(labels, xp=np, device="cpu"), ref.predict(X))
    assert model.n_iter_ == ref.n_iter_
    assert model.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-10)


@pytest.mark.parametrize("to_device", LIBRARIES)
def test_float32_rows_stay_float32_on_the_device(to_device: Any) -> None:
    from sklearn.utils._array_api import get_namespace

    X = mixture_data(3, n=200).astype(np.float32)
    Xd = to_device(X)
    with sklearn.config_context(array_api_dispatch=True):
        xp = get_namespace(Xd)[0]
        model = GaussianMixture(2, random_state=0).fit(Xd)
        assert model.means_.dtype == xp.float32
        assert model.predict_proba(Xd).dtype == xp.float32


def test_arrays_of_other_libraries_need_dispatch_on() -> None:
    """Without dispatch a torch tensor is converted to numpy, as scikit-learn does."""
    X = mixture_data(4, n=100)
    model = GaussianMixture(2, random_state=0).fit(_torch(X))
    assert isinstance(model.means_, np.ndarray)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("to_device", LIBRARIES)
@pytest.mark.parametrize("covariance_type", sorted(set(ALL_MODELS) - set(COVARIANCE_TYPES)))
def test_every_mclust_model_fits_on_the_device(to_device: Any, covariance_type: str) -> None:
    """The twelve models beyond scikit-learn's four: the kernel reads their storage layout from
    the registry, so a device fit is the numpy fit."""
    from sklearn.utils._array_api import move_to

    X = _rows_for(covariance_type, 4, 150)
    kwargs = {"covariance_type": covariance_type, "random_state": 0, "max_iter": 20}
    ref = GaussianMixture(2, **kwargs).fit(X)
    with sklearn.config_context(array_api_dispatch=True):
        model = GaussianMixture(2, **kwargs).fit(to_device(X))
    for name in ("means_", "covariances_"):
        got = move_to(getattr(model, name), xp=np, device="cpu")
        np.testing.assert_allclose(got, getattr(ref, name), rtol=1e-7, atol=1e-10)
    assert model.n_iter_ == ref.n_iter_
    assert model.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-10)


@pytest.mark.parametrize("to_device", LIBRARIES)
def test_weights_warm_start_and_save_on_the_device(to_device: Any, tmp_path: Any) -> None:
    from sklearn.utils._array_api import move_to

    X = mixture_data(6, n=200)
    w = np.random.default_rng(0).integers(1, 3, size=len(X)).astype(float)
    ref = GaussianMixture(2, random_state=0, warm_start=True).fit(X, sample_weight=w)
    Xd = to_device(X)
    with sklearn.config_context(array_api_dispatch=True):
        model = GaussianMixture(2, random_state=0, warm_start=True)
        model.fit(Xd, sample_weight=w)
        np.testing.assert_allclose(
            move_to(model.means_, xp=np, device="cpu"), ref.means_, rtol=1e-7
        )
        model.fit(Xd, sample_weight=w)  # warm: starts from the device attributes
        ref.fit(X, sample_weight=w)
        assert model.n_iter_ == ref.n_iter_ and model.converged_ == ref.converged_
    loaded = GaussianMixture.load(model.save(tmp_path / "model.npz"))
    assert isinstance(loaded.means_, np.ndarray)
    np.testing.assert_allclose(loaded.means_, ref.means_, rtol=1e-7)
