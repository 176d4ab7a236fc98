"""A wrong claim is diagnosed: which slip turns the gradient into it, found numerically."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from gaussmix.calculus import grad, parse
from gaussmix.calculus.claims import additive_terms, times
from gaussmix.calculus.numeric import evaluate, random_point

FORUM = "logdet(P) - 1/2*(x-m)'*P*(x-m)"


def test_the_forums_slip_is_named() -> None:
    r = grad(FORUM, "P", {"P": "symmetric"})
    verdict = r.agrees_with("inv(P) - (x-m)*(x-m)'")
    assert not verdict
    assert verdict.slip == "term"
    assert verdict.reason == (
        "the claim is the gradient with the term 1/2*(x - m)'*P*(x - m) counted twice; "
        "equivalently, twice the gradient of 1/2*logdet(P) - 1/2*(x - m)'*P*(x - m)"
    )
    assert verdict.counterexample is not None  # a counterexample is still given
    assert not np.allclose(verdict.claimed, verdict.expected)
    # the equivalent function is right: its gradient, doubled, is the claim
    half = grad("1/2*logdet(P) - 1/2*(x - m)'*P*(x - m)", "P", {"P": "symmetric"})
    assert half.agrees_with("1/2*inv(P) - 1/2*(x-m)*(x-m)'")


@pytest.mark.parametrize(
    ("text", "wrt", "types", "claim", "slip", "fragment"),
    [
        ("x'*A*x", "x", {}, "-(A + A')*x", "sign", "the opposite sign"),
        ("x'*A*x", "x", {}, "2*(A + A')*x", "factor", "twice the gradient"),
        ("x'*A*x", "x", {}, "1/2*(A + A')*x", "factor", "half the gradient"),
        ("tr(X*A*X)", "X", {}, "A*X + X*A", "transpose", "transpose of the gradient"),
        ("tr(A*X)", "X", {}, "A", "transpose", "the shape of X'"),
        ("tr(X*A*X)", "X", {}, "-(A*X + X*A)", "transpose", "transpose of the gradient, times -1"),
        (
            "tr(B*X) + tr(X)",
            "X",
            {"B": "matrix"},
            "(B + B')/2 + eye",
            "symmetric convention",
            "--types X:symmetric",
        ),
        (
            "x'*S*x",
            "S",
            {"S": "symmetric"},
            "2*x*x' - x*x'.*eye",
            "cookbook",
            "Matrix Cookbook",
        ),
        ("tr(A*S)", "S", {"S": "symmetric"}, "A'", "symmetric part", "(G + G')/2"),
        (
            "log(det(X)) + tr(A*X) + x'*X*x",
            "X",
            {},
            "inv(X)' + x*x'",
            "term",
            "the term tr(A*X) left out",
        ),
        (
            "log(det(X)) + tr(A*X) + x'*X*x",
            "X",
            {},
            "inv(X)' + A' + 3*x*x'",
            "term",
            "the term x'*X*x counted 3 times; equivalently, 3 times the gradient of "
            "1/3*log(det(X)) + 1/3*tr(A*X) + x'*X*x",
        ),
        (
            "sum_n(q_kn*(1/2*logdet(Lambda_k) - 1/2*(x_n - mu_k)'*Lambda_k*(x_n - mu_k)))",
            "Lambda_k",
            {},
            "sum_n(q_kn*(inv(Lambda_k) - 1/2*(x_n-mu_k)*(x_n-mu_k)'))",
            "term",
            "the term sum_n(1/2*q_kn*logdet(Lambda_k)) counted twice",
        ),
        (
            "sum_k(N_k*log(pi_k)) + lambda*(sum_k(pi_k) - 1)",
            "pi_k",
            {},
            "N_k/pi_k - lambda",
            "term",
            "the sign of the term lambda*sum_k(pi_k) flipped",
        ),
    ],
)
def test_slips_are_named(
    text: str, wrt: str, types: dict[str, str], claim: str, slip: str, fragment: str
) -> None:
    verdict = grad(text, wrt, types, indices="nk").agrees_with(claim)
    assert not verdict
    assert verdict.slip == slip
    assert fragment in verdict.reason


def test_a_claim_that_changes_the_shapes_of_the_expression_is_refused() -> None:
    verdict = grad("tr(B*X)", "X").agrees_with("(B + B')/2")
    assert not verdict
    assert verdict.reason.startswith("the claim needs B to be")


def test_a_claim_that_is_no_known_slip_just_differs() -> None:
    verdict = grad("log(det(X))", "X").agrees_with("X*X'")
    assert not verdict and verdict.slip == ""
    assert verdict.reason == "the claim differs from the gradient at a random point"
    assert verdict.counterexample is not None


def test_additive_terms_sum_to_the_function() -> None:
    f = parse("sum_n(q_n*(log(a) + x_n'*A*x_n - 2*b)) - (d + e)*c/a", indices="n", infer=True)
    terms = additive_terms(f)
    assert len(terms) == 5
    assert str(terms[1]) == "sum_n(q_n*x_n'*A*x_n)"
    point = random_point(f, 0)
    total = sum(evaluate(t, point.values, sizes=point.sizes) for t in terms)
    assert total == pytest.approx(evaluate(f, point.values, sizes=point.sizes), rel=1e-12)


def test_factors_in_words() -> None:
    assert [times(Fraction(v)) for v in (2, -1, Fraction(1, 2), 3)] == [
        "twice",
        "minus",
        "half",
        "3 times",
    ]
