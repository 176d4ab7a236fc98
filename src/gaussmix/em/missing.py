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

where zhat is the row with its missing part replaced by the regression. So the statistics of
incomplete rows are ordinary ``SuffStats`` about the same shifts c_k = mu_k, in the covariance
type's layout: ``merge`` and ``mstep`` are the existing ones (diag and spherical keep only the
diagonal, tied sums over components, each type's M-step reads them unchanged).

Rows are grouped by missingness pattern, and each pattern's rows go through today's kernel
(``stats.chunk_stats``, the natural-parameter GEMMs) on their observed coordinates under the
*marginal* mixture (pi_k, mu_k,o, Sigma_k,oo): that gives the responsibilities, the
observed-data log-likelihood and the sums of x_o and x_o x_o' about mu_k,o. Since zhat is
linear in x_o, the expected statistics in all D coordinates follow from those sums by a few
K x D x D products per pattern (``incomplete_stats``), with no second pass over the rows; the
per-component D x D results are put in the type's layout by the type's own ``second_moment``
(``_in_layout``).

One Cholesky factor gives every conditional quantity of a pattern: with the coordinates
permuted to (o, m), Sigma = L L' with L = [L_oo 0; L_mo L_mm]; then L_oo^{-T} is the marginal's
precision Cholesky factor, Sigma_oo^{-1} Sigma_om = L_oo^{-T} L_mo' the regression and
L_mm L_mm' the Schur complement. These are computed once per pattern and component for each
parameter set (``_patterns_terms``, batched over patterns, cached per ``Params``), not per
row. ``regroup`` passes blocks without NaN on unchanged (today's kernel sees exactly the blocks
it would see without missing values), gathers the complete rows of blocks with NaN into blocks
of the same size, and collects the incomplete rows of consecutive blocks into groups of up to
``GROUP_ROWS`` rows, where the rows of one pattern are many. Everything here computes in
float64.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gaussmix.em.covariance import Covariance, get_covariance
from gaussmix.em.params import Params
from gaussmix.em.stats import (
    DType,
    SuffStats,
    _log_weights,
    chunk_stats,
    log_prob,
    softmax_in_place,
    zeros,
)

Array = NDArray[np.float64]
Mask = NDArray[np.bool_]

# Incomplete rows of consecutive blocks are gathered into blocks of up to this many rows
# (for D = 16 a few MB), so that each pattern's rows are handled together.
GROUP_ROWS = 65536
# Rows of one pattern go through today's kernel at most this many at a time.
PATTERN_ROWS = 4096
# Patterns whose terms are computed together (one batched Cholesky factorisation).
TERMS_BATCH = 64

# A block as the missing-data pass sees it: rows, weights, and the NaN mask of the rows
# (None when they are complete: today's kernel takes them).
Block = tuple[NDArray[np.floating], "Array | None", "Mask | None"]


@dataclass(frozen=True, eq=False)
class PatternTerms:
    """Conditional quantities of one missingness pattern under every component.

    Attributes
    ----------
    observed, missing : indices of the observed (no,) and missing (nm,) coordinates.
    marginal : the mixture of the observed coordinates (weights pi_k, means mu_k,o, the
        covariances Sigma_k,oo as 'full', precision Cholesky factors L_oo,k^{-T}).
    regression : (K, no, nm) L_oo,k^{-T} L_mo,k' = Sigma_oo^{-1} Sigma_om: the regression
        E[x_m | x_o, k] - mu_m = (x_o - mu_o) @ regression[k] (rows).
    lower_mm : (K, nm, nm) L_mm,k, the Cholesky factor of Cov[x_m | x_o, k].
    """

    observed: NDArray[np.intp]
    missing: NDArray[np.intp]
    marginal: Params
    regression: Array
    lower_mm: Array

    @property
    def conditional_covariance(self) -> Array:
        """(K, nm, nm) Cov[x_m | x_o, k] = L_mm L_mm'."""
        return np.matmul(self.lower_mm, np.swapaxes(self.lower_mm, 1, 2))


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
    # in batches, so that the batched arrays (K x batch x D x D) stay a few MB
    for start in range(0, len(new), TERMS_BATCH):
        batch = new[start : start + TERMS_BATCH]
        computed = _compute_terms(params, patterns[batch])
        with _cache_lock:
            for i, terms in zip(batch, computed, strict=True):
                table[keys[i]] = found[i] = terms
    return [terms for terms in found if terms is not None]


