"""Numbers for expressions: evaluation, random points of the right structure, derivative checks.

Every symbolic result of the engine is checked here against plain numerics: a gradient G of f
with respect to X must satisfy ``<G, V> = d/dt f(X + tV)`` at t = 0 for every direction V, which
central finite differences estimate well (autograd's ``check_grads`` idea: a few random
directions are cheap and catch every wrong rule). Random points respect the structure an
expression needs: symmetric and positive definite matrices for symmetric variables, diagonally
dominant (hence invertible, positive determinant) square matrices elsewhere, positive entries
for anything under a logarithm, a square root, a power or a denominator.

Values use the user's layout: scalars are floats, vectors 1-D arrays, matrices 2-D arrays; an
indexed variable ``x_n`` takes one array with a leading axis per index (``x`` of shape (N, D)).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gaussmix.calculus.errors import CalculusError
from gaussmix.calculus.expr import Dim, Expr, Kind, Op, VarKey
from gaussmix.calculus.ops import OPS

__all__ = [
    "Point",
    "directional_error",
    "evaluate",
    "random_direction",
    "random_point",
    "to_user",
]

Array = NDArray[np.float64]

FD_STEP = 1e-3
"""Step of the five-point central difference (error of order step**4)."""


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


@dataclass
class _Env:
    values: dict[str, Array]  # base name -> array (leading axes for indices, then rows, cols)
    sizes: dict[str, int]  # dimension symbol or index name -> size
    differentials: dict[str, Array] = field(default_factory=dict)

    # -- what the operator table's evaluations ask for (ops.EvalEnv) ----------------------------
    def size(self, d: object) -> int:
        if d == 1:
            return 1
        if str(d) not in self.sizes:
            raise CalculusError(
                f"cannot tell the size of dimension {d} from the values (eye or ones alone?)"
            )
        return self.sizes[str(d)]

    def dim_size(self, name: str) -> int:
        """The value of a named dimension: D (a size), or N, the number of terms of index n."""
        if name not in self.sizes and count_key(name.lower()) in self.sizes:
            return self.sizes[count_key(name.lower())]
        return self.size(name)

    def variable(self, e: Expr) -> Array:
        arr = self.values[e.name]
        if e.indices:
            try:
                arr = arr[tuple(self.sizes[f"@{i}"] for i in e.indices)]
            except KeyError:
                raise CalculusError(f"{e.full_name} is used outside a sum over its index") from None
        return arr

    def differential(self, e: Expr) -> Array:
        name = e.args[0].name
        if name not in self.differentials:
            raise CalculusError(f"no value for the differential d{name}")
        arr = self.differentials[name]
        if e.args[0].indices:
            arr = arr[tuple(self.sizes[f"@{i}"] for i in e.args[0].indices)]
        return arr


def _as_array(name: str, value: Any, v: Expr) -> Array:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise CalculusError(f"the value of {name} is not numeric") from None
    n_index = len(v.indices)
    if v.is_scalar:
        if arr.ndim == n_index:
            arr = arr[..., None, None]
        elif arr.ndim == n_index + 2 and arr.shape[-2:] == (1, 1):
            pass
        else:
            raise CalculusError(f"{name} is a scalar, but its value has shape {arr.shape}")
    elif v.shape[1] == 1:
        if arr.ndim == n_index + 1:
            arr = arr[..., :, None]
        elif not (arr.ndim == n_index + 2 and arr.shape[-1] == 1):
            raise CalculusError(f"{name} is a vector, but its value has shape {arr.shape}")
    elif arr.ndim != n_index + 2:
        raise CalculusError(f"{name} is a matrix, but its value has shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise CalculusError(f"the value of {name} has entries that are not finite")
    return arr


def _bind(sizes: dict[str, int], d: Dim, n: int, what: str) -> None:
    if d == 1:
        if n != 1:
            raise CalculusError(f"{what}: expected size 1, got {n}")
        return
    key = str(d)
    if sizes.setdefault(key, n) != n:
        raise CalculusError(
            f"{what} has size {n} where the other values have size {sizes[key]}; "
            "the sizes of the values do not fit together"
        )


def _variables(e: Expr) -> dict[VarKey, Expr]:
    out: dict[VarKey, Expr] = {}
    for node in e.walk():
        if node.op is Op.VAR:
            out.setdefault(node.key, node)
        elif node.op is Op.DIFF:
            out.setdefault(node.args[0].key, node.args[0])
    return out


def _prepare(
    e: Expr,
    values: Mapping[str, Any],
    differentials: Mapping[str, Any] | None = None,
    shape: tuple[int, ...] | None = None,
    sizes: Mapping[str, int] | None = None,
) -> _Env:
    env = _Env({}, dict(sizes or {}), {})
    for v in _variables(e).values():
        if v.name in env.values:
            # the same array under other indices (x_m beside x_n): their counts too
            lead = env.values[v.name].shape[: len(v.indices)]
            for index, n in zip(v.indices, lead, strict=True):
                _bind(env.sizes, count_key(index), n, f"index {index} of {v.name}")
            continue
        if v.name not in values:
            needed = sorted({x.name for x in _variables(e).values()})
            raise CalculusError(
                f"no value for {v.name}; the expression needs values for {', '.join(needed)}"
            )
        arr = _as_array(v.name, values[v.name], v)
        env.values[v.name] = arr
        lead = arr.shape[: len(v.indices)]
        for index, n in zip(v.indices, lead, strict=True):
            _bind(env.sizes, count_key(index), n, f"index {index} of {v.name}")
        _bind(env.sizes, v.shape[0], arr.shape[-2], f"the rows of {v.name}")
        _bind(env.sizes, v.shape[1], arr.shape[-1], f"the columns of {v.name}")
    for name, value in (differentials or {}).items():
        base = values.get(name)
        env.differentials[name] = np.asarray(value, dtype=float).reshape(
            env.values[name].shape if base is not None else np.shape(value)
        )
    if shape is not None:
        full = (1, 1) if len(shape) == 0 else (shape[0], 1) if len(shape) == 1 else shape
        _bind(env.sizes, e.shape[0], full[0], "the rows of the result")
        _bind(env.sizes, e.shape[1], full[1], "the columns of the result")
    return env


def count_key(index: str) -> str:
    """Where the number of terms of an index is kept among the sizes: ``#n``."""
    return f"#{index}"


