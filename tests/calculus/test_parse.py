"""The parser: kinds, shapes, canonical trees, errors with a caret, suggestions, nesting, fuzz."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gaussmix.calculus import CalculusError, Kind, Op, ParseError, parse, to_text
from gaussmix.calculus.expr import MAX_DEPTH
from gaussmix.calculus.parse import parse_kinds


def _vars(e):  # type: ignore[no-untyped-def]
    return {n.name: n for n in e.walk() if n.op is Op.VAR}


def test_kinds_follow_the_convention_and_types_override_it() -> None:
    v = _vars(parse("alpha*x'*A*hat + Sigma1*x + Gamma1*x"))
    assert v["alpha"].kind is Kind.SCALAR and v["alpha"].is_scalar
    assert v["x"].kind is Kind.VECTOR and v["x"].is_vector
    assert v["hat"].kind is Kind.VECTOR
    assert v["A"].kind is Kind.MATRIX and v["Gamma1"].kind is Kind.MATRIX
    assert v["Sigma1"].kind is Kind.SYMMETRIC  # a covariance, as a student writes it
    v = _vars(parse("x'*S*x + c", {"S": "symmetric", "x": "vector", "c": "positive"}))
    assert v["S"].kind is Kind.SYMMETRIC and v["S"].shape[0] == v["S"].shape[1]
    assert v["c"].kind is Kind.POSITIVE


def test_shapes_are_inferred_by_unification() -> None:
    e = parse("x'*A*y + tr(B)")
    v = _vars(e)
    assert e.is_scalar
    assert v["A"].shape == (v["x"].shape[0], v["y"].shape[0])
    assert v["B"].shape[0] == v["B"].shape[1]
    assert parse("A*B*C").shape == (
        _vars(parse("A*B*C"))["A"].shape[0],
        _vars(parse("A*B*C"))["C"].shape[1],
    )


def test_canonical_trees() -> None:
    # a scalar factor goes first and leaves matrix products; sums and products are flat
    assert parse("A*c*B") == parse("c*A*B") == parse("A*(c*B)")
    assert parse("a + (b + c)") == parse("a + b + c")
    assert parse("x - y").op is Op.ADD
    # x'*y*z' is (x'*y) times z', while x'*(y*z') keeps its grouping
    assert parse("x'*y*z'").op is Op.SCALE
    assert parse("x'*(y*z')").op is Op.MATMUL
    # a scalar added to a vector is spread over it, and prints back as written
    e = parse("x + 1")
    assert e.args[1].op is Op.ONES
    assert to_text(e) == "x + 1"
    assert to_text(parse("1./x")) == "1./x"
    assert to_text(parse("A - 2")) == "A - 2"


def test_numbers_are_exact() -> None:
    assert parse("0.5").value == Fraction(1, 2)
    assert parse("1/3").value == Fraction(1, 3)
    assert parse("1e-3").value == Fraction(1, 1000)
    assert to_text(parse("0.25*x")) == "1/4*x"
    assert parse("-2").op is Op.NEG


def test_precedence() -> None:
    assert to_text(parse("-a*b")) == "-a*b"
    assert parse("-a*b").op is Op.NEG
    assert to_text(parse("a*-b")) == "a*(-b)"
    assert parse("a^-1").args[1].op is Op.NEG
    assert parse("a^b^c") == parse("a^(b^c)")
    assert to_text(parse("(A*B)'")) == "(A*B)'"
    assert parse("x'''").args[0].args[0].op is Op.TRANSPOSE


def test_indexed_names_and_sums() -> None:
    e = parse("sum_n(q_kn*x_n)", {"q": "scalar"}, indices="nk")
    assert e.op is Op.SUMIDX and e.name == "n"
    v = [n for n in e.walk() if n.op is Op.VAR]
    assert {(n.name, n.indices) for n in v} == {("q", ("k", "n")), ("x", ("n",))}
    # without declared indices x_n is a plain name, and sum_n is unknown
    assert _vars(parse("x_n"))["x_n"].indices == ()
    with pytest.raises(CalculusError, match="unknown function 'sum_n'"):
        parse("sum_n(x)")


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("tr(X", 4, "ends too early"),
        ("x @ y", 2, "unexpected character '@' at column 3"),
        ("2 3", 2, "an operator is missing"),
        ("x + * y", 4, "unexpected '*'"),
        ("(x + y))", 7, "unexpected ')'"),
        ("trace(X)", 0, "did you mean tr?"),
        ("logdt(X)", 0, "did you mean 'logdet'?"),
        ("tr", 0, "tr is a function"),
        ("x*A", 0, "x is n×1 and A is m×p"),
        ("x + A", 0, "both sides of + and - must have the same shape"),
        ("inv(x)", 0, "inv needs a square matrix"),
        ("x/y", 0, "use ./ for elementwise division"),
        ("x^2", 0, "use .^ for an elementwise power"),
        ("A^x", 0, "not a scalar"),
        ("A^(1/2)", 0, "non-negative integer exponent"),
        ("tr(A, B)", 0, "tr takes one argument"),
        ("diag(x')", 0, "diag needs a column vector or a square matrix"),
        ("a/0", 0, "division by zero"),
    ],
)
def test_errors_point_at_the_problem(text: str, position: int, fragment: str) -> None:
    with pytest.raises(CalculusError) as info:
        parse(text)
    err = info.value
    assert fragment in err.message
    assert err.position == position
    caret_line = err.caret.splitlines()[1]
    assert caret_line.index("^") - 2 == position
    assert "\n" not in err.message  # one line, then the caret display


def test_syntax_errors_are_parse_errors() -> None:
    with pytest.raises(ParseError):
        parse("x +")
    with pytest.raises(ParseError, match="empty"):
        parse("   ")


def test_deep_nesting_is_a_clean_error() -> None:
    with pytest.raises(CalculusError, match="nested too deeply"):
        parse("-" * (MAX_DEPTH + 5) + "x")
    with pytest.raises(CalculusError, match="nested too deeply"):
        parse("inv(" * 200 + "X" + ")" * 200)
    # parentheses alone do not nest anything
    assert parse("(" * 1500 + "x" + ")" * 1500) == parse("x")
    with pytest.raises(ParseError, match="longer than"):
        parse("x+" * 5000 + "x")


def test_unknown_kinds_are_explained() -> None:
    with pytest.raises(CalculusError, match="did you mean 'vector'"):
        parse_kinds("x:vectr")
    with pytest.raises(CalculusError, match="write name:kind"):
        parse_kinds("x=vector")
    assert parse_kinds("x:vector, S:symmetric") == {"x": Kind.VECTOR, "S": Kind.SYMMETRIC}


ALPHABET = [*"xyzAXSabc()+-*/.^'_ ,0123456789eiontrdglsqv", "tr(", "inv(", "sum_n(", ".*"]


def test_numbers_out_of_range_are_refused_in_one_line() -> None:
    # found by the fuzz test below: 1e4300 has more digits than Python prints as text
    for text, column in (("1e4300", 1), ("x + 1e-4000", 5), ("2*1E+301", 3)):
        with pytest.raises(ParseError, match=f"number .* at column {column} is out of range"):
            parse(text)
    e = parse("1e300*x + 2.5e-300")
    assert parse(to_text(e)) == e


@settings(max_examples=400, deadline=None)
@example("1e4300")
@given(st.lists(st.sampled_from(ALPHABET), max_size=25).map("".join))
def test_fuzz_token_soup_raises_only_calculus_errors(text: str) -> None:
    try:
        e = parse(text, indices="n")
    except CalculusError:
        return
    assert parse(to_text(e), indices="n") == e


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_fuzz_any_text_raises_only_calculus_errors(text: str) -> None:
    try:
        parse(text)
    except CalculusError as exc:
        assert exc.message
