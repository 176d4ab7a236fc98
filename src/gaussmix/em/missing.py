"""Missing values: exact EM with the missing entries integrated out (NaN marks a missing entry).

Split each row into its observed part o and missing part m. Under component k the observed part
is Gaussian with the marginal N(x_o | mu_o, Sigma_oo), so the E-step's responsibilities and the
log-likelihood are those of the observed parts: this is the observed-data log-likelihood, which
EM never decreases (Ghahramani and Jordan 1994; Little and Rubin, *Statistical Analysis with
Missing Data*, ch. 8 and 11). The M-step wants the complete-data statistics, which are replaced
by their conditional expectations given x_o and k:

    E[x_m | x_o, k]      = mu_m + Sigma_mo Sigma_oo^{-1} (x_o - mu_o)      (the regression)
    Cov[x_m | x_o, k]    = Sigma_mm - Sigma_mo Sigma_oo^{-1} Sigma_om     (the Schur complement)
    E[z z' | x_o, k]     = zhat zhat' + [0, 0; 0, Cov[x_m | x_o, k]]      for z = x - c_k,

where zhat is the row with its missing part replaced by the regression. So the statistics of a
block of incomplete rows are ordinary ``SuffStats`` about the same shifts c_k = mu_k: the
imputed centred rows zhat pass through the covariance type's own ``moments`` (so diag and
spherical keep only the diagonal, tied sums over components, and each type's M-step reads them
unchanged), and the conditional covariances are added as *pseudo-rows*: with
Cov = L_mm L_mm' the columns of L_mm (zero on o), each weighted by the pattern's
sum_n q_kn w_n, add exactly that weight times Cov through ``second_moment``. ``merge`` and
``mstep`` are the existing ones.

One Cholesky factor gives every conditional quantity of a pattern: with the coordinates
permuted to (o, m), Sigma = L L' with L = [L_oo 0; L_mo L_mm]; then L_oo whitens the observed
part (the marginal's Mahalanobis distance and log-determinant), Sigma_oo^{-1} Sigma_om =
L_oo^{-T} L_mo' is the regression and L_mm L_mm' is the Schur complement. These are computed
once per pattern and component for each parameter set (``_patterns_terms``, cached per
``Params``), not per row. Rows are grouped by missingness pattern: ``regroup`` passes blocks
without NaN on unchanged (today's kernel, ``stats.chunk_stats``, sees exactly the blocks it
would see without missing values) and collects the incomplete rows of consecutive blocks into
larger blocks of up to ``GROUP_ROWS`` rows, where rows of one pattern are many, so the
per-pattern work is a few batched matrix products rather than per-row arithmetic. Everything
here computes in float64.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gaussmix.em.covariance import LOG_2PI
from gaussmix.em.params import Params
from gaussmix.em.stats import (
    DType,
    SuffStats,
    chunk_stats,
    log_prob,
    merge,
    softmax_in_place,
    zeros,
)

Array = NDArray[np.float64]
Mask = NDArray[np.bool_]

# Incomplete rows of consecutive blocks are gathered into blocks of up to this many rows
# (for D = 16 a few MB), so that each pattern's rows are handled together.
GROUP_ROWS = 65536
# A group's rows are worked through in slices whose (K, rows, D) imputed centred rows take
# about 8 MB: measured on W1's shape (K = D = 16), slices of 4096 rows ran 1.25x faster than
# 1024 and 2x faster than 512 (fewer calls per component).
SLICE_FLOATS = 2**20


def _slice_rows(n_components: int, n_features: int) -> int:
    return int(np.clip(SLICE_FLOATS // (n_components * n_features), 256, 4096))


# A block as the missing-data pass sees it: rows, weights, and the NaN mask of the rows
# (None when they are complete: today's kernel takes them).
Block = tuple[NDArray[np.floating], "Array | None", "Mask | None"]


@dataclass(frozen=True, eq=False)
class PatternTerms:
    """Conditional quantities of one missingness pattern under every component.

    Attributes
    ----------
    observed, missing : indices of the observed (no,) and missing (nm,) coordinates.
    whiten : (K, D, no) A_k = L_oo,k^{-T} on the observed rows, zero on the missing ones: a
        centred row z (its missing entries anything finite) whitens to z A_k = z_o L_oo,k^{-T}.
    log_const : (K,) log pi_k + 1/2 log det Sigma_oo,k^{-1} - no/2 log 2 pi.
    regression : (K, no, nm) L_mo,k': x_m - mu_m = (z A_k) L_mo,k' is the regression
        E[x_m | x_o, k] - mu_m (rows), i.e. Sigma_mo Sigma_oo^{-1} (x_o - mu_o).
    lower_mm : (K, nm, nm) L_mm,k, the Cholesky factor of Cov[x_m | x_o, k].
    pseudo_rows : (K, nm, D) the columns of L_mm,k embedded in D coordinates (zero on o).
    """

    observed: NDArray[np.intp]
    missing: NDArray[np.intp]
    whiten: Array
    log_const: Array
    regression: Array
    lower_mm: Array
    pseudo_rows: Array


_cache: weakref.WeakKeyDictionary[Params, dict[bytes, PatternTerms]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _full_covariances(params: Params) -> Array:
    return np.asarray(
        params.covariance.per_component(params.covariances, params.n_components, params.n_features),
        dtype=np.float64,
    )


def _patterns_terms(params: Params, patterns: Mask) -> list[PatternTerms]:
    """The terms of each pattern (rows of ``patterns`` (P, D), True where missing), those not
    yet known for this parameter set computed together (``_compute_terms``)."""
    keys = [row.tobytes() for row in np.packbits(patterns, axis=1)]
    with _cache_lock:
        table = _cache.setdefault(params, {})
        found = [table.get(key) for key in keys]
    new = [i for i, terms in enumerate(found) if terms is None]
    if new:
        computed = _compute_terms(_full_covariances(params), _log_weights(params), patterns[new])
        with _cache_lock:
            for i, terms in zip(new, computed, strict=True):
                table[keys[i]] = found[i] = terms
    return [terms for terms in found if terms is not None]


def _compute_terms(covariances: Array, log_weights: Array, patterns: Mask) -> list[PatternTerms]:
    """``PatternTerms`` of the patterns (P, D) under the covariances (K, D, D): one batched
    Cholesky factorisation and one batched inverse for all P x K permuted matrices."""
    k, d = covariances.shape[0], covariances.shape[1]
    # each pattern's coordinates reordered observed first: (P, D)
    orders = np.argsort(patterns, axis=1, kind="stable")
    permuted = covariances[:, orders[:, :, None], orders[:, None, :]]  # (K, P, D, D)
    lower = np.linalg.cholesky(np.swapaxes(permuted, 0, 1))  # (P, K, D, D): Sigma = L L'
    # (L^{-1})_oo = (L_oo)^{-1} for a lower-triangular L
    inverse_t = np.swapaxes(_lower_inverse(np.asarray(lower, dtype=np.float64)), 2, 3)
    out = []
    for p, pattern in enumerate(patterns):
        missing = np.flatnonzero(pattern)
        observed = np.flatnonzero(~pattern)
        no = observed.size
        L = lower[p]
        whiten = np.zeros((k, d, no))
        whiten[:, observed] = inverse_t[p, :, :no, :no]
        log_det = -np.log(np.diagonal(L, axis1=1, axis2=2)[:, :no]).sum(axis=1)
        lower_mm = np.ascontiguousarray(L[:, no:, no:])
        pseudo = np.zeros((k, missing.size, d))
        pseudo[:, :, missing] = np.swapaxes(lower_mm, 1, 2)  # row j is column j of L_mm
        out.append(
            PatternTerms(
                observed=observed,
                missing=missing,
                whiten=whiten,
                log_const=log_weights + log_det - 0.5 * no * LOG_2PI,
                regression=np.ascontiguousarray(np.swapaxes(L[:, no:, :no], 1, 2)),
                lower_mm=lower_mm,
                pseudo_rows=pseudo,
            )
        )
    return out


def _lower_inverse(lower: Array) -> Array:
    """L^{-1} of a stack of lower-triangular matrices (..., D, D) by forward substitution,
    row by row over the whole stack at once: D steps of numpy, where LAPACK's per-matrix
    calls cost more than the arithmetic at these sizes."""
    d = lower.shape[-1]
    inverse = np.zeros_like(lower)
    diagonal = np.diagonal(lower, axis1=-2, axis2=-1)
    for i in range(d):
        # row i of L^{-1}: (e_i - sum_{j<i} L_ij row_j) / L_ii
        row = -np.einsum("...j,...jc->...c", lower[..., i, :i], inverse[..., :i, :])
        row[..., i] += 1.0
        inverse[..., i, :] = row / diagonal[..., i, None]
    return inverse


def _log_weights(params: Params) -> Array:
    with np.errstate(divide="ignore"):  # a zero weight gives log pi_k = -inf, as it should
        return np.log(params.weights)


def _whitened(Z: Array, terms: PatternTerms) -> tuple[Array, Array]:
    """For the centred rows Z (K, n, D) of one pattern (missing entries finite, any value):
    the whitened observed parts Y = Z A (K, n, no) and
    log pi_k + log N(x_o | mu_o,k, Sigma_oo,k), shape (K, n)."""
    Y = np.matmul(Z, terms.whiten)
    log_prob = np.einsum("knd,knd->kn", Y, Y)
    log_prob *= -0.5
    log_prob += terms.log_const[:, None]
    return Y, log_prob


def _centred_filled(X: Array, params: Params) -> Array:
    """Z (K, n, D) = x_n - mu_k with NaN taken as 0 first (so every entry is finite)."""
    return np.nan_to_num(X, nan=0.0)[None, :, :] - params.means[:, None, :]


def _groups(mask: Mask) -> tuple[Mask, NDArray[np.intp], NDArray[np.intp]]:
    """Distinct rows of ``mask`` (P, D), the row indices sorted by pattern (n,), and where
    each pattern's rows start in that order (P + 1,)."""
    packed = np.packbits(mask, axis=1)
    keys: NDArray[Any]
    if packed.shape[1] <= 8:  # up to 64 features: one integer code per row, a 1-D sort
        codes = np.zeros((mask.shape[0], 8), dtype=np.uint8)
        codes[:, : packed.shape[1]] = packed
        keys = codes.view(np.uint64).reshape(-1)
    else:
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).reshape(-1)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(first.size + 1))
    return mask[first], order, starts


