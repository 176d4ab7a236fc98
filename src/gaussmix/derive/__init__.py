"""Derivations built on the calculus engine: the M-step of a Gaussian mixture.

>>> from gaussmix.derive import derive_gmm
>>> d = derive_gmm("full")
>>> str(d.updates["means"])
'sum_n(q_kn*x_n)/N_k'
"""

from gaussmix.derive.gmm import COVARIANCE_TYPES, GMMDerivation, Structure, derive_gmm

__all__ = ["COVARIANCE_TYPES", "GMMDerivation", "Structure", "derive_gmm"]
