"""Model selection: fit a grid of (K, covariance type) mixtures and rank them, as mclust does.

``select`` fits one ``GaussianMixture`` per cell of the grid, in parallel (joblib), and ranks the
fits by BIC, ICL or AIC. It exists as its own module because of one decision that the criteria
alone cannot make: **degenerate fits are shown but never chosen.**

Why. With ``reg_covar`` a component may sit on a set of rows that have no spread in some
direction (on Old Faithful, 14 rows that all have ``waiting == 83``): its variance there is
exactly ``reg_covar`` and the likelihood of those rows is as large as ``reg_covar`` is small.
BIC then rewards the collapse, not the fit (diag K=5 wins on Old Faithful with a log-likelihood
of -1043). mclust, which has no ``reg_covar``, finds such covariances singular and reports NA;
gaussmix marks them ``degenerate`` and leaves them out of the ranking.

The rule. Let S_k = Sigma_k - reg_covar I be component k's covariance with the regularisation
taken back out, and s_d the standard deviation of feature d in the data. A fit is degenerate
when, for some component,

    min eigenvalue of  diag(1/s) S_k diag(1/s)  <=  singular_tol,

i.e. when some direction has a variance below ``singular_tol`` times the data's variance, in
units where every feature has unit variance (so the rule does not depend on the units of the
columns). With ``reg_covar > 0`` the default is ``SINGULAR_TOL`` = 1e-8: a collapse gives
exactly 0 up to rounding (about 1e-16 here, or about reg_covar / s_d^2 for the iterative
models, whose constraint mixes reg_covar into every direction), and a genuine component's
standard deviation would have to be 10^-4 of the data's in some direction to be flagged.

No regularisation by default. ``select`` fits with ``reg_covar = 0``, as mclust does: a
component that collapses makes its covariance singular, the fit fails and the cell is NA, as
in mclust, at once (with a positive ``reg_covar`` the collapse goes on climbing, and the
iterative M-steps spend their inner iterations on matrices conditioned like 1/reg_covar:
Boston's grid 26 s instead of 8 s). So does an M-step whose covariance is numerically singular,
a variance of at most eps times the data's in some direction (``mstep.singular_fails``, as
mclust's M-steps check their Cholesky factors): a constraint such as a shared orientation
keeps some collapses from ever being exactly singular, and EM would run on to ``max_iter``.
A constant ``reg_covar`` is also a unit: on wdbc's first ten columns (mclust's data set; one
column's variance is 5e-5) 1e-6 cost the chosen VVV,5 13 units of BIC against mclust's fit
from the same start. What is left for the rule are fits whose covariance is near singular but
not singular; mclust keeps those down to a reciprocal condition of sqrt(eps) in its Cholesky
factor, and so ``SINGULAR_TOL_UNREGULARISED`` = 1e-13 (some 50 times the rounding of the
eigenvalues) flags only what rounding cannot tell from singular: on R's mtcars, pressure and
MASS's Boston mclust chooses fits (VEV,6, VVV,5, VEV,9) whose smallest relative variances are
8e-11, 2e-11 and 8e-10, which 1e-8 refused (mclust's BIC 133, 16 and 1205 above the best fit
left).

Criteria and their signs. The API uses scikit-learn's convention, lower is better:

    BIC = -2 log L + p log N,   AIC = -2 log L + 2 p,   ICL = BIC + 2 EN(t),

with p free parameters, N rows and EN(t) = -sum_n sum_k t_nk log t_nk the classification
entropy of the responsibilities t (Biernacki, Celeux and Govaert 2000, "Assessing a mixture
model for clustering with the integrated completed likelihood", IEEE TPAMI 22(7)). mclust
reports the same numbers with the opposite sign, higher is better: ``bic_mclust = 2 log L -
p log N = -bic``, and ``icl_mclust = -icl``; both are in every record. (mclust's ``icl()``
uses the hard MAP classification, sum_n log max_k t_nk, in place of the entropy; the two agree
when the components are well separated.)

The grid. mclust fits every cell once, from its hierarchical start, and stops EM when the
relative change of the log-likelihood, |L_t - L_{t-1}| / (1 + |L_t|), falls below 1e-5.
``select`` (default ``init_params='hc+kmeans'``) starts there and spends more only where it
can change the answer:

1. Cells that coincide are fitted once (``_distinct_fit``): with one component the fourteen
   models are three fits (spherical, diagonal, full); with one feature every model is E or V.
   Each name keeps its own parameter count (the registry's, mclust's nMclustParams).
2. Every distinct cell runs from mclust's hierarchical start: where both reach the optimum
   that start leads to, the cell's value is mclust's.
3. The ``refine`` (8) best cells with K >= 2, by the criterion, get n_init - 1 (1) more
   starts, k-means on standardised columns; a start's fit replaces the cell's if it is
   eligible and the cell's is not, or if both are and its log-likelihood is higher (a
   collapse, which has the higher likelihood, never replaces a fit). On the twelve data sets of
   benchmarks/bench_vs_mclust.py, two k-means starts in every cell changed the choice on two
   (thyroid VVI,3 to VVI,4, BIC +4.6; wreath VVV,8 to VVV,9, +206), each time from a cell
   among the best six after the hierarchical start; lower down they lifted cells by up to
   1200 (wreath EEV,9) without reaching the best. One start in the best eight finds both.
   On one feature the further start is mclust's own there, its quantile classes
   (``init.quantile_classes``; mclust grows no tree for one feature), run once: it draws
   nothing and costs microseconds where a k-means costs most of a millisecond (eight of them
   were about a third of a one-feature grid's time in bench_vs_mclust.py --sets wider), and
   on the seven one-feature sets there it gives the best BIC the k-means starts gave (each
   at least mclust's).
4. The fits within 10 of the best eligible one (a "very strong" difference of BIC for Kass
   and Raftery, 1995) run on until the change is below ``polish_tol`` (1e-7), so that the
   choice is made between converged fits; EM only climbs, so the best value is at least
   what stopping at 1e-5 gives. The rest keep mclust's stopping point.
5. The contest, above ``hc.HC_MAX_ROWS`` rows with two or more features only. There mclust
   grows its tree on a random subset of that many rows, so its choice is a random draw (on
   GvHD.pos, 9083 x 4, twelve runs of ``Mclust`` ended at BIC -418762 to -417520:
   benchmarks/README.md), and so is any one start of ours. And with |L| in the hundreds of
   thousands the relative rule's 1e-5 stops EM while it still climbs a unit or two an
   iteration, so starts compared where they stopped are ranked almost at random: of twenty
   k-means starts of VVV,9 there five converge to the best optimum, -417084, and as they
   stopped four of those five ranked 13th to 16th. So every refined cell is polished (4), and
   the ``CONTENDERS`` (3) best cells after that are fitted again from ``CONTEST_STARTS`` (4)
   k-means starts on raw and as many on standardised columns, and from each other model's
   fit of the same K (``_start_from``: the cell's M-step on that fit's components), each run
   to ``polish_tol`` and compared there, the best kept. The k-means starts find GvHD's best
   optima (VVV,9 at -417084.5 on GvHD.pos for each of seeds 0-19, and on GvHD.control at
   -319592.6 to -319574.5; mclust's best of twelve runs: -417519.7 and -319602.6); the other
   models' fits find what they miss on other data: on 3000 rows of ggplot2's txhousing
   (sales, volume, median, listings) the k-means starts left VVV,9 at -262724 for most seeds
   (eight runs of ``Mclust``: -263440 to -262728, one more -262604), and VVV,9 started from
   the VVI,9 fit reaches -262273.5, for every seed tried.

Worker processes cost about a second to start: below ``PROCESSES_MIN_SIZE`` rows x features
the grid runs in this process.

The fits of a grid of rows in memory. The rows and the parameters are checked once for the
grid, and each cell's fit (``GaussianMixture._fit_validated``) skips the checks ``fit`` would
repeat; it makes no random state for the hierarchical start (which draws nothing), and where
it can it is one C call, its start's M-step, iterations and final E-step (which also gives
its classification entropy; ``GaussianMixture._whole_fit``). The models of one K share their
start's labels and statistics within the grid (``init.shared_starts``). Every number is the
public fit's, to the bit (tests/test_selection.py, tests/em/test_whole_fit.py); what each
step saved is in benchmarks/README.md (``bench_fixed_cost.py``, ``bench_vs_mclust.py``).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import asdict, dataclass, replace
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
from joblib import Parallel, delayed
from numpy.typing import ArrayLike, NDArray
from scipy.special import xlogy
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from gaussmix.data.dask_source import on_dask
from gaussmix.data.sources import ArraySource, check_missing_blocks
from gaussmix.em import DegenerateCovarianceError, canonical_name, get_covariance
from gaussmix.em.covariance import MCLUST_MODELS, UNIVARIATE_MODELS
from gaussmix.em.errors import ComponentCollapseWarning, InnerIterationWarning
from gaussmix.em.hc import HC_MAX_ROWS
from gaussmix.em.init import shared_starts
from gaussmix.em.lean import zero_variance_is_singular
from gaussmix.em.missing import log_prob_observed
from gaussmix.em.mstep import mstep_from_resp, singular_fails
from gaussmix.em.parallel import one_thread
from gaussmix.em.params import free_parameters
from gaussmix.em.prior import Prior
from gaussmix.em.stats import softmax_in_place
from gaussmix.errors import GaussmixError
from gaussmix.mixture import GaussianMixture
from gaussmix.validation import validate_rows, warn_degenerate_columns

if TYPE_CHECKING:
    import pandas

__all__ = [
    "COVARIANCE_TYPES",
    "CRITERIA",
    "SINGULAR_TOL",
    "SINGULAR_TOL_UNREGULARISED",
    "FitRecord",
    "SelectionResult",
    "classification_entropy",
    "min_relative_variance",
    "select",
]

CRITERIA = ("bic", "icl", "aic")
COVARIANCE_TYPES = ("spherical", "diag", "tied", "full")
SINGULAR_TOL = 1e-8
# the threshold with reg_covar = 0 (select's default): near rounding (module docstring)
SINGULAR_TOL_UNREGULARISED = 1e-13

# Rows per block when computing the entropy, so that no N x K matrix of responsibilities is held.
_BLOCK_ROWS = 65536


@dataclass(frozen=True)
class FitRecord:
    """One cell of the grid: a (K, covariance type) fit and its criteria.

    Attributes
    ----------
    n_components : K.
    covariance_type : the registry's name ('spherical', 'diag', 'tied', 'full', or mclust's
        for its other models, e.g. 'VEV').
    mclust : mclust's name of the type ('VII', 'VVI', 'EEE', 'VVV', 'VEV', ...).
    log_likelihood : total log-likelihood log L of the data under the fit (NaN if it failed).
    n_parameters : free parameters p (covariances, means, K - 1 weights).
    entropy : classification entropy EN = -sum_n sum_k t_nk log t_nk (>= 0).
    bic, aic, icl : the criteria, lower is better (NaN if the fit failed).
    min_relative_variance : the smallest eigenvalue of any component's covariance without
        reg_covar, in units of the data's variance (see the module's docstring).
    degenerate : min_relative_variance <= singular_tol, or the fit failed; never chosen.
    converged : whether the best initialisation converged.
    n_iter : EM iterations of the best initialisation.
    error : why the fit failed (a covariance became singular: only possible with
        reg_covar = 0), or None; the criteria are then NaN, as mclust reports NA.
    """

    n_components: int
    covariance_type: str
    mclust: str
    log_likelihood: float
    n_parameters: int
    entropy: float
    bic: float
    aic: float
    icl: float
    min_relative_variance: float
    degenerate: bool
    converged: bool
    n_iter: int
    error: str | None = None

    @property
    def bic_mclust(self) -> float:
        """mclust's BIC, 2 log L - p log N = -bic (higher is better)."""
        return -self.bic

    @property
    def icl_mclust(self) -> float:
        """mclust's ICL, -icl (higher is better)."""
        return -self.icl

    @property
    def aic_mclust(self) -> float:
        """AIC with mclust's sign, 2 log L - 2 p = -aic (higher is better)."""
        return -self.aic

    @property
    def eligible(self) -> bool:
        """Whether the fit may be chosen: it ran, and it is not degenerate."""
        return self.error is None and not self.degenerate and math.isfinite(self.bic)

    @property
    def model_name(self) -> str:
        """mclust's label of the fit, e.g. 'EEE,3'."""
        return f"{self.mclust},{self.n_components}"

    def value(self, criterion: str) -> float:
        """The criterion ('bic', 'icl' or 'aic'), lower is better."""
        return float(getattr(self, _check_criterion(criterion)))

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values, with the mclust-signed criteria beside ours."""
        out = asdict(self)
        out |= {
            "bic_mclust": self.bic_mclust,
            "icl_mclust": self.icl_mclust,
            "aic_mclust": self.aic_mclust,
            "eligible": self.eligible,
        }
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in out.items()
        }


class NoFitChosen(GaussmixError):
    """Every fit of the grid is degenerate or failed; ``result`` still holds every record (its
    ``best`` is not set), so that the table and the JSON can be shown."""

    def __init__(self, message: str, result: SelectionResult) -> None:
        super().__init__(message)
        self.result = result


class SelectionResult:
    """The outcome of ``select``: every fit of the grid, its criteria, and the chosen model.

    Attributes
    ----------
    best : GaussianMixture
        The chosen model: the eligible fit with the lowest criterion (ties go to fewer
        parameters, then to the earlier cell of the grid).
    best_record : FitRecord
        Its row of the table.
    criterion : {'bic', 'icl', 'aic'}
    n_components : tuple of int, the K of the grid (rows of ``grid``).
    covariance_types : tuple of str, the types of the grid (columns of ``grid``).
    records : tuple of FitRecord, one per cell: every K of the first type, then of the next.
    models : dict (K, covariance_type) -> GaussianMixture or None (None where the fit failed).
    n_samples, n_features : shape of the data.
    singular_tol : the threshold of the degeneracy rule.
    n_distinct : how many distinct fits the records hold (cells that coincide share one).
    refined : the cells (K, covariance_type) that had the k-means starts too.
    polished : the cells whose EM ran on to ``polish_tol``.
    contested : the cells that had the contest's starts too (module docstring, "The grid").
    """

    def __init__(
        self,
        records: Sequence[FitRecord],
        models: dict[tuple[int, str], GaussianMixture | None],
        *,
        criterion: str,
        n_components: Sequence[int],
        covariance_types: Sequence[str],
        n_samples: int,
        n_features: int,
        singular_tol: float,
        n_distinct: int | None = None,
        refined: Sequence[tuple[int, str]] = (),
        polished: Sequence[tuple[int, str]] = (),
        contested: Sequence[tuple[int, str]] = (),
    ) -> None:
        self.records = tuple(records)
        self.n_distinct = len(self.records) if n_distinct is None else n_distinct
        self.refined = tuple(refined)
        self.polished = tuple(polished)
        self.contested = tuple(contested)
        self.models = dict(models)
        self.criterion = _check_criterion(criterion)
        self.n_components = tuple(n_components)
        self.covariance_types = tuple(covariance_types)
        self.n_samples = n_samples
        self.n_features = n_features
        self.singular_tol = singular_tol
        ranked = self.ranking()
        if not ranked:
            reasons = sorted({r.error or "degenerate" for r in self.records})
            # neither scaling nor reg_covar can help: the rule is unit-free and takes reg_covar out
            raise NoFitChosen(
                f"no fit of the grid can be chosen: every one is degenerate or failed "
                f"({'; '.join(reasons)}); a component sits on rows with no spread in some "
                "direction: try fewer components",
                self,
            )
        self.best_record = ranked[0]
        best = self.models[(self.best_record.n_components, self.best_record.covariance_type)]
        if best is None:  # pragma: no cover - eligible records always have a model
            raise RuntimeError("the chosen fit has no model")
        self.best: GaussianMixture = best

    def __repr__(self) -> str:
        b = self.best_record
        return (
            f"SelectionResult({len(self.records)} fits, {self.criterion.upper()} chooses "
            f"{get_covariance(b.covariance_type).label} with K={b.n_components})"
        )

    def record(self, n_components: int, covariance_type: str) -> FitRecord:
        """The record of one cell, by K and covariance type (either naming)."""
        name = canonical_name(covariance_type)
        for r in self.records:
            if r.n_components == n_components and r.covariance_type == name:
                return r
        raise KeyError(f"no fit with K={n_components} and covariance_type={covariance_type!r}")

    def ranking(self, criterion: str | None = None) -> list[FitRecord]:
        """The eligible fits, best first, by ``criterion`` (default: the result's)."""
        name = _check_criterion(criterion or self.criterion)
        eligible = [(i, r) for i, r in enumerate(self.records) if r.eligible]
        eligible.sort(key=lambda pair: (pair[1].value(name), pair[1].n_parameters, pair[0]))
        return [r for _, r in eligible]

    def grid(
        self, criterion: str | None = None, *, mclust_sign: bool = False
    ) -> NDArray[np.float64]:
        """The criterion as a (len(n_components), len(covariance_types)) array.

        Degenerate fits keep their value here (``degenerate_mask`` says which); failed fits are
        NaN. ``mclust_sign=True`` gives mclust's sign (higher is better).
        """
        name = _check_criterion(criterion or self.criterion)
        out = np.full((len(self.n_components), len(self.covariance_types)), np.nan)
        for r in self.records:
            i = self.n_components.index(r.n_components)
            j = self.covariance_types.index(r.covariance_type)
            out[i, j] = -r.value(name) if mclust_sign else r.value(name)
        return out

    def degenerate_mask(self) -> NDArray[np.bool_]:
        """(len(n_components), len(covariance_types)): True where the fit is not eligible."""
        out = np.zeros((len(self.n_components), len(self.covariance_types)), dtype=bool)
        for r in self.records:
            i = self.n_components.index(r.n_components)
            j = self.covariance_types.index(r.covariance_type)
            out[i, j] = not r.eligible
        return out

    def to_dict(self) -> dict[str, Any]:
        """The whole result as JSON-ready values: the choice (None when no fit could be chosen),
        and one record per fit."""
        b: FitRecord | None = getattr(self, "best_record", None)
        return {
            "criterion": self.criterion,
            "best": None
            if b is None
            else {
                "n_components": b.n_components,
                "covariance_type": b.covariance_type,
                "mclust": b.mclust,
                "log_likelihood": b.log_likelihood,
                "bic": b.bic,
                "icl": b.icl,
                "aic": b.aic,
            },
            "n_samples": self.n_samples,
            "n_features": self.n_features,
            "n_components": list(self.n_components),
            "covariance_types": list(self.covariance_types),
            "singular_tol": self.singular_tol,
            "n_distinct_fits": self.n_distinct,
            "refined": [list(cell) for cell in self.refined],
            "polished": [list(cell) for cell in self.polished],
            "contested": [list(cell) for cell in self.contested],
            "sign_convention": (
                "bic, icl, aic: lower is better (scikit-learn); "
                "bic_mclust, icl_mclust, aic_mclust: their negatives, higher is better (mclust)"
            ),
            "fits": [r.to_dict() for r in self.records],
        }

    def to_pandas(self) -> pandas.DataFrame:
        """One row per fit (needs pandas), with the mclust-signed criteria beside ours."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas") from None
        return pd.DataFrame([r.to_dict() for r in self.records])


def _check_criterion(criterion: str) -> str:
    name = str(criterion).lower()
    if name not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; use one of {', '.join(CRITERIA)}")
    return name


def _rows(X: Any, start: int, stop: int) -> Any:
    """Rows start:stop of an array or a DataFrame."""
    iloc = getattr(X, "iloc", None)
    return iloc[start:stop] if iloc is not None else X[start:stop]


def classification_entropy(model: GaussianMixture, X: ArrayLike) -> float:
    """EN(t) = -sum_n sum_k t_nk log t_nk of the responsibilities t of ``X``, shape (n, D).

    Computed in blocks of rows, so no (n, K) matrix is held for large n, by the engine's E-step
    (``predict_proba``'s, without validating the rows again: they are the fitted ones).
    """
    if on_dask(X):  # summed on the cluster
        from gaussmix import selection_dask

        return selection_dask.classification_entropy(model, X)
    n = int(np.shape(X)[0])
    params = model._params()
    total = 0.0
    for start in range(0, n, _BLOCK_ROWS):
        block = np.asarray(_rows(X, start, start + _BLOCK_ROWS), dtype=np.float64)
        resp = softmax_in_place(log_prob_observed(block, params, model.dtype))[0]
        total -= float(xlogy(resp, resp).sum())  # 0 log 0 = 0
    return total


def min_relative_variance(model: GaussianMixture, data_variance: ArrayLike) -> float:
    """Smallest eigenvalue of diag(1/s) (Sigma_k - reg_covar I) diag(1/s) over the components.

    Parameters
    ----------
    model : a fitted GaussianMixture.
    data_variance : (D,) the variance s^2 of each feature in the data (all > 0).

    Returns
    -------
    float : the smallest variance, in any direction and any component, of the fitted
        covariances without the regularisation, in units of the data's variance.
    """
    K, D = model.means_.shape
    cov = get_covariance(model.covariance_type)
    inv_sd = 1.0 / np.sqrt(np.asarray(data_variance, dtype=np.float64))
    if not cov.matrix_layout:
        # diagonal matrices: their eigenvalues are their diagonals, the (K, D) or (K,) stored
        # variances; (v - reg_covar) / s^2 as the matrices' diagonals give it, to the bit
        variances = np.asarray(model.covariances_, dtype=np.float64).reshape(K, -1)
        return float(((variances - model.reg_covar) * (inv_sd * inv_sd)).min())
    # the (K, D, D) matrices, or the one shared (D, D) as one of them
    matrices = np.asarray(model.covariances_, dtype=np.float64).reshape(-1, D, D)
    if model.reg_covar:
        matrices = matrices - model.reg_covar * np.eye(D)
    return float(np.linalg.eigvalsh(matrices * np.outer(inv_sd, inv_sd))[:, 0].min())


def _data_variance(X: NDArray[np.floating]) -> NDArray[np.float64]:
    """Per-feature variance of the observed values (NaN left out), in blocks (a memmap is not
    loaded whole)."""
    n = X.shape[0]
    mean = np.zeros(X.shape[1])
    count = np.zeros(X.shape[1])
    for start in range(0, n, _BLOCK_ROWS):
        block = np.asarray(X[start : start + _BLOCK_ROWS], dtype=np.float64)
        mean += np.nansum(block, axis=0)
        count += (~np.isnan(block)).sum(axis=0)
    mean /= np.maximum(count, 1)
    ss = np.zeros(X.shape[1])
    for start in range(0, n, _BLOCK_ROWS):
        block = np.asarray(X[start : start + _BLOCK_ROWS], dtype=np.float64)
        ss += np.nansum((block - mean) ** 2, axis=0)
    return ss / np.maximum(count, 1)


def _record(
    model: GaussianMixture,
    X: Any,
    data_variance: NDArray[np.float64],
    singular_tol: float,
    entropy: float | None = None,
) -> FitRecord:
    """The record of a fitted cell: its criteria, degeneracy and convergence (``entropy``: the
    classification entropy where the fit gave it, else computed here, a pass over ``X``)."""
    cov = get_covariance(model.covariance_type)
    n = model.n_samples_fit_
    log_lik = float(model.log_likelihood_)
    p = free_parameters(cov, *model.means_.shape)
    if entropy is None:
        entropy = classification_entropy(model, X)
    bic = -2.0 * log_lik + p * math.log(n)
    smallest = min_relative_variance(model, data_variance)
    return FitRecord(
        n_components=model.n_components,
        covariance_type=cov.name,
        mclust=cov.mclust,
        log_likelihood=log_lik,
        n_parameters=p,
        entropy=entropy,
        bic=bic,
        aic=-2.0 * log_lik + 2.0 * p,
        icl=bic + 2.0 * entropy,
        min_relative_variance=smallest,
        degenerate=bool(smallest <= singular_tol),
        converged=bool(model.converged_),
        n_iter=int(model.n_iter_),
    )


def _failed_record(n_components: int, covariance_type: str, error: str) -> FitRecord:
    """mclust's NA: every start's covariance became singular (possible only with reg_covar=0)."""
    cov = get_covariance(covariance_type)
    nan = float("nan")
    return FitRecord(
        n_components=n_components,
        covariance_type=cov.name,
        mclust=cov.mclust,
        log_likelihood=nan,
        n_parameters=0,
        entropy=nan,
        bic=nan,
        aic=nan,
        icl=nan,
        min_relative_variance=nan,
        degenerate=True,
        converged=False,
        n_iter=0,
        error=error,
    )


# One task's outcome: the cell, its record and its fit (None where every start failed).
_Outcome = tuple[tuple[int, str], FitRecord, "GaussianMixture | None"]


@dataclass(frozen=True)
class _Rows:
    """In-memory rows of a grid, validated once for all its fits: each cell's fit skips the
    validation of rows and parameters that ``fit`` repeats (``GaussianMixture._fit_validated``),
    which costs about as much as the EM of a small fit."""

    source: ArraySource
    n_missing: int
    feature_names: NDArray[Any] | None


def _fit(model: GaussianMixture, X: _Rows | Any) -> float | None:
    """Fit ``model`` to the grid's rows; the classification entropy of the fit where its final
    E-step gave it (rows in memory), else None (rows on Dask)."""
    if isinstance(X, _Rows):
        return model._fit_validated(X.source, X.n_missing, X.feature_names)
    model.fit(X)
    return None


def _fit_cell(
    X: Any,
    cell: tuple[int, str],
    params: dict[str, Any],
    random_state: Any,
    starts: Sequence[tuple[str, int]],
    data_variance: NDArray[np.float64],
    singular_tol: float,
    given: Sequence[dict[str, NDArray[np.float64]]] = (),
) -> _Outcome:
    """Fit one cell from each of ``starts`` ((init method, initialisations) pairs) and from
    each of ``given`` (initial weights, means and precisions), keeping the best
    log-likelihood, and compute its record (runs in a joblib worker or in this process)."""
    n_components, covariance_type = cell
    model: GaussianMixture | None = None
    entropy: float | None = None
    # the last start's error, as text: the exception itself, kept, would hold its traceback's
    # frames (and this one) in a cycle that only the garbage collector frees
    failure = ""
    inits = [params | {"init_params": method, "n_init": n} for method, n in starts]
    # a given start draws nothing and runs no method ('hc' names one that would draw nothing)
    inits += [params | {"init_params": "hc", "n_init": 1} | start for start in given]
    with _grid_context(data_variance):
        for init in inits:
            candidate = GaussianMixture(
                n_components, covariance_type=covariance_type, random_state=random_state, **init
            )
            try:
                candidate_entropy = _fit(candidate, X)
            except DegenerateCovarianceError as exc:
                failure = str(exc)
                continue
            if model is None or candidate.log_likelihood_ > model.log_likelihood_:
                model, entropy = candidate, candidate_entropy
    if model is None:
        return cell, _failed_record(n_components, covariance_type, failure), None
    return cell, _record(model, X, data_variance, singular_tol, entropy), model


def _polish_cell(
    X: Any,
    cell: tuple[int, str],
    model: GaussianMixture,
    tol: float,
    data_variance: NDArray[np.float64],
    singular_tol: float,
) -> _Outcome:
    """Run a cell's EM on from where it stopped until the change falls below ``tol`` (EM only
    climbs, so the fit can only improve); its iterations and lower bounds continue the first
    run's."""
    # a shallow copy: the fit below rebinds every fitted attribute (new arrays and lists) and
    # writes into none, so ``model`` stays as it was; deepcopy cost ~30 us a polish
    polished = copy.copy(model)
    # the two parameters as plain attributes (what set_params sets): its look-up of the
    # estimator's signature cost some 30 us a call, two per polish
    polished.warm_start, polished.tol = True, tol
    with _grid_context(data_variance):
        try:
            entropy = _fit(polished, X)
        except DegenerateCovarianceError:  # without reg_covar: a collapse on the way
            rows = X.source.X if isinstance(X, _Rows) else X  # the entropy's pass reads rows
            return cell, _record(model, rows, data_variance, singular_tol), model
    polished.warm_start, polished.tol = False, model.tol
    polished.n_iter_ += model.n_iter_
    polished.lower_bounds_ = [*model.lower_bounds_, *polished.lower_bounds_]
    return cell, _record(polished, X, data_variance, singular_tol, entropy), polished


@contextmanager
def _as_mclust(data_variance: NDArray[np.float64]) -> Iterator[None]:
    """mclust's arithmetic for select's fits: with reg_covar = 0 a zero variance is singular
    (lean.py), and so is an M-step's numerically singular covariance (mstep.py)."""
    with zero_variance_is_singular(), singular_fails(data_variance):
        yield


# the data variance of the grid whose fits' context (``_grid_context``) is entered already
_IN_GRID: ContextVar[NDArray[np.float64] | None] = ContextVar("gaussmix_in_grid", default=None)


@contextmanager
def _grid_context(data_variance: NDArray[np.float64]) -> Iterator[None]:
    """The context of a grid's fits, ``_quiet``, ``_as_mclust`` and ``init.shared_starts``
    (the grid's rows are not written): entered once for all the fits that run in this
    process (``_run``), where each fit's own entering found it there
    (some 8 us a fit, against 150-250 us for a fit of a small data set's grid); a fit in a
    worker process enters it itself."""
    if _IN_GRID.get() is data_variance:
        yield
        return
    with _quiet(), _as_mclust(data_variance), shared_starts():
        token = _IN_GRID.set(data_variance)
        try:
            yield
        finally:
            _IN_GRID.reset(token)


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        # reported once for the whole grid by ``select``, from ``converged_``
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ComponentCollapseWarning)
        warnings.simplefilter("ignore", InnerIterationWarning)  # a capped inner M-step
        yield


