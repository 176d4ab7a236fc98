"""The numbers of docs/prior.md: gaussmix's MAP fits against mclust's (the fixture of
tests/data/mclust_prior), a fit on duplicated rows, and the diagonal models' default scale.

    .venv/bin/python docs/prior_example.py
"""

import json
import warnings
from pathlib import Path

import numpy as np

from gaussmix import DegenerateCovarianceError, GaussianMixture
from gaussmix.datasets import load_faithful
from gaussmix.em.covariance import UNIVARIATE_MODELS, get_covariance
from gaussmix.em.mstep import estimate, stats_from_resp
from gaussmix.em.prior import data_moments, resolve

warnings.simplefilter("ignore")  # capped inner iterations, convergence: not the point here
FIXTURE = Path(__file__).parents[1] / "tests" / "data" / "mclust_prior" / "fixture.json"
faithful = load_faithful().X
start = np.eye(2)[np.where(faithful[:, 0] > 3, 0, 1)]  # the fixture's K = 2 start

print("| model | without prior | gaussmix, prior | mclust, prior | difference |")
print("|---|---:|---:|---:|---:|")
for fit in json.loads(FIXTURE.read_text())["fits"]:
    if fit["G"] != 2:
        continue
    model = fit["model"]
    X = faithful[:, :1] if model in UNIVARIATE_MODELS else faithful
    cov = get_covariance(model)
    prior = resolve("mclust", data_moments(lambda X=X: [(X, None)]), 2, cov)
    loglik = {}
    for name, p in [("ml", None), ("map", prior)]:
        w, mu, c = estimate(stats_from_resp(X, start, cov), cov, 0.0, prior=p)
        loglik[name] = (
            GaussianMixture(
                2,
                covariance_type=model,
                prior=None if p is None else "mclust",
                reg_covar=0.0,
                tol=1e-14,
                max_iter=5000,
                weights_init=w,
                means_init=mu,
                precisions_init=cov.precisions(cov.precisions_cholesky(c)),
            )
            .fit(X)
            .log_likelihood_
        )
    print(
        f"| {model} | {loglik['ml']:.3f} | {loglik['map']:.3f} | {fit['loglik']:.3f} "
        f"| {loglik['map'] - fit['loglik']:+.3f} |"
    )

rng = np.random.default_rng(0)
copies = np.vstack([rng.normal(0, 1, (60, 2)), np.tile([[4.0, 4.0]], (8, 1))])
print("\neight copies of one row among 60 normal ones, K = 2, full covariances:")
for label, kwargs in [
    ("reg_covar=0", {"reg_covar": 0.0}),
    ("reg_covar=1e-6", {}),
    ("prior='mclust'", {"reg_covar": 0.0, "prior": "mclust"}),
]:
    try:
        gm = GaussianMixture(2, random_state=0, **kwargs).fit(copies)
    except DegenerateCovarianceError as exc:
        print(f"  {label}: {type(exc).__name__}")
        continue
    det = np.linalg.det(gm.covariances_).min()
    print(f"  {label}: smallest determinant {det:.2g}, log-likelihood {gm.log_likelihood_:.1f}")

print("\nVVI, K = 2 on Old Faithful, hierarchical start: log-likelihood without / with the prior")
Z = (faithful - faithful.mean(axis=0)) / faithful.std(axis=0, ddof=1)
for label, X in [("raw columns", faithful), ("standardised columns", Z)]:
    fits = [
        GaussianMixture(
            2,
            covariance_type="VVI",
            reg_covar=0.0,
            tol=1e-8,
            max_iter=500,
            init_params="hc",
            prior=p,
        )
        .fit(X)
        .log_likelihood_
        for p in (None, "mclust")
    ]
    print(f"  {label}: {fits[0]:.1f} / {fits[1]:.1f}")
