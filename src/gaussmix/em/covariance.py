"""Covariance structures: one class per type, chosen by lookup in ``REGISTRY``.

Everything that depends on the covariance structure lives here and nowhere else: the Gaussian
log-density of a block of rows, the second-moment statistic the E-step accumulates, the M-step
covariance from that statistic, and the conversions between covariances, precisions and their
Cholesky factors. The EM kernel (``stats.py``) and the M-step (``mstep.py``) call these methods
and never branch on the type's name.

Layouts follow scikit-learn (K components, D features):

=========== ============== ================== =====================================
type        mclust         covariances        precisions_cholesky
=========== ============== ================== =====================================
full        VVV            (K, D, D)          (K, D, D), upper triangular
diag        VVI            (K, D)             (K, D)
tied        EEE            (D, D)             (D, D)
spherical   VII            (K,)               (K,)
=========== ============== ================== =====================================

mclust's other ten models and its two for one feature keep their covariances in one of these
layouts and differ only in their M-step (``constrain``, from ``constrained.py``): EII, E and V
in the spherical one, EEI, VEI and EVI in the diagonal one, VEE, EVE, VVE, EEV, VEV and EVV in
the full one. Their names are their own (``name == mclust``).

``precisions_cholesky`` P satisfies Sigma^{-1} = P P'. From a covariance Sigma = C C' (C lower)
it is P = C^{-T}, so that (x - mu)' Sigma^{-1} (x - mu) = ||(x - mu)' P||^2 and
log det Sigma^{-1} = 2 sum log diag P.

The E-step statistics are taken about *shifts* c_k (the current means): with Z_k = X - c_k and
A_k = q_k * Z_k (responsibility-weighted rows), the second moment is sum_n q_kn z z', so the
covariance is S_k / N_k - d_k d_k' with d_k = mu_k - c_k small near convergence: no E[xx'] - mu mu'
cancellation, whatever the offset of the data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cache, partial
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy.linalg.lapack import dpotrf, dtrtri

from gaussmix.em import constrained
from gaussmix.em.blas import gram, times_upper_in_place
from gaussmix.em.errors import DegenerateCovarianceError
from gaussmix.errors import GaussmixError

if TYPE_CHECKING:
    from gaussmix.em.prior import ResolvedPrior

Array = NDArray[np.float64]

LOG_2PI = float(np.log(2.0 * np.pi))


def _degenerate(component: int | None, what: str) -> DegenerateCovarianceError:
    where = "the shared covariance" if component is None else f"component {component}"
    return DegenerateCovarianceError(
        f"the covariance of {where} is {what} after adding reg_covar; "
        "try a larger reg_covar, fewer components, or scaling the data",
        component=component,
    )


def _cholesky_lower(matrices: Array, shared: bool) -> Array:
    """Batched lower Cholesky factors; a clear error naming the first failing component."""
    stack = matrices[None] if shared else matrices
    finite = np.asarray(np.isfinite(stack).reshape(stack.shape[0], -1).all(axis=1))
    if finite.all():  # LAPACK lets NaN through without an error
        try:
            return np.asarray(np.linalg.cholesky(matrices), dtype=np.float64)
        except np.linalg.LinAlgError:
            pass
    # which one: LAPACK's own factorisation per matrix (numpy's cost ten times as much, and a
    # fit that fails at a collapse comes here once)
    for k, m in enumerate(stack):
        if not finite[k]:
            raise _degenerate(None if shared else k, "not finite") from None
        if dpotrf(m, lower=1)[1] != 0:
            raise _degenerate(None if shared else k, "not positive definite") from None
    raise _degenerate(None, "not positive definite")  # pragma: no cover - batched and looped agree


def _inverse_transpose_of_lower(chol: Array) -> Array:
    """P = C^{-T} for lower-triangular C of shape (D, D) or (K, D, D).

    LAPACK's triangular inverse per matrix: a loop over K, but ~1000 times faster than
    scipy's batched solve_triangular at these sizes, and exact to the triangular structure.
    """
    stack = chol.reshape(-1, *chol.shape[-2:])
    inverse = np.empty_like(stack)
    for k, c in enumerate(stack):
        inverse[k], info = dtrtri(c, lower=1)
        if info != 0:  # a zero pivot: the Cholesky factor itself was singular
            raise _degenerate(None if chol.ndim == 2 else k, "singular")
    return np.swapaxes(inverse, -1, -2).reshape(chol.shape)


@cache
def _upper_triangle(n_features: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """np.triu_indices(n_features), made once per size (it costs more than the rest of the
    natural kernel's per-block bookkeeping)."""
    rows, cols = np.triu_indices(n_features)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


def centred(X: Array, shift: Array) -> Array:
    """Z (K, n, D) with Z[k, n] = x_n - c_k, for the rows X (n, D) and shifts (K, D)."""
    return X[None, :, :] - shift[:, None, :]


# A row whose responsibility for component k is below this fraction of the block's largest
# one for k adds less to k's sums than rounding that largest term does (2^-53 is float64's unit
# roundoff), so the componentwise kernel leaves such rows out of k's second moment.
NEGLIGIBLE = 2.0**-53


def _weighted_gram(rows: Array, centre: Array, resp: Array) -> tuple[Array, Array]:
    """(sum_n q_n (x_n - c), sum_n q_n (x_n - c)(x_n - c)') for the rows (n, D), one centre
    c (D,) and the responsibilities q (n,): with B = sqrt(q) [x - c, 1], B' B holds both, and
    SYRK computes it in half a GEMM. When fewer than half the rows have a responsibility
    above ``NEGLIGIBLE`` times the largest, only those are gathered and summed."""
    n_rows, n_features = rows.shape
    top = resp.max(initial=0.0)
    keep = np.flatnonzero(resp > top * NEGLIGIBLE)
    if keep.size < n_rows // 2:  # a component owns few of the rows: gather them
        rows, resp = rows[keep], resp[keep]
    B = np.empty((rows.shape[0], n_features + 1))
    np.subtract(rows, centre, out=B[:, :n_features])
    root = np.sqrt(resp)
    B[:, :n_features] *= root[:, None]
    B[:, n_features] = root
    product = gram(B)
    return product[:n_features, n_features], product[:n_features, :n_features]


def _rounded_variance(variance: Array) -> Array:
    """A variance that rounding made negative, as the size of that rounding error.

    A variance is a mean of squares; computed as E[(x - c)^2] - d^2 it can come out a few ulps
    below zero when a component sits on one row (-1.9e-17 with reg_covar=0). Its true value lies
    within that error of zero, so the error's size stands for it: a tiny positive variance, as
    scikit-learn's arithmetic happens to give. An exact zero (identical rows) stays zero and is
    reported as degenerate."""
    return np.abs(variance)


def _check_positive(values: Array, shared: bool) -> None:
    if values.min(initial=np.inf) > 0.0:  # all positive (NaN is not): the common case, one call
        return
    bad = np.flatnonzero(~(values > 0.0).reshape(values.shape[0] if values.ndim else 1, -1).all(1))
    if bad.size:
        raise _degenerate(None if shared else int(bad[0]), "not positive")


class Covariance(ABC):
    """One covariance structure. Stateless; instances live in ``REGISTRY``."""

    name: ClassVar[str]
    mclust: ClassVar[str]
    description: ClassVar[str]
    matrix_layout: ClassVar[bool]  # True when covariances are whole (symmetric) matrices
    shared_layout: ClassVar[bool] = False  # True when one stored matrix serves every component
    plot_style: ClassVar[tuple[str, str]]  # (matplotlib marker, colour) of its curve in pictures
    # the C loop (compiled.features) that builds this type's natural-kernel features, if any
    features_kernel: ClassVar[str | None] = None
    # which of the four storage layouts (module table) the covariances use, in scikit-learn's
    # names: every kernel that works on the stored parameters rather than through these methods
    # (em/device.py, the lean pass's C loop in lean.py) keys on it
    layout: ClassVar[str]
    # on one feature, the mclust model ("E" or "V") whose M-step this type's is, in the
    # spherical layout: lean.py then runs the whole fit in one C call (_kernels.c's
    # univariate_em); None for the others, whose fits keep to run_em's Python loop
    univariate: ClassVar[str | None] = None
    # the model's M-step in C, by its name there: a closed form's whole M-step (_kernels.c's
    # mstep_closed, compiled._MSTEP_MODELS; one call an iteration through mstep.FitMStep), or
    # an iterative or eigen model's covariances and their factors (constrained_mstep,
    # compiled.MSTEP_KERNELS; through covariances_and_factors); None: numpy's M-step. Never
    # inherited (``__init_subclass__``): a model stored in another's layout has its own M-step.
    compiled_mstep: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "compiled_mstep" not in cls.__dict__:
            cls.compiled_mstep = None

    # --- shapes and counting -------------------------------------------------------------
    @abstractmethod
    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of ``covariances_`` (and of precisions and their Cholesky factors)."""

    @abstractmethod
    def n_parameters(self, n_components: int, n_features: int) -> int:
        """Number of free parameters of the covariances."""

    # --- E-step ----------------------------------------------------------------------------
    @abstractmethod
    def mahalanobis(self, Z: Array, prec_chol: Array) -> Array:
        """Squared Mahalanobis distances (K, n) of the centred rows ``Z`` (K, n, D)."""

    @abstractmethod
    def log_det_precision_cholesky(
        self, prec_chol: Array, n_components: int, n_features: int
    ) -> Array:
        """log det P per component, shape (K,); equals 1/2 log det Sigma_k^{-1}."""

    def log_gauss(self, Z: Array, prec_chol: Array) -> Array:
        """log N(x_n | mu_k, Sigma_k), shape (K, n), of the centred rows Z[k, n] = x_n - mu_k."""
        return self._log_gauss(self.mahalanobis(Z, prec_chol), prec_chol, Z.shape[-1])

    def log_gauss_rows(self, X: Array, means: Array, prec_chol: Array) -> Array:
        """The same (K, n) from the rows X (n, D) and the means (K, D)."""
        return self.log_gauss(centred(X, means), prec_chol)

    def _log_gauss(self, maha: Array, prec_chol: Array, n_features: int) -> Array:
        log_det = self.log_det_precision_cholesky(prec_chol, maha.shape[0], n_features)
        return -0.5 * (n_features * LOG_2PI + maha) + log_det[:, None]

    # --- the same densities in natural-parameter form (the fast kernel, ``kernel.py``) -------
    # log N(x | mu_k, Sigma_k) = w_k' T(x) + b_k with T(x) = (quadratic features of x - c, x - c):
    # one GEMM gives every component's log-density, and T(X)' q every component's statistics.
    @abstractmethod
    def n_quadratic(self, n_features: int) -> int:
        """Number of quadratic features (rows of ``quadratic_features``)."""

    @abstractmethod
    def quadratic_features(self, Xct: Array, prec_chol: Array, out: Array) -> None:
        """Write the quadratic features of the centred rows Xct (D, n) into ``out`` (nq, n)."""

    @abstractmethod
    def quadratic_weights(self, prec_chol: Array, n_components: int) -> Array:
        """Wq (nq, K) with Wq[:, k]' q(x) = -1/2 (x - c)' Lambda_k (x - c)."""

    @abstractmethod
    def precision_times(self, prec_chol: Array, E: Array) -> Array:
        """Lambda_k e_k for the rows e_k of E (K, D); shape (K, D)."""

    @abstractmethod
    def second_moment_from_features(self, Gq: Array, Xct: Array, resp_t: Array) -> Array:
        """The second moment about c in ``second_moment``'s layout, from Gq = q(X) resp (nq, K),
        the centred rows Xct (D, n) and the weighted responsibilities resp_t (K, n)."""

    @abstractmethod
    def move_second_moment(self, sxx: Array, sx: Array, nk: Array, E: Array) -> Array:
        """The second moment about c + e_k from the one about c, given sx = sum q (x - c):
        sum q (x - c - e)(x - c - e)' = S - sx e' - e sx' + N e e'."""

    @abstractmethod
    def second_moment(self, resp_t: Array, Z: Array) -> Array:
        """sum_n q_kn z_kn z_kn' in this type's layout, from the weighted responsibilities
        resp_t (K, n) and the centred rows Z (K, n, D)."""

    def moments(self, resp_t: Array, Z: Array) -> tuple[Array, Array]:
        """(sum_n q_kn z_kn (K, D), ``second_moment``) from the weighted responsibilities
        resp_t (K, n) and the centred rows Z (K, n, D)."""
        return np.einsum("kn,knd->kd", resp_t, Z), self.second_moment(resp_t, Z)

    def moments_rows(self, resp_t: Array, X: Array, shift: Array) -> tuple[Array, Array]:
        """The same from the rows X (n, D) and the shifts (K, D): the sums of
        q_kn (x_n - c_k) and of its second moment."""
        return self.moments(resp_t, centred(X, shift))

    def componentwise_preferred(self, n_components: int, n_features: int) -> bool:
        """Whether the componentwise kernel beats the natural-parameter one at this shape."""
        return False

    @abstractmethod
    def zero_second_moment(self, n_components: int, n_features: int) -> Array:
        """The zero of ``second_moment`` (the statistic of no rows)."""

    @abstractmethod
    def labelled_second_moment(self, onehot: Array, Z: Array) -> Array:
        """``second_moment`` of hard labels: the (weighted) one-hot responsibilities
        onehot (K, n) and each row centred at its own component's shift, Z (n, D)."""

    # --- M-step ----------------------------------------------------------------------------
    def covariances(
        self, sxx: Array, nk: Array, d: Array, reg_covar: float, start: Array | None = None
    ) -> Array:
        """Covariances from the shifted statistic: the model's M-step (``constrain``) applied to
        the layout's regularised scatter (``scatter``).

        Parameters
        ----------
        sxx : second moment about the shifts, as returned by ``second_moment`` summed over chunks.
        nk : (K,) effective counts N_k.
        d : (K, D) the mean's move from the shift, d_k = mu_k - c_k.
        reg_covar : added to the diagonal (as N_k reg_covar I to each scatter W_k).
        start : the previous covariances (this layout), where an iterative M-step starts.
        """
        done = self._compiled_mstep(sxx, nk, d, reg_covar, start)
        if done is not None:
            return done[0]
        return self.constrain(self.scatter(sxx, nk, d, reg_covar), nk, start)

    def covariances_and_factors(
        self, sxx: Array, nk: Array, d: Array, reg_covar: float, start: Array | None = None
    ) -> tuple[Array, Array]:
        """``covariances`` (the same arguments) and their ``precisions_cholesky``: in one C
        call for an iterative or eigen model whose ``compiled_mstep`` is there, where the C loops
        take them, else the two methods (the reference)."""
        done = self._compiled_mstep(sxx, nk, d, reg_covar, start)
        if done is not None:
            covariances, factors = done
            if factors is None:  # not positive definite: LAPACK's path says which
                factors = self.precisions_cholesky(covariances)
            return covariances, factors
        covariances = self.constrain(self.scatter(sxx, nk, d, reg_covar), nk, start)
        return covariances, self.precisions_cholesky(covariances)

    def _compiled_mstep(
        self, sxx: Array, nk: Array, d: Array, reg_covar: float, start: Array | None
    ) -> tuple[Array, Array | None] | None:
        """The iterative or eigen model's whole M-step in C (``constrained.whole_mstep``):
        (covariances, their factors or None where one is not positive definite), or None
        where there is none or C declines (then ``constrain`` runs on ``scatter``)."""
        if self.compiled_mstep is None:
            return None
        return constrained.whole_mstep(self.compiled_mstep, sxx, nk, d, reg_covar, start)

    @abstractmethod
    def scatter(self, sxx: Array, nk: Array, d: Array, reg_covar: float) -> Array:
        """The scatter about the means, W_k + N_k reg_covar I with
        W_k = sum_n q_kn (x_n - mu_k)(x_n - mu_k)', in this layout: (K, D, D) whole, (K, D) the
        diagonals, (D, D) their sum over k, or (K,) the mean of each diagonal."""

    @abstractmethod
    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        """The model's M-step: covariances (this layout) maximising
        -1/2 sum_k [N_k log det Sigma_k + tr(W_k Sigma_k^{-1})] over the model, from ``scatter``
        (``scatter``'s layout), the counts nk (K,) and, for iterative M-steps, a start."""

    # --- the conjugate prior (``prior.py``): MAP-EM ------------------------------------------
    # one covariance serves every component (EII, EEI, EEE, E): the prior is on it once, not
    # once per component
    one_covariance: ClassVar[bool] = False

    def posterior_covariances(
        self,
        sxx: Array,
        nk: Array,
        d: Array,
        reg_covar: float,
        prior: ResolvedPrior,
        delta: Array,
        start: Array | None = None,
    ) -> Array:
        """The covariances maximising the log posterior's surrogate: the model's own M-step
        (``constrain``) on the statistics with the prior's terms added (``prior_terms``).

        ``delta`` (K, D) is xbar_k - mu_P, the components' sample means less the prior mean;
        the other arguments are ``covariances``'.
        """
        pull = prior.shrinkage * nk / (nk + prior.shrinkage)  # 0 without shrinkage
        extra_scatter, extra_count = self.prior_terms(prior, pull, delta)
        scatter = self.scatter(sxx, nk, d, reg_covar) + extra_scatter
        return self.constrain(scatter, nk + extra_count, start)

    def prior_terms(self, prior: ResolvedPrior, pull: Array, delta: Array) -> tuple[Array, Array]:
        """(added scatter in ``scatter``'s layout, added counts (K,)) that turn the likelihood's
        covariance surrogate -1/2 sum_k [N_k log det Sigma_k + tr(W_k Sigma_k^{-1})] into the
        log posterior's (``prior.py``): the mean's prior adds pull_k delta_k delta_k' to W_k
        (pull_k = kappa N_k / (N_k + kappa) at the MAP means) and 1 to N_k, the covariance's
        prior its scale and its count (``prior_count``), split evenly over the components when
        they share one covariance."""
        share = pull.shape[0] if self.one_covariance else 1
        scatter = self._prior_scatter(pull, delta, prior.scale / share)
        mean_count = 1.0 if prior.shrinkage > 0 else 0.0  # a flat prior on the means: none
        count = mean_count + self.prior_count(prior.dof, delta.shape[1]) / share
        return scatter, np.full(pull.shape, count)

    @abstractmethod
    def _prior_scatter(self, pull: Array, delta: Array, scale: Array) -> Array:
        """pull_k delta_k delta_k' + scale in ``scatter``'s layout (scale already in it)."""

    @abstractmethod
    def prior_count(self, dof: float, n_features: int) -> float:
        """The covariance prior's count in the surrogate's N_k units: an inverse Wishart
        |Sigma|^{-(nu + D + 1)/2} adds nu + D + 1 (per-coordinate inverse gammas nu + 2, and
        a spherical one (nu + 2) / D, as the spherical surrogate carries a factor D)."""

    @abstractmethod
    def prior_scale(self, scale: Array | float, n_features: int) -> Array:
        """A user's prior scale (a number, (D,) or (D, D)) in this layout's terms."""

    @abstractmethod
    def default_prior_scale(self, covariance: Array, n_samples: float, n_components: int) -> Array:
        """mclust's ``defaultPrior`` scale from the data's covariance (D, D): var(X) / G^(2/D)
        for the whole-matrix models (its diagonal when n <= D), sum(diag var(X)) / D / G^(2/D)
        for the diagonal and spherical ones."""

    @property
    def label(self) -> str:
        """The name in sentences: 'tied (EEE)' for scikit-learn's four, 'VEV' for the others."""
        return self.name if self.name == self.mclust else f"{self.name} ({self.mclust})"

    @property
    def mclust_label(self) -> str:
        """The name in mclust's tables and legends: 'EEE (tied)', 'VEV'."""
        return self.mclust if self.name == self.mclust else f"{self.mclust} ({self.name})"

    def check_n_features(self, n_features: int) -> None:
        """Raise ValueError when the model does not apply to data with ``n_features`` columns."""
        return None  # every model but mclust's univariate E and V applies to any number

    @abstractmethod
    def precisions_cholesky(self, covariances: Array) -> Array:
        """Cholesky factors of the precisions; DegenerateCovarianceError if not definite."""

    @abstractmethod
    def precisions(self, prec_chol: Array) -> Array:
        """Precision matrices (or variances' inverses) from their Cholesky factors."""

    @abstractmethod
    def covariances_from_precisions_cholesky(self, prec_chol: Array) -> Array:
        """Covariances from the precisions' Cholesky factors."""

    @abstractmethod
    def precisions_cholesky_from_precisions(self, precisions: Array) -> Array:
        """Cholesky factors of user-given precisions (``precisions_init``)."""

    @abstractmethod
    def per_component(self, covariances: Array, n_components: int, n_features: int) -> Array:
        """The (K, D, D) covariance matrices, for sampling and plotting."""

    def sample(
        self, rng: np.random.RandomState, means: Array, covariances: Array, counts: NDArray[np.int_]
    ) -> Array:
        """Rows drawn component by component, ``counts[k]`` from component k (as sklearn)."""
        n_components, n_features = means.shape
        matrices = self.per_component(covariances, n_components, n_features)
        blocks = [
            rng.multivariate_normal(mean, matrix, int(count))
            for mean, matrix, count in zip(means, matrices, counts, strict=True)
        ]
        return np.vstack(blocks)

    @abstractmethod
    def pooled(self, covariances: Array, weights: Array) -> Array:
        """A typical covariance of one component in this layout (weighted average)."""

    def replace(self, covariances: Array, k: int, value: Array) -> Array:
        """A copy of ``covariances`` with component k's covariance set to ``value``."""
        out = covariances.copy()
        out[k] = value
        return out


class _Matrix(Covariance):
    """Layouts of whole matrices, one per component (K, D, D) or shared (D, D)."""

    matrix_layout = True

    def prior_count(self, dof: float, n_features: int) -> float:
        return dof + n_features + 1.0

    def prior_scale(self, scale: Array | float, n_features: int) -> Array:
        value = np.asarray(scale, dtype=np.float64)
        if value.ndim == 2:
            return value
        return np.diag(np.broadcast_to(value, (n_features,)).astype(np.float64))

    def default_prior_scale(self, covariance: Array, n_samples: float, n_components: int) -> Array:
        n_features = covariance.shape[0]
        factor = (1.0 / n_components) ** (2.0 / n_features)
        if n_samples > n_features:
            return factor * covariance
        return factor * np.diag(np.diagonal(covariance))

    def _prior_scatter(self, pull: Array, delta: Array, scale: Array) -> Array:
        return pull[:, None, None] * delta[:, :, None] * delta[:, None, :] + scale

    def precisions_cholesky(self, covariances: Array) -> Array:
        from gaussmix.em import compiled  # the C loops load on first use (``gaussmix info``)

        factors = compiled.precision_factors(covariances)  # small D: one C call, no LAPACK
        if factors is not None:
            return factors
        chol = _cholesky_lower(covariances, shared=covariances.ndim == 2)
        return _inverse_transpose_of_lower(chol)

    def precisions(self, prec_chol: Array) -> Array:
        return np.matmul(prec_chol, np.swapaxes(prec_chol, -1, -2))

    def covariances_from_precisions_cholesky(self, prec_chol: Array) -> Array:
        # Sigma = (P P')^{-1} = P^{-T} P^{-1}
        inv = np.linalg.inv(prec_chol)
        return np.matmul(np.swapaxes(inv, -1, -2), inv)

    def precisions_cholesky_from_precisions(self, precisions: Array) -> Array:
        # the *upper* triangular P with P P' = Lambda, like the factors computed from
        # covariances: reversing rows and columns turns a lower Cholesky factor into it
        flipped = precisions[..., ::-1, ::-1]
        lower = _cholesky_lower(np.ascontiguousarray(flipped), shared=precisions.ndim == 2)
        return np.ascontiguousarray(lower[..., ::-1, ::-1])


class _Scales(Covariance):
    """Layouts of variances: per coordinate (K, D) or one per component (K,)."""

    matrix_layout = False

    def prior_count(self, dof: float, n_features: int) -> float:
        return dof + 2.0

    def prior_scale(self, scale: Array | float, n_features: int) -> Array:
        value = np.asarray(scale, dtype=np.float64)
        if value.ndim == 2:
            return np.diagonal(value).copy()
        return np.broadcast_to(value, (n_features,)).astype(np.float64)

    def default_prior_scale(self, covariance: Array, n_samples: float, n_components: int) -> Array:
        n_features = covariance.shape[0]
        factor = (1.0 / n_components) ** (2.0 / n_features)
        return np.asarray(factor * np.trace(covariance) / n_features)

    def _prior_scatter(self, pull: Array, delta: Array, scale: Array) -> Array:
        return pull[:, None] * delta * delta + scale

    def precisions_cholesky(self, covariances: Array) -> Array:
        _check_positive(covariances, shared=False)
        return 1.0 / np.sqrt(covariances)

    def precisions(self, prec_chol: Array) -> Array:
        return prec_chol**2

    def covariances_from_precisions_cholesky(self, prec_chol: Array) -> Array:
        return 1.0 / prec_chol**2

    def precisions_cholesky_from_precisions(self, precisions: Array) -> Array:
        _check_positive(precisions, shared=False)
        return np.sqrt(precisions)

    def pooled(self, covariances: Array, weights: Array) -> Array:
        return np.asarray(weights @ covariances)

    def sample(
        self, rng: np.random.RandomState, means: Array, covariances: Array, counts: NDArray[np.int_]
    ) -> Array:
        # independent coordinates: mean + sigma * standard normal (scikit-learn's draws)
        n_features = means.shape[1]
        blocks = [
            mean + rng.standard_normal(size=(int(count), n_features)) * np.sqrt(variance)
            for mean, variance, count in zip(means, covariances, counts, strict=True)
        ]
        return np.vstack(blocks)


class Full(_Matrix):
    name = "full"
    layout = "full"
    mclust = "VVV"
    description = "each component has its own general covariance matrix"
    compiled_mstep = "VVV"
    features_kernel = "full"
    plot_style = ("D", "#d62728")

    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features, n_features)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features * (n_features + 1) // 2

    def mahalanobis(self, Z: Array, prec_chol: Array) -> Array:
        return self._mahalanobis(lambda k, out: np.copyto(out, Z[k]), Z.shape[:2], prec_chol)

    def log_gauss_rows(self, X: Array, means: Array, prec_chol: Array) -> Array:
        # no (K, n, D) array: each component's centred rows are made in one scratch block
        maha = self._mahalanobis(
            lambda k, out: np.subtract(X, means[k], out=out),
            (means.shape[0], X.shape[0]),
            prec_chol,
        )
        return self._log_gauss(maha, prec_chol, X.shape[1])

    @staticmethod
    def _mahalanobis(
        fill: Callable[[int, Array], object], shape: tuple[int, int], prec_chol: Array
    ) -> Array:
        # ||z P_k||^2 with triangular P_k: TRMM does half the flops of a GEMM and releases the
        # GIL (blas.py). ``fill(k, out)`` writes component k's centred rows into the scratch.
        maha = np.empty(shape)
        Y = np.empty((shape[1], prec_chol.shape[-1]))
        for k in range(shape[0]):
            fill(k, Y)
            times_upper_in_place(Y, prec_chol[k])
            np.einsum("nd,nd->n", Y, Y, out=maha[k])
        return maha

    def log_det_precision_cholesky(
        self, prec_chol: Array, n_components: int, n_features: int
    ) -> Array:
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)

    def second_moment(self, resp_t: Array, Z: Array) -> Array:
        return self.moments(resp_t, Z)[1]

    def moments(self, resp_t: Array, Z: Array) -> tuple[Array, Array]:
        origin = np.zeros(Z.shape[-1])
        return self._moments([_weighted_gram(Z[k], origin, q) for k, q in enumerate(resp_t)])

    def moments_rows(self, resp_t: Array, X: Array, shift: Array) -> tuple[Array, Array]:
        return self._moments([_weighted_gram(X, c, q) for c, q in zip(shift, resp_t, strict=True)])

    @staticmethod
    def _moments(parts: list[tuple[Array, Array]]) -> tuple[Array, Array]:
        return np.array([p[0] for p in parts]), np.array([p[1] for p in parts])

    def componentwise_preferred(self, n_components: int, n_features: int) -> bool:
        # the natural kernel streams D(D+1)/2 quadratic features per row through two skinny
        # GEMMs; the componentwise one K x D centred values through TRMM and SYRK. Measured
        # (benchmarks/README.md): the crossover is near D = 3K.
        return n_features > 3 * n_components

    def zero_second_moment(self, n_components: int, n_features: int) -> Array:
        return np.zeros((n_components, n_features, n_features))

    def labelled_second_moment(self, onehot: Array, Z: Array) -> Array:
        # one product of the one-hot rows with every row's outer product z z' (n, D D)
        n, d = Z.shape
        outer = (Z[:, :, None] * Z[:, None, :]).reshape(n, d * d)
        return (onehot @ outer).reshape(onehot.shape[0], d, d)

    def scatter(self, sxx: Array, nk: Array, d: Array, reg_covar: float) -> Array:
        # sum_n q (x - mu)(x - mu)' = S - N d d'   since x - mu = z - d
        W = sxx - nk[:, None, None] * d[:, :, None] * d[:, None, :]
        W = 0.5 * (W + np.swapaxes(W, 1, 2))
        n_features = W.shape[-1]
        W.reshape(len(nk), -1)[:, :: n_features + 1] += (nk * reg_covar)[:, None]  # diagonals
        return W

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        return scatter / nk[:, None, None]

    def per_component(self, covariances: Array, n_components: int, n_features: int) -> Array:
        return covariances

    def pooled(self, covariances: Array, weights: Array) -> Array:
        return np.einsum("k,kij->ij", weights, covariances)

    def n_quadratic(self, n_features: int) -> int:
        return n_features * (n_features + 1) // 2

    def quadratic_features(self, Xct: Array, prec_chol: Array, out: Array) -> None:
        # the products x_i x_j, i <= j, row block by row block (contiguous, no gather)
        start = 0
        for i in range(Xct.shape[0]):
            stop = start + Xct.shape[0] - i
            np.multiply(Xct[i], Xct[i:], out=out[start:stop])
            start = stop

    def quadratic_weights(self, prec_chol: Array, n_components: int) -> Array:
        # x' Lambda x = sum_{i<=j} (2 - delta_ij) Lambda_ij x_i x_j
        n_features = prec_chol.shape[-1]
        rows, cols = _upper_triangle(n_features)
        precision = self.precisions(prec_chol)[:, rows, cols]  # (K, nq)
        return (-0.5 * np.where(rows == cols, 1.0, 2.0) * precision).T

    def precision_times(self, prec_chol: Array, E: Array) -> Array:
        return np.einsum("kij,kj->ki", prec_chol, np.einsum("kji,kj->ki", prec_chol, E))

    def move_second_moment(self, sxx: Array, sx: Array, nk: Array, E: Array) -> Array:
        cross = sx[:, :, None] * E[:, None, :]
        return (
            sxx
            - cross
            - np.swapaxes(cross, 1, 2)
            + nk[:, None, None] * E[:, :, None] * E[:, None, :]
        )

    def second_moment_from_features(self, Gq: Array, Xct: Array, resp_t: Array) -> Array:
        n_features = Xct.shape[0]
        rows, cols = _upper_triangle(n_features)
        out = np.empty((Gq.shape[1], n_features, n_features))
        out[:, rows, cols] = Gq.T
        out[:, cols, rows] = Gq.T
        return out