# select's default starts: mclust's hierarchical one, and k-means on standardised columns
MCLUST_STARTS = "hc+kmeans"
# methods whose every start is the same for one component (all rows in one cluster)
_ONE_CLUSTER_STARTS = {MCLUST_STARTS, "hc", "kmeans", "kmeans_standardised"}
# with the default starts, the k-means ones go to this many best cells of the grid
REFINE = 8
# the fits whose criterion is within this of the best one's are run on to ``polish_tol``
POLISH_MARGIN = 10.0
# above mclust's subset size (with two or more features): the cells of the contest, and its
# starts per k-means method (raw and standardised columns), each run to ``polish_tol``
CONTENDERS = 3
CONTEST_STARTS = 4


def _first_starts(init_params: str, n_init: int, n_components: int) -> list[tuple[str, int]]:
    """(init method, initialisations) that every cell runs: ``MCLUST_STARTS`` is the
    hierarchical start alone (the k-means ones come after, ``_extra_starts``); any other method
    ``n_init`` times. With one component the default methods' starts coincide: one runs."""
    if init_params == MCLUST_STARTS:
        return [("hc", 1)]
    if n_components == 1 and init_params in _ONE_CLUSTER_STARTS:
        return [(init_params, 1)]
    return [(init_params, n_init)]


