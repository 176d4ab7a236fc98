"""``gaussmix demo``, ``gaussmix fit`` and ``gaussmix predict``."""

from __future__ import annotations

import csv
import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable
from sklearn.exceptions import ConvergenceWarning

from gaussmix.cli.app import app, stderr_is_terminal
from gaussmix.data.files import read_table, select_columns, standardize
from gaussmix.data.sources import DataSource, ParquetSource, open_source
from gaussmix.datasets import load_faithful
from gaussmix.em import canonical_name
from gaussmix.io import read_metadata
from gaussmix.mixture import GaussianMixture, iteration_hook
from gaussmix.plotting import (
    DATA_UNITS,
    PLOT_KINDS,
    STANDARDISED,
    check_plot,
    component_matrices,
    draw_classification,
    draw_lower_bounds,
    plot_figure,
    save_figure,
)

COVARIANCE_HELP = "full, diag, tied or spherical (mclust: VVV, VVI, EEE, VII)"
PLOT_KIND_HELP = f"The picture --plot draws: {', '.join(PLOT_KINDS)}."
PLOT_COLUMNS_HELP = (
    "Columns --plot draws (comma-separated), instead of the directions that separate the "
    "components; the fit is unchanged."
)


def stdout() -> Console:
    """Results go to stdout; tables keep their width when piped to a file."""
    width = None if sys.stdout.isatty() else 120
    return Console(file=sys.stdout, highlight=False, width=width)


def stderr() -> Console:
    return Console(file=sys.stderr, highlight=False)


@contextmanager
def iteration_progress(description: str, total: int) -> Iterator[None]:
    """A progress bar over EM iterations on stderr, only when stderr is a terminal."""
    if not stderr_is_terminal():
        yield
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[ll]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr(), transient=True) as progress:
        task = progress.add_task(description, total=total, ll="")

        def hook(n_iter: int, lower_bound: float) -> None:
            progress.update(task, completed=n_iter, ll=f"log-lik/row {lower_bound:.6f}")

        with iteration_hook(hook):
            yield


# a mean and a standard deviation column per feature: beyond this many features the table
# would not fit a terminal, so it shows the first ones and says where the rest are
SHOWN_FEATURES = 3


def components_table(model: GaussianMixture, columns: list[str], title: str) -> RichTable:
    """One row per component: weight, mean and standard deviation per feature (the first
    ``SHOWN_FEATURES`` of them), and for two features their correlation."""
    if len(columns) > SHOWN_FEATURES:
        title += (
            f" (the first {SHOWN_FEATURES} of {len(columns)} features; "
            "--json or --out has them all)"
        )
        columns = columns[:SHOWN_FEATURES]
    table = RichTable(title=title, title_justify="left")
    table.add_column("k", justify="right")
    table.add_column("weight", justify="right")
    for name in columns:
        table.add_column(f"mean {name}", justify="right")
    for name in columns:
        table.add_column(f"sd {name}", justify="right")
    two = len(columns) == 2
    if two:
        table.add_column("corr", justify="right")
    matrices = component_matrices(model)
    for k in range(model.n_components):
        sd = np.sqrt(np.diag(matrices[k]))
        cells = [str(k), f"{model.weights_[k]:.3f}"]
        shown = len(columns)
        cells += [f"{v:.4g}" for v in model.means_[k, :shown]] + [f"{v:.4g}" for v in sd[:shown]]
        if two:
            cells.append(f"{matrices[k][0, 1] / (sd[0] * sd[1]):+.3f}")
        table.add_row(*cells)
    return table


def summary(model: GaussianMixture) -> dict[str, Any]:
    """The fitted parameters and criteria as plain JSON-ready values; BIC and AIC from the
    log-likelihood of the fit's final pass (no second look at the data)."""
    log_lik = float(model.log_likelihood_)
    n, p = model.n_samples_fit_, model._n_parameters()
    return {
        "n_components": model.n_components,
        "covariance_type": canonical_name(model.covariance_type),
        "n_samples": int(n),
        "weights": model.weights_.tolist(),
        "means": model.means_.tolist(),
        "covariances": model.covariances_.tolist(),
        "log_likelihood": log_lik,
        "lower_bounds": list(model.lower_bounds_),
        "converged": bool(model.converged_),
        "n_iter": int(model.n_iter_),
        "n_parameters": int(p),
        "bic": -2 * log_lik + p * float(np.log(n)),
        "aic": -2 * log_lik + 2 * p,
    }