class Tied(_Matrix):
    name = "tied"
    layout = "tied"
    mclust = "EEE"
    description = "all components share one general covariance matrix"
    compiled_mstep = "EEE"
    shared_layout = True
    one_covariance = True
    plot_style = ("^", "#2ca02c")

    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_features, n_features)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_features * (n_features + 1) // 2

    def mahalanobis(self, Z: Array, prec_chol: Array) -> Array:
        # (K n, D): one TRMM for all components
        Y = times_upper_in_place(Z.reshape(-1, Z.shape[-1]).copy(), prec_chol)
        return np.einsum("nd,nd->n", Y, Y).reshape(Z.shape[:2])

    def log_det_precision_cholesky(
        self, prec_chol: Array, n_components: int, n_features: int
    ) -> Array:
        return np.full(n_components, np.log(np.diagonal(prec_chol)).sum())

    def second_moment(self, resp_t: Array, Z: Array) -> Array:
        # sum_k sum_n q_kn z_kn z_kn' as one SYRK over the stacked (K n, D) rows sqrt(q) z
        B = (Z * np.sqrt(resp_t)[:, :, None]).reshape(-1, Z.shape[-1])
        return gram(np.ascontiguousarray(B))

    def zero_second_moment(self, n_components: int, n_features: int) -> Array:
        return np.zeros((n_features, n_features))

    def labelled_second_moment(self, onehot: Array, Z: Array) -> Array:
        return (Z * onehot.sum(axis=0)[:, None]).T @ Z

    def scatter(self, sxx: Array, nk: Array, d: Array, reg_covar: float) -> Array:
        # sum_k sum_n q (x - mu_k)(x - mu_k)' = S - sum_k N_k d_k d_k'
        W = sxx - (nk[:, None] * d).T @ d
        W = 0.5 * (W + W.T)
        W.reshape(-1)[:: W.shape[0] + 1] += nk.sum() * reg_covar  # the diagonal (a view)
        return W

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        return scatter / nk.sum()

    def per_component(self, covariances: Array, n_components: int, n_features: int) -> Array:
        return np.broadcast_to(covariances, (n_components, *covariances.shape))

    def _prior_scatter(self, pull: Array, delta: Array, scale: Array) -> Array:
        # the scatter is pooled over the components: their shares of the scale add up to one
        return (pull[:, None] * delta).T @ delta + scale * pull.shape[0]

    def n_quadratic(self, n_features: int) -> int:
        return 1

    def quadratic_features(self, Xct: Array, prec_chol: Array, out: Array) -> None:
        # the one shared quadratic form (x - c)' Lambda (x - c) = ||P' (x - c)||^2
        Y = prec_chol.T @ Xct
        np.einsum("dn,dn->n", Y, Y, out=out[0])

    def quadratic_weights(self, prec_chol: Array, n_components: int) -> Array:
        return np.full((1, n_components), -0.5)

    def precision_times(self, prec_chol: Array, E: Array) -> Array:
        return (E @ prec_chol) @ prec_chol.T

    def move_second_moment(self, sxx: Array, sx: Array, nk: Array, E: Array) -> Array:
        cross = sx.T @ E
        return sxx - cross - cross.T + (nk[:, None] * E).T @ E

    def second_moment_from_features(self, Gq: Array, Xct: Array, resp_t: Array) -> Array:
        # sum_k sum_n q_kn (x - c)(x - c)' = sum_n w_n (x - c)(x - c)': rows' responsibilities
        # sum to their weights, so the shared scatter needs no responsibilities at all
        return Xct @ (Xct * resp_t.sum(axis=0)).T

    def pooled(self, covariances: Array, weights: Array) -> Array:
        return covariances

    def replace(self, covariances: Array, k: int, value: Array) -> Array:
        return covariances  # shared by all components: nothing of k's own to replace