def _extra_starts(
    init_params: str, n_init: int, n_components: int, n_features: int
) -> list[tuple[str, int]]:
    """The further starts of ``MCLUST_STARTS``, run only for the cells ``_to_refine`` picks:
    n_init - 1 k-means on standardised columns; on one feature mclust's own start there,
    its quantile classes (``init.quantile_classes``), once (it draws nothing)."""
    if init_params != MCLUST_STARTS or n_init < 2 or n_components == 1:
        return []
    if n_features == 1:
        return [("quantile", 1)]
    return [("kmeans_standardised", n_init - 1)]


def _contest_starts(
    init_params: str, n_init: int, n_components: int, n_samples: int, n_features: int
) -> list[tuple[str, int]]:
    """The starts of the contest (module docstring, "The grid", 5): with the default starts
    and two or more features, above ``hc.HC_MAX_ROWS`` rows (where mclust grows its tree on a
    random subset of them), ``CONTEST_STARTS`` k-means on raw and as many on standardised
    columns; none otherwise."""
    if n_samples <= HC_MAX_ROWS or n_features == 1:
        return []
    if not _extra_starts(init_params, n_init, n_components, n_features):
        return []
    return [("kmeans", CONTEST_STARTS), ("kmeans_standardised", CONTEST_STARTS)]


