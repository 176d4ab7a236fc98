"""The EM engine: one kernel for the statistics, pure M-step, backend-free loop. No I/O here.

The names below are imported on first use (PEP 562): ``gaussmix.em.covariance`` alone (the
registry, which ``gaussmix info`` needs) does not pull in scikit-learn's k-means or the C loops.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gaussmix.em.covariance import (
        ALIASES,
        MCLUST_MODELS,
        REGISTRY,
        UNIVARIATE_MODELS,
        Covariance,
        canonical_name,
        get_covariance,
    )
    from gaussmix.em.errors import (
        ComponentCollapseWarning,
        DegenerateCovarianceError,
        InnerIterationWarning,
    )
    from gaussmix.em.init import INIT_METHODS, initial_params
    from gaussmix.em.loop import EMResult, data_stats, run_em
    from gaussmix.em.mstep import estimate, mstep, mstep_from_resp, stats_from_resp
    from gaussmix.em.params import Params
    from gaussmix.em.prior import Prior
    from gaussmix.em.stats import SuffStats, chunk_stats, merge, weighted_log_prob, zeros

# public name -> the module that defines it
_LAZY = {
    "ALIASES": "gaussmix.em.covariance",
    "REGISTRY": "gaussmix.em.covariance",
    "MCLUST_MODELS": "gaussmix.em.covariance",
    "UNIVARIATE_MODELS": "gaussmix.em.covariance",
    "Covariance": "gaussmix.em.covariance",
    "canonical_name": "gaussmix.em.covariance",
    "get_covariance": "gaussmix.em.covariance",
    "ComponentCollapseWarning": "gaussmix.em.errors",
    "DegenerateCovarianceError": "gaussmix.em.errors",
    "InnerIterationWarning": "gaussmix.em.errors",
    "INIT_METHODS": "gaussmix.em.init",
    "initial_params": "gaussmix.em.init",
    "EMResult": "gaussmix.em.loop",
    "data_stats": "gaussmix.em.loop",
    "run_em": "gaussmix.em.loop",
    "estimate": "gaussmix.em.mstep",
    "mstep": "gaussmix.em.mstep",
    "mstep_from_resp": "gaussmix.em.mstep",
    "stats_from_resp": "gaussmix.em.mstep",
    "Params": "gaussmix.em.params",
    "Prior": "gaussmix.em.prior",
    "SuffStats": "gaussmix.em.stats",
    "chunk_stats": "gaussmix.em.stats",
    "merge": "gaussmix.em.stats",
    "weighted_log_prob": "gaussmix.em.stats",
    "zeros": "gaussmix.em.stats",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gaussmix.em' has no attribute {name!r}")


__all__ = [
    "ALIASES",
    "INIT_METHODS",
    "MCLUST_MODELS",
    "REGISTRY",
    "UNIVARIATE_MODELS",
    "ComponentCollapseWarning",
    "Covariance",
    "DegenerateCovarianceError",
    "EMResult",
    "InnerIterationWarning",
    "Params",
    "Prior",
    "SuffStats",
    "canonical_name",
    "chunk_stats",
    "data_stats",
    "estimate",
    "get_covariance",
    "initial_params",
    "merge",
    "mstep",
    "mstep_from_resp",
    "run_em",
    "stats_from_resp",
    "weighted_log_prob",
    "zeros",
]
