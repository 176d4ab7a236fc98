"""How operators are written: the text and LaTeX forms the entries of the operator table use.

An entry of :mod:`~gaussmix.calculus.ops` says how its operator prints by naming a *form*: a
function ``(node, printer) -> str``. The printer (text or LaTeX, :mod:`~gaussmix.calculus.printing`)
gives a form what it needs to write the operands: ``p.show(a)`` for an operand in a place that
needs no parentheses, ``p.wrap(a, minimum)`` for an operand that needs at least ``minimum``
precedence. This module only builds forms; it never dispatches on an operator, so it imports the
node type alone and the table can import it.

Precedence levels, loosest first: equations, sums, unary minus, products (``* / .* ./``), powers,
postfix transpose, atoms (names, numbers, calls). Binary operators of one level associate to the
left: a left operand of the same level needs no parentheses, a right one does.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Protocol

from gaussmix.calculus.expr import Expr, Op

__all__ = [
    "ATOM",
    "EQUATION",
    "NEG",
    "POSTFIX",
    "POWER",
    "PRODUCT",
    "SUM",
    "Form",
    "Printer",
    "latex_name",
    "spread_scalar",
]

EQUATION, SUM, NEG, PRODUCT, POWER, POSTFIX, ATOM = 0, 10, 15, 20, 30, 40, 50


class Printer(Protocol):
    """What a form may ask of the printer that calls it."""

    latex: bool

    def show(self, e: Expr) -> str:
        """``e`` printed, without parentheses around it."""
        ...

    def wrap(self, e: Expr, minimum: int) -> str:
        """``e`` printed, in parentheses when its precedence is below ``minimum``."""
        ...

    def precedence(self, e: Expr) -> int:
        """The precedence of ``e`` for this printer."""
        ...


Form = Callable[[Expr, Printer], str]
"""A way of writing a node: (node, printer) -> text."""


# ---------------------------------------------------------------------------------------------
# Shared by both printers
# ---------------------------------------------------------------------------------------------


def spread_scalar(e: Expr) -> Expr | None:
    """The scalar c when ``e`` is c spread over a vector or matrix (c*ones, ones*ones', ...).

    The parser spreads a scalar that is added to (or divides elementwise) a vector or matrix in
    exactly these forms, so in those places they print as the scalar: ``x + 1``, ``1./x``.
    """
    c: Expr | None = None
    core = e
    if e.op is Op.SCALE:
        c, core = e.args
        if c.op is Op.NUM and c.value == 1:
            return None
    spread = (
        core.op is Op.ONES
        or (core.op is Op.TRANSPOSE and core.args[0].op is Op.ONES)
        or (
            core.op is Op.MATMUL
            and len(core.args) == 2
            and core.args[0].op is Op.ONES
            and core.args[1].op is Op.TRANSPOSE
            and core.args[1].args[0].op is Op.ONES
        )
    )
    if not spread:
        return None
    return c if c is not None else Expr(Op.NUM, value=Fraction(1))


def _add_terms(e: Expr) -> list[tuple[bool, Expr]]:
    """Each term of a sum: (negated, what to print); spread scalars print as scalars where the
    parser would spread them back (after a term that prints as a vector or matrix)."""
    out: list[tuple[bool, Expr]] = []
    seen_array = False
    terms = e.args
    for i, term in enumerate(terms):
        negated = term.op is Op.NEG and i > 0
        core = term.args[0] if negated else term
        scalar = spread_scalar(core) if not e.is_scalar else None
        if (
            scalar is not None
            and i == 0
            and len(terms) > 1
            and spread_scalar(terms[1].args[0] if terms[1].op is Op.NEG else terms[1]) is None
        ):
            out.append((False, scalar))
            continue
        if scalar is not None and seen_array:
            out.append((negated, scalar))
            continue
        seen_array = True
        out.append((negated, core))
    return out


def add_form(e: Expr, p: Printer) -> str:
    """``A + B - C``: a negated term after the first is written with a minus."""
    parts = []
    for i, (negated, term) in enumerate(_add_terms(e)):
        if i == 0:
            parts.append(p.wrap(term, NEG))
        elif negated:
            parts.append(f" - {p.wrap(term, NEG)}")
        elif term.op is Op.NEG and not p.latex:
            parts.append(f" + ({p.show(term)})")
        else:
            parts.append(f" + {p.wrap(term, NEG)}")
    return "".join(parts)


def neg_form(e: Expr, p: Printer) -> str:
    """``-A``; a negation of a negation keeps its parentheses: ``-(-A)``."""
    inner = e.args[0]
    if inner.op is Op.NEG:
        return f"-({p.show(inner)})" if not p.latex else f"-\\left({p.show(inner)}\\right)"
    return f"-{p.wrap(inner, NEG)}"


def number_form(e: Expr, p: Printer) -> str:
    value = e.value if e.value is not None else Fraction(0)
    if value.denominator == 1:
        return str(value.numerator)
    if p.latex:
        return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"
    return f"{value.numerator}/{value.denominator}"


def literal(text: str, latex: str | None = None) -> Form:
    """A fixed symbol: ``eye`` / ``I``."""
    return lambda e, p: latex if p.latex and latex is not None else text


def _left_factor(a: Expr, p: Printer) -> str:
    # In LaTeX an indexed sum is written \sum_n body: as a left factor its extent would be
    # ambiguous, so it is parenthesised there: (\sum_n q_{kn})\,\mu_k.
    if p.latex and a.op is Op.SUMIDX:
        return f"\\left({p.show(a)}\\right)"
    return p.wrap(a, PRODUCT)


def _juxtapose(factors: list[str], raw: list[Expr]) -> str:
    out = factors[0]
    for text, node, before in zip(factors[1:], raw[1:], raw[:-1], strict=True):
        # Two numbers side by side need a visible product sign; after a parenthesised sum a
        # thin space keeps the factors apart.
        if node.op is Op.NUM or text[:1].isdigit():
            sep = " \\cdot "
        elif before.op is Op.SUMIDX:
            sep = "\\,"
        else:
            sep = " "
        out += sep + text
    return out


def matmul_form(e: Expr, p: Printer) -> str:
    """``A*B*C`` / ``A B C``."""
    first, *rest = e.args
    factors = [
        _left_factor(first, p),
        *(_right(f, p, last=i == len(rest) - 1) for i, f in enumerate(rest)),
    ]
    if p.latex:
        return _juxtapose(factors, list(e.args))
    return "*".join(factors)


def _right(a: Expr, p: Printer, last: bool) -> str:
    if p.latex and a.op is Op.SUMIDX:
        return p.show(a) if last else f"\\left({p.show(a)}\\right)"
    return p.wrap(a, POWER)


def scale_form(e: Expr, p: Printer) -> str:
    """``c*A``: c*A*B reads as c*(A*B), since the constructor pulls scalars out of products.
    Not when the first factor is itself a quotient or elementwise product: c*A/d*B reads as
    ((c*A)/d)*B."""
    c, a = e.args
    bare = a.op is Op.MATMUL and p.precedence(a.args[0]) != PRODUCT
    if bare:
        right = p.show(a)
    elif p.latex and a.op is Op.SUMIDX:
        right = p.show(a)  # the last factor: \sum_n extends to the end, as it should
    else:
        right = p.wrap(a, POWER)
    left = _left_factor(c, p)
    if p.latex:
        return _juxtapose([left, right], [c, a])
    return f"{left}*{right}"


def infix(symbol: str, latex: str) -> Form:
    """A product-level binary operator: ``A.*B`` / ``A \\odot B``. A scalar spread over the
    left operand of ``./`` prints as the scalar (``1./x``), as the parser spreads it back."""

    def form(e: Expr, p: Printer) -> str:
        left, right = e.args
        if e.op is Op.EDIV:
            left = spread_scalar(left) or left
        if p.latex:
            return f"{_left_factor(left, p)} {latex} {p.wrap(right, POWER)}"
        return f"{p.wrap(left, PRODUCT)}{symbol}{p.wrap(right, POWER)}"

    return form


def div_form(e: Expr, p: Printer) -> str:
    """``A/c`` / ``\\frac{A}{c}``."""
    a, c = e.args
    if p.latex:
        return f"\\frac{{{p.show(a)}}}{{{p.show(c)}}}"
    return f"{p.wrap(a, PRODUCT)}/{p.wrap(c, POWER)}"


def power(symbol: str, latex_prefix: str = "") -> Form:
    """``a^p`` / ``a^{p}``; x^-1 needs no parentheses, x^-(1/2) does (the grammar allows a sign
    in an exponent)."""

    def form(e: Expr, p: Printer) -> str:
        base, exponent = e.args
        if p.latex:
            return f"{p.wrap(base, ATOM)}^{{{latex_prefix}{p.show(exponent)}}}"
        signed = exponent.op is Op.NEG and p.precedence(exponent.args[0]) >= POWER
        right = p.show(exponent) if signed else p.wrap(exponent, POWER)
        return f"{p.wrap(base, POSTFIX)}{symbol}{right}"

    return form


def transpose_form(e: Expr, p: Printer) -> str:
    """``A'`` / ``A^\\top``, and ``X^{-\\top}`` for inv(X)'."""
    a = e.args[0]
    if not p.latex:
        return f"{p.wrap(a, POSTFIX)}'"
    if a.op is Op.INV:
        return f"{p.wrap(a.args[0], ATOM)}^{{-\\top}}"
    return f"{p.wrap(a, ATOM)}^\\top"


def call(name: str, latex: str | None = None) -> Form:
    """A function of the syntax: ``tr(A)`` / ``\\operatorname{tr}\\left(A\\right)``."""
    command = latex if latex is not None else f"\\operatorname{{{name}}}"

    def form(e: Expr, p: Printer) -> str:
        if p.latex:
            return f"{command}\\left({p.show(e.args[0])}\\right)"
        return f"{name}({p.show(e.args[0])})"

    return form


def around(text_name: str, left: str, right: str) -> Form:
    """A function written between delimiters in LaTeX: ``\\left|a\\right|``, ``\\sqrt{a}``."""

    def form(e: Expr, p: Printer) -> str:
        if p.latex:
            return f"{left}{p.show(e.args[0])}{right}"
        return f"{text_name}({p.show(e.args[0])})"

    return form


def norm_form(which: str) -> Form:
    """``norm2(A)`` / ``\\|A\\|_2`` (``_F`` for a matrix)."""

    def form(e: Expr, p: Printer) -> str:
        a = e.args[0]
        if not p.latex:
            return f"norm{which}({p.show(a)})"
        sub = "F" if which == "2" and not (a.shape[0] == 1 or a.shape[1] == 1) else which
        return f"\\left\\|{p.show(a)}\\right\\|_{sub}"

    return form


def inv_form(e: Expr, p: Printer) -> str:
    """``inv(X)`` / ``X^{-1}``."""
    if p.latex:
        return f"{p.wrap(e.args[0], ATOM)}^{{-1}}"
    return f"inv({p.show(e.args[0])})"


def sumidx_form(e: Expr, p: Printer) -> str:
    """``sum_n(A)`` / ``\\sum_{n} A``."""
    if p.latex:
        return f"\\sum_{{{e.name}}} {p.wrap(e.args[0], PRODUCT)}"
    return f"sum_{e.name}({p.show(e.args[0])})"


def term_form(e: Expr, p: Printer) -> str:
    """A weighted term tr(M*E) of the canonical form, written as such."""
    weight, body = e.args
    if p.latex:
        return f"\\operatorname{{tr}}\\left({p.wrap(weight, PRODUCT)} {p.wrap(body, POWER)}\\right)"
    return f"tr({p.wrap(weight, PRODUCT)}*{p.wrap(body, POWER)})"


def equation_form(e: Expr, p: Printer) -> str:
    """``lhs = rhs``; a zero right side is written 0 whatever its shape (the left side's)."""
    rhs = "0" if e.args[1].op is Op.ZERO else p.show(e.args[1])
    return f"{p.show(e.args[0])} = {rhs}"


def zero_form(e: Expr, p: Printer) -> str:
    """A zero vector or matrix: ``0*ones``, ``0*eye``, ``0*ones*ones'`` (which parse back to a
    zero of that shape, sized by the context), and 0 in LaTeX."""
    if p.latex:
        return "0"
    rows, cols = e.shape
    if cols == 1:
        return "0*ones"
    if rows == 1:
        return "0*ones'"
    if rows == cols:
        return "0*eye"
    return "0*ones*ones'"


GREEK = frozenset(
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau "
    "upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega".split()
)


def latex_name(name: str, indices: tuple[str, ...] = ()) -> str:
    """A variable name in LaTeX: Greek names as letters, a trailing ``_...`` as a subscript."""
    sub = "".join(indices)
    if not sub and "_" in name:
        name, sub = name.split("_", 1)
    if name in GREEK:
        base = f"\\{name}"
    elif name[-1:] == "2" and name[:-1] in GREEK:  # sigma2: the variance sigma^2
        base = f"\\{name[:-1]}^2"
    elif len(name) == 1:
        base = name
    else:
        base = f"\\mathit{{{name}}}"
    return f"{base}_{{{sub}}}" if sub else base


def variable_form(e: Expr, p: Printer) -> str:
    return latex_name(e.name, e.indices) if p.latex else e.full_name


def differential_form(e: Expr, p: Printer) -> str:
    v = e.args[0]
    return f"\\mathrm{{d}}{latex_name(v.name, v.indices)}" if p.latex else f"d{v.full_name}"


def d_form(e: Expr, p: Printer) -> str:
    if p.latex:
        return f"\\mathrm{{d}}\\left({p.show(e.args[0])}\\right)"
    return f"d({p.show(e.args[0])})"
