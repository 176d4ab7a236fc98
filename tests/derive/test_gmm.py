"""The derived M-step is the library's M-step, a stationary point, and a maximum."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix.calculus import to_text
from gaussmix.calculus.numeric import evaluate
from gaussmix.derive import COVARIANCE_TYPES, GMMDerivation, derive_gmm
from gaussmix.derive import gmm as gmm_module
from gaussmix.em import mstep_from_resp

N_SAMPLES, N_FEATURES, N_COMPONENTS = 40, 3, 3


@pytest.fixture(scope="module", params=COVARIANCE_TYPES)
def derivation(request: pytest.FixtureRequest) -> GMMDerivation:
    return derive_gmm(request.param)


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES)) * [1.0, 3.0, 0.5] + [0.0, 5.0, -2.0]
    resp = rng.dirichlet(np.ones(N_COMPONENTS) * 0.7, size=N_SAMPLES)
    return X, resp


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_derived_mstep_is_the_engines(derivation: GMMDerivation, seed: int) -> None:
    X, resp = _data(seed)
    ours = derivation.mstep(X, resp)
    theirs = mstep_from_resp(X, resp, derivation.covariance_type, reg_covar=0.0)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _parameter_values(d: GMMDerivation, X: np.ndarray, resp: np.ndarray) -> dict:
    """The derived solution as values of the surrogate's variables."""
    weights, means, cov = d.mstep(X, resp)
    values = {"x": X, "q": resp.T, "pi": weights, "mu": means}
    name = d.structure.parameter.split("_")[0]
    if not d.structure.parameter.endswith("_k") and d.covariance_type != "tied":
        cov = cov[0]  # one shared covariance, repeated per component in the engine's layout
    if d.covariance_type in ("full", "tied"):
        values[name] = np.linalg.inv(cov)
    else:
        values[name] = 1.0 / cov
    values[gmm_module.MULTIPLIER] = evaluate(
        d.solutions[gmm_module.MULTIPLIER], values, counts={"n": len(X)}
    )
    return values


def _gradient_norm(d: GMMDerivation, parameter: str, values: dict) -> float:
    g = d.gradients[parameter]
    if "k" in {i for _, indices in g.free for i in indices}:
        return max(
            float(np.linalg.norm(evaluate(g, values, index_env={"k": k})))
            for k in range(N_COMPONENTS)
        )
    return float(np.linalg.norm(evaluate(g, values)))


def test_the_gradient_vanishes_at_the_solution(derivation: GMMDerivation) -> None:
    X, resp = _data(3)
    values = _parameter_values(derivation, X, resp)
    assert set(derivation.gradients) == {
        "mu_k",
        derivation.structure.parameter,
        "pi_k",
        gmm_module.MULTIPLIER,
    }
    assert values[gmm_module.MULTIPLIER] == pytest.approx(-N_SAMPLES)
    moved = dict(values, mu=values["mu"] + 0.1)
    for parameter in derivation.gradients:
        scale = max(1.0, _gradient_norm(derivation, parameter, moved))
        assert _gradient_norm(derivation, parameter, values) <= 1e-10 * scale * N_SAMPLES
    # and away from the solution it does not: the check has teeth
    assert _gradient_norm(derivation, "mu_k", moved) > 1e-3


def _perturbed(d: GMMDerivation, values: dict, rng: np.random.Generator, eps: float) -> dict:
    out = dict(values)
    out["mu"] = values["mu"] + eps * rng.normal(size=values["mu"].shape)
    name = d.structure.parameter.split("_")[0]
    precision = values[name]
    if d.covariance_type in ("full", "tied"):
        noise = rng.normal(size=precision.shape)
        noise = (noise + np.swapaxes(noise, -1, -2)) / 2  # symmetric, like the precision
        out[name] = precision + eps * noise * np.abs(precision).max()
    else:
        out[name] = precision * (1 + eps * rng.normal(size=precision.shape))  # stays positive
    v = rng.normal(size=values["pi"].shape)
    out["pi"] = values["pi"] + eps * (v - v.mean()) * values["pi"].min()  # still sums to one
    return out


def test_the_solution_is_a_maximum(derivation: GMMDerivation) -> None:
    X, resp = _data(4)
    values = _parameter_values(derivation, X, resp)
    q_star = evaluate(derivation.surrogate, values)
    rng = np.random.default_rng(0)
    for _ in range(12):
        moved = _perturbed(derivation, values, rng, 1e-3)
        assert np.sum(moved["pi"]) == pytest.approx(1.0)
        assert evaluate(derivation.surrogate, moved) < q_star
    # a larger step off the constraint would increase Q: the constraint matters
    off = dict(values, pi=values["pi"] * 1.1)
    assert evaluate(derivation.surrogate, off) > q_star


def test_full_derivation_names_the_lecture_steps() -> None:
    d = derive_gmm("full")
    rules = [s.rule for s in d.steps]
    jacobi = rules.index("Jacobi (log-determinant)")
    trick = rules.index("trace trick", jacobi)
    lagrangian = rules.index("Lagrangian", trick)
    assert jacobi < trick < lagrangian
    sections = [stage for stage, _ in d.sections()]
    assert sections == ["surrogate", "means", "precisions", "weights", "m-step"]
    weights = [s.rule for s in d.steps if s.stage == "weights"]
    for needed in (
        "Kronecker delta",
        "stationary point",
        "invert",
        "substitute",
        "swap sums",
        "identity",
    ):
        assert needed in weights
    assert to_text(d.updates["weights"]) == "N_k/N"
    assert to_text(d.updates["means"]) == "sum_n(q_kn*x_n)/N_k"
    assert to_text(d.updates["covariances"]) == "sum_n(q_kn*(x_n - mu_k)*(x_n - mu_k)')/N_k"
    assert to_text(d.gradients["mu_k"]) == "sum_n(q_kn*Lambda_k*(x_n - mu_k))"
    assert to_text(d.gradients["Lambda_k"]) == (
        "1/2*sum_n(q_kn*(inv(Lambda_k) - (x_n - mu_k)*(x_n - mu_k)'))"
    )


