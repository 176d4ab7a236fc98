"""A student's own model: each closed form the engine derives maximises the objective.

Every model is derived from its objective alone (``derive_model``), its closed form evaluated
on random data (``solve_at``), and compared with a numeric maximiser of the same objective
(scipy.optimize, started away from the answer). Then the refusals: what the solver cannot
isolate is named, a non-linear constraint is refused, and the command line says so in one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
from scipy.optimize import minimize
from typer.testing import CliRunner, Result

import gaussmix.cli.main  # noqa: F401  (registers every command)
from gaussmix.calculus import CalculusError, to_text
from gaussmix.calculus.numeric import evaluate
from gaussmix.calculus.parse import parse
from gaussmix.cli.app import app
from gaussmix.derive import derive_gmm
from gaussmix.derive import gmm as gmm_module
from gaussmix.derive import model as model_module
from gaussmix.derive.model import ModelDerivation, derive_model

N, K, D = 30, 3, 2


def _resp(rng: np.random.Generator) -> np.ndarray:
    return rng.dirichlet(np.ones(K), size=N).T  # q_kn: (K, N), columns sum to one


def _objective(d: ModelDerivation, data: dict) -> Callable[[dict], float]:
    assert d.objective is not None
    f = d.objective
    return lambda unknowns: float(evaluate(f, {**data, **unknowns}))


def _maximise(
    f: Callable[[dict], float],
    shapes: dict[str, tuple[int, ...]],
    start: dict[str, np.ndarray],
    bounds: dict[str, tuple[float | None, float | None]] | None = None,
    constraints: list[dict] | None = None,
) -> dict[str, np.ndarray]:
    """scipy's maximiser of f over the named arrays."""
    names = list(shapes)
    sizes = [int(np.prod(shapes[n])) for n in names]

    def unpack(z: np.ndarray) -> dict:
        out, i = {}, 0
        for name, size in zip(names, sizes, strict=True):
            part = z[i : i + size].reshape(shapes[name])
            out[name] = float(part) if shapes[name] == () else part
            i += size
        return out

    z0 = np.concatenate([np.ravel(start[n]) for n in names])
    box = None
    if bounds:
        box = [
            b
            for n, size in zip(names, sizes, strict=True)
            for b in [bounds.get(n, (None, None))] * size
        ]
    cons = [dict(c, fun=(lambda z, g=c["fun"]: g(unpack(z)))) for c in constraints or []]
    method = "SLSQP" if cons else "L-BFGS-B"
    options = (
        {"ftol": 1e-14, "maxiter": 2000}
        if cons
        else {"ftol": 1e-15, "gtol": 1e-11, "maxiter": 20000}
    )
    result = minimize(
        lambda z: -f(unpack(z)), z0, method=method, bounds=box, constraints=cons, options=options
    )
    return unpack(result.x)


def _close(ours: dict, theirs: dict, rtol: float = 1e-4) -> None:
    for name, value in theirs.items():
        np.testing.assert_allclose(np.asarray(ours[name]), np.asarray(value), rtol=rtol, atol=1e-6)


# --- the models ----------------------------------------------------------------------------------


def test_poisson_mixture_rates() -> None:
    d = derive_model(
        "sum_n(sum_k(q_kn*(log(pi_k) + x_n*log(lambda_k) - lambda_k)))",
        ["lambda_k"],
        indices="n,k",
    )
    assert to_text(d.updates["lambda_k"]) == "sum_n(q_kn*x_n)/sum_n(q_kn)"
    rng = np.random.default_rng(0)
    data = {"q": _resp(rng), "x": rng.poisson(4.0, size=N).astype(float), "pi": np.ones(K) / K}
    ours = d.solve_at(data)
    theirs = _maximise(
        _objective(d, data),
        {"lambda": (K,)},
        {"lambda": np.ones(K)},
        bounds={"lambda": (1e-6, None)},
    )
    _close(ours, theirs)


def test_exponential_mixture_rates() -> None:
    d = derive_model(
        "sum_n(sum_k(q_kn*(log(lambda_k) - lambda_k*x_n)))", ["lambda_k"], indices="nk"
    )
    assert to_text(d.updates["lambda_k"]) == "sum_n(q_kn)/sum_n(q_kn*x_n)"
    rng = np.random.default_rng(1)
    data = {"q": _resp(rng), "x": rng.exponential(2.0, size=N)}
    theirs = _maximise(
        _objective(d, data),
        {"lambda": (K,)},
        {"lambda": np.ones(K)},
        bounds={"lambda": (1e-6, None)},
    )
    _close(d.solve_at(data), theirs)