class Diag(_Scales):
    name = "diag"
    layout = "diag"
    mclust = "VVI"
    description = "each component has its own diagonal covariance matrix"
    compiled_mstep = "VVI"
    features_kernel = "diag"
    plot_style = ("s", "#ff7f0e")

    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features

    def mahalanobis(self, Z: Array, prec_chol: Array) -> Array:
        Y = Z * prec_chol[:, None, :]
        return np.einsum("knd,knd->kn", Y, Y)

    def log_det_precision_cholesky(
        self, prec_chol: Array, n_components: int, n_features: int
    ) -> Array:
        return np.log(prec_chol).sum(axis=1)

    def second_moment(self, resp_t: Array, Z: Array) -> Array:
        return np.einsum("kn,knd->kd", resp_t, Z * Z)

    def zero_second_moment(self, n_components: int, n_features: int) -> Array:
        return np.zeros((n_components, n_features))

    def labelled_second_moment(self, onehot: Array, Z: Array) -> Array:
        return onehot @ (Z * Z)

    def scatter(self, sxx: Array, nk: Array, d: Array, reg_covar: float) -> Array:
        return nk[:, None] * (_rounded_variance(sxx / nk[:, None] - d * d) + reg_covar)

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        return scatter / nk[:, None]

    def per_component(self, covariances: Array, n_components: int, n_features: int) -> Array:
        return covariances[:, :, None] * np.eye(n_features)

    def n_quadratic(self, n_features: int) -> int:
        return n_features

    def quadratic_features(self, Xct: Array, prec_chol: Array, out: Array) -> None:
        np.multiply(Xct, Xct, out=out)

    def quadratic_weights(self, prec_chol: Array, n_components: int) -> Array:
        return -0.5 * (prec_chol**2).T

    def precision_times(self, prec_chol: Array, E: Array) -> Array:
        return prec_chol**2 * E

    def move_second_moment(self, sxx: Array, sx: Array, nk: Array, E: Array) -> Array:
        return sxx - 2 * sx * E + nk[:, None] * E * E

    def second_moment_from_features(self, Gq: Array, Xct: Array, resp_t: Array) -> Array:
        return np.ascontiguousarray(Gq.T)


