"""``gaussmix grad``, in-process: outputs, exit codes, one-line errors with a caret."""

from __future__ import annotations

import itertools
import json

import pytest
from typer.testing import CliRunner, Result

import gaussmix.cli.main  # noqa: F401  (registers every command)
from gaussmix.cli.app import app


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["grad", *args])


def test_plain_output_is_the_gradient() -> None:
    result = run("x'*A*x", "--wrt", "A")
    assert result.exit_code == 0
    assert result.stdout == "x*x'\n"
    # the kinds assumed for undeclared names go to stderr, so that stdout stays pipeable
    assert result.stderr == "assuming: x vector; A matrix\n"
    declared = run("x'*A*x", "--wrt", "A", "--types", "x:vector,A:matrix")
    assert (declared.stdout, declared.stderr) == ("x*x'\n", "")


def test_log_det_steps_read_like_the_lecture() -> None:
    result = run("log(det(X))", "--wrt", "X", "--steps", "--detail", "full")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "denominator layout" in lines[1]
    assert lines[2] == "assuming: X matrix"
    assert lines[3].strip() == "df = d(log(det(X)))"
    body = "\n".join(lines)
    assert body.index("[log:") < body.index("[Jacobi:") < body.index("[identify:")
    assert lines[-1] == "gradient: inv(X)'"


def test_latex_and_symmetric_convention() -> None:
    result = run("x'*S*x", "--wrt", "S", "--types", "S:symmetric", "--latex")
    assert result.stdout.strip() == "x x^\\top"
    steps = run("x'*S*x", "--wrt", "S", "--types", "S:symmetric", "--steps")
    assert "(G + G')/2" in steps.stdout
    assert "symmetric gradient" in steps.stdout


def test_check_and_claims() -> None:
    ok = run(
        "(x - m)'*inv(S)*(x - m)",
        "--wrt",
        "m",
        "--types",
        "S:symmetric",
        "--check",
        "--claim",
        "-2*inv(S)*(x - m)",
    )
    assert ok.exit_code == 0
    lines = ok.stdout.splitlines()
    assert lines[0] == "-2*inv(S)*(x - m)"
    assert lines[1].startswith("check: relative error") and lines[1].endswith("(ok)")
    assert lines[2].startswith("definition: f(m + t*H) = f(m) + t*<G, H> + o(t)")
    assert lines[-2] == "  difference/t goes to zero with t"
    assert lines[-1].startswith("claim -2*inv(S)*(x - m): agrees")
    wrong = run("x'*A*x", "--wrt", "x", "--claim", "2*A*x")
    assert wrong.exit_code == 1
    assert "does not agree" in wrong.stdout
    assert "counterexample: A = [[" in wrong.stdout
    cookbook = run(
        "x'*S*x", "--wrt", "S", "--types", "S:symmetric", "--claim", "2*x*x' - x*x'.*eye"
    )
    assert cookbook.exit_code == 1
    assert "Matrix Cookbook" in cookbook.stdout


def test_json() -> None:
    result = run("log(sum(exp(x)))", "--wrt", "x", "--json", "--check", "--claim", "exp(x)")
    assert result.exit_code == 1  # the claim is wrong
    data = json.loads(result.stdout)
    assert data["gradient"] == "exp(x)/sum(exp(x))"
    assert data["check"]["ok"] is True
    assert data["claim"]["agrees"] is False
    assert data["claim"]["counterexample"]["x"]
    assert [s["rule"] for s in data["steps"]][:2] == ["log", "sum of entries"]


@pytest.mark.parametrize(
    ("args", "message", "caret_column"),
    [
        (("tr(X", "--wrt", "X"), "error: the expression ends too early", 4),
        (("trace(X)", "--wrt", "X"), "did you mean tr?", 0),
        (("x*A", "--wrt", "x"), "a product needs the columns", 0),
        (("x'*A*x", "--wrt", "B"), "B does not appear in x'*A*x", None),
        (("x'*A*x", "--wrt", "A", "--types", "x:vectr"), "did you mean 'vector'?", None),
        (("A*x", "--wrt", "x"), "is not a scalar", None),
        (("a*" + "-" * 80 + "a", "--wrt", "a"), "nested too deeply", -1),
    ],
)
def test_errors_are_one_line_and_a_caret(
    args: tuple[str, ...], message: str, caret_column: int | None
) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.stderr
    if caret_column is None:
        assert len(lines) == 1
    else:
        assert len(lines) == 3 and lines[2].strip() == "^"
        assert caret_column < 0 or lines[2].index("^") - 2 == caret_column


