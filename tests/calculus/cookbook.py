"""Identities from the derivative chapter of the Matrix Cookbook (Petersen and Pedersen, 2012),
plus log-sum-exp and the Gaussian log-density in its mean, covariance and precision.

Each case gives the expression, the variable and kinds; many give the textbook's closed form
twice: as the text the engine must print (``text``) and as an independent numpy formula
(``formula``, from the book, not from the engine). Equation numbers refer to the 2012 edition.
The benchmark (benchmarks/bench_calculus.py) times the engine on the same suite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.linalg import det, inv

Values = dict[str, Any]


@dataclass(frozen=True)
class Case:
    id: str
    expr: str
    wrt: str
    types: dict[str, str] = field(default_factory=dict)
    text: str | None = None  # the textbook form, as the engine prints it
    formula: Callable[[Values], Any] | None = None  # the textbook form, in numpy

    def __str__(self) -> str:
        return self.id


def _outer(a: Any, b: Any) -> Any:
    return np.outer(a, b)


SYM = {"S": "symmetric"}

CASES: list[Case] = [
    # --- determinants (2.1.1) -------------------------------------------------------------
    Case(
        "det (49)",
        "det(X)",
        "X",
        text="det(X)*inv(X)'",
        formula=lambda v: det(v["X"]) * inv(v["X"]).T,
    ),
    # (51) for square factors; (50) in general: det(Y) A' inv(Y)' B' with Y = A X B
    Case(
        "det(AXB) (50)",
        "det(A*X*B)",
        "X",
        formula=lambda v: (
            det(v["A"] @ v["X"] @ v["B"]) * v["A"].T @ inv(v["A"] @ v["X"] @ v["B"]).T @ v["B"].T
        ),
    ),
    Case("logdet (57)", "logdet(X)", "X", text="inv(X)'", formula=lambda v: inv(v["X"]).T),
    Case("log det (57)", "log(det(X))", "X", text="inv(X)'", formula=lambda v: inv(v["X"]).T),
    Case(
        "log det X'X (55)",
        "log(det(X'*X))",
        "X",
        formula=lambda v: 2 * v["X"] @ inv(v["X"].T @ v["X"]),
    ),
    Case(
        "det X^2 (53)", "det(X^2)", "X", formula=lambda v: 2 * det(v["X"] @ v["X"]) * inv(v["X"]).T
    ),
    Case("det inv", "det(inv(X))", "X", formula=lambda v: -det(inv(v["X"])) * inv(v["X"]).T),
    Case("log abs det", "log(abs(det(X)))", "X", formula=lambda v: inv(v["X"]).T),
    Case("logdet symmetric", "logdet(S)", "S", SYM, text="inv(S)", formula=lambda v: inv(v["S"])),
    # --- inverses (2.2) --------------------------------------------------------------------
    Case(
        "a'inv(X)b (61)",
        "y'*inv(X)*z",
        "X",
        text="-inv(X)'*y*z'*inv(X)'",
        formula=lambda v: -inv(v["X"]).T @ _outer(v["y"], v["z"]) @ inv(v["X"]).T,
    ),
    Case(
        "tr(A inv(X) B) (63)",
        "tr(A*inv(X)*B)",
        "X",
        text="-inv(X)'*A'*B'*inv(X)'",
        formula=lambda v: -(inv(v["X"]) @ v["B"] @ v["A"] @ inv(v["X"])).T,
    ),
    Case("tr inv", "tr(inv(X))", "X", formula=lambda v: -(inv(v["X"]) @ inv(v["X"])).T),
    Case(
        "tr inv(X + A)",
        "tr(inv(X + A))",
        "X",
        formula=lambda v: -(inv(v["X"] + v["A"]) @ inv(v["X"] + v["A"])).T,
    ),
    # --- traces (2.5) ----------------------------------------------------------------------
    Case("tr (99)", "tr(X)", "X", text="eye", formula=lambda v: np.eye(len(v["X"]))),
    Case("tr XA (100)", "tr(X*A)", "X", text="A'", formula=lambda v: v["A"].T),
    Case("tr AXB (101)", "tr(A*X*B)", "X", text="A'*B'", formula=lambda v: v["A"].T @ v["B"].T),
    Case("tr AX'B (102)", "tr(A*X'*B)", "X", text="B*A", formula=lambda v: v["B"] @ v["A"]),
    Case("tr X'A (103)", "tr(X'*A)", "X", text="A", formula=lambda v: v["A"]),
    Case("tr AX' (104)", "tr(A*X')", "X", text="A", formula=lambda v: v["A"]),
    Case("tr X'X (111)", "tr(X'*X)", "X", text="2*X", formula=lambda v: 2 * v["X"]),
    Case("tr X^2 (106)", "tr(X*X)", "X", text="2*X'", formula=lambda v: 2 * v["X"].T),
    Case(
        "tr X'BX (117)",
        "tr(X'*B*X)",
        "X",
        text="(B + B')*X",
        formula=lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"],
    ),
    Case("tr XBX' (118)", "tr(X*B*X')", "X", formula=lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"]),
    Case(
        "tr AXBX (120)",
        "tr(A*X*B*X)",
        "X",
        text="A'*X'*B' + B'*X'*A'",
        formula=lambda v: v["A"].T @ v["X"].T @ v["B"].T + v["B"].T @ v["X"].T @ v["A"].T,
    ),
    Case("tr X^3 (121)", "tr(X^3)", "X", text="3*X'^2", formula=lambda v: 3 * (v["X"] @ v["X"]).T),
    Case(
        "tr X'BXC (119)",
        "tr(X'*B*X*C)",
        "X",
        formula=lambda v: v["B"] @ v["X"] @ v["C"] + v["B"].T @ v["X"] @ v["C"].T,
    ),
    Case("tr BXX'", "tr(B*X*X')", "X", formula=lambda v: (v["B"] + v["B"].T) @ v["X"]),
    Case("tr A X^2", "tr(A*X^2)", "X", formula=lambda v: (v["A"] @ v["X"] + v["X"] @ v["A"]).T),
    # --- linear and quadratic forms (2.4) ----------------------------------------------------
    Case("x'a (69)", "y'*x", "x", text="y", formula=lambda v: v["y"]),
    Case("a'Xb (70)", "y'*X*z", "X", text="y*z'", formula=lambda v: _outer(v["y"], v["z"])),
    Case("a'X'b (71)", "y'*X'*z", "X", text="z*y'", formula=lambda v: _outer(v["z"], v["y"])),
    Case(
        "x'Ax (issue)",
        "x'*A*x",
        "x",
        text="(A + A')*x",
        formula=lambda v: (v["A"] + v["A"].T) @ v["x"],
    ),
    Case("x'Sx symmetric", "x'*S*x", "x", SYM, text="2*S*x", formula=lambda v: 2 * v["S"] @ v["x"]),
    Case("x'Ax in A", "x'*A*x", "A", text="x*x'", formula=lambda v: _outer(v["x"], v["x"])),
    Case("x'Sx in S", "x'*S*x", "S", SYM, text="x*x'", formula=lambda v: _outer(v["x"], v["x"])),
    Case(
        "b'X'Xc (77)",
        "y'*X'*X*z",
        "X",
        text="X*(z*y' + y*z')",
        formula=lambda v: v["X"] @ (_outer(v["z"], v["y"]) + _outer(v["y"], v["z"])),
    ),
    Case(
        "b'X'DXc (79)",
        "y'*X'*D*X*z",
        "X",
        formula=lambda v: (
            v["D"].T @ v["X"] @ _outer(v["y"], v["z"]) + v["D"] @ v["X"] @ _outer(v["z"], v["y"])
        ),
    ),
    Case(
        "(Xb+c)'D(Xb+c) (80)",
        "(X*y + z)'*D*(X*y + z)",
        "X",
        formula=lambda v: (v["D"] + v["D"].T) @ np.outer(v["X"] @ v["y"] + v["z"], v["y"]),
    ),
    Case("x'x", "x'*x", "x", text="2*x", formula=lambda v: 2 * v["x"]),
    Case(
        "(Ax+b)'C(Dx+e) (82)",
        "(A*x + y)'*C*(D*x + z)",
        "x",
        formula=lambda v: (
            v["D"].T @ v["C"].T @ (v["A"] @ v["x"] + v["y"])
            + v["A"].T @ v["C"] @ (v["D"] @ v["x"] + v["z"])
        ),
    ),
    Case(
        "quadratic in x",
        "(x - m)'*inv(S)*(x - m)",
        "x",
        SYM,
        text="2*inv(S)*(x - m)",
        formula=lambda v: 2 * inv(v["S"]) @ (v["x"] - v["m"]),
    ),
    Case(
        "quadratic in m",
        "(x - m)'*inv(S)*(x - m)",
        "m",
        SYM,
        text="-2*inv(S)*(x - m)",
        formula=lambda v: -2 * inv(v["S"]) @ (v["x"] - v["m"]),
    ),
    Case(
        "(x'y)^2",
        "(x'*y)^2",
        "x",
        text="2*x'*y*y",
        formula=lambda v: 2 * (v["x"] @ v["y"]) * v["y"],
    ),
    # --- norms (2.6) -----------------------------------------------------------------------
    Case(
        "norm2 (129)",
        "norm2(x - y)",
        "x",
        text="(x - y)/norm2(x - y)",
        formula=lambda v: (v["x"] - v["y"]) / np.linalg.norm(v["x"] - v["y"]),
    ),
    Case("norm2 squared", "norm2(x)^2", "x", formula=lambda v: 2 * v["x"]),
    Case(
        "Frobenius",
        "norm2(X)",
        "X",
        text="X/norm2(X)",
        formula=lambda v: v["X"] / np.linalg.norm(v["X"]),
    ),
    Case("Frobenius squared", "norm2(X)^2", "X", formula=lambda v: 2 * v["X"]),
    Case("norm1", "norm1(x)", "x", text="sign(x)", formula=lambda v: np.sign(v["x"])),
    # --- elementwise functions -------------------------------------------------------------
    Case("sum exp", "sum(exp(x))", "x", text="exp(x)", formula=lambda v: np.exp(v["x"])),
    Case("sum log", "sum(log(x))", "x", text="1./x", formula=lambda v: 1 / v["x"]),
    Case("sum x.^2", "sum(x.^2)", "x", text="2*x", formula=lambda v: 2 * v["x"]),
    Case("sum sin", "sum(sin(X))", "X", text="cos(X)", formula=lambda v: np.cos(v["X"])),
    Case(
        "sum tanh(Ax)",
        "sum(tanh(A*x))",
        "x",
        formula=lambda v: v["A"].T @ (1 - np.tanh(v["A"] @ v["x"]) ** 2),
    ),
    Case("y'exp(x)", "y'*exp(x)", "x", formula=lambda v: v["y"] * np.exp(v["x"])),
    Case("sum sqrt", "sum(sqrt(X))", "X", formula=lambda v: 0.5 / np.sqrt(v["X"])),
    Case("x'diag(y)x", "x'*diag(y)*x", "x", formula=lambda v: 2 * v["y"] * v["x"]),
    # --- log-sum-exp -----------------------------------------------------------------------
    Case(
        "log-sum-exp",
        "log(sum(exp(x)))",
        "x",
        text="exp(x)/sum(exp(x))",
        formula=lambda v: np.exp(v["x"]) / np.exp(v["x"]).sum(),
    ),
    Case(
        "log-sum-exp of Ax + y",
        "log(sum(exp(A*x + y)))",
        "x",
        formula=lambda v: (
            v["A"].T @ np.exp(v["A"] @ v["x"] + v["y"]) / np.exp(v["A"] @ v["x"] + v["y"]).sum()
        ),
    ),
    # --- the Gaussian log-density ----------------------------------------------------------
    Case(
        "Gaussian in mu",
        "-1/2*(x - m)'*inv(S)*(x - m) - 1/2*logdet(S)",
        "m",
        SYM,
        text="inv(S)*(x - m)",
        formula=lambda v: inv(v["S"]) @ (v["x"] - v["m"]),
    ),
    Case(
        "Gaussian in Sigma",
        "-1/2*(x - m)'*inv(S)*(x - m) - 1/2*logdet(S)",
        "S",
        SYM,
        text="1/2*(inv(S)*(x - m)*(x - m)'*inv(S) - inv(S))",
        formula=lambda v: (
            0.5
            * (inv(v["S"]) @ np.outer(v["x"] - v["m"], v["x"] - v["m"]) @ inv(v["S"]) - inv(v["S"]))
        ),
    ),
    Case(
        "Gaussian in the precision",
        "1/2*logdet(L) - 1/2*(x - m)'*L*(x - m)",
        "L",
        {"L": "symmetric"},
        text="1/2*(inv(L) - (x - m)*(x - m)')",
        formula=lambda v: 0.5 * (inv(v["L"]) - np.outer(v["x"] - v["m"], v["x"] - v["m"])),
    ),
    Case(
        "Gaussian with constants",
        "-1/2*(x - m)'*inv(S)*(x - m) - 1/2*logdet(c*S)",
        "S",
        {"S": "symmetric", "c": "positive"},
        formula=lambda v: (
            0.5
            * (inv(v["S"]) @ np.outer(v["x"] - v["m"], v["x"] - v["m"]) @ inv(v["S"]) - inv(v["S"]))
        ),
    ),
]

TEXTBOOK = [c for c in CASES if c.text is not None]
