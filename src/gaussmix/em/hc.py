"""mclust's initialisation: model-based hierarchical agglomeration (Fraley 1998).

Every row starts as its own cluster (identical rows start together); the two clusters whose
merge raises the classification criterion least are merged, until one is left. mclust's
default criterion is its unconstrained (VVV) one, made finite for clusters too small for a
covariance: a cluster of n rows with scatter W costs

    n log( det(W / n) + beta (tr W + alpha) / n )      (n > D and tr W > 0)
    n log( beta (tr W + alpha) / n )                   (n <= D, or a singular W)

(mclust's hcvvv), with beta = 1 and alpha = tr(scatter of the data) / (N D), and a merge costs
the merged cluster's term minus its parts'.
It runs on the data standardised and rotated to their principal axes, each axis divided by the
square root of its singular value (mclust's ``hcUse = "SVD"``).

The tree depends on the data alone, so it is computed once per data set and kept (keyed by the
rows' bytes) for every (K, model) of a grid, as mclust does: ``hc_resp(X, k)`` cuts it at k
clusters. Above ``HC_MAX_ROWS`` rows it is grown on a random subset of that many (mclust's
``subset`` option) and the other rows take no part in the first M-step.

The merge loop keeps the full matrix of merge costs and each row's minimum; a merge recomputes
one row of costs (batched over the clusters) and the minima that pointed at the merged pair, so
a tree of N rows costs O(N^2) determinants of D x D matrices. It runs in C when the C loops are
built (``compiled.hc_merge_loop``, fifty times the numpy loop on mclust's small sets:
benchmarks/README.md, bench_hc.py); ``_merge_loop`` here is its reference, and both compute
every cost by the same operations in the same order (the determinants by closed forms up to
D = 3 and by elimination beyond, sums left to right, the C library's log), so that their
merges are equal, ties included: a tie goes to the first pair, and a last-bit difference could
turn it.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import numpy as np
from numpy.typing import NDArray

from gaussmix.em import compiled

Array = NDArray[np.float64]

HC_MAX_ROWS = 2000


def svd_scaled(X: Array) -> Array:
    """The rows standardised (sd with N - 1), rotated to their principal axes and each axis
    divided by the square root of its singular value; constant columns are dropped."""
    X = np.asarray(X, dtype=np.float64)
    sd = X.std(axis=0, ddof=1) if X.shape[0] > 1 else np.ones(X.shape[1])
    keep = sd > 0
    Z = (X[:, keep] - X[:, keep].mean(axis=0)) / sd[keep]
    _, s, Vt = np.linalg.svd(Z, full_matrices=False)
    s = s[s > 0]
    return np.asarray((Z @ Vt[: s.size].T) / np.sqrt(s))


def _log(x: Array) -> Array:
    """log of each value of x (m,), by the C library's log (math.log), which the C loop calls
    too: numpy's own float64 log (SIMD code on some machines) is a last bit apart from it in
    about 1e-4 of the values, enough to turn a tie."""
    return np.array(list(map(math.log, x.tolist())), dtype=np.float64)


def _terms(n: Array, trace: Array, W: Array, alpha: float, n_features: int) -> Array:
    """The criterion's term of clusters of n (m,) rows, tr W (m,) and scatter W (m, D, D)."""
    small = (n <= n_features) | (trace <= 0)
    out = (trace + alpha) / n
    big = np.flatnonzero(~small)
    if big.size:
        out[big] = out[big] + _scaled_det(W[big], n[big])
    return n * _log(out)


def _scaled_det(W: Array, n: Array) -> Array:
    """det(W / n) of each (D, D) matrix of W (m, D, D) and count of n (m,), 0 where W is not
    positive definite. Up to three features by the closed forms, divided by n^D; beyond, by
    symmetric Gaussian elimination without pivoting (pivot p_k = A_kk, then A_rc -= (A_rk A_kc)
    / p_k below and right of it), the product of the p_k / n, 0 at a pivot <= 0. Each in an
    order the C loop repeats to the bit (LAPACK's slogdet would not be, and costs a
    microsecond a matrix)."""
    d = W.shape[-1]
    if d > 3:
        A = np.array(W, dtype=np.float64)
        det = np.ones(A.shape[0])
        for k in range(d):
            pivot = A[:, k, k].copy()
            det = np.where(pivot > 0, det * (pivot / n), 0.0)
            pivot[~(pivot > 0)] = 1.0
            if k + 1 < d:
                A[:, k + 1 :, k + 1 :] -= (
                    A[:, k + 1 :, k, None] * A[:, None, k, k + 1 :] / pivot[:, None, None]
                )
        return det
    if d == 1:
        det = W[:, 0, 0]
    elif d == 2:
        det = W[:, 0, 0] * W[:, 1, 1] - W[:, 0, 1] * W[:, 1, 0]
    else:  # the first row's cofactors
        det = (
            W[:, 0, 0] * (W[:, 1, 1] * W[:, 2, 2] - W[:, 1, 2] * W[:, 2, 1])
            - W[:, 0, 1] * (W[:, 1, 0] * W[:, 2, 2] - W[:, 1, 2] * W[:, 2, 0])
            + W[:, 0, 2] * (W[:, 1, 0] * W[:, 2, 1] - W[:, 1, 1] * W[:, 2, 0])
        )
    power = n
    for _ in range(d - 1):
        power = power * n
    return np.where(det > 0, det / power, 0.0)