def _start_from(model: GaussianMixture, covariance_type: str) -> dict[str, Any] | None:
    """The start a fit of ``covariance_type`` takes from another model's fit of the same K (the
    contest's, module docstring): that model's M-step on the fit's components, each held by
    2 x D points sharing its weight whose mean and covariance are the component's (mu_k +-
    sqrt(D) times each column of a Cholesky factor of Sigma_k), so no pass over the rows.
    None where that M-step (or the factor) fails."""
    k, d = model.means_.shape
    matrices = get_covariance(model.covariance_type).per_component(model.covariances_, k, d)
    try:
        factors = np.linalg.cholesky(matrices)
        offsets = math.sqrt(d) * np.swapaxes(factors, 1, 2)  # (K, D, D): the columns as rows
        spread = np.concatenate([offsets, -offsets], axis=1)  # (K, 2D, D)
        points = (model.means_[:, None, :] + spread).reshape(-1, d)
        labels = np.repeat(np.eye(k), 2 * d, axis=0)
        weights = np.repeat(model.weights_, 2 * d)
        w, means, covariances = mstep_from_resp(points, labels, covariance_type, 0.0, weights)
        target = get_covariance(covariance_type)
        precisions = target.precisions(target.precisions_cholesky(covariances))
    except (np.linalg.LinAlgError, GaussmixError):  # DegenerateCovarianceError among them
        return None
    return {"weights_init": w, "means_init": means, "precisions_init": precisions}


