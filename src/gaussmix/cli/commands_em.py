"""``gaussmix demo``, ``gaussmix fit`` and ``gaussmix predict``.

scikit-learn, matplotlib, rich and the EM engine are imported inside the commands, so that
``gaussmix --help`` and the commands that need none of them start fast.
"""

from __future__ import annotations

import csv
import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from numpy.typing import NDArray

from gaussmix.cli.app import UserError, app, on_closed_pipe, stderr_is_terminal
from gaussmix.cli.options import (
    DATA_HELP,
    Columns,
    Decimal,
    Drop,
    DropNa,
    NaValues,
    Sep,
    data_name,
    print_notes,
    read_options,
)
from gaussmix.plotting import PLOT_KINDS  # light: matplotlib is imported when drawing

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table as RichTable

    from gaussmix.data.files import ReadOptions
    from gaussmix.data.sources import DataSource
    from gaussmix.mixture import GaussianMixture

COVARIANCE_HELP = "full, diag, tied or spherical (mclust: VVV, VVI, EEE, VII)"
PRIOR_HELP = (
    "mclust: mclust's conjugate prior (MAP-EM, priorControl()'s defaults), which keeps "
    "components off degenerate covariances; BIC stays the log-likelihood's."
)
PriorOption = Annotated[str | None, typer.Option("--prior", help=PRIOR_HELP, metavar="mclust")]


def check_prior(prior: str | None) -> str | None:
    """The --prior value: None or 'mclust'; any other a user error."""
    if prior is None or prior.lower() == "mclust":
        return None if prior is None else "mclust"
    raise UserError(f"unknown prior {prior!r}; use --prior mclust, or leave --prior out")


PLOT_KIND_HELP = f"The picture --plot draws: {', '.join(PLOT_KINDS)}."
PLOT_COLUMNS_HELP = (
    "Columns --plot draws (comma-separated), instead of the directions that separate the "
    "components; the fit is unchanged."
)


def stdout() -> Console:
    """Results go to stdout; tables keep their width when piped to a file."""
    from rich.console import Console

    width = None if sys.stdout.isatty() else 120
    return on_closed_pipe(Console(file=sys.stdout, highlight=False, width=width))


def stderr() -> Console:
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False)


@contextmanager
def iteration_progress(description: str, total: int) -> Iterator[None]:
    """A progress bar over EM iterations on stderr, only when stderr is a terminal."""
    if not stderr_is_terminal():
        yield
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gaussmix.mixture import iteration_hook

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
    from rich.table import Table as RichTable

    from gaussmix.plotting import component_matrices

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
    from gaussmix.em import canonical_name

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
    from sklearn.exceptions import ConvergenceWarning

    from gaussmix.errors import DegenerateDataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.simplefilter("ignore", DegenerateDataWarning)  # said with names: warn_degenerate
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
    from rich.table import Table as RichTable

    from gaussmix.datasets import load_faithful
    from gaussmix.figures import figure_format
    from gaussmix.mixture import GaussianMixture
    from gaussmix.plotting import draw_classification, draw_lower_bounds, save_figure

    figure_format(out)
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


def load_rows(
    path: Path, options: ReadOptions, scale: bool, dask: bool = False
) -> tuple[NDArray[np.floating] | DataSource, list[str], dict[str, list[float]] | None]:
    """The rows of a data file (``gaussmix.data.files.open_data``: a source read block by block
    for .npy, Parquet and large text files; a directory or glob of Parquet files, or any
    Parquet with ``dask``, a source on the active Dask client), with the reader's notes shown
    on stderr."""
    from gaussmix.data.files import open_data

    loaded = open_data(path, options, scale, dask)
    print_notes(loaded.notes)
    return loaded.X, loaded.columns, loaded.scaling


def n_rows(X: NDArray[np.floating] | DataSource) -> int:
    return int(X.shape[0]) if isinstance(X, np.ndarray) else int(X.n_samples)


def check_rows(X: NDArray[np.floating] | DataSource, largest_k: int, path: Path) -> None:
    """Enough rows for the largest number of components (and at least two)."""
    n = n_rows(X)
    need = max(2, largest_k)
    if n < need:
        what = f"{largest_k} components need" if largest_k > 1 else "a fit needs"
        raise UserError(
            f"{data_name(path)} has {n} row{'s' if n != 1 else ''} of data; {what} at least "
            f"{need}" + ("; use fewer components" if largest_k > n >= 2 else "")
        )


