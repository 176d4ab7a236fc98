"""Kinds of the names a student writes: the letter convention, and inference from the expression.

A name nobody declared gets its kind from two sources, in this order. First the expression: a
gradient needs a scalar function whose every sum and product is well formed, so the kinds must
make it one (``lambda*(sum_k(pi_k) - 1)`` makes ``lambda`` a scalar when ``pi_k`` is one, and
``sum_k(N_k*log(pi_k))`` makes ``N_k`` a scalar). Then the letter convention, which decides
only what the expression leaves open: matrixcalculus.org's a-g scalars, h-z vectors, A-Z
matrices, extended by the Greek names a student writes (``mu_k`` a vector, ``Sigma_k`` and
``Lambda_k`` symmetric matrices, ``pi_k``, ``lambda``, ``alpha``, ``sigma2`` scalars).

The inference is a search, not a constraint solver: sums and products of a scalar with anything
are allowed (``c*A``, ``x + 1``), so shape constraints are disjunctive, and a few names have few
kinds. Assignments are tried in order of how many names leave the convention (none first), and
the first that gives a well-formed scalar wins; ties go to the earlier name and to the smaller
kind. A bare one-letter name (``x``, ``A``, ``a``) keeps the documented convention, which is
the syntax of matrixcalculus.org (``A*x`` stays a matrix times a vector, and is refused as not
a scalar); indexed, multi-letter and Greek names are the student's and are inferred. When no
assignment works, the error keeps the convention's reading of the expression, says the kinds it
assumed, and names the ``--types`` that would fix it when changing one of the fixed or declared
names does.

This module decides kinds only; the parser (``parse(..., infer=True)``) builds the expression
for each assignment tried.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gaussmix.calculus.errors import CalculusError
from gaussmix.calculus.expr import Expr, Kind, Op
from gaussmix.calculus.forms import GREEK
from gaussmix.calculus.printing import to_text

__all__ = [
    "MAX_ASSIGNMENTS",
    "assumed_kinds",
    "convention_kind",
    "describe_kinds",
    "infer_kinds",
    "is_fixed",
    "summed_indices",
]

MAX_ASSIGNMENTS = 3000
"""Most kind assignments the search builds before giving up (a few names need a few dozen)."""

VECTOR_GREEK = frozenset({"mu", "beta", "theta"})
"""Lowercase Greek names that are vectors by convention (a mean, regression coefficients, a
parameter vector); every other lowercase Greek name is a scalar (pi, lambda, alpha, sigma2)."""

SYMMETRIC_GREEK = frozenset({"Sigma", "Lambda"})
"""Uppercase Greek names that are symmetric matrices by convention (a covariance, a precision);
every other uppercase Greek name is a matrix."""

_LEAD = re.compile(r"[A-Za-z]+")

# The alternatives tried for a name, smallest first; a symmetric matrix's alternatives are
# those of a matrix (symmetry never makes a product fit or not).
_CLASSES = (Kind.SCALAR, Kind.VECTOR, Kind.MATRIX)


def _greek(name: str) -> str | None:
    lead = _LEAD.match(name)
    word = lead.group() if lead else ""
    return word if word in GREEK else None


def convention_kind(name: str) -> Kind:
    """The letter convention: a-g scalars, h-z vectors, A-Z matrices, and the Greek names.

    Parameters
    ----------
    name : str
        A variable's base name (``x``, ``mu``, ``Lambda``, ``sigma2``).

    Returns
    -------
    Kind
    """
    greek = _greek(name)
    if greek is not None:
        if greek in SYMMETRIC_GREEK:
            return Kind.SYMMETRIC
        if greek[0].isupper():
            return Kind.MATRIX
        return Kind.VECTOR if greek in VECTOR_GREEK else Kind.SCALAR
    first = name[0]
    if first.isupper():
        return Kind.MATRIX
    return Kind.SCALAR if first <= "g" else Kind.VECTOR


def is_fixed(base: str, written: str) -> bool:
    """Whether a name keeps the convention whatever the expression: a bare one-letter name.

    ``x``, ``A`` and ``a`` are matrixcalculus.org's; ``x_n``, ``N_k``, ``mu``, ``lambda`` and
    ``q_kn`` are inferred.
    """
    return len(base) == 1 and base == written


def _class(kind: Kind) -> Kind:
    if kind.is_scalar:
        return Kind.SCALAR
    return Kind.VECTOR if kind is Kind.VECTOR else Kind.MATRIX


def _alternatives(kind: Kind) -> list[Kind]:
    return [k for k in _CLASSES if k is not _class(kind)]


@dataclass(frozen=True)
class _Search:
    found: dict[str, Kind] | None
    expr: Expr | None
    tried: int


def _search(
    build: Callable[[Mapping[str, Kind]], Expr],
    start: Mapping[str, Kind],
    free: Sequence[str],
    budget: int,
) -> _Search:
    """The first assignment, by number of changed names, that builds to a scalar."""
    tried = 0
    for level in range(len(free) + 1):
        for names in itertools.combinations(free, level):
            for kinds in itertools.product(*(_alternatives(start[n]) for n in names)):
                if tried >= budget:
                    return _Search(None, None, tried)
                tried += 1
                attempt = {**start, **dict(zip(names, kinds, strict=True))}
                try:
                    e = build(attempt)
                except CalculusError:
                    continue
                if e.is_scalar:
                    return _Search(attempt, e, tried)
    return _Search(None, None, tried)


def infer_kinds(
    names: Sequence[tuple[str, str]],
    declared: Mapping[str, Kind],
    build: Callable[[Mapping[str, Kind]], Expr],
    describe: Callable[[Expr], str],
) -> Expr:
    """The expression built with kinds that make it a well-formed scalar.

    Parameters
    ----------
    names : sequence of (str, str)
        Each undeclared name as (base name, name as first written), in order of appearance.
    declared : mapping of str to Kind
        Kinds given by the user, by base name; never changed.
    build : callable
        Kinds of every base name -> the expression (raises CalculusError when a sum or a
        product does not fit).
    describe : callable
        Expr -> its shape in words (``n×m``), in the parser's dimension names.

    Returns
    -------
    Expr
        The expression, a scalar.

    Raises
    ------
    CalculusError
        When no kinds of the inferred names make it a well-formed scalar: the convention's
        error (with its subexpression and position), the kinds assumed, and the ``--types``
        that would fix it when one exists that changes at most one fixed name.
    """
    written = dict(names)
    convention = {base: convention_kind(base) for base, _ in names}
    start = {**convention, **declared}
    free = [base for base, shown in names if not is_fixed(base, shown)]
    first_error: CalculusError | None = None
    try:
        e = build(start)
    except CalculusError as exc:
        first_error, e = exc, None
    if e is not None and e.is_scalar:
        return e
    result = _search(build, start, free, MAX_ASSIGNMENTS)
    if result.expr is not None:
        return result.expr
    assumed = describe_kinds({written.get(b, b): k for b, k in convention.items()})
    # A fix through --types: free the fixed and the declared names as well (at most one of them
    # changed, or the suggestion would rewrite the expression rather than fix a kind).
    pinned = [base for base in (*written, *declared) if base not in free]
    fix = ""
    if pinned:
        relaxed = _search(build, start, [*free, *dict.fromkeys(pinned)], MAX_ASSIGNMENTS)
        if relaxed.found is not None:
            # Only the pinned names need declaring: the others are inferred again after.
            changed = {
                b: k for b, k in relaxed.found.items() if b in pinned and start.get(b) is not k
            }
            if len(changed) == 1:
                spec = ",".join(f"{written.get(b, b)}:{k.value}" for b, k in changed.items())
                fix = f"; --types {spec} would make it a scalar"
    where = f" (assuming: {assumed})" if assumed else ""
    if first_error is not None:
        raise CalculusError(
            f"{first_error.message}{where}{fix}",
            source=first_error.source,
            position=first_error.position,
        )
    e = build(start)  # again, so that ``describe`` reads this build's dimension names
    hint = fix or "; a gradient needs a scalar function (try tr(...), sum(...) or norm2(...))"
    raise CalculusError(f"{to_text(e)} is not a scalar: it is {describe(e)}{where}{hint}")


_KIND_WORDS: dict[Kind, tuple[str, str]] = {
    Kind.SCALAR: ("scalar", "scalars"),
    Kind.POSITIVE: ("positive scalar", "positive scalars"),
    Kind.VECTOR: ("vector", "vectors"),
    Kind.MATRIX: ("matrix", "matrices"),
    Kind.SYMMETRIC: ("symmetric matrix", "symmetric matrices"),
    Kind.SPD: ("positive definite matrix", "positive definite matrices"),
}


_SUMMED = re.compile(r"(?<![A-Za-z0-9_])\\?sum_\{?([A-Za-z])(?![A-Za-z0-9_])")
_SUBSCRIPT = re.compile(
    r"(?<![A-Za-z0-9_\\])\\?[A-Za-z][A-Za-z0-9]*_\{?([a-z]{1,2})\}?(?![A-Za-z0-9_({])"
)


def summed_indices(text: str) -> str:
    """The index letters of an expression that sums over an index: the letters it sums over
    (``sum_n(...)``, LaTeX's ``\\sum_{n}``) and those its names carry as subscripts of one or
    two letters (``q_kn``, ``mu_k``); ``""`` when it sums over none.

    A student who writes ``sum_n(q_kn*(x_n - mu_k))`` means q_kn and x_n to vary with n, and
    mu_k to be the k-th mean; ``grad`` reads the text so when no indices are given.
    """
    summed = [m.group(1) for m in _SUMMED.finditer(text)]
    if not summed:
        return ""
    carried = [c for m in _SUBSCRIPT.finditer(text) for c in m.group(1)]
    return "".join(dict.fromkeys([*summed, *carried]))


def describe_kinds(kinds: Mapping[str, Kind]) -> str:
    """``pi_k, lambda scalars; x_n vector; Lambda_k symmetric matrix`` (kinds in enum order)."""
    groups = []
    for kind in Kind:
        names = [name for name, k in kinds.items() if k is kind]
        if names:
            one, many = _KIND_WORDS[kind]
            groups.append(f"{', '.join(names)} {many if len(names) > 1 else one}")
    return "; ".join(groups)


def assumed_kinds(e: Expr, declared: Mapping[str, Kind]) -> dict[str, Kind]:
    """The kinds of the variables of ``e`` that nobody declared, as first written, in order.

    Parameters
    ----------
    e : Expr
    declared : mapping of str to Kind
        Declared kinds, by base name or by name as written.

    Returns
    -------
    dict of str to Kind
        ``{"N_k": Kind.SCALAR, "pi_k": Kind.SCALAR, ...}``.
    """
    out: dict[str, Kind] = {}
    seen: set[str] = set()
    for node in e.walk():
        if node.op is not Op.VAR or node.name in seen:
            continue
        seen.add(node.name)
        if node.name in declared or node.full_name in declared or node.kind is None:
            continue
        out[node.full_name] = node.kind
    return out
