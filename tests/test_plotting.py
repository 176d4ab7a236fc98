"""The pictures' axes: plain tick labels, the zoom of the criterion curves, the means heatmap's
order, the data sets they are shown on, and the import of the module."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gaussmix import GaussianMixture
from gaussmix.datasets import load_digits, load_wine
from gaussmix.plotting import (
    TOP_CANDIDATES,
    _zoom,
    draw_classification,
    draw_lower_bounds,
    draw_means,
    make_view,
    plot_column_indices,
    plot_figure,
    uncertainty,
)


def test_log_likelihood_axis_prints_no_offset_over_the_title() -> None:
    """A scaled fit's mean log-likelihood moves in the fourth digit: matplotlib would print an
    offset such as -1.1739e1 over the panel; the tick labels carry the whole numbers instead."""
    fig = Figure()
    ax = fig.subplots()
    draw_lower_bounds(ax, {"K=3": [-11.7395, -11.73925, -11.73912, -11.73911]}, "standardised")
    FigureCanvasAgg(fig).draw()
    assert ax.yaxis.get_offset_text().get_text() == ""
    assert all(t.get_text().startswith("−11.739") for t in ax.get_yticklabels() if t.get_text())
    assert "standardised" in ax.get_ylabel()


def test_zoom_keeps_the_top_candidates_apart() -> None:
    """The best three fits lie within 183 units, the fourth 4,500 below and most of the grid
    tens of thousands below (breast cancer's 30 standardised columns): the axis spans the top
    candidates, not the whole range."""
    top = np.array([-6094.0, -6261.0, -6277.0])
    rest = np.r_[-10_597.0, np.linspace(-50_000.0, -11_000.0, 20)]
    usable = np.concatenate([top, rest])
    lower, upper = _zoom(usable, np.full_like(usable, np.nan))
    assert TOP_CANDIDATES == len(top)
    assert lower < top.min() and upper > top.max()
    assert (top.max() - top.min()) / (upper - lower) > 0.2


def test_zoom_of_a_small_grid_keeps_its_old_rule() -> None:
    """Fewer fits than TOP_CANDIDATES: down to 2.5 times the distance to the median."""
    lower, upper = _zoom(np.array([-10.0, -14.0]), np.full(2, np.nan))
    assert lower < -14.0 and upper > -10.0


def test_means_heatmap_puts_the_separating_column_first() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    X[:150, 4] += 6.0
    model = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    fig = Figure()
    ax = fig.subplots()
    names = [f"c{d}" for d in range(6)]
    draw_means(ax, model, names)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "c4" and sorted(labels) == names
    image = ax.images[0].get_array()
    assert image.shape == (2, 6)
    # standardised: the separating column's means are about one mixture sd either side
    assert np.abs(image[:, 0]).min() > 0.8


def test_chosen_columns_are_drawn_as_they_are() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 5))
    model = GaussianMixture(2, random_state=0).fit(X)
    view = make_view(X, model, list("abcde"), "d,b")
    np.testing.assert_array_equal(view.coords, X[:, [3, 1]])
    np.testing.assert_allclose(view.means, model.means_[:, [3, 1]])
    assert view.names == ["d (data units)", "b (data units)"]
    with pytest.raises(ValueError, match="no column named z; the fitted columns are a, b"):
        plot_column_indices(list("abcde"), "a,z")


def test_wine_and_digits_come_from_scikit_learns_copies() -> None:
    wine, digits = load_wine(), load_digits()
    assert wine.X.shape == (178, 13) and "flavanoids" in wine.columns
    assert digits.X.shape == (1797, 64) and digits.columns[0] == "pixel_0_0"
    assert len(digits.columns) == 64 and wine.X.dtype == np.float64


def test_importing_the_pictures_does_not_import_matplotlib() -> None:
    code = "import sys, gaussmix.plotting; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_uncertainty_points_grow_with_the_uncertainty() -> None:
    """mclust's uncertainty plot: a row's marker area grows with 1 - max_k p(k | x), from the
    smallest (certain) to the largest (1 - 1/K)."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 2))
    X[60:, 0] += 2.5
    model = GaussianMixture(2, random_state=0).fit(X)
    fig = Figure()
    ax = fig.subplots()
    draw_classification(ax, X, model, ["a", "b"], show_uncertainty=True)
    u = uncertainty(model, X)
    assert np.all((u >= 0) & (u <= 0.5 + 1e-12)) and u.max() > 0.3
    drawn_u, drawn_size = [], []
    labels = model.predict(X)
    for k, points in enumerate(ax.collections[:2]):
        rows = np.flatnonzero(labels == k)
        order = np.argsort(4.0 + 86.0 * u[rows] / 0.5)  # drawn in increasing size
        drawn_u.append(u[rows][order])
        drawn_size.append(points.get_sizes())
    sizes, us = np.concatenate(drawn_size), np.concatenate(drawn_u)
    np.testing.assert_allclose(sizes, 4.0 + 86.0 * us / 0.5)
    assert "uncertainty" not in ax.get_title() and "(data units)" in ax.get_xlabel()


def test_pairs_panels_print_plain_numbers() -> None:
    """Columns near 1000 that vary in the third decimal: no offset (+1e3) on any panel."""
    rng = np.random.default_rng(3)
    X = 1000.0 + rng.normal(size=(120, 3)) * 1e-3
    X[:60, 0] += 5e-3
    model = GaussianMixture(2, random_state=0, reg_covar=1e-9).fit(X)
    fig = plot_figure("classification", X, model, ["a", "b", "c"], plot_columns="a,b")
    FigureCanvasAgg(fig).draw()
    for ax in fig.axes:
        assert ax.xaxis.get_offset_text().get_text() == ""
        assert ax.yaxis.get_offset_text().get_text() == ""
