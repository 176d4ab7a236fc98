"""scikit-learn's estimator checks for the estimators that take NaN (allow_nan tag set)."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import GaussianMixture, GaussianMixtureImputer


@parametrize_with_checks(
    [GaussianMixture(missing="em"), GaussianMixtureImputer(), GaussianMixtureImputer(2)]
)
def test_sklearn_compatible_with_missing_values(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)