def test_categorical_mixture_probabilities_one_constraint_per_component() -> None:
    d = derive_model(
        "sum_n(sum_k(q_kn*sum_j(x_jn*log(p_jk))))",
        ["p_jk"],
        constraints=["sum_j(p_jk) = 1"],
        indices="n,k,j",
    )
    assert "lambda_k" in d.parameters  # a multiplier per component
    rng = np.random.default_rng(2)
    J = 4
    x = np.eye(J)[rng.integers(0, J, size=N)].T  # x_jn: one-hot, (J, N)
    data = {"q": _resp(rng), "x": x}
    ours = d.solve_at(data)
    np.testing.assert_allclose(ours["p"].sum(axis=0), 1.0)
    theirs = _maximise(
        _objective(d, data),
        {"p": (J, K)},
        {"p": np.full((J, K), 1 / J)},
        bounds={"p": (1e-9, 1.0)},
        constraints=[{"type": "eq", "fun": lambda u: u["p"].sum(axis=0) - 1}],
    )
    _close(ours, theirs, rtol=1e-3)


def test_gaussian_mixture_with_a_shared_mean() -> None:
    d = derive_model(
        "sum_n(sum_k(q_kn*(1/2*logdet(Lambda_k) - 1/2*(x_n - mu)'*Lambda_k*(x_n - mu))))",
        ["mu"],
        indices="nk",
        types="Lambda:spd",
    )
    assert "solve the linear system" in [s.rule for s in d.steps]
    rng = np.random.default_rng(3)
    a = rng.normal(size=(K, D, D))
    precisions = a @ np.swapaxes(a, 1, 2) + np.eye(D)
    data = {
        "q": _resp(rng),
        "x": rng.normal(size=(N, D)) + np.array([1.0, -2.0]),
        "Lambda": precisions,
    }
    theirs = _maximise(_objective(d, data), {"mu": (D,)}, {"mu": np.zeros(D)})
    _close(d.solve_at(data), theirs)


def test_one_dimensional_mixture_mean_and_variance() -> None:
    # the variance enters through its inverse, the precision tau_k (as the GMM's does)
    d = derive_model(
        "sum_n(sum_k(q_kn*(1/2*log(tau_k) - tau_k/2*(x_n - m_k)^2)))",
        ["m_k", "tau_k"],
        indices="nk",
    )
    assert to_text(d.updates["tau_k"]) == "sum_n(q_kn)/sum_n(q_kn*(x_n - m_k)^2)"
    assert "tau_k" in d.evaluated  # the variance at the new mean
    rng = np.random.default_rng(4)
    data = {"q": _resp(rng), "x": rng.normal(size=N) * 2.0}
    theirs = _maximise(
        _objective(d, data),
        {"m": (K,), "tau": (K,)},
        {"m": np.zeros(K), "tau": np.ones(K)},
        bounds={"tau": (1e-6, None)},
    )
    _close(d.solve_at(data), theirs)


def test_one_dimensional_mixture_variance_in_the_variance() -> None:
    # written in the variance itself: a/s^2 - b/s = 0 has its denominators cleared
    d = derive_model(
        "sum_n(sum_k(q_kn*(-1/2*log(sigma2_k) - 1/2*(x_n - m_k)^2/sigma2_k)))",
        ["m_k", "sigma2_k"],
        indices="nk",
    )
    assert "clear the denominators" in [s.rule for s in d.steps]
    assert to_text(d.updates["sigma2_k"]) == "sum_n(q_kn*(x_n - m_k)^2)/sum_n(q_kn)"
    rng = np.random.default_rng(10)
    data = {"q": _resp(rng), "x": rng.normal(size=N) * 2.0}
    theirs = _maximise(
        _objective(d, data),
        {"m": (K,), "sigma2": (K,)},
        {"m": np.zeros(K), "sigma2": np.ones(K)},
        bounds={"sigma2": (1e-6, None)},
    )
    _close(d.solve_at(data), theirs)