# --------------------------------------------------------------------------- inference
def log_prob_observed(X: NDArray[np.floating], params: Params, dtype: DType = np.float64) -> Array:
    """log pi_k + log N(x_n^o | mu_k^o, Sigma_k^oo), shape (K, n), in row order.

    Rows without NaN go to ``stats.log_prob`` unchanged (so a block without NaN gives exactly
    its numbers); a row's missing entries (NaN) are integrated out: its marginal density is
    that of its observed part (a row with nothing observed gets log pi_k).
    """
    mask = np.isnan(X)
    incomplete = mask.any(axis=1)
    if not incomplete.any():
        return log_prob(X, params, dtype)
    out = np.empty((params.n_components, X.shape[0]))
    complete = np.flatnonzero(~incomplete)
    if complete.size:
        out[:, complete] = log_prob(X[complete], params, dtype)
    rows = np.flatnonzero(incomplete)
    X64 = np.asarray(X[rows], dtype=np.float64)
    patterns, order, starts = _groups(mask[rows])
    for p, terms in enumerate(_patterns_terms(params, patterns)):
        members = order[starts[p] : starts[p + 1]]
        Z = _centred_filled(X64[members], params)
        _, out[:, rows[members]] = _whitened(Z, terms)
    return out


@dataclass(frozen=True)
class Conditional:
    """What the mixture says about the missing entries of some rows.

    Attributes
    ----------
    mean : (n, D) the rows with every missing entry replaced by
        E[x_m | x_o] = sum_k p(k | x_o) E[x_m | x_o, k].
    std : (n, D) the conditional standard deviations of the mixture, sqrt(Var[x_m | x_o]) with
        Var = sum_k p(k | x_o) (Cov[x_m | x_o, k]_jj + (E[x_j | x_o, k] - E[x_j | x_o])^2)
        (within and between components); 0 on observed entries.
    """

    mean: Array
    std: Array


