"""Pictures of fitted mixtures (matplotlib, object API only: no pyplot state, no display needed).

matplotlib and the EM engine are imported inside the functions that need them, so importing
this module (and the command line that names it) stays cheap.

What a picture of a fit shows depends on the number of columns D:

- D = 1: a histogram stacked by component with the weighted component densities;
- D = 2: the rows coloured by component, 1- and 2-sigma ellipses and density contours;
- D > 2: a pairs plot of the first two to four *discriminant coordinates* of the fit
  (``projection.py``: the directions that separate the fitted components), with each
  component's ellipses projected exactly; the axis labels name the columns that weigh most.
  ``plot_columns`` draws chosen columns instead.

``PLOT_KINDS`` are the pictures ``plot_figure`` draws (the command line's ``--plot-kind``):
``classification`` (as above; beside the log-likelihood per iteration for a fit, the criterion
curves for a selection), ``uncertainty`` (points sized by 1 - max_k p(k | x), mclust's
uncertainty plot), ``means`` (a heatmap of the standardised component means, columns sorted by
their weight in the first direction), ``bic`` (the criterion curves of a selection; for one fit,
its BIC taken apart) and ``loglik`` (the mean log-likelihood per EM iteration). Every picture
says its units: ``units`` names those of the columns (``DATA_UNITS``, or ``STANDARDISED`` after
``--scale``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from gaussmix.atomic import atomic_write
from gaussmix.errors import GaussmixError
from gaussmix.figures import figure_format
from gaussmix.projection import (
    Projection,
    direction_label,
    discriminant_coordinates,
    n_shown,
    project_components,
    project_rows,
    standardised_means,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure
    from matplotlib.lines import Line2D

    from gaussmix.mixture import GaussianMixture
    from gaussmix.selection import SelectionResult

PLOT_KINDS = ("classification", "uncertainty", "means", "bic", "loglik")

DATA_UNITS = "data units"
STANDARDISED = "standardised units"

COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)


def component_matrices(model: GaussianMixture) -> NDArray[np.float64]:
    """The (K, D, D) covariance matrices of a fitted model, whatever its covariance type."""
    from gaussmix.em import get_covariance

    cov = get_covariance(model.covariance_type)
    K, D = model.means_.shape
    return np.asarray(cov.per_component(model.covariances_, K, D), dtype=np.float64)


def model_projection(model: GaussianMixture) -> Projection:
    """The discriminant coordinates of a fitted model (``projection.discriminant_coordinates``)."""
    return discriminant_coordinates(model.means_, model.weights_, component_matrices(model))


def color(k: int) -> str:
    return COLORS[k % len(COLORS)]


def _plain_numbers(ax: Axes, axis: str = "y") -> None:
    """Tick labels as plain numbers: no offset or power printed over the axis (matplotlib's
    offset text lands on the title of a panel whose values differ in the fifth digit)."""
    from matplotlib.ticker import ScalarFormatter

    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


def uncertainty(model: GaussianMixture, X: NDArray[np.floating]) -> NDArray[np.float64]:
    """mclust's classification uncertainty of each row, 1 - max_k p(k | x), shape (n,)."""
    return np.asarray(1.0 - model.predict_proba(X).max(axis=1), dtype=np.float64)


def _most_uncertain(model: GaussianMixture) -> float:
    """The largest uncertainty a K-component mixture can give a row, 1 - 1/K."""
    return 1.0 - 1.0 / model.n_components


def _sizes(model: GaussianMixture, X: NDArray[np.floating], small: float, large: float) -> NDArray:
    """Marker areas growing with the uncertainty, from ``small`` (certain) to ``large`` (the
    most a K-component mixture can be uncertain, 1 - 1/K)."""
    most = _most_uncertain(model)
    u = uncertainty(model, X)
    return small + (large - small) * (u / most if most > 0 else u)


def _ellipses(ax: Axes, mean: NDArray[np.float64], cov2: NDArray[np.float64], c: str) -> None:
    """1- and 2-sigma ellipses of a 2x2 covariance: semi-axes r * sqrt(eigenvalue)."""
    from matplotlib.patches import Ellipse

    values, vectors = np.linalg.eigh(cov2)
    angle = float(np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1])))
    for r, style in ((1.0, "-"), (2.0, "--")):
        width, height = 2 * r * np.sqrt(np.maximum(values[::-1], 0.0))
        ax.add_patch(
            Ellipse(
                tuple(mean),
                width,
                height,
                angle=angle,
                fill=False,
                edgecolor=c,
                linewidth=1.6,
                linestyle=style,
            )
        )


def _scatter(
    ax: Axes,
    x: NDArray,
    y: NDArray,
    labels: NDArray,
    K: int,
    size: float | NDArray,
    alpha: float,
    weights: NDArray | None = None,
) -> None:
    """Points coloured by component; with sizes per row (uncertainty) the uncertain rows of
    each component are drawn last, on top."""
    sizes = np.broadcast_to(np.asarray(size, dtype=np.float64), x.shape)
    varying = np.ndim(size) > 0
    for k in range(K):
        rows = np.flatnonzero(labels == k)
        if varying:
            rows = rows[np.argsort(sizes[rows])]
        ax.scatter(
            x[rows],
            y[rows],
            s=sizes[rows],
            color=color(k),
            alpha=alpha,
            linewidths=0,
            label=None if weights is None else f"component {k} ({weights[k]:.0%})",
        )


