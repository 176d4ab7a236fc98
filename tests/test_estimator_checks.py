"""scikit-learn's estimator checks, all of them; any skipped check is listed with its reason."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import GaussianMixture, Prior


def expected_failed_checks(estimator: GaussianMixture) -> dict[str, str]:
    """Checks that cannot pass, with the reason (none for a one-component model)."""
    if estimator.n_components == 1:
        return {}
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "the check shuffles the weighted rows; the k-means initialisation draws rows by "
            "position, so it starts elsewhere. Weighted EM itself equals EM on repeated rows "
            "from the same start (tests/test_em_properties.py)."
        ),
    }


@parametrize_with_checks(
    [
        GaussianMixture(),
        GaussianMixture(n_components=2, covariance_type="diag", random_state=0),
        GaussianMixture(n_components=2, covariance_type="VVV", random_state=0, chunk_size=7),
        # mclust's prior, as a Prior (cloned, compared and set as scikit-learn's checks do)
        GaussianMixture(n_components=2, covariance_type="VEV", random_state=0, prior=Prior()),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_compatible(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)
