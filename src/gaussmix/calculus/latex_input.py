"""LaTeX as a student copies it from lecture notes, read into the input syntax.

A student's notes write ``(x_n - \\mu_k)^\\top \\Sigma_k^{-1} (x_n - \\mu_k)``,
``\\frac{1}{2} \\log\\det(\\Lambda_k)`` and ``\\sum_{n=1}^{N} q_{kn} \\log \\pi_k``. This module
rewrites such text into the syntax :mod:`~gaussmix.calculus.parse` reads
(``(x_n - mu_k)'*Sigma_k^-1*(x_n - mu_k)``), so the one grammar stays the only grammar: Greek
commands lose their backslash, ``^\\top`` and ``^T`` are transposes, ``^{-1}`` an inverse (the
parser reads a matrix to a negative power as one), ``\\frac{a}{b}`` a quotient, braces are
parentheses, ``\\|x\\|`` is ``norm2(x)`` and ``|A|`` ``det(A)``, juxtaposition is a product, a
function written without parentheses takes the next name (``\\log \\pi_k``), and ``\\sum_n``
sums the product that follows it, up to the next ``+`` or ``-`` outside brackets (the reading a
lecture's typesetting implies). Text without LaTeX passes through unchanged.
"""

from __future__ import annotations

import re

__all__ = ["from_latex", "is_latex"]

_LATEX = re.compile(r"\\[A-Za-z|]|[\^_]\{|\^T(?![A-Za-z0-9_])")

_DROP = re.compile(r"\\(left|right|bigl|bigr|Bigl|Bigr|big|Big|displaystyle)(?![A-Za-z])")
_SPACE = re.compile(r"\\[,;:! ]|\\quad(?![A-Za-z])|\\qquad(?![A-Za-z])")
_TIMES = re.compile(r"\\(cdot|times)(?![A-Za-z])")
_WRAPPER = re.compile(
    r"\\(mathbf|boldsymbol|bm|mathrm|operatorname|text|mathit|mathsf)\s*\{([^{}]*)\}"
)
_TRANSPOSE = re.compile(
    r"\^\s*(\{\s*(\\top|\\intercal|T|\\prime)\s*\}|\\top|\\intercal|T(?![A-Za-z0-9_]))"
)
_LOGDET = re.compile(r"\\log\s*\\det(?![A-Za-z])")
_SUM = re.compile(r"\\sum\s*_\s*\{?\s*([A-Za-z])\s*(=[^}^]*)?\}?(\s*\^\s*(\{[^}]*\}|[A-Za-z0-9]))?")
_LOG_BARS = re.compile(r"\\log\s*(?:\||\\lvert)([^|]*?)(?:\||\\rvert)")
_COMMAND = re.compile(r"\\([A-Za-z]+)")
_SUBSCRIPT = re.compile(r"_\{\s*([A-Za-z0-9]+)\s*\}")
_RENAMES = {"ln": "log", "Tr": "tr", "trace": "tr"}

_TOKEN = re.compile(r"\s*(sum_[A-Za-z]\b|[A-Za-z][A-Za-z0-9_]*|\d+(\.\d+)?|\.[*/^]|[-+*/^'(),]|\S)")


def is_latex(text: str) -> bool:
    """Whether ``text`` uses LaTeX (a backslash command, ``_{...}``, ``^{...}`` or ``^T``)."""
    return bool(_LATEX.search(text))


def from_latex(text: str, functions: frozenset[str] = frozenset()) -> str:
    """The input syntax for LaTeX text (unchanged when it has none).

    Parameters
    ----------
    text : str
        ``(x_n - \\mu_k)^\\top \\Sigma_k^{-1} (x_n - \\mu_k)``.
    functions : frozenset of str
        The function names of the syntax: a name among them followed by ``(`` is a call, and
        one without ``(`` takes the next name as its argument.

    Returns
    -------
    str
        ``(x_n - mu_k)'*Sigma_k^-1*(x_n - mu_k)``.
    """
    if not is_latex(text):
        return text
    s = _DROP.sub("", text)
    s = _SPACE.sub(" ", s)
    s = _TIMES.sub("*", s)
    while _WRAPPER.search(s):
        s = _WRAPPER.sub(r"\2", s)
    s = _fractions(s)
    s = _TRANSPOSE.sub("'", s)
    s = _LOGDET.sub(" logdet ", s)
    s = _LOG_BARS.sub(r" logdet(\1)", s)
    s = _SUM.sub(lambda m: f" sum_{m.group(1)} ", s)
    s = _bars(s)
    s = _COMMAND.sub(lambda m: " " + _RENAMES.get(m.group(1), m.group(1)), s)
    s = _SUBSCRIPT.sub(r"_\1", s)
    s = s.replace("{", "(").replace("}", ")")
    return _products(s, functions)