def _to_refine(
    records: Iterable[FitRecord], criterion: str, refine: int | None
) -> list[tuple[int, str]]:
    """The cells that get the extra starts: the ``refine`` best of the grid with K >= 2 by the
    criterion of their first start, eligible fits before degenerate or failed ones; None:
    every cell with K >= 2."""
    ranked = sorted(
        (r for r in records if r.n_components > 1),
        key=lambda r: (not r.eligible, _finite_or_inf(r.value(criterion))),
    )
    return [(r.n_components, r.covariance_type) for r in ranked[:refine]]


def _preferred(record: FitRecord) -> tuple[bool, float]:
    """Which of two fits of a cell is kept: an eligible one before a degenerate or failed one
    (a start that collapses does not replace one that does not), then the higher
    log-likelihood."""
    log_lik = record.log_likelihood
    return record.eligible, log_lik if math.isfinite(log_lik) else -math.inf


def _finite_or_inf(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def _distinct_fit(covariance_type: str, n_components: int, n_features: int) -> str:
    """The model whose fit is this one's, so that a grid fits it once.

    mclust's names say, letter by letter, whether the volume, shape and orientation of the
    components vary (V), are equal (E) or are the identity (I). With one feature there is no
    shape or orientation: every model is E or V (mclust fits only those). With one component
    nothing can vary or be equal: what is left is whether the matrix is spherical (VII),
    diagonal (VVI) or full (VVV), and with one feature too, the one variance (V). The counts of
    free parameters agree (mclust's nMclustParams); each name keeps its own, from the registry.
    """
    name = get_covariance(covariance_type).mclust
    if n_features == 1:
        return "V" if n_components == 1 else canonical_name(name[0])
    if n_components == 1:
        return canonical_name("VII" if name.endswith("II") else "VVI" if name[-1] == "I" else "VVV")
    return canonical_name(covariance_type)


def _as_type(model: GaussianMixture, covariance_type: str) -> GaussianMixture:
    """The fitted ``model`` under the name of a model it coincides with (``_distinct_fit``):
    the same numbers, in that model's layout (one component's matrix, or one variance per
    component, whatever the layout)."""
    if model.covariance_type == covariance_type:
        return model
    source, target = get_covariance(model.covariance_type), get_covariance(covariance_type)
    n_components, n_features = model.means_.shape
    twin = copy.copy(model)
    twin.covariance_type = covariance_type
    for attr in ("covariances_", "precisions_", "precisions_cholesky_"):
        per = np.asarray(getattr(model, attr)).reshape(
            1 if source.shared_layout else n_components, -1
        )
        if target.shared_layout:  # equal for every component: one is the shared one
            per = per[:1]
        setattr(twin, attr, per.reshape(target.shape(n_components, n_features)))
    return twin


def _as_record(record: FitRecord, model: GaussianMixture | None, covariance_type: str) -> FitRecord:
    """A coinciding model's record: the same fit, that model's name and parameter count."""
    cov = get_covariance(covariance_type)
    if cov.name == record.covariance_type:
        return record
    if model is None:
        return replace(record, covariance_type=cov.name, mclust=cov.mclust)
    p = free_parameters(cov, *model.means_.shape)
    n = model.n_samples_fit_
    bic = -2.0 * record.log_likelihood + p * math.log(n)
    return replace(
        record,
        covariance_type=cov.name,
        mclust=cov.mclust,
        n_parameters=p,
        bic=bic,
        aic=-2.0 * record.log_likelihood + 2.0 * p,
        icl=bic + 2.0 * record.entropy,
    )


def _near_the_best(records: Iterable[FitRecord], criterion: str) -> list[tuple[int, str]]:
    """The eligible cells whose criterion is within ``POLISH_MARGIN`` of the best eligible one."""
    eligible = [r for r in records if r.eligible]
    if not eligible:
        return []
    best = min(r.value(criterion) for r in eligible)
    return [
        (r.n_components, r.covariance_type)
        for r in eligible
        if r.value(criterion) <= best + POLISH_MARGIN
    ]


# Worker processes cost about 1-2 s to start (joblib's loky, measured on this project's
# machine); below this many rows x features a grid runs in this process (``select``'s n_jobs).
PROCESSES_MIN_SIZE = 20_000


def _jobs(n_jobs: int | None, n_samples: int, n_features: int) -> int:
    """Worker processes for the grid: n_jobs as joblib reads it (-1: every core), 1 meaning in
    this process; None chooses by the size of the data."""
    if n_jobs is not None:
        return int(n_jobs)
    return 1 if n_samples * n_features < PROCESSES_MIN_SIZE else -1


def _run(
    tasks: Sequence[tuple[Callable[..., _Outcome], tuple[Any, ...]]],
    jobs: int,
    in_memory: bool = True,
    data_variance: NDArray[np.float64] | None = None,
) -> Iterator[_Outcome]:
    """Each task's outcome as it finishes: in this process (jobs == 1; for rows in memory
    with every native pool held at one thread for all the fits, as each fit would hold it;
    in the grid's context, ``_grid_context`` of ``data_variance``, when given, for all of
    them), else in joblib's worker processes."""
    if jobs == 1:
        grid = nullcontext() if data_variance is None else _grid_context(data_variance)
        with one_thread() if in_memory else nullcontext(), grid:
            for fn, args in tasks:
                yield fn(*args)
        return
    if not tasks:
        return
    parallel = Parallel(n_jobs=jobs, prefer="processes", return_as="generator_unordered")
    yield from parallel(delayed(fn)(*args) for fn, args in tasks)


def expand_covariance_types(names: str | Iterable[str], n_features: int) -> list[str]:
    """The registry names of a grid's covariance types: ``'all'`` is mclust's fourteen models
    (its two, E and V, for one feature); other names are canonicalised, duplicates dropped."""
    listed = [names] if isinstance(names, str) else list(names)
    if not listed:
        raise ValueError("covariance_types is empty; give at least one, e.g. 'full' or 'all'")
    types: list[str] = []
    for name in listed:
        if name == "all":
            expanded = list(UNIVARIATE_MODELS if n_features == 1 else MCLUST_MODELS)
        else:
            expanded = [name]
        for one in expanded:
            canonical = canonical_name(one)
            if canonical not in types:
                types.append(canonical)
    return types


def _check_grid(
    n_components: int | Iterable[int], covariance_types: str | Iterable[str], n_features: int
) -> tuple[list[int], list[str]]:
    ks = [int(n_components)] if isinstance(n_components, (int, np.integer)) else list(n_components)
    if not ks:
        raise ValueError("n_components is empty; give at least one number of components")
    for k in ks:
        if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"n_components must hold integers >= 1; got {k!r}")
    ks = sorted({int(k) for k in ks})
    return ks, expand_covariance_types(covariance_types, n_features)


