"""Expression nodes: one frozen, hashable node type, an operator enum, and shape inference.

Every expression the engine handles (user input, differentials, gradients, derivation lines) is a
tree of :class:`Expr` nodes. A node is its operator, its arguments and a few leaf attributes (a
name, a number, a kind, indices); its *shape* is inferred when it is built and is a pair of
symbolic dimensions. A dimension is the integer ``1`` or a symbol (a string); a symbol never
stands for 1, so whether a node is a scalar, a vector or a matrix is known from its construction.
Shape is not part of a node's identity: two nodes are equal when their structure is, which makes
``parse(str(e)) == e`` a statement about structure, independent of how dimensions were named.

Nodes are built through the smart constructors at the end of this module (``add``, ``mul``,
``div``, ...). They check shapes through a :class:`Dims` object: the parser passes one that
unifies symbolic dimensions (and reports a mismatch with the subexpression and both shapes), the
rules pass the strict default, for which a mismatch is an internal error. The constructors also
keep a few canonical forms, so that equal text parses to equal trees: sums and matrix products
are flattened, a scalar factor is written first (``A*c`` is ``c*A``), a scalar added to a vector
or matrix is broadcast with ``ones``, and a product whose leading factors multiply to a scalar is
written as a scaling (``x'*y*z`` is ``(x'*y)`` times ``z``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Union

from gaussmix.calculus.errors import CalculusError

__all__ = [
    "MAX_DEPTH",
    "SCALAR",
    "STRICT",
    "Dim",
    "Dims",
    "Expr",
    "Kind",
    "Op",
    "Shape",
]

Dim = Union[int, str]  # noqa: UP007  (a runtime alias: Python 3.10 has no `type` statement)
"""A dimension: the integer 1, or a symbol that stands for an unknown size (never 1)."""

Shape = tuple[Dim, Dim]
"""(rows, columns). Scalars are 1×1, vectors n×1 (column vectors), row vectors 1×n."""

SCALAR: Shape = (1, 1)

MAX_DEPTH = 60
"""Deepest expression the engine accepts; deeper input is refused with a CalculusError."""


class Kind(str, enum.Enum):
    """What a variable is. ``positive`` and ``spd`` are the structure the derivations need."""

    SCALAR = "scalar"
    POSITIVE = "positive"  # a scalar > 0
    VECTOR = "vector"
    MATRIX = "matrix"
    SYMMETRIC = "symmetric"
    SPD = "spd"  # symmetric positive definite

    @property
    def is_scalar(self) -> bool:
        return self in (Kind.SCALAR, Kind.POSITIVE)

    @property
    def is_symmetric(self) -> bool:
        return self in (Kind.SYMMETRIC, Kind.SPD)


class Op(enum.Enum):
    """The operators. Every fact about one (shape rule, printing, numbers, differentials,
    symmetry) is its entry in :data:`gaussmix.calculus.ops.OPS`."""

    NUM = "number"  # value: a non-negative Fraction
    VAR = "variable"  # name, kind, indices
    EYE = "eye"  # identity matrix
    ONES = "ones"  # vector of ones
    ZERO = "zero"  # zero of any non-scalar shape (scalar zero is NUM 0)
    DIM = "dim"  # the size of a dimension, as a scalar; name: the dimension's symbol
    DIFF = "differential"  # dX: the differential of the variable in args[0]
    D = "d"  # d(e): a differential still to be taken
    ADD = "+"  # n-ary, flattened
    NEG = "-"
    MATMUL = "*"  # n-ary matrix product of non-scalar factors, flattened
    SCALE = "scale"  # args (c, A): scalar c times A
    DIV = "/"  # args (A, c): A divided by the scalar c
    HADAMARD = ".*"
    EDIV = "./"
    POW = "^"  # scalar to a scalar power
    MPOW = "matrix power"  # square matrix to a non-negative integer power (args[1] a NUM)
    EPOW = ".^"  # elementwise power, scalar exponent
    TRANSPOSE = "'"
    TR = "tr"
    DET = "det"
    LOGDET = "logdet"
    INV = "inv"
    DIAGM = "diag"  # vector -> diagonal matrix
    DIAGV = "diagv"  # square matrix -> vector of its diagonal (also written diag)
    SUM = "sum"  # sum of all entries
    NORM1 = "norm1"
    NORM2 = "norm2"
    LOG = "log"
    EXP = "exp"
    SQRT = "sqrt"
    SIN = "sin"
    COS = "cos"
    TANH = "tanh"
    ABS = "abs"
    SIGN = "sign"
    ROWS = "rows"  # the number of rows of args[0], as a scalar
    SUMIDX = "indexed sum"  # name: the index; sum over the index of args[0]
    EQ = "="  # an equation lhs = rhs (a line of a derivation; not an expression of the syntax)
    TERM = "weighted term"  # args (M, E): tr(M*E), a term of a differential on its way to tr(G'*dX)

    # Enum's own __hash__ runs Python code on every dictionary lookup, and the rewriter looks
    # operators up constantly; members are singletons, so identity is the right hash (string
    # hashes differ between processes too: nothing may depend on hash order).
    __hash__ = object.__hash__


CONSTANTS = ("eye", "ones")
"""Reserved names: the identity matrix and the vector of ones (sizes inferred from context)."""

VarKey = tuple[str, tuple[str, ...]]


class Expr:
    """An immutable, hashable expression node.

    Parameters
    ----------
    op : Op
        The operator.
    args : tuple of Expr
        The operands.
    shape : (Dim, Dim)
        The inferred shape; not part of equality.
    name : str
        Leaf name (variables, differentials, dimensions) or the index of an indexed sum.
    value : Fraction, optional
        The value of a number (non-negative).
    kind : Kind, optional
        The kind of a variable.
    indices : tuple of str
        The indices of an indexed variable (``x_n`` has ``("n",)``).

    Notes
    -----
    Build nodes with the smart constructors of this module rather than directly: they infer the
    shape and keep the canonical forms described in the module docstring.
    """

    __slots__ = (
        "_hash",
        "args",
        "depth",
        "free",
        "has_diff",
        "indices",
        "kind",
        "name",
        "op",
        "shape",
        "value",
    )

    op: Op
    args: tuple[Expr, ...]
    shape: Shape
    name: str
    value: Fraction | None
    kind: Kind | None
    indices: tuple[str, ...]
    free: frozenset[VarKey]
    has_diff: bool
    depth: int
    _hash: int

    def __init__(
        self,
        op: Op,
        args: Sequence[Expr] = (),
        shape: Shape = SCALAR,
        *,
        name: str = "",
        value: Fraction | None = None,
        kind: Kind | None = None,
        indices: tuple[str, ...] = (),
    ) -> None:
        args = tuple(args)
        setter = object.__setattr__
        setter(self, "op", op)
        setter(self, "args", args)
        setter(self, "shape", shape)
        setter(self, "name", name)
        setter(self, "value", value)
        setter(self, "kind", kind)
        setter(self, "indices", indices)
        if op is Op.VAR:
            free: frozenset[VarKey] = frozenset({(name, indices)})
        else:
            free = frozenset().union(*(a.free for a in args)) if args else frozenset()
        setter(self, "free", free)
        setter(self, "has_diff", op in (Op.DIFF, Op.D) or any(a.has_diff for a in args))
        setter(self, "depth", 1 + max((a.depth for a in args), default=0))
        setter(self, "_hash", hash((op, name, value, kind, indices, args)))

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("Expr is immutable")

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Expr) or self._hash != other._hash:
            return False
        return (
            self.op is other.op
            and self.name == other.name
            and self.value == other.value
            and self.kind == other.kind
            and self.indices == other.indices
            and self.args == other.args
        )

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild,
            (self.op, self.args, self.shape, self.name, self.value, self.kind, self.indices),
        )

    def __str__(self) -> str:
        from gaussmix.calculus.printing import to_text

        return to_text(self)

    def __repr__(self) -> str:
        return f"Expr({self})"

    # -- structure ---------------------------------------------------------------------------
    @property
    def is_scalar(self) -> bool:
        """True for 1×1 expressions."""
        return self.shape == SCALAR

    @property
    def is_vector(self) -> bool:
        """True for column vectors (n×1, n a symbol)."""
        return self.shape[1] == 1 and self.shape[0] != 1

    @property
    def is_square(self) -> bool:
        return self.shape[0] == self.shape[1]

    @property
    def key(self) -> VarKey:
        """(name, indices): how a variable is identified."""
        return (self.name, self.indices)

    @property
    def full_name(self) -> str:
        """The variable's name as written: ``x``, ``x_n``, ``q_kn``."""
        return f"{self.name}_{''.join(self.indices)}" if self.indices else self.name

    def depends_on(self, variable: Expr) -> bool:
        """Whether the variable occurs in this expression."""
        return variable.key in self.free

    def with_args(self, args: Sequence[Expr]) -> Expr:
        """The same node with other operands (the shape is kept: operands must fit it)."""
        return Expr(
            self.op,
            args,
            self.shape,
            name=self.name,
            value=self.value,
            kind=self.kind,
            indices=self.indices,
        )

    def walk(self) -> Iterable[Expr]:
        """All nodes, parents before children (iterative: no recursion limit)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.args))


def _rebuild(
    op: Op,
    args: tuple[Expr, ...],
    shape: Shape,
    name: str,
    value: Fraction | None,
    kind: Kind | None,
    indices: tuple[str, ...],
) -> Expr:
    return Expr(op, args, shape, name=name, value=value, kind=kind, indices=indices)


# ---------------------------------------------------------------------------------------------
# Dimension checking
# ---------------------------------------------------------------------------------------------


class Dims:
    """Checks that dimensions agree. The default is strict: shapes are already known.

    The parser subclasses it to unify symbolic dimensions as it reads the input.
    """

    def unify(self, a: Dim, b: Dim, why: Callable[[], str]) -> None:
        """Require ``a`` and ``b`` to be the same dimension; ``why()`` explains a mismatch."""
        if a != b:
            raise CalculusError(f"internal error, shapes do not fit: {why()}")

    def fresh(self) -> Dim:
        """A new symbolic dimension (only the parser can invent one)."""
        raise CalculusError("internal error: no dimension to give to eye or ones here")

    def resolve(self, d: Dim) -> Dim:
        """The representative of a dimension."""
        return d

    def show(self, shape: Shape) -> str:
        """A shape as text: ``n×m``, ``n×1``."""
        return f"{self.resolve(shape[0])}×{self.resolve(shape[1])}"


STRICT = Dims()


def describe(e: Expr) -> str:
    from gaussmix.calculus.printing import to_text

    return to_text(e)


def shape_word(e: Expr, dims: Dims) -> str:
    """``x is a scalar`` / ``A is n×m``: an operand and its shape, for error messages."""
    if e.is_scalar:
        return f"{describe(e)} is a scalar"
    return f"{describe(e)} is {dims.show(e.shape)}"


def _unify_shapes(a: Expr, b: Expr, dims: Dims, what: str) -> None:
    def why() -> str:
        return f"{shape_word(a, dims)} and {shape_word(b, dims)}; {what}"

    if a.is_scalar != b.is_scalar:
        raise CalculusError(why())
    dims.unify(a.shape[0], b.shape[0], why)
    dims.unify(a.shape[1], b.shape[1], why)


def require_square(a: Expr, dims: Dims, fname: str) -> None:
    """Check that ``a`` is a square matrix (an argument of ``fname``)."""

    def why() -> str:
        return f"{fname} needs a square matrix, but {shape_word(a, dims)}"

    if (a.shape[0] == 1) != (a.shape[1] == 1):
        raise CalculusError(why())
    dims.unify(a.shape[0], a.shape[1], why)


# ---------------------------------------------------------------------------------------------
# Leaves
# ---------------------------------------------------------------------------------------------


def num(value: int | Fraction) -> Expr:
    """A number; negative values become ``-(|value|)`` so that numbers print and parse alike."""
    v = Fraction(value)
    if v < 0:
        return Expr(Op.NEG, (Expr(Op.NUM, value=-v),))
    return Expr(Op.NUM, value=v)


ZERO_S = num(0)
ONE = num(1)
NUM_TWO = num(2)


def var(name: str, kind: Kind, shape: Shape, indices: tuple[str, ...] = ()) -> Expr:
    """A variable of the given kind and shape."""
    return Expr(Op.VAR, (), shape, name=name, kind=kind, indices=indices)


def eye(d: Dim) -> Expr:
    """The d×d identity matrix."""
    return Expr(Op.EYE, (), (d, d))


def ones(d: Dim) -> Expr:
    """The vector of d ones."""
    return Expr(Op.ONES, (), (d, 1))


def zero(shape: Shape) -> Expr:
    """The zero of a shape (the number 0 for scalars)."""
    return ZERO_S if shape == SCALAR else Expr(Op.ZERO, (), shape)


def dim(d: Dim) -> Expr:
    """The size of dimension ``d`` as a scalar (only for named dimensions such as D or N)."""
    if d == 1:
        return ONE
    return Expr(Op.DIM, (), SCALAR, name=str(d))


def differential(variable: Expr) -> Expr:
    """dX, the differential of a variable: same shape as the variable."""
    return Expr(Op.DIFF, (variable,), variable.shape, name=variable.name)


def d(e: Expr) -> Expr:
    """d(e): the differential of ``e``, still to be worked out."""
    return Expr(Op.D, (e,), e.shape)


def is_zero(e: Expr) -> bool:
    """Zero of any shape."""
    return e.op is Op.ZERO or (e.op is Op.NUM and e.value == 0)


def is_number(e: Expr, value: int | Fraction | None = None) -> bool:
    """A number, optionally a given one (negative numbers are NEG of NUM)."""
    if e.op is Op.NUM:
        return value is None or e.value == value
    if e.op is Op.NEG and e.args[0].op is Op.NUM:
        return value is None or e.args[0].value == -Fraction(value)
    return False


def number_value(e: Expr) -> Fraction:
    """The value of a number node (``is_number(e)`` must hold)."""
    if e.op is Op.NUM:
        assert e.value is not None  # invariant of NUM nodes
        return e.value
    return -number_value(e.args[0])


# ---------------------------------------------------------------------------------------------
# Smart constructors
# ---------------------------------------------------------------------------------------------


def broadcast(c: Expr, shape: Shape, dims: Dims = STRICT) -> Expr:
    """A scalar ``c`` spread over a shape: ``c*ones`` for vectors, ``c*ones*ones'`` for matrices."""
    rows, cols = shape
    if shape == SCALAR:
        return c
    if is_number(c, 1):
        c_ones = ones(rows) if cols == 1 else ones(cols)
        if cols == 1:
            return c_ones
        if rows == 1:
            return transpose(c_ones)
        return mul(ones(rows), transpose(ones(cols)), dims)
    if cols == 1:
        return mul(c, ones(rows), dims)
    if rows == 1:
        return mul(c, transpose(ones(cols)), dims)
    return mul(mul(c, ones(rows), dims), transpose(ones(cols)), dims)