def _square_norms(diff: Array) -> Array:
    """sum_d diff_d^2 of each row of diff (m, D), summed left to right (the C loop's order)."""
    out = diff[:, 0] * diff[:, 0]
    for k in range(1, diff.shape[1]):
        out = out + diff[:, k] * diff[:, k]
    return out


def _pair_terms(
    n: Array,
    means: Array,
    W: Array,
    trace: Array,
    i: int,
    others: NDArray[np.intp],
    alpha: float,
) -> tuple[Array, Array, Array, Array]:
    """(terms, n, tr, W) of cluster i merged with each of ``others``."""
    n_ij = n[i] + n[others]
    diff = means[others] - means[i]
    scale = n[i] * n[others] / n_ij
    # W_ij = W_i + W_j + n_i n_j / n_ij (m_i - m_j)(m_i - m_j)'
    W_ij = W[i] + W[others] + scale[:, None, None] * diff[:, :, None] * diff[:, None, :]
    tr_ij = trace[i] + trace[others] + scale * _square_norms(diff)
    return _terms(n_ij, tr_ij, W_ij, alpha, means.shape[1]), n_ij, tr_ij, W_ij


def hc_tree(Z: Array) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The merge sequence of the agglomeration of the rows Z (n, D) (already scaled).

    Returns
    -------
    groups : (n,) the initial cluster of each row (identical rows share one), numbered 0..m-1.
    merges : (m - 1, 2) the pairs of initial-cluster ids merged, in order; a merged cluster keeps
        the smaller id.
    """
    groups, n, means, alpha = _start(Z)
    merges = compiled.hc_merge_loop(n, means, alpha) if n.size > 1 else None
    if merges is None:
        merges = _merge_loop(n, means, alpha)
    return groups, merges


def _start(Z: Array) -> tuple[NDArray[np.intp], Array, Array, float]:
    """(groups (n,), counts (m,), means (m, D), alpha) of the initial clusters of the rows Z
    (n, D): identical rows start together."""
    Z = np.asarray(Z, dtype=np.float64)
    n_rows, n_features = Z.shape
    _, first, groups = np.unique(Z, axis=0, return_index=True, return_inverse=True)
    groups = np.asarray(groups).reshape(-1)
    n = np.bincount(groups, minlength=first.size).astype(np.float64)
    alpha = max(float(((Z - Z.mean(axis=0)) ** 2).sum()) / (n_rows * n_features), 2.0**-52)
    return groups, n, Z[first].copy(), alpha


def _merge_loop(n: Array, means: Array, alpha: float) -> NDArray[np.intp]:
    """The merges (m - 1, 2) of the m initial clusters of counts n (m,) and means (m, D)
    (both changed in place): the numpy reference of ``compiled.hc_merge_loop``."""
    m, n_features = means.shape
    W = np.zeros((m, n_features, n_features))
    trace = np.zeros(m)
    term = _terms(n, trace, W, alpha, n_features)

    cost = np.full((m, m), np.inf)
    for i in range(m - 1):  # row by row: memory O(m D^2) at a time
        others = np.arange(i + 1, m)
        merged = _pair_terms(n, means, W, trace, i, others, alpha)[0]
        cost[i, others] = merged - term[i] - term[others]
        cost[others, i] = cost[i, others]
    active = np.ones(m, dtype=bool)
    row_arg = np.argmin(cost, axis=1)
    row_min = cost[np.arange(m), row_arg]
    merges = np.empty((max(m - 1, 0), 2), dtype=np.intp)
    for step in range(m - 1):
        a = int(np.argmin(row_min))
        b = int(row_arg[a])
        i, j = min(a, b), max(a, b)
        merges[step] = (i, j)
        others = np.flatnonzero(active)
        others = others[(others != i) & (others != j)]
        pair = np.array([j])
        new_term, n_ij, tr_ij, W_ij = _pair_terms(n, means, W, trace, i, pair, alpha)
        means[i] = (n[i] * means[i] + n[j] * means[j]) / n_ij[0]
        n[i], trace[i], W[i], term[i] = n_ij[0], tr_ij[0], W_ij[0], new_term[0]
        active[j] = False
        cost[j, :] = cost[:, j] = np.inf
        row_min[j] = np.inf
        if others.size:
            merged = _pair_terms(n, means, W, trace, i, others, alpha)[0]
            cost[i, others] = merged - term[i] - term[others]
        else:
            cost[i, :] = np.inf
        cost[others, i] = cost[i, others]
        row_arg[i] = int(np.argmin(cost[i]))
        row_min[i] = cost[i, row_arg[i]]
        # rows whose best partner was i or j look again; the others may now prefer i
        stale = others[(row_arg[others] == i) | (row_arg[others] == j)]
        for r in stale:
            row_arg[r] = int(np.argmin(cost[r]))
            row_min[r] = cost[r, row_arg[r]]
        fresh = others[cost[others, i] < row_min[others]]
        row_arg[fresh] = i
        row_min[fresh] = cost[fresh, i]
    return merges


def cut(groups: NDArray[np.intp], merges: NDArray[np.intp], k: int) -> NDArray[np.intp]:
    """Labels 0..k-1 of the rows at the level of the tree with k clusters (numbered in the
    order of their smallest initial cluster)."""
    m = merges.shape[0] + 1
    done = merges[: max(m - k, 0)]
    # each merged cluster j points at the one it joined, i < j; following the pointers to the
    # end (by pointer doubling) finds each initial cluster's cluster at this level
    parent = np.arange(m)
    parent[done[:, 1]] = done[:, 0]
    while True:
        up = parent[parent]
        if np.array_equal(up, parent):
            break
        parent = up
    # the clusters are the roots (parent[i] == i), numbered in their order: a root's label is
    # the count of roots before it (np.unique's inverse, without its sort)
    is_root = parent == np.arange(m)
    rank = np.cumsum(is_root) - 1
    return np.asarray(rank[parent[groups]], dtype=np.intp)


# the trees of the last few data sets, by a digest of their rows' bytes
_TREES: OrderedDict[bytes, tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]] = (
    OrderedDict()
)
_KEEP_TREES = 8


def _key(X: Array) -> bytes:
    return hashlib.blake2b(X.tobytes(), digest_size=16).digest() + repr(X.shape).encode()


def _tree(X: Array, key: bytes) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """(rows the tree was grown on, groups, merges) for the rows X, from the cache if there."""
    if key in _TREES:
        _TREES.move_to_end(key)
        return _TREES[key]
    n_rows = X.shape[0]
    if n_rows > HC_MAX_ROWS:  # a fixed subset, so that the tree is the data's alone
        rows = np.sort(np.random.RandomState(0).choice(n_rows, HC_MAX_ROWS, replace=False))
    else:
        rows = np.arange(n_rows)
    groups, merges = hc_tree(svd_scaled(X[rows]))
    _TREES[key] = (rows, groups, merges)
    if len(_TREES) > _KEEP_TREES:
        _TREES.popitem(last=False)
    return _TREES[key]


# the cuts of those trees, by (digest, k): every model of a grid cuts the tree at the same K
_CUTS: OrderedDict[tuple[bytes, int], NDArray[np.intp]] = OrderedDict()
_KEEP_CUTS = 8 * 20


def _cut(X: Array, k: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(rows the tree was grown on, their labels at k clusters), from the caches if there."""
    key = _key(X)
    rows, groups, merges = _tree(X, key)
    labels = _CUTS.get((key, k))
    if labels is None:
        labels = _CUTS[(key, k)] = cut(groups, merges, k)
        if len(_CUTS) > _KEEP_CUTS:
            _CUTS.popitem(last=False)
    return rows, labels


