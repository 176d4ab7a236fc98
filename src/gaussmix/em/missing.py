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
once per pattern and component for each parameter set (``_pattern_terms``, cached per
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
# Rows per slice of a group's working arrays: (K, SLICE_ROWS, D) imputed centred rows.
SLICE_ROWS = 4096

# A block as the missing-data pass sees it: rows, weights, and the NaN mask of the rows
# (None when they are complete: today's kernel takes them).
Block = tuple[NDArray[np.floating], "Array | None", "Mask | None"]


@dataclass(frozen=True, eq=False)
class PatternTerms:
    """Conditional quantities of one missingness pattern under every component.

    Attributes
    ----------
    observed, missing : indices of the observed (no,) and missing (nm,) coordinates.
    whiten : (K, no, no) A_k = L_oo,k^{-T}: the observed part z_o (row) whitens to z_o A_k.
    log_det : (K,) 1/2 log det Sigma_oo,k^{-1}.
    lower_mo : (K, nm, no) L_mo,k: x_m - mu_m = (z_o A_k) L_mo,k' is the regression.
    lower_mm : (K, nm, nm) L_mm,k, the Cholesky factor of Cov[x_m | x_o, k].
    pseudo_rows : (K, nm, D) the columns of L_mm,k embedded in D coordinates (zero on o).
    """

    observed: NDArray[np.intp]
    missing: NDArray[np.intp]
    whiten: Array
    log_det: Array
    lower_mo: Array
    lower_mm: Array
    pseudo_rows: Array


_cache: weakref.WeakKeyDictionary[Params, dict[bytes, PatternTerms]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _full_covariances(params: Params) -> Array:
    return np.asarray(
        params.covariance.per_component(params.covariances, params.n_components, params.n_features),
        dtype=np.float64,
    )


def _pattern_terms(params: Params, pattern: Mask) -> PatternTerms:
    """The terms of ``pattern`` (D,) True where missing, computed once per parameter set."""
    key = np.packbits(pattern).tobytes() + pattern.size.to_bytes(4, "little")
    with _cache_lock:
        table = _cache.setdefault(params, {})
        terms = table.get(key)
    if terms is None:
        terms = _compute_terms(_full_covariances(params), pattern)
        with _cache_lock:
            table[key] = terms
    return terms


def _compute_terms(covariances: Array, pattern: Mask) -> PatternTerms:
    missing = np.flatnonzero(pattern)
    observed = np.flatnonzero(~pattern)
    order = np.concatenate([observed, missing])
    no = observed.size
    permuted = covariances[:, order][:, :, order]
    lower = np.linalg.cholesky(permuted)  # Sigma (o, m order) = L L'
    lower_oo = lower[:, :no, :no]
    whiten = np.swapaxes(np.linalg.inv(lower_oo), 1, 2)
    log_det = -np.log(np.diagonal(lower_oo, axis1=1, axis2=2)).sum(axis=1)
    lower_mm = np.ascontiguousarray(lower[:, no:, no:])
    k, d = covariances.shape[0], covariances.shape[1]
    pseudo = np.zeros((k, missing.size, d))
    pseudo[:, :, missing] = np.swapaxes(lower_mm, 1, 2)  # row j is column j of L_mm
    return PatternTerms(
        observed=observed,
        missing=missing,
        whiten=whiten,
        log_det=log_det,
        lower_mo=np.ascontiguousarray(lower[:, no:, :no]),
        lower_mm=lower_mm,
        pseudo_rows=pseudo,
    )


def _log_weights(params: Params) -> Array:
    with np.errstate(divide="ignore"):  # a zero weight gives log pi_k = -inf, as it should
        return np.log(params.weights)


def _whitened(X: Array, params: Params, terms: PatternTerms) -> tuple[Array, Array, Array]:
    """For the rows X (n, D) of one pattern: the centred observed parts Zo (K, n, no), their
    whitened form Y = Zo A (K, n, no) and log pi_k + log N(x_o | mu_o,k, Sigma_oo,k) (K, n)."""
    o = terms.observed
    Zo = X[:, o][None, :, :] - params.means[:, None, o]
    Y = np.matmul(Zo, terms.whiten)
    maha = np.einsum("knd,knd->kn", Y, Y)
    log_prob = -0.5 * (o.size * LOG_2PI + maha) + (terms.log_det + _log_weights(params))[:, None]
    return Zo, Y, log_prob


def _groups(mask: Mask) -> tuple[Mask, NDArray[np.intp], NDArray[np.intp]]:
    """Distinct rows of ``mask`` (P, D), the row indices sorted by pattern (n,), and where
    each pattern's rows start in that order (P + 1,)."""
    patterns, inverse = np.unique(mask, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(patterns.shape[0] + 1))
    return patterns, order, starts


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
    for p, pattern in enumerate(patterns):
        members = order[starts[p] : starts[p + 1]]
        _, _, out[:, rows[members]] = _whitened(
            X64[members], params, _pattern_terms(params, pattern)
        )
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
    for p, pattern in enumerate(patterns):
        members = rows[order[starts[p] : starts[p + 1]]]
        terms = _pattern_terms(params, pattern)
        m = terms.missing
        _, Y, log_prob_p = _whitened(X64[members], params, terms)
        resp = softmax_in_place(log_prob_p)[0]  # (K, n_p)
        means_k = params.means[:, None, m] + np.matmul(Y, np.swapaxes(terms.lower_mo, 1, 2))
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

    A block without NaN is passed on as it is; a block with some is cut into its complete rows
    (passed on at once) and its incomplete rows, which are gathered over consecutive blocks and
    passed on, with their NaN mask, once ``group_rows`` of them are waiting and at the end.
    """
    waiting: list[tuple[NDArray[np.floating], Array | None, Mask]] = []
    count = 0
    for X, w in blocks:
        mask = np.isnan(X)
        incomplete = mask.any(axis=1)
        if not incomplete.any():
            yield X, w, None
            continue
        complete = ~incomplete
        if complete.any():
            yield X[complete], None if w is None else w[complete], None
        waiting.append((X[incomplete], None if w is None else w[incomplete], mask[incomplete]))
        count += waiting[-1][0].shape[0]
        if count >= group_rows:
            yield _joined(waiting)
            waiting, count = [], 0
    if waiting:
        yield _joined(waiting)


def _joined(parts: list[tuple[NDArray[np.floating], Array | None, Mask]]) -> Block:
    X = np.concatenate([np.asarray(p[0], dtype=np.float64) for p in parts])
    w = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
    return X, w, np.concatenate([p[2] for p in parts])


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
    cov, K, D = params.covariance, params.n_components, params.n_features
    patterns, order, starts = _groups(mask)
    terms = [_pattern_terms(params, pattern) for pattern in patterns]
    pattern_of = np.repeat(np.arange(patterns.shape[0]), np.diff(starts))  # per sorted row
    total = zeros(params)
    pattern_nk = np.zeros((patterns.shape[0], K))  # sum_n q_kn w_n per pattern
    for start in range(0, X.shape[0], SLICE_ROWS):
        stop = min(start + SLICE_ROWS, X.shape[0])
        rows = order[start:stop]
        Z = np.empty((K, stop - start, D))  # imputed rows minus the means (the shifts)
        log_prob = np.empty((K, stop - start))
        for p in np.unique(pattern_of[start:stop]):
            lo, hi = max(starts[p], start) - start, min(starts[p + 1], stop) - start
            t = terms[p]
            Zo, Y, log_prob[:, lo:hi] = _whitened(X[rows[lo:hi]], params, t)
            Zs = Z[:, lo:hi]
            Zs[:, :, t.observed] = Zo
            Zs[:, :, t.missing] = np.matmul(Y, np.swapaxes(t.lower_mo, 1, 2))
        resp, log_norm = softmax_in_place(log_prob)
        w = None if weights is None else weights[rows]
        candidates = log_norm if w is None else np.where(w > 0, log_norm, np.inf)
        worst = int(np.argmin(candidates))
        worst_x = np.einsum("k,kd->d", resp[:, worst], Z[:, worst] + params.means)
        if w is not None:
            resp *= w
        np.add.at(pattern_nk, pattern_of[start:stop], resp.T)
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
    pseudo_weights = np.concatenate(
        [np.repeat(pattern_nk[p][:, None], t.missing.size, axis=1) for p, t in enumerate(terms)],
        axis=1,
    )
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
