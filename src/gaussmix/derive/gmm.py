"""The M-step of a Gaussian mixture, derived by the calculus engine from the EM surrogate.

The inputs are only these: the surrogate (the expected complete-data log-likelihood with the
responsibilities q_kn held fixed, written in the precision), the structure of the precision for
each covariance type, and the constraint on the weights. Everything else, every line of the
derivation and the closed forms of the updates, comes out of the engine:

* the gradient in each parameter, derived step by step (:func:`gaussmix.calculus.differentiate`);
* the stationary equation, solved by :class:`~gaussmix.derive.solve.Solver` (affine in the mean,
  or in the inverse of the precision);
* for the weights, the Lagrangian of the simplex constraint, its stationary equations in pi_k
  and in the multiplier, and their solution.

Sums over data points and components are indexed sums (``sum_n``, ``sum_k``) of indexed
variables (``x_n``, ``q_kn``, ``mu_k``): the derivation reads like the lecture's, and the
Kronecker delta of d/dmu_k sum_j f(mu_j) is a rule of the engine. The facts the solver may use
are stated with the inputs: q_kn are posterior probabilities (``sum_k(q_kn) = 1``), precisions
are positive definite (or positive), and ``N_k = sum_n(q_kn)`` abbreviates the soft count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gaussmix.calculus.expr import Expr, Kind, Op, equation, map_dims, num, sub
from gaussmix.calculus.lecture import Line, abbreviate, free_indices, replace_bound, view
from gaussmix.calculus.numeric import evaluate
from gaussmix.calculus.parse import parse
from gaussmix.calculus.rewrite import Step, rewrite
from gaussmix.calculus.rules.simplify import TIDY_RULES
from gaussmix.derive.model import (
    LAGRANGIAN,
    Derivation,
    Plan,
    State,
    at_the_new,
    lagrangian,
    run,
    stationary,
    variable,
)
from gaussmix.derive.solve import Facts, Identity, Solver

__all__ = [
    "CONSTRAINT",
    "COVARIANCE_TYPES",
    "DERIVED",
    "LAGRANGIAN",
    "NOT_DERIVED",
    "STRUCTURES",
    "SURROGATE",
    "GMMDerivation",
    "Structure",
    "derive_gmm",
    "resolve_covariance",
]

# --- the inputs ---------------------------------------------------------------------------------

SURROGATE = "sum_n(sum_k(q_kn*(log(pi_k) + 1/2*logdet(P_k) - 1/2*(x_n - mu_k)'*P_k*(x_n - mu_k))))"
"""Q(pi, mu, P) = sum_n sum_k q_kn [log pi_k + log N(x_n | mu_k, inv(P_k))] + const, the
constant -D/2 log(2 pi) dropped; P_k is the precision, whose structure each type fixes."""

KINDS = {"q": "scalar", "pi": "positive", "x": "vector", "mu": "vector", "P": "spd"}
INDICES = "nk"  # n runs over the N data points, k over the K components

CONSTRAINT = ("sum_k(pi_k)", "1")
"""The weights lie on the simplex: sum_k pi_k = 1 (positivity holds at the solution)."""

MULTIPLIER = "lambda"

RESPONSIBILITIES = ("sum_k(q_kn)", "1")
"""q_kn is the posterior probability of component k for x_n: they sum to one over k."""

SOFT_COUNT = ("N_k", "sum_n(q_kn)")
"""The abbreviation N_k for the soft count of component k."""


@dataclass(frozen=True)
class Structure:
    """The structure of the precision for one covariance type.

    Attributes
    ----------
    name : str
        The covariance registry's name: full, diag, spherical, tied (mclust's VVV, VVI, VII,
        EEE), EII or EEI.
    precision : str
        The precision P_k in terms of the free parameter.
    parameter : str
        The free parameter, as written (``Lambda_k``, ``tau_k``, ``Lambda``).
    kinds : dict
        Kinds of the parameter's name.
    positive_entries : bool
        The parameter is a vector of positive entries (so that diag of it is invertible).
    covariance : str
        The name of the covariance the M-step returns (the inverse of the precision).
    """

    name: str
    precision: str
    parameter: str
    kinds: dict[str, str]
    covariance: str
    positive_entries: bool = False


STRUCTURES: dict[str, Structure] = {
    "full": Structure("full", "Lambda_k", "Lambda_k", {"Lambda": "spd"}, "Sigma_k"),
    "diag": Structure(
        "diag", "diag(tau_k)", "tau_k", {"tau": "vector"}, "sigma2_k", positive_entries=True
    ),
    "spherical": Structure("spherical", "tau_k*eye", "tau_k", {"tau": "positive"}, "sigma2_k"),
    "tied": Structure("tied", "Lambda", "Lambda", {"Lambda": "spd"}, "Sigma"),
    # mclust's models with a closed form the engine derives: one precision shared by all
    "EII": Structure("EII", "tau*eye", "tau", {"tau": "positive"}, "sigma2"),
    "EEI": Structure("EEI", "diag(tau)", "tau", {"tau": "vector"}, "sigma2", positive_entries=True),
}

DERIVED = tuple(STRUCTURES)
"""Every covariance type derived (the registry's names)."""

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
"""scikit-learn's four types: those docs/derivation.md shows, in the lecture view."""

NOT_DERIVED: dict[str, str] = {
    "VEI": "iterative: volumes and the common shape alternate (Celeux and Govaert 1995)",
    "EVI": "a closed form through det(A_k) = 1, a constraint that is not linear (Celeux and "
    "Govaert 1995)",
    "VEE": "iterative: C = D A D' and the volumes alternate (Celeux and Govaert 1995)",
    "EVE": "iterative: the common orientation by majorise-minimise steps (Browne and McNicholas "
    "2014)",
    "VVE": "iterative: the common orientation by majorise-minimise steps (Browne and McNicholas "
    "2014)",
    "EEV": "a closed form through the eigenvectors of each scatter, an orthogonality "
    "constraint the engine does not solve (Celeux and Govaert 1995)",
    "VEV": "iterative: volumes and the common shape alternate over the eigenvectors of each "
    "scatter (Celeux and Govaert 1995)",
    "EVV": "a closed form through the eigenvectors of each scatter and det(A_k) = 1, constraints "
    "the engine does not solve (Celeux and Govaert 1995)",
    "E": "one feature: the M-step of EII",
    "V": "one feature: the M-step of VII (spherical)",
}
"""mclust's other models, and why ``derive gmm`` does not derive them (the EM engine's M-steps
for them are in gaussmix.em.constrained)."""


def resolve_covariance(covariance_type: str) -> str:
    """The registry's name of a covariance type derived here (mclust's ``VVV`` is ``full``).

    Raises
    ------
    ValueError
        For a model not derived (saying why) or an unknown name.
    """
    from gaussmix.em.covariance import ALIASES  # the registry owns the names

    name = ALIASES.get(covariance_type, covariance_type)
    if name in NOT_DERIVED:
        raise ValueError(
            f"{name} is not derived: its M-step is {NOT_DERIVED[name]}; derived: "
            f"{', '.join(DERIVED)}"
        )
    if name not in STRUCTURES:
        raise ValueError(f"unknown covariance type {name!r}; use one of {', '.join(DERIVED)}")
    return name


# --- the result ---------------------------------------------------------------------------------

SECTIONS = {
    "surrogate": "The surrogate",
    "means": "The means",
    "precisions": "The precisions and covariances",
    "weights": "The weights: a Lagrangian",
    "m-step": "The M-step",
}


@dataclass(kw_only=True)
class GMMDerivation(Derivation):
    """The derived M-step for one covariance type (a :class:`~gaussmix.derive.model.Derivation`
    made by the plan :data:`PLAN`).

    Attributes
    ----------
    covariance_type : str
    structure : Structure
        The structure of the precision it was derived for.
    template : Expr
        The surrogate as written, in the precision P_k.

    The derivation's ``steps`` are labelled by section (surrogate, means, precisions, weights,
    m-step); ``updates`` holds ``weights`` (pi_k), ``means`` (mu_k) and ``covariances`` (the
    inverse of the precision: Sigma_k, sigma2_k or Sigma); ``objective`` (also ``surrogate``)
    is Q with the structured precision, ``lagrangian`` Q + lambda*(sum_k(pi_k) - 1).
    """

    covariance_type: str
    structure: Structure
    template: Expr | None = None

    @property
    def surrogate(self) -> Expr | None:
        """Q with the structured precision (the objective maximised)."""
        return self.objective

    def heading(self) -> str:
        name = self.covariance_type
        return f"{name if name.isupper() else name.capitalize()} covariance"

    def definition_vars(self) -> list[tuple[Expr, Expr]]:
        return [(_symbol(name), definition) for name, definition in self.definitions.items()]

    def mstep(
        self, X: ArrayLike, resp: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Evaluate the derived closed forms with numpy.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        resp : array_like of shape (n_samples, n_components)
            Responsibilities q_kn (rows sum to one).

        Returns
        -------
        weights : ndarray of shape (n_components,)
        means : ndarray of shape (n_components, n_features)
        covariances : ndarray
            In the covariance registry's layout (scikit-learn's for its four types):
            (n_components, n_features, n_features) for full, (n_components, n_features) for
            diag and EEI, (n_features, n_features) for tied, (n_components,) for spherical
            and EII: a shared covariance is repeated per component where the layout has one.
        """
        from gaussmix.em.covariance import get_covariance

        X = np.asarray(X, dtype=float)
        resp = np.asarray(resp, dtype=float)
        if X.ndim != 2 or resp.ndim != 2 or resp.shape[0] != X.shape[0]:
            raise ValueError(
                f"X must be (n_samples, n_features) and resp (n_samples, n_components); got "
                f"{X.shape} and {resp.shape}"
            )
        values: dict[str, Any] = {"x": X, "q": resp.T}
        out = []
        for name in ("weights", "means", "covariances"):
            e = self.expanded(name)
            if "k" in free_indices(e):
                value = np.array(
                    [evaluate(e, values, index_env={"k": k}) for k in range(resp.shape[1])]
                )
            else:
                value = np.asarray(evaluate(e, values), dtype=float)
            out.append(value)
        layout = get_covariance(self.covariance_type).shape(resp.shape[1], X.shape[1])
        return out[0], out[1], np.broadcast_to(out[2], layout).copy()

    def results(self) -> list[Expr]:
        """The M-step as equations: each update (as derived) and the abbreviations it uses."""
        names = ("weights", "means", "covariances")
        out = [equation(self.targets[n], self.updates[n]) for n in names if n in self.targets]
        out += [equation(symbol, definition) for symbol, definition in self.definition_vars()]
        return out

    def view(self, detail: str = "lecture") -> list[Line]:
        """The derivation as lines: ``lecture`` groups the steps into one line per idea
        (:mod:`~gaussmix.calculus.lecture`), ``full`` is one line per step."""
        names = {self.surrogate: "Q"} if self.surrogate is not None else {}
        lines = view(self.steps, detail, names)
        if detail == "full" or self.surrogate is None:
            return lines
        # u_n = x_n - mu_k, the residual, as the lecture writes it (only where it occurs as is)
        x = variable(self.surrogate, "x_n")
        residual = sub(x, variable(self.surrogate, "mu_k"))
        u = Expr(Op.VAR, (), x.shape, name="u", kind=x.kind, indices=x.indices)
        q = parse("Q", {"Q": "scalar"})  # the surrogate, by the name its first line gives it
        abbreviations = [(q, self.surrogate), (u, residual), *self.definition_vars()]
        return abbreviate(lines, abbreviations + self._scatter(u, residual))

    def _scatter(self, u: Expr, residual: Expr) -> list[tuple[Expr, Expr]]:
        """S_k = sum_n(q_kn*u_n*u_n'), the scatter, as the covariance's update sums it: a
        matrix (S_k; S for tied, summed over k), its diagonal (diag) or its trace (spherical)."""
        update = self.updates.get("covariances")
        scatter = next((n for n in update.walk() if n.op is Op.SUMIDX), None) if update else None
        if scatter is None:
            return []
        matrix = Expr(
            Op.VAR,
            (),
            (u.shape[0], u.shape[0]),
            name="S",
            kind=Kind.SYMMETRIC,
            indices=tuple(sorted(free_indices(scatter))),
        )
        name = (
            matrix
            if scatter.shape == matrix.shape
            else Expr(
                Op.DIAGV if scatter.is_vector else Op.TR,
                (matrix,),
                (u.shape[0], 1) if scatter.is_vector else (1, 1),
            )
        )
        return [(name, replace_bound(scatter, residual, u))]

    def to_dict(self) -> dict[str, Any]:
        """The derivation as plain data (for JSON)."""
        return {"covariance_type": self.covariance_type, **super().to_dict()}


# --- the derivation -----------------------------------------------------------------------------


def _symbol(name: str, kind: str = "positive") -> Expr:
    """A variable named in the derivation (N_k, Sigma_k), parsed with the problem's indices."""
    return parse(name, {name.split("_")[0]: kind}, indices=INDICES)


def _template(structure: Structure) -> tuple[Expr, Expr, Expr]:
    """The surrogate as written (in P_k), the structured precision, and P_k; the dimension of
    the data is named D."""
    kinds = {**KINDS, **structure.kinds}
    template = parse(SURROGATE, kinds, indices=INDICES)
    precision_var = variable(template, "P_k")
    precision = parse(
        structure.precision, kinds, indices=INDICES, context=template, shape=precision_var.shape
    )
    feature = variable(template, "x_n").shape[0]

    def named(e: Expr) -> Expr:
        return map_dims(e, lambda d: "D" if d == feature else d)

    return named(template), named(precision), named(precision_var)


def _facts(q: Expr, structure: Structure) -> Facts:
    facts = Facts()
    kinds = {**KINDS, **structure.kinds}
    sum_q = parse(RESPONSIBILITIES[0], kinds, indices=INDICES, context=q)
    facts.identities.append(Identity("responsibilities sum to one", sum_q, num(1)))
    count = _symbol(SOFT_COUNT[0])
    definition = parse(SOFT_COUNT[1], kinds, indices=INDICES, context=q)
    facts.definitions.append(Identity("soft count", count, definition))
    facts.nonzero.add(count)
    if structure.positive_entries:
        facts.positive_vectors.add(variable(q, structure.parameter))
    return facts


# --- the plan: what the derivation does, section by section; every line is an engine step ------
# The actions are the runner's (gaussmix.derive.model); the GMM's own are the structure of the
# precision, which comes first, and the names its inputs give (the covariance, the constraint).


def _structure(state: State, stage: str) -> None:
    """Q in the structured precision: substitute P_k := the structure's form; then the facts of
    the problem (responsibilities sum to one, the soft count), stated in Q's variables."""
    d = state.d
    assert isinstance(d, GMMDerivation)
    template, precision, precision_var = _template(d.structure)
    d.template = template
    solver = Solver(state.facts, stage)
    q = solver.substitute(
        template,
        precision_var,
        precision,
        f"{d.structure.name} covariance: P_k = {d.structure.precision}",
        simplify=False,
    )
    q, tidy_steps = rewrite(q, TIDY_RULES, stage=stage)
    d.steps += [_lhs(s, "Q") for s in solver.steps] + [_lhs(s, "Q") for s in tidy_steps]
    d.objective = q
    state.facts = _facts(q, d.structure)
    d.definitions[SOFT_COUNT[0]] = state.facts.definitions[0].rhs


def _precision(state: State, stage: str, update: str) -> None:
    """The stationary point in the structure's parameter, solved in its inverse: the
    covariance, named by the structure."""
    d = state.d
    assert isinstance(d, GMMDerivation) and d.objective is not None
    theta = variable(d.objective, d.structure.parameter)
    kind = "positive" if theta.is_scalar else "vector" if theta.is_vector else "symmetric"
    covariance = _symbol(d.structure.covariance, kind)
    stationary(state, stage, d.structure.parameter, update, covariance=covariance)


def _constraint(state: State, stage: str, name: str) -> None:
    """The Lagrangian of the simplex constraint on the weights."""
    d = state.d
    assert d.objective is not None
    g = parse(CONSTRAINT[0], state.kinds, indices=INDICES, context=d.objective)
    multiplier = parse(MULTIPLIER, {MULTIPLIER: "scalar"})
    lagrangian(
        state,
        stage,
        (g, parse(CONSTRAINT[1])),
        multiplier,
        f"{CONSTRAINT[0]} = {CONSTRAINT[1]}",
        [name],
    )


PLAN: Plan = [
    ("surrogate", _structure, {}),
    ("means", stationary, {"name": "mu_k", "update": "means"}),
    ("precisions", _precision, {"update": "covariances"}),
    ("weights", _constraint, {"name": "pi_k"}),
    ("weights", stationary, {"name": "pi_k", "update": "weights"}),
    ("weights", stationary, {"name": MULTIPLIER, "update": MULTIPLIER}),
    ("m-step", at_the_new, {"parameter": "mu_k", "update": "means", "into": "covariances"}),
]
"""The derivation, section by section: (section, action, its arguments), run by
:func:`gaussmix.derive.model.run`."""


def derive_gmm(covariance_type: str = "full") -> GMMDerivation:
    """Derive the M-step of a Gaussian mixture for a covariance type.

    Parameters
    ----------
    covariance_type : {"full", "diag", "spherical", "tied", "EII", "EEI"}
        Or mclust's names of the first four (VVV, VVI, VII, EEE).

    Returns
    -------
    GMMDerivation
        ``.steps`` (the derivation as data), ``.updates`` (closed forms of the weights, means
        and covariances), ``.mstep(X, resp)`` (those closed forms evaluated with numpy),
        ``.text()``, ``.latex()``, ``.markdown()``.

    Raises
    ------
    ValueError
        For an unknown covariance type.
    """
    covariance_type = resolve_covariance(covariance_type)
    structure = STRUCTURES[covariance_type]
    d = GMMDerivation(
        title=f"M-step of a Gaussian mixture, {covariance_type} covariance",
        function="Q",
        titles=dict(SECTIONS),
        indices=INDICES,
        covariance_type=covariance_type,
        structure=structure,
    )
    kinds = {**KINDS, **structure.kinds}
    run(PLAN, State(d, Facts(), kinds))
    return d


def _lhs(step: Step, lhs: str) -> Step:
    return Step(step.rule, step.before, step.after, step.identity, lhs, step.stage, step.kind)