def warn_degenerate(
    X: NDArray[np.floating] | DataSource, names: list[str], refuse_constant: bool = False
) -> None:
    """The words fit and select both use for constant and duplicated columns (in-memory data):
    a warning each; with ``refuse_constant`` (select, where no fit could be chosen) a constant
    column is the error instead."""
    from gaussmix.validation import degenerate_columns

    if not isinstance(X, np.ndarray):
        return
    messages = degenerate_columns(X, names)
    refused = [m for m in messages if refuse_constant and m.startswith("constant")]
    for message in messages:
        if message not in refused:
            sys.stderr.write(f"warning: {message}\n")
    if refused:
        raise UserError(f"no fit could be chosen: {refused[0]}")


def rows_to_draw(X: NDArray[np.floating] | DataSource, most: int = 20_000) -> NDArray[np.floating]:
    """The rows a picture shows: all of an array, an even sample of a file source; only rows
    with every value observed, with a note on stderr counting those left out."""
    if not isinstance(X, np.ndarray):
        step = max(1, X.n_samples // most)
        X = X.take(np.arange(0, X.n_samples, step))
    holes = np.isnan(X).any(axis=1)
    if holes.any():
        left = int(holes.sum())
        print_notes(
            [f"the picture leaves out {left} row{'s' if left != 1 else ''} with missing values"]
        )
        return np.asarray(X[~holes])
    return X


def model_for_rows(model_path: Path, options: ReadOptions) -> GaussianMixture:
    """A saved model for scoring a data file. Under the "fit" policy rows with missing values
    are scored by the marginal of their observed columns (``missing="em"`` at inference, exact
    for any fitted mixture, however it was fitted)."""
    from gaussmix.data.files import mixture_missing
    from gaussmix.mixture import GaussianMixture

    model = GaussianMixture.load(model_path)
    if mixture_missing(options.missing) == "em":
        model.set_params(missing="em")
    return model


def units_of(scaling: dict[str, list[float]] | None) -> str:
    """What the numbers of a fit's JSON are in: the data's units, or standardised ones."""
    if scaling is None:
        return "data"
    return "standardised: x' = (x - scaling.center) / scaling.scale, log-likelihood of x'"


# The command line's fitting defaults, shared by fit and select: several initialisations and a
# tolerance tight enough to leave the plateaus that scikit-learn's library defaults (n_init=1,
# tol=1e-3, max_iter=100) stop on (Old Faithful, tied, K=3: -1140.5 there, -1126.3 here).
N_INIT, TOL, MAX_ITER, SEED = 5, 1e-5, 1000, 0


@app.command()
def fit(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help=DATA_HELP)],
    k: Annotated[int, typer.Option("-k", "--components", min=1, help="Number of components.")],
    covariance: Annotated[str, typer.Option("--covariance", "-c", help=COVARIANCE_HELP)] = "full",
    n_init: Annotated[
        int, typer.Option("--n-init", min=1, help="Initialisations (select's default).")
    ] = N_INIT,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = SEED,
    max_iter: Annotated[int, typer.Option("--max-iter", min=0)] = MAX_ITER,
    tol: Annotated[
        float,
        typer.Option(
            "--tol",
            min=0.0,
            help="Stop when the log-likelihood per row gains less (select's "
            "default; the library's is scikit-learn's 1e-3).",
        ),
    ] = TOL,
    reg_covar: Annotated[float, typer.Option("--reg-covar", min=0.0)] = 1e-6,
    columns: Columns = None,
    drop: Drop = None,
    sep: Sep = None,
    decimal: Decimal = None,
    na_values: NaValues = None,
    dropna: DropNa = False,
    scale: Annotated[bool, typer.Option("--scale", help="Standardise columns first.")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Save the model (.npz).")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a picture (.png, .pdf or .svg).")
    ] = None,
    plot_kind: Annotated[str, typer.Option("--plot-kind", help=PLOT_KIND_HELP)] = "classification",
    plot_columns: Annotated[
        str | None, typer.Option("--plot-columns", help=PLOT_COLUMNS_HELP)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the fit as JSON.")] = False,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help=SCHEDULER_HELP, metavar="ADDRESS")
    ] = None,
    online: Annotated[bool, typer.Option("--online", help="Stepwise EM over batches.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Batch rows.")] = 10_000,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes over the data.")] = 1,
    prior: PriorOption = None,
) -> None:
    """Fit a Gaussian mixture to a data file (or a directory or glob of Parquet files).

    The defaults are select's (5 initialisations, tol 1e-5, up to 1000 iterations, seed 0),
    not scikit-learn's looser library defaults, so that a fit leaves the plateaus EM can stall on.
    """
    from gaussmix.data.files import mixture_missing
    from gaussmix.em import canonical_name
    from gaussmix.figures import figure_format
    from gaussmix.mixture import GaussianMixture

    covariance_type = canonical_name(covariance)
    prior = check_prior(prior)
    if plot is not None:
        figure_format(plot)
    options = read_options(columns, drop, sep, decimal, na_values, dropna)
    ctx.with_resource(dask_if_asked(file, scheduler, options))
    X, names, scaling = load_rows(file, options, scale, dask=scheduler is not None)
    check_rows(X, k, file)
    if plot is not None:
        from gaussmix.plotting import check_plot

        check_plot(plot_kind, plot_columns, names)
    warn_degenerate(X, names)
    model = GaussianMixture(
        k,
        covariance_type=covariance_type,
        n_init=n_init,
        random_state=seed,
        max_iter=max_iter,
        tol=tol,
        reg_covar=reg_covar,
        missing=mixture_missing(options.missing),
        prior=prior,
    )
    if online:
        _fit_online(model, X, batch_size, epochs)
        messages: list[str] = []
    else:
        with iteration_progress(f"fitting K={k}", max_iter):
            messages = _fit_quietly(model, X)
    for message in messages:
        sys.stderr.write(f"warning: {message}\n")
    result = summary(model) | {"columns": names, "scaling": scaling, "units": units_of(scaling)}
    if out is not None:
        model.save(out, columns=names, scaling=scaling)
    if plot is not None:
        from gaussmix.plotting import DATA_UNITS, STANDARDISED, plot_figure, save_figure

        units = STANDARDISED if scaling else DATA_UNITS
        picture = plot_figure(plot_kind, rows_to_draw(X), model, names, None, plot_columns, units)
        save_figure(picture, plot)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    console = stdout()
    units = " (standardised columns: means and sd in sd units)" if scaling else ""
    of_what = "log-likelihood of the standardised data" if scaling else "log-likelihood"
    with_prior = ", MAP with mclust's prior" if model.prior is not None else ""
    console.print(
        components_table(
            model,
            names,
            f"{k} components ({result['covariance_type']}), {result['n_samples']} rows"
            f"{with_prior}: "
            f"{of_what} {result['log_likelihood']:.3f}, BIC {result['bic']:.3f}, "
            f"AIC {result['aic']:.3f}{units}",
        )
    )
    console.print(f"{model.n_iter_} iterations, converged: {model.converged_}")
    for path in (out, plot):
        if path is not None:
            console.print(f"wrote {path}")


