"""The parameters of a Gaussian mixture, as an immutable value passed between pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from gaussmix.em.covariance import Covariance
from gaussmix.em.natural import Natural, natural_parameters

Array = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Params:
    """Mixture parameters.

    Attributes
    ----------
    weights : (K,) mixing proportions pi_k, summing to one.
    means : (K, D) component means mu_k.
    precisions_cholesky : Cholesky factors P_k of the precisions, Sigma_k^{-1} = P_k P_k',
        in the layout of ``covariance`` (see ``gaussmix.em.covariance``).
    covariance : the covariance structure.
    stored_covariances : the covariances the precisions were computed from, when known
        (the M-step keeps them, so ``covariances`` is exact rather than re-inverted).
    """

    weights: Array
    means: Array
    precisions_cholesky: Array
    covariance: Covariance
    stored_covariances: Array | None = None

    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.means.shape[1])

    @property
    def covariances(self) -> Array:
        if self.stored_covariances is not None:
            return self.stored_covariances
        return self.covariance.covariances_from_precisions_cholesky(self.precisions_cholesky)

    @property
    def precisions(self) -> Array:
        return self.covariance.precisions(self.precisions_cholesky)

    @cached_property
    def natural(self) -> Natural:
        """Natural parameters about the mixture mean (computed once per parameter set)."""
        return natural_parameters(
            self.weights, self.means, self.precisions_cholesky, self.covariance
        )

    def n_parameters(self) -> int:
        """Free parameters: covariances, means, and K - 1 weights."""
        return free_parameters(self.covariance, self.n_components, self.n_features)


def free_parameters(covariance: Covariance, n_components: int, n_features: int) -> int:
    """The free parameters of K components of this covariance structure in D features: the
    covariances', the K D means and K - 1 weights (mclust's ``nMclustParams``)."""
    k, d = n_components, n_features
    return covariance.n_parameters(k, d) + k * d + k - 1
