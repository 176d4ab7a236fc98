"""Natural parameters: Gaussians as an exponential family, so the E-step is two GEMMs.

With c a centre of the data (the mixture mean sum_k pi_k mu_k) and T(x) = (quadratic features of
x - c, x - c, 1), every component's log-density is linear in T:

    log pi_k + log N(x | mu_k, Sigma_k) = w_k' T(x),
    w_k = (-1/2 Lambda_k as quadratic coefficients, Lambda_k e_k, b_k),  e_k = mu_k - c,
    b_k = log pi_k - D/2 log 2 pi + 1/2 log det Lambda_k - 1/2 e_k' Lambda_k e_k.

So one block of rows costs: build T (nq + D rows, stored features-major so every product is a
contiguous row operation), one GEMM W' T for all K log-densities, an in-place softmax over
components, and one GEMM T q' for all K components' sums of the quadratic features, of x - c
and of 1 (N_k): the sufficient statistics about c. No K x n x D array is ever formed. Once
the components of a full-covariance mixture separate, most q_kn are negligible, and that second
product is a C loop over the pairs (n, k) that count instead (``stats._feature_sums``).

Statistics about one centre c cost precision when a component sits far from c relative to its
own spread: the covariance S/N_k - d d' then cancels about log10(e_k' Lambda_k e_k) digits.
``FAST_SHIFT_LIMIT`` bounds that loss: when some component is further than that, the
componentwise kernel (``stats.chunk_stats_componentwise``, statistics about each component's own
mean) runs instead. The natural kernel itself is ``stats.chunk_stats_natural``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gaussmix.em.covariance import LOG_2PI, Covariance

Array = NDArray[np.float64]

# e_k' Lambda_k e_k above this (a component more than 1000 of its standard deviations from the
# mixture mean, along its thinnest direction) could cost 6 of float64's 16 digits in that
# direction's variance: use the componentwise kernel instead. In float32 the bound is 1e5 (~300
# standard deviations); measured on benchmark W1 at 3.4e4, the covariances still agree with
# float64 to 2e-5 relative (benchmarks/README.md), and an M-step that is not positive definite
# is redone from float64 statistics (loop.py).
FAST_SHIFT_LIMIT = {"float64": 1e6, "float32": 1e5}


@dataclass(frozen=True, eq=False)
class Natural:
    """Natural parameters of a mixture about its centre ``c``, for the fast kernel.

    Attributes
    ----------
    center : (D,) the centre c.
    weights_t : (K, nq + D + 1) the rows w_k' (quadratic coefficients, Lambda_k e_k, b_k).
    n_quadratic : nq, the number of quadratic features.
    max_shift : max_k e_k' Lambda_k e_k.
    """

    center: Array
    weights_t: Array
    n_quadratic: int
    max_shift: float


def natural_parameters(
    weights: Array, means: Array, prec_chol: Array, covariance: Covariance
) -> Natural:
    """The natural parameters of a mixture (see the module docstring).

    Parameters
    ----------
    weights : (K,).  means : (K, D).  prec_chol : precision Cholesky factors (type layout).
    covariance : the covariance structure.
    """
    n_components, n_features = means.shape
    center = weights @ means
    E = means - center
    LE = covariance.precision_times(prec_chol, E)  # (K, D) Lambda_k e_k
    shift = np.einsum("kd,kd->k", E, LE)  # e_k' Lambda_k e_k
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    log_det = covariance.log_det_precision_cholesky(prec_chol, n_components, n_features)
    offsets = log_weights - 0.5 * n_features * LOG_2PI + log_det - 0.5 * shift
    Wq = covariance.quadratic_weights(prec_chol, n_components)
    return Natural(
        center=center,
        weights_t=np.ascontiguousarray(np.vstack([Wq, LE.T, offsets[None, :]]).T),
        n_quadratic=Wq.shape[0],
        max_shift=float(shift.max()),
    )
