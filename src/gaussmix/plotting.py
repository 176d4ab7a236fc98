"""Pictures of fitted mixtures (matplotlib, object API only: no pyplot state, no display needed).

- ``draw_classification``: 2-D data coloured by component, 1- and 2-sigma ellipses, and
  contours of the mixture density;
- ``draw_pairs``: for more features, a pairs plot of the first few with projected ellipses;
- ``draw_lower_bounds``: the mean log-likelihood per EM iteration;
- ``save_figure``: writes a PNG atomically (a temporary file renamed over the target).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse
from numpy.typing import NDArray

from gaussmix.atomic import atomic_write
from gaussmix.em import get_covariance

if TYPE_CHECKING:
    from gaussmix.mixture import GaussianMixture

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
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("mean log-likelihood per row")
    ax.set_title("log-likelihood per iteration")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def pairs_figure(
    X: NDArray[np.floating], model: GaussianMixture, columns: Sequence[str], max_features: int = 4
) -> Figure:
    """Pairs plot of the first ``max_features`` features: histograms on the diagonal, points
    coloured by component with the projected 1- and 2-sigma ellipses elsewhere."""
    D = min(X.shape[1], max_features)
    fig = Figure(figsize=(2.8 * D, 2.8 * D), layout="constrained")
    axes = fig.subplots(D, D, squeeze=False)
    labels = model.predict(X)
    matrices = component_matrices(model)
    for a in range(D):
        for b in range(D):
            ax = axes[a, b]
            if a == b:
                for k in range(model.n_components):
                    ax.hist(X[labels == k, a], bins=30, color=color(k), alpha=0.55)
            else:
                for k in range(model.n_components):
                    rows = labels == k
                    ax.scatter(X[rows, b], X[rows, a], s=5, color=color(k), alpha=0.5, linewidths=0)
                    sub = matrices[k][np.ix_([b, a], [b, a])]
                    _ellipses(ax, model.means_[k, [b, a]], sub, color(k))
            if a == D - 1:
                ax.set_xlabel(columns[b])
            if b == 0:
                ax.set_ylabel(columns[a])
    fig.suptitle(
        f"{model.n_components} components, {model.covariance_type} covariance "
        f"(first {D} of {X.shape[1]} features)"
    )
    return fig


def fit_figure(X: NDArray[np.floating], model: GaussianMixture, columns: Sequence[str]) -> Figure:
    """The picture of one fit: classification (or pairs) plot and the log-likelihood curve."""
    if X.shape[1] > 2:
        return pairs_figure(X, model, columns)
    fig = Figure(figsize=(12, 5), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.3, 1])
    if X.shape[1] == 2:
        draw_classification(
            left,
            X,
            model,
            columns,
            title=f"{model.n_components} components ({model.covariance_type})",
        )
    else:
        labels = model.predict(X)
        for k in range(model.n_components):
            left.hist(X[labels == k, 0], bins=40, color=color(k), alpha=0.6, label=f"component {k}")
        left.set_xlabel(columns[0])
        left.legend(fontsize=8)
    draw_lower_bounds(right, {f"K={model.n_components}": model.lower_bounds_})
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write the figure as PNG atomically; returns the path."""
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=dpi)
    return Path(path)
