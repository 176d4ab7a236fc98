"""Text and LaTeX printers: one entry per operator, and one precedence table.

The text printer writes the input syntax back, with exactly the parentheses the grammar needs,
so that ``parse(to_text(e)) == e`` (except for differentials, which are not input, and for the
zero vector or matrix, which prints as ``0``). Binary operators of one precedence level
associate to the left: a left operand of the same level needs no parentheses, a right one does.
The LaTeX printer follows the same table, with textbook notation (``X^{-\\top}``,
``\\operatorname{tr}``, ``\\odot``)."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from gaussmix.calculus.expr import Expr, Op

__all__ = ["PRECEDENCE", "to_latex", "to_text"]

SUM, NEG, PRODUCT, POWER, POSTFIX, ATOM = 10, 15, 20, 30, 40, 50

PRECEDENCE: dict[Op, int] = {
    Op.EQ: 0,
    Op.ADD: SUM,
    Op.NEG: NEG,
    Op.MATMUL: PRODUCT,
    Op.SCALE: PRODUCT,
    Op.DIV: PRODUCT,
    Op.HADAMARD: PRODUCT,
    Op.EDIV: PRODUCT,
    Op.POW: POWER,
    Op.MPOW: POWER,
    Op.EPOW: POWER,
    Op.TRANSPOSE: POSTFIX,
}
"""Binding strength of each operator; every operator not listed is an atom (a name, a call)."""


def precedence(e: Expr) -> int:
    """The precedence of a node (a fraction like 1/2 prints as a quotient)."""
    if e.op is Op.NUM:
        assert e.value is not None  # invariant of NUM nodes
        return ATOM if e.value.denominator == 1 else PRODUCT
    return PRECEDENCE.get(e.op, ATOM)


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------


def _t(e: Expr, minimum: int) -> str:
    """Text of ``e`` in a position that needs at least ``minimum`` precedence."""
    text = to_text(e)
    return f"({text})" if precedence(e) < minimum else text


def _number_text(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"


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


def _add_text(e: Expr) -> str:
    parts = []
    for i, (negated, term) in enumerate(_add_terms(e)):
        if i == 0:
            parts.append(_t(term, NEG))
        elif negated:
            parts.append(f" - {_t(term, NEG)}")
        else:
            parts.append(f" + {_t(term, NEG) if term.op is not Op.NEG else f'({to_text(term)})'}")
    return "".join(parts)


def _neg_text(e: Expr) -> str:
    inner = e.args[0]
    if inner.op is Op.NEG:
        return f"-({to_text(inner)})"
    return f"-{_t(inner, NEG)}"


def _binary_text(symbol: str) -> Callable[[Expr], str]:
    def fmt(e: Expr) -> str:
        left, right = e.args
        if e.op is Op.EDIV:
            left = spread_scalar(left) or left  # 1./x, as the parser spreads it back
        return f"{_t(left, PRODUCT)}{symbol}{_t(right, POWER)}"

    return fmt


def _scale_text(e: Expr) -> str:
    c, a = e.args
    # c*A*B reads as c*(A*B): the constructor pulls scalars out of matrix products. Not when the
    # first factor is itself a quotient or elementwise product: c*A/d*B reads as ((c*A)/d)*B.
    bare = a.op is Op.MATMUL and precedence(a.args[0]) != PRODUCT
    right = to_text(a) if bare else _t(a, POWER)
    return f"{_t(c, PRODUCT)}*{right}"


def _matmul_text(e: Expr) -> str:
    first, *rest = e.args
    return "*".join([_t(first, PRODUCT), *(_t(f, POWER) for f in rest)])


def _power_text(symbol: str) -> Callable[[Expr], str]:
    def fmt(e: Expr) -> str:
        base, p = e.args
        # x^-1 needs no parentheses, x^-(1/2) does: the grammar allows a sign in an exponent.
        signed = p.op is Op.NEG and precedence(p.args[0]) >= POWER
        exponent = to_text(p) if signed else _t(p, POWER)
        return f"{_t(base, POSTFIX)}{symbol}{exponent}"

    return fmt


def _call_text(fname: str) -> Callable[[Expr], str]:
    return lambda e: f"{fname}({to_text(e.args[0])})"


TEXT: dict[Op, Callable[[Expr], str]] = {
    Op.NUM: lambda e: _number_text(e.value if e.value is not None else Fraction(0)),
    Op.VAR: lambda e: e.full_name,
    Op.EYE: lambda e: "eye",
    Op.ONES: lambda e: "ones",
    Op.ZERO: lambda e: "0",
    Op.DIM: lambda e: e.name,
    Op.DIFF: lambda e: f"d{e.args[0].full_name}",
    Op.D: lambda e: f"d({to_text(e.args[0])})",
    Op.ADD: _add_text,
    Op.NEG: _neg_text,
    Op.MATMUL: _matmul_text,
    Op.SCALE: _scale_text,
    Op.DIV: _binary_text("/"),
    Op.HADAMARD: _binary_text(".*"),
    Op.EDIV: _binary_text("./"),
    Op.POW: _power_text("^"),
    Op.MPOW: _power_text("^"),
    Op.EPOW: _power_text(".^"),
    Op.TRANSPOSE: lambda e: f"{_t(e.args[0], POSTFIX)}'",
    Op.TR: _call_text("tr"),
    Op.DET: _call_text("det"),
    Op.LOGDET: _call_text("logdet"),
    Op.INV: _call_text("inv"),
    Op.DIAGM: _call_text("diag"),
    Op.DIAGV: _call_text("diag"),
    Op.SUM: _call_text("sum"),
    Op.NORM1: _call_text("norm1"),
    Op.NORM2: _call_text("norm2"),
    Op.LOG: _call_text("log"),
    Op.EXP: _call_text("exp"),
    Op.SQRT: _call_text("sqrt"),
    Op.SIN: _call_text("sin"),
    Op.COS: _call_text("cos"),
    Op.TANH: _call_text("tanh"),
    Op.ABS: _call_text("abs"),
    Op.SIGN: _call_text("sign"),
    Op.SUMIDX: lambda e: f"sum_{e.name}({to_text(e.args[0])})",
    Op.EQ: lambda e: f"{to_text(e.args[0])} = {to_text(e.args[1])}",
}


def to_text(e: Expr) -> str:
    """The expression in the input syntax; ``parse(to_text(e)) == e``.

    Parameters
    ----------
    e : Expr
        Any expression (differentials print as ``dX`` and ``d(...)``, which do not parse back).

    Returns
    -------
    str
    """
    return TEXT[e.op](e)


# ---------------------------------------------------------------------------------------------
# LaTeX
# ---------------------------------------------------------------------------------------------

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


def _l(e: Expr, minimum: int) -> str:
    text = to_latex(e)
    return f"\\left({text}\\right)" if _latex_precedence(e) < minimum else text


def _latex_precedence(e: Expr) -> int:
    if e.op is Op.NUM or e.op is Op.DIV:
        return ATOM  # \frac{..}{..} is a single block
    if e.op is Op.SUMIDX:
        return PRODUCT
    return precedence(e)


def _number_latex(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _add_latex(e: Expr) -> str:
    parts = []
    for i, (negated, term) in enumerate(_add_terms(e)):
        if i == 0:
            parts.append(_l(term, NEG))
        elif negated:
            parts.append(f" - {_l(term, NEG)}")
        else:
            parts.append(f" + {_l(term, NEG)}")
    return "".join(parts)


def _juxtapose(factors: list[str], raw: list[Expr]) -> str:
    out = factors[0]
    for text, node in zip(factors[1:], raw[1:], strict=True):
        # Two numbers side by side need a visible product sign.
        sep = " \\cdot " if node.op is Op.NUM or text[:1].isdigit() else " "
        out += sep + text
    return out


def _matmul_latex(e: Expr) -> str:
    factors = [_l(e.args[0], PRODUCT), *(_l(f, POWER) for f in e.args[1:])]
    return _juxtapose(factors, list(e.args))


def _scale_latex(e: Expr) -> str:
    c, a = e.args
    bare = a.op is Op.MATMUL and _latex_precedence(a.args[0]) != PRODUCT
    right = to_latex(a) if bare else _l(a, POWER)
    return _juxtapose([_l(c, PRODUCT), right], [c, a])


def _transpose_latex(e: Expr) -> str:
    a = e.args[0]
    if a.op is Op.INV:
        return f"{_l(a.args[0], ATOM)}^{{-\\top}}"
    return f"{_l(a, ATOM)}^\\top"


def _fn(command: str) -> Callable[[Expr], str]:
    return lambda e: f"{command}\\left({to_latex(e.args[0])}\\right)"


def _norm_latex(which: str) -> Callable[[Expr], str]:
    def fmt(e: Expr) -> str:
        a = e.args[0]
        sub = "F" if which == "2" and not (a.shape[0] == 1 or a.shape[1] == 1) else which
        return f"\\left\\|{to_latex(a)}\\right\\|_{sub}"

    return fmt


LATEX: dict[Op, Callable[[Expr], str]] = {
    Op.NUM: lambda e: _number_latex(e.value if e.value is not None else Fraction(0)),
    Op.VAR: lambda e: latex_name(e.name, e.indices),
    Op.EYE: lambda e: "I",
    Op.ONES: lambda e: "\\mathbf{1}",
    Op.ZERO: lambda e: "0",
    Op.DIM: lambda e: e.name,
    Op.DIFF: lambda e: f"\\mathrm{{d}}{latex_name(e.args[0].name, e.args[0].indices)}",
    Op.D: lambda e: f"\\mathrm{{d}}\\left({to_latex(e.args[0])}\\right)",
    Op.ADD: _add_latex,
    Op.NEG: lambda e: f"-{_l(e.args[0], PRODUCT if e.args[0].op is Op.NEG else NEG)}",
    Op.MATMUL: _matmul_latex,
    Op.SCALE: _scale_latex,
    Op.DIV: lambda e: f"\\frac{{{to_latex(e.args[0])}}}{{{to_latex(e.args[1])}}}",
    Op.HADAMARD: lambda e: f"{_l(e.args[0], PRODUCT)} \\odot {_l(e.args[1], POWER)}",
    Op.EDIV: lambda e: (
        f"{_l(spread_scalar(e.args[0]) or e.args[0], PRODUCT)} \\oslash {_l(e.args[1], POWER)}"
    ),
    Op.POW: lambda e: f"{_l(e.args[0], ATOM)}^{{{to_latex(e.args[1])}}}",
    Op.MPOW: lambda e: f"{_l(e.args[0], ATOM)}^{{{to_latex(e.args[1])}}}",
    Op.EPOW: lambda e: f"{_l(e.args[0], ATOM)}^{{\\circ {to_latex(e.args[1])}}}",
    Op.TRANSPOSE: _transpose_latex,
    Op.TR: _fn("\\operatorname{tr}"),
    Op.DET: _fn("\\det"),
    Op.LOGDET: _fn("\\log\\det"),
    Op.INV: lambda e: f"{_l(e.args[0], ATOM)}^{{-1}}",
    Op.DIAGM: _fn("\\operatorname{diag}"),
    Op.DIAGV: _fn("\\operatorname{diag}"),
    Op.SUM: _fn("\\operatorname{sum}"),
    Op.NORM1: _norm_latex("1"),
    Op.NORM2: _norm_latex("2"),
    Op.LOG: _fn("\\log"),
    Op.EXP: _fn("\\exp"),
    Op.SQRT: lambda e: f"\\sqrt{{{to_latex(e.args[0])}}}",
    Op.SIN: _fn("\\sin"),
    Op.COS: _fn("\\cos"),
    Op.TANH: _fn("\\tanh"),
    Op.ABS: lambda e: f"\\left|{to_latex(e.args[0])}\\right|",
    Op.SIGN: _fn("\\operatorname{sign}"),
    Op.SUMIDX: lambda e: f"\\sum_{{{e.name}}} {_l(e.args[0], PRODUCT)}",
    Op.EQ: lambda e: f"{to_latex(e.args[0])} = {to_latex(e.args[1])}",
}


def to_latex(e: Expr) -> str:
    """The expression in LaTeX (math mode, without the dollars).

    Parameters
    ----------
    e : Expr

    Returns
    -------
    str
        For example ``x x^\\top`` for ``x*x'``, ``X^{-\\top}`` for ``inv(X)'``.
    """
    return LATEX[e.op](e)