class Spherical(_Scales):
    name = "spherical"
    layout = "spherical"
    mclust = "VII"
    univariate = "V"  # one variance per component
    description = "each component has its own single variance"
    compiled_mstep = "VII"
    features_kernel = "spherical"
    plot_style = ("o", "#1f77b4")

    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components,)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components

    def mahalanobis(self, Z: Array, prec_chol: Array) -> Array:
        return np.einsum("knd,knd->kn", Z, Z) * (prec_chol**2)[:, None]

    def log_det_precision_cholesky(
        self, prec_chol: Array, n_components: int, n_features: int
    ) -> Array:
        return n_features * np.log(prec_chol)

    def second_moment(self, resp_t: Array, Z: Array) -> Array:
        return np.einsum("kn,knd->k", resp_t, Z * Z)

    def zero_second_moment(self, n_components: int, n_features: int) -> Array:
        return np.zeros(n_components)

    def labelled_second_moment(self, onehot: Array, Z: Array) -> Array:
        return onehot @ np.einsum("nd,nd->n", Z, Z)

    def scatter(self, sxx: Array, nk: Array, d: Array, reg_covar: float) -> Array:
        # the mean of the scatter's diagonal (scikit-learn's variance is its mean over N_k)
        n_features = d.shape[1]
        variance = _rounded_variance(sxx / nk - (d * d).sum(axis=1)) / n_features
        return nk * (variance + reg_covar)

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        return scatter / nk

    def per_component(self, covariances: Array, n_components: int, n_features: int) -> Array:
        return covariances[:, None, None] * np.eye(n_features)

    # the spherical surrogate is -D/2 sum_k [N_k log s_k + scatter_k / s_k] (scatter_k the mean
    # of W_k's diagonal), so the prior's terms come divided by D
    def prior_count(self, dof: float, n_features: int) -> float:
        return (dof + 2.0) / n_features

    def prior_scale(self, scale: Array | float, n_features: int) -> Array:
        value = np.asarray(scale, dtype=np.float64)
        if value.ndim == 2:
            return np.asarray(np.trace(value) / n_features)
        return np.asarray(value.mean())

    def _prior_scatter(self, pull: Array, delta: Array, scale: Array) -> Array:
        # the scale is a variance: its inverse gamma adds scale / s, i.e. scale / D per unit
        return (pull * (delta * delta).sum(axis=1) + scale) / delta.shape[1]

    def n_quadratic(self, n_features: int) -> int:
        return 1

    def quadratic_features(self, Xct: Array, prec_chol: Array, out: Array) -> None:
        np.einsum("dn,dn->n", Xct, Xct, out=out[0])

    def quadratic_weights(self, prec_chol: Array, n_components: int) -> Array:
        return -0.5 * (prec_chol**2)[None, :]

    def precision_times(self, prec_chol: Array, E: Array) -> Array:
        return (prec_chol**2)[:, None] * E

    def move_second_moment(self, sxx: Array, sx: Array, nk: Array, E: Array) -> Array:
        return sxx - 2 * np.einsum("kd,kd->k", sx, E) + nk * np.einsum("kd,kd->k", E, E)

    def second_moment_from_features(self, Gq: Array, Xct: Array, resp_t: Array) -> Array:
        return Gq[0].copy()