def _eval(e: Expr, env: _Env) -> Array:
    memo: dict[tuple[int, tuple[int, ...]], Array] = {}
    index_keys = sorted(k for k in env.sizes if k.startswith("@"))

    def go(node: Expr) -> Array:
        key = (id(node), tuple(env.sizes[k] for k in index_keys))
        hit = memo.get(key)
        if hit is not None:
            return hit
        if node.op is Op.SUMIDX:
            out = _sum_over(node)
        elif node.op is Op.D:
            raise CalculusError("cannot evaluate a differential d(...) that is not worked out")
        elif node.op is Op.EQ:
            raise CalculusError("an equation has no value; evaluate its sides")
        else:
            evaluate = OPS[node.op].evaluate
            if evaluate is None:
                raise CalculusError(f"internal error: {node.op.value} has no numeric value")
            out = evaluate(env, node, [go(a) for a in node.args])
        memo[key] = out
        return out

    def _sum_over(node: Expr) -> Array:
        index = node.name
        if count_key(index) not in env.sizes:
            raise CalculusError(f"cannot tell how many terms sum_{index} has")
        slot = f"@{index}"
        saved = env.sizes.get(slot)
        total: Array | None = None
        nonlocal index_keys
        keys_before = index_keys
        index_keys = sorted({*index_keys, slot})
        for i in range(env.sizes[count_key(index)]):
            env.sizes[slot] = i
            term = go(node.args[0])
            total = term.copy() if total is None else total + term
        index_keys = keys_before
        if saved is None:
            del env.sizes[slot]
        else:
            env.sizes[slot] = saved
        if total is None:
            return np.zeros((env.size(node.shape[0]), env.size(node.shape[1])))
        return total

    with np.errstate(all="ignore"):
        return go(e)


def to_user(e: Expr, arr: Array, n_index: int = 0) -> Any:
    """A result in the user's layout: float for scalars, 1-D for column vectors.

    ``arr`` has ``n_index`` leading index axes (for the value of an indexed variable), then
    rows and columns.
    """
    if e.is_scalar:
        return float(arr[..., 0, 0]) if n_index == 0 else arr[..., 0, 0].copy()
    if e.shape[1] == 1:
        return arr[..., :, 0].copy()
    return arr