def _size_handles(model: GaussianMixture, small: float, large: float) -> list[Line2D]:
    """Legend entries for three marker sizes, labelled with the uncertainty they stand for."""
    from matplotlib.lines import Line2D

    most = _most_uncertain(model)
    return [
        Line2D(
            [],
            [],
            color="0.5",
            marker="o",
            linestyle="",
            markersize=float(np.sqrt(small + (large - small) * f)),
            label=f"1 - max p = {f * most:.2f}",
        )
        for f in (0.0, 0.5, 1.0)
    ]


def draw_classification(
    ax: Axes,
    X: NDArray[np.floating],
    model: GaussianMixture,
    columns: Sequence[str] = ("x0", "x1"),
    dims: tuple[int, int] = (0, 1),
    contours: bool = True,
    title: str | None = None,
    units: str = DATA_UNITS,
    show_uncertainty: bool = False,
) -> None:
    """Scatter of two features coloured by component, with ellipses and density contours;
    with ``show_uncertainty`` the points are sized by 1 - max_k p(k | x)."""
    from matplotlib.lines import Line2D

    i, j = dims
    labels = model.predict(X)
    matrices = component_matrices(model)
    K = model.n_components
    size: float | NDArray = _sizes(model, X, 4.0, 90.0) if show_uncertainty else 12.0
    _scatter(ax, X[:, i], X[:, j], labels, K, size, 0.65, model.weights_)
    draw_contours = contours and X.shape[1] == 2
    if draw_contours:
        pad_x = 0.08 * np.ptp(X[:, i])
        pad_y = 0.08 * np.ptp(X[:, j])
        gx = np.linspace(X[:, i].min() - pad_x, X[:, i].max() + pad_x, 160)
        gy = np.linspace(X[:, j].min() - pad_y, X[:, j].max() + pad_y, 160)
        mx, my = np.meshgrid(gx, gy)
        density = np.exp(model.score_samples(np.column_stack([mx.ravel(), my.ravel()])))
        levels = np.quantile(density, [0.55, 0.7, 0.8, 0.88, 0.94, 0.98])
        ax.contour(
            mx,
            my,
            density.reshape(mx.shape),
            levels=np.unique(levels),
            colors="0.55",
            linewidths=0.7,
            alpha=0.8,
        )
    for k in range(K):
        sub = matrices[k][np.ix_([i, j], [i, j])]
        _ellipses(ax, model.means_[k, [i, j]], sub, color(k))
        ax.plot(*model.means_[k, [i, j]], marker="x", color="black", markersize=7)
    _plain_numbers(ax, "x")
    _plain_numbers(ax, "y")
    ax.set_xlabel(f"{columns[i]} ({units})")
    ax.set_ylabel(f"{columns[j]} ({units})")
    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="0.3", linestyle="-", label="1-sigma ellipse"),
        Line2D([], [], color="0.3", linestyle="--", label="2-sigma ellipse"),
    ]
    if draw_contours:
        handles.append(Line2D([], [], color="0.55", linewidth=0.7, label="mixture density"))
    if show_uncertainty and K > 1:
        handles += _size_handles(model, 4.0, 90.0)
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85)
    if title:
        ax.set_title(title)