def conditional(
    X: NDArray[np.floating], params: Params, rng: np.random.RandomState | None = None
) -> Conditional:
    """The conditional means and standard deviations of the missing entries (NaN) of X (n, D).

    With ``rng``, ``mean`` holds draws instead: per row a component k ~ p(k | x_o), then
    x_m ~ N(E[x_m | x_o, k], Cov[x_m | x_o, k]) (one multiple-imputation draw).
    """
    X64 = np.array(X, dtype=np.float64)
    std = np.zeros_like(X64)
    mask = np.isnan(X64)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return Conditional(X64, std)
    patterns, order, starts = _groups(mask[rows])
    for p, terms in enumerate(_patterns_terms(params, patterns)):
        members = rows[order[starts[p] : starts[p + 1]]]
        m = terms.missing
        Y, log_prob_p = _whitened(_centred_filled(X64[members], params), terms)
        resp = softmax_in_place(log_prob_p)[0]  # (K, n_p)
        means_k = params.means[:, None, m] + np.matmul(Y, terms.regression)
        if rng is None:
            mean = np.einsum("kn,knj->nj", resp, means_k)
            within = np.einsum("kij,kij->ki", terms.lower_mm, terms.lower_mm)  # diag of L L'
            spread = means_k - mean[None]
            var = np.einsum("kn,knj->nj", resp, spread * spread) + resp.T @ within
            X64[np.ix_(members, m)] = mean
            std[np.ix_(members, m)] = np.sqrt(np.maximum(var, 0.0))
        else:
            cumulative = np.cumsum(resp, axis=0)
            u = rng.uniform(size=members.size) * cumulative[-1]
            labels = np.minimum((cumulative < u).sum(axis=0), params.n_components - 1)
            noise = rng.standard_normal(size=(members.size, m.size))
            draws = means_k[labels, np.arange(members.size)] + np.einsum(
                "nij,nj->ni", terms.lower_mm[labels], noise
            )
            X64[np.ix_(members, m)] = draws
    return Conditional(X64, std)


