"""Discriminant coordinates of a fitted mixture: the directions, their normalisation and the
exact projection of the components."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.plotting import component_matrices, model_projection
from gaussmix.projection import (
    between_within,
    direction_label,
    discriminant_coordinates,
    n_shown,
    project_components,
    project_rows,
    standardised_means,
)


def _angle(u: np.ndarray, v: np.ndarray) -> float:
    """Angle in degrees between two lines (the sign of a direction is arbitrary)."""
    cos = abs(float(u @ v)) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(min(cos, 1.0))))


def _shared_covariance(rng: np.random.Generator, D: int) -> np.ndarray:
    A = rng.normal(size=(D, D))
    return A @ A.T / D + 0.5 * np.eye(D)


def test_first_direction_is_fishers_for_exact_parameters() -> None:
    """Means on one line u with a shared covariance S: the one direction separating them is
    Fisher's S^{-1} u, and no other direction separates the means at all."""
    rng = np.random.default_rng(0)
    D = 6
    S = _shared_covariance(rng, D)
    u = rng.normal(size=D)
    means = np.outer([0.0, 3.0, -2.0], u)
    projection = discriminant_coordinates(means, np.array([0.3, 0.5, 0.2]), np.stack([S] * 3))
    assert projection.kind == "discriminant" and projection.n_discriminant == 1
    assert _angle(projection.directions[:, 0], np.linalg.solve(S, u)) < 1e-6
    assert projection.eigenvalues[0] > 0 and np.all(projection.eigenvalues[1:] < 1e-9)


def test_first_direction_of_a_fit_recovers_the_separating_direction() -> None:
    """Fitted on rows drawn from such a mixture, the first direction is within a few degrees
    of the true S^{-1} u."""
    rng = np.random.default_rng(1)
    D, n = 5, 900
    S = _shared_covariance(rng, D)
    u = rng.normal(size=D)
    u /= np.linalg.norm(u)
    centres = np.outer([-4.0, 0.0, 4.0], u)
    labels = rng.integers(3, size=n)
    X = centres[labels] + rng.multivariate_normal(np.zeros(D), S, size=n)
    model = GaussianMixture(3, covariance_type="tied", random_state=0, max_iter=50).fit(X)
    projection = model_projection(model)
    assert _angle(projection.directions[:, 0], np.linalg.solve(S, u)) < 5.0
    # the fitted means lie close to a line, so the first direction carries most of it
    shares = projection.eigenvalues[: projection.n_discriminant]
    assert shares[0] / shares.sum() > 0.95


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_directions_are_whitening_and_complete(covariance_type: str) -> None:
    """V' W V = I for all D directions, and V' B V is diagonal with the eigenvalues of the
    separating ones (the rest separate nothing)."""
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(size=(80, 4)) + shift for shift in (0.0, 5.0, -5.0)])
    X[:, 1] *= 3.0
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    matrices = component_matrices(model)
    projection = model_projection(model)
    _, B, W = between_within(model.means_, model.weights_, matrices)
    V = projection.directions
    assert V.shape == (4, 4)
    np.testing.assert_allclose(V.T @ W @ V, np.eye(4), atol=1e-8)
    r = projection.n_discriminant
    np.testing.assert_allclose(
        V.T @ B @ V, np.diag(np.r_[projection.eigenvalues[:r], np.zeros(4 - r)]), atol=1e-8
    )
    assert r == 2 and n_shown(projection) == 2


def test_projected_ellipse_is_the_covariance_of_projected_samples() -> None:
    """A component projected along the directions is N(V'(mu - c), V' Sigma V): rows drawn from
    it and projected have that mean and covariance (exactly so for their sample moments:
    projecting is linear)."""
    rng = np.random.default_rng(3)
    D = 5
    covariances = np.stack([_shared_covariance(rng, D) for _ in range(3)])
    means = rng.normal(scale=3.0, size=(3, D))
    projection = discriminant_coordinates(means, np.array([0.2, 0.3, 0.5]), covariances)
    proj_means, proj_covs = project_components(projection, means, covariances, 2)
    for k in range(3):
        rows = rng.multivariate_normal(means[k], covariances[k], size=40_000)
        Z = project_rows(projection, rows, 2)
        sample_cov = np.cov(rows, rowvar=False)
        np.testing.assert_allclose(
            np.cov(Z, rowvar=False),
            project_components(projection, means, sample_cov[None], 2)[1][0],
            rtol=1e-9,
            atol=1e-9,
        )
        np.testing.assert_allclose(np.cov(Z, rowvar=False), proj_covs[k], rtol=0.05, atol=0.03)
        np.testing.assert_allclose(Z.mean(axis=0), proj_means[k], atol=0.05)


def test_two_components_get_a_second_direction_from_their_spread() -> None:
    """K = 2 separates the means along one direction; the second one picked is where the two
    covariances differ most (mclust's spread kernel), here the last column."""
    D = 3
    means = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0]])
    covariances = np.stack([np.eye(D), np.diag([1.0, 1.0, 9.0])])
    projection = discriminant_coordinates(means, np.array([0.5, 0.5]), covariances)
    assert projection.n_discriminant == 1
    assert _angle(projection.directions[:, 0], np.array([1.0, 0, 0])) < 1e-6
    assert _angle(projection.directions[:, 1], np.array([0, 0, 1.0])) < 1e-6
    assert "(spread)" in direction_label(projection, 1, ["a", "b", "c"])


def test_one_component_gives_principal_components() -> None:
    cov = np.diag([1.0, 16.0, 4.0])
    projection = discriminant_coordinates(np.zeros((1, 3)), np.ones(1), cov[None])
    assert projection.kind == "principal"
    np.testing.assert_allclose(np.abs(projection.directions), np.eye(3)[:, [1, 2, 0]])
    assert direction_label(projection, 0, ["a", "b", "c"]).startswith("PC1 (76%): b +1.00")


def test_labels_name_the_heaviest_columns_in_comparable_units() -> None:
    """A column in large units does not win by its units: weights are coefficients times the
    column's sd. Here only column 'b' separates the means (in units 1000 times larger)."""
    means = np.array([[0.0, 0.0, 0.0], [0.0, 5000.0, 0.0], [0.0, -5000.0, 0.0]])
    covariances = np.stack([np.diag([1.0, 1.0e6, 1.0])] * 3)
    projection = discriminant_coordinates(means, np.ones(3) / 3, covariances)
    label = direction_label(projection, 0, ["a", "b", "c"])
    assert label.startswith("DR1 (100%): b +1.00")
    z, sd = standardised_means(means, np.ones(3) / 3, covariances)
    np.testing.assert_allclose(z[:, 1] * sd[1], means[:, 1], atol=1e-9)
    assert np.all(np.abs(z) <= 1.5)
