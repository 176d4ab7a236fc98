"""The README's "Missing values" example: iris with 20% of its values hidden at random, fitted
with the holes, the holes filled, and the filled values against the hidden truth.

    .venv/bin/python docs/missing_example.py
"""

import numpy as np
from sklearn.datasets import load_iris
from sklearn.impute import SimpleImputer

from gaussmix import GaussianMixture, GaussianMixtureImputer

X = load_iris().data  # 150 flowers x 4 measurements (cm)
rng = np.random.default_rng(0)
holes = rng.random(X.shape) < 0.2  # hide 20% of the values at random
holes[holes.all(axis=1), 0] = False  # (every row keeps one value)
X_holes = np.where(holes, np.nan, X)
print(f"{holes.sum()} of {X.size} values hidden; {holes.any(axis=1).sum()} of 150 rows incomplete")

model = GaussianMixture(3, missing="em", random_state=0).fit(X_holes)
print(f"converged in {model.n_iter_} iterations, log-likelihood per row {model.score(X_holes):.3f}")
print("rows per component:", np.bincount(model.predict(X_holes)))

imputer = GaussianMixtureImputer(3, random_state=0).fit(X_holes)
filled, std = imputer.transform(X_holes, return_std=True)
column_means = SimpleImputer().fit_transform(X_holes)


def rmse(F: np.ndarray) -> float:
    return float(np.sqrt(np.mean((F[holes] - X[holes]) ** 2)))


print(f"RMSE of the filled values: mixture {rmse(filled):.3f} cm, column means", end=" ")
print(f"{rmse(column_means):.3f} cm")
inside = np.abs(filled[holes] - X[holes]) <= 2 * std[holes]
print(f"hidden values within 2 conditional std of the filled ones: {inside.mean():.0%}")
np.set_printoptions(precision=2, suppress=True)
for i in np.flatnonzero(holes.any(axis=1))[:4]:
    j = np.flatnonzero(holes[i])
    print(f"row {i}: {X_holes[i]} filled {filled[i, j]} ± {std[i, j]}, truth {X[i, j]}")