def evaluate(
    e: Expr,
    values: Mapping[str, ArrayLike],
    *,
    differentials: Mapping[str, ArrayLike] | None = None,
    shape: tuple[int, ...] | None = None,
    index_env: Mapping[str, int] | None = None,
    sizes: Mapping[str, int] | None = None,
    counts: Mapping[str, int] | None = None,
) -> Any:
    """The numeric value of an expression.

    Parameters
    ----------
    e : Expr
    values : mapping of str to array_like
        A value for every variable: floats for scalars, arrays of shape (n,) for vectors and
        (n, m) for matrices; indexed variables have one leading axis per index.
    differentials : mapping of str to array_like, optional
        Values for differentials ``dX`` (keyed by the variable's name): evaluating a
        differential with ``dX = V`` gives the derivative in direction V.
    shape : tuple of int, optional
        The expected numeric shape of the result, to size ``eye`` and ``ones`` that no variable
        sizes (as in the claimed gradient ``eye``).
    index_env : mapping of str to int, optional
        Values of free indices (``{"k": 0}`` to evaluate ``mu_k`` for the first component).
    sizes : mapping of str to int, optional
        Sizes of dimension symbols (as chosen by :func:`random_point`).
    counts : mapping of str to int, optional
        Numbers of terms of indices (``{"n": 40}``), where no value gives them (as in ``-N``).

    Returns
    -------
    float or ndarray
        A float for scalars, shape (n,) for column vectors, (n, m) otherwise.

    Raises
    ------
    CalculusError
        For a missing value, values of sizes that do not fit, or a singular matrix to invert.
    """
    all_sizes = dict(sizes or {})
    all_sizes.update({count_key(i): n for i, n in (counts or {}).items()})
    env = _prepare(e, values, differentials, shape, all_sizes)
    for index, i in (index_env or {}).items():
        env.sizes[f"@{index}"] = int(i)
    return to_user(e, _eval(e, env))


# ---------------------------------------------------------------------------------------------
# Random points
# ---------------------------------------------------------------------------------------------

SIZES = (3, 2, 4, 5, 6, 7)
"""Sizes given to the symbolic dimensions of an expression, in order: distinct, so that a
missing transpose shows up as a shape error or a wrong number."""


def _positive_variables(e: Expr) -> set[str]:
    """Variables in an operand that the table keeps positive (under a log, a square root, a
    power, in a denominator)."""
    out: set[str] = set()
    for node in e.walk():
        for i in OPS[node.op].positive:
            out |= {k[0] for k in node.args[i].free}
    return out


def _dimension_sizes(
    e: Expr, sizes: Mapping[str, int] | None, descending: bool = False
) -> dict[str, int]:
    symbols: list[str] = []
    for node in e.walk():
        for d in node.shape:
            if d != 1 and str(d) not in symbols:
                symbols.append(str(d))
    out = dict(sizes or {})
    free = [n for n in SIZES if n not in out.values()]
    for s in sorted(symbols, reverse=descending):
        if s not in out:
            out[s] = free.pop(0) if free else 3
    for node in e.walk():
        for index in (*node.indices, *([node.name] if node.op is Op.SUMIDX else [])):
            out.setdefault(count_key(index), INDEX_SIZES.get(index, 3))
    return out


INDEX_SIZES = {"n": 5, "k": 3}
"""Number of terms given to the indices of random points (3 for other letters)."""


def _sample(v: Expr, rng: np.random.Generator, dims: Mapping[str, int], positive: bool) -> Array:
    if v.indices:
        lead = tuple(dims[count_key(i)] for i in v.indices)
        slices = [_sample_one(v, rng, dims, positive) for _ in range(int(np.prod(lead)))]
        return np.stack(slices).reshape(*lead, *slices[0].shape)
    return _sample_one(v, rng, dims, positive)