# --- mclust's other models ---------------------------------------------------------------
# Each stores its covariances in one of the four layouts above, so the E-step kernels serve it
# unchanged, and brings its own M-step from the layout's scatter (``constrained.py``): closed
# form where one exists, else the monotone iterations there. Counts are mclust's nVarParams.


class EII(Spherical):
    name = mclust = "EII"
    description = "all components share one single variance"
    compiled_mstep = "EII"
    plot_style = ("o", "#9ecae1")
    one_covariance = True
    univariate = "E"  # one variance for all

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return 1

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        return np.full_like(scatter, scatter.sum() / nk.sum())


class _Univariate(Covariance):
    """mclust's names for one feature (E: equal variance, V: variable variance)."""

    def check_n_features(self, n_features: int) -> None:
        if n_features != 1:
            raise ValueError(
                f"covariance_type {self.name!r} is for one feature and the data have "
                f"{n_features}; use {self.multivariate!r} for several"
            )

    multivariate: ClassVar[str]


class E(_Univariate, EII):
    name = mclust = "E"
    multivariate = "EII"
    description = "one feature, one variance shared by all components"
    compiled_mstep = "EII"  # EII at D = 1


class V(_Univariate, Spherical):
    name = mclust = "V"
    multivariate = "VII"
    description = "one feature, each component has its own variance"
    compiled_mstep = "VII"  # VII at D = 1


