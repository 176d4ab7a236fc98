"""Textbook forms: how often the engine prints the gradient a textbook prints.

Run from the repository root:

    python benchmarks/bench_textbook.py

For each of the gradients below (the Matrix Cookbook's identities, softmax and log-sum-exp
losses, nonnegative matrix factorisation, diagonal and determinant forms, symmetric variables,
sizes and zeros) it prints the engine's gradient and the textbook's, and reports how many are
printed exactly in the textbook's form and the ratio of printed length to textbook length (the
targets: at least 90% exact, none over 1.5x). Every printed gradient is also parsed back and
compared with the engine's value at a random point (the round trip), and checked against finite
differences. The textbook forms are written in the input syntax (``inv(X)'`` for X^{-T}); they
come from the books, not from the engine. Results go to benchmarks/out/textbook.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from gaussmix.calculus import grad, parse, to_text
from gaussmix.calculus.numeric import evaluate, random_point

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"

SYM = {"S": "symmetric"}

# (expression, variable, kinds, the textbook's form)
CASES: list[tuple[str, str, dict[str, str], str]] = [
    # determinants and inverses (Matrix Cookbook 2.1, 2.2)
    ("det(X)", "X", {}, "det(X)*inv(X)'"),
    ("logdet(X)", "X", {}, "inv(X)'"),
    ("log(det(X))", "X", {}, "inv(X)'"),
    ("logdet(S)", "S", SYM, "inv(S)"),
    ("det(inv(X))", "X", {}, "-det(inv(X))*inv(X)'"),
    ("log(abs(det(X)))", "X", {}, "inv(X)'"),
    ("y'*inv(X)*z", "X", {}, "-inv(X)'*y*z'*inv(X)'"),
    ("tr(A*inv(X)*B)", "X", {}, "-inv(X)'*A'*B'*inv(X)'"),
    ("det(X)^(1/3)", "X", {}, "1/3*det(X)^(1/3)*inv(X)'"),
    ("det(X)^2", "X", {}, "2*det(X)^2*inv(X)'"),
    ("det(c*X)", "c", {}, "rows(X)*det(c*X)/c"),
    # traces (2.3)
    ("tr(X)", "X", {}, "eye"),
    ("tr(X*A)", "X", {}, "A'"),
    ("tr(A*X*B)", "X", {}, "A'*B'"),
    ("tr(A*X'*B)", "X", {}, "B*A"),
    ("tr(X'*A)", "X", {}, "A"),
    ("tr(X'*X)", "X", {}, "2*X"),
    ("tr(X*X)", "X", {}, "2*X'"),
    ("tr(X'*B*X)", "X", {}, "(B + B')*X"),
    ("tr(X^3)", "X", {}, "3*X'^2"),
    ("tr(A*S)", "S", SYM, "1/2*(A + A')"),
    # linear and quadratic forms (2.4)
    ("y'*x", "x", {}, "y"),
    ("y'*X*z", "X", {}, "y*z'"),
    ("y'*X'*z", "X", {}, "z*y'"),
    ("x'*A*x", "x", {}, "(A + A')*x"),
    ("x'*S*x", "x", SYM, "2*S*x"),
    ("x'*A*x", "A", {}, "x*x'"),
    ("x'*S*x", "S", SYM, "x*x'"),
    ("x'*x", "x", {}, "2*x"),
    ("(x - m)'*inv(S)*(x - m)", "x", SYM, "2*inv(S)*(x - m)"),
    ("(x - m)'*inv(S)*(x - m)", "m", SYM, "-2*inv(S)*(x - m)"),
    ("sum((A*x - y).^2)", "x", {}, "2*A'*(A*x - y)"),
    ("norm2(A*x - y)^2", "x", {}, "2*A'*(A*x - y)"),
    ("a*x'*x", "a", {}, "x'*x"),
    ("log(x'*x)", "x", {}, "2*x/(x'*x)"),
    # norms
    ("norm2(x - y)", "x", {}, "(x - y)/norm2(x - y)"),
    ("norm2(X)", "X", {}, "X/norm2(X)"),
    ("norm2(x)^2", "x", {}, "2*x"),
    ("norm1(x)", "x", {}, "sign(x)"),
    # elementwise functions
    ("sum(exp(x))", "x", {}, "exp(x)"),
    ("sum(log(x))", "x", {}, "1./x"),
    ("sum(x.^2)", "x", {}, "2*x"),
    ("sum(sin(X))", "X", {}, "cos(X)"),
    ("sum(x.*y)", "x", {}, "y"),
    ("y'*exp(x)", "x", {}, "y.*exp(x)"),
    ("sum(sqrt(X))", "X", {}, "1./(2*sqrt(X))"),
    ("sum(tanh(A*x))", "x", {}, "A'*(1 - tanh(A*x).^2)"),
    ("exp(a*b)", "a", {}, "b*exp(a*b)"),
    ("sum(log(1 + exp(x)))", "x", {}, "exp(x)./(1 + exp(x))"),
    # softmax and log-sum-exp losses
    ("log(sum(exp(x)))", "x", {}, "exp(x)/sum(exp(x))"),
    ("log(sum(exp(A*x + y)))", "x", {}, "A'*exp(A*x + y)/sum(exp(A*x + y))"),
    ("y'*log(exp(z)/sum(exp(z)))", "z", {}, "y - sum(y)*exp(z)/sum(exp(z))"),
    ("-y'*log(exp(z)/sum(exp(z)))", "z", {}, "sum(y)*exp(z)/sum(exp(z)) - y"),
    ("y'*z - log(sum(exp(z)))", "z", {}, "y - exp(z)/sum(exp(z))"),
    # nonnegative matrix factorisation (generalised Kullback-Leibler divergence)
    ("sum(A.*log(A./(W*H)) - A + W*H)", "W", {}, "(1 - A./(W*H))*H'"),
    ("sum(A.*log(A./(W*H)) - A + W*H)", "H", {}, "W'*(1 - A./(W*H))"),
    # diagonal matrices
    ("x'*inv(diag(w))*x", "w", {}, "-x.^2./w.^2"),
    ("x'*diag(y)*x", "x", {}, "2*diag(y)*x"),
    ("x'*diag(y)*x", "y", {}, "x.^2"),
    # cancellation and inverses of functions
    ("sum(x./x)", "x", {}, "0*ones"),
    ("sum(exp(log(u)))", "u", {}, "ones"),
    ("sum(log(exp(u)))", "u", {}, "ones"),
    # the Gaussian log-density
    ("-1/2*(x - m)'*inv(S)*(x - m) - 1/2*logdet(S)", "m", SYM, "inv(S)*(x - m)"),
    (
        "-1/2*(x - m)'*inv(S)*(x - m) - 1/2*logdet(S)",
        "S",
        SYM,
        "1/2*(inv(S)*(x - m)*(x - m)'*inv(S) - inv(S))",
    ),
    (
        "1/2*logdet(L) - 1/2*(x - m)'*L*(x - m)",
        "L",
        {"L": "symmetric"},
        "1/2*(inv(L) - (x - m)*(x - m)')",
    ),
]


def _round_trip(r: object, types: dict[str, str]) -> float:
    """Largest relative difference between the gradient and its printed text, parsed back."""
    g = r.gradient  # type: ignore[attr-defined]
    back = parse(to_text(g), types, context=r.expr, shape=g.shape)  # type: ignore[attr-defined]
    worst = 0.0
    for seed in (0, 1):
        point = random_point(r.expr, seed, also=(g,))  # type: ignore[attr-defined]
        a = np.asarray(evaluate(g, point.values, sizes=point.sizes), dtype=float)
        b = np.asarray(evaluate(back, point.values, sizes=point.sizes), dtype=float)
        worst = max(worst, float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(a)))))
    return worst


def main() -> int:
    rows = []
    for expr, wrt, types, textbook in CASES:
        r = grad(expr, wrt, types)
        printed = str(r)
        rows.append(
            {
                "expression": expr,
                "wrt": wrt,
                "printed": printed,
                "textbook": textbook,
                "exact": printed == textbook,
                "ratio": len(printed) / len(textbook),
                "check": r.check(),
                "round_trip": _round_trip(r, types),
            }
        )
    exact = sum(row["exact"] for row in rows)
    worst = max(rows, key=lambda row: row["ratio"])
    width = max(len(f"{row['expression']} ({row['wrt']})") for row in rows)
    for row in rows:
        mark = "=" if row["exact"] else "!"
        name = f"{row['expression']} ({row['wrt']})"
        line = f"{mark} {name:<{width}}  {row['printed']}"
        if not row["exact"]:
            line += f"   [textbook: {row['textbook']}, {row['ratio']:.2f}x]"
        print(line)
    print()
    print(
        f"{len(rows)} gradients: {exact} printed exactly in the textbook's form "
        f"({100 * exact / len(rows):.0f}%); longest relative to the textbook: "
        f"{worst['ratio']:.2f}x ({worst['expression']} in {worst['wrt']})"
    )
    check = max(row["check"] for row in rows)
    trip = max(row["round_trip"] for row in rows)
    print(
        f"finite-difference check: worst {check:.1e}; "
        f"round trip (printed text parsed back): worst {trip:.1e}"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "textbook.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
