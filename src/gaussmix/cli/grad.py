"""``gaussmix grad``: the gradient of a matrix expression, its derivation, its numeric check.

The result goes to stdout: the gradient alone by default (so that it can be piped), the numbered
derivation with ``--steps``, LaTeX with ``--latex``, everything as JSON with ``--json``. A syntax
or shape error is one ``error:`` line on stderr, followed by the expression with a caret under
the offending character, and exit code 1. Exit code 1 also when ``--check`` fails or a
``--claim`` disagrees.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from gaussmix.cli.app import ExitCode, app

if TYPE_CHECKING:  # the calculus is imported when the command runs (gaussmix --help is quick)
    from gaussmix.calculus import CalculusError, Gradient
    from gaussmix.calculus.gradient import Agreement

__all__ = ["grad_command"]


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


def _claim_lines(verdict: Agreement) -> list[str]:
    if verdict:
        return [f"claim {verdict.claim}: agrees ({verdict.reason})"]
    lines = [f"claim {verdict.claim}: does not agree: {verdict.reason}"]
    if verdict.counterexample is not None:
        point = ", ".join(f"{k} = {_short(v)}" for k, v in sorted(verdict.counterexample.items()))
        lines.append(f"  counterexample: {point}")
        if verdict.claimed is not None:
            lines.append(f"  claim gives    {_short(verdict.claimed)}")
            lines.append(f"  gradient gives {_short(verdict.expected)}")
    return lines


def _header(r: Gradient) -> str:
    kind = r.wrt.kind.value if r.wrt.kind is not None else "variable"
    return (
        f"gradient of {r.to_dict()['expression']} with respect to {r.wrt.full_name} ({kind})\n"
        f"convention: {r.convention}"
    )


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
            "symmetric, spd). Undeclared: a-g scalars, h-z vectors, A-Z matrices.",
        ),
    ] = "",
    steps: Annotated[bool, typer.Option("--steps", help="Print the numbered derivation.")] = False,
    latex: Annotated[bool, typer.Option("--latex", help="Print LaTeX instead of text.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Check the gradient against finite differences.")
    ] = False,
    claim: Annotated[
        str | None, typer.Option("--claim", help='A claimed gradient to judge, e.g. "x*x\'".')
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
    try:
        r = grad(expression, wrt, types or None, indices=indices)
        error = r.check(seed) if check else None
        verdict = r.agrees_with(claim, seed) if claim is not None else None
    except CalculusError as exc:
        raise _fail(exc) from None
    failed = (error is not None and error > CHECK_TOLERANCE) or (
        verdict is not None and not verdict
    )
    if as_json:
        out = r.to_dict()
        if error is not None:
            out["check"] = {"relative_error": error, "ok": error <= CHECK_TOLERANCE}
        if verdict is not None:
            out["claim"] = {
                "claim": verdict.claim,
                "agrees": verdict.agrees,
                "relative_error": verdict.error if np.isfinite(verdict.error) else None,
                "reason": verdict.reason,
                "counterexample": None
                if verdict.counterexample is None
                else {k: np.asarray(v).tolist() for k, v in verdict.counterexample.items()},
            }
        typer.echo(json.dumps(out, indent=2))
    else:
        lines: list[str] = []
        if steps:
            lines.append(_header(r))
            lines.append(r.derivation_latex() if latex else r.derivation())
            lines.append(f"gradient: {r.latex if latex else r}")
        else:
            lines.append(r.latex if latex else str(r))
        if error is not None:
            ok = "ok" if error <= CHECK_TOLERANCE else "FAILED"
            lines.append(
                f"check: relative error {error:.1e} against central finite differences "
                f"at random points ({ok})"
            )
        if verdict is not None:
            lines.extend(_claim_lines(verdict))
        typer.echo("\n".join(lines))
    if failed:
        raise typer.Exit(ExitCode.FAILURE)