@pytest.mark.parametrize(
    "noise",
    [
        "1/2*log(tau_k) - tau_k/2*(y_n - x_n'*beta_k)^2",
        "-1/2*log(tau_k) - 1/2*(y_n - x_n'*beta_k)^2/tau_k",
    ],
    ids=["precision", "variance"],
)
def test_mixture_of_linear_regressions(noise: str) -> None:
    d = derive_model(
        f"sum_n(sum_k(q_kn*({noise})))",
        ["beta_k", "tau_k"],
        indices="nk",
    )
    assert to_text(d.updates["beta_k"]) == "inv(sum_n(q_kn*x_n*x_n'))*sum_n(q_kn*y_n*x_n)"
    assert "sum_n(q_kn*x_n*x_n') is invertible" in d.assumptions
    rng = np.random.default_rng(5)
    x = rng.normal(size=(N, D))
    data = {"q": _resp(rng), "x": x, "y": x @ [1.0, -1.0] + rng.normal(size=N)}
    theirs = _maximise(
        _objective(d, data),
        {"beta": (K, D), "tau": (K,)},
        {"beta": np.zeros((K, D)), "tau": np.ones(K)},
        bounds={"tau": (1e-6, None)},
    )
    _close(d.solve_at(data), theirs)


def test_ridge_regression() -> None:
    d = derive_model("-1/2*norm2(y - X*beta)^2 - alpha/2*beta'*beta", ["beta"])
    assert to_text(d.updates["beta"]) == "inv(X'*X + alpha*eye)*X'*y"
    rng = np.random.default_rng(6)
    data = {"X": rng.normal(size=(N, D + 1)), "y": rng.normal(size=N), "alpha": 0.7}
    theirs = _maximise(_objective(d, data), {"beta": (D + 1,)}, {"beta": np.zeros(D + 1)})
    _close(d.solve_at(data), theirs)


def test_weighted_least_squares() -> None:
    d = derive_model("-1/2*sum_n(w_n*(y_n - x_n'*beta)^2)", ["beta"], indices="n")
    assert to_text(d.updates["beta"]) == "inv(sum_n(w_n*x_n*x_n'))*sum_n(w_n*y_n*x_n)"
    rng = np.random.default_rng(7)
    data = {
        "w": rng.uniform(0.5, 2.0, size=N),
        "x": rng.normal(size=(N, D)),
        "y": rng.normal(size=N),
    }
    theirs = _maximise(_objective(d, data), {"beta": (D,)}, {"beta": np.zeros(D)})
    _close(d.solve_at(data), theirs)


def test_gmm_weights_with_the_multiplier_typed_by_the_student() -> None:
    d = derive_model(
        "sum_n(sum_k(q_kn*log(pi_k))) + lambda*(sum_k(pi_k) - 1)",
        ["pi_k", "lambda"],
        indices="nk",
        facts=["sum_k(q_kn) = 1", "N_k = sum_n(q_kn)"],
    )
    assert to_text(d.updates["pi_k"]) == "N_k/N"  # as derive gmm has it
    assert to_text(d.solutions["lambda"]) == "-N"
    rng = np.random.default_rng(8)
    data = {"q": _resp(rng)}
    q = parse("sum_n(sum_k(q_kn*log(pi_k)))", indices="nk", infer=True)  # without the multiplier
    theirs = _maximise(
        lambda u: float(evaluate(q, {**data, **u})),
        {"pi": (K,)},
        {"pi": np.array([0.5, 0.3, 0.2])},
        bounds={"pi": (1e-9, 1.0)},
        constraints=[{"type": "eq", "fun": lambda u: u["pi"].sum() - 1}],
    )
    _close(d.solve_at(data), theirs, rtol=1e-3)


def test_gmm_weights_from_the_constraint_without_facts() -> None:
    d = derive_model(
        "sum_n(sum_k(q_kn*log(pi_k)))", ["pi_k"], constraints=["sum_k(pi_k) = 1"], indices="nk"
    )
    rng = np.random.default_rng(9)
    q = rng.uniform(size=(K, N))  # not responsibilities: no fact was stated, none is needed
    ours = d.solve_at({"q": q})
    np.testing.assert_allclose(ours["pi"], q.sum(axis=1) / q.sum())


@pytest.mark.parametrize("seed", [0, 1])
def test_every_gradient_vanishes_at_the_solution_on_random_data(seed: int) -> None:
    d = derive_model(
        "sum_n(sum_k(q_kn*sum_j(x_jn*log(p_jk))))",
        ["p_jk"],
        constraints=["sum_j(p_jk) = 1"],
        indices="nkj",
    )
    for before, after in d.check(seed).values():
        assert before > 1e-3 and after < 1e-9


