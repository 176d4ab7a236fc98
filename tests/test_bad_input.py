"""Bad input gets one clear line: what was wrong and what to try."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import GaussianMixture
from tests.conftest import mixture_data

X_GOOD = mixture_data(0, n=60, n_features=2)


def one_line(info: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(info.value)
    assert "\n" not in message
    return message


def test_nan_says_how_many_and_the_first_row() -> None:
    X = X_GOOD.copy()
    X[[7, 9, 30], 1] = np.nan
    with pytest.raises(ValueError) as info:
        GaussianMixture(2).fit(X)
    message = one_line(info)
    assert "3 NaN or infinite" in message and "row 7" in message and "impute" in message


def test_inf_is_reported_too() -> None:
    X = X_GOOD.copy()
    X[12, 0] = np.inf
    with pytest.raises(ValueError, match=r"1 NaN or infinite value\(s\), the first in row 12"):
        GaussianMixture(2).fit(X)


def test_empty_input() -> None:
    with pytest.raises(ValueError, match="0 sample") as info:
        GaussianMixture(2).fit(np.empty((0, 2)))
    one_line(info)


def test_one_dimensional_input_suggests_reshape() -> None:
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)") as info:
        GaussianMixture(2).fit(np.arange(10.0))
    one_line(info)


def test_fewer_samples_than_components() -> None:
    with pytest.raises(ValueError, match="n_samples >= n_components") as info:
        GaussianMixture(5).fit(X_GOOD[:3])
    assert "fewer components" in one_line(info)


def test_other_number_of_features_at_predict_time() -> None:
    model = GaussianMixture(2, random_state=0).fit(X_GOOD)
    with pytest.raises(ValueError, match="3 features, but GaussianMixture is expecting 2") as info:
        model.predict(np.ones((4, 3)))
    one_line(info)


def test_non_numeric_values() -> None:
    X = X_GOOD.astype(object)
    X[3, 1] = "abc"
    with pytest.raises(TypeError, match="non-numeric") as info:
        GaussianMixture(2).fit(X)
    assert "'abc'" in one_line(info)


@pytest.mark.parametrize(
    ("weights", "pattern"),
    [
        (-np.ones(60), "60 negative value"),
        (np.r_[np.ones(59), np.nan], "1 NaN or infinite value\\(s\\), the first at row 59"),
        (np.r_[np.ones(59), np.inf], "NaN or infinite"),
        (np.zeros(60), "sums to zero"),
        (np.ones(10), "shape \\(10,\\); expected \\(60,\\)"),
        (["a"] * 60, "non-numeric"),
    ],
)
def test_bad_sample_weights(weights: object, pattern: str) -> None:
    with pytest.raises((ValueError, TypeError), match=pattern) as info:
        GaussianMixture(2).fit(X_GOOD, sample_weight=weights)
    one_line(info)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"n_components": 0}, "n_components"),
        ({"covariance_type": "VXV"}, "covariance_type"),
        ({"weights_init": [0.2, 0.2]}, "sum to 1"),
        ({"means_init": np.zeros((3, 2))}, "means_init has shape"),
        ({"precisions_init": -np.ones((2, 2, 2))}, "positive definite"),
        ({"precisions_init": np.ones((2, 2))}, "expects \\(2, 2, 2\\)"),
        ({"precisions_init": np.array([[[1.0, 0.5], [0.0, 1.0]]] * 2)}, "symmetric"),
    ],
)
def test_bad_parameters(kwargs: dict[str, object], pattern: str) -> None:
    params = {"n_components": 2} | kwargs
    with pytest.raises(ValueError, match=pattern) as info:
        GaussianMixture(**params).fit(X_GOOD)  # type: ignore[arg-type]
    one_line(info)


def test_a_dataframe_naming_a_column_twice_is_refused_in_one_line() -> None:
    pd = pytest.importorskip("pandas")
    X = mixture_data(seed=3, n=60, n_features=2)
    frame = pd.DataFrame(np.column_stack([X, X[:, :1]]), columns=["a", "b", "a"])
    with pytest.raises(ValueError, match=r"^the DataFrame names 'a' more than once; give every"):
        GaussianMixture(2, random_state=0).fit(frame)
    model = GaussianMixture(2, random_state=0).fit(frame.iloc[:, :2])
    with pytest.raises(ValueError, match="names 'a' more than once"):
        model.predict(frame.iloc[:, [0, 2]])
