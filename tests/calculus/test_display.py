"""Jupyter: gradients and derivations render as Markdown and LaTeX; no step reads falsely."""

from __future__ import annotations

from gaussmix.calculus import differentiate, grad, parse
from gaussmix.calculus.display import gradient_markdown
from gaussmix.derive import derive_gmm


def test_the_identify_step_is_not_a_false_equation() -> None:
    r = grad("log(det(X))", "X")
    step = next(s for s in r.steps if s.stage == "identify")
    assert step.text.startswith("df = tr(inv(X)*dX), so G = inv(X)'")
    assert "tr(inv(X)*dX) = inv(X)'" not in step.text
    assert step.latex.startswith(
        "\\mathrm{d}f = \\operatorname{tr}\\left(X^{-1} \\mathrm{d}X\\right), \\text{ so } G = "
        "X^{-\\top}"
    )
    other = next(s for s in r.steps if s.rule == "Jacobi")
    assert " = " in other.text and ", so " not in other.text


def test_a_gradient_renders_as_markdown_with_its_derivation() -> None:
    r = grad("(x_n - mu_k)'*Lambda_k*(x_n - mu_k)", "mu_k", indices="nk")
    md = r._repr_markdown_()
    lines = md.splitlines()
    assert lines[0] == (
        "$\\nabla_{\\mu_{k}}\\, f = -2 \\Lambda_{k} \\left(x_{n} - \\mu_{k}\\right)$ for "
        "$f = \\left(x_{n} - \\mu_{k}\\right)^\\top \\Lambda_{k} \\left(x_{n} - \\mu_{k}\\right)$"
    )
    assert "*assuming*: x_n, mu_k vectors; Lambda_k symmetric matrix" in lines
    numbered = [line for line in lines if line[:1].isdigit()]
    assert len(numbered) == len(r.view("lecture")) + 1  # the start, then one line per idea
    assert len(numbered) < len(r.steps) + 1
    assert all(line.count("$") == 2 for line in numbered)
    identify = [line for line in numbered if "*identify" in line]
    assert len(identify) == 1 and "$G = " in identify[0]
    full = gradient_markdown(r, "full").splitlines()
    steps = [line for line in full if line[:1].isdigit()]
    assert len(steps) == len(r.steps) + 1  # the starting line, then one per step
    assert "\\text{ so } G =" in next(line for line in steps if "*identify" in line)
    assert r._repr_latex_().startswith("$\\nabla_{\\mu_{k}}")


def test_a_gmm_derivation_renders_in_jupyter() -> None:
    d = derive_gmm("spherical")
    assert d._repr_markdown_() == d.markdown(heading="###", detail="lecture")
    latex = d._repr_latex_()
    assert latex.count("$$") == 2 * len(d.sections())
    assert "%" not in latex and latex.count("\\begin{aligned}") == len(d.sections())


def test_a_bare_derivation_renders_too() -> None:
    f = parse("log(det(X))")
    wrt = next(v for v in f.walk() if v.name == "X")
    d = differentiate(f, wrt)
    md = d._repr_markdown_()
    assert md.startswith("$\\nabla_{X}\\, f = X^{-\\top}$")
    assert md.count("\n0. ") == 1 and f"\n{len(d.steps)}. " in md