def add(a: Expr, b: Expr, dims: Dims = STRICT) -> Expr:
    """a + b; a scalar added to a vector or matrix is added to every entry."""
    if a.is_scalar and not b.is_scalar:
        a = broadcast(a, b.shape, dims)
    elif b.is_scalar and not a.is_scalar:
        b = broadcast(b, a.shape, dims)
    _unify_shapes(a, b, dims, "both sides of + and - must have the same shape")
    terms = [*(a.args if a.op is Op.ADD else (a,)), *(b.args if b.op is Op.ADD else (b,))]
    return Expr(Op.ADD, terms, a.shape)


def add_all(terms: Sequence[Expr], shape: Shape) -> Expr:
    """The sum of terms of one shape (zero for no terms)."""
    if not terms:
        return zero(shape)
    out = terms[0]
    for t in terms[1:]:
        out = add(out, t)
    return out


def neg(a: Expr) -> Expr:
    """-a."""
    return Expr(Op.NEG, (a,), a.shape)


def sub(a: Expr, b: Expr, dims: Dims = STRICT) -> Expr:
    """a - b, stored as a + (-b)."""
    if b.is_scalar and not a.is_scalar:
        b = broadcast(b, a.shape, dims)
    return add(a, neg(b), dims)


def _factors(e: Expr) -> tuple[Expr, ...]:
    return e.args if e.op is Op.MATMUL else (e,)