def test_updates_written_in_each_other_are_said_to_be_coupled() -> None:
    d = derive_model(
        "sum_n(sum_k(q_kn*(1/2*logdet(Lambda_k) - 1/2*(x_n - mu)'*Lambda_k*(x_n - mu))))",
        ["mu", "Lambda_k"],
        indices="nk",
        types="Lambda:spd",
    )
    assert set(d.coupled) == {"mu", "Lambda_k"} and not d.evaluated
    assert "are written in terms of each other" in d.text("lecture")
    for before, after in d.check(0).values():  # each, given the other
        assert before > 1e-3 and after < 1e-9


def test_the_multiplier_is_among_the_results() -> None:
    d = derive_model("sum_k(N_k*log(pi_k))", ["pi_k"], constraints=["sum_k(pi_k) = 1"], indices="k")
    assert [to_text(r) for r in d.results()] == ["pi_k = N_k/sum_m(N_m)", "lambda = -sum_k(N_k)"]


@pytest.mark.parametrize(
    ("objective", "unknowns", "constraints", "facts"),
    [
        ("sum_n(sum_k(q_kn*(x_n*log(lambda_k) - lambda_k)))", ["lambda_k"], [], []),
        ("sum_n(sum_k(q_kn*sum_j(x_jn*log(p_jk))))", ["p_jk"], ["sum_j(p_jk) = 1"], []),
        (
            "sum_n(sum_k(q_kn*(-1/2*log(v_k) - 1/2*(y_n - x_n'*beta_k)^2/v_k)))",
            ["beta_k", "v_k"],
            [],
            [],
        ),
        (
            "sum_n(sum_k(q_kn*log(pi_k))) + lambda*(sum_k(pi_k) - 1)",
            ["pi_k", "lambda"],
            [],
            ["sum_k(q_kn) = 1", "N_k = sum_n(q_kn)"],
        ),
    ],
    ids=["poisson", "categorical", "regressions", "weights"],
)
def test_every_equation_of_the_derivation_holds_at_the_solution(
    objective: str, unknowns: list[str], constraints: list[str], facts: list[str]
) -> None:
    # the solver's rules turn an equation into one with the same solutions, so every equation
    # written on the way holds at the derived solution (definitions written out)
    from gaussmix.calculus.expr import Op, is_zero, substitute
    from gaussmix.derive.model import free_indices

    d = derive_model(objective, unknowns, constraints=constraints, indices="nkj", facts=facts)
    rng = np.random.default_rng(11)
    data = {"q": _resp(rng), "x": rng.uniform(0.5, 2.0, size=(N, D)), "y": rng.normal(size=N)}
    if "x_jn" in objective:
        data["x"] = np.eye(4)[rng.integers(0, 4, size=N)].T
    elif "x_n'" not in objective:
        data["x"] = rng.poisson(3.0, size=N).astype(float)
    values = {**data, **d.solve_at(data)}
    sizes = {"k": K, "n": N, "j": 4}
    counts = {"n": N}
    checked = 0
    for step in d.steps:
        eq = step.after
        if eq.op is not Op.EQ:
            continue
        for symbol, definition in d.definition_vars():
            eq = substitute(eq, symbol, definition)
        free = sorted(free_indices(eq))
        for at in np.ndindex(*[sizes[i] for i in free]):
            env = dict(zip(free, at, strict=True))
            lhs = np.asarray(evaluate(eq.args[0], values, index_env=env, counts=counts))
            rhs = (
                np.zeros_like(lhs)  # 0*ones: no value sizes it
                if is_zero(eq.args[1])
                else np.asarray(evaluate(eq.args[1], values, index_env=env, counts=counts))
            )
            scale = max(1.0, float(np.abs(lhs).max()))
            np.testing.assert_allclose(lhs, rhs, rtol=1e-8, atol=1e-8 * scale)
        checked += 1
    assert checked >= 3


# --- the runner is derive gmm's ----------------------------------------------------------------


def test_derive_gmm_runs_on_the_same_runner() -> None:
    actions = {action for _, action, _ in gmm_module.PLAN}
    assert {model_module.stationary, model_module.at_the_new} <= actions
    d = derive_gmm("full")
    assert isinstance(d, model_module.Derivation)
    assert d.on_lagrangian == {"pi_k", "lambda"}
    assert not d.assumptions  # the GMM's facts prove every factor nonzero


