"""Write the pictures of the README's model-selection section into docs/.

    .venv/bin/python docs/make_pictures.py

- faithful-bic.png: BIC of the 126 fits of the default grid on Old Faithful, per covariance
  model against K (mclust's sign), the choice ringed, degenerate fits crossed out;
- faithful-classification.png: the chosen model (tied, K=3): rows coloured by component, 1- and
  2-sigma ellipses, density contours;
- faithful-loglik.png: the mean log-likelihood per EM iteration of three fits of the grid;
- iris-pairs.png: the model chosen for the four iris measurements (scikit-learn's copy of the
  data), as a pairs plot of its discriminant coordinates with projected ellipses;
- wine-select.png: ``gaussmix select --scale --plot`` on the 13 wine measurements: the BIC
  curves beside the chosen model in its first discriminant coordinates;
- wine-means.png: that model's standardised component means (``--plot-kind means``);
- digits-pairs.png: a full-covariance fit with K=10 to the 64 pixels of the digits data
  (reg_covar 0.1: several pixels are constant), in its first four discriminant coordinates;
- digits-means.png: its component means over the 64 pixels (``--plot-kind means``).

For wine and digits it also prints how well the components agree with the labels that the data
sets carry and the fits never see (the cultivar, the digit): the adjusted Rand index.

Every fit uses random_state=0, so the pictures are the same on every run. Each PNG is written
at 100 dpi and then reduced to 256 colours (Pillow, which matplotlib installs), a third of the
bytes for the same picture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn import datasets
from sklearn.datasets import load_iris
from sklearn.metrics import adjusted_rand_score

from gaussmix import GaussianMixture, select
from gaussmix.data.files import standardize
from gaussmix.datasets import load_digits, load_faithful, load_wine
from gaussmix.plotting import (
    STANDARDISED,
    classification_figure,
    criterion_figure,
    draw_lower_bounds,
    means_figure,
    pairs_figure,
    plot_figure,
    save_figure,
)

DOCS = Path(__file__).resolve().parent


def save(fig: Figure, name: str) -> Path:
    """Write ``fig`` as docs/<name>, reduced to a palette of 256 colours."""
    from PIL import Image

    path = save_figure(fig, DOCS / name)
    with Image.open(path) as image:
        reduced = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    reduced.save(path, optimize=True)
    return path


def main() -> None:
    data = load_faithful()
    X = np.asarray(data.X)
    result = select(X, random_state=0)
    written = [
        save(criterion_figure(result), "faithful-bic.png"),
        save(classification_figure(X, result.best, data.columns), "faithful-classification.png"),
    ]
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    histories = {}
    for K, covariance_type in ((3, "tied"), (2, "full"), (3, "full")):
        model = result.models[(K, covariance_type)]
        if model is not None:
            histories[f"{result.record(K, covariance_type).model_name} ({covariance_type})"] = (
                model.lower_bounds_
            )
    draw_lower_bounds(fig.subplots(), histories)
    written.append(save(fig, "faithful-loglik.png"))

    iris = load_iris()
    names = [name.replace(" (cm)", "") for name in iris.feature_names]
    chosen = select(iris.data, random_state=0).best
    written.append(save(pairs_figure(iris.data, chosen, names), "iris-pairs.png"))

    wine = load_wine()
    X_wine, _, _ = standardize(wine.X)
    wine_result = select(X_wine, random_state=0)
    wine_model = wine_result.best
    figure = plot_figure(
        "classification", X_wine, wine_model, wine.columns, wine_result, units=STANDARDISED
    )
    written.append(save(figure, "wine-select.png"))
    figure = means_figure(wine_model, wine.columns, STANDARDISED)
    written.append(save(figure, "wine-means.png"))
    cultivar = datasets.load_wine().target
    agreement = adjusted_rand_score(cultivar, wine_model.predict(X_wine))
    print(f"wine: {wine_result.best_record.model_name}; adjusted Rand index {agreement:.2f}")

    digits = load_digits()
    digits_model = GaussianMixture(10, reg_covar=0.1, n_init=2, random_state=0)
    digits_model.fit(digits.X)
    figure = classification_figure(digits.X, digits_model, digits.columns)
    written.append(save(figure, "digits-pairs.png"))
    written.append(save(means_figure(digits_model, digits.columns), "digits-means.png"))
    digit = datasets.load_digits().target
    agreement = adjusted_rand_score(digit, digits_model.predict(digits.X))
    print(f"digits: VVV,10; adjusted Rand index {agreement:.2f}")
    for path in written:
        print(f"wrote {path.relative_to(DOCS.parent)}")


if __name__ == "__main__":
    main()
