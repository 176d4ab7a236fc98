"""Write the pictures of the README's model-selection section into docs/.

    .venv/bin/python docs/make_pictures.py

- faithful-bic.png: BIC of the 36 fits of the default grid on Old Faithful, per covariance
  type against K (mclust's sign), the choice ringed, degenerate fits crossed out;
- faithful-classification.png: the chosen model (tied, K=3): rows coloured by component, 1- and
  2-sigma ellipses, density contours;
- faithful-loglik.png: the mean log-likelihood per EM iteration of three fits of the grid;
- iris-pairs.png: the model chosen for the four iris measurements (scikit-learn's copy of the
  data), as a pairs plot with projected ellipses.

Every fit uses random_state=0, so the pictures are the same on every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.datasets import load_iris

from gaussmix import select
from gaussmix.datasets import load_faithful
from gaussmix.plotting import (
    classification_figure,
    criterion_figure,
    draw_lower_bounds,
    pairs_figure,
    save_figure,
)

DOCS = Path(__file__).resolve().parent


def main() -> None:
    data = load_faithful()
    X = np.asarray(data.X)
    result = select(X, random_state=0)
    written = [
        save_figure(criterion_figure(result), DOCS / "faithful-bic.png"),
        save_figure(
            classification_figure(X, result.best, data.columns),
            DOCS / "faithful-classification.png",
        ),
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
    written.append(save_figure(fig, DOCS / "faithful-loglik.png"))

    iris = load_iris()
    names = [name.replace(" (cm)", "") for name in iris.feature_names]
    chosen = select(iris.data, random_state=0).best
    written.append(save_figure(pairs_figure(iris.data, chosen, names), DOCS / "iris-pairs.png"))
    for path in written:
        print(f"wrote {path.relative_to(DOCS.parent)}")


if __name__ == "__main__":
    main()