# --- refusals ------------------------------------------------------------------------------------


def test_an_equation_it_cannot_isolate_is_named() -> None:
    with pytest.raises(
        CalculusError,
        match=r"sum_n\(q_kn\*exp\(theta_k\*x_n\)\*x_n\) = 0 is not "
        r"affine in theta_k",
    ):
        derive_model("sum_n(sum_k(q_kn*exp(theta_k*x_n)))", ["theta_k"], indices="nk")


def test_a_nonlinear_constraint_is_refused() -> None:
    with pytest.raises(CalculusError, match="not linear in pi_k"):
        derive_model(
            "sum_k(N_k*log(pi_k))", ["pi_k"], constraints=["sum_k(pi_k^2) = 1"], indices="k"
        )


def test_bad_inputs() -> None:
    with pytest.raises(CalculusError, match="rho_k does not occur"):
        derive_model("sum_k(N_k*log(pi_k))", ["rho_k"], indices="k")
    with pytest.raises(CalculusError, match="one equation"):
        derive_model("sum_k(N_k*log(pi_k))", ["pi_k"], constraints=["sum_k(pi_k)"], indices="k")
    with pytest.raises(CalculusError, match="none of the unknowns"):
        derive_model("sum_k(N_k*log(pi_k)) + a", ["pi_k"], constraints=["a = 1"], indices="k")


# --- the command line ----------------------------------------------------------------------------


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["derive", "model", *args])


POISSON = "sum_n(sum_k(q_kn*(x_n*log(lambda_k) - lambda_k)))"


def test_cli_derives_and_checks() -> None:
    result = run(POISSON, "--for", "lambda_k", "--indices", "n,k", "--check")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "lambda_k = sum_n(q_kn*x_n)/sum_n(q_kn)" in out
    assert "assuming: sum_n(q_kn*x_n) != 0" in out
    assert "difference/t goes to zero with t" in out
    line = next(x for x in out.splitlines() if x.startswith("  |G(lambda_k)|"))
    assert float(line.split(", ")[1].split()[0]) < 1e-9


def test_cli_formats_and_detail() -> None:
    args = (
        "sum_k(N_k*log(pi_k))",
        "--for",
        "pi_k",
        "--indices",
        "k",
        "--constraint",
        "sum_k(pi_k) = 1",
    )
    lecture, full = run(*args).stdout, run(*args, "--detail", "full").stdout
    assert "Lagrangian" in lecture and lecture.count("\n   ") < full.count("\n   ")
    data = json.loads(run(*args, "--json", "--check").stdout)
    assert set(data["at_solution"]) == {"pi_k", "lambda"}
    assert "\\begin{aligned}" in run(*args, "--latex").stdout
    assert run(*args, "--markdown").stdout.startswith("## Stationary point of f in pi_k")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("sum_n(sum_k(q_kn*exp(theta_k*x_n)))", "--for", "theta_k", "--indices", "nk"),
            "is not affine in theta_k",
        ),
        (
            (
                "sum_k(N_k*log(pi_k))",
                "--for",
                "pi_k",
                "--indices",
                "k",
                "--constraint",
                "sum_k(pi_k^2) = 1",
            ),
            "not linear in pi_k",
        ),
        (("sum_k(N_k*log(pi_k))", "--for", "rho_k", "--indices", "k"), "rho_k does not occur"),
        (("sum_n(x_n*log(lambda_k)", "--for", "lambda_k", "--indices", "nk"), "ends too early"),
        (
            (POISSON, "--for", "lambda_k", "--indices", "nk", "--detail", "short"),
            "unknown --detail",
        ),
        ((POISSON, "--for", "", "--indices", "nk"), "at least one unknown"),
    ],
)
def test_cli_errors_are_one_line(args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_cli_short_form_is_the_model_subcommand() -> None:
    args = [POISSON, "--for", "lambda_k", "--indices", "n,k"]
    short = CliRunner().invoke(app, ["derive", *args])
    assert short.exit_code == 0, short.output
    assert short.stdout == run(*args).stdout
    minus = run("--for", "beta", "--", "-1/2*norm2(y - X*beta)^2 - alpha/2*beta'*beta")
    assert "beta = inv(X'*X + alpha*eye)*X'*y" in minus.stdout
