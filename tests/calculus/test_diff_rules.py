"""Every rule of the differential table, exercised by its own examples (generated from the table:
a new rule brings its test), and every canonical-form rule used by some derivation."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix.calculus import Op, grad, parse
from gaussmix.calculus.derivative import _differential
from gaussmix.calculus.gradient import CHECK_TOLERANCE
from gaussmix.calculus.numeric import directional_fd, evaluate, random_direction, random_point
from gaussmix.calculus.rules.canonical import CANONICAL_RULES
from gaussmix.calculus.rules.diff import DIFF_RULES, RULE_OPS
from gaussmix.calculus.rules.diff import EXAMPLES as RULE_EXAMPLES
from tests.calculus.cookbook import CASES

EXAMPLES = [(rule, example) for rule in DIFF_RULES for example in RULE_EXAMPLES.get(rule.name, ())]


def test_every_rule_has_an_example_and_every_operator_a_rule() -> None:
    assert all(RULE_EXAMPLES[rule.name] for rule in DIFF_RULES if rule.name != "constant")
    assert len({rule.name for rule in DIFF_RULES}) == len(DIFF_RULES)
    covered = set(RULE_OPS.values())
    constants = {Op.NUM, Op.EYE, Op.ONES, Op.ZERO, Op.DIM, Op.DIFF, Op.D, Op.EQ, Op.TERM}
    assert set(Op) - constants <= covered


@pytest.mark.parametrize(
    ("rule", "example"), EXAMPLES, ids=[f"{r.name}: {e.expr}" for r, e in EXAMPLES]
)
def test_rule_gives_a_correct_gradient(rule, example) -> None:  # type: ignore[no-untyped-def]
    r = grad(example.expr, example.wrt, example.types, indices=example.indices)
    assert rule.name in [step.rule for step in r.steps]
    assert r.check(seed=0) < CHECK_TOLERANCE


@pytest.mark.parametrize(
    ("rule", "example"),
    [(r, e) for r, e in EXAMPLES if not e.indices],
    ids=[f"{r.name}: {e.expr}" for r, e in EXAMPLES if not e.indices],
)
def test_rule_gives_a_correct_differential(rule, example) -> None:  # type: ignore[no-untyped-def]
    # The raw differential (before any simplification), evaluated with dX = V, is the
    # directional derivative along V.
    f = parse(example.expr, example.types)
    wrt = next(n for n in f.walk() if n.op is Op.VAR and n.name == example.wrt)
    df, steps = _differential(f, wrt)
    assert rule.name in [s.rule for s in steps]
    point = random_point(f, 3)
    rng = np.random.default_rng(0)
    for _ in range(2):
        v = random_direction(wrt, rng, point.sizes)
        exact = evaluate(df, point.values, differentials={wrt.name: v}, sizes=point.sizes)
        fd = directional_fd(f, point.values, wrt.name, v)
        assert abs(exact - fd) <= 1e-6 * max(1.0, abs(fd))


CANONICAL_EXTRA = [("a*sum_n(x_n'*y)", "y", "n")]  # a scalar weight moved into an indexed sum


def test_every_canonical_rule_is_used_and_keeps_the_value() -> None:
    # Each recorded step towards tr(G'*dX) keeps the value of the differential: evaluated with
    # dX = V at a random point, both sides agree.
    used: set[str] = set()
    runs = [grad(c.expr, c.wrt, c.types) for c in CASES]
    runs += [grad(e.expr, e.wrt, e.types, indices=e.indices) for _, e in EXAMPLES]
    runs += [grad(text, wrt, indices=indices) for text, wrt, indices in CANONICAL_EXTRA]
    rng = np.random.default_rng(0)
    for r in runs:
        steps = [s for s in r.steps if s.stage == "canonical"]
        used |= {s.rule for s in steps}
        if r.wrt.indices or not steps:
            continue
        point = random_point(r.expr, 1)
        v = random_direction(r.wrt, rng, point.sizes)
        for s in steps:
            values = [
                evaluate(e, point.values, differentials={r.wrt.name: v}, sizes=point.sizes)
                for e in (s.before, s.after)
            ]
            assert abs(values[0] - values[1]) <= 1e-9 * max(1.0, abs(values[0])), s.rule
    # "sign into the weight" moves a minus from the body to the weight: the line a reader sees
    # is the same before and after, so the step is taken but never shown.
    assert {rule.name for rule in CANONICAL_RULES} - {"sign into the weight"} <= used
