"""mclust's conjugate prior (Fraley and Raftery 2007): MAP-EM instead of maximum likelihood.

Why. A maximum likelihood fit of a mixture degenerates when a component sits on a few rows that
span less than the whole space (duplicated rows, a discrete column): its covariance goes singular
and the likelihood grows without bound. ``reg_covar`` adds a fixed number to every variance,
whatever the data's units; Fraley and Raftery instead put a weak conjugate prior on the
parameters, scaled to the data, and take the posterior mode, found by the same EM.

The prior. For every component, mu_k | Sigma_k ~ N(mu_P, Sigma_k / kappa_P) (``shrinkage``
kappa_P), and on the covariance the conjugate of its layout: an inverse Wishart
p(Sigma) ∝ |Sigma|^{-(nu_P + D + 1)/2} exp(-tr(Lambda_P Sigma^{-1}) / 2) for whole matrices, an
inverse gamma p(s) ∝ s^{-(nu_P/2 + 1)} exp(-varsigma_P / (2 s)) on each variance of a diagonal
covariance, and on the one variance of a spherical one (``dof`` nu_P, ``scale`` Lambda_P or
varsigma_P). A model whose components share one covariance (EII, EEI, EEE, E) has that prior
once; the other models have it on every component's covariance, restricted to the model. The
weights have a flat prior.

The M-step, applied to the merged statistics. With the responsibilities fixed, the log posterior's
surrogate Q + log p(theta) is maximised over the means by
    mu_k = (N_k xbar_k + kappa_P mu_P) / (N_k + kappa_P)
whatever the covariances, and what is left of it has the likelihood's form
    -1/2 sum_k [n_k log det Sigma_k + tr(S_k Sigma_k^{-1})]
with S_k = W_k + kappa_P N_k / (N_k + kappa_P) (xbar_k - mu_P)(xbar_k - mu_P)' + the prior's
scale, and n_k = N_k + 1 + the prior's count (nu_P + D + 1 for an inverse Wishart): the scale
and count shared evenly by the components of a shared covariance (``Covariance.prior_terms``).
So every model's own M-step (``Covariance.constrain``), closed form or iterative, applied to these
statistics is exactly its MAP M-step: the prior is added to the merged statistics, which is
equivalent here, not approximately so. This holds for all sixteen models; mclust itself offers the
prior for twelve (``Mclust`` drops EVE, VEE, VVE and EVV when given one).

Defaults (mclust's ``defaultPrior``): shrinkage 0.01, mean the column means, dof D + 2, scale
var(X) / G^(2/D) for the whole-matrix models (its diagonal when n <= D) and
sum(diag var(X)) / D / G^(2/D), one number, for the diagonal and spherical ones.

What is reported. As mclust: ``lower_bounds_``, ``log_likelihood_``, ``score``, ``bic`` and ``aic``
are the log-likelihood of the data at the MAP parameters, without the prior's term (mclust's
``loglik``; its BIC is 2 loglik - p log n, with the usual p). EM is monotone in the log
posterior (the log-likelihood plus ``log_prior``), not necessarily in the log-likelihood.
``partial_fit`` makes the prior from its first batch and applies it to the running averages
weighed as the rows seen so far (``online.py``).

Where mclust's code differs. Its Fortran M-steps with a prior (``ms*p``/``me*p`` in
src/mclust.f) give these formulas for E, V, VII, VVI, EEE and VVV. For EII the prior's scale is
left out of sigma^2 (``meeiip``), EEI counts the means' prior once rather than once per
component, EEV's M-step sets a positive shrinkage to zero (``mseevp``), and VEI, EVI, EEV and
VEV add the scale once per component but the degrees of freedom once: not the mode of one prior.
The differences are of the prior's size (a hundredth of a row's worth of information by default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gaussmix.em.covariance import Covariance
from gaussmix.em.params import Params
from gaussmix.errors import GaussmixError

if TYPE_CHECKING:
    from gaussmix.em.parallel import Workers

Array = NDArray[np.float64]

MCLUST = "mclust"  # prior="mclust": every default of mclust's priorControl()


def _frozen(value: ArrayLike | None) -> Any:
    """A number, or nested tuples of numbers: hashable, JSON-ready, equal when equal."""
    if value is None:
        return None
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return float(array)
    if array.ndim == 1:
        return tuple(array.tolist())
    return tuple(tuple(row) for row in array.tolist())


@dataclass(frozen=True)
class Prior:
    """A conjugate prior (mclust's ``priorControl()``); None in a field takes mclust's default.

    Parameters
    ----------
    shrinkage : float, default=0.01
        kappa_P >= 0, the weight of the prior mean, in rows (0: a flat prior on the means).
    mean : array of shape (D,) or None
        mu_P; None: the data's column means.
    dof : float or None
        nu_P > 0; None: D + 2.
    scale : float, array of shape (D,) or (D, D), or None
        Lambda_P (whole-matrix models) or varsigma_P (diagonal, spherical); a matrix gives the
        diagonal models its diagonal and the spherical ones its mean diagonal, a number the
        whole-matrix models that number times I. None: mclust's default for the model and K.
    """

    shrinkage: float = 0.01
    mean: Any = None
    dof: float | None = None
    scale: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _frozen(self.mean))
        object.__setattr__(self, "scale", _frozen(self.scale))

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON values (``from_json`` reads them back)."""
        return asdict(self)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Prior:
        """The Prior whose ``to_json`` gave ``value``."""
        return cls(**value)


PriorLike = Prior | str | None


def prior_to_json(prior: PriorLike) -> Any:
    """None, "mclust" or a Prior's fields (for model files)."""
    return prior.to_json() if isinstance(prior, Prior) else prior


def prior_from_json(value: Any) -> PriorLike:
    """The ``prior`` parameter from ``prior_to_json``'s value."""
    return Prior.from_json(value) if isinstance(value, dict) else value


@dataclass(frozen=True)
class DataMoments:
    """The (weighted) count, column means (D,) and covariance (D, D, divisor n - 1) of rows."""

    n: float
    mean: Array
    covariance: Array


def data_moments(blocks: Callable[[], Iterable[tuple[Any, Array | None]]]) -> DataMoments:
    """Moments of the rows of ``blocks()`` (an iterable of ((n, D) rows, (n,) weights or None),
    called twice: the means, then the scatter about them). Rows with a NaN are left out."""
    return moments_by(lambda per_block: (per_block(X, w) for X, w in blocks()))


def moments_by(
    over_blocks: Callable[[Callable[[Any, Array | None], Any]], Iterable[Any]],
) -> DataMoments:
    """``data_moments`` where the rows are walked by ``over_blocks(per_block)``: it applies
    ``per_block`` (picklable) to every block (rows (n, D), weights (n,) or None) and gives the
    results in row order, so that on a cluster the blocks' sums are taken where they lie and
    only (D,) and (D, D) numbers per block come back. Two walks: the sums, then the scatter
    about the mean, each merged here left to right."""
    total = 0.0
    sums: Array | None = None
    for count, part in over_blocks(block_sums):
        sums = part if sums is None else sums + part
        total += count
    if sums is None or not total > 1.0:
        raise GaussmixError("the prior needs at least two complete rows to take the data's moments")
    mean = sums / total
    scatter = np.zeros((mean.size, mean.size))
    for part in over_blocks(partial(block_scatter, mean)):
        scatter += part
    return DataMoments(total, mean, 0.5 * (scatter + scatter.T) / (total - 1.0))


def moments_on(pool: Workers, rows: int) -> DataMoments:
    """``data_moments`` of the rows ``pool``'s workers hold (on a Dask cluster: the sums of
    each row chunk's blocks taken on its worker), in blocks of ``rows`` rows."""

    def over_blocks(per_block: Callable[[Any, Array | None], Any]) -> list[Any]:
        task = partial(_of_blocks, per_block, rows)
        return [part for share in pool.run(task) for part in share]

    return moments_by(over_blocks)


def _of_blocks(
    per_block: Callable[[Any, Array | None], Any], rows: int, share: Any, map_blocks: Any
) -> list[Any]:
    """``per_block`` of each block of a share of the rows, in order (a task of ``Workers``)."""
    return [per_block(X, w) for X, w in share.chunks(rows)]


def block_sums(X: Any, w: Array | None) -> tuple[float, Array]:
    """The (weighted) count and column sums (D,) of a block's complete rows."""
    X, w = _complete(X, w)
    return (X.shape[0] if w is None else float(w.sum())), (X.sum(axis=0) if w is None else w @ X)


def block_scatter(mean: Array, X: Any, w: Array | None) -> Array:
    """sum_n w_n (x_n - mean)(x_n - mean)' (D, D) over a block's complete rows."""
    X, w = _complete(X, w)
    Z = X - mean
    scatter: Array = Z.T @ (Z if w is None else Z * w[:, None])
    return scatter


def _complete(X: Any, w: Array | None) -> tuple[Array, Array | None]:
    from gaussmix.em.device import on_host  # a device block: to the host, once per block

    X = np.asarray(on_host(X), dtype=np.float64)
    keep = ~np.isnan(X).any(axis=1)
    if keep.all():
        return X, w
    return X[keep], None if w is None else w[keep]


@dataclass(frozen=True)
class ResolvedPrior:
    """A prior made concrete for one model, K and data: mu_P (D,), and the scale in the
    model's layout ((D, D) whole matrices, (D,) diagonal, () spherical)."""

    shrinkage: float
    mean: Array
    dof: float
    scale: Array


def resolve(
    prior: PriorLike, moments: DataMoments, n_components: int, covariance: Covariance
) -> ResolvedPrior | None:
    """The prior for ``covariance`` with ``n_components`` components on data of these moments;
    None for no prior. GaussmixError (a ValueError, one line) for a field out of range."""
    if prior is None:
        return None
    if isinstance(prior, str):
        if prior != MCLUST:
            raise GaussmixError(f"prior must be None, {MCLUST!r} or a Prior; got {prior!r}")
        prior = Prior()
    n_features = moments.mean.size
    if not prior.shrinkage >= 0:
        raise GaussmixError(f"the prior's shrinkage must be >= 0; got {prior.shrinkage!r}")
    mean = moments.mean if prior.mean is None else np.asarray(prior.mean, dtype=np.float64)
    if mean.shape != (n_features,):
        raise GaussmixError(
            f"the prior's mean has {mean.size} values and the data {n_features} columns"
        )
    dof = float(n_features + 2 if prior.dof is None else prior.dof)
    if not dof > 0:
        raise GaussmixError(f"the prior's dof must be > 0; got {prior.dof!r}")
    if prior.scale is None:
        scale = covariance.default_prior_scale(moments.covariance, moments.n, n_components)
    else:
        given = np.asarray(prior.scale, dtype=np.float64)
        if given.ndim > 2 or (given.ndim and given.shape[0] != n_features):
            raise GaussmixError(
                f"the prior's scale must be a number, {n_features} values or a "
                f"{n_features} x {n_features} matrix; got shape {given.shape}"
            )
        scale = covariance.prior_scale(given, n_features)
    _check_scale(scale)
    return ResolvedPrior(float(prior.shrinkage), mean, dof, scale)


def _check_scale(scale: Array) -> None:
    if scale.ndim == 2:
        sym = 0.5 * (scale + scale.T)
        ok = np.allclose(sym, scale) and bool(np.linalg.eigvalsh(sym)[0] > 0)
    else:
        ok = bool(np.all(scale > 0))
    if not ok:
        raise GaussmixError(
            "the prior's scale must be positive (a symmetric positive definite matrix); "
            "a column with no spread makes mclust's default zero there: drop that column"
        )


def log_prior(params: Params, prior: ResolvedPrior) -> float:
    """log p(theta) up to a constant, at ``params``: the means' and the covariances' prior.

    The registry's ``prior_terms`` with pull kappa_P and delta_k = mu_k - mu_P give the
    scatter kappa_P (mu_k - mu_P)(mu_k - mu_P)' + scale and the counts, so that
    log p = -1/2 sum_k [n_k log det Sigma_k + tr(S_k Sigma_k^{-1})] in matrix form."""
    cov = params.covariance
    K, D = params.n_components, params.n_features
    pull = np.full(K, prior.shrinkage)
    scatter, count = cov.prior_terms(prior, pull, params.means - prior.mean)
    sigma = cov.per_component(params.covariances, K, D)
    S = cov.per_component(scatter, K, D)
    if cov.shared_layout:  # one pooled scatter for the K (equal) covariances
        S = S / K
    logdet = np.linalg.slogdet(sigma)[1]
    traces = np.einsum("kij,kji->k", np.linalg.inv(sigma), S)
    return float(-0.5 * (count @ logdet + traces.sum()))