def draw_lower_bounds(
    ax: Axes, histories: dict[str, Sequence[float]], units: str = DATA_UNITS
) -> None:
    """Mean log-likelihood per EM iteration, one line per fit."""
    from matplotlib.ticker import MaxNLocator

    for idx, (label, history) in enumerate(histories.items()):
        ax.plot(
            np.arange(1, len(history) + 1),
            history,
            marker="o",
            markersize=3,
            color=color(idx),
            label=label,
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    _plain_numbers(ax)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel(f"mean log-likelihood per row (rows in {units})")
    ax.set_title("log-likelihood per iteration")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _limits(values: NDArray[np.floating], pad: float = 0.06) -> tuple[float, float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    return lo - pad * span, hi + pad * span


def _component_handles(model: GaussianMixture) -> list[Line2D]:
    from matplotlib.lines import Line2D

    return [
        Line2D(
            [],
            [],
            color=color(k),
            marker="o",
            linestyle="",
            label=f"component {k} ({model.weights_[k]:.0%})",
        )
        for k in range(model.n_components)
    ]


@dataclass(frozen=True)
class View:
    """What a pairs plot shows: the rows' coordinates and the components, exactly projected.

    Attributes
    ----------
    coords : (n_samples, r) array
    means : (K, r) array
    covariances : (K, r, r) array
    names : list of r axis labels
    short : list of r names for the diagonal panels
    what : str, a phrase naming the coordinates and their units, for the title
    """

    coords: NDArray[np.float64]
    means: NDArray[np.float64]
    covariances: NDArray[np.float64]
    names: list[str]
    short: list[str]
    what: str


def plot_column_indices(columns: Sequence[str], wanted: str | Sequence[str]) -> list[int]:
    """Positions of the ``wanted`` column names (a sequence, or one string separated by
    commas, as ``--plot-columns`` gives them) among ``columns``; a ValueError naming the
    unknown ones and the names there are."""
    if isinstance(wanted, str):
        wanted = [name.strip() for name in wanted.split(",") if name.strip()]
    position = {name: d for d, name in enumerate(columns)}
    unknown = [name for name in wanted if name not in position]
    if unknown:
        known = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
        raise GaussmixError(
            f"--plot-columns: no column named {', '.join(unknown)}; the fitted columns are {known}"
        )
    if not wanted:
        raise GaussmixError("--plot-columns names no column; give names separated by commas")
    return [position[name] for name in dict.fromkeys(wanted)]


def make_view(
    X: NDArray[np.floating],
    model: GaussianMixture,
    columns: Sequence[str],
    plot_columns: str | Sequence[str] | None = None,
    units: str = DATA_UNITS,
    most: int = 4,
) -> View:
    """The coordinates of a pairs plot: the chosen columns, or the first two to ``most``
    discriminant coordinates of the fit (all of them are exact projections of the fit)."""
    matrices = component_matrices(model)
    if plot_columns is not None:
        idx = plot_column_indices(columns, plot_columns)
        return View(
            np.asarray(X, dtype=np.float64)[:, idx],
            np.asarray(model.means_, dtype=np.float64)[:, idx],
            matrices[:, idx][:, :, idx],
            [f"{columns[d]} ({units})" for d in idx],
            [str(columns[d]) for d in idx],
            f"{len(idx)} chosen of {len(columns)} columns, in {units}",
        )
    projection = model_projection(model)
    r = n_shown(projection, most)
    means, covariances = project_components(projection, model.means_, matrices, r)
    return View(
        project_rows(projection, X, r),
        means,
        covariances,
        [direction_label(projection, j, columns) for j in range(r)],
        [f"{projection.prefix}{j + 1}" for j in range(r)],
        f"first {r} {projection.kind} coordinates of {len(columns)} columns ({units}); "
        f"axes in {projection.units}",
    )


def draw_pairs(
    container: Figure | SubFigure,
    X: NDArray[np.floating],
    model: GaussianMixture,
    columns: Sequence[str],
    max_features: int = 4,
    title: str | None = None,
    view: View | None = None,
    show_uncertainty: bool = False,
    units: str = DATA_UNITS,
) -> None:
    """Pairs plot into a figure or subfigure: stacked histograms by component on the diagonal
    (one set of bins), points coloured by component with the projected 1- and 2-sigma ellipses
    elsewhere; rows and columns share their axes. It draws ``view`` (default: the fit's
    discriminant coordinates, ``make_view``); with ``show_uncertainty`` the points are sized
    by 1 - max_k p(k | x)."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if view is None:
        view = make_view(X, model, columns, units=units, most=max_features)
    Z = view.coords
    D = Z.shape[1]
    axes = container.subplots(D, D, squeeze=False)
    labels = model.predict(X)
    limits = [_limits(Z[:, d]) for d in range(D)]
    K = model.n_components
    size: float | NDArray = _sizes(model, X, 2.0, 60.0) if show_uncertainty else 5.0
    for a in range(D):
        for b in range(D):
            ax = axes[a, b]
            ax.set_xlim(limits[b])
            ax.set_ylim(limits[a])
            _plain_numbers(ax, "x")
            _plain_numbers(ax, "y")
            # plain numbers can be long (1000.002): at most four ticks fit a narrow panel
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            if a == b:
                # the counts get their own (hidden) scale, so that the left axis of the
                # first row still reads in units of its feature, like the rest of the row
                hist_ax = ax.twinx()
                bins = np.histogram_bin_edges(Z[:, a], bins=min(40, max(10, len(Z) // 15)))
                hist_ax.hist(
                    [Z[labels == k, a] for k in range(K)],
                    bins=bins,
                    stacked=True,
                    color=[color(k) for k in range(K)],
                    alpha=0.75,
                )
                hist_ax.set_yticks([])
                hist_ax.set_ylim(0, hist_ax.get_ylim()[1] * 1.18)  # room for the name
                hist_ax.text(
                    0.04,
                    0.95,
                    view.short[a],
                    transform=hist_ax.transAxes,
                    fontsize=9,
                    fontweight="bold",
                    va="top",
                    bbox={
                        "boxstyle": "round,pad=0.2",
                        "facecolor": "white",
                        "alpha": 0.8,
                        "edgecolor": "none",
                    },
                )
            else:
                _scatter(ax, Z[:, b], Z[:, a], labels, K, size, 0.5)
                for k in range(K):
                    sub = view.covariances[k][np.ix_([b, a], [b, a])]
                    _ellipses(ax, view.means[k, [b, a]], sub, color(k))
                    ax.plot(*view.means[k, [b, a]], marker="x", color="black", markersize=5)
            if a == D - 1:
                ax.set_xlabel(view.names[b], fontsize=8)
            else:
                ax.tick_params(labelbottom=False)
            if b == 0:
                ax.set_ylabel(view.names[a], fontsize=8)
            else:
                ax.tick_params(labelleft=False)
    handles: list[Line2D] = _component_handles(model)
    handles += [
        Line2D([], [], color="0.3", linestyle="-", label="1-sigma"),
        Line2D([], [], color="0.3", linestyle="--", label="2-sigma"),
    ]
    if show_uncertainty and K > 1:
        handles += _size_handles(model, 2.0, 60.0)
    # about two inches per legend entry, across the width of the panels
    ncols = max(2, min(len(handles), int(_pairs_side(D) / 2.0)))
    container.legend(handles=handles, loc="outside lower center", ncols=ncols, fontsize=8)
    heading = title or _model_title(model)
    if show_uncertainty:
        heading += ": classification uncertainty (points sized by 1 - max_k p(k | x))"
    container.suptitle(heading + f"\n{view.what}", fontsize=10)


def _pairs_side(n: int) -> float:
    """Width of a pairs plot of n coordinates, in inches (two get larger panels)."""
    return 3.4 * n + 0.8 if n <= 2 else 2.6 * n + 0.8


def pairs_figure(
    X: NDArray[np.floating],
    model: GaussianMixture,
    columns: Sequence[str],
    max_features: int = 4,
    view: View | None = None,
    show_uncertainty: bool = False,
    units: str = DATA_UNITS,
) -> Figure:
    """A pairs plot alone (``draw_pairs``): of the fit's first discriminant coordinates, or
    of ``view``."""
    from matplotlib.figure import Figure

    if view is None:
        view = make_view(X, model, columns, units=units, most=max_features)
    side = _pairs_side(view.coords.shape[1])
    fig = Figure(figsize=(side, side + 0.6), layout="constrained")
    draw_pairs(fig, X, model, columns, view=view, show_uncertainty=show_uncertainty)
    return fig


def draw_histogram(
    ax: Axes,
    X: NDArray[np.floating],
    model: GaussianMixture,
    column: str = "x0",
    units: str = DATA_UNITS,
) -> None:
    """1-D data: a histogram stacked by component (one set of bins, as a density), each
    component's weighted density pi_k N(x | mu_k, sigma_k^2) and the mixture density."""
    x = np.asarray(X[:, 0], dtype=np.float64)
    labels = model.predict(X)
    K = model.n_components
    bins = np.histogram_bin_edges(x, bins=min(60, max(10, len(x) // 12)))
    width = float(bins[1] - bins[0])
    counts = [np.histogram(x[labels == k], bins=bins)[0] / (len(x) * width) for k in range(K)]
    bottom = np.zeros(len(bins) - 1)
    for k in range(K):
        ax.bar(
            bins[:-1],
            counts[k],
            width=width,
            bottom=bottom,
            align="edge",
            color=color(k),
            alpha=0.55,
            linewidth=0,
            label=f"component {k} ({model.weights_[k]:.0%})",
        )
        bottom = bottom + counts[k]
    lo, hi = _limits(x)
    grid = np.linspace(lo, hi, 400)
    sd = np.sqrt(component_matrices(model)[:, 0, 0])
    for k in range(K):
        z = (grid - model.means_[k, 0]) / sd[k]
        density = model.weights_[k] * np.exp(-0.5 * z**2) / (sd[k] * np.sqrt(2 * np.pi))
        ax.plot(grid, density, color=color(k), linewidth=1.6)
    ax.plot(
        grid,
        np.exp(model.score_samples(grid[:, None])),
        color="black",
        linewidth=1.2,
        label="mixture density",
    )
    ax.set_xlim(lo, hi)
    ax.set_xlabel(f"{column} ({units})")
    ax.set_ylabel("density")
    ax.legend(fontsize=8, framealpha=0.85)


def draw_uncertainty_1d(
    ax: Axes,
    X: NDArray[np.floating],
    model: GaussianMixture,
    column: str = "x0",
    units: str = DATA_UNITS,
) -> None:
    """1-D data: each row's uncertainty 1 - max_k p(k | x) against x (coloured by component),
    over the curve of the uncertainty along the axis."""
    x = np.asarray(X[:, 0], dtype=np.float64)
    lo, hi = _limits(x)
    grid = np.linspace(lo, hi, 400)
    ax.plot(grid, uncertainty(model, grid[:, None]), color="0.4", linewidth=1.0)
    labels = model.predict(X)
    _scatter(ax, x, uncertainty(model, X), labels, model.n_components, 14.0, 0.7, model.weights_)
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.02, max(_most_uncertain(model), 0.5) + 0.05)
    ax.set_xlabel(f"{column} ({units})")
    ax.set_ylabel("uncertainty 1 - max_k p(k | x)")
    ax.legend(fontsize=8, framealpha=0.85)


def draw_means(
    ax: Axes, model: GaussianMixture, columns: Sequence[str], units: str = DATA_UNITS
) -> None:
    """Heatmap of the K component means over the D columns, standardised: (mu_kd - mu_d) /
    sd_d with the mixture's mean and sd per column; columns sorted by their weight in the
    first discriminant direction, components by their mean along it."""
    matrices = component_matrices(model)
    z, _ = standardised_means(model.means_, model.weights_, matrices)
    projection = model_projection(model)
    col_order = np.argsort(-projection.weights[:, 0], kind="stable")
    first = project_components(projection, model.means_, matrices, 1)[0][:, 0]
    row_order = np.argsort(first, kind="stable")
    shown = z[np.ix_(row_order, col_order)]
    top = max(float(np.max(np.abs(shown))), 1e-12)
    image = ax.imshow(shown, cmap="RdBu_r", vmin=-top, vmax=top, aspect="auto")
    K, D = shown.shape
    small = D > 24
    ax.set_xticks(np.arange(D))
    ax.set_xticklabels(
        [str(columns[d]) for d in col_order], rotation=90, fontsize=6.5 if small else 8
    )
    ax.set_yticks(np.arange(K))
    ax.set_yticklabels([f"component {k} ({model.weights_[k]:.0%})" for k in row_order], fontsize=8)
    if D <= 16 and K <= 12:
        for i in range(K):
            for j in range(D):
                v = shown[i, j]
                ax.text(
                    j,
                    i,
                    f"{v:+.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if abs(v) > 0.6 * top else "black",
                )
    bar = ax.figure.colorbar(image, ax=ax, shrink=0.9, pad=0.01)
    bar.set_label("(mean - mixture mean) / column sd", fontsize=8)
    ax.set_title(
        f"component means, standardised per column (the fit is in {units})\n"
        f"columns sorted by their weight in {projection.prefix}1, components by their mean "
        "along it",
        fontsize=9,
    )


def means_figure(model: GaussianMixture, columns: Sequence[str], units: str = DATA_UNITS) -> Figure:
    """The heatmap of standardised component means alone (``draw_means``), wide enough for
    one readable label per column."""
    from matplotlib.figure import Figure

    K, D = model.means_.shape
    width = min(max(6.5, 0.16 * D + 3.8), 16.0)
    height = 2.4 + 0.32 * K + (0.9 if D > 8 else 0.3)
    fig = Figure(figsize=(width, height), layout="constrained")
    draw_means(fig.subplots(), model, columns, units)
    return fig


def _two_subfigures(fig: Figure, width_ratios: list[float]) -> tuple[SubFigure, SubFigure]:
    """Two side-by-side subfigures of ``fig``."""
    subfigures = fig.subfigures(1, 2, width_ratios=width_ratios, squeeze=False)
    return subfigures[0, 0], subfigures[0, 1]


def _type_label(covariance_type: str) -> str:
    from gaussmix.em import get_covariance

    cov = get_covariance(covariance_type)
    return cov.label


def _model_title(model: GaussianMixture) -> str:
    """'3 components, full (VVV) covariance'."""
    K = model.n_components
    return f"{K} component{'' if K == 1 else 's'}, {_type_label(model.covariance_type)} covariance"


def _draw_one_panel(
    ax: Axes,
    X: NDArray[np.floating],
    model: GaussianMixture,
    columns: Sequence[str],
    title: str,
    units: str,
    show_uncertainty: bool,
) -> None:
    """The classification (or uncertainty) picture of 1- or 2-column data into one axes."""
    if X.shape[1] == 2:
        draw_classification(
            ax, X, model, columns, title=title, units=units, show_uncertainty=show_uncertainty
        )
    elif show_uncertainty:
        draw_uncertainty_1d(ax, X, model, columns[0], units)
        ax.set_title(title)
    else:
        draw_histogram(ax, X, model, columns[0], units)
        ax.set_title(title)


def _uses_pairs(X: NDArray[np.floating], plot_columns: str | Sequence[str] | None) -> bool:
    return X.shape[1] > 2 or plot_columns is not None


def fit_figure(
    X: NDArray[np.floating],
    model: GaussianMixture,
    columns: Sequence[str],
    plot_columns: str | Sequence[str] | None = None,
    units: str = DATA_UNITS,
) -> Figure:
    """The picture of one fit: the classification plot (2-D), a pairs plot of the fit's
    discriminant coordinates or of ``plot_columns`` (more features) or a histogram with the
    component densities (1-D), beside the log-likelihood per iteration."""
    from matplotlib.figure import Figure

    K = model.n_components
    history: dict[str, Sequence[float]] = {f"K={K}": model.lower_bounds_}
    if _uses_pairs(X, plot_columns):
        view = make_view(X, model, columns, plot_columns, units)
        side = _pairs_side(view.coords.shape[1])
        fig = Figure(figsize=(side + 5.0, side + 0.6), layout="constrained")
        left, right = _two_subfigures(fig, [side, 5.0])
        draw_pairs(left, X, model, columns, view=view)
        top, bottom = right.subplots(2, 1, height_ratios=[1, 1])
        bottom.set_axis_off()
        draw_lower_bounds(top, history, units)
        return fig
    fig = Figure(figsize=(12, 5), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.3, 1])
    title = _model_title(model)
    _draw_one_panel(left, X, model, columns, title, units, False)
    draw_lower_bounds(right, history, units)
    return fig


_CRITERION_TEXT = {
    "bic": ("BIC", "2 log L - p log N"),
    "icl": ("ICL", "2 log L - p log N - 2 EN"),
    "aic": ("AIC", "2 log L - 2 p"),
}


# how many of the best fits the zoom keeps apart: they fill at least the top quarter of the axis
TOP_CANDIDATES = 3


def _zoom(usable: NDArray[np.float64], excluded_values: NDArray[np.float64]) -> tuple[float, float]:
    """Vertical limits that keep the top of the curves readable: down to four times the
    distance from the best value to the ``TOP_CANDIDATES``-th best (so that the candidates
    between which the choice is made fill the upper part of the axis rather than one band of
    pixels; 2.5 times the distance to the median when there are not that many; all of it when
    that is the whole range), up to the best plus a margin, or to a degenerate point if one
    lies at most the same distance above."""
    finite = np.sort(usable[np.isfinite(usable)])[::-1]
    best = float(finite[0])
    lowest = float(finite[-1])
    gap = best - float(finite[min(TOP_CANDIDATES, finite.size) - 1])
    if finite.size >= TOP_CANDIDATES and gap > 0:
        depth = 4.0 * gap
    else:
        depth = 2.5 * (best - float(np.median(finite)))
    lower = lowest if depth <= 0 or best - depth <= lowest else best - depth
    span = max(best - lower, 1e-9 * max(1.0, abs(best)))
    lower -= 0.04 * span
    upper = best + 0.18 * span
    above = excluded_values[np.isfinite(excluded_values) & (excluded_values > upper)]
    reachable = above[above <= best + span]
    if reachable.size:
        upper = float(reachable.max()) + 0.08 * span
    return lower, upper


def draw_criterion_curves(
    ax: Axes,
    result: SelectionResult,
    criterion: str | None = None,
    zoom: bool = True,
    units: str = DATA_UNITS,
    n_labelled: int = 2,
) -> None:
    """The criterion against K, one curve per covariance type, in mclust's sign (higher is
    better, as mclust draws it). The chosen model is ringed and labelled; degenerate fits are
    drawn as crosses off their curve (shown, never chosen); failed fits are left out.

    With ``zoom``, the vertical axis shows the top of the curves, where the choice is made,
    rather than the whole range; points beyond it are marked by arrows at the edge. The
    ``n_labelled`` best fits after the chosen one are labelled with their rank and value.
    """
    from matplotlib.lines import Line2D

    from gaussmix.em import get_covariance

    name = (criterion or result.criterion).lower()
    label, formula = _CRITERION_TEXT[name]
    values = result.grid(name, mclust_sign=True)
    excluded = result.degenerate_mask()
    ks = np.asarray(result.n_components)
    chosen = result.ranking(name)[0]
    usable = np.where(excluded, np.nan, values)
    excluded_values = np.where(excluded, values, np.nan)
    lower, upper = _zoom(usable, excluded_values) if zoom else (-np.inf, np.inf)
    n_types = len(result.covariance_types)
    off_axis = {"below": False, "above": False}
    crossed = False
    for j, covariance_type in enumerate(result.covariance_types):
        cov = get_covariance(covariance_type)
        marker, c = cov.plot_style
        ax.plot(
            ks,
            usable[:, j],
            marker=marker,
            color=c,
            markersize=6,
            linewidth=1.6,
            label=cov.mclust_label,
        )
        bad = excluded[:, j] & np.isfinite(values[:, j]) & (values[:, j] <= upper)
        crossed |= bool(bad.any())
        if bad.any():
            ax.plot(
                ks[bad],
                values[bad, j],
                marker="x",
                color=c,
                markersize=10,
                markeredgewidth=2.2,
                linestyle="",
            )
        if not zoom:
            continue
        # arrows at the edge for the points beyond it, side by side when several share a K
        shift = (j - (n_types - 1) / 2) * 0.09
        height = 0.05 * (upper - lower)
        for k, v in zip(ks, values[:, j], strict=True):
            if not np.isfinite(v) or lower <= v <= upper:
                continue
            edge, tail = (lower, lower + height) if v < lower else (upper, upper - height)
            ax.annotate(
                "",
                xy=(k + shift, edge),
                xytext=(k + shift, tail),
                arrowprops={"arrowstyle": "->", "color": c, "linewidth": 1.3},
                annotation_clip=False,
            )
            off_axis["below" if v < lower else "above"] = True
    hidden = [
        f"{get_covariance(t).mclust} (its best: {np.nanmax(usable[:, j]):.1f} at K="
        f"{ks[int(np.nanargmax(usable[:, j]))]})"
        for j, t in enumerate(result.covariance_types)
        if zoom and np.isfinite(usable[:, j]).any() and np.nanmax(usable[:, j]) < lower
    ]
    best_value = -chosen.value(name)
    ax.plot(
        chosen.n_components,
        best_value,
        marker="o",
        markersize=20,
        markerfacecolor="none",
        markeredgecolor="black",
        markeredgewidth=1.5,
        linestyle="",
    )
    ax.annotate(
        f"best: {chosen.model_name} ({chosen.covariance_type})\n{label} {best_value:.1f}",
        xy=(chosen.n_components, best_value),
        xytext=(18, 16),
        textcoords="offset points",
        fontsize=9,
        va="bottom",
        arrowprops={"arrowstyle": "-", "color": "black", "linewidth": 0.8},
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "0.6"},
    )
    for rank, record in enumerate(result.ranking(name)[1 : 1 + n_labelled], start=2):
        value = -record.value(name)
        if lower <= value <= upper:
            ax.annotate(
                f"{rank}. {record.model_name} {value:.1f}",
                xy=(record.n_components, value),
                xytext=(7, 5 if rank % 2 == 0 else -12),
                textcoords="offset points",
                fontsize=7.5,
                color="0.25",
            )
    handles, _ = ax.get_legend_handles_labels()
    if crossed:
        handles.append(
            Line2D(
                [],
                [],
                color="0.3",
                marker="x",
                markeredgewidth=2,
                linestyle="",
                label="degenerate: shown, never chosen",
            )
        )
    arrows = {"below": r"$\downarrow$", "above": r"$\uparrow$"}
    for side, seen in off_axis.items():
        if seen:
            what = "degenerate, above the axis" if side == "above" else "below the axis"
            handles.append(
                Line2D([], [], color="0.3", marker=arrows[side], linestyle="", label=what)
            )
    if hidden:
        below = "entirely below:\n" + "\n".join(hidden)
        handles.append(Line2D([], [], linestyle="", label=below))
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        ncols=3 if n_types <= 4 else 5,  # mclust's fourteen models and the notes: four rows
        fontsize=8,
        frameon=False,
    )
    if zoom:
        ax.set_ylim(lower, upper)
    ax.set_xticks(ks)
    ax.set_xlim(ks.min() - 0.4, ks.max() + 0.4)
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{label} = {formula}  (higher is better)")
    ax.set_title(f"{label} of every fit, in mclust's sign (rows in {units})")
    _plain_numbers(ax)
    ax.grid(alpha=0.3)


def criterion_figure(
    result: SelectionResult, criterion: str | None = None, units: str = DATA_UNITS
) -> Figure:
    """The criterion curves alone (``draw_criterion_curves``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5.5), layout="constrained")
    draw_criterion_curves(fig.subplots(), result, criterion, units=units)
    return fig


def classification_figure(
    X: NDArray[np.floating],
    model: GaussianMixture,
    columns: Sequence[str],
    plot_columns: str | Sequence[str] | None = None,
    units: str = DATA_UNITS,
    show_uncertainty: bool = False,
) -> Figure:
    """The classification plot of a model alone: 2-D scatter with ellipses and density
    contours, a pairs plot of the discriminant coordinates (or of ``plot_columns``) for more
    features, a histogram with densities for one; with ``show_uncertainty``, mclust's
    uncertainty plot (points sized by 1 - max_k p(k | x); for one feature, against x)."""
    from matplotlib.figure import Figure

    if _uses_pairs(X, plot_columns):
        view = make_view(X, model, columns, plot_columns, units)
        return pairs_figure(X, model, columns, view=view, show_uncertainty=show_uncertainty)
    title = _model_title(model)
    if show_uncertainty:
        title += ": classification uncertainty"
    fig = Figure(figsize=(8, 6), layout="constrained")
    _draw_one_panel(fig.subplots(), X, model, columns, title, units, show_uncertainty)
    return fig


def selection_figure(
    X: NDArray[np.floating],
    result: SelectionResult,
    columns: Sequence[str],
    plot_columns: str | Sequence[str] | None = None,
    units: str = DATA_UNITS,
) -> Figure:
    """The picture of ``gaussmix select``: the criterion curves beside the chosen model's
    classification plot (2-D), pairs plot of its discriminant coordinates or of
    ``plot_columns`` (more features) or histogram (1-D)."""
    from matplotlib.figure import Figure

    model = result.best
    title = "chosen: " + _model_title(model)
    if _uses_pairs(X, plot_columns):
        view = make_view(X, model, columns, plot_columns, units)
        side = _pairs_side(view.coords.shape[1])
        fig = Figure(figsize=(side + 8.0, max(side + 0.6, 6.0)), layout="constrained")
        left, right = _two_subfigures(fig, [8.0, side])
        draw_criterion_curves(left.subplots(), result, units=units)
        draw_pairs(right, X, model, columns, title=title, view=view)
        return fig
    fig = Figure(figsize=(15, 6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.1])
    draw_criterion_curves(left, result, units=units)
    _draw_one_panel(right, X, model, columns, title, units, False)
    return fig


def loglik_figure(histories: dict[str, Sequence[float]], units: str = DATA_UNITS) -> Figure:
    """The mean log-likelihood per EM iteration alone (``draw_lower_bounds``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    draw_lower_bounds(fig.subplots(), histories, units)
    return fig


def draw_fit_bic(ax: Axes, model: GaussianMixture, units: str = DATA_UNITS) -> None:
    """One fit's BIC in mclust's sign taken apart: 2 log L, the penalty p log N and their
    difference, as horizontal bars (a single fit has no curve; ``select`` draws those)."""
    log_lik = float(model.log_likelihood_)
    n, p = int(model.n_samples_fit_), int(model._n_parameters())
    penalty = p * float(np.log(n))
    parts = [
        ("2 log L", 2 * log_lik),
        (f"- p log N\n(p = {p}, N = {n})", -penalty),
        ("BIC = 2 log L - p log N", 2 * log_lik - penalty),
    ]
    y = np.arange(len(parts))[::-1]
    values = [v for _, v in parts]
    ax.barh(y, values, color=["#1f77b4", "#d62728", "0.35"], height=0.6)
    for yi, v in zip(y, values, strict=True):
        ax.annotate(
            f"{v:.1f}",
            xy=(v, yi),
            xytext=(4 if v >= 0 else -4, 0),
            textcoords="offset points",
            ha="left" if v >= 0 else "right",
            va="center",
            fontsize=9,
        )
    ax.set_yticks(y)
    ax.set_yticklabels([name for name, _ in parts], fontsize=9)
    ax.axvline(0.0, color="black", linewidth=0.8)
    lo, hi = min(0.0, *values), max(0.0, *values)
    pad = 0.25 * (hi - lo if hi > lo else 1.0)
    ax.set_xlim(lo - pad, hi + pad)
    _plain_numbers(ax, "x")
    ax.set_xlabel(f"mclust's sign, higher is better (log-likelihood of the rows in {units})")
    ax.set_title(
        f"BIC of one fit: {_model_title(model)}; gaussmix select compares fits",
        fontsize=10,
    )
    ax.grid(alpha=0.3, axis="x")


def check_plot(kind: str, plot_columns: str | Sequence[str] | None, columns: Sequence[str]) -> None:
    """A ValueError, in the command line's words, for an unknown ``--plot-kind`` or a
    ``--plot-columns`` name that is not a fitted column (checked before anything is fitted)."""
    if kind not in PLOT_KINDS:
        raise GaussmixError(f"unknown --plot-kind {kind!r}; use one of {', '.join(PLOT_KINDS)}")
    if plot_columns is not None:
        plot_column_indices(columns, plot_columns)


def plot_figure(
    kind: str,
    X: NDArray[np.floating],
    model: GaussianMixture,
    columns: Sequence[str],
    result: SelectionResult | None = None,
    plot_columns: str | Sequence[str] | None = None,
    units: str = DATA_UNITS,
) -> Figure:
    """The picture of ``--plot-kind`` for one fit (``result`` None) or a selection (``model``
    is then ``result.best``).

    Parameters
    ----------
    kind : one of ``PLOT_KINDS``
    X : (n_samples, D) array, the rows drawn (in the units the model was fitted in)
    model : the fitted mixture
    columns : D column names
    result : the selection, for ``select``'s pictures
    plot_columns : names of the columns to draw instead of the discriminant coordinates
    units : the units of the columns, "data units" or "standardised"
    """
    from matplotlib.figure import Figure

    check_plot(kind, plot_columns, columns)
    if kind == "classification":
        if result is not None:
            return selection_figure(X, result, columns, plot_columns, units)
        return fit_figure(X, model, columns, plot_columns, units)
    if kind == "uncertainty":
        return classification_figure(X, model, columns, plot_columns, units, True)
    if kind == "means":
        return means_figure(model, columns, units)
    if kind == "bic":
        if result is not None:
            return criterion_figure(result, units=units)
        fig = Figure(figsize=(8, 3.6), layout="constrained")
        draw_fit_bic(fig.subplots(), model, units)
        return fig
    if result is None:
        return loglik_figure({f"K={model.n_components}": model.lower_bounds_}, units)
    histories: dict[str, Sequence[float]] = {}
    for record in result.ranking()[:3]:
        fitted = result.models[(record.n_components, record.covariance_type)]
        if fitted is not None:
            histories[f"{record.model_name} ({record.covariance_type})"] = fitted.lower_bounds_
    return loglik_figure(histories, units)


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write the figure atomically in the format its suffix names (png, pdf, svg)."""
    kind = figure_format(path)
    with atomic_write(path) as f:
        fig.savefig(f, format=kind, dpi=dpi)
    return Path(path)