def mul(a: Expr, b: Expr, dims: Dims = STRICT) -> Expr:
    """a*b: a matrix product, or a scaling when one side is a scalar (written first).

    Scalar factors never stay inside a matrix product: ``A*(c*B)`` and ``(c*A)*B`` are both
    ``c*(A*B)``, which prints as ``c*A*B``.
    """
    if a.is_scalar:
        return Expr(Op.SCALE, (a, b), b.shape)
    if b.is_scalar:
        return Expr(Op.SCALE, (b, a), a.shape)
    if a.op is Op.SCALE:
        return mul(a.args[0], mul(a.args[1], b, dims), dims)
    if b.op is Op.SCALE:
        return mul(b.args[0], mul(a, b.args[1], dims), dims)

    def why() -> str:
        return (
            f"{shape_word(a, dims)} and {shape_word(b, dims)}; a product needs the columns "
            "of the left factor to match the rows of the right one (transpose a factor, or use "
            ".* for an elementwise product)"
        )

    if (a.shape[1] == 1) != (b.shape[0] == 1):
        raise CalculusError(why())
    dims.unify(a.shape[1], b.shape[0], why)
    left = _factors(a)
    right = _factors(b)
    # Flatten, unless a leading part of the product would be a scalar: x'*(y*z') stays nested,
    # because x'*y*z' means (x'*y) times z'.
    rows = left[0].shape[0]
    for f in right[:-1]:
        if rows == 1 and f.shape[1] == 1:
            right = (b,)
            break
    return Expr(Op.MATMUL, (*left, *right), (a.shape[0], b.shape[1]))


