"""The EM iteration, independent of where the rows come from.

One iteration is one pass of ``chunk_stats`` over the data source, folded with ``merge``, then the
pure M-step. The lower bound of iteration t is the mean log-likelihood of the parameters *before*
its M-step, as in scikit-learn, so ``lower_bounds`` is non-decreasing for exact EM.

A small in-memory data set takes the lean pass instead (``lean.py``): the same statistics from
one call per iteration, its rows and buffers prepared once per fit; where the C loops take
the model's M-step (on one feature the models E and V, elsewhere a model whose M-step is C's,
without a prior) the iterations run in one C call, and this loop does only those the C loop
hands it (an error to raise, a collapsed component to re-seed, an M-step that declines).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial, reduce

import numpy as np
from numpy.typing import NDArray

from gaussmix.data.sources import DataSource
from gaussmix.em.errors import ComponentCollapseWarning, DegenerateCovarianceError
from gaussmix.em.lean import WholeLoop, lean_pass, whole_loop
from gaussmix.em.missing import block_stats, regroup
from gaussmix.em.mstep import FitMStep
from gaussmix.em.parallel import BlockMap, Workers
from gaussmix.em.params import Params
from gaussmix.em.prior import ResolvedPrior
from gaussmix.em.stats import DType, SuffStats, chunk_stats, merge, zeros
from gaussmix.errors import GaussmixError

# A component whose weight pi_k falls below this has collapsed: it explains no data any more.
COLLAPSED_WEIGHT = 1e-8


@dataclass
class EMResult:
    """Outcome of ``run_em``."""

    params: Params
    lower_bounds: list[float]
    converged: bool
    n_iter: int
    reinitialized: list[tuple[int, int]] = field(default_factory=list)  # (iteration, component)

    @property
    def lower_bound(self) -> float:
        return self.lower_bounds[-1] if self.lower_bounds else -np.inf


def data_stats(
    source: DataSource,
    rows: int,
    params: Params,
    map_blocks: BlockMap = map,
    dtype: DType = np.float64,
    missing: bool = False,
) -> SuffStats:
    """E-step over every block of ``rows`` rows of the source (mapped by ``map_blocks``),
    merged in order. ``missing``: the rows may hold NaN, integrated out (``missing.py``)."""
    if missing:
        parts = map_blocks(
            lambda block: block_stats(block, params, dtype), regroup(source.chunks(rows))
        )
    else:
        parts = map_blocks(
            lambda block: chunk_stats(block[0], params, block[1], dtype), source.chunks(rows)
        )
    return reduce(merge, parts, zeros(params))


def _share_stats(
    rows: int,
    params: Params,
    dtype: DType,
    missing: bool,
    share: DataSource,
    map_blocks: BlockMap,
) -> SuffStats:
    return data_stats(share, rows, params, map_blocks, dtype, missing)


def pass_stats(
    workers: Workers,
    rows: int,
    params: Params,
    dtype: DType = np.float64,
    missing: bool = False,
) -> SuffStats:
    """E-step over every share of the rows (``parallel.workers``), merged in row order."""
    task = partial(_share_stats, rows, params, dtype, missing)
    return workers.fold(task, merge, zeros(params))


def _collapsed(stats: SuffStats) -> NDArray[np.intp]:
    """The components whose weight fell below ``COLLAPSED_WEIGHT``."""
    threshold = COLLAPSED_WEIGHT * stats.n
    # the common case, none below: Python's min of K floats, a third of numpy's time per
    # iteration (min >= threshold leaves no count below it; a NaN first gives NaN, and the
    # exact test below decides)
    if min(stats.nk.tolist(), default=math.inf) >= threshold:
        return _NONE
    return np.flatnonzero(stats.nk < threshold)


_NONE = np.zeros(0, dtype=np.intp)


def reinitialize(params: Params, component: int, stats: SuffStats) -> Params:
    """Re-seed a collapsed component at the worst-explained row, with a pooled covariance."""
    cov = params.covariance
    covariances = params.covariances
    value = cov.pooled(covariances, params.weights)
    covariances = cov.replace(covariances, component, value)
    means = params.means.copy()
    means[component] = stats.worst_x
    weights = params.weights.copy()
    weights[component] = 1.0 / params.n_components
    weights /= weights.sum()
    return Params(weights, means, cov.precisions_cholesky(covariances), cov, covariances)


def run_em(
    workers: Workers,
    rows: int,
    params: Params,
    *,
    tol: float,
    max_iter: int,
    reg_covar: float,
    callback: Callable[[int, float], None] | None = None,
    dtype: DType = np.float64,
    lower_bound: float = -np.inf,
    missing: bool = False,
    prior: ResolvedPrior | None = None,
    relative: bool = False,
    done: Sequence[float] = (),
    pending: SuffStats | None = None,
    declined: bool = False,
) -> EMResult:
    """Iterate EM from ``params`` until the lower bound changes by less than ``tol``.

    Parameters
    ----------
    workers : where the passes over the rows run (``parallel.workers``; ``parallel.InProcess``
        for a source in this process alone).
    rows : rows per block.
    params : initial parameters.
    tol : convergence threshold on the change of the mean log-likelihood (or, ``relative``,
        on its relative change).
    max_iter : maximum number of iterations (0 returns ``params`` unchanged).
    reg_covar : added to the diagonal of every covariance.
    callback : called as callback(iteration, lower_bound) after every iteration.
    dtype : the kernel's compute dtype (float64, or float32 for its GEMMs).
    lower_bound : what the first iteration's lower bound is compared with: -inf, or for a warm
        start the previous fit's (as scikit-learn does, so a converged model refitted with
        max_iter=1 converges).
    missing : the rows may hold NaN (missing entries), integrated out exactly; the lower
        bound is then the observed-data log-likelihood (``missing.py``).
    prior : a conjugate prior (``prior.py``): MAP-EM; the lower bound stays the
        log-likelihood (mclust's loglik), and the log posterior is what never decreases.
    relative : mclust's stopping rule (its ``emControl``): stop when
        |L_t - L_{t-1}| / (1 + |L_t|) < tol, L the total log-likelihood n * lower bound, so
        that the threshold does not depend on the number of rows or the units of the data.
    done : the lower bounds of the iterations that led to ``params`` already (a whole fit in C,
        ``lean.WholeFit``, that handed the next one back): the fit goes on as if this loop had
        run them, the last one the bound the next is compared with.
    pending : with ``done``, the E-step's statistics at ``params`` that C computed for the
        iteration it handed back (that iteration is then this loop's, from them), and
        ``declined`` whether its M-step declined it (the later ones are then this loop's too).
    """
    history: list[float] = list(done)
    reinitialized: list[tuple[int, int]] = []
    converged = False
    n_iter = len(history)
    if history:
        lower_bound = history[-1]
    lean = lean_pass(workers, params, dtype, missing, reg_covar) if max_iter > 0 else None
    step: FitMStep | None = None  # made when this loop's first M-step needs it
    whole = whole_loop(lean, params, prior)
    if pending is not None and isinstance(whole, WholeLoop):
        whole.declined = declined  # as the whole loop would have set it, handing back
    while n_iter < max_iter:
        if whole is not None and pending is None:  # iterations in one C call (lean.py)
            run = whole(
                params, lower_bound=lower_bound, max_iter=max_iter - n_iter, tol=tol,
                reg_covar=reg_covar, relative=relative, collapsed=COLLAPSED_WEIGHT,
                n_iter=n_iter,
            )  # fmt: skip
            params, converged = run.params, run.converged
            for lower_bound in run.lower_bounds:
                n_iter += 1
                history.append(lower_bound)
                if callback is not None:
                    callback(n_iter, lower_bound)
            if converged or n_iter == max_iter:
                break
            # else the next iteration is this loop's: its error, or a collapse
        n_iter += 1
        if pending is not None:  # this iteration's E-step, C's already
            stats, pending = pending, None
        elif lean is None:
            stats = pass_stats(workers, rows, params, dtype, missing)
        else:
            stats = lean(params)
        previous, lower_bound = lower_bound, stats.loglik / stats.n
        if not math.isfinite(lower_bound):
            raise GaussmixError(
                "the log-likelihood is not finite; the data may hold extreme values: "
                "try scaling the data or a larger reg_covar"
            )
        history.append(lower_bound)
        if step is None:
            shape = (params.n_components, params.n_features)
            step = FitMStep(params.covariance, shape, reg_covar, prior)
        if isinstance(whole, WholeLoop):  # the fit's M-steps, some C's, as the C loop counts
            step.calls = n_iter - 1
        try:
            new_params = step(stats, params.covariances)
        except DegenerateCovarianceError:
            if np.dtype(dtype) == np.float64:
                raise
            # single-precision sums lost a thin direction: redo this pass in float64
            stats = pass_stats(workers, rows, params, np.float64, missing)
            new_params = step(stats, params.covariances)
        params = new_params
        collapsed = _collapsed(stats)
        if collapsed.size and np.isfinite(stats.worst_loglik):
            k = int(collapsed[np.argmin(stats.nk[collapsed])])
            params = reinitialize(params, k, stats)
            reinitialized.append((n_iter, k))
            warnings.warn(
                f"component {k} collapsed at iteration {n_iter} and was re-initialised at the "
                "worst-explained point",
                ComponentCollapseWarning,
                stacklevel=2,
            )
        if callback is not None:
            callback(n_iter, lower_bound)
        change = abs(lower_bound - previous)
        if relative:  # |L_t - L_{t-1}| / (1 + |L_t|), L = n * lower bound
            change *= stats.n / (1.0 + abs(stats.loglik))
        if change < tol and not (reinitialized and reinitialized[-1][0] == n_iter):
            converged = True
            break
    return EMResult(params, history, converged, n_iter, reinitialized)