# --------------------------------------------------------------------------- fitting
def regroup(
    blocks: Iterable[tuple[NDArray[np.floating], Array | None]], group_rows: int = GROUP_ROWS
) -> Iterator[Block]:
    """The blocks of a pass, with their incomplete rows moved into blocks of their own.

    A block without NaN is passed on as it is. A block with some is cut into its complete rows
    and its incomplete rows; each kind is gathered over consecutive blocks: the complete rows
    are passed on in blocks of the size of the source's first block (today's kernel runs on
    blocks of the size it was tuned for), the incomplete ones with their NaN mask once
    ``group_rows`` of them are waiting; what is left, at the end.
    """
    complete_rows: list[tuple[NDArray[np.floating], Array | None]] = []
    waiting: list[tuple[NDArray[np.floating], Array | None, Mask]] = []
    n_complete = n_waiting = 0
    size = 0
    for X, w in blocks:
        size = size or X.shape[0]
        mask = np.isnan(X)
        incomplete = mask.any(axis=1)
        if not incomplete.any():
            yield X, w, None
            continue
        complete = ~incomplete
        if complete.any():
            complete_rows.append((X[complete], None if w is None else w[complete]))
            n_complete += complete_rows[-1][0].shape[0]
            if n_complete >= size:
                X_c, w_c = _joined(complete_rows)
                yield X_c[:size], None if w_c is None else w_c[:size], None
                complete_rows = [(X_c[size:], None if w_c is None else w_c[size:])]
                n_complete -= size
        waiting.append((X[incomplete], None if w is None else w[incomplete], mask[incomplete]))
        n_waiting += waiting[-1][0].shape[0]
        if n_waiting >= group_rows:
            yield (*_joined(waiting), np.concatenate([p[2] for p in waiting]))
            waiting, n_waiting = [], 0
    if complete_rows:
        yield (*_joined(complete_rows), None)
    if waiting:
        yield (*_joined(waiting), np.concatenate([p[2] for p in waiting]))


def _joined(
    parts: list[tuple[NDArray[np.floating], Array | None]]
    | list[tuple[NDArray[np.floating], Array | None, Mask]],
) -> tuple[NDArray[np.floating], Array | None]:
    """The rows and weights of consecutive parts, in one block."""
    X = np.concatenate([p[0] for p in parts])
    w = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
    return X, w


def block_stats(block: Block, params: Params, dtype: DType = np.float64) -> SuffStats:
    """Statistics of one block of ``regroup``: today's kernel for complete rows, the
    missing-data kernel (``incomplete_stats``) for incomplete ones."""
    X, w, mask = block
    if mask is None:
        return chunk_stats(X, params, w, dtype)
    return incomplete_stats(np.asarray(X, dtype=np.float64), mask, params, w)


