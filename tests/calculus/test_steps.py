"""Every recorded step changes what a reader sees: its LaTeX (and text) differs from the line
before it, over every derivation of the suite."""

from __future__ import annotations

import pytest

from gaussmix.calculus import grad, to_latex, to_text
from gaussmix.calculus.rewrite import Step
from gaussmix.calculus.rules.diff import EXAMPLES
from gaussmix.derive import COVARIANCE_TYPES, derive_gmm
from tests.calculus.cookbook import CASES


def _check(steps: list[Step]) -> None:
    previous: str | None = None
    previous_lhs = ""
    for s in steps:
        before, after = to_latex(s.before), to_latex(s.after)
        assert before != after, f"{s.rule}: {to_text(s.before)}"
        assert to_text(s.before) != to_text(s.after), s.rule
        if previous is not None and s.lhs == previous_lhs:
            assert after != previous, f"{s.rule} repeats the line before it: {to_text(s.after)}"
        previous, previous_lhs = after, s.lhs


def test_every_step_of_the_cookbook_changes_the_line() -> None:
    runs = [grad(c.expr, c.wrt, c.types) for c in CASES]
    runs += [
        grad(e.expr, e.wrt, e.types, indices=e.indices) for ex in EXAMPLES.values() for e in ex
    ]
    for r in runs:
        _check(r.steps)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_every_step_of_the_gmm_derivation_changes_the_line(covariance_type: str) -> None:
    _check(derive_gmm(covariance_type).steps)
