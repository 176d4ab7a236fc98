"""Kinds of undeclared names: inferred from the expression, the letter convention for the rest."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaussmix.calculus import CalculusError, Kind, Op, grad, parse, to_latex
from gaussmix.calculus.gradient import CHECK_TOLERANCE
from gaussmix.calculus.kinds import convention_kind, describe_kinds

LAGRANGIAN = "sum_k(N_k*log(pi_k)) + lambda*(sum_k(pi_k) - 1)"
SURROGATE = (
    "sum_n(sum_k(q_kn*(log(pi_k) + 1/2*logdet(Lambda_k) "
    "- 1/2*(x_n - mu_k)'*Lambda_k*(x_n - mu_k))))"
)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a", Kind.SCALAR),
        ("x", Kind.VECTOR),
        ("A", Kind.MATRIX),
        ("mu", Kind.VECTOR),
        ("beta", Kind.VECTOR),
        ("pi", Kind.SCALAR),
        ("lambda", Kind.SCALAR),  # by its first letter it would be a vector
        ("alpha", Kind.SCALAR),
        ("sigma2", Kind.SCALAR),  # by its first letter it would be a vector
        ("Sigma", Kind.SYMMETRIC),
        ("Lambda", Kind.SYMMETRIC),
        ("Gamma", Kind.MATRIX),
        ("N", Kind.MATRIX),
    ],
)
def test_the_letter_convention_knows_greek_names(name: str, kind: Kind) -> None:
    assert convention_kind(name) is kind


def test_the_weights_lagrangian_goes_through_as_the_student_typed_it() -> None:
    r = grad(LAGRANGIAN, "pi_k", indices="k")
    assert str(r) == "N_k/pi_k + lambda"
    assert r.assumed == {"N_k": Kind.SCALAR, "pi_k": Kind.SCALAR, "lambda": Kind.SCALAR}
    assert r.assumptions == "N_k, pi_k, lambda scalars"
    assert r.check() < CHECK_TOLERANCE
    by_multiplier = grad(LAGRANGIAN, "lambda", indices="k")
    assert str(by_multiplier) == "sum_k(pi_k) - 1"


def test_the_surrogate_in_the_students_notation() -> None:
    r = grad(SURROGATE, "mu_k", indices="nk")
    # q_kn is a vector by its letter; the expression makes it a scalar, the rest is the convention
    assert r.assumptions == "q_kn, pi_k scalars; x_n, mu_k vectors; Lambda_k symmetric matrix"
    assert r.check() < CHECK_TOLERANCE
    precision = grad(SURROGATE, "Lambda_k", indices="nk")
    assert "symmetric gradient (G + G')/2" in precision.convention
    assert precision.check() < CHECK_TOLERANCE


def test_greek_names_print_as_written_and_as_letters_in_latex() -> None:
    e = parse("mu_k'*Sigma_k*mu_k + sigma2*alpha - lambda", indices="k", infer=True)
    assert str(e) == "mu_k'*Sigma_k*mu_k + sigma2*alpha - lambda"
    latex = to_latex(e)
    for fragment in ("\\mu_{k}", "\\Sigma_{k}", "\\sigma^2", "\\alpha", "\\lambda"):
        assert fragment in latex


def test_what_parses_as_a_scalar_is_left_as_the_convention_reads_it() -> None:
    for text in ("x'*A*x", "log(det(X)) + a*tr(B)", "sum(exp(x))", "(x - m)'*inv(S)*(x - m)"):
        assert parse(text, infer=True) == parse(text)


def test_an_expression_built_in_python_assumes_nothing() -> None:
    e = parse("x'*A*x")
    assert grad(e, "x").assumed == {}
    assert grad("x'*A*x", "x").assumed == {"x": Kind.VECTOR, "A": Kind.MATRIX}


def test_declared_kinds_are_never_changed() -> None:
    e = parse("sum_n(q_n*x_n'*x_n)", {"q": "positive"}, indices="n", infer=True)
    kinds = {v.name: v.kind for v in e.walk() if v.op is Op.VAR}
    assert kinds == {"q": Kind.POSITIVE, "x": Kind.VECTOR}


def test_one_letter_names_keep_the_convention_and_the_error_says_so() -> None:
    with pytest.raises(CalculusError) as info:
        grad("A*x", "x")
    message = info.value.message
    assert "A*x is not a scalar: it is n×1" in message
    assert "(assuming: x vector; A matrix)" in message
    assert "try tr(...)" in message


def test_the_error_names_the_types_that_would_fix_it() -> None:
    # l is a one-letter name, a vector by the convention: the fix is to declare it
    latin = "sum_k(n_k*log(p_k)) + l*(sum_k(p_k) - 1)"
    with pytest.raises(CalculusError) as info:
        grad(latin, "p_k", indices="k")
    err = info.value
    assert "(in 'n_k*log(p_k)')" in err.message  # the subexpression where the product fails
    assert "(assuming: n_k, p_k, l vectors)" in err.message
    assert err.message.endswith("--types l:scalar would make it a scalar")
    assert err.position == latin.index("n_k")  # the caret points at the product
    fixed = grad(latin, "p_k", {"l": "scalar"}, indices="k")
    assert str(fixed) == "n_k/p_k + l"
    # a declared kind that cannot work: the fix is the other kind
    with pytest.raises(CalculusError, match="--types lambda:scalar would make it a scalar"):
        grad(LAGRANGIAN, "pi_k", {"lambda": "vector"}, indices="k")


def test_dimension_names_never_reuse_a_letter_typed() -> None:
    with pytest.raises(CalculusError) as info:
        parse("n*m")
    assert "n is p×1 and m is q×1" in info.value.message
    with pytest.raises(CalculusError) as info:
        parse("lambda*(sum_k(pi_k) - 1)", {"lambda": "vector", "pi": "vector"}, indices="k")
    message = info.value.message
    dims = {part.split("×")[0][-1] for part in message.split(" is ")[1:] if "×" in part}
    assert dims and not dims & set("lambdasumkpi")


def test_describe_kinds_groups_by_kind() -> None:
    kinds = {"x_n": Kind.VECTOR, "pi_k": Kind.SCALAR, "S": Kind.SPD, "lambda": Kind.SCALAR}
    assert describe_kinds(kinds) == ("pi_k, lambda scalars; x_n vector; S positive definite matrix")


GREEK_SOUP = [*"xyAS()+-*'_ 12", "mu_k", "pi_k", "lambda", "N_k", "Sigma", "sum_k(", "log(", "tr("]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(GREEK_SOUP), max_size=14).map("".join))
def test_fuzz_inference_raises_only_calculus_errors_and_gives_scalars(text: str) -> None:
    try:
        e = parse(text, indices="k", infer=True)
    except CalculusError as exc:
        assert exc.message
        return
    assert e.is_scalar
    # what the inference decided, declared, reads the same expression without inference
    declared = {v.name: v.kind.value for v in e.walk() if v.op is Op.VAR and v.kind is not None}
    assert parse(text, declared, indices="k") == e
