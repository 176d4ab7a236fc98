"""Stepwise (online) EM: the same statistics, blended batch by batch.

Stepwise EM (Cappé and Moulines 2009; Liang and Klein 2009) keeps running statistics s, the
average over the rows seen of what ``chunk_stats`` sums, and on each mini-batch replaces them by

    s_t = (1 - eta_t) s_{t-1} + eta_t s(batch) / n(batch),    eta_t = (t + 2)^(-learning_decay),

then runs the ordinary M-step on s_t. For learning_decay in (0.5, 1] the steps satisfy
sum eta_t = inf and sum eta_t^2 < inf, the conditions under which the iteration converges to a
stationary point of the expected log-likelihood. The batch statistics are the engine's own (a
pass of ``Workers.fold`` over the batch), and the M-step is ``mstep``: nothing here is a second
EM. The statistics are sums about shifts (the means they were taken at), so before blending the
running statistics are moved to the batch's shifts by the covariance type's own identity
(``Covariance.move_second_moment``), as the natural kernel moves its block sums.

With eta = 1 and the whole data as the batch a step is one iteration of batch EM.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gaussmix.em.covariance import Covariance
from gaussmix.em.loop import pass_stats
from gaussmix.em.mstep import mstep
from gaussmix.em.parallel import Workers
from gaussmix.em.params import Params
from gaussmix.em.prior import ResolvedPrior
from gaussmix.em.stats import Array, DType, SuffStats


def step_size(t: int, learning_decay: float) -> float:
    """eta_t = (t + 2)^(-learning_decay) for the t-th update after the first (t = 1, 2, ...)."""
    return float((t + 2.0) ** (-learning_decay))


def moved(stats: SuffStats, covariance: Covariance, shift: Array) -> SuffStats:
    """The same statistics about other shifts (K, D): sx - N e and the moved second moment,
    with e_k = shift_k - c_k."""
    E = shift - stats.shift
    return SuffStats(
        n=stats.n,
        loglik=stats.loglik,
        nk=stats.nk,
        sx=stats.sx - stats.nk[:, None] * E,
        sxx=covariance.move_second_moment(stats.sxx, stats.sx, stats.nk, E),
        shift=shift,
        worst_loglik=stats.worst_loglik,
        worst_x=stats.worst_x,
    )


def blend(
    running: SuffStats | None, batch: SuffStats, eta: float, covariance: Covariance
) -> SuffStats:
    """(1 - eta) running + eta batch / n(batch), about the batch's shifts; the batch's
    averages alone when there is nothing running yet.

    Parameters
    ----------
    running : averages per unit weight (n = 1), or None.  batch : the batch's sums.
    eta : step size in (0, 1].  covariance : the type that moves the second moment.
    """
    scale = 1.0 / batch.n
    if running is None:
        eta, running = 1.0, batch  # weighted by 0 below: only its shift and layout are used
    old = moved(running, covariance, batch.shift)
    keep, take = 1.0 - eta, eta * scale
    return SuffStats(
        n=keep * old.n + take * batch.n,
        loglik=keep * old.loglik + take * batch.loglik,
        nk=keep * old.nk + take * batch.nk,
        sx=keep * old.sx + take * batch.sx,
        sxx=keep * old.sxx + take * batch.sxx,
        shift=batch.shift,
        worst_loglik=batch.worst_loglik,
        worst_x=batch.worst_x,
    )


@dataclass(frozen=True)
class OnlineStep:
    """The outcome of one stepwise-EM update."""

    params: Params
    running: SuffStats  # the blended averages the M-step ran on
    lower_bound: float  # the batch's mean log-likelihood under the parameters before the step


def online_step(
    workers: Workers,
    rows: int,
    params: Params,
    running: SuffStats | None,
    eta: float,
    *,
    reg_covar: float,
    dtype: DType = np.float64,
    prior: ResolvedPrior | None = None,
    rows_seen: float = 1.0,
) -> OnlineStep:
    """One stepwise-EM update on the batch that ``workers`` hold.

    Parameters
    ----------
    workers : the batch's rows (``parallel.workers``).  rows : rows per block.
    params : current parameters.  running : the running averages (None before the first step).
    eta : the step size (``step_size``; ignored for the first step).
    reg_covar : added to the diagonal of every covariance.  dtype : the kernel's compute dtype.
    prior : a conjugate prior (``prior.py``): the M-step is its posterior mode for
        ``rows_seen`` rows of the running averages (the rows seen so far), so that the prior
        weighs against the data as in a fit of those rows.
    """
    batch = pass_stats(workers, rows, params, dtype)
    lower_bound = batch.loglik / batch.n
    if not np.isfinite(lower_bound):
        raise ValueError(
            "the log-likelihood of the batch is not finite; the data may hold extreme values: "
            "try scaling the data or a larger reg_covar"
        )
    blended = blend(running, batch, eta, params.covariance)
    if prior is None:
        new_params = mstep(blended, params.covariance, reg_covar)
    else:  # the averages are per unit weight: as sums of rows_seen rows for the prior
        sums = replace(
            blended,
            nk=blended.nk * rows_seen,
            sx=blended.sx * rows_seen,
            sxx=blended.sxx * rows_seen,
        )
        new_params = mstep(sums, params.covariance, reg_covar, prior=prior)
    return OnlineStep(new_params, blended, lower_bound)