def incomplete_stats(
    X: Array, mask: Mask, params: Params, weights: Array | None = None
) -> SuffStats:
    """E-step and expected statistics of rows with missing entries.

    Parameters
    ----------
    X : (n, D) rows, NaN where missing (every row with at least one observed entry).
    mask : (n, D) True where missing.
    params : the current parameters.  weights : (n,) sample weights or None.

    Returns
    -------
    SuffStats about the current means (as ``stats.chunk_stats``): loglik is the observed-data
    log-likelihood sum_n w_n log p(x_n^o); sx and sxx are the expected sums given each row's
    observed part (see the module docstring); worst_x is the worst-explained row with its
    missing entries filled by their conditional mean.
    """
    if X.shape[0] == 0:
        return zeros(params)
    cov, K = params.covariance, params.n_components
    patterns, order, starts = _groups(mask)
    terms = _patterns_terms(params, patterns)
    pattern_of = np.repeat(np.arange(patterns.shape[0]), np.diff(starts))  # per sorted row
    total = zeros(params)
    pattern_nk = np.zeros((patterns.shape[0], K))  # sum_n q_kn w_n per pattern
    step = _slice_rows(K, params.n_features)
    for start in range(0, X.shape[0], step):
        stop = min(start + step, X.shape[0])
        rows = order[start:stop]
        # the imputed rows minus the means (the shifts): observed entries first, then each
        # pattern's missing ones from the regression on its observed ones
        Z = _centred_filled(X[rows], params)
        log_prob = np.empty((K, stop - start))
        present = np.arange(pattern_of[start], pattern_of[stop - 1] + 1)
        bounds = np.clip(starts[present[0] : present[-1] + 2], start, stop) - start
        for p, lo, hi in zip(present, bounds[:-1], bounds[1:], strict=True):
            t = terms[p]
            Y, log_prob[:, lo:hi] = _whitened(Z[:, lo:hi], t)
            Z[:, lo:hi, t.missing] = np.matmul(Y, t.regression)
        resp, log_norm = softmax_in_place(log_prob)
        w = None if weights is None else weights[rows]
        candidates = log_norm if w is None else np.where(w > 0, log_norm, np.inf)
        worst = int(np.argmin(candidates))
        worst_x = np.einsum("k,kd->d", resp[:, worst], Z[:, worst] + params.means)
        if w is not None:
            resp *= w
        pattern_nk[present] += np.add.reduceat(resp, bounds[:-1], axis=1).T
        sx, sxx = cov.moments(resp, Z)
        total = merge(
            total,
            SuffStats(
                n=float(stop - start if w is None else w.sum()),
                loglik=float(log_norm.sum() if w is None else w @ log_norm),
                nk=resp.sum(axis=1),
                sx=sx,
                sxx=sxx,
                shift=params.means,
                worst_loglik=float(candidates[worst]),
                worst_x=worst_x,
            ),
        )
    # the conditional covariances: pattern p adds sum_n q_kn w_n Cov_p,k = sum_j of its
    # pseudo-rows (columns of L_mm,k) weighted by that sum
    pseudo = np.concatenate([t.pseudo_rows for t in terms], axis=1)  # (K, sum nm, D)
    n_missing = [t.missing.size for t in terms]
    pseudo_weights = np.ascontiguousarray(np.repeat(pattern_nk, n_missing, axis=0).T)
    correction = cov.second_moment(pseudo_weights, pseudo)
    return SuffStats(
        n=total.n,
        loglik=total.loglik,
        nk=total.nk,
        sx=total.sx,
        sxx=total.sxx + correction,
        shift=total.shift,
        worst_loglik=total.worst_loglik,
        worst_x=total.worst_x,
    )


def fill_for_init(X: NDArray[np.floating]) -> NDArray[np.floating]:
    """The rows with each missing entry replaced by its column's observed mean: a start for the
    initialisation (k-means), which EM then corrects."""
    mask = np.isnan(X)
    if not mask.any():
        return X
    filled = np.array(X, dtype=np.float64)
    column_means = np.nanmean(filled, axis=0)
    filled[mask] = np.take(column_means, np.nonzero(mask)[1])
    return filled