def hc_resp(X: NDArray[np.floating], k: int) -> Array:
    """The hierarchical start with k clusters for the rows X (n, D), as one-hot
    responsibilities (n, k); rows left out of a subsampled tree have none. The tree is grown
    once per data set (module docstring)."""
    start = hc_start(X, k)
    if start.ndim == 2:
        return np.asarray(start, dtype=np.float64)
    resp = np.zeros((start.shape[0], k))
    resp[np.arange(start.shape[0]), start] = 1.0
    return resp


def hc_start(X: NDArray[np.floating], k: int) -> NDArray[np.number]:
    """``hc_resp``'s start as the labels (n,) where the tree saw every row (the statistics
    of labels are cheaper to take than those of their one-hot rows, ``mstep.stats_from_resp``),
    else as its responsibilities (n, k)."""
    data = np.ascontiguousarray(X, dtype=np.float64)
    rows, labels = _cut(data, k)
    n_clusters = int(labels.max()) + 1 if labels.size else 0
    if n_clusters < k:
        raise ValueError(
            f"init_params='hc' needs {k} distinct rows to start {k} components; the data have "
            f"{n_clusters}: use fewer components"
        )
    if rows.size == data.shape[0]:  # every row, in order (``_tree``)
        return labels.copy()  # the cut is kept: the caller's copy
    resp = np.zeros((data.shape[0], k))
    resp[rows, labels] = 1.0
    return resp
