"""Initialisation: k-means labels replayed for the models of a grid are the ones k-means draws;
initial statistics replayed between models are the ones each takes; the hierarchical start
draws nothing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gaussmix.em import init
from gaussmix.errors import GaussmixError
from tests.conftest import mixture_data


def test_replayed_kmeans_gives_the_labels_and_the_random_state_of_a_fresh_run() -> None:
    X = mixture_data(6, n=200, n_features=2, n_components=3)
    init._KMEANS.clear()
    first = np.random.RandomState(3)
    labels = init._kmeans_standardised(X, 3, first, None)
    after_first = first.randint(10**9)
    assert len(init._KMEANS) == 1
    again = np.random.RandomState(3)
    replayed = init._kmeans_standardised(X, 3, again, None)  # from the cache
    assert len(init._KMEANS) == 1
    np.testing.assert_array_equal(replayed, labels)
    assert again.randint(10**9) == after_first  # the state k-means left behind
    init._KMEANS.clear()
    fresh = init._kmeans_standardised(X, 3, np.random.RandomState(3), None)
    np.testing.assert_array_equal(fresh, labels)


def test_other_rows_weights_or_states_are_other_entries() -> None:
    X = mixture_data(6, n=200, n_features=2, n_components=3)
    init._KMEANS.clear()
    rng = np.random.RandomState(3)
    init._kmeans(X, 3, rng, None)
    init._kmeans(X, 3, rng, None)  # the state moved on: a new draw
    init._kmeans(X, 3, np.random.RandomState(3), np.ones(200))
    init._kmeans(X[::-1].copy(), 3, np.random.RandomState(3), None)
    init._kmeans(X, 2, np.random.RandomState(3), None)
    assert len(init._KMEANS) == 5
    init._KMEANS.clear()


def test_initial_statistics_are_replayed_only_between_models_that_take_them_alike() -> None:
    from gaussmix.em import REGISTRY, get_covariance
    from gaussmix.em.hc import hc_resp

    X = mixture_data(4, n=150, n_features=3, n_components=3)
    names = [name for name in REGISTRY if name not in ("E", "V")]
    for k in (2, 3):
        resp = hc_resp(X, k)

        def start(name: str, k: int = k) -> tuple[np.ndarray, ...]:
            params = init.initial_params(
                lambda: (X, None), k, get_covariance(name), method="hc", rng=None, reg_covar=1e-6
            )
            return params.weights, params.means, params.precisions_cholesky

        fresh = {}
        for name in names:
            init._STATS.clear()
            fresh[name] = start(name)
        init._STATS.clear()
        replayed = {name: start(name) for name in names}
        # full, tied, diagonal, spherical: the four codes that take statistics
        assert len(init._STATS) == 4
        for name in names:
            for a, b in zip(fresh[name], replayed[name], strict=True):
                np.testing.assert_array_equal(a, b)
        stats = init._initial_stats(X, resp, get_covariance("full"), None, k)
        stats.sxx[...] = 0.0  # each caller has its own copy
        again = init._initial_stats(X, resp, get_covariance("full"), None, k)
        assert np.all(np.diagonal(again.sxx, axis1=1, axis2=2) > 0)
        # every field is in the copy, and no array is shared with the kept statistics
        kept = next(reversed(init._STATS.values()))
        for field in dataclasses.fields(kept):
            mine, theirs = getattr(again, field.name), getattr(kept, field.name)
            np.testing.assert_array_equal(mine, theirs)
            if isinstance(theirs, np.ndarray):
                assert not np.shares_memory(mine, theirs), field.name
    init._STATS.clear()


def test_the_hierarchical_start_makes_no_random_state(monkeypatch: pytest.MonkeyPatch) -> None:
    import gaussmix.mixture
    from gaussmix import GaussianMixture

    def refused(seed: object) -> np.random.RandomState:
        raise AssertionError("a random state was made")

    X = mixture_data(6, n=200, n_features=2, n_components=3)
    monkeypatch.setattr(gaussmix.mixture, "random_state_for_starts", refused)
    GaussianMixture(3, init_params="hc", random_state=0).fit(X)  # draws nothing
    with pytest.raises(AssertionError, match="was made"):  # a sample of the rows is drawn
        GaussianMixture(3, init_params="hc", init_sample_size=50, random_state=0).fit(X)
    with pytest.raises(AssertionError, match="was made"):
        GaussianMixture(3, init_params="kmeans", random_state=0).fit(X)
    with pytest.raises(RuntimeError, match="given no state"):
        init._random(X, 3, None, None)


def test_initial_statistics_of_other_memory_layouts_are_other_entries() -> None:
    from gaussmix.em import get_covariance
    from gaussmix.em.hc import hc_resp
    from gaussmix.em.mstep import stats_from_resp

    X = mixture_data(4, n=150, n_features=3, n_components=3)
    columns = np.asfortranarray(X)  # the same numbers, as a DataFrame's columns give them
    resp, full = hc_resp(X, 3), get_covariance("full")
    init._STATS.clear()
    init._initial_stats(X, resp, full, None, 3)
    replayed = init._initial_stats(columns, resp, full, None, 3)
    assert len(init._STATS) == 2
    np.testing.assert_array_equal(replayed.sx, stats_from_resp(columns, resp, full).sx)
    init._STATS.clear()


def test_a_seed_gives_the_state_a_fresh_random_state_has() -> None:
    import threading

    first = init.random_state_for_starts(5)
    first.uniform(size=7)
    first.normal()  # a cached Gaussian: reseeding must clear it too
    for seed in (0, 5, 2**32 - 1, np.int64(11)):
        kept = init.random_state_for_starts(seed)
        assert kept is first  # this thread's one, reseeded
        fresh_state = np.random.RandomState(seed).get_state()
        for mine, fresh in zip(kept.get_state(), fresh_state, strict=True):
            np.testing.assert_array_equal(mine, fresh)
        assert kept.normal() == np.random.RandomState(seed).normal()
    other: list[np.random.RandomState] = []
    thread = threading.Thread(target=lambda: other.append(init.random_state_for_starts(5)))
    thread.start()
    thread.join()
    assert other[0] is not first  # each thread its own
    given = np.random.RandomState(1)
    assert init.random_state_for_starts(given) is given
    assert init.random_state_for_starts(None) is np.random.mtrand._rand


def test_kmeans_start_is_scikit_learns() -> None:
    from sklearn.cluster import KMeans

    X = mixture_data(6, n=200, n_features=2, n_components=3)
    init._KMEANS.clear()
    ours = init._kmeans(X, 3, np.random.RandomState(4), None)
    theirs = KMeans(n_clusters=3, n_init=1, random_state=np.random.RandomState(4)).fit(X).labels_
    np.testing.assert_array_equal(ours, theirs)


# ------------------------------------------------------------------ mclust's qclass (one feature)


@pytest.mark.parametrize("k", range(2, 10))
def test_quantile_classes_are_the_classes_between_the_quantiles(k: int) -> None:
    # 2522 values: (n - 1) j / k is never an integer for 0 < j < k, so no cut falls on a value
    # and numpy's quantiles (linear, R's type 7) decide every class as R's do
    x = np.random.RandomState(k).standard_normal(2522)
    cuts = np.quantile(x, np.linspace(0.0, 1.0, k + 1))[1:-1]
    labels = init.quantile_classes(x, k)
    np.testing.assert_array_equal(labels, np.searchsorted(cuts, x, side="right"))
    assert np.array_equal(np.unique(labels), np.arange(k))


def test_quantile_classes_where_a_cut_falls_on_a_value_are_r_s() -> None:
    # R 4.2, mclust 6.0.0: table(qclass(0:140, 5)) is 28 28 29 27 29: the cut at 1 + 140 * 0.6
    # (85.00000000000001 in R's arithmetic) sits a rounding error above 84, which stays below
    labels = init.quantile_classes(np.arange(141.0), 5)
    np.testing.assert_array_equal(np.bincount(labels), [28, 28, 29, 27, 29])


@pytest.mark.parametrize(
    ("k", "expected"),
    [  # qclass(x, k) - 1 in R, mclust 6.0.0: repeated quantiles take more points, then the
        # left ends of the smallest gaps go
        (2, [0] * 6 + [1] * 12),
        (3, [0] * 6 + [1] * 6 + [2] * 6),
        (4, [0] * 4 + [1] * 2 + [2] * 5 + [3] * 7),
    ],
)
def test_quantile_classes_of_tied_values_are_mclust_s(k: int, expected: list[int]) -> None:
    x = np.array([1, 1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 4, 5, 5, 5, 5, 5, 5], dtype=float)
    np.testing.assert_array_equal(init.quantile_classes(x, k), expected)
    # the order of the rows does not matter: each value keeps its class
    order = np.random.RandomState(0).permutation(x.size)
    np.testing.assert_array_equal(init.quantile_classes(x[order], k), np.array(expected)[order])


def test_the_quantile_start_is_for_one_feature_and_draws_nothing() -> None:
    x = np.random.RandomState(1).standard_normal((50, 1))
    np.testing.assert_array_equal(init._quantile(x, 3, None, None), init.quantile_classes(x, 3))
    assert "quantile" in init.DRAWS_NOTHING
    with pytest.raises(GaussmixError, match="one feature"):
        init._quantile(np.ones((5, 2)), 2, None, None)


@pytest.mark.parametrize("model", ["E", "V", "spherical"])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_statistics_of_one_feature_s_labels_are_those_of_their_one_hot_rows(
    model: str, weighted: bool
) -> None:
    from gaussmix.em.covariance import get_covariance
    from gaussmix.em.mstep import stats_from_resp

    rng = np.random.RandomState(2)
    X = rng.standard_normal((60, 1)) * 3.0 + 10.0
    labels = rng.randint(0, 4, size=60)
    labels[labels == 2] = 3  # an empty class: N_k = 0, as the one-hot rows give it
    weights = rng.uniform(0.5, 2.0, size=60) if weighted else None
    cov = get_covariance(model)
    fast = stats_from_resp(X, labels, cov, weights, n_components=5)
    general = stats_from_resp(X, np.eye(5)[labels], cov, weights)  # the one-hot path
    assert fast.n == pytest.approx(general.n, rel=1e-15)
    for name in ("nk", "sx", "sxx", "shift", "worst_x"):
        a, b = getattr(fast, name), getattr(general, name)
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-12, err_msg=name)
    assert fast.nk[2] == 0.0 and fast.loglik == general.loglik == 0.0


def test_the_hierarchical_start_as_labels_is_the_one_hot_start() -> None:
    from gaussmix.em.hc import hc_resp, hc_start

    X = mixture_data(4, n=120, n_features=2, n_components=3)
    for k in (1, 3, 5):
        labels = hc_start(X, k)
        assert labels.shape == (120,)
        np.testing.assert_array_equal(np.eye(k)[labels], hc_resp(X, k))