def _sample_one(
    v: Expr, rng: np.random.Generator, dims: Mapping[str, int], positive: bool
) -> Array:
    rows = 1 if v.shape[0] == 1 else dims[str(v.shape[0])]
    cols = 1 if v.shape[1] == 1 else dims[str(v.shape[1])]
    if positive or v.kind in (Kind.POSITIVE,):
        base = rng.uniform(0.5, 1.5, size=(rows, cols))
    else:
        base = rng.choice([-1.0, 1.0], size=(rows, cols)) * rng.uniform(0.5, 1.5, (rows, cols))
    if rows == cols and rows > 1:
        # Symmetric kinds: symmetric and, being diagonally dominant with a positive diagonal,
        # positive definite. Other square matrices: diagonally dominant, so invertible with a
        # positive determinant, but not symmetric (a missing transpose must show).
        off = 0.3 * base
        if v.kind is not None and v.kind.is_symmetric:
            off = (off + off.T) / 2
        return off + np.eye(rows) * (0.3 * 1.5 * rows + 1.0)
    return base


@dataclass
class Point:
    """A random point: values for every variable, and the sizes chosen for the dimensions."""

    values: dict[str, Any]
    sizes: dict[str, int]


def random_point(
    e: Expr,
    seed: int = 0,
    *,
    sizes: Mapping[str, int] | None = None,
    also: tuple[Expr, ...] = (),
    index_env: Mapping[str, int] | None = None,
) -> Point:
    """Random values of the right structure at which ``e`` (and ``also``) are defined.

    Parameters
    ----------
    e : Expr
    seed : int
    sizes : mapping of str to int, optional
        Sizes for some dimension symbols; the others get distinct small sizes.
    also : tuple of Expr
        Further expressions that must be finite at the point (a gradient, a claim).
    index_env : mapping of str to int, optional
        Values of free indices at which the expressions are evaluated.

    Returns
    -------
    Point

    Raises
    ------
    CalculusError
        When no point in 40 tries gives finite values.
    """
    variables = _variables(e)
    for extra in also:
        variables.update({k: v for k, v in _variables(extra).items() if k not in variables})
    positive = _positive_variables(e)
    for extra in also:
        positive |= _positive_variables(extra)
    for attempt in range(40):
        rng = np.random.default_rng([seed, attempt])
        all_positive = attempt >= 20
        # Alternate which dimension gets which size: log(det(X'*X)) needs X taller than wide.
        descending = (attempt // 5) % 2 == 1
        dims = _dimension_sizes(e, sizes, descending)
        for extra in also:
            dims = _dimension_sizes(extra, dims, descending)
        values: dict[str, Any] = {}
        for v in variables.values():
            if v.name in values:
                continue
            arr = _sample(v, rng, dims, all_positive or v.name in positive)
            values[v.name] = to_user(v, arr, len(v.indices))
        env = dict(index_env or {})
        exprs = (e, *also)
        if all(_finite(x, values, dims, env) for x in exprs) and all(
            _well_conditioned(x, values, dims, env) for x in exprs
        ):
            return Point(values, dims)
    names = ", ".join(sorted({v.name for v in variables.values()}))
    raise CalculusError(
        f"found no point where {e} is defined (tried 40 random values of {names}); "
        "declare the kinds of the variables with types, e.g. S:symmetric"
    )


MAX_CONDITION = 1e6
"""Random points where a matrix to invert (or take the determinant of) is worse conditioned than
this are rejected: derivatives there are dominated by rounding."""


def _well_conditioned(
    e: Expr, values: Mapping[str, Any], sizes: Mapping[str, int], index_env: Mapping[str, int]
) -> bool:
    for node in e.walk():
        if not OPS[node.op].conditioned:
            continue
        arg = node.args[0]
        if any(index not in index_env for _, indices in arg.free for index in indices):
            continue  # depends on an index bound by a sum: checked through the whole value
        try:
            a = np.asarray(evaluate(arg, values, sizes=sizes, index_env=index_env), dtype=float)
        except CalculusError:
            return False
        if a.ndim == 2 and np.linalg.cond(a) > MAX_CONDITION:
            return False
    return True


def _finite(
    e: Expr, values: Mapping[str, Any], sizes: Mapping[str, int], index_env: Mapping[str, int]
) -> bool:
    try:
        out = evaluate(e, values, sizes=sizes, index_env=index_env)
    except CalculusError:
        return False
    return bool(np.all(np.isfinite(out)))


def random_direction(
    v: Expr,
    rng: np.random.Generator,
    sizes: Mapping[str, int],
    index_env: Mapping[str, int] | None = None,
) -> Any:
    """A unit direction for variable ``v`` that respects its structure (symmetric for symmetric
    kinds), in the user's layout; for an indexed variable, nonzero only at ``index_env``."""
    rows = 1 if v.shape[0] == 1 else sizes[str(v.shape[0])]
    cols = 1 if v.shape[1] == 1 else sizes[str(v.shape[1])]
    arr = rng.standard_normal((rows, cols))
    if v.kind is not None and v.kind.is_symmetric:
        arr = (arr + arr.T) / 2
    arr /= np.linalg.norm(arr)
    if v.indices:
        full = np.zeros((*(sizes[count_key(i)] for i in v.indices), rows, cols))
        full[tuple((index_env or {}).get(i, 0) for i in v.indices)] = arr
        return to_user(v, full, len(v.indices))
    return to_user(v, arr)


def _shifted(values: Mapping[str, Any], name: str, direction: Any, t: float) -> dict[str, Any]:
    out = dict(values)
    base = np.asarray(values[name], dtype=float)
    out[name] = base + t * np.asarray(direction, dtype=float)
    if base.ndim == 0:
        out[name] = float(out[name])
    return out


def directional_fd(
    f: Expr,
    values: Mapping[str, Any],
    name: str,
    direction: Any,
    step: float = FD_STEP,
    index_env: Mapping[str, int] | None = None,
    sizes: Mapping[str, int] | None = None,
) -> float:
    """d/dt f(X + t V) at t = 0 by the five-point central difference."""
    scale = max(1.0, float(np.max(np.abs(values[name]))))
    h = step * scale

    def at(t: float) -> float:
        shifted = _shifted(values, name, direction, t)
        return float(evaluate(f, shifted, index_env=index_env, sizes=sizes))

    return (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h)


def directional_error(
    f: Expr, gradient: Expr, wrt: Expr, seed: int = 0, n_directions: int = 3
) -> float:
    """Largest relative error of ``<G, V>`` against finite differences of f along V.

    Parameters
    ----------
    f : Expr
        A scalar expression.
    gradient : Expr
        Its claimed gradient with respect to ``wrt`` (same shape as ``wrt``).
    wrt : Expr
        The variable.
    seed : int
    n_directions : int

    Returns
    -------
    float
        ``max |fd - <G, V>| / max(||G||, |fd|, 1e-8 (1 + |f|))`` over two random points and
        ``n_directions`` unit directions at each.
    """
    worst = 0.0
    env = {i: 1 for i in wrt.indices}  # an indexed variable is checked at index 1
    for point_seed in (seed, seed + 7919):
        point = random_point(f, point_seed, also=(gradient,), index_env=env)
        rng = np.random.default_rng([point_seed, 1])
        g = np.asarray(
            evaluate(gradient, point.values, sizes=point.sizes, index_env=env), dtype=float
        )
        fval = abs(float(evaluate(f, point.values, index_env=env, sizes=point.sizes)))
        for _ in range(n_directions):
            v = random_direction(wrt, rng, point.sizes, env)
            fd = directional_fd(f, point.values, wrt.name, v, index_env=env, sizes=point.sizes)
            v_slice = np.asarray(v, dtype=float)
            if wrt.indices:
                v_slice = v_slice[tuple(env[i] for i in wrt.indices)]
            an = float(np.sum(g * v_slice))
            if not (np.isfinite(fd) and np.isfinite(an)):
                return float("inf")  # never report a check that could not be made as passed
            floor = max(float(np.linalg.norm(g)), abs(fd), 1e-8 * (1.0 + fval))
            worst = max(worst, abs(fd - an) / floor)
    return worst


def iter_points(
    e: Expr,
    seed: int,
    count: int,
    also: tuple[Expr, ...] = (),
    index_env: Mapping[str, int] | None = None,
) -> Iterator[Point]:
    """``count`` random points for ``e``, reproducible from ``seed``."""
    for i in range(count):
        yield random_point(e, seed + 104729 * i, also=also, index_env=index_env)