def _cost(cell: tuple[int, str], n_features: int) -> tuple[int, int]:
    # largest K and richest covariance first, so that the last task to finish is a short one
    return (-cell[0], -get_covariance(cell[1]).n_parameters(cell[0], n_features))


def select(
    X: ArrayLike,
    n_components: int | Iterable[int] = range(1, 10),
    covariance_types: str | Iterable[str] = "all",
    criterion: str = "bic",
    *,
    n_init: int = 2,
    tol: float = 1e-5,
    convergence: str = "relative",
    max_iter: int = 1000,
    reg_covar: float = 0.0,
    init_params: str = MCLUST_STARTS,
    refine: int | None = REFINE,
    polish_tol: float | None = 1e-7,
    missing: str = "error",
    random_state: int | np.random.RandomState | None = None,
    singular_tol: float | None = None,
    n_jobs: int | None = None,
    progress: Callable[[FitRecord], None] | None = None,
    prior: Prior | str | None = None,
) -> SelectionResult:
    """Fit a Gaussian mixture for every (K, covariance type) of a grid and choose one.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data (an array, a DataFrame or a ``numpy.memmap``), or a ``dask.array.Array`` or
        ``dask.dataframe.DataFrame``: then the rows stay on the Dask cluster, every fit's
        passes run there, and the cells run one after another (``gaussmix.selection_dask``).
    n_components : int or iterable of int, default=range(1, 10)
        The numbers of components K to try.
    covariance_types : str or iterable of str, default='all'
        The covariance structures to try, by scikit-learn or mclust name; 'all' is mclust's
        fourteen models EII ... VVV (E and V for one feature).
    criterion : {'bic', 'icl', 'aic'}, default='bic'
        What chooses ``best``: lowest BIC, ICL or AIC (scikit-learn's sign).
    n_init : int, default=2
        Starts per fit, the best log-likelihood kept. With the default ``init_params`` every
        cell has mclust's hierarchical start and the ``refine`` best cells n_init - 1 more,
        k-means on standardised columns (on one feature: one more, mclust's quantile classes)
        (module docstring, "The grid").
    tol : float, default=1e-5
        Convergence threshold of EM; what it bounds is ``convergence``'s.
    convergence : {'relative', 'mean'}, default='relative'
        'relative': mclust's rule, |L_t - L_{t-1}| / (1 + |L_t|) < tol with L the total
        log-likelihood (mclust's default tol is 1e-5 too); 'mean': the change of the mean
        log-likelihood per row, as ``GaussianMixture``'s default.
    max_iter : int, default=1000
        EM iterations per initialisation.
    reg_covar : float, default=0
        Added to the diagonal of every covariance; none by default, as in mclust: a fit whose
        covariance becomes singular fails, and its cell is NA (module docstring).
    init_params : str, default='hc+kmeans'
        How initial responsibilities are drawn: 'hc+kmeans' as for ``n_init``, or one method of
        ``GaussianMixture`` for all ``n_init`` starts of every cell. With one component every
        start of 'hc+kmeans', 'hc' and the k-means ones is the same, and one is run.
    refine : int or None, default=8
        With 'hc+kmeans', the number of cells (K >= 2) that get the k-means starts: the best by
        ``criterion`` after the hierarchical start, eligible fits first; None: every cell.
    polish_tol : float or None, default=1e-7
        The fits whose criterion is within 10 of the best eligible one run on (EM from where
        they stopped, same rule) until the change is below polish_tol, so that the choice is
        made between converged fits; None: not. Above ``hc.HC_MAX_ROWS`` rows, with two or
        more features and the default starts, the refined cells all run on, and the best few
        are fitted again from more starts, each run to polish_tol (the contest, module
        docstring).
    missing : {'error', 'em'}, default='error'
        NaN entries: an error, or missing values every fit integrates out (see
        ``GaussianMixture``).
    random_state : int, RandomState instance or None, default=None
        An int gives every cell the same seed (results do not depend on the order in which
        cells run); a RandomState draws one seed per cell before any fit starts.
    singular_tol : float or None, default=None
        Threshold of the degeneracy rule (module docstring): a fit whose covariance without
        reg_covar has a variance <= singular_tol times the data's, in some direction, is
        marked degenerate and never chosen. None: ``SINGULAR_TOL`` (1e-8) with a positive
        reg_covar, ``SINGULAR_TOL_UNREGULARISED`` (1e-13, near rounding) without.
    n_jobs : int or None, default=None
        Worker processes for the grid (joblib): -1 uses every core, 1 runs in this process.
        None: in this process when rows x features < ``PROCESSES_MIN_SIZE`` (starting the
        workers would cost more than they save), else every core; always 1
        for rows on Dask, whose workers are the parallelism.
    progress : callable, default=None
        Called in this process with each cell's ``FitRecord`` when its first fit finishes
        (in any order); the k-means starts and the polish may improve a few afterwards.
    prior : None, 'mclust' or a ``gaussmix.Prior``, default=None
        mclust's conjugate prior for every fit (``GaussianMixture``'s ``prior``), made for each
        cell's model and K as mclust's ``defaultPrior`` does; the criteria use the
        log-likelihood at the posterior mode, as mclust's BIC with a prior does.

    Returns
    -------
    SelectionResult
        ``best`` (the chosen fitted GaussianMixture), ``records`` (one FitRecord per cell),
        ``grid(criterion)`` ((len(K), len(types)) array), ``to_dict()``, ``to_pandas()``.

    Raises
    ------
    ValueError
        For an empty or invalid grid, an unknown criterion, fewer rows than the largest K, a
        constant column, or when every fit is degenerate.
    """
    criterion = _check_criterion(criterion)
    if singular_tol is None:
        singular_tol = SINGULAR_TOL if reg_covar > 0 else SINGULAR_TOL_UNREGULARISED
    if not singular_tol >= 0:
        raise ValueError(f"singular_tol must be >= 0; got {singular_tol!r}")
    if convergence not in ("relative", "mean"):
        raise ValueError(f"convergence must be 'relative' or 'mean'; got {convergence!r}")
    if refine is not None and not (isinstance(refine, Integral) and refine >= 0):
        raise ValueError(f"refine must be an integer >= 0 or None; got {refine!r}")
    if polish_tol is not None and not polish_tol >= 0:
        raise ValueError(f"polish_tol must be >= 0 or None; got {polish_tol!r}")
    Xv: Any
    checker = GaussianMixture(missing=missing)  # validates the rows; keeps their column names
    if on_dask(X):  # rows on a Dask cluster, opened once; the cells in turn (selection_dask)
        from gaussmix import selection_dask

        Xv, variance = selection_dask.open_rows(X, missing)
        n_samples, n_features, n_jobs = Xv.n_samples, Xv.n_features, 1
    else:
        Xv = validate_rows(checker, X, reset=True, ensure_min_samples=2, allow_nan=missing == "em")
        n_samples, n_features = Xv.shape
        variance = _data_variance(Xv)
    ks, types = _check_grid(n_components, covariance_types, n_features)
    if ks[-1] > n_samples:
        raise GaussmixError(
            f"the grid goes up to K={ks[-1]} components but the data has only {n_samples} "
            "rows; use fewer components"
        )
    constant = np.flatnonzero(~(variance > 0))
    if constant.size:
        raise GaussmixError(
            f"column {int(constant[0])} of the data is constant; every covariance would be "
            "singular there: drop it"
        )
    if not on_dask(Xv):  # duplicated columns: looked for in memory only
        names = getattr(X, "columns", None)
        warn_degenerate_columns(Xv, None if names is None else [str(c) for c in names])
    params: dict[str, Any] = {
        "n_init": n_init,
        "tol": tol,
        "convergence": convergence,
        "max_iter": max_iter,
        "reg_covar": reg_covar,
        "init_params": init_params,
        "missing": missing,
        "prior": prior,
        "n_threads": 1,  # the grid is the parallel loop: one thread per fit
    }
    # the parameters as every fit would check them (the cells' K and types are checked above),
    # once here: the fits of rows in memory then skip the checks (``_Rows``)
    kinds = {s for k in ks for s in _first_starts(init_params, n_init, k)}
    kinds |= {s for k in ks for s in _extra_starts(init_params, n_init, k, n_features)}
    for method, n in sorted(kinds):
        GaussianMixture(**(params | {"init_params": method, "n_init": n}))._validate_params()
    data: _Rows | Any
    if on_dask(Xv):  # the fits open their rows on the cluster
        data = Xv
    else:  # a DataFrame's column names go to every model
        source = ArraySource(Xv)
        n_missing = check_missing_blocks(source, _BLOCK_ROWS) if missing == "em" else 0
        data = _Rows(source, n_missing, getattr(checker, "feature_names_in_", None))
    cells = [(k, t) for t in types for k in ks]
    seeds: dict[tuple[int, str], Any]
    if random_state is None or isinstance(random_state, Integral):
        seeds = dict.fromkeys(cells, random_state)
    else:
        rng = check_random_state(random_state)
        draws = rng.randint(np.iinfo(np.int32).max, size=len(cells))
        seeds = {cell: int(seed) for cell, seed in zip(sorted(cells), draws, strict=True)}
    # cells that coincide (one component; one feature) are fitted once, from the first one's seed
    twin_of = {cell: (cell[0], _distinct_fit(cell[1], cell[0], n_features)) for cell in cells}
    distinct: dict[tuple[int, str], Any] = {}
    for cell in cells:
        distinct.setdefault(twin_of[cell], seeds[cell])
    jobs = _jobs(n_jobs, n_samples, n_features)
    in_memory = isinstance(data, _Rows)
    fitted: dict[tuple[int, str], tuple[FitRecord, GaussianMixture | None]] = {}

    # a twin cell's record and model, kept with the fit they were made from (the tuple)
    twins: dict[tuple[int, str], tuple[Any, tuple[FitRecord, GaussianMixture | None]]] = {}

    def of_cell(cell: tuple[int, str]) -> tuple[FitRecord, GaussianMixture | None]:
        fit = fitted[twin_of[cell]]
        if twin_of[cell] == cell:  # the cell's own fit
            return fit
        kept = twins.get(cell)
        if kept is None or kept[0] is not fit:
            record, model = fit
            twin = None if model is None else _as_type(model, cell[1])
            kept = twins[cell] = (fit, (_as_record(record, twin, cell[1]), twin))
        return kept[1]

    def fit_tasks(
        chosen: Iterable[tuple[int, str]],
        starts: Callable[[int], list[tuple[str, int]]],
        fit_params: dict[str, Any] = params,
        given: Callable[[tuple[int, str]], list[dict[str, Any]]] = lambda cell: [],
    ) -> list[tuple[Callable[..., _Outcome], tuple[Any, ...]]]:
        ordered = sorted(chosen, key=lambda c: _cost(c, n_features))
        return [
            (
                _fit_cell,
                (data, c, fit_params, distinct[c], starts(c[0]), variance, singular_tol, given(c)),
            )
            for c in ordered
            if starts(c[0])
        ]

    def from_the_others(cell: tuple[int, str]) -> list[dict[str, Any]]:
        """The starts a cell takes from the fits of the other models of its K."""
        others = [of_cell((cell[0], t))[1] for t in types if t != cell[1]]
        starts = [_start_from(m, cell[1]) for m in others if m is not None]
        return [start for start in starts if start is not None]

    def keep_the_better(tasks: list[tuple[Callable[..., _Outcome], tuple[Any, ...]]]) -> None:
        for cell, record, model in _run(tasks, jobs, in_memory, variance):
            if _preferred(record) > _preferred(fitted[cell][0]):
                fitted[cell] = (record, model)

    # 1. every distinct fit from its first start (mclust's hierarchical one by default)
    first = fit_tasks(distinct, lambda k: _first_starts(init_params, n_init, k))
    for cell, record, model in _run(first, jobs, in_memory, variance):
        fitted[cell] = (record, model)
        if progress is not None:
            for grid_cell in cells:
                if twin_of[grid_cell] == cell:
                    progress(of_cell(grid_cell)[0])
    # 2. the k-means starts, for the best few cells (``_to_refine``)
    chosen = {twin_of[c] for c in _to_refine([of_cell(c)[0] for c in cells], criterion, refine)}
    extra = fit_tasks(chosen, lambda k: _extra_starts(init_params, n_init, k, n_features))
    refined = {task[1][1] for task in extra}
    keep_the_better(extra)

    def contest(k: int) -> list[tuple[str, int]]:
        return _contest_starts(init_params, n_init, k, n_samples, n_features)

    # 3. the fits near the best run on, so that the choice is made between converged fits
    contested_grid = polish_tol is not None and bool(contest(2))
    polished: set[tuple[int, str]] = set()
    if polish_tol is not None:
        near = {twin_of[c] for c in _near_the_best([of_cell(c)[0] for c in cells], criterion)}
        if contested_grid:  # the values as EM stopped say little here: every refined cell
            near |= refined
        polish = [
            (_polish_cell, (data, c, model, polish_tol, variance, singular_tol))
            for c in sorted(near, key=lambda c: _cost(c, n_features))
            if (model := fitted[c][1]) is not None
        ]
        polished = {task[1][1] for task in polish}
        for cell, record, model in _run(polish, jobs, in_memory, variance):
            fitted[cell] = (record, model)
    # 4. above mclust's subset size, the contest: the best few cells from more starts, each
    # run to polish_tol, so that the starts are compared where they converged
    contested: set[tuple[int, str]] = set()
    if contested_grid:
        best = _to_refine([of_cell(c)[0] for c in cells], criterion, CONTENDERS)
        chosen = {twin_of[c] for c in best}
        tasks = fit_tasks(chosen, contest, params | {"tol": polish_tol}, from_the_others)
        contested = {task[1][1] for task in tasks}
        keep_the_better(tasks)
        polished |= contested
    results = {cell: of_cell(cell) for cell in cells}
    records = [results[cell][0] for cell in cells]
    models = {cell: pair[1] for cell, pair in results.items()}
    not_converged = [r.model_name for r in records if r.error is None and not r.converged]
    if not_converged:
        warnings.warn(
            f"{len(not_converged)} of {len(records)} fits did not converge within "
            f"max_iter={max_iter} ({', '.join(not_converged)}); increase max_iter or tol",
            ConvergenceWarning,
            stacklevel=2,
        )
    return SelectionResult(
        records,
        models,
        criterion=criterion,
        n_components=ks,
        covariance_types=types,
        n_samples=n_samples,
        n_features=n_features,
        singular_tol=singular_tol,
        n_distinct=len(distinct),
        refined=[cell for cell in cells if twin_of[cell] in refined],
        polished=[cell for cell in cells if twin_of[cell] in polished],
        contested=[cell for cell in cells if twin_of[cell] in contested],
    )