def test_missing_wrt_is_a_usage_error() -> None:
    assert run("x'*x").exit_code == 2


def test_the_weights_lagrangian_as_the_student_typed_it() -> None:
    lagrangian = "sum_k(N_k*log(pi_k)) + lambda*(sum_k(pi_k) - 1)"
    result = run(lagrangian, "--wrt", "pi_k", "--indices", "k")
    assert result.exit_code == 0
    assert result.stdout == "N_k/pi_k + lambda\n"
    assert result.stderr == "assuming: N_k, pi_k, lambda scalars\n"
    steps = run(lagrangian, "--wrt", "pi_k", "--indices", "k", "--steps").stdout.splitlines()
    assert steps[2] == "assuming: N_k, pi_k, lambda scalars"
    data = json.loads(run(lagrangian, "--wrt", "lambda", "--indices", "k", "--json").stdout)
    assert data["assumed"] == {"N_k": "scalar", "pi_k": "scalar", "lambda": "scalar"}
    assert data["gradient"] == "sum_k(pi_k) - 1"


def test_an_error_says_the_kinds_assumed_and_the_types_that_fix_it() -> None:
    text = "sum_k(n_k*log(p_k)) + l*(sum_k(p_k) - 1)"
    result = run(text, "--wrt", "p_k", "--indices", "k")
    assert result.exit_code == 1
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ") and "(in 'n_k*log(p_k)')" in first
    assert "(assuming: n_k, p_k, l vectors)" in first
    assert first.endswith("--types l:scalar would make it a scalar")
    fixed = run(text, "--wrt", "p_k", "--indices", "k", "--types", "l:scalar")
    assert (fixed.exit_code, fixed.stdout) == (0, "n_k/p_k + l\n")


def test_check_prints_the_first_order_definition() -> None:
    result = run("log(det(X))", "--wrt", "X", "--check", "--seed", "2")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    start = lines.index(
        "definition: f(X + t*H) = f(X) + t*<G, H> + o(t), at a random X and unit direction H:"
    )
    assert lines[start + 1].split() == [
        "t",
        "f(X",
        "+",
        "t*H)",
        "-",
        "f(X)",
        "t*<G,",
        "H>",
        "difference/t",
    ]
    rows = [line.split() for line in lines[start + 2 : start + 7]]
    assert [r[0] for r in rows] == ["1e-01", "1e-02", "1e-03", "1e-04", "1e-05"]
    remainders = [abs(float(r[3])) for r in rows]
    assert all(b < a / 5 for a, b in itertools.pairwise(remainders))
    assert lines[start + 7] == "  difference/t goes to zero with t"
    data = json.loads(run("log(det(X))", "--wrt", "X", "--check", "--json").stdout)
    assert [row["t"] for row in data["check"]["first_order"]] == [1e-1, 1e-2, 1e-3, 1e-4, 1e-5]


FORUM = (
    "logdet(P) - 1/2*(x-m)'*P*(x-m)",
    "--wrt",
    "P",
    "--types",
    "P:symmetric",
    "--claim",
    "inv(P) - (x-m)*(x-m)'",
)


def test_the_forums_slip_is_diagnosed() -> None:
    result = run(*FORUM)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[1] == (
        "claim inv(P) - (x - m)*(x - m)': does not agree: the claim is the gradient with the "
        "term 1/2*(x - m)'*P*(x - m) counted twice; equivalently, twice the gradient of "
        "1/2*logdet(P) - 1/2*(x - m)'*P*(x - m)"
    )
    assert lines[2].startswith("  counterexample: P = [[")
    assert lines[-1] == "  corrected claim: inv(P) - 1/2*(x - m)*(x - m)'"
    data = json.loads(run(*FORUM, "--json").stdout)
    assert data["claim"]["slip"] == "term"
    assert data["claim"]["corrected"] == "inv(P) - 1/2*(x - m)*(x - m)'"
    checked = run(*FORUM, "--check").stdout.splitlines()
    # the claim put in the definition: its remainder settles on a nonzero number
    start = next(i for i, line in enumerate(checked) if line.startswith("definition, the claim"))
    remainders = [float(line.split()[3]) for line in checked[start + 2 : start + 7]]
    assert abs(remainders[-1]) > 0.1 and abs(remainders[-1] - remainders[-2]) < 1e-3
    assert checked[start + 7] == "  difference/t does NOT go to zero: G is not the gradient"
