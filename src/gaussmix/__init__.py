"""gaussmix: Gaussian mixture models fitted by EM, and the matrix calculus that derives them."""

from gaussmix.em.errors import ComponentCollapseWarning, DegenerateCovarianceError
from gaussmix.mixture import GaussianMixture
from gaussmix.selection import SelectionResult, select

__version__ = "0.1.0"

__all__ = [
    "ComponentCollapseWarning",
    "DegenerateCovarianceError",
    "GaussianMixture",
    "SelectionResult",
    "__version__",
    "select",
]
