"""gaussmix: Gaussian mixture models fitted by EM, and the matrix calculus that derives them."""

from gaussmix.em.errors import ComponentCollapseWarning, DegenerateCovarianceError
from gaussmix.mixture import GaussianMixture

__version__ = "0.1.0"

__all__ = [
    "ComponentCollapseWarning",
    "DegenerateCovarianceError",
    "GaussianMixture",
    "__version__",
]
