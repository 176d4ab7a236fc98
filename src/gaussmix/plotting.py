"""Pictures of fitted mixtures (matplotlib, object API only: no pyplot state, no display needed).

- ``draw_classification``: 2-D data coloured by component, 1- and 2-sigma ellipses, and
  contours of the mixture density;
- ``draw_pairs``: for more features, a pairs plot of the first few with projected ellipses;
- ``draw_lower_bounds``: the mean log-likelihood per EM iteration;
- ``draw_histogram``: 1-D data, one histogram with the weighted component densities;
- ``draw_criterion_curves``: BIC (or ICL, AIC) against K, one curve per covariance type, as
  mclust draws it, with the chosen model ringed and degenerate fits crossed out;
- ``selection_figure``, ``criterion_figure``, ``classification_figure``: whole pictures;
- ``save_figure``: writes a PNG atomically (a temporary file renamed over the target).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray

from gaussmix.atomic import atomic_write
from gaussmix.em import get_covariance

if TYPE_CHECKING:
    from gaussmix.mixture import GaussianMixture
    from gaussmix.selection import SelectionResult

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
    cov = get_covariance(model.covariance_type)
    K, D = model.means_.shape
    return np.asarray(cov.per_component(model.covariances_, K, D), dtype=np.float64)


def color(k: int) -> str:
    return COLORS[k % len(COLORS)]


def _ellipses(ax: Axes, mean: NDArray[np.float64], cov2: NDArray[np.float64], c: str) -> None:
    """1- and 2-sigma ellipses of a 2x2 covariance: semi-axes r * sqrt(eigenvalue)."""
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


def draw_classification(
    ax: Axes,
    X: NDArray[np.floating],
    model: GaussianMixture,
    columns: Sequence[str] = ("x0", "x1"),
    dims: tuple[int, int] = (0, 1),
    contours: bool = True,
    title: str | None = None,
) -> None:
    """Scatter of two features coloured by component, with ellipses and density contours."""
    i, j = dims
    labels = model.predict(X)
    matrices = component_matrices(model)
    for k in range(model.n_components):
        rows = labels == k
        ax.scatter(
            X[rows, i],
            X[rows, j],
            s=12,
            color=color(k),
            alpha=0.65,
            linewidths=0,
            label=f"component {k} ({model.weights_[k]:.0%})",
        )
    if contours and X.shape[1] == 2:
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
    for k in range(model.n_components):
        sub = matrices[k][np.ix_([i, j], [i, j])]
        _ellipses(ax, model.means_[k, [i, j]], sub, color(k))
        ax.plot(*model.means_[k, [i, j]], marker="x", color="black", markersize=7)
    ax.set_xlabel(columns[i])
    ax.set_ylabel(columns[j])
    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="0.3", linestyle="-", label="1-sigma ellipse"),
        Line2D([], [], color="0.3", linestyle="--", label="2-sigma ellipse"),
    ]
    if contours and X.shape[1] == 2:
        handles.append(Line2D([], [], color="0.55", linewidth=0.7, label="mixture density"))
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85)
    if title:
        ax.set_title(title)


def draw_lower_bounds(ax: Axes, histories: dict[str, Sequence[float]]) -> None:
    """Mean log-likelihood per EM iteration, one line per fit."""
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
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("mean log-likelihood per row")
    ax.set_title("log-likelihood per iteration")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _limits(values: NDArray[np.floating], pad: float = 0.06) -> tuple[float, float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    return lo - pad * span, hi + pad * span


def _component_handles(model: GaussianMixture) -> list[Line2D]:
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


def draw_pairs(
    container: Figure | SubFigure,
    X: NDArray[np.floating],
    model: GaussianMixture,
    columns: Sequence[str],
    max_features: int = 4,
    title: str | None = None,
) -> None:
    """Pairs plot of the first ``max_features`` features into a figure or subfigure: stacked
    histograms by component on the diagonal (one set of bins), points coloured by component
    with the projected 1- and 2-sigma ellipses elsewhere; rows and columns share their axes."""
    D = min(X.shape[1], max_features)
    axes = container.subplots(D, D, squeeze=False)
    labels = model.predict(X)
    matrices = component_matrices(model)
    limits = [_limits(X[:, d]) for d in range(D)]
    K = model.n_components
    for a in range(D):
        for b in range(D):
            ax = axes[a, b]
            ax.set_xlim(limits[b])
            ax.set_ylim(limits[a])
            if a == b:
                # the counts get their own (hidden) scale, so that the left axis of the
                # first row still reads in units of its feature, like the rest of the row
                hist_ax = ax.twinx()
                bins = np.histogram_bin_edges(X[:, a], bins=min(40, max(10, len(X) // 15)))
                hist_ax.hist(
                    [X[labels == k, a] for k in range(K)],
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
                    columns[a],
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
                for k in range(K):
                    rows = labels == k
                    ax.scatter(X[rows, b], X[rows, a], s=5, color=color(k), alpha=0.5, linewidths=0)
                    sub = matrices[k][np.ix_([b, a], [b, a])]
                    _ellipses(ax, model.means_[k, [b, a]], sub, color(k))
                    ax.plot(*model.means_[k, [b, a]], marker="x", color="black", markersize=5)
            if a == D - 1:
                ax.set_xlabel(columns[b])
            else:
                ax.tick_params(labelbottom=False)
            if b == 0:
                ax.set_ylabel(columns[a])
            else:
                ax.tick_params(labelleft=False)
    handles: list[Line2D] = _component_handles(model)
    handles += [
        Line2D([], [], color="0.3", linestyle="-", label="1-sigma"),
        Line2D([], [], color="0.3", linestyle="--", label="2-sigma"),
    ]
    container.legend(
        handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=8
    )
    shown = f"first {D} of {X.shape[1]} features" if X.shape[1] > D else f"{D} features"
    container.suptitle(
        title or f"{K} components, {_type_label(model.covariance_type)} covariance ({shown})"
    )


def pairs_figure(
    X: NDArray[np.floating], model: GaussianMixture, columns: Sequence[str], max_features: int = 4
) -> Figure:
    """Pairs plot of the first ``max_features`` features: histograms on the diagonal, points
    coloured by component with the projected 1- and 2-sigma ellipses elsewhere."""
    D = min(X.shape[1], max_features)
    fig = Figure(figsize=(2.6 * D + 0.6, 2.6 * D + 0.8), layout="constrained")
    draw_pairs(fig, X, model, columns, max_features)
    return fig


def draw_histogram(
    ax: Axes, X: NDArray[np.floating], model: GaussianMixture, column: str = "x0"
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
    ax.set_xlabel(column)
    ax.set_ylabel("density")
    ax.legend(fontsize=8, framealpha=0.85)


def _two_subfigures(fig: Figure, width_ratios: list[float]) -> tuple[SubFigure, SubFigure]:
    """Two side-by-side subfigures of ``fig``."""
    subfigures = fig.subfigures(1, 2, width_ratios=width_ratios, squeeze=False)
    return subfigures[0, 0], subfigures[0, 1]


def _type_label(covariance_type: str) -> str:
    cov = get_covariance(covariance_type)
    return f"{cov.name} ({cov.mclust})"


def fit_figure(X: NDArray[np.floating], model: GaussianMixture, columns: Sequence[str]) -> Figure:
    """The picture of one fit: the classification plot (2-D), a pairs plot (more features) or
    a histogram with the component densities (1-D), beside the log-likelihood per iteration."""
    K = model.n_components
    history: dict[str, Sequence[float]] = {f"K={K}": model.lower_bounds_}
    if X.shape[1] > 2:
        D = min(X.shape[1], 4)
        side = 2.6 * D + 0.8
        fig = Figure(figsize=(side + 5.0, side), layout="constrained")
        left, right = _two_subfigures(fig, [side, 5.0])
        draw_pairs(left, X, model, columns)
        top, _ = right.subplots(2, 1, height_ratios=[1, 1])
        _.set_axis_off()
        draw_lower_bounds(top, history)
        return fig
    fig = Figure(figsize=(12, 5), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.3, 1])
    title = f"{K} components, {_type_label(model.covariance_type)} covariance"
    if X.shape[1] == 2:
        draw_classification(left, X, model, columns, title=title)
    else:
        draw_histogram(left, X, model, columns[0])
        left.set_title(title)
    draw_lower_bounds(right, history)
    return fig


# mclust's plot symbols and colours per model, in the order of the default grid
_TYPE_STYLE = {
    "spherical": ("o", "#1f77b4"),
    "diag": ("s", "#ff7f0e"),
    "tied": ("^", "#2ca02c"),
    "full": ("D", "#d62728"),
}
_CRITERION_TEXT = {
    "bic": ("BIC", "2 log L - p log N"),
    "icl": ("ICL", "2 log L - p log N - 2 EN"),
    "aic": ("AIC", "2 log L - 2 p"),
}


def _zoom(usable: NDArray[np.float64], excluded_values: NDArray[np.float64]) -> tuple[float, float]:
    """Vertical limits that keep the top of the curves readable: down to 2.5 times the distance
    from the best value to the median one (all of it when that is the whole range), up to the
    best plus a margin, or to a degenerate point if one lies at most the same distance above."""
    best = float(np.nanmax(usable))
    lowest = float(np.nanmin(usable))
    depth = 2.5 * (best - float(np.nanmedian(usable)))
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
    ax: Axes, result: SelectionResult, criterion: str | None = None, zoom: bool = True
) -> None:
    """The criterion against K, one curve per covariance type, in mclust's sign (higher is
    better, as mclust draws it). The chosen model is ringed and labelled; degenerate fits are
    drawn as crosses off their curve (shown, never chosen); failed fits are left out.

    With ``zoom``, the vertical axis shows the top of the curves, where the choice is made,
    rather than the whole range; points beyond it are marked by arrows at the edge.
    """
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
        marker, c = _TYPE_STYLE.get(covariance_type, ("o", color(j)))
        mclust = get_covariance(covariance_type).mclust
        ax.plot(
            ks,
            usable[:, j],
            marker=marker,
            color=c,
            markersize=6,
            linewidth=1.6,
            label=f"{mclust} ({covariance_type})",
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
        handles.append(Line2D([], [], linestyle="", label="entirely below: " + ", ".join(hidden)))
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        ncols=3,
        fontsize=8,
        frameon=False,
    )
    if zoom:
        ax.set_ylim(lower, upper)
    ax.set_xticks(ks)
    ax.set_xlim(ks.min() - 0.4, ks.max() + 0.4)
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{label} = {formula}  (higher is better)")
    ax.set_title(f"{label} of every fit, in mclust's sign")
    ax.grid(alpha=0.3)


def criterion_figure(result: SelectionResult, criterion: str | None = None) -> Figure:
    """The criterion curves alone (``draw_criterion_curves``)."""
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    draw_criterion_curves(fig.subplots(), result, criterion)
    return fig


def classification_figure(
    X: NDArray[np.floating], model: GaussianMixture, columns: Sequence[str]
) -> Figure:
    """The classification plot of a model alone: 2-D scatter with ellipses and density
    contours, a pairs plot for more features, a histogram with densities for one."""
    title = f"{model.n_components} components, {_type_label(model.covariance_type)} covariance"
    if X.shape[1] > 2:
        return pairs_figure(X, model, columns)
    fig = Figure(figsize=(8, 6), layout="constrained")
    ax = fig.subplots()
    if X.shape[1] == 2:
        draw_classification(ax, X, model, columns, title=title)
    else:
        draw_histogram(ax, X, model, columns[0])
        ax.set_title(title)
    return fig


def selection_figure(
    X: NDArray[np.floating], result: SelectionResult, columns: Sequence[str]
) -> Figure:
    """The picture of ``gaussmix select``: the criterion curves beside the chosen model's
    classification plot (2-D), pairs plot (more features) or histogram (1-D)."""
    model = result.best
    title = (
        f"chosen: {model.n_components} components, {_type_label(model.covariance_type)} covariance"
    )
    if X.shape[1] > 2:
        D = min(X.shape[1], 4)
        side = 2.6 * D + 0.8
        fig = Figure(figsize=(side + 8.0, side), layout="constrained")
        left, right = _two_subfigures(fig, [8.0, side])
        draw_criterion_curves(left.subplots(), result)
        draw_pairs(right, X, model, columns, title=title)
        return fig
    fig = Figure(figsize=(15, 6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.1])
    draw_criterion_curves(left, result)
    if X.shape[1] == 2:
        draw_classification(right, X, model, columns, title=title)
    else:
        draw_histogram(right, X, model, columns[0])
        right.set_title(title)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write the figure as PNG atomically; returns the path."""
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=dpi)
    return Path(path)