def _fractions(s: str) -> str:
    """``\\frac{a}{b}`` (nested too) as ``((a)/(b))``."""
    while (start := s.find("\\frac")) >= 0:
        i = start + len("\\frac")
        parts = []
        for _ in range(2):
            while i < len(s) and s[i].isspace():
                i += 1
            if i >= len(s) or s[i] != "{":
                return s  # not the form this reads; the parser reports what it finds
            end = _closing(s, i)
            if end < 0:
                return s
            parts.append(s[i + 1 : end])
            i = end + 1
        s = f"{s[:start]}(({parts[0]})/({parts[1]})){s[i:]}"
    return s


def _closing(s: str, i: int) -> int:
    depth = 0
    for j in range(i, len(s)):
        depth += {"{": 1, "}": -1}.get(s[j], 0)
        if depth == 0:
            return j
    return -1


def _bars(s: str) -> str:
    """``\\|x\\|`` and ``\\lVert x \\rVert`` as ``norm2(x)``; ``|A|`` and ``\\lvert A \\rvert``
    as ``det(A)`` (bars pair up left to right)."""
    s = s.replace("\\lVert", " norm2(").replace("\\rVert", ")")
    s = s.replace("\\lvert", " det(").replace("\\rvert", ")")
    out, norm_open, det_open, i = [], False, False, 0
    while i < len(s):
        if s.startswith("\\|", i):
            out.append(")" if norm_open else " norm2(")
            norm_open, i = not norm_open, i + 2
        elif s[i] == "|":
            out.append(")" if det_open else " det(")
            det_open, i = not det_open, i + 1
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _products(s: str, functions: frozenset[str]) -> str:
    """Juxtaposition as ``*``, a function's bare argument in parentheses, and each ``sum_n``'s
    extent in parentheses."""
    tokens = [m.group(1) for m in _TOKEN.finditer(s)]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        call = out and (out[-1].startswith("sum_") or out[-1] in functions) and t == "("
        if out and _ends_operand(out[-1]) and _starts_operand(t) and not call:
            out.append("*")
        if t in functions and _is_name(nxt) and nxt not in functions:
            out += [t, "(", nxt, ")"]  # \log \pi_k is log(pi_k)
            i += 2
            continue
        out.append(t)
        i += 1
    return " ".join(_sums(out)).replace(" ( ", "(").replace("( ", "(").replace(" )", ")")


_BINDS = ("*", "/", "^", "(", ".*", "./", ".^")
"""Tokens after which a sign is unary (it stays inside the sum)."""


def _is_name(t: str) -> bool:
    return bool(t) and (t[0].isalpha())


def _ends_operand(t: str) -> bool:
    return t[0].isalnum() or t in (")", "'")


def _starts_operand(t: str) -> bool:
    return t[0].isalnum() or t == "(" or t.startswith("sum_")


def _sums(tokens: list[str]) -> list[str]:
    """``sum_n a b + c`` as ``sum_n ( a b ) + c``: a sum takes the product after it."""
    out = list(tokens)
    i = 0
    while i < len(out):
        if out[i].startswith("sum_") and (i + 1 >= len(out) or out[i + 1] != "("):
            j, depth = i + 1, 0
            while j < len(out):
                t = out[j]
                if t == "(":
                    depth += 1
                elif t in (")", ","):
                    if depth == 0:
                        break
                    depth -= 1 if t == ")" else 0
                elif t in ("+", "-") and depth == 0 and j > i + 1 and out[j - 1] not in _BINDS:
                    break
                j += 1
            # a product sign between the sum and its first factor is not part of the sum
            body = out[i + 1 : j]
            if body and body[0] == "*":
                body = body[1:]
            out[i + 1 : j] = ["(", *body, ")"]
        i += 1
    return out
