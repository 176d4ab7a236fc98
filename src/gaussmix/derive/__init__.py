"""Derivations built on the calculus engine: the M-step of a Gaussian mixture, and the
stationary point of a student's own model (one plan runner, :mod:`gaussmix.derive.model`).

>>> from gaussmix.derive import derive_gmm
>>> d = derive_gmm("full")
>>> str(d.updates["means"])
'sum_n(q_kn*x_n)/N_k'
"""

from gaussmix.derive.gmm import COVARIANCE_TYPES, GMMDerivation, Structure, derive_gmm
from gaussmix.derive.model import Derivation, ModelDerivation, derive_model

__all__ = [
    "COVARIANCE_TYPES",
    "Derivation",
    "GMMDerivation",
    "ModelDerivation",
    "Structure",
    "derive_gmm",
    "derive_model",
]