def mul_all(factors: Sequence[Expr]) -> Expr:
    """The product of factors, left to right (1 for none)."""
    if not factors:
        return ONE
    out = factors[0]
    for f in factors[1:]:
        out = mul(out, f)
    return out


def div(a: Expr, b: Expr, dims: Dims = STRICT) -> Expr:
    """a / b for a scalar b; a quotient of two numbers is a number."""
    if not b.is_scalar:
        raise CalculusError(
            f"division by {describe(b)}, which is not a scalar; use ./ for elementwise division "
            "or inv(...) for a matrix inverse"
        )
    if b.op is Op.NUM and b.value == 0:
        raise CalculusError("division by zero")
    if a.op is Op.NUM and b.op is Op.NUM:
        assert a.value is not None and b.value is not None  # invariant of NUM nodes
        return num(a.value / b.value)
    return Expr(Op.DIV, (a, b), a.shape)


def hadamard(a: Expr, b: Expr, dims: Dims = STRICT) -> Expr:
    """a .* b (elementwise); with a scalar side it is a scaling."""
    if a.is_scalar or b.is_scalar:
        return mul(a, b, dims)
    _unify_shapes(a, b, dims, ".* needs operands of the same shape")
    return Expr(Op.HADAMARD, (a, b), a.shape)