SCHEDULER_HELP = (
    "Run on the Dask scheduler at ADDRESS (tcp://host:8786); a directory or glob of Parquet "
    "files without it runs on a local Dask cluster of this machine's cores."
)


@contextmanager
def dask_if_asked(file: Path, scheduler: str | None, options: ReadOptions) -> Iterator[None]:
    """A Dask client for fit and select when the data are a Parquet dataset or --scheduler is
    given."""
    from gaussmix.data.dask_source import is_dataset_path
    from gaussmix.data.files import dataset_columns

    if scheduler is None and not is_dataset_path(file):
        yield
        return
    # what is wrong with the path or the files' columns, before a cluster starts
    dataset_columns(file, options)
    from gaussmix.em.dask_workers import dask_client

    with dask_client(scheduler):
        yield


def _fit_online(model: GaussianMixture, X: Any, batch_size: int, epochs: int) -> None:
    """``partial_fit`` over batches of ``batch_size`` rows, ``epochs`` times, then the pass
    that gives the log-likelihood of the whole data (as ``fit``'s last pass does)."""
    from gaussmix.data.sources import ArraySource

    source = ArraySource(np.asarray(X)) if isinstance(X, np.ndarray) else X
    for _ in range(epochs):
        start = 0
        for block, weights in source.chunks(batch_size):
            holed = np.isnan(block).any(axis=1)
            if holed.any():  # stepwise EM has no missing-value E-step: said before a step
                row = start + int(np.argmax(holed)) + 1
                raise UserError(
                    f"--online fits complete rows only, and row {row} "
                    "has a missing value; --dropna leaves such rows out, or fit without --online "
                    "(missing values are then integrated out)"
                )
            model.partial_fit(block, sample_weight=weights)
            start += len(block)
    model.log_likelihood_ = float(np.sum(model.score_samples(source)))
    model.n_samples_fit_ = source.n_samples


