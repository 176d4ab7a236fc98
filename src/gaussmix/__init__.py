"""gaussmix: Gaussian mixture models fitted by EM, and the matrix calculus that derives them.

The names below are imported on first use (PEP 562), so that ``import gaussmix.calculus`` and
``gaussmix --help`` do not pay for scikit-learn, SciPy and the EM engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gaussmix.errors import DegenerateDataWarning, GaussmixError

if TYPE_CHECKING:
    from gaussmix.em.errors import (
        ComponentCollapseWarning,
        DegenerateCovarianceError,
        InnerIterationWarning,
    )
    from gaussmix.em.prior import Prior
    from gaussmix.impute import GaussianMixtureImputer
    from gaussmix.mixture import GaussianMixture
    from gaussmix.selection import SelectionResult, select

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "ComponentCollapseWarning": "gaussmix.em.errors",
    "DegenerateCovarianceError": "gaussmix.em.errors",
    "InnerIterationWarning": "gaussmix.em.errors",
    "GaussianMixture": "gaussmix.mixture",
    "GaussianMixtureImputer": "gaussmix.impute",
    "Prior": "gaussmix.em.prior",
    "SelectionResult": "gaussmix.selection",
    "select": "gaussmix.selection",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gaussmix' has no attribute {name!r}")


__all__ = [
    "ComponentCollapseWarning",
    "DegenerateCovarianceError",
    "DegenerateDataWarning",
    "GaussianMixture",
    "GaussianMixtureImputer",
    "GaussmixError",
    "InnerIterationWarning",
    "Prior",
    "SelectionResult",
    "__version__",
    "select",
]
