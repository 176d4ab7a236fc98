"""The student's notation, as typed from ML lecture notes: text and LaTeX, with no --types.

Each expression's gradient is checked against finite differences, and against the textbook's
answer where there is one (numerically, at random points: never as typed text). What cannot be
read gives one line that names the subexpression, the kinds assumed and the --types that fix it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import gaussmix.cli.main  # noqa: F401  (registers every command)
from gaussmix.calculus import CalculusError, Kind, Op, grad, parse, to_text
from gaussmix.calculus.gradient import CHECK_TOLERANCE
from gaussmix.calculus.kinds import summed_indices
from gaussmix.calculus.latex_input import from_latex, is_latex
from gaussmix.calculus.ops import FUNCTIONS
from gaussmix.cli.app import app

SURROGATE_K = (
    "sum_n(q_kn*(log(pi_k) + 1/2*logdet(Lambda_k) - 1/2*(x_n - mu_k)'*Lambda_k*(x_n - mu_k)))"
)
LAGRANGIAN = "sum_k(N_k*log(pi_k)) + lambda*(sum_k(pi_k) - 1)"

# (expression, variable, the textbook's gradient or None, kinds the notation must imply)
CASES = [
    # the GMM surrogate's pieces, without --indices: sum_n makes n an index, q_kn varies with n
    (SURROGATE_K, "mu_k", "sum_n(q_kn*Lambda_k*(x_n - mu_k))", {"q_kn": Kind.SCALAR}),
    (SURROGATE_K, "Lambda_k", "1/2*sum_n(q_kn*(inv(Lambda_k) - (x_n - mu_k)*(x_n - mu_k)'))", {}),
    (
        "sum_n(q_kn*(-1/2*logdet(Sigma_k) - 1/2*(x_n - mu_k)'*inv(Sigma_k)*(x_n - mu_k)))",
        "Sigma_k",
        "1/2*sum_n(q_kn*(inv(Sigma_k)*(x_n - mu_k)*(x_n - mu_k)'*inv(Sigma_k) - inv(Sigma_k)))",
        {"Sigma_k": Kind.SYMMETRIC},
    ),
    ("sum_n(sum_k(q_kn*log(pi_k)))", "pi_k", "sum_n(q_kn)/pi_k", {"pi_k": Kind.SCALAR}),
    # the weights' Lagrangian, in the multiplier too, and with a lower-case count
    (LAGRANGIAN, "pi_k", "N_k/pi_k + lambda", {"N_k": Kind.SCALAR, "lambda": Kind.SCALAR}),
    (LAGRANGIAN, "lambda", "sum_k(pi_k) - 1", {}),
    ("lambda*(sum_k(pi_k) - 1) + sum_k(n_k*log(pi_k))", "pi_k", "n_k/pi_k + lambda", {}),
    # least squares and ridge
    ("1/2*(y - A*x)'*(y - A*x)", "x", "A'*(A*x - y)", {}),
    ("(y - X*w)'*(y - X*w) + lambda*w'*w", "w", "2*X'*(X*w - y) + 2*lambda*w", {}),
    ("norm2(y - X*beta)^2 + alpha*norm2(beta)^2", "beta", "2*X'*(X*beta - y) + 2*alpha*beta", {}),
    ("1/2*beta'*X'*X*beta - y'*X*beta", "beta", "X'*X*beta - X'*y", {}),
    (
        "alpha*w'*w + sum_n((y_n - w'*x_n)^2)",
        "w",
        "2*alpha*w - 2*sum_n((y_n - w'*x_n)*x_n)",
        {"y_n": Kind.SCALAR},
    ),
    # logistic and Poisson regression log-likelihoods
    (
        "sum_n(y_n*w'*x_n - log(1 + exp(w'*x_n)))",
        "w",
        "sum_n((y_n - 1/(1 + exp(-w'*x_n)))*x_n)",
        {"y_n": Kind.SCALAR},
    ),
    ("-sum_n(log(1 + exp(-y_n*w'*x_n)))", "w", "sum_n(y_n*x_n/(1 + exp(y_n*w'*x_n)))", {}),
    (
        "sum_n(y_n*theta'*x_n - exp(theta'*x_n))",
        "theta",
        "sum_n((y_n - exp(theta'*x_n))*x_n)",
        {"theta": Kind.VECTOR},
    ),
    ("log(sum(exp(theta)))", "theta", "exp(theta)/sum(exp(theta))", {}),
    # log-determinants, traces, quadratic forms
    ("-1/2*logdet(Sigma_k) - 1/2*tr(inv(Sigma_k)*S_k)", "Sigma_k", None, {}),
    ("tr(A*X*B)", "X", "A'*B'", {}),
    ("tr(X'*A*X)", "X", "(A + A')*X", {}),
    ("tr(W'*W)", "W", "2*W", {}),
    ("eta*tr(Theta'*Theta)", "Theta", "2*eta*Theta", {"eta": Kind.SCALAR, "Theta": Kind.MATRIX}),
    ("(x - mu)'*inv(Sigma)*(x - mu)", "mu", "-2*inv(Sigma)*(x - mu)", {}),
    ("mu'*Lambda*mu", "mu", "2*Lambda*mu", {"Lambda": Kind.SYMMETRIC}),
    # an inverse written as a power, as notes write it
    (
        "(x - mu)'*Sigma^-1*(x - mu)",
        "Sigma",
        "-inv(Sigma)*(x - mu)*(x - mu)'*inv(Sigma)",
        {"Sigma": Kind.SYMMETRIC},
    ),
    # variance parameters by their Greek names
    (
        "-1/2*log(sigma2) - (x - mu)'*(x - mu)/(2*sigma2)",
        "sigma2",
        "-1/(2*sigma2) + (x - mu)'*(x - mu)/(2*sigma2^2)",
        {"sigma2": Kind.SCALAR},
    ),
    ("log(tau) - tau*(x - mu)'*(x - mu)", "tau", "1/tau - (x - mu)'*(x - mu)", {}),
    # LaTeX, as copied from the notes
    (r"\mu_k'*\Sigma_k^{-1}*\mu_k", "mu_k", "2*inv(Sigma_k)*mu_k", {"mu_k": Kind.VECTOR}),
    (
        r"(x_n - \mu_k)^\top \Sigma_k^{-1} (x_n - \mu_k)",
        "mu_k",
        "-2*inv(Sigma_k)*(x_n - mu_k)",
        {"Sigma_k": Kind.SYMMETRIC},
    ),
    (r"\log\det(\Sigma) + \operatorname{tr}(\Sigma^{-1} S)", "Sigma", None, {}),
    (
        r"\sum_{n=1}^{N} q_{kn} \left( \log \pi_k + \frac{1}{2} \log|\Lambda_k| "
        r"- \frac{1}{2} (x_n - \mu_k)^\top \Lambda_k (x_n - \mu_k) \right)",
        "Lambda_k",
        "1/2*sum_n(q_kn*(inv(Lambda_k) - (x_n - mu_k)*(x_n - mu_k)'))",
        {"q_kn": Kind.SCALAR},
    ),
    (r"\sum_k N_k \log \pi_k + \lambda (\sum_k \pi_k - 1)", "pi_k", "N_k/pi_k + lambda", {}),
    (r"\|y - X\beta\|^2 + \alpha \|\beta\|^2", "beta", "2*X'*(X*beta - y) + 2*alpha*beta", {}),
    (r"\mathbf{x}^T A \mathbf{x}", "x", "(A + A')*x", {}),
    (
        r"\frac{1}{2}\log\det\Lambda - \frac{1}{2} x^\top \Lambda x",
        "Lambda",
        "1/2*(inv(Lambda) - x*x')",
        {},
    ),
]


@pytest.mark.parametrize(("text", "wrt", "textbook", "kinds"), CASES)
def test_the_students_notation_gives_the_checked_gradient(
    text: str, wrt: str, textbook: str | None, kinds: dict[str, Kind]
) -> None:
    r = grad(text, wrt)
    assert r.check() < CHECK_TOLERANCE, (text, str(r))
    if textbook is not None:
        verdict = r.agrees_with(textbook)
        assert verdict.agrees, (text, str(r), verdict.reason)
    for name, kind in kinds.items():
        assert r.assumed.get(name) is kind, (name, r.assumptions)


def test_summing_over_an_index_makes_its_names_indexed() -> None:
    # q_kn varies with n (it is not a constant pulled out of sum_n), mu_k is the k-th mean
    r = grad(SURROGATE_K, "mu_k")
    q = [n for n in r.expr.walk() if n.op is Op.VAR and n.name == "q"]
    assert q and all(n.indices == ("k", "n") for n in q)
    assert r.wrt.indices == ("k",)
    assert summed_indices(SURROGATE_K) == "nk"
    assert summed_indices(r"\sum_{n=1}^{N} q_{kn}") == "nk"
    assert summed_indices("x_n'*A*x_n") == ""  # no sum: names are names, as before
    assert summed_indices("log_det(X) + sum_n(x_n)") == "n"  # a call's name is no subscript


@pytest.mark.parametrize(
    ("text", "wrt", "words"),
    [
        # a one-letter N is a matrix by the convention: the error says which --types fixes it
        (
            "-N/2*logdet(Sigma) - 1/2*tr(inv(Sigma)*S)",
            "Sigma",
            ["is not a scalar", "N, S matrices", "--types N:scalar would make it a scalar"],
        ),
        (
            r"-\frac{D}{2}\log(\sigma2) - \frac{\|x - \mu\|^2}{2 \sigma2}",
            "sigma2",
            ["is not a scalar", "D matrix", "--types D:scalar"],
        ),
        ("A*x", "x", ["A*x is not a scalar", "x vector; A matrix", "try tr(...)"]),
        # the sigmoid is no function of the syntax: the error says how to write it
        ("sum_n(y_n*log(sigmoid(w'*x_n)))", "w", ["unknown function 'sigmoid'", "1/(1 + exp(-t))"]),
        ("sum_n(y_n*log(sigma(w'*x_n)))", "w", ["unknown function 'sigma'", "1/(1 + exp(-t))"]),
    ],
)
def test_what_cannot_be_read_is_one_clear_line(text: str, wrt: str, words: list[str]) -> None:
    with pytest.raises(CalculusError) as info:
        grad(text, wrt)
    first = str(info.value).splitlines()[0]
    for word in words:
        assert word in first, first
    assert "assuming:" in first


@pytest.mark.parametrize(
    ("latex", "text"),
    [
        (
            r"(x_n - \mu_k)^\top \Sigma_k^{-1} (x_n - \mu_k)",
            "(x_n - mu_k)'*inv(Sigma_k)*(x_n - mu_k)",
        ),
        (r"\frac{1}{2} \log\det(\Lambda_k)", "1/2*logdet(Lambda_k)"),
        (r"\log|\Sigma|", "logdet(Sigma)"),
        (r"\sum_n \sum_k q_{kn} \log \pi_k", "sum_n(sum_k(q_kn*log(pi_k)))"),
        (r"\sum_{k=1}^{K} \pi_k - 1", "sum_k(pi_k) - 1"),
        (r"\|y - X\beta\|^2", "norm2(y - X*beta)^2"),
        (r"\mathbf{x}^T \mathbf{x}", "x'*x"),
        (r"\mathrm{tr}(A^{\top} B)", "tr(A'*B)"),
    ],
)
def test_latex_reads_as_the_syntax(latex: str, text: str) -> None:
    assert is_latex(latex)
    kinds = {"Sigma": "symmetric", "Lambda": "symmetric", "mu": "vector"}
    read = parse(latex, kinds, indices="nk")
    assert read == parse(text, kinds, indices="nk"), from_latex(latex, frozenset(FUNCTIONS))
    assert to_text(read) == to_text(parse(text, kinds, indices="nk"))


def test_text_without_latex_is_unchanged() -> None:
    for text in ("x'*A*x", "sum_n(q_kn*x_n)", "log(det(X)) - tr(inv(S)*X)", "x^2 + A^3"):
        assert not is_latex(text)
        assert from_latex(text, frozenset(FUNCTIONS)) == text


def test_a_matrix_to_a_negative_power_is_an_inverse() -> None:
    kinds = {"S": "symmetric"}
    assert parse("S^-1", kinds) == parse("inv(S)", kinds)
    assert parse("S^-2", kinds) == parse("inv(S)^2", kinds)
    assert parse("a^-1") != parse("inv(a)")  # a scalar's power stays a power


def test_the_command_line_takes_latex_with_a_claim() -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            "grad",
            r"(x_n - \mu_k)^\top \Sigma_k^{-1} (x_n - \mu_k)",
            "--wrt",
            "mu_k",
            "--claim",
            r"-2 \Sigma_k^{-1} (x_n - \mu_k)",
            "--check",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "agrees" in ok.output and "relative error" in ok.output
    wrong = runner.invoke(
        app,
        [
            "grad",
            r"\frac{1}{2}\log\det\Lambda - \frac{1}{2} x^\top \Lambda x",
            "--wrt",
            "Lambda",
            "--claim",
            r"\Lambda^{-1} - x x^\top",
        ],
    )
    assert wrong.exit_code == 1
    assert "twice the gradient" in wrong.output and "corrected claim" in wrong.output
    bad = runner.invoke(app, ["grad", "--wrt", "Sigma", "--", "-N/2*logdet(Sigma)"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert "--types N:scalar" in bad.output


_LATEX_PIECES = st.sampled_from(
    [
        r"\mu_k",
        r"\Sigma",
        r"^{-1}",
        r"^\top",
        "^T",
        r"\frac{",
        "}{",
        "}",
        "{",
        r"\sum_n",
        r"\log",
        r"\det",
        "|",
        r"\|",
        "(",
        ")",
        " ",
        "x_n",
        "A",
        "+",
        "-",
        "*",
        "2",
        r"\left(",
        r"\right)",
        r"\mathrm{tr}",
        "_{kn}",
        r"\lambda",
        "'",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LATEX_PIECES, min_size=1, max_size=14).map("".join))
def test_fuzz_latex_raises_only_calculus_errors(text: str) -> None:
    try:
        parse(text, infer=True)
    except CalculusError:
        pass