@pytest.mark.parametrize(
    ("covariance_type", "expected"),
    [
        ("diag", "sum_n(q_kn*(x_n - mu_k).^2)/N_k"),
        ("spherical", "sum_n(q_kn*(x_n - mu_k)'*(x_n - mu_k))/(D*N_k)"),
        ("tied", "sum_n(sum_k(q_kn*(x_n - mu_k)*(x_n - mu_k)'))/N"),
    ],
)
def test_structured_covariances(covariance_type: str, expected: str) -> None:
    assert to_text(derive_gmm(covariance_type).updates["covariances"]) == expected


def test_the_derivation_comes_from_the_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Give log det(P) weight 1 instead of 1/2 in the surrogate: the engine derives a
    # covariance half the size. Nothing of the derivation is written down anywhere else.
    doubled = gmm_module.SURROGATE.replace("1/2*logdet(P_k)", "logdet(P_k)")
    assert doubled != gmm_module.SURROGATE
    monkeypatch.setattr(gmm_module, "SURROGATE", doubled)
    d = derive_gmm("full")
    X, resp = _data(5)
    _, _, cov = d.mstep(X, resp)
    _, _, reference = mstep_from_resp(X, resp, "full")
    np.testing.assert_allclose(cov, reference / 2, rtol=1e-10)


def test_printed_forms(derivation: GMMDerivation) -> None:
    text = derivation.text()
    for heading in ("The surrogate", "The means", "The weights: a Lagrangian", "The M-step"):
        assert heading in text
    assert text.count("\n   1. ") == 1
    latex = derivation.latex()
    assert latex.count("\\begin{aligned}") == len(derivation.sections())
    md = derivation.markdown()
    assert md.startswith(f"## {derivation.heading()}")
    assert all(line.count("$") % 2 == 0 for line in md.splitlines())
    assert len(derivation.to_dict()["steps"]) == len(derivation.steps)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown covariance type 'ful'"):
        derive_gmm("ful")
    d = derive_gmm("diag")
    with pytest.raises(ValueError, match="resp"):
        d.mstep(np.ones((4, 2)), np.ones((3, 2)))


def test_every_equation_of_the_derivation_holds_at_the_solution(
    derivation: GMMDerivation,
) -> None:
    # The numeric test of the solver's rules: each rewrites an equation into one with the same
    # solutions, so every equation written on the way holds at the derived M-step.
    from gaussmix.calculus.expr import Op

    X, resp = _data(6)
    values = _parameter_values(derivation, X, resp)
    soft_count = resp.sum(axis=0)
    checked = 0
    for step in derivation.steps:
        eq = step.after
        if eq.op is not Op.EQ or step.stage not in ("means", "precisions", "weights"):
            continue
        lhs, rhs = eq.args
        names = {name for name, _ in eq.free}
        if "Sigma" in names or "sigma2" in names:
            continue  # the covariance is named only in the last line of its section
        point = dict(values, N=soft_count)
        for k in range(N_COMPONENTS):
            where = {"index_env": {"k": k}, "counts": {"n": len(X)}, "sizes": {"D": N_FEATURES}}
            a = np.asarray(evaluate(lhs, point, **where))  # type: ignore[arg-type]
            b = np.asarray(evaluate(rhs, point, **where))  # type: ignore[arg-type]
            scale = max(1.0, float(np.max(np.abs(a))), float(np.max(np.abs(b))))
            assert np.max(np.abs(a - b)) <= 1e-9 * scale, (step.rule, to_text(eq))
        checked += 1
    assert checked >= 10


# --- mclust's names, and its models with a closed form beyond scikit-learn's four ----------------


@pytest.mark.parametrize("covariance_type", ["EII", "EEI"])
@pytest.mark.parametrize("seed", [0, 1])
def test_mclust_closed_forms_are_the_engines(covariance_type: str, seed: int) -> None:
    d = derive_gmm(covariance_type)
    X, resp = _data(seed)
    ours = d.mstep(X, resp)
    theirs = mstep_from_resp(X, resp, covariance_type, reg_covar=0.0)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    values = _parameter_values(d, *_data(3))
    for parameter in d.gradients:
        assert _gradient_norm(d, parameter, values) <= 1e-9


def test_mclust_names_and_the_models_not_derived() -> None:
    assert to_text(derive_gmm("VVV").updates["covariances"]) == to_text(
        derive_gmm("full").updates["covariances"]
    )
    assert derive_gmm("VII").covariance_type == "spherical"
    assert to_text(derive_gmm("EII").updates["covariances"]) == (
        "sum_n(sum_k(q_kn*(x_n - mu_k)'*(x_n - mu_k)))/(D*N)"
    )
    assert to_text(derive_gmm("EEI").updates["covariances"]) == (
        "sum_n(sum_k(q_kn*(x_n - mu_k).^2))/N"
    )
    from gaussmix.em.covariance import REGISTRY

    # every model of the registry is either derived or listed, with its reason
    assert set(REGISTRY) == set(gmm_module.DERIVED) | set(gmm_module.NOT_DERIVED)
    with pytest.raises(ValueError, match="VEV is not derived: its M-step is iterative"):
        derive_gmm("VEV")