def _compute_terms(params: Params, patterns: Mask) -> list[PatternTerms]:
    """``PatternTerms`` of the patterns (P, D): one batched Cholesky factorisation and one
    batched triangular inverse for all P x K permuted covariance matrices."""
    covariances = _full_covariances(params)
    # each pattern's coordinates reordered observed first: (P, D)
    orders = np.argsort(patterns, axis=1, kind="stable")
    permuted = covariances[:, orders[:, :, None], orders[:, None, :]]  # (K, P, D, D)
    lower = np.asarray(np.linalg.cholesky(np.swapaxes(permuted, 0, 1)), dtype=np.float64)
    # (L^{-1})_oo = (L_oo)^{-1} for a lower-triangular L
    inverse_t = np.swapaxes(_lower_inverse(lower), 2, 3)
    full = get_covariance("full")
    out = []
    for p, pattern in enumerate(patterns):
        missing = np.flatnonzero(pattern)
        observed = np.flatnonzero(~pattern)
        no = observed.size
        L = lower[p]
        prec_chol = np.ascontiguousarray(inverse_t[p, :, :no, :no])  # upper: L_oo^{-T}
        marginal = Params(
            weights=params.weights,
            means=np.ascontiguousarray(params.means[:, observed]),
            precisions_cholesky=prec_chol,
            covariance=full,
            stored_covariances=np.ascontiguousarray(permuted[:, p, :no, :no]),
        )
        out.append(
            PatternTerms(
                observed=observed,
                missing=missing,
                marginal=marginal,
                regression=np.matmul(prec_chol, np.swapaxes(L[:, no:, :no], 1, 2)),
                lower_mm=np.ascontiguousarray(L[:, no:, no:]),
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


def _marginal_log_prob(X: Array, terms: PatternTerms) -> Array:
    """log pi_k + log N(x_o | mu_k,o, Sigma_k,oo), shape (K, n), for rows X (n, D) of the
    pattern: today's kernel on the observed coordinates (log pi_k when none is observed)."""
    if terms.observed.size == 0:
        return np.repeat(_log_weights(terms.marginal)[:, None], X.shape[0], axis=1)
    return log_prob(np.ascontiguousarray(X[:, terms.observed]), terms.marginal)


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
        out[:, rows[members]] = _marginal_log_prob(X64[members], terms)
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
        m, o = terms.missing, terms.observed
        resp = softmax_in_place(_marginal_log_prob(X64[members], terms))[0]  # (K, n_p)
        Zo = X64[members][:, o][None, :, :] - params.means[:, None, o]
        means_k = params.means[:, None, m] + np.matmul(Zo, terms.regression)  # (K, n_p, nm)
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
                n_complete -= size
                complete_rows = []
                if n_complete:
                    complete_rows.append((X_c[size:], None if w_c is None else w_c[size:]))
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
    missing entries filled by the components' regressions, weighted by pi_k.

    Notes
    -----
    Each pattern's rows go through today's kernel (``stats.chunk_stats``) on their observed
    coordinates under the marginal mixture, which gives q_kn, the log-likelihood and the
    statistics of x_o about mu_k,o: N_kp, s_kp = sum q (x_o - mu_o) and
    S_kp = sum q (x_o - mu_o)(x_o - mu_o)'. With B = Sigma_mo Sigma_oo^{-1} the expected
    statistics in D coordinates follow per component, without another pass over the rows:

        sum q zhat           = [s; B s]
        sum q E[z z' | x_o]  = [S, S B'; B S, B S B' + N_kp Cov[x_m | x_o, k]].
    """
    if X.shape[0] == 0:
        return zeros(params)
    cov, K, D = params.covariance, params.n_components, params.n_features
    patterns, order, starts = _groups(mask)
    sx = np.zeros((K, D))
    second = np.zeros((K, D, D))  # the expected second moments about mu_k, as full matrices
    n, loglik, nk = 0.0, 0.0, np.zeros(K)
    worst_loglik, worst_x = np.inf, np.zeros(D)
    for p, terms in enumerate(_patterns_terms(params, patterns)):
        o, m = terms.observed, terms.missing
        members = order[starts[p] : starts[p + 1]]
        for start in range(0, members.size, PATTERN_ROWS):
            rows = members[start : start + PATTERN_ROWS]
            part = chunk_stats(
                np.ascontiguousarray(X[rows][:, o]),
                terms.marginal,
                None if weights is None else weights[rows],
            )
            R = terms.regression  # (K, no, nm); B = R'
            s_o, S = part.sx, part.sxx
            sx[:, o] += s_o
            sx[:, m] += np.einsum("kom,ko->km", R, s_o)
            SR = np.matmul(S, R)  # S B' (K, no, nm)
            second[:, o[:, None], o] += S
            second[:, o[:, None], m] += SR
            second[:, m[:, None], o] += np.swapaxes(SR, 1, 2)
            second[:, m[:, None], m] += (
                np.matmul(np.swapaxes(R, 1, 2), SR)
                + part.nk[:, None, None] * terms.conditional_covariance
            )
            n, loglik, nk = n + part.n, loglik + part.loglik, nk + part.nk
            if part.worst_loglik < worst_loglik:
                worst_loglik = part.worst_loglik
                worst_x = np.empty(D)
                worst_x[o] = part.worst_x
                shifted = part.worst_x - params.means[:, o]
                fills = params.means[:, m] + np.einsum("ko,kom->km", shifted, R)
                worst_x[m] = params.weights @ fills
    return SuffStats(
        n=n,
        loglik=loglik,
        nk=nk,
        sx=sx,
        sxx=_in_layout(second, cov),
        shift=params.means,
        worst_loglik=worst_loglik,
        worst_x=worst_x,
    )


def _in_layout(second: Array, cov: Covariance) -> Array:
    """Per-component second moments (K, D, D) in the covariance type's layout: the matrices
    themselves when the layout is (K, D, D); otherwise through the type's own
    ``second_moment``, fed each matrix as its eigenvectors weighted by its eigenvalues
    (M = sum_i lambda_i v_i v_i'), so every type reduces them by its own rule."""
    K, D = second.shape[0], second.shape[1]
    second = 0.5 * (second + np.swapaxes(second, 1, 2))
    if cov.zero_second_moment(K, D).shape == second.shape:
        return second
    values, vectors = np.linalg.eigh(second)
    return np.asarray(
        cov.second_moment(np.maximum(values, 0.0), np.ascontiguousarray(np.swapaxes(vectors, 1, 2)))
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