def rows_for_model(
    path: Path,
    options: ReadOptions,
    model_path: Path,
    fit_meta: dict[str, Any],
) -> NDArray[np.floating] | DataSource:
    """The model's columns of a data file (streamed when possible), standardised as the
    training data were. Without --columns, the model's column names pick the file's columns
    when the file has them all; otherwise the widths must agree, and an error names both sides."""
    from dataclasses import replace

    fitted: list[str] | None = fit_meta.get("columns")
    n_features = int(fit_meta["n_features"])
    scaling = fit_meta.get("scaling")
    X, names, _ = load_rows(path, options, scale=False)
    if not options.columns and fitted and names != fitted and set(fitted) <= set(names):
        if isinstance(X, np.ndarray):
            X = np.asarray(X[:, [names.index(c) for c in fitted]])
        else:
            X, names, _ = load_rows(path, replace(options, columns=tuple(fitted)), scale=False)
        names = list(fitted)
    if len(names) != n_features:
        model_side = f"{n_features} columns" + (f" ({', '.join(fitted)})" if fitted else "")
        raise UserError(
            f"{model_path.name} was fitted on {model_side}; {data_name(path)} has "
            f"{len(names)} numeric columns ({', '.join(names)}): choose the model's with "
            "--columns"
        )
    if not scaling:
        return X
    from gaussmix.data.dask_source import DaskSource, standardized

    if isinstance(X, DaskSource):  # rows on Dask stay there: scaled lazily, chunk by chunk
        return standardized(X, np.asarray(scaling["center"]), np.asarray(scaling["scale"]))
    rows = X if isinstance(X, np.ndarray) else X.take(np.arange(X.n_samples))
    return (np.asarray(rows, dtype=np.float64) - scaling["center"]) / scaling["scale"]


@app.command()
def predict(
    model_path: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A model saved by fit --out.")
    ],
    file: Annotated[Path, typer.Argument(help="Data with the model's columns, or - for stdin.")],
    proba: Annotated[
        bool, typer.Option("--proba", help="Print probabilities per component.")
    ] = False,
    columns: Columns = None,
    drop: Drop = None,
    sep: Sep = None,
    decimal: Decimal = None,
    na_values: NaValues = None,
    dropna: DropNa = False,
) -> None:
    """Write each row's component (or probabilities) as CSV to stdout.

    A closed pipe (| head) ends quietly with exit code 0.
    """
    from gaussmix.io import read_metadata

    meta, _ = read_metadata(model_path)
    options = read_options(columns, drop, sep, decimal, na_values, dropna)
    model = model_for_rows(model_path, options)
    X = rows_for_model(file, options, model_path, meta["fit"])
    writer = csv.writer(sys.stdout, lineterminator="\n")
    if proba:
        writer.writerow([f"p{k}" for k in range(model.n_components)])
        for block in in_row_chunks(model.predict_proba(X)):
            writer.writerows([f"{p:.6g}" for p in row] for row in block)
    else:
        writer.writerow(["component"])
        for block in in_row_chunks(model.predict(X)):
            writer.writerows([int(label)] for label in block)


def in_row_chunks(values: Any) -> Iterator[NDArray[Any]]:
    """Per-row outputs brought here in order: an array as it is, a lazy dask array (rows on
    Dask) one row chunk at a time, each computed once (not row by row)."""
    if isinstance(values, np.ndarray):
        yield values
        return
    for i in range(values.numblocks[0]):
        yield np.asarray(values.blocks[i].compute())