def _fit_quietly(model: GaussianMixture, X: Any) -> list[str]:
    """Fit, returning the warnings' messages (shown as one line each, not as tracebacks)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(X)
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def shown_iterations(n_iter: int, head: int = 6, rows: int = 14) -> list[int]:
    """The first few iterations, then evenly spaced ones, always the last (0-based)."""
    if n_iter <= rows:
        return list(range(n_iter))
    tail = np.linspace(head, n_iter - 1, rows - head).round().astype(int)
    return sorted(set(range(head)) | {int(i) for i in tail})


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the picture.")] = Path(
        "gaussmix-demo.png"
    ),
) -> None:
    """Fit K=2 and K=3 full-covariance mixtures to the bundled Old Faithful data."""
    data = load_faithful()
    console = stdout()
    console.print(
        f"Old Faithful: {data.X.shape[0]} eruptions, columns {', '.join(data.columns)}. "
        "EM with full covariances, K = 2 and 3."
    )
    models: dict[int, GaussianMixture] = {}
    for K in (2, 3):
        model = GaussianMixture(K, covariance_type="full", tol=1e-8, max_iter=500, random_state=0)
        with iteration_progress(f"K={K}", model.max_iter):
            messages = _fit_quietly(model, data.X)
        for message in messages:
            stderr().print(f"warning: {message}")
        models[K] = model
        n = data.X.shape[0]
        console.print()
        console.print(
            components_table(
                model,
                data.columns,
                f"K={K}: log-likelihood {model.score(data.X) * n:.2f}, BIC {model.bic(data.X):.2f}"
                f" ({model.n_iter_} iterations, converged: {model.converged_})",
            )
        )
    history = RichTable(title="mean log-likelihood per iteration", title_justify="left")
    history.add_column("iteration", justify="right")
    for K in models:
        history.add_column(f"K={K}", justify="right")
    longest = max(len(m.lower_bounds_) for m in models.values())
    last = {len(m.lower_bounds_) - 1 for m in models.values()}
    for it in sorted(set(shown_iterations(longest)) | last):
        row = [str(it + 1)]
        for model in models.values():
            row.append(f"{model.lower_bounds_[it]:.6f}" if it < len(model.lower_bounds_) else "")
        history.add_row(*row)
    console.print()
    console.print(history)

    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 5), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, (K, model) in zip(axes[:2], models.items(), strict=True):
        draw_classification(
            ax, data.X, model, data.columns, title=f"Old Faithful, K={K} full covariances"
        )
    draw_lower_bounds(axes[2], {f"K={K}": m.lower_bounds_ for K, m in models.items()})
    save_figure(fig, out)
    console.print(f"\nwrote {out}")


STREAMED = (".npy", ".parquet", ".pq")


def _load_data(
    path: Path, columns: str | None, scale: bool
) -> tuple[NDArray[np.floating] | DataSource, list[str], dict[str, list[float]] | None]:
    """The rows of a file: .npy and Parquet as a source read block by block on every pass
    (unless --scale needs them in memory), other files as an array."""
    names = [c.strip() for c in columns.split(",")] if columns else None
    if path.suffix.lower() in STREAMED and not scale:
        source = open_source(path, columns=names)
        if isinstance(source, ParquetSource):
            return source, list(source.columns), None
        return source, [f"x{i}" for i in range(source.n_features)], None
    table = read_table(path, names)
    X = table.X
    scaling = None
    if scale:
        X, center, spread = standardize(X)
        scaling = {"center": center.tolist(), "scale": spread.tolist()}
    return X, table.columns, scaling


def _rows_to_draw(X: NDArray[np.floating] | DataSource, most: int = 20_000) -> NDArray[np.floating]:
    """The rows a picture shows: all of an array, an even sample of a file source."""
    if isinstance(X, np.ndarray):
        return X
    step = max(1, X.n_samples // most)
    return X.take(np.arange(0, X.n_samples, step))


@app.command()
def fit(
    file: Annotated[
        Path, typer.Argument(help="Data: .csv/.tsv (header detected), .npy, .parquet.")
    ],
    k: Annotated[int, typer.Option("-k", "--components", min=1, help="Number of components.")],
    covariance: Annotated[str, typer.Option("--covariance", "-c", help=COVARIANCE_HELP)] = "full",
    n_init: Annotated[int, typer.Option("--n-init", min=1, help="Initialisations.")] = 1,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    max_iter: Annotated[int, typer.Option("--max-iter", min=0)] = 100,
    tol: Annotated[float, typer.Option("--tol", min=0.0)] = 1e-3,
    reg_covar: Annotated[float, typer.Option("--reg-covar", min=0.0)] = 1e-6,
    columns: Annotated[str | None, typer.Option("--columns", help="Comma-separated names.")] = None,
    scale: Annotated[bool, typer.Option("--scale", help="Standardise columns first.")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Save the model (.npz).")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG picture.")] = None,
    plot_kind: Annotated[str, typer.Option("--plot-kind", help=PLOT_KIND_HELP)] = "classification",
    plot_columns: Annotated[
        str | None, typer.Option("--plot-columns", help=PLOT_COLUMNS_HELP)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the fit as JSON.")] = False,
) -> None:
    """Fit a Gaussian mixture to a data file."""
    covariance_type = canonical_name(covariance)
    X, names, scaling = _load_data(file, columns, scale)
    if plot is not None:
        check_plot(plot_kind, plot_columns, names)
    model = GaussianMixture(
        k,
        covariance_type=covariance_type,
        n_init=n_init,
        random_state=seed,
        max_iter=max_iter,
        tol=tol,
        reg_covar=reg_covar,
    )
    with iteration_progress(f"fitting K={k}", max_iter):
        messages = _fit_quietly(model, X)
    for message in messages:
        stderr().print(f"warning: {message}")
    result = summary(model) | {"columns": names, "scaling": scaling}
    if out is not None:
        model.save(out, columns=names, scaling=scaling)
    if plot is not None:
        units = STANDARDISED if scaling else DATA_UNITS
        picture = plot_figure(plot_kind, _rows_to_draw(X), model, names, None, plot_columns, units)
        save_figure(picture, plot)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    console = stdout()
    console.print(
        components_table(
            model,
            names,
            f"{k} components ({result['covariance_type']}), {result['n_samples']} rows: "
            f"log-likelihood {result['log_likelihood']:.3f}, BIC {result['bic']:.3f}, "
            f"AIC {result['aic']:.3f}",
        )
    )
    console.print(f"{model.n_iter_} iterations, converged: {model.converged_}")
    for path in (out, plot):
        if path is not None:
            console.print(f"wrote {path}")


def _rows_to_predict(
    path: Path, fitted_columns: list[str] | None, scaling: dict[str, list[float]] | None
) -> NDArray[np.floating] | DataSource:
    """The model's columns of a data file (streamed when possible), standardised as the
    training data were."""
    suffix = path.suffix.lower()
    if suffix in STREAMED and not scaling:
        if suffix == ".npy":
            return open_source(path)
        return ParquetSource.open(path, columns=fitted_columns or None)
    table = read_table(path)
    if fitted_columns and set(fitted_columns) <= set(table.columns):
        table = select_columns(table, fitted_columns)
    if not scaling:
        return table.X
    return (np.asarray(table.X, dtype=np.float64) - scaling["center"]) / scaling["scale"]


@app.command()
def predict(
    model_path: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A model saved by fit --out.")
    ],
    file: Annotated[Path, typer.Argument(help="Data with the model's columns.")],
    proba: Annotated[
        bool, typer.Option("--proba", help="Print probabilities per component.")
    ] = False,
) -> None:
    """Write each row's component (or probabilities) as CSV to stdout."""
    model = GaussianMixture.load(model_path)
    meta, _ = read_metadata(model_path)
    fitted_columns = meta["fit"].get("columns")
    X = _rows_to_predict(file, fitted_columns, meta["fit"].get("scaling"))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    if proba:
        writer.writerow([f"p{k}" for k in range(model.n_components)])
        for row in model.predict_proba(X):
            writer.writerow([f"{p:.6g}" for p in row])
    else:
        writer.writerow(["component"])
        writer.writerows([int(label)] for label in model.predict(X))
