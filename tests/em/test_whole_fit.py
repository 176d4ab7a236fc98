"""A fit of ``select``'s grid in one C call (``GaussianMixture._whole_fit``: ``lean.WholeFit``,
``_kernels.c``'s ``whole_fit``: the start's M-step, the iterations, the final E-step) against the
same fit by ``_fit_validated``'s path (the start's M-step in Python, run_em with its whole loop,
the final pass), which stays the reference: the same fit to the bit, its errors and the
iterations it hands back to run_em included."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import pytest

from gaussmix import GaussianMixture, select
from gaussmix.data.sources import ArraySource
from gaussmix.em import compiled, lean
from gaussmix.em.covariance import MCLUST_MODELS
from gaussmix.em.errors import DegenerateCovarianceError
from gaussmix.selection import _data_variance, _grid_context, _start_from
from tests.conftest import mixture_data

pytestmark = pytest.mark.skipif(not compiled.AVAILABLE, reason="the C loops were not built here")

originals = {kind: kind.__call__ for kind in (lean.WholeFit, lean.UnivariateFit)}
FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")
SCALARS = ("n_iter_", "converged_", "lower_bound_", "lower_bounds_", "log_likelihood_")


def _fit(
    X: np.ndarray, k: int, model: str, fast: bool, outcomes: collections.Counter[str], **kw: Any
) -> tuple[Any, ...]:
    """One cell's fit as ``select`` makes it (its arithmetic, ``_fit_validated``), by the whole
    C fit where it applies (``fast``) or by the path, then run on as its polish does; the
    fitted numbers of both, or the error."""
    weights = kw.pop("sample_weight", None)
    options: dict[str, Any] = {"init_params": "hc", "tol": 1e-5, "convergence": "relative"}
    options["reg_covar"] = 0.0
    model_ = GaussianMixture(k, covariance_type=model, n_threads=1, **(options | kw))

    def counted(self: Any, *args: Any, **kwargs: Any) -> lean.WholeFitRun | None:
        run = originals[type(self)](self, *args, **kwargs)
        outcomes["start" if run is None else "finished" if run.finished else "handed back"] += 1
        if kwargs.get("warm") is not None:
            outcomes["warm"] += 1
        return run

    with pytest.MonkeyPatch.context() as patch, _grid_context(_data_variance(X)):
        for kind in (lean.WholeFit, lean.UnivariateFit):
            patch.setattr(kind, "__call__", counted)
        if not fast:
            patch.setattr(GaussianMixture, "_whole_fit", lambda self, source, warm=False: None)
        try:
            entropy = model_._fit_validated(ArraySource(X, weights))
            first = _numbers(model_, entropy)
            # and run on from there, as select's polish does (a warm start, a smaller tol)
            model_.warm_start, model_.tol = True, 1e-9
            entropy = model_._fit_validated(ArraySource(X, weights))
        except DegenerateCovarianceError as error:
            return ("error", str(error))
    return (*first, *_numbers(model_, entropy))


def _numbers(model: GaussianMixture, entropy: float) -> tuple[Any, ...]:
    numbers = tuple(getattr(model, name) for name in FITTED)
    return (entropy, *(getattr(model, name) for name in SCALARS), *numbers)


def _global_state() -> np.ndarray:
    """The keys of numpy's global random state (what ``random_state=None`` draws from)."""
    state: Any = np.random.get_state(legacy=True)  # noqa: NPY002
    return np.asarray(state[1]).copy()


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y


