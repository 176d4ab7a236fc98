"""The lecture view of the GMM derivation: short, grouped from the trace, and still checked."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from typer.testing import CliRunner

import gaussmix.cli.main  # noqa: F401  (registers every command)
from gaussmix.calculus import grad, to_text
from gaussmix.calculus.expr import Expr, Op, rebuild, substitute
from gaussmix.calculus.lecture import ISOLATE, Line
from gaussmix.calculus.numeric import evaluate
from gaussmix.calculus.parse import parse
from gaussmix.cli.app import app
from gaussmix.derive import COVARIANCE_TYPES, GMMDerivation, derive_gmm
from gaussmix.derive.gmm import KINDS
from gaussmix.derive.solve import replace_all
from tests.derive.test_gmm import N_COMPONENTS, N_FEATURES, _data, _parameter_values

TARGETS = {"means": 8, "precisions": 10, "weights": 10}
"""The most numbered lines a lecture may take for each parameter (issue 13)."""


@pytest.fixture(scope="module", params=COVARIANCE_TYPES)
def derivation(request: pytest.FixtureRequest) -> GMMDerivation:
    return derive_gmm(request.param)


def _stage(lines: list[Line], stage: str) -> list[Line]:
    return [line for line in lines if line.stage == stage]


def test_the_lecture_meets_the_line_targets(derivation: GMMDerivation) -> None:
    lines = derivation.view("lecture")
    for stage, most in TARGETS.items():
        count = len(_stage(lines, stage))
        full = sum(1 for s in derivation.steps if s.stage == stage)
        assert 3 <= count <= most, (stage, count)
        assert count < full / 3, (stage, count, full)


def test_the_lines_partition_the_full_trace(derivation: GMMDerivation) -> None:
    lines = derivation.view("lecture")
    grouped = [step for line in lines for step in line.steps]
    assert grouped == derivation.steps  # every step, once, in order: nothing typed, nothing lost
    for line in lines:
        assert line.expr == line.steps[-1].after
        assert len({s.stage for s in line.steps}) == 1
    assert derivation.view("full") and len(derivation.view("full")) == len(derivation.steps)


def test_no_line_repeats_the_previous_one(derivation: GMMDerivation) -> None:
    lines = derivation.view("lecture")
    for a, b in itertools.pairwise(lines):
        assert a.text != b.text, b.text
        assert a.latex != b.latex, b.latex
    markdown = [row for row in derivation.markdown(detail="lecture").splitlines() if "$" in row]
    bodies = [row.split(". ", 1)[-1] for row in markdown]
    assert all(x != y for x, y in itertools.pairwise(bodies))


def test_every_line_holds_at_the_solution(derivation: GMMDerivation) -> None:
    # A lecture line's equation holds at the derived M-step, and its gradient vanishes there:
    # the line is checked numerically like the step of the trace it ends with.
    X, resp = _data(7)
    values = _parameter_values(derivation, X, resp)
    point = dict(values, N=resp.sum(axis=0))
    checked = 0
    for line in derivation.view("lecture"):
        e = line.expr
        if line.stage not in TARGETS or line.expr.has_diff:
            continue
        names = {name for name, _ in e.free}
        if "Sigma" in names or "sigma2" in names:
            continue
        # an equation holds; a gradient vanishes; L equals Q where the constraint holds
        if e.op is Op.EQ:
            lhs, rhs = e.args
        else:
            lhs, rhs = e, (None if line.lhs == "G" else line.before)
        for k in range(N_COMPONENTS):
            where = {"index_env": {"k": k}, "counts": {"n": len(X)}, "sizes": {"D": N_FEATURES}}
            a = np.asarray(evaluate(lhs, point, **where))  # type: ignore[arg-type]
            b = np.zeros_like(a) if rhs is None else evaluate(rhs, point, **where)  # type: ignore[arg-type]
            b = np.asarray(b)
            scale = max(1.0, float(np.max(np.abs(a))), float(np.max(np.abs(b))))
            assert np.max(np.abs(a - b)) <= 1e-9 * scale, (line.rule, to_text(e))
        checked += 1
    assert checked >= 8


def test_the_isolating_line_names_the_dropped_terms() -> None:
    lines = derive_gmm("full").view("lecture")
    isolating = [line.identity for line in lines if line.rule == ISOLATE]
    assert isolating[0] == "log(pi_k) and 1/2*logdet(Lambda_k) do not depend on mu_k"
    assert isolating[1] == "log(pi_k) does not depend on Lambda_k"
    assert "Q does not depend on lambda" in isolating
    cited = [line.rule for line in lines]
    for rule in (
        "product",
        "trace trick",
        "Jacobi (log-determinant)",
        "stationary point",
        "cancel an invertible factor",
        "Lagrangian",
        "substitute",
        "abbreviate",
    ):
        assert rule in cited, rule
    assert cited.count("abbreviate") == 1  # N_k is introduced once, then used
    # the precision's solution: the solved inverse, then its name (not one folded line)
    assert [line.text for line in lines if line.stage == "precisions"][-2:] == [
        "inv(Lambda_k) = S_k/N_k",
        "Sigma_k = S_k/N_k",
    ]
    # a gradient is shown as read off, tidied: no transpose of a transpose, none of a scalar
    for line in lines:
        if line.rule.startswith("identify"):
            assert "')'" not in line.text and not line.text.endswith(")'"), line.text


def test_the_commands_print_the_lecture_by_default() -> None:
    runner = CliRunner()
    lecture = runner.invoke(app, ["derive", "gmm"])
    full = runner.invoke(app, ["derive", "gmm", "--detail", "full"])
    assert lecture.exit_code == 0 and full.exit_code == 0
    assert "(simplified)" in lecture.output and "double transpose" not in lecture.output
    assert "double transpose" in full.output
    numbered = [row for row in lecture.output.splitlines() if row[:5].strip().endswith(".")]
    assert len(numbered) == len(derive_gmm("full").view("lecture"))
    bad = runner.invoke(app, ["derive", "gmm", "--detail", "short"])
    assert bad.exit_code != 0 and "lecture or full" in bad.output


def test_grad_steps_in_the_lecture_view() -> None:
    r = grad("log(det(X)) - x'*X*x", "X")
    lines = r.view("lecture")
    assert 1 < len(lines) < len(r.steps)
    assert [s for line in lines for s in line.steps] == r.steps
    runner = CliRunner()
    out = runner.invoke(app, ["grad", "log(det(X)) - x'*X*x", "--wrt", "X", "--steps"])
    full = runner.invoke(
        app, ["grad", "log(det(X)) - x'*X*x", "--wrt", "X", "--steps", "--detail", "full"]
    )
    assert out.exit_code == 0 and full.exit_code == 0
    assert "trace trick" in out.output and "Jacobi" in out.output

    def numbered(text: str) -> int:
        return sum(1 for row in text.splitlines() if row[:5].strip().endswith("."))

    assert numbered(out.output) == len(lines) < numbered(full.output) == len(r.steps)
    # in LaTeX too: one row per line (and the starting row), or one per step with --detail full
    assert r.derivation_latex("lecture").count("&&") == len(lines)
    assert r.derivation_latex().count("&&") == len(r.steps)
    latex = runner.invoke(app, ["grad", "log(det(X)) - x'*X*x", "--wrt", "X", "--steps", "--latex"])
    assert latex.exit_code == 0 and latex.output.count("&&") == len(lines)


def test_derive_latex_prints_the_lecture_by_default() -> None:
    d = derive_gmm("full")
    out = CliRunner().invoke(app, ["derive", "gmm", "--latex"])
    assert out.exit_code == 0
    rows = [row for row in out.output.splitlines() if row.startswith("& ")]
    assert len(rows) == len(d.view("lecture")) + len(d.results())  # the updates close it
    assert "S_{k} = \\sum_{n} q_{kn} u_{n} u_{n}^\\top" in out.output  # said where it appears
    full = CliRunner().invoke(app, ["derive", "gmm", "--latex", "--detail", "full"])
    assert full.output.count("\\text{(") > len(d.steps)


SCATTER = {
    "full": "S_k = sum_n(q_kn*u_n*u_n')",
    "diag": "diag(S_k) = sum_n(q_kn*u_n.^2)",
    "spherical": "tr(S_k) = sum_n(q_kn*u_n'*u_n)",
    "tied": "S = sum_n(sum_k(q_kn*u_kn*u_kn'))",
}


def test_every_line_is_short_and_abbreviations_are_introduced_once(
    derivation: GMMDerivation,
) -> None:
    lines = derivation.view("lecture")
    assert max(len(line.text) for line in lines) < 90
    reasons = [row for row in derivation.text("lecture").splitlines() if row.startswith(" " * 8)]
    assert reasons and max(len(row) for row in reasons) < 90, max(reasons, key=len)
    notes = [line.note for line in lines if line.note]
    # each said once, where it first appears: the residual under sum_k (u_kn, line 1), the
    # scatter where the covariance's solution first shows it
    assert notes == ["u_kn = x_n - mu_k", SCATTER[derivation.covariance_type]]
    assert lines[0].note == notes[0]
    assert "x_n - mu_k" not in "".join(line.text for line in lines[1:] if line.stage == "means")
    assert any(line.text == "L = Q + lambda*(sum_k(pi_k) - 1)" for line in lines)
    # N_k, introduced by the means' abbreviation step, is used after it (the weights' G)
    assert any(line.text == "G = N_k/pi_k + lambda" for line in lines)
    assert not any("sum_n(q_kn)" in line.text for line in lines if line.stage == "weights")
    # the printed form is the line's expression, abbreviated: written out with what the lines
    # introduce (and N_k with its definition), it is the step's
    definitions = [eq.args for line in lines for eq in line.introduces]
    count = parse("N_k", {"N": "positive"}, indices="nk")
    soft = derivation.definitions["N_k"]
    residual = parse("x_n - mu_k", KINDS, indices="nk", context=derivation.surrogate)
    q = parse("Q", {"Q": "scalar"})
    shown = 0
    for line in lines:
        if line.shown is None:
            continue
        written = substitute(line.shown, q, derivation.surrogate)
        for name, definition in reversed(definitions):
            if name.op is not Op.VAR or name.name != "u":
                written = replace_all(written, name, definition)
        written = _residual_out(written, residual)
        assert substitute(written, count, soft) == substitute(line.expr, count, soft), line.text
        shown += 1
    assert shown >= 10


def _residual_out(e: Expr, residual: Expr) -> Expr:
    """``e`` with u_n and u_kn written out as x_n - mu_k."""
    if e.op is Op.VAR and e.name == "u":
        return residual
    if not e.args:
        return e
    return rebuild(e, [_residual_out(a, residual) for a in e.args])


def test_the_scatter_is_what_the_covariance_sums() -> None:
    # S_k's definition, evaluated, is the weighted scatter of the data about the mean
    d = derive_gmm("full")
    line = next(line for line in d.view("lecture") if "S_k" in line.note)
    (eq,) = line.introduces
    X, resp = _data(3)
    values = _parameter_values(d, X, resp)
    u = next(n for n in eq.args[1].walk() if n.op is Op.VAR and n.name == "u")
    residual = parse("x_n - mu_k", KINDS, indices="nk", context=d.surrogate)
    definition = substitute(eq.args[1], u, residual)
    for k in range(N_COMPONENTS):
        got = evaluate(definition, values, index_env={"k": k})  # type: ignore[arg-type]
        centred = X - values["mu"][k]
        expected = (resp[:, k, None] * centred).T @ centred
        np.testing.assert_allclose(got, expected, rtol=1e-10)
