"""``gaussmix derive gmm``, in-process."""

from __future__ import annotations

import json

from typer.testing import CliRunner, Result

import gaussmix.cli.main  # noqa: F401  (registers every command)
from gaussmix.cli.app import app


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["derive", "gmm", *args])


def test_text_for_full() -> None:
    result = run()
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("M-step of a Gaussian mixture, full covariance")
    assert out.index("Jacobi (log-determinant)") < out.index("trace trick", out.index("Jacobi"))
    assert "Lagrangian" in out
    tail = out[out.index("The M-step") :]
    assert "pi_k = N_k/N" in tail and "mu_k = sum_n(q_kn*x_n)/N_k" in tail


def test_other_formats() -> None:
    data = json.loads(run("--covariance", "spherical", "--json").stdout)
    assert data["covariance_type"] == "spherical"
    assert data["updates"]["covariances"] == "sum_n(q_kn*(x_n - mu_k)'*(x_n - mu_k))/(D*N_k)"
    latex = run("--covariance", "tied", "--latex").stdout
    assert "\\begin{aligned}" in latex
    markdown = run("--markdown").stdout
    assert markdown.startswith("# Where the M-step comes from")
    assert all(f"## {t} covariance" in markdown for t in ("Full", "Diag", "Spherical", "Tied"))
    one = run("--markdown", "--covariance", "diag").stdout
    assert "## Diag covariance" in one and "## Full covariance" not in one


def test_errors_are_one_line() -> None:
    result = run("--covariance", "ful")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: unknown covariance type 'ful'; use one of full, diag, spherical, tied, EII, EEI"
    )
    both = run("--latex", "--json")
    assert both.exit_code == 1 and "choose one" in both.stderr


def test_check_shows_the_first_order_definition_for_each_gradient() -> None:
    result = run("--covariance", "diag", "--check")
    assert result.exit_code == 0
    out = result.stdout
    tail = out[out.index("The first-order definition, numerically") :]
    headers = [line for line in tail.splitlines() if line.startswith("definition: ")]
    assert [h.split("(")[0] for h in headers] == ["definition: Q", "definition: Q"] + [
        "definition: L"
    ] * 2
    assert headers[0].startswith("definition: Q(mu_k + t*H) = Q(mu_k) + t*<G, H> + o(t)")
    assert tail.count("difference/t goes to zero with t") == 4
    data = json.loads(run("--covariance", "spherical", "--check", "--json").stdout)
    assert list(data["first_order"]) == ["mu_k", "tau_k", "pi_k", "lambda"]
    assert [row["t"] for row in data["first_order"]["mu_k"]] == [1e-1, 1e-2, 1e-3, 1e-4, 1e-5]


def test_mclust_models() -> None:
    out = run("--covariance", "EEI").stdout
    assert out.startswith("M-step of a Gaussian mixture, EEI covariance")
    assert "sigma2 = sum_n(sum_k(q_kn*(x_n - mu_k).^2))/N" in out
    assert run("--covariance", "VVV").stdout == run("--covariance", "full").stdout
    refused = run("--covariance", "EVE")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: EVE is not derived")
    assert "Browne and McNicholas 2014" in refused.stderr