@pytest.mark.parametrize("weighted", [False, True])
def test_the_whole_fit_in_c_is_the_path_s_fit_to_the_bit(weighted: bool) -> None:
    # 40 rows in 3-D: the larger K give components of one or two rows, whose fits fail at the
    # start or hand an iteration back, as a grid's do on mclust's small data sets
    X = mixture_data(3, n=40, n_features=3, n_components=3)
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=40) if weighted else None
    fast_outcomes: collections.Counter[str] = collections.Counter()
    path_outcomes: collections.Counter[str] = collections.Counter()
    for model in MCLUST_MODELS:
        for k in (1, 2, 3, 5, 8):
            fast = _fit(X, k, model, True, fast_outcomes, sample_weight=w)
            _same(fast, _fit(X, k, model, False, path_outcomes, sample_weight=w))
    assert not path_outcomes  # the path runs no whole fit
    # every way out of the C call was taken
    assert fast_outcomes["finished"] > 40 and fast_outcomes["warm"] > 20
    assert fast_outcomes["start"] > 0 and fast_outcomes["handed back"] > 0


@pytest.mark.parametrize("weighted", [False, True])
def test_one_feature_s_whole_fit_is_the_path_s_fit_to_the_bit(weighted: bool) -> None:
    # E and V on 50 values (UnivariateFit): the larger K give classes of one or two values
    x = np.concatenate([mixture_data(7, n=50, n_features=1, n_components=3), [[40.0]]])
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=x.shape[0]) if weighted else None
    outcomes: collections.Counter[str] = collections.Counter()
    for model in ("E", "V"):
        for k in (1, 2, 3, 6, 9):
            for start in ("hc", "quantile"):
                fast = _fit(x, k, model, True, outcomes, sample_weight=w, init_params=start)
                path = _fit(x, k, model, False, outcomes, sample_weight=w, init_params=start)
                _same(fast, path)
    assert outcomes["finished"] > 20 and outcomes["warm"] > 10


def test_columns_starts_that_draw_and_their_random_state_are_the_path_s() -> None:
    X = np.asfortranarray(mixture_data(5, n=60, n_features=2, n_components=3))  # a copy is bound
    outcomes: collections.Counter[str] = collections.Counter()
    for model in ("VVV", "VEV", "EII", "EVE"):
        for k in (2, 4, 9):
            for seed in (0, None):  # None: numpy's global state, what this test is about
                np.random.seed(7)  # noqa: NPY002
                fast = _fit(X, k, model, True, outcomes, init_params="kmeans", random_state=seed)
                after_fast = _global_state()
                np.random.seed(7)  # noqa: NPY002
                path = _fit(X, k, model, False, outcomes, init_params="kmeans", random_state=seed)
                _same(fast, path)
                # a fit that the path took over drew its start again from the state before
                np.testing.assert_array_equal(after_fast, _global_state())
    assert outcomes["finished"] > 0


def test_a_fit_from_given_parameters_is_the_path_s_to_the_bit() -> None:
    # select's contest starts a cell from the other models' fits of its K (selection._start_from)
    X = mixture_data(4, n=80, n_features=3, n_components=3)
    outcomes: collections.Counter[str] = collections.Counter()
    for k in (2, 3, 6):
        other = GaussianMixture(k, covariance_type="VVI", reg_covar=0.0, random_state=0).fit(X)
        for model in MCLUST_MODELS:
            given = _start_from(other, model)
            assert given is not None
            fast = _fit(X, k, model, True, outcomes, **given)
            _same(fast, _fit(X, k, model, False, outcomes, **given))
    assert outcomes["warm"] > 3 * len(MCLUST_MODELS)  # each fit's and each polish's C call


@pytest.mark.parametrize("n_features", [1, 3])
def test_a_grid_is_the_same_with_and_without_the_whole_fit(
    monkeypatch: pytest.MonkeyPatch, n_features: int
) -> None:
    X = mixture_data(2, n=50, n_features=n_features, n_components=2)
    fast = select(X, range(1, 7), "all", random_state=0).to_dict()
    monkeypatch.setattr(GaussianMixture, "_whole_fit", lambda self, source, warm=False: None)
    path = select(X, range(1, 7), "all", random_state=0).to_dict()
    assert fast == path
    if n_features == 3:
        assert any(r["error"] for r in fast["fits"])  # failed cells are among them
