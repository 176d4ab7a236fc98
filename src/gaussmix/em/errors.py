"""Exceptions and warnings of the EM engine."""

from __future__ import annotations

from gaussmix.errors import GaussmixError


class DegenerateCovarianceError(GaussmixError):
    """A covariance is not positive definite even after ``reg_covar`` was added.

    ``component`` is the index of the offending component (None for a tied covariance).
    """

    def __init__(self, message: str, component: int | None = None) -> None:
        super().__init__(message)
        self.component = component


class ComponentCollapseWarning(UserWarning):
    """A component's weight collapsed and it was re-initialised at the worst-explained point."""


class InnerIterationWarning(UserWarning):
    """An iterative M-step (VEI, VEE, EVE, VVE, VEV) stopped at its cap of inner iterations."""
