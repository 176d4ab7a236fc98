"""Directions that show the clusters of a fitted mixture: its discriminant coordinates.

Why this module. Beyond two columns a picture has to choose a plane, and the first columns of
a file are rarely the ones that separate the components (on the wine data alcohol, malic acid,
ash and alcalinity do not; on the digits data the first row of pixels is almost constant). The
fitted mixture itself says which directions do, as mclust's ``MclustDR`` uses it (Scrucca 2010,
"Dimension reduction for model-based clustering", Statistics and Computing 20(4)): with weights
pi_k, means mu_k, covariances Sigma_k and the mixture's mean mu = sum_k pi_k mu_k,

    B = sum_k pi_k (mu_k - mu)(mu_k - mu)'      (between components, rank <= K - 1)
    W = sum_k pi_k Sigma_k                      (pooled within components)

and the directions solve the generalised symmetric eigenproblem B v = lambda W v
(``scipy.linalg.eigh(B, W)``), largest lambda first. They are normalised so that V' W V = I:
a coordinate z_j = v_j'(x - mu) has unit pooled within-component variance, and lambda_j is the
variance of the component means along it, in those units (Fisher's discriminant coordinates of
the fitted classes). B has at most K - 1 such directions; the remaining ones (a plane needs two,
K = 2 gives one) are taken W-orthogonal to them and ordered by mclust's second kernel
C = sum_k pi_k (Sigma_k - W) W^{-1} (Sigma_k - W), which separates components that differ in
spread rather than in location. For K = 1 there is nothing to discriminate: the directions are
the principal components of the one covariance, unit length, in the units of the data.

Everything drawn in these coordinates is exact, not estimated from the rows: component k
projects to N(V'(mu_k - mu), V' Sigma_k V), so its ellipse in a plane of two directions is the
2x2 block of that matrix. A direction's *weights* say which columns make it: its coefficients
times each column's standard deviation in the mixture, sqrt(diag(W + B)) (so that columns in
different units compare), scaled to unit length.

The functions are pure: arrays in, arrays out; nothing here draws (``plotting.py`` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

# An eigenvalue of B below this fraction of the largest is a direction the means do not
# separate (rounding of a rank-deficient B gives ~1e-16 of it).
RANK_TOL = 1e-9


@dataclass(frozen=True)
class Projection:
    """Directions of a fitted mixture and what they mean.

    Attributes
    ----------
    directions : (D, r) array
        One direction per column; coordinates are ``(X - center) @ directions``.
    center : (D,) array
        The mixture's mean, sum_k pi_k mu_k.
    eigenvalues : (r,) array
        Per direction: the variance of the component means along it in pooled
        within-component units (discriminant directions), mclust's spread kernel for the
        directions beyond rank B (listed after them), or the variance along a principal
        component (K = 1).
    n_discriminant : int
        How many leading directions separate the component means (rank of B).
    weights : (D, r) array
        Each direction's coefficients times the columns' standard deviations, unit length.
    kind : str
        ``"discriminant"`` or ``"principal"`` (K = 1).
    """

    directions: Array
    center: Array
    eigenvalues: Array
    n_discriminant: int
    weights: Array
    kind: str

    @property
    def prefix(self) -> str:
        """The name of the directions on an axis: DR (discriminant) or PC (principal)."""
        return "DR" if self.kind == "discriminant" else "PC"

    @property
    def units(self) -> str:
        """The unit of a coordinate."""
        if self.kind == "discriminant":
            return "pooled within-component sd"
        return "units of the columns"


def between_within(means: Array, weights: Array, covariances: Array) -> tuple[Array, Array, Array]:
    """The mixture's mean (D,), between-component B (D, D) and pooled within-component
    W (D, D) covariance, from means (K, D), weights (K,) and covariances (K, D, D)."""
    pi = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    means = np.asarray(means, dtype=np.float64)
    center = pi @ means
    deviations = means - center
    between = (deviations * pi[:, None]).T @ deviations
    within = np.einsum("k,kij->ij", pi, np.asarray(covariances, dtype=np.float64))
    return center, (between + between.T) / 2, (within + within.T) / 2


def _signed(directions: Array, weights: Array) -> tuple[Array, Array]:
    """Each direction's sign chosen so that its heaviest column weighs positively (the
    eigenproblem fixes a direction only up to its sign)."""
    heaviest = np.argmax(np.abs(weights), axis=0)
    signs = np.sign(weights[heaviest, np.arange(weights.shape[1])])
    signs[signs == 0] = 1.0
    return directions * signs, weights * signs


def _weights(directions: Array, sd: Array) -> Array:
    scaled = directions * sd[:, None]
    norms = np.linalg.norm(scaled, axis=0)
    return scaled / np.where(norms > 0, norms, 1.0)


def discriminant_coordinates(means: Array, weights: Array, covariances: Array) -> Projection:
    """Discriminant coordinates of a mixture (principal components when K = 1).

    Parameters
    ----------
    means : (K, D) array
    weights : (K,) array
        Mixing proportions.
    covariances : (K, D, D) array
        Every component's full covariance matrix (``Covariance.per_component``).

    Returns
    -------
    Projection
        All D directions, the ones separating the means first (see the module's text).
    """
    import scipy.linalg  # only here: importing this module stays cheap

    means = np.atleast_2d(np.asarray(means, dtype=np.float64))
    covariances = np.asarray(covariances, dtype=np.float64)
    K, D = means.shape
    center, between, within = between_within(means, weights, covariances)
    sd = np.sqrt(np.maximum(np.diag(within + between), 0.0))
    if K == 1:
        values, vectors = np.linalg.eigh(within)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
        directions, w = _signed(vectors, _weights(vectors, sd))
        return Projection(directions, center, np.maximum(values, 0.0), 0, w, "principal")
    # a ridge far below any covariance that EM returns keeps W positive definite for eigh
    ridge = 1e-12 * max(float(np.trace(within)) / D, np.finfo(np.float64).tiny)
    within_r = within + ridge * np.eye(D)
    values, vectors = scipy.linalg.eigh(between, within_r)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    rank = int(np.sum(values[: K - 1] > RANK_TOL * max(float(values[0]), 0.0)))
    rest = vectors[:, rank:]
    rest_values = np.zeros(D - rank)
    if D > rank:
        # mclust's spread kernel C, restricted to the W-orthonormal complement N: the
        # eigenvectors U of N' C N keep N U W-orthonormal and order it by spread
        pi = np.asarray(weights, dtype=np.float64) / np.sum(weights)
        spread = np.zeros((D, D))
        for k in range(K):
            diff = covariances[k] - within
            spread += pi[k] * diff @ np.linalg.solve(within_r, diff)
        reduced = rest.T @ ((spread + spread.T) / 2) @ rest
        rest_values, rotation = np.linalg.eigh((reduced + reduced.T) / 2)
        order = np.argsort(rest_values)[::-1]
        rest_values, rest = np.maximum(rest_values[order], 0.0), rest @ rotation[:, order]
    directions = np.column_stack([vectors[:, :rank], rest])
    eigenvalues = np.concatenate([np.maximum(values[:rank], 0.0), rest_values])
    directions, w = _signed(directions, _weights(directions, sd))
    return Projection(directions, center, eigenvalues, rank, w, "discriminant")


def project_rows(projection: Projection, X: NDArray[np.floating], n: int | None = None) -> Array:
    """Coordinates (n_samples, n) of the rows X (n_samples, D) along the first n directions."""
    A = projection.directions[:, :n]
    return np.asarray((np.asarray(X, dtype=np.float64) - projection.center) @ A)


def project_components(
    projection: Projection, means: Array, covariances: Array, n: int | None = None
) -> tuple[Array, Array]:
    """Exact projected components: means (K, n) V'(mu_k - mu) and covariances (K, n, n)
    V' Sigma_k V, along the first n directions."""
    A = projection.directions[:, :n]
    projected_means = (np.asarray(means, dtype=np.float64) - projection.center) @ A
    projected = np.einsum("di,kde,ej->kij", A, np.asarray(covariances, dtype=np.float64), A)
    return projected_means, (projected + np.swapaxes(projected, 1, 2)) / 2


def n_shown(projection: Projection, most: int = 4) -> int:
    """How many directions a pairs plot shows: those that separate the means, at least two
    (when there are two) and at most ``most``."""
    D = projection.directions.shape[0]
    return int(min(D, most, max(2, projection.n_discriminant)))


def direction_name(projection: Projection, j: int) -> str:
    """'DR1 (83%)': the direction's name and, for a discriminant or principal direction, its
    share of the separation of the means (of the variance, for principal components)."""
    name = f"{projection.prefix}{j + 1}"
    if projection.kind == "principal":
        total = float(np.sum(projection.eigenvalues))
        return f"{name} ({projection.eigenvalues[j] / total:.0%})" if total > 0 else name
    if j < projection.n_discriminant:
        total = float(np.sum(projection.eigenvalues[: projection.n_discriminant]))
        return f"{name} ({projection.eigenvalues[j] / total:.0%})"
    return f"{name} (spread)"


def heaviest_columns(
    projection: Projection, j: int, columns: Sequence[str], top: int = 3
) -> list[tuple[str, float]]:
    """The ``top`` columns that weigh most in direction j, with their signed weights."""
    w = projection.weights[:, j]
    order = np.argsort(-np.abs(w), kind="stable")[:top]
    return [(str(columns[d]), float(w[d])) for d in order]


def direction_label(
    projection: Projection, j: int, columns: Sequence[str], top: int = 3, width: int = 48
) -> str:
    """An axis label: the direction's name, then its heaviest columns with their weights,
    e.g. 'DR1 (83%): flavanoids +0.61, proline +0.45'; as many as fit in ``width`` characters
    (at least one)."""
    head = direction_name(projection, j) + ": "
    parts: list[str] = []
    for name, weight in heaviest_columns(projection, j, columns, top):
        part = f"{name} {weight:+.2f}"
        if parts and len(head) + len(", ".join([*parts, part])) > width:
            break
        parts.append(part)
    return head + ", ".join(parts)


def standardised_means(means: Array, weights: Array, covariances: Array) -> tuple[Array, Array]:
    """Component means as deviations from the mixture's mean in units of each column's sd in
    the mixture, (K, D), and those sds (D,): (mu_kd - mu_d) / sqrt(diag(W + B))_d."""
    center, between, within = between_within(means, weights, covariances)
    sd = np.sqrt(np.maximum(np.diag(within + between), 0.0))
    safe = np.where(sd > 0, sd, 1.0)
    return (np.asarray(means, dtype=np.float64) - center) / safe, sd