def ediv(a: Expr, b: Expr, dims: Dims = STRICT) -> Expr:
    """a ./ b (elementwise); a scalar numerator is spread over b's shape."""
    if b.is_scalar:
        return div(a, b, dims)
    if a.is_scalar:
        a = broadcast(a, b.shape, dims)
    _unify_shapes(a, b, dims, "./ needs operands of the same shape")
    return Expr(Op.EDIV, (a, b), a.shape)


def power(a: Expr, p: Expr, dims: Dims = STRICT) -> Expr:
    """a^p: a scalar power, or a non-negative integer power of a square matrix."""
    if not p.is_scalar:
        raise CalculusError(f"the exponent {describe(p)} is not a scalar")
    if a.is_scalar:
        return Expr(Op.POW, (a, p), SCALAR)
    if a.shape[1] == 1 or a.shape[0] == 1:
        raise CalculusError(
            f"{describe(a)} is a vector; use .^ for an elementwise power of a vector"
        )
    if not (p.op is Op.NUM and p.value is not None and p.value.denominator == 1):
        raise CalculusError(
            f"a matrix power needs a non-negative integer exponent, not {describe(p)}; "
            "use inv(...) for an inverse or .^ for an elementwise power"
        )
    require_square(a, dims, "a matrix power")
    return Expr(Op.MPOW, (a, p), a.shape)


