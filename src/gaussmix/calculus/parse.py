"""Parser: text in the syntax of ``grammar.lark`` to :class:`~gaussmix.calculus.expr.Expr`.

The grammar lives in its own file and lark's LALR parser reads it (no hand-rolled string
handling, nothing passed to ``eval``). The parse tree is then walked iteratively, bottom up, and
turned into nodes by the smart constructors of :mod:`~gaussmix.calculus.expr`; shapes are
inferred on the way by unifying symbolic dimensions. Every failure is a :class:`ParseError` or a
:class:`CalculusError` with the position of the offending character, so that a caret can be drawn
under it; unknown function names get the nearest known name as a suggestion, and input nested
deeper than :data:`~gaussmix.calculus.expr.MAX_DEPTH` is refused with a clean error.

Kinds of undeclared names follow matrixcalculus.org: a-g scalars, h-z vectors, A-Z matrices
(multi-letter names by their first letter), with the Greek names of
:mod:`~gaussmix.calculus.kinds`; ``parse(..., infer=True)`` infers them from the expression
where the convention leaves them open. Dimension symbols never reuse a letter of the text typed.
``eye`` is the identity matrix and ``ones`` the vector of ones, their sizes inferred from the
context.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import re
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from typing import Any

import lark

from gaussmix.calculus import expr as E
from gaussmix.calculus.errors import CalculusError, ParseError
from gaussmix.calculus.expr import CONSTANTS, MAX_DEPTH, Dim, Dims, Expr, Kind, Op
from gaussmix.calculus.kinds import convention_kind, infer_kinds
from gaussmix.calculus.latex_input import from_latex, is_latex
from gaussmix.calculus.ops import FUNCTIONS, apply

__all__ = ["KIND_NAMES", "MAX_LENGTH", "as_kind", "convention_kind", "parse", "parse_kinds"]

MAX_LENGTH = 4000
"""Longest input accepted, in characters."""

KIND_NAMES: dict[str, Kind] = {k.value: k for k in Kind}

# Names people reach for, mapped to what the syntax calls them.
ALIASES: dict[str, str] = {
    "trace": "tr",
    "Tr": "tr",
    "inverse": "inv",
    "determinant": "det",
    "ln": "log",
    "log_det": "logdet",
    "logdeterminant": "logdet",
    "norm": "norm2",
    "frobenius": "norm2",
    "transpose": "the postfix ' (as in A')",
    "I": "eye",
    "sigmoid": "1/(1 + exp(-t)) for sigmoid(t)",
    "sigma": "1/(1 + exp(-t)) for the sigmoid sigma(t)",
    "logistic": "1/(1 + exp(-t)) for logistic(t)",
}


@functools.lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    grammar = importlib.resources.files("gaussmix.calculus").joinpath("grammar.lark").read_text()
    return lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse_kinds(spec: str) -> dict[str, Kind]:
    """Read ``"x:vector,S:symmetric"`` (the command line's ``--types``) into a dict.

    Raises
    ------
    CalculusError
        For an entry without a colon or an unknown kind (with the nearest kind suggested).
    """
    out: dict[str, Kind] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, kind = (s.strip() for s in item.partition(":"))
        if not sep or not name or not kind:
            raise CalculusError(
                f"cannot read the type '{item}': write name:kind, as in x:vector,S:symmetric"
            )
        out[name] = as_kind(name, kind)
    return out


def as_kind(name: str, kind: str | Kind) -> Kind:
    """A kind given by name (with the nearest kind suggested when the name is unknown)."""
    if isinstance(kind, Kind):
        return kind
    if kind in KIND_NAMES:
        return KIND_NAMES[kind]
    near = difflib.get_close_matches(kind, list(KIND_NAMES), n=1, cutoff=0.5)
    hint = f"; did you mean '{near[0]}'?" if near else ""
    raise CalculusError(
        f"unknown kind '{kind}' for {name}: kinds are {', '.join(KIND_NAMES)}{hint}"
    )


# ---------------------------------------------------------------------------------------------
# Dimensions: union-find over symbols, errors pointing into the source
# ---------------------------------------------------------------------------------------------

_DIM_NAMES = "nmpqrstuvwabcdefghijklozy"


class _SourceDims(Dims):
    def __init__(self, text: str, avoid: frozenset[str] = frozenset()) -> None:
        self.text = text
        self.parent: dict[str, str] = {}
        self.order: dict[str, int] = {}
        self.span = (0, len(text))
        # Letters of the text typed (any case): "lambda is q×1" must not read as a name.
        self.letters = [c for c in _DIM_NAMES if c not in avoid] or list(_DIM_NAMES)

    def fresh(self) -> Dim:
        i = len(self.order)
        letters = self.letters
        while True:
            name = letters[i % len(letters)] + (str(i // len(letters)) if i >= len(letters) else "")
            if name not in self.parent:
                break
            i += 1
        self.register(name)
        return name

    def register(self, name: str) -> None:
        """Take over a dimension of an expression parsed before (see ``parse(context=...)``)."""
        if name not in self.parent:
            self.parent[name] = name
            self.order[name] = len(self.order)

    def resolve(self, d: Dim) -> Dim:
        if d == 1 or not isinstance(d, str):
            return d
        root = d
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[d] != root:  # path compression
            self.parent[d], d = root, self.parent[d]
        return root

    def unify(self, a: Dim, b: Dim, why: Callable[[], str]) -> None:
        ra, rb = self.resolve(a), self.resolve(b)
        if ra == rb:
            return
        if ra == 1 or rb == 1:
            start, end = self.span
            raise CalculusError(
                f"shape mismatch in '{self.text[start:end]}': {why()}",
                source=self.text,
                position=start,
            )
        assert isinstance(ra, str) and isinstance(rb, str)  # the 1 case is handled above
        older, newer = (ra, rb) if self.order[ra] < self.order[rb] else (rb, ra)
        self.parent[newer] = older


# ---------------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------------


# a literal's exponent, bounded: numbers stay exact fractions, and 1e4300's 4301 digits would
# exceed Python's integer-to-text limit when printed (a float overflows past 1e308 anyway)
MAX_EXPONENT = 300
_EXPONENT = re.compile(r"[eE]([+-]?\d+)$")


def _syntax_error(text: str, exc: lark.exceptions.UnexpectedInput) -> ParseError:
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        return ParseError(
            f"unexpected character '{text[pos]}' at column {pos + 1}; "
            "the syntax has + - * / .* ./ ^ .^ ' ( ) and function calls",
            source=text,
            position=pos,
        )
    if isinstance(exc, lark.exceptions.UnexpectedToken) and exc.token.type != "$END":
        token = exc.token
        pos = token.start_pos if token.start_pos is not None else len(text)
        if token.type in ("NAME", "NUMBER", "LPAR"):
            hint = "an operator is missing before it (products need an explicit *)"
        elif token.type in ("RPAR", "COMMA"):
            hint = "an operand is missing before it, or the parentheses do not match"
        else:
            hint = "an operand is missing before it"
        return ParseError(
            f"unexpected '{token}' at column {pos + 1}: {hint}", source=text, position=pos
        )
    return ParseError(
        "the expression ends too early: an operand or a ')' is missing",
        source=text,
        position=len(text),
    )


class _Builder:
    """Turns a lark tree into nodes, bottom up, without recursion."""

    def __init__(
        self,
        text: str,
        types: Mapping[str, Kind],
        indices: frozenset[str],
        context: Expr | None = None,
    ) -> None:
        self.text = text
        self.types = types
        self.indices = indices
        self.dims = _SourceDims(text, frozenset(re.sub(r"[^a-z]", "", text.lower())))
        self.variables: dict[str, Expr] = {}
        for node in context.walk() if context is not None else ():
            if node.op is Op.VAR and node.name not in self.variables:
                for d in node.shape:
                    if isinstance(d, str):
                        self.dims.register(d)
                self.variables[node.name] = E.var(node.name, node.kind or Kind.MATRIX, node.shape)

    # -- leaves ----------------------------------------------------------------------------
    def split_name(self, name: str) -> tuple[str, tuple[str, ...]]:
        """``x_n`` -> (``x``, (``n``,)) when n is a declared index; otherwise no indices."""
        base, sep, suffix = name.rpartition("_")
        if sep and base and suffix and all(c in self.indices for c in suffix):
            return base, tuple(suffix)
        return name, ()

    def name(self, token: lark.Token) -> Expr:
        name = str(token)
        if name == "eye":
            return E.eye(self.dims.fresh())
        if name == "ones":
            return E.ones(self.dims.fresh())
        if name in FUNCTIONS:
            raise CalculusError(
                f"{name} is a function: write {name}(...)",
                source=self.text,
                position=token.start_pos,
            )
        base, indices = self.split_name(name)
        template = self.variables.get(base)
        if template is None:
            kind = self.types.get(base) or self.types.get(name) or convention_kind(base)
            if kind.is_scalar:
                shape: tuple[Dim, Dim] = (1, 1)
            elif kind is Kind.VECTOR:
                shape = (self.dims.fresh(), 1)
            elif kind.is_symmetric:
                n = self.dims.fresh()
                shape = (n, n)
            else:
                shape = (self.dims.fresh(), self.dims.fresh())
            template = E.var(base, kind, shape)
            self.variables[base] = template
        return E.var(base, template.kind or Kind.MATRIX, template.shape, indices)

    def number(self, token: lark.Token) -> Expr:
        exponent = _EXPONENT.search(str(token))
        if exponent and abs(int(exponent.group(1))) > MAX_EXPONENT:
            pos = token.start_pos or 0
            raise ParseError(
                f"the number {token} at column {pos + 1} is out of range: numbers are "
                f"written between 1e-{MAX_EXPONENT} and 1e{MAX_EXPONENT} (a scale that large "
                "belongs in a variable)",
                source=self.text,
                position=pos,
            )
        return E.num(Fraction(str(token)))

    # -- calls -----------------------------------------------------------------------------
    def call(self, token: lark.Token, args: list[Expr]) -> Expr:
        fname = str(token)
        if fname.startswith("sum_") and fname[4:] in self.indices:
            self._one_argument(fname, token, args)
            return E.sumidx(fname[4:], args[0])
        if fname not in FUNCTIONS:
            raise CalculusError(
                f"unknown function '{fname}'{self._suggest(fname)}",
                source=self.text,
                position=token.start_pos,
            )
        self._one_argument(fname, token, args)
        return apply(FUNCTIONS[fname], args[0], self.dims)

    def _one_argument(self, fname: str, token: lark.Token, args: list[Expr]) -> None:
        if len(args) != 1:
            raise CalculusError(
                f"{fname} takes one argument, not {len(args)}",
                source=self.text,
                position=token.start_pos,
            )

    def _suggest(self, fname: str) -> str:
        if fname in ALIASES:
            return f"; did you mean {ALIASES[fname]}?"
        known = [*FUNCTIONS, *CONSTANTS]
        near = difflib.get_close_matches(fname, known, n=1, cutoff=0.5)
        if not near:
            near = difflib.get_close_matches(fname.lower(), known, n=1, cutoff=0.5)
        if near:
            return f"; did you mean '{near[0]}'?"
        return f"; the functions are {', '.join(FUNCTIONS)}"

    # -- the walk --------------------------------------------------------------------------
    def build(self, tree: lark.Tree[Any] | lark.Token) -> Expr:
        done: dict[int, Expr] = {}
        stack: list[tuple[Any, bool]] = [(tree, False)]
        while stack:
            node, expanded = stack.pop()
            if isinstance(node, lark.Token):
                done[id(node)] = self.leaf(node)
                continue
            if node.data in ("name", "number"):
                done[id(node)] = self.leaf(node.children[0])
                continue
            operands = node.children[1:] if node.data == "call" else node.children
            if not expanded:
                stack.append((node, True))
                stack.extend((c, False) for c in reversed(operands))
                continue
            args = [done.pop(id(c)) for c in operands]
            done[id(node)] = self.interior(node, args)
        return done[id(tree)]

    def leaf(self, token: lark.Token) -> Expr:
        if token.type == "NUMBER":
            return self.number(token)
        return self.name(token)

    def interior(self, node: lark.Tree[Any], args: list[Expr]) -> Expr:
        meta = node.meta
        start = getattr(meta, "start_pos", 0)
        end = getattr(meta, "end_pos", len(self.text))
        self.dims.span = (start, end)
        try:
            out = self._combine(node, args)
        except CalculusError as exc:
            if exc.position is not None:
                raise
            raise CalculusError(
                f"{exc.message} (in '{self.text[start:end]}')", source=self.text, position=start
            ) from None
        if out.depth > MAX_DEPTH:
            raise CalculusError(
                f"the expression is nested too deeply (more than {MAX_DEPTH} levels); "
                "split it into smaller expressions",
                source=self.text,
                position=start,
            )
        return out

    def _combine(self, node: lark.Tree[Any], args: list[Expr]) -> Expr:
        rule = node.data
        dims = self.dims
        if rule == "call":
            name = node.children[0]
            assert isinstance(name, lark.Token)  # the grammar's call starts with a NAME
            return self.call(name, args)
        if rule == "neg":
            return E.neg(args[0])
        if rule == "transpose":
            return E.transpose(args[0])
        if rule == "pow" and not args[0].is_scalar and _negative_integer(args[1]):
            # Sigma^-1, as notes write an inverse (Sigma^-2 = inv(Sigma)^2)
            inverse = apply(FUNCTIONS["inv"], args[0], dims)
            k = args[1].args[0]
            return inverse if E.is_number(k, 1) else E.power(inverse, k, dims)
        binary: dict[str, Callable[[Expr, Expr, Dims], Expr]] = {
            "add": E.add,
            "sub": E.sub,
            "mul": E.mul,
            "div": E.div,
            "hadamard": E.hadamard,
            "ediv": E.ediv,
            "pow": E.power,
            "epow": E.epower,
        }
        return binary[str(rule)](args[0], args[1], dims)

    def resolve(self, e: Expr) -> Expr:
        """Rebuild with every dimension replaced by its representative."""
        memo: dict[int, Expr] = {}

        def go(node: Expr) -> Expr:
            hit = memo.get(id(node))
            if hit is not None:
                return hit
            shape = (self.dims.resolve(node.shape[0]), self.dims.resolve(node.shape[1]))
            args = [go(a) for a in node.args]
            out = Expr(
                node.op,
                args,
                shape,
                name=node.name,
                value=node.value,
                kind=node.kind,
                indices=node.indices,
            )
            memo[id(node)] = out
            return out

        return go(e)


_ILLEGAL = re.compile(r"[^\x20-\x7e\t\n\r]")


def parse(
    text: str,
    types: Mapping[str, str | Kind] | None = None,
    *,
    indices: Iterable[str] = (),
    context: Expr | None = None,
    shape: tuple[Dim, Dim] | None = None,
    infer: bool = False,
) -> Expr:
    """Parse an expression.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"x'*A*x"`` or ``"log(det(X))"``.
    types : mapping of str to str, optional
        Kinds of names (``scalar``, ``positive``, ``vector``, ``matrix``, ``symmetric``,
        ``spd``); other names follow the convention a-g scalar, h-z vector, A-Z matrix.
    indices : iterable of str, optional
        Single-letter index names. With ``indices="nk"``, ``x_n`` is the variable ``x`` with
        index ``n`` and ``sum_n(...)`` sums over ``n``.
    context : Expr, optional
        An expression parsed before: its variables keep their kinds and dimensions here (to
        read a claimed gradient in the terms of the expression it is the gradient of).
    shape : (Dim, Dim), optional
        A shape the result must have (dimensions of ``context``).
    infer : bool
        Infer the kinds of undeclared names from the expression, which must be a well-formed
        scalar (a function to differentiate); the letter convention decides only what it
        leaves open (see :mod:`~gaussmix.calculus.kinds`). ``shape`` does not apply then.

    Returns
    -------
    Expr
        The expression, with inferred symbolic shapes.

    Raises
    ------
    ParseError
        For text that is not in the syntax (with the position of the offending character).
    CalculusError
        For unknown functions or kinds, mismatched shapes and too deep nesting.
    """
    if not isinstance(text, str):
        raise CalculusError(f"an expression must be a string, not {type(text).__name__}")
    if not text.strip():
        raise ParseError("the expression is empty", source=text, position=0)
    if len(text) > MAX_LENGTH:
        raise ParseError(f"the expression is longer than {MAX_LENGTH} characters")
    bad = _ILLEGAL.search(text)
    if bad:
        raise ParseError(
            f"unexpected character {bad.group()!r} at column {bad.start() + 1}",
            source=text,
            position=bad.start(),
        )
    if is_latex(text):  # copied from lecture notes: \mu_k, \Sigma_k^{-1}, x^\top
        text = from_latex(text, frozenset(FUNCTIONS))
    kinds = {name: as_kind(name, kind) for name, kind in (types or {}).items()}
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    if infer:
        return _inferred(text, tree, kinds, frozenset(indices), context)
    builder = _Builder(text, kinds, frozenset(indices), context)
    out = builder.build(tree)
    if shape is not None:
        dims = builder.dims

        def why() -> str:
            return f"it is {_describe_shape(out, dims)}, but it should be {dims.show(shape)}"

        if out.is_scalar != (shape == (1, 1)):
            raise CalculusError(f"{text} has the wrong shape: {why()}")
        dims.span = (0, len(text))
        dims.unify(out.shape[0], shape[0], why)
        dims.unify(out.shape[1], shape[1], why)
    return builder.resolve(out)


def _inferred(
    text: str,
    tree: lark.Tree[Any] | lark.Token,
    kinds: Mapping[str, Kind],
    indices: frozenset[str],
    context: Expr | None,
) -> Expr:
    """Build ``tree`` with the kinds :func:`~gaussmix.calculus.kinds.infer_kinds` settles on."""
    probe = _Builder(text, kinds, indices, context)
    tokens = [tree] if isinstance(tree, lark.Token) else []
    if isinstance(tree, lark.Tree):
        tokens += [t.children[0] for t in tree.iter_subtrees_topdown() if t.data == "name"]
    names: dict[str, str] = {}
    declared: dict[str, Kind] = {}
    for token in tokens:
        written = str(token)
        if written in CONSTANTS or written in FUNCTIONS:
            continue
        base, _ = probe.split_name(written)
        if base in probe.variables:
            continue  # a variable of the context keeps its kind
        kind = kinds.get(base) or kinds.get(written)
        if kind is not None:
            declared[base] = kind
        else:
            names.setdefault(base, written)
    last: list[_Builder] = []

    def build(assignment: Mapping[str, Kind]) -> Expr:
        builder = _Builder(text, {**kinds, **assignment}, indices, context)
        last[:] = [builder]
        return builder.build(tree)

    def describe(e: Expr) -> str:
        return _describe_shape(e, last[0].dims)

    out = infer_kinds(list(names.items()), declared, build, describe)
    return last[0].resolve(out)


def _negative_integer(e: Expr) -> bool:
    """Whether ``e`` is -k for a whole number k (the exponent of ``Sigma^-1``)."""
    return (
        e.op is Op.NEG
        and e.args[0].op is Op.NUM
        and e.args[0].value is not None
        and e.args[0].value.denominator == 1
    )


def _describe_shape(e: Expr, dims: Dims) -> str:
    return "a scalar" if e.is_scalar else dims.show(e.shape)
