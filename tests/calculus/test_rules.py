"""The one rule type: names are unique, kinds are known, and every rule has a numeric test.

A simplification rule's test is its example: the rule rewrites it once, and both sides agree at
random values of the right structure. Differential rules are tested by finite differences
(test_diff_rules), canonical-form rules by evaluating the differential before and after each
step (test_diff_rules), the symmetric gradient and identification by every gradient's check
(test_cookbook), and the equation solver's rules by the derived M-step: every equation it writes
holds at the solution (tests/derive/test_gmm.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix.calculus import CalculusError, parse, to_latex, to_text
from gaussmix.calculus.derivative import SYMMETRIC
from gaussmix.calculus.expr import Expr, map_dims
from gaussmix.calculus.numeric import evaluate, random_point
from gaussmix.calculus.rewrite import KINDS, Rule
from gaussmix.calculus.rules.canonical import CANONICAL_RULES, COLLECT, IDENTIFY
from gaussmix.calculus.rules.diff import DIFF_RULES
from gaussmix.calculus.rules.simplify import RULES
from gaussmix.derive.solve import SOLVE_RULES

SIZE_RULES = [r for r in RULES if r.name == "trace of the identity as a size"]

TESTED_BY_THEIR_SUITE: list[Rule] = [
    *SIZE_RULES,  # needs the variables of a whole expression: test_a_size_reads_back
    *DIFF_RULES,
    *CANONICAL_RULES,
    COLLECT,
    *IDENTIFY,
    SYMMETRIC,
    *SOLVE_RULES,
]
ALL_RULES: list[Rule] = [*RULES, *(r for r in TESTED_BY_THEIR_SUITE if r not in SIZE_RULES)]


def test_rule_names_are_unique_and_kinds_known() -> None:
    names = [r.name for r in ALL_RULES]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    for r in ALL_RULES:
        assert r.identity, r.name
        assert r.kind in KINDS, r.name
    # both kinds are used: the lecture view has something to show and something to hide
    assert {r.kind for r in ALL_RULES} == set(KINDS)


def test_every_rule_has_a_numeric_test() -> None:
    suite = {r.name for r in TESTED_BY_THEIR_SUITE}
    untested = [r.name for r in RULES if not r.example and r.name not in suite]
    assert not untested


def _rewrite_once(rule: Rule, e: Expr) -> Expr | None:
    """``e`` with the rule applied at its first position (parents first), or None."""
    out = rule.apply(e)
    if out is not None:
        return out
    for i, a in enumerate(e.args):
        inner = _rewrite_once(rule, a)
        if inner is not None:
            from gaussmix.calculus.ops import rebuild

            return rebuild(e, [*e.args[:i], inner, *e.args[i + 1 :]])
    return None


def _example(rule: Rule) -> Expr:
    e = parse(rule.example, rule.types, indices="nk")
    # named (capital) dimensions, as in derivations: tr(eye) can be the dimension D
    return map_dims(e, lambda d: d.upper() if isinstance(d, str) else d)


@pytest.mark.parametrize("rule", [r for r in RULES if r.example], ids=lambda r: r.name)
def test_rule_keeps_the_value(rule: Rule) -> None:
    before = _example(rule)
    after = _rewrite_once(rule, before)
    assert after is not None, f"{rule.name} does not rewrite its example {rule.example}"
    assert to_text(after) != to_text(before) and to_latex(after) != to_latex(before)
    for seed in (0, 1):
        try:
            point = random_point(before, seed, also=(after,))
        except CalculusError:
            pytest.fail(f"no random point for {rule.example}")
        values = [
            np.asarray(evaluate(x, point.values, sizes=point.sizes), dtype=float)
            for x in (before, after)
        ]
        np.testing.assert_allclose(values[1], values[0], rtol=1e-10, atol=1e-12)


def test_a_size_reads_back() -> None:
    # tr(eye) of the size of X is written rows(X): it evaluates back, as the gradient it is in
    from gaussmix.calculus import grad

    r = grad("det(c*X)", "c")
    assert "rows(X)" in str(r) and "tr(eye)" not in str(r)
    assert r.check() < 1e-6
    assert r.agrees_with(str(r))
    assert "trace of the identity as a size" in [s.rule for s in r.steps]