def epower(a: Expr, p: Expr, dims: Dims = STRICT) -> Expr:
    """a .^ p, elementwise, for a scalar exponent."""
    if not p.is_scalar:
        raise CalculusError(f"the exponent of .^ must be a scalar, not {describe(p)}")
    if a.is_scalar:
        return Expr(Op.POW, (a, p), SCALAR)
    return Expr(Op.EPOW, (a, p), a.shape)


def transpose(a: Expr) -> Expr:
    """a'."""
    return Expr(Op.TRANSPOSE, (a,), (a.shape[1], a.shape[0]))


def sumidx(index: str, body: Expr) -> Expr:
    """The sum of ``body`` over an index (``sum_n(...)``)."""
    return Expr(Op.SUMIDX, (body,), body.shape, name=index)


def equation(lhs: Expr, rhs: Expr) -> Expr:
    """The equation ``lhs = rhs`` (sides of one shape, or a scalar 0 for any shape)."""
    return Expr(Op.EQ, (lhs, rhs), lhs.shape)


def substitute(e: Expr, old: Expr, new: Expr) -> Expr:
    """``e`` with every occurrence of the variable ``old`` replaced by ``new`` (same shape)."""
    if old.key not in e.free:
        return e
    if e.op is Op.VAR and e.key == old.key:
        return new
    if e.op is Op.DIFF:
        return e
    return rebuild(e, [substitute(a, old, new) for a in e.args])


def map_dims(e: Expr, mapping: Callable[[Dim], Dim]) -> Expr:
    """``e`` with every dimension symbol renamed by ``mapping`` (structure unchanged)."""
    memo: dict[int, Expr] = {}

    def go(node: Expr) -> Expr:
        hit = memo.get(id(node))
        if hit is None:
            hit = Expr(
                node.op,
                [go(a) for a in node.args],
                (mapping(node.shape[0]), mapping(node.shape[1])),
                name=node.name,
                value=node.value,
                kind=node.kind,
                indices=node.indices,
            )
            memo[id(node)] = hit
        return hit

    return go(e)


def rebuild(e: Expr, args: Sequence[Expr]) -> Expr:
    """Rebuild ``e`` with new operands through its shape rule (the operator table's)."""
    from gaussmix.calculus.ops import OPS  # the table builds on this module

    return OPS[e.op].rebuild(e, list(args))
