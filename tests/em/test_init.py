"""Initialisation: k-means labels replayed for the models of a grid are the ones k-means draws;
initial statistics replayed between models are the ones each takes; the hierarchical start
draws nothing."""

from __future__ import annotations

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


@pytest.mark.parametrize("n_features", [1, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_statistics_of_labels_are_those_of_their_one_hot_rows(
    n_features: int, weighted: bool
) -> None:
    from gaussmix.em import REGISTRY
    from gaussmix.em.mstep import stats_from_resp

    rng = np.random.RandomState(2)
    X = rng.standard_normal((60, n_features)) * 3.0 + 10.0
    labels = rng.randint(0, 4, size=60)
    labels[labels == 2] = 3  # an empty class: N_k = 0, as the one-hot rows give it
    weights = rng.uniform(0.5, 2.0, size=60) if weighted else None
    models = [c for c in REGISTRY.values() if (c.name in ("E", "V")) == (n_features == 1)]
    layouts = {c.layout for c in models}
    assert layouts == ({"spherical"} if n_features == 1 else {"full", "tied", "diag", "spherical"})
    for cov in models:
        general = stats_from_resp(X, np.eye(5)[labels], cov, weights)  # the one-hot path
        # C- and Fortran-ordered rows (a DataFrame's columns) both take the labels' path
        for rows in (X, np.asfortranarray(X)):
            fast = stats_from_resp(rows, labels, cov, weights, n_components=5)
            assert fast.n == pytest.approx(general.n, rel=1e-15)
            for name in ("nk", "sx", "sxx", "shift", "worst_x"):
                a, b = getattr(fast, name), getattr(general, name)
                assert a.shape == b.shape, (cov.name, name)
                np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-11, err_msg=cov.name + name)
            assert fast.nk[2] == 0.0 and fast.loglik == general.loglik == 0.0


def test_labels_past_the_size_of_the_labelled_path_take_the_general_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gaussmix.em import get_covariance, mstep

    X = mixture_data(4, n=150, n_features=3, n_components=3)
    labels = np.random.RandomState(0).randint(0, 3, size=150)
    taken = []
    real = mstep._labelled_stats
    monkeypatch.setattr(mstep, "_labelled_stats", lambda *a: taken.append(1) or real(*a))
    full = get_covariance("full")
    fast = mstep.stats_from_resp(X, labels, full, n_components=3)
    assert taken == [1]
    monkeypatch.setattr(mstep, "_LABELLED_MAX_VALUES", 150 * 12 - 1)  # n (K + D^2) is 1,800
    general = mstep.stats_from_resp(X, labels, full, n_components=3)
    assert taken == [1]
    np.testing.assert_allclose(fast.sxx, general.sxx, rtol=1e-13)


def test_the_hierarchical_start_as_labels_is_the_one_hot_start() -> None:
    from gaussmix.em.hc import hc_resp, hc_start

    X = mixture_data(4, n=120, n_features=2, n_components=3)
    for k in (1, 3, 5):
        labels = hc_start(X, k)
        assert labels.shape == (120,)
        np.testing.assert_array_equal(np.eye(k)[labels], hc_resp(X, k))


def test_start_statistics_are_shared_in_a_grid_only_between_fits_that_take_them_alike() -> None:
    import dataclasses

    from gaussmix.em import REGISTRY, get_covariance
    from gaussmix.em.mstep import stats_from_resp

    X = mixture_data(4, n=150, n_features=3, n_components=3)
    names = [name for name in REGISTRY if name not in ("E", "V")]
    taken: list[int] = []

    def start(rows: np.ndarray, name: str, k: int) -> object:
        return init.start_statistics(rows, None, k, get_covariance(name), "hc", None)

    real = init.stats_from_resp
    try:
        init.stats_from_resp = lambda *a, **kw: taken.append(1) or real(*a, **kw)  # type: ignore[assignment]
        with init.shared_starts():
            shared = {(name, k): start(X, name, k) for name in names for k in (2, 3)}
            # full, tied, diagonal, spherical: four layouts' code takes them, per K
            assert len(taken) == 8
            again = start(X, "VVV", 3)
            assert len(taken) == 8
            start(X.copy(), "VVV", 3)  # other rows (the same numbers): their own
            start(np.asfortranarray(X), "VVV", 3)
            assert len(taken) == 10
        start(X, "VVV", 3)  # outside the block nothing is kept
        assert len(taken) == 11
    finally:
        init.stats_from_resp = real  # type: ignore[assignment]
    for (name, k), stats in shared.items():
        cov = get_covariance(name)
        fresh = stats_from_resp(X, init.hc_start(X, k), cov, None, n_components=k)
        for field in dataclasses.fields(fresh):
            np.testing.assert_array_equal(getattr(stats, field.name), getattr(fresh, field.name))
    # each caller has its own copy: writing one changes no other
    mine, theirs = shared[("full", 3)], again
    for field in dataclasses.fields(mine):
        value = getattr(mine, field.name)
        if isinstance(value, np.ndarray):
            assert not np.shares_memory(value, getattr(theirs, field.name)), field.name
