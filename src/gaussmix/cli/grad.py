"""``gaussmix grad``: the gradient of a matrix expression, its derivation, its numeric check.

The result goes to stdout: the gradient alone by default (so that it can be piped), the numbered
derivation with ``--steps``, LaTeX with ``--latex``, everything as JSON with ``--json``; the
kinds assumed for undeclared names go to stderr (in the header with ``--steps``). ``--check``
adds the first-order definition at a random point as a table, ``--claim`` the verdict on a
claimed gradient, the slip it makes and the corrected claim. A syntax or shape error is one
``error:`` line on stderr, followed by the expression with a caret under the offending
character, and exit code 1. Exit code 1 also when ``--check`` fails or a
``--claim`` disagrees.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from gaussmix.cli.app import ExitCode, UserError, app

if TYPE_CHECKING:  # the calculus is imported when the command runs (gaussmix --help is quick)
    from gaussmix.calculus import CalculusError, Gradient
    from gaussmix.calculus.firstorder import FirstOrder
    from gaussmix.calculus.gradient import Agreement

__all__ = ["first_order_lines", "grad_command"]


def _fail(exc: CalculusError) -> typer.Exit:
    typer.echo(f"error: {' '.join(exc.message.split())}", err=True)
    if exc.caret:
        typer.echo(exc.caret, err=True)
    return typer.Exit(ExitCode.FAILURE)


def _short(value: Any) -> str:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return f"{float(arr):.4g}"
    text = np.array2string(arr, precision=3, separator=", ", max_line_width=10_000)
    return " ".join(text.split())


def _claim_lines(verdict: Agreement, r: Gradient) -> list[str]:
    if verdict:
        return [f"claim {verdict.claim}: agrees ({verdict.reason})"]
    lines = [f"claim {verdict.claim}: does not agree: {verdict.reason}"]
    if verdict.counterexample is not None:
        point = ", ".join(f"{k} = {_short(v)}" for k, v in sorted(verdict.counterexample.items()))
        lines.append(f"  counterexample: {point}")
        if verdict.claimed is not None:
            lines.append(f"  claim gives    {_short(verdict.claimed)}")
            lines.append(f"  gradient gives {_short(verdict.expected)}")
    lines.append(f"  corrected claim: {r}")
    return lines


def first_order_lines(
    table: FirstOrder, function: str = "f", title: str = "definition"
) -> list[str]:
    """The first-order definition as a table: t, the change, t<G, H>, their difference over t."""
    x = table.variable
    change = f"{function}({x} + t*H) - {function}({x})"
    lines = [
        f"{title}: {function}({x} + t*H) = {function}({x}) + t*<G, H> + o(t), "
        f"at a random {x} and unit direction H:",
        f"  {'t':>7}  {change:>24}  {'t*<G, H>':>14}  {'difference/t':>13}",
    ]
    for row in table.rows:
        lines.append(
            f"  {row.t:>7.0e}  {row.change:>24.9e}  {row.linear:>14.9e}  {row.remainder:>13.2e}"
        )
    verdict = (
        "goes to zero with t" if table.converges else "does NOT go to zero: G is not the gradient"
    )
    lines.append(f"  difference/t {verdict}")
    return lines


def _header(r: Gradient) -> str:
    kind = r.wrt.kind.value if r.wrt.kind is not None else "variable"
    lines = [
        f"gradient of {r.to_dict()['expression']} with respect to {r.wrt.full_name} ({kind})",
        f"convention: {r.convention}",
    ]
    if r.assumed:
        lines.append(f"assuming: {r.assumptions}")
    return "\n".join(lines)


@app.command("grad")
def grad_command(
    expression: Annotated[
        str, typer.Argument(help='The expression, e.g. "x\'*A*x" or "log(det(X))".')
    ],
    wrt: Annotated[str, typer.Option("--wrt", help="The variable, e.g. X.")],
    types: Annotated[
        str,
        typer.Option(
            "--types",
            help="Kinds of names, e.g. x:vector,S:symmetric (scalar, positive, vector, matrix, "
            "symmetric, spd). Undeclared names take the kinds that make the expression a "
            "scalar; what it leaves open follows a-g scalars, h-z vectors, A-Z matrices, mu a "
            "vector, Sigma and Lambda symmetric, other Greek names scalars.",
        ),
    ] = "",
    steps: Annotated[bool, typer.Option("--steps", help="Print the numbered derivation.")] = False,
    detail: Annotated[
        str, typer.Option("--detail", help="With --steps: lecture (one line per idea) or full.")
    ] = "lecture",
    latex: Annotated[bool, typer.Option("--latex", help="Print LaTeX instead of text.")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Check the gradient against finite differences, and show the first-order "
            "definition f(X + tH) = f(X) + t<G, H> + o(t) at a random point.",
        ),
    ] = False,
    claim: Annotated[
        str | None,
        typer.Option(
            "--claim",
            help='A claimed gradient to judge, e.g. "x*x\'"; a wrong one gets a '
            "counterexample and, when it is one slip away (a factor, a sign, a transpose, "
            "the symmetric convention, a term counted wrongly), the slip named.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as JSON.")] = False,
    indices: Annotated[
        str, typer.Option("--indices", help="Index letters for x_n and sum_n(...), e.g. nk.")
    ] = "",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random test points.")] = 0,
) -> None:
    """The gradient of a scalar matrix expression, derived step by step and checked numerically.

    Examples: gaussmix grad "x'*A*x" --wrt x; gaussmix grad "log(det(X))" --wrt X --steps;
    gaussmix grad "(x - m)'*inv(S)*(x - m)" --wrt m --types S:symmetric --check.
    """
    from gaussmix.calculus import CalculusError, grad
    from gaussmix.calculus.gradient import CHECK_TOLERANCE
    from gaussmix.calculus.lecture import DETAILS

    if detail not in DETAILS:
        raise UserError(f"unknown --detail {detail!r}; use lecture or full")
    try:
        r = grad(expression, wrt, types or None, indices=indices)
        error = r.check(seed) if check else None
        table = r.first_order(seed) if check else None
        verdict = r.agrees_with(claim, seed) if claim is not None else None
    except CalculusError as exc:
        raise _fail(exc) from None
    failed = (error is not None and error > CHECK_TOLERANCE) or (
        verdict is not None and not verdict
    )
    if as_json:
        out = r.to_dict()
        if error is not None and table is not None:
            out["check"] = {
                "relative_error": error,
                "ok": error <= CHECK_TOLERANCE,
                "first_order": [
                    {
                        "t": row.t,
                        "change": row.change,
                        "linear": row.linear,
                        "difference_over_t": row.remainder,
                    }
                    for row in table.rows
                ],
            }
        if verdict is not None:
            out["claim"] = {
                "claim": verdict.claim,
                "agrees": verdict.agrees,
                "relative_error": verdict.error if np.isfinite(verdict.error) else None,
                "reason": verdict.reason,
                "slip": verdict.slip or None,
                "corrected": None if verdict else str(r),
                "counterexample": None
                if verdict.counterexample is None
                else {k: np.asarray(v).tolist() for k, v in verdict.counterexample.items()},
            }
        typer.echo(json.dumps(out, indent=2))
    else:
        lines: list[str] = []
        if steps:
            lines.append(_header(r))
            lines.append(r.derivation_latex(detail) if latex else r.derivation(detail))
            lines.append(f"gradient: {r.latex if latex else r}")
        else:
            lines.append(r.latex if latex else str(r))
            if r.assumed:
                typer.echo(f"assuming: {r.assumptions}", err=True)
        if error is not None and table is not None:
            ok = "ok" if error <= CHECK_TOLERANCE else "FAILED"
            lines.append(
                f"check: relative error {error:.1e} against central finite differences "
                f"at random points ({ok})"
            )
            lines.extend(first_order_lines(table))
        if verdict is not None:
            lines.extend(_claim_lines(verdict, r))
            if check and not verdict and verdict.slip != "transpose":
                try:
                    wrong = r.first_order(seed, claim)
                except CalculusError:
                    pass  # a claim that cannot stand for G (its shape) has no table
                else:
                    lines.extend(first_order_lines(wrong, title="definition, the claim as G"))
        typer.echo("\n".join(lines))
    if failed:
        raise typer.Exit(ExitCode.FAILURE)