class EEI(Diag):
    name = mclust = "EEI"
    description = "all components share one diagonal covariance matrix"
    compiled_mstep = "EEI"
    plot_style = ("s", "#fdae6b")
    one_covariance = True

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_features

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        return constrained.eei(scatter, nk)


class VEI(Diag):
    name = mclust = "VEI"
    compiled_mstep = "VEI"
    description = "diagonal, each component has its own volume, all share one shape"
    plot_style = ("P", "#8c564b")

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components + n_features - 1

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        return constrained.vei(scatter, nk, start)


class EVI(Diag):
    name = mclust = "EVI"
    description = "diagonal, all share one volume, each component has its own shape"
    compiled_mstep = "EVI"
    plot_style = ("X", "#c49c94")

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return 1 + n_components * (n_features - 1)

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        return constrained.evi(scatter, nk)


def _n_rotations(n_features: int) -> int:
    """Free parameters of an orientation (a D x D orthogonal matrix): D(D - 1)/2."""
    return n_features * (n_features - 1) // 2


class VEE(Full):
    name = mclust = "VEE"
    compiled_mstep = "VEE"
    description = "each component has its own volume; all share one shape and orientation"
    plot_style = ("v", "#9467bd")

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components + n_features - 1 + _n_rotations(n_features)

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        return constrained.vee(scatter, nk, start)


