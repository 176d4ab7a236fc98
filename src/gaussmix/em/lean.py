"""The lean pass: the E-step of a small in-memory data set without the block machinery.

At hundreds to a few thousand rows an iteration's arithmetic takes microseconds, and the
general pass (``loop.pass_stats``: workers, blocks, ``stats.chunk_stats`` with its natural
parameters and some twenty numpy calls, ``merge`` with ``zeros``) is most of its time. So a fit
whose rows are an in-memory array, and whose pass is small (``LEAN_MAX_WORK``), holds its rows
once per fit, as one C-ordered float64 array with its weights, and each pass is

* with the C loops: one call of ``_kernels.c``'s ``estep_rows`` (through ``compiled.RowsPass``,
  which holds the buffers and their addresses), the componentwise kernel over every row:
  centred rows, Mahalanobis distances through the precisions' Cholesky factors, the floored
  softmax, and the statistics about the means in the covariance's layout. The same statistics
  as ``stats.chunk_stats`` to rounding, exact however far apart the components are; no natural
  parameters are formed;
* without them (no compiler, ``GAUSSMIX_COMPILED=0``): ``stats.chunk_stats`` on the one block.

The C call runs without the GIL (ctypes lets go of it for every foreign call), so fits in
threads (``select``'s cells, say) overlap their E-steps; the M-step after it is numpy on
K x D x D numbers and holds the GIL for most of its few tens of microseconds.

On one feature the models E and V (and spherical, EII: the same M-steps there; the registry's
``Covariance.univariate``) go further: their whole fit is one C call (``univariate_em``, a
``UnivariateLoop``), the iterations of ``loop.run_em`` with this pass's E-step and
``mstep.estimate``'s M-step, to the bit, a few microseconds each where the Python loop takes
some forty. It stops before an iteration that needs Python (a lower bound that is not finite,
a variance that is not positive, a collapsed component): ``run_em`` does that iteration itself
and hands the next ones back, so errors, re-initialisations and their warnings are the Python
loop's own. A conjugate prior's posterior mode is the C loop's too; the callback is called
for every iteration after the C call returns.

The other models go the same way where their M-step is C's (``Covariance.compiled_mstep``:
the closed forms' ``mstep_closed``, the iterative and eigen models' ``constrained_mstep``, at
the shapes they take) and there is no prior: a ``WholeLoop`` runs their iterations in one C
call (``whole_em``), this pass's E-step and those M-step functions called one after another
with the parameters in one buffer, and run_em's arithmetic around them in its order, so the
fit is the Python loop's to the bit, at a few microseconds an iteration instead of some
fifteen of Python between the two calls. It hands iterations back to run_em as the univariate
loop does (and also one whose M-step declines or finds a covariance degenerate, or, inside
``mstep.singular_fails``, numerically singular where ``FitMStep`` checks it), and stops
after an iteration whose inner iterations reached their cap, so that the warning is
``constrained.py``'s. A prior's fits keep to run_em's loop (with this pass's E-step).

A fit's final E-step (its log-likelihood, and for ``select`` its classification entropy) is
this pass's C loop too where the pass serves the fit (``final_pass``): one call, the same
numbers as the general pass's to rounding, without its natural parameters and blocks, which
cost a small fit more than all its iterations in C. The C loop's buffers are made when first
needed, so a fit run wholly in C pays for none it does not use. On one feature the final
E-step is the same C function called with the buffers of the fit's ``UnivariateLoop``. The
C loops' buffers are kept per thread and shape (K and model) and pointed at each fit's rows
(``compiled._kept``), so a grid's fits make none.

A fit of ``select``'s grid (``GaussianMixture._fit_validated``) goes one step further: where
its start's M-step, its iterations and its final E-step would each be one of these C calls,
a ``WholeFit`` makes them one (``whole_fit``; on one feature a ``UnivariateFit`` makes them
one after another without the fit's set-up around them), the same functions on the same
numbers, so the same fit to the bit; the Python between them had cost a small fit several
times their arithmetic. Where the path would run Python (a start whose M-step declines or
fails, an iteration handed back) the fit goes back to it at that point.

The pass computes in float64: a fit that asks for the float32 kernel (whose point is the speed
of single-precision GEMMs over many rows) keeps to the general pass. So does a fit with
``reg_covar=0``: there a component on one row has, exactly, a zero variance, which the sums
about each mean give (and the M-step reports as degenerate), while the general pass's sums
about the mixture mean leave a rounding error in its place, a tiny positive variance, as
scikit-learn's arithmetic does; the general pass keeps that behaviour where it is relied on.
Inside ``zero_variance_is_singular()`` (``select``'s fits: mclust's arithmetic, a zero
variance is singular and the cell is NA) the lean pass serves ``reg_covar=0`` too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from gaussmix.data.sources import ArraySource
from gaussmix.em import compiled, constrained
from gaussmix.em.covariance import Covariance
from gaussmix.em.mstep import _NK_FLOOR, FitMStep, singular_scale
from gaussmix.em.parallel import InProcess, Workers
from gaussmix.em.params import Params
from gaussmix.em.prior import ResolvedPrior
from gaussmix.em.stats import EXP_FLOOR, DType, SuffStats, chunk_stats

Array = NDArray[np.float64]

# The lean pass serves a fit while n_samples x K x (D + 1)(D + 2) stays under this (2.1e6:
# some 19,000 rows for D = 2, K = 9; 7,700 for D = 4; 1,700 for D = 10). Measured with
# ``bench_small.py --crossover`` (benchmarks/README.md, full covariances, one thread): up to
# 2e6 the lean pass took 0.13-0.92 of the general one's time per iteration; above 4e6 the
# general pass's GEMMs won some shapes (1.1-1.3x at K = 9, D = 5 and 10), and it can use
# every core where the lean pass is one call on one.
LEAN_MAX_WORK = 2**21
# False keeps the univariate models' fits in run_em's Python loop (benchmarks, tests)
UNIVARIATE_IN_C = True
# False keeps the other fits' iterations in run_em's Python loop (benchmarks, tests)
WHOLE_LOOP_IN_C = True
_FLOOR = float(EXP_FLOOR[np.dtype(np.float64)])


def lean_work(n_samples: int, n_components: int, n_features: int) -> int:
    """The size of one lean pass: rows x components x (D + 1)(D + 2), about the multiply-adds
    of its Mahalanobis distances and second moments."""
    return n_samples * n_components * (n_features + 1) * (n_features + 2)


class LeanPass:
    """One fit's lean pass over the rows X (n, D) with weights (n,) or None: calling it with
    the parameters gives the statistics of all rows about the means (``stats.SuffStats``)."""

    def __init__(self, X: Array, weights: Array | None, cov: Covariance, n_components: int) -> None:
        k, d = n_components, X.shape[1]
        self.X, self.weights = X, weights
        self.layout, self.shape = cov.layout, cov.shape(k, d)
        self.k, self.means_shape = k, (k, d)
        # whether the pass is the C loop's (``rows``, made on first use: a fit whose iterations
        # all run in a whole-fit C loop never calls this pass)
        self.in_c = compiled.loaded()
        size = math.prod(self.shape)
        # where each statistic sits in the C loop's flat result
        self.sx = slice(k, k + k * d)
        self.sxx = slice(k + k * d, k + k * d + size)

    @cached_property
    def rows(self) -> compiled.RowsPass | None:
        """The C loop's pass over the rows, or None without the C loops: this thread's kept
        one of the shape (``compiled.rows_pass``), so each call binds it to these rows."""
        return compiled.rows_pass(self.X, self.weights, self.layout, self.means_shape, self.shape)

    def __call__(self, params: Params) -> SuffStats:
        rows = self.rows
        if rows is None:
            return chunk_stats(self.X, params, self.weights)
        rows = rows.bind(self.X, self.weights)
        out = rows(params.means, params.weights, params.precisions_cholesky, _FLOOR)
        return self.statistics(out, params.means)

    def statistics(self, out: Array, means: Array) -> SuffStats:
        """The statistics about ``means`` of the C pass's flat output ``out`` (its own array:
        the statistics are views of it)."""
        loglik, count, worst, row = out[-4:].tolist()
        return SuffStats(
            n=count,
            loglik=loglik,
            nk=out[: self.k],
            sx=out[self.sx].reshape(self.means_shape),
            sxx=out[self.sxx].reshape(self.shape),
            shift=means,
            worst_loglik=worst,
            worst_x=self.X[int(row)],  # a view: the pass's rows are never written
        )


_ZERO_VARIANCE_IS_SINGULAR: ContextVar[bool] = ContextVar(
    "gaussmix_zero_variance_is_singular", default=False
)


@contextmanager
def zero_variance_is_singular() -> Iterator[None]:
    """Fits inside take the lean pass with ``reg_covar=0`` too, whose exact sums about each
    mean make a component on one row singular (the fit fails) where the general pass's
    rounding leaves it a tiny variance (module docstring)."""
    token = _ZERO_VARIANCE_IS_SINGULAR.set(True)
    try:
        yield
    finally:
        _ZERO_VARIANCE_IS_SINGULAR.reset(token)


def lean_pass(
    workers: Workers, params: Params, dtype: DType, missing: bool, reg_covar: float
) -> LeanPass | None:
    """The lean pass for a fit, or None when the general pass serves it: rows not in one
    in-memory array of this process, missing entries, the float32 kernel, no ``reg_covar``,
    or a pass above ``LEAN_MAX_WORK``."""
    if not isinstance(workers, InProcess):
        return None
    rows = lean_rows(workers.source, params.n_components, dtype, missing, reg_covar)
    return None if rows is None else LeanPass(*rows, params.covariance, params.n_components)


def lean_rows(
    source: object, n_components: int, dtype: DType, missing: bool, reg_covar: float
) -> tuple[Array, Array | None] | None:
    """The rows (C-ordered float64) and weights of a fit in this process that the lean pass
    serves (``lean_pass``, whose conditions but the workers' these are), else None."""
    if missing or np.dtype(dtype) != np.float64:
        return None
    if not (reg_covar > 0.0 or _ZERO_VARIANCE_IS_SINGULAR.get()):  # see the module docstring
        return None
    if not isinstance(source, ArraySource) or not isinstance(source.X, np.ndarray):
        return None
    n, d = source.X.shape
    if n == 0 or lean_work(n, n_components, d) > LEAN_MAX_WORK:
        return None
    X = np.ascontiguousarray(source.X, dtype=np.float64)
    weights = source.sample_weight
    if weights is not None:
        weights = np.ascontiguousarray(weights, dtype=np.float64)
    return X, weights


def final_pass(
    workers: Workers, params: Params, dtype: DType, missing: bool, reg_covar: float
) -> tuple[float, float] | None:
    """A fit's final E-step in the lean pass's C loop, where the lean pass serves the fit
    (``lean_pass``'s arguments): the log-likelihood sum_n w_n log p(x_n) of ``params`` and
    the classification entropy -sum_n sum_k t_nk log t_nk of their responsibilities (rows
    unweighted), as ``mixture.py``'s general pass gives them, to rounding, in one call
    instead of the natural kernel's set-up and passes; None where the general pass serves."""
    lean = lean_pass(workers, params, dtype, missing, reg_covar)
    if lean is None or not lean.in_c:
        return None
    cov = params.covariance
    if params.n_features == 1 and cov.univariate is not None and UNIVARIATE_IN_C:
        # this thread's C loop of the fit's K and model (``compiled.univariate_em``)
        loop = compiled.univariate_em(
            lean.X, lean.weights, params.n_components, cov.univariate == "E"
        )
        if loop is not None:
            return loop.loglik_and_entropy(
                params.means[:, 0], params.weights, params.precisions_cholesky, _FLOOR
            )
    if lean.rows is None:
        return None
    return lean.rows.bind(lean.X, lean.weights).loglik_and_entropy(
        params.means, params.weights, params.precisions_cholesky, _FLOOR
    )


@dataclass(frozen=True)
class WholeRun:
    """What a ``UnivariateLoop`` or ``WholeLoop`` call did: the parameters after its last
    finished iteration, the lower bounds of those iterations, and whether the last converged
    (else it stopped at max_iter, or before an iteration that is Python's: then fewer than
    max_iter are done)."""

    params: Params
    lower_bounds: list[float]
    converged: bool


class UnivariateLoop:
    """The whole EM loop of one 1-D fit of a model with ``Covariance.univariate`` set, over a
    lean pass's rows (n, 1), in one C call (``compiled.UnivariateEM``)."""

    def __init__(self, lean: LeanPass, params: Params, prior: ResolvedPrior | None) -> None:
        cov, k = params.covariance, params.n_components
        terms = None
        if prior is not None:
            # the prior's scale per component and added count, as the registry's prior_terms
            # gives them (with nothing pulled towards its mean)
            scale, count = cov.prior_terms(prior, np.zeros(k), np.zeros((k, 1)))
            terms = np.array([prior.shrinkage, prior.mean[0], scale[0], count[0]])
        equal = cov.univariate == "E"
        loop = compiled.univariate_em(lean.X, lean.weights, k, equal, terms)
        if loop is None:  # pragma: no cover - univariate_loop asks for the C loops first
            raise RuntimeError("the C loops are not built")
        self.loop = loop

    def __call__(
        self,
        params: Params,
        *,
        lower_bound: float,
        max_iter: int,
        tol: float,
        reg_covar: float,
        relative: bool,
        collapsed: float,
        n_iter: int = 0,
    ) -> WholeRun:
        """Iterate from ``params``; the arguments are ``loop.run_em``'s (``collapsed`` its
        ``COLLAPSED_WEIGHT``, ``n_iter`` its iterations so far, which this loop does not need)."""
        loop = self.loop
        status, history = loop(
            params.means[:, 0],
            params.weights,
            params.precisions_cholesky,
            reg_covar=reg_covar,
            nk_floor=_NK_FLOOR,
            collapsed=collapsed,
            tol=tol,
            relative=relative,
            max_iter=max_iter,
            floor=_FLOOR,
            previous=lower_bound,
        )
        if history.size == 0:  # the first iteration is Python's
            return WholeRun(params, [], False)
        done = Params(
            weights=loop.mixing.copy(),
            means=loop.means.reshape(-1, 1).copy(),
            precisions_cholesky=loop.precision.copy(),
            covariance=params.covariance,
            stored_covariances=loop.variances.copy(),
        )
        return WholeRun(done, history.tolist(), status == 1)


def univariate_loop(
    lean: LeanPass | None, params: Params, prior: ResolvedPrior | None
) -> UnivariateLoop | None:
    """The whole-fit C loop for a fit whose E-step is the lean pass ``lean`` (its C loop), on
    one feature, of a model the registry gives a univariate M-step (with a conjugate prior
    or none); else None (``run_em``'s Python loop)."""
    if lean is None or not lean.in_c or not _univariate(params.covariance, params.n_features):
        return None
    return UnivariateLoop(lean, params, prior)


def _univariate(covariance: Covariance, n_features: int) -> bool:
    """Whether the univariate C loop takes this model's fits: one feature, a model the
    registry gives a univariate M-step, and the loop switched on (``UNIVARIATE_IN_C``)."""
    return n_features == 1 and covariance.univariate is not None and UNIVARIATE_IN_C


class WholeLoop:
    """The whole EM loop of one fit of a model whose M-step is C's (``Covariance.compiled_mstep``)
    over a lean pass's rows, in one C call (``compiled.WholeEM``): the iterations of
    ``loop.run_em`` with this pass's E-step and ``mstep.FitMStep``'s M-step, to the bit. An
    iterative M-step that stops at its cap is warned about here, as ``constrained.py`` warns,
    and the loop goes on."""

    def __init__(self, loop: compiled.WholeEM, model: str, lean: LeanPass) -> None:
        # the loop is this thread's kept one of the shape (``compiled.whole_em``), bound to the
        # lean pass's rows, which this keeps alive
        self.loop, self.model, self.lean = loop, model, lean
        # set when the C M-step declined an iteration (numpy's took it): the fit's further
        # iterations stay in run_em's loop, which tries the C M-step first anyway, rather
        # than each being tried twice
        self.declined = False

    def __call__(
        self,
        params: Params,
        *,
        lower_bound: float,
        max_iter: int,
        tol: float,
        reg_covar: float,
        relative: bool,
        collapsed: float,
        n_iter: int = 0,
    ) -> WholeRun:
        """Iterate from ``params``; the arguments are ``loop.run_em``'s (``collapsed`` its
        ``COLLAPSED_WEIGHT``, ``n_iter`` its iterations so far: the fit's M-steps, on whose
        count ``mstep.FitMStep`` checks for a singular covariance inside
        ``mstep.singular_fails``, as the C loop then does)."""
        if self.declined:
            return WholeRun(params, [], False)
        loop = self.loop.bind(self.lean.X, self.lean.weights)
        scale = _scale_address(loop.means.shape[1])
        loop.means[...], loop.mixing[...] = params.means, params.weights
        loop.precision[...], loop.covariances[...] = params.precisions_cholesky, params.covariances
        settings = (reg_covar, _NK_FLOOR, collapsed, tol, int(relative))
        inner = (constrained.INNER_TOL, constrained.WARM_MAX_ITER)  # each from a start
        history: list[float] = []
        status, previous = 0, lower_bound
        while len(history) < max_iter:
            status = loop(
                settings, max_iter - len(history), _FLOOR, previous, inner, scale,
                n_iter + len(history),
            )  # fmt: skip
            history += loop.history[: int(loop.result[0])].tolist()
            capped = loop.capped
            if capped is not None:
                objective, before = capped  # constrained.whole_mstep's warning
                change = abs(before - objective) / (1.0 + abs(objective))
                constrained._cap_reached(self.model, change, loop.covariances)
            if status in (1, 2, 4):  # converged, or the next iteration is Python's
                self.declined = status == 4
                break
            previous = history[-1]
        if not history:  # the first iteration is Python's
            return WholeRun(params, [], False)
        return WholeRun(_params_of(loop, params.covariance), history, status == 1)


def _params_of(call: compiled.WholeEM | compiled.WholeFit, covariance: Covariance) -> Params:
    """The parameters a whole-loop C call left in its buffers, copied out."""
    return Params(
        weights=call.mixing.copy(),
        means=call.means.copy(),
        precisions_cholesky=call.precision.copy(),
        covariance=covariance,
        stored_covariances=call.covariances.copy(),
    )


# the last scale of ``mstep.singular_fails`` (a select grid's one array, in every cell's
# context), its C-ordered copy for the C loop and that copy's address (~3 us to make, once a
# grid instead of once a fit)
_LAST_SCALE: tuple[Array, Array, int] | None = None


def _scale_address(n_features: int) -> int | None:
    """The address of the data's variance per feature inside ``mstep.singular_fails``, as
    FitMStep's rule reads it (broadcast over the features), for ``whole_em``; else None."""
    global _LAST_SCALE
    scale = singular_scale()
    if scale is None:
        return None
    last = _LAST_SCALE  # one read: threads replace the whole tuple
    if last is not None and last[0] is scale and last[1].shape[0] == n_features:
        return last[2]
    copy = np.ascontiguousarray(np.broadcast_to(scale, (n_features,)), dtype=np.float64)
    _LAST_SCALE = (scale, copy, copy.ctypes.data)  # both kept alive with the address
    return _LAST_SCALE[2]


def whole_loop(
    lean: LeanPass | None, params: Params, prior: ResolvedPrior | None
) -> UnivariateLoop | WholeLoop | None:
    """The C loop that runs a fit's iterations where its E-step is the lean pass ``lean``
    (its C loop): ``univariate_loop``'s on one feature; else, without a prior, a
    ``WholeLoop`` for a model whose M-step the C loops take at this shape
    (``compiled.whole_em``); else None (``run_em``'s Python loop)."""
    univariate = univariate_loop(lean, params, prior)
    if univariate is not None:
        return univariate
    if lean is None or not lean.in_c:
        return None
    model = _whole_model(params.covariance, params.n_features, prior)
    if model is None:
        return None
    cov = params.covariance
    loop = compiled.whole_em(
        lean.X, lean.weights, cov.layout, model, cov.matrix_layout,
        (params.n_components, params.n_features), lean.shape,
    )  # fmt: skip
    return None if loop is None else WholeLoop(loop, model, lean)


def _whole_model(
    covariance: Covariance, n_features: int, prior: ResolvedPrior | None
) -> str | None:
    """The C M-step (``Covariance.compiled_mstep``) whose iterations a ``WholeLoop`` runs for
    a fit of this model and prior, or None: a prior's fits are run_em's loop's, and those on
    one feature of a model the univariate loop takes are that loop's."""
    if prior is not None or not WHOLE_LOOP_IN_C:
        return None
    if _univariate(covariance, n_features):
        return None
    return covariance.compiled_mstep


@dataclass(frozen=True)
class WholeFitRun:
    """A whole fit in C (``WholeFit``): its parameters, the lower bounds of its iterations,
    whether the last converged, and the final E-step's log-likelihood and classification
    entropy; or, where an iteration is run_em's (``finished`` False), the parameters that
    iteration starts from and the lower bounds before it (the entropy and log-likelihood NaN):
    run_em goes on from there (its ``done``)."""

    params: Params
    lower_bounds: list[float]
    converged: bool
    log_likelihood: float
    entropy: float
    finished: bool = True
    # unfinished: the E-step's statistics of the iteration handed back (at ``params``), and
    # whether the C M-step declined it (then the fit's later iterations are run_em's too)
    pending: SuffStats | None = None
    declined: bool = False


class WholeFit:
    """A fit's start M-step, ``run_em``'s iterations and ``final_pass``'s E-step in one C call
    (``compiled.WholeFit``), where ``run_em`` would run them all in a ``WholeLoop`` and the lean
    pass: the same functions on the same numbers, so the fit is that path's to the bit. Where
    that path would run Python it stops: before the start's M-step (it declines, finds a
    covariance not positive definite or stops at its cap: the call returns None, and the
    caller takes the start's M-step in Python), or before an iteration that is run_em's (an
    unfinished ``WholeFitRun``, from which run_em goes on)."""

    def __init__(
        self, call: compiled.WholeFit, covariance: Covariance, X: Array, weights: Array | None
    ) -> None:
        self.call, self.covariance = call, covariance
        # the rows the call reads by address, kept alive with it (they may be a C-ordered copy)
        self.X, self.weights = X, weights

    def __call__(
        self, stats: SuffStats | None, *, max_iter: int, tol: float, reg_covar: float,
        relative: bool, collapsed: float, warm: tuple[Params, float] | None = None,
    ) -> WholeFitRun | None:  # fmt: skip
        """The fit from the start's statistics (``init.start_statistics``), or with ``warm``
        (parameters, their lower bound) from those parameters on; the other arguments are
        ``loop.run_em``'s (``collapsed`` its ``COLLAPSED_WEIGHT``)."""
        call = self.call.bind(self.X, self.weights)
        bound = None
        if warm is not None:  # as lean.WholeLoop sets them
            params, bound = warm
            call.means[...], call.mixing[...] = params.means, params.weights
            call.precision[...] = params.precisions_cholesky
            call.covariances[...] = params.covariances
        elif stats is not None:
            call.nk[...], call.sx[...] = stats.nk, stats.sx
            call.sxx[...], call.shift[...] = stats.sxx, stats.shift
        settings = (reg_covar, _NK_FLOOR, collapsed, tol, int(relative))
        inner = (constrained.INNER_TOL, constrained.WARM_MAX_ITER, constrained.INNER_MAX_ITER)
        scale = _scale_address(call.means.shape[1])
        status = call(settings, max_iter, _FLOOR, inner, scale, bound)
        if status == 5:
            return None
        done, log_likelihood, entropy, last = call.result.tolist()
        if status == 6:
            log_likelihood = entropy = math.nan
        params = _params_of(call, self.covariance)
        history = call.history[: int(done)].tolist()
        pending = None
        if status == 6:  # the lean pass's reading of the E-step's output, at params
            reading = LeanPass(self.X, self.weights, self.covariance, call.means.shape[0])
            pending = reading.statistics(call.estep.copy(), params.means)
        return WholeFitRun(
            params, history, status == 1, log_likelihood, entropy, status != 6, pending, last == 4
        )


class UnivariateFit:
    """``WholeFit``'s contract for a fit that a ``UnivariateLoop`` runs (one feature, E or V):
    the start's M-step (``FitMStep.unchecked``, as ``init.initial_params`` takes it: its
    named error raised here), the loop's one C call, and the final E-step of ``final_pass``
    with the loop's buffers, one after another without run_em's and the fit's set-up around
    them: the same calls, so the same fit. Where the loop stops before an iteration that is
    run_em's, an unfinished ``WholeFitRun`` (no pending statistics: run_em's loop asks the C
    loop first, which hands that iteration back again)."""

    def __init__(self, lean: LeanPass, covariance: Covariance) -> None:
        self.lean, self.covariance = lean, covariance

    def __call__(
        self, stats: SuffStats | None, *, max_iter: int, tol: float, reg_covar: float,
        relative: bool, collapsed: float, warm: tuple[Params, float] | None = None,
    ) -> WholeFitRun:  # fmt: skip
        """As ``WholeFit.__call__``."""
        if warm is not None:
            params, bound = warm
        elif stats is not None:
            shape = stats.sx.shape
            params = FitMStep(self.covariance, shape, reg_covar).unchecked(stats)
            bound = -math.inf
        else:  # pragma: no cover - a caller's bug
            raise ValueError("a whole fit starts from statistics or from parameters")
        loop = UnivariateLoop(self.lean, params, None)
        run = loop(
            params, lower_bound=bound, max_iter=max_iter, tol=tol, reg_covar=reg_covar,
            relative=relative, collapsed=collapsed,
        )  # fmt: skip
        if not (run.converged or len(run.lower_bounds) == max_iter):
            return WholeFitRun(run.params, run.lower_bounds, False, math.nan, math.nan, False)
        done = run.params
        log_likelihood, entropy = loop.loop.loglik_and_entropy(
            done.means[:, 0], done.weights, done.precisions_cholesky, _FLOOR
        )
        return WholeFitRun(done, run.lower_bounds, run.converged, log_likelihood, entropy)


def whole_fit(
    source: object, covariance: Covariance, n_components: int, dtype: DType, missing: bool,
    reg_covar: float,
) -> WholeFit | UnivariateFit | None:  # fmt: skip
    """The whole fit in C for a fit of ``source`` without a prior in this process (no forked
    workers) where run_em would take the lean pass's C loop and a ``WholeLoop``
    (``lean_rows``, ``_whole_model``, ``compiled.whole_fit``), or a ``UnivariateLoop``
    (``UnivariateFit``); else None."""
    if not compiled.loaded():
        return None
    rows = lean_rows(source, n_components, dtype, missing, reg_covar)
    if rows is None:
        return None
    X, weights = rows
    if _univariate(covariance, X.shape[1]):
        return UnivariateFit(LeanPass(X, weights, covariance, n_components), covariance)
    model = _whole_model(covariance, X.shape[1], None)
    if model is None:
        return None
    means_shape = (n_components, X.shape[1])
    call = compiled.whole_fit(
        X, weights, covariance.layout, model, covariance.matrix_layout, means_shape,
        covariance.shape(*means_shape),
    )  # fmt: skip
    return None if call is None else WholeFit(call, covariance, X, weights)
