"""The EM engine: one kernel for the statistics, pure M-step, backend-free loop. No I/O here."""

from gaussmix.em.covariance import ALIASES, REGISTRY, Covariance, canonical_name, get_covariance
from gaussmix.em.errors import ComponentCollapseWarning, DegenerateCovarianceError
from gaussmix.em.init import INIT_METHODS, initial_params
from gaussmix.em.loop import EMResult, data_stats, run_em
from gaussmix.em.mstep import estimate, mstep, mstep_from_resp, stats_from_resp
from gaussmix.em.params import Params
from gaussmix.em.stats import SuffStats, chunk_stats, merge, weighted_log_prob, zeros

__all__ = [
    "ALIASES",
    "INIT_METHODS",
    "REGISTRY",
    "ComponentCollapseWarning",
    "Covariance",
    "DegenerateCovarianceError",
    "EMResult",
    "Params",
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