class EVE(Full):
    name = mclust = "EVE"
    compiled_mstep = "EVE"
    description = "all share one volume and orientation; each component has its own shape"
    plot_style = ("<", "#c5b0d5")

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return 1 + n_components * (n_features - 1) + _n_rotations(n_features)

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        return constrained.common_orientation(scatter, nk, constrained.evi, self.name, start)


class VVE(Full):
    name = mclust = "VVE"
    compiled_mstep = "VVE"
    description = "all share one orientation; each component has its own volume and shape"
    plot_style = (">", "#e377c2")

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features + _n_rotations(n_features)

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        return constrained.common_orientation(scatter, nk, constrained.vvi, self.name, start)


class EEV(Full):
    name = mclust = "EEV"
    compiled_mstep = "EEV"
    description = "all share one volume and shape; each component has its own orientation"
    plot_style = ("p", "#7f7f7f")

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_features + n_components * _n_rotations(n_features)

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        return constrained.free_orientation(scatter, nk, constrained.eei)


class VEV(Full):
    name = mclust = "VEV"
    compiled_mstep = "VEV"
    description = "all share one shape; each component has its own volume and orientation"
    plot_style = ("h", "#bcbd22")

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return n_components + n_features - 1 + n_components * _n_rotations(n_features)

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        vei = partial(constrained.vei, model="VEV")
        return constrained.free_orientation(scatter, nk, vei, start)


