"""Initialisation: k-means labels replayed for the models of a grid are the ones k-means draws."""

from __future__ import annotations

import numpy as np

from gaussmix.em import init
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
