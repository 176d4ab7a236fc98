"""Shared fixtures and hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

# scikit-learn's array API dispatch needs scipy's, which is read when scipy is first imported
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=40
)
settings.register_profile("thorough", deadline=None, max_examples=400)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")


@pytest.fixture(scope="session")
def faithful() -> np.ndarray:
    from gaussmix.datasets import load_faithful

    return np.asarray(load_faithful().X)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A Dask LocalCluster of two single-threaded worker processes and its client, one per
    test module that asks (the Dask tests, all in one xdist group, so never two at once)."""
    distributed = pytest.importorskip("distributed")
    from gaussmix.em.dask_workers import local_cluster

    with local_cluster(2) as cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


def mixture_data(
    seed: int, n: int = 600, n_features: int = 3, n_components: int = 3, spread: float = 4.0
) -> np.ndarray:
    """Rows from a random Gaussian mixture with well separated means."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=spread, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n)
    factors = rng.normal(size=(n_components, n_features, n_features)) * 0.5 + np.eye(n_features)
    noise = rng.normal(size=(n, n_features))
    return means[labels] + np.einsum("nd,nde->ne", noise, factors[labels])