class EVV(Full):
    name = mclust = "EVV"
    compiled_mstep = "EVV"
    description = "all share one volume; each component has its own shape and orientation"
    plot_style = ("*", "#17becf")

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return 1 - n_components + n_components * n_features * (n_features + 1) // 2

    def constrain(self, scatter: Array, nk: Array, start: Array | None) -> Array:
        return constrained.free_orientation(scatter, nk, constrained.evi)


_TYPES: tuple[type[Covariance], ...] = (
    Full,
    Diag,
    Tied,
    Spherical,
    EII,
    EEI,
    VEI,
    EVI,
    VEE,
    EVE,
    VVE,
    EEV,
    VEV,
    EVV,
    E,
    V,
)
REGISTRY: dict[str, Covariance] = {cls.name: cls() for cls in _TYPES}
ALIASES: dict[str, str] = {cov.mclust: name for name, cov in REGISTRY.items() if cov.mclust != name}

# mclust's fourteen models in its order (its tables' columns), and its two for one feature
MCLUST_MODELS: tuple[str, ...] = (
    "EII",
    "VII",
    "EEI",
    "VEI",
    "EVI",
    "VVI",
    "EEE",
    "VEE",
    "EVE",
    "VVE",
    "EEV",
    "VEV",
    "EVV",
    "VVV",
)
UNIVARIATE_MODELS: tuple[str, ...] = ("E", "V")


def get_covariance(name: str) -> Covariance:
    """The covariance structure called ``name`` (scikit-learn name or mclust alias)."""
    key = ALIASES.get(name, name)
    try:
        return REGISTRY[key]
    except KeyError:
        known = ", ".join([*REGISTRY, *ALIASES])
        raise GaussmixError(f"unknown covariance type {name!r}; use one of {known}") from None


def canonical_name(name: str) -> str:
    """'VVV' -> 'full', 'full' -> 'full'."""
    return get_covariance(name).name
