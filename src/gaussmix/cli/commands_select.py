"""``gaussmix select``, ``gaussmix sample`` and ``gaussmix info``.

Heavy modules (scikit-learn, joblib, matplotlib, the EM engine) are imported inside the
commands; ``info`` without ``--data`` reads the model file and the covariance registry only.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from numpy.typing import NDArray

from gaussmix.cli.app import UserError, app, on_closed_pipe, stderr_is_terminal
from gaussmix.cli.commands_em import (
    MAX_ITER,
    PLOT_COLUMNS_HELP,
    PLOT_KIND_HELP,
    SCHEDULER_HELP,
    SEED,
    TOL,
    PriorOption,
    check_prior,
    check_rows,
    dask_if_asked,
    load_rows,
    model_for_rows,
    n_rows,
    rows_for_model,
    rows_to_draw,
    stderr,
    units_of,
    warn_degenerate,
)
from gaussmix.cli.options import (
    DATA_HELP,
    Columns,
    Decimal,
    Drop,
    DropNa,
    NaValues,
    Sep,
    data_name,
    read_options,
)

if TYPE_CHECKING:
    from rich.console import Console, Group
    from rich.table import Table as RichTable

    from gaussmix.selection import FitRecord, SelectionResult

# Most features shown in a parameter table; --json has them all.
TABLE_FEATURES = 6


def stdout() -> Console:
    """Results go to stdout; tables keep their width when piped, lines are never wrapped (so
    that they can be searched)."""
    from rich.console import Console

    width = None if sys.stdout.isatty() else 120
    console = Console(file=sys.stdout, highlight=False, width=width, soft_wrap=True)
    return on_closed_pipe(console)


_RANGE = re.compile(r"^\s*(\d+)\s*(?:\.\.|-)\s*(\d+)\s*$")


def parse_components(text: str) -> list[int]:
    """``-k`` values: '1..9' (inclusive), '3', '2,3,5' or a mix such as '1..4,8'."""
    ks: list[int] = []
    for part in text.split(","):
        match = _RANGE.match(part)
        if match:
            lo, hi = int(match[1]), int(match[2])
            if lo > hi:
                raise UserError(f"-k {text!r}: the range {part.strip()} is empty; write low..high")
            ks.extend(range(lo, hi + 1))
        elif part.strip().isdigit():
            ks.append(int(part))
        else:
            raise UserError(
                f"-k {text!r} is not a list of numbers of components; use e.g. 1..9, 3 or 2,3,5"
            )
    if not ks or min(ks) < 1:
        raise UserError(f"-k {text!r}: numbers of components must be >= 1")
    return sorted(set(ks))


def parse_covariances(text: str) -> list[str]:
    """``--covariance``: names separated by commas (scikit-learn's or mclust's); 'all' among
    them stands for mclust's fourteen models (E and V for one column), expanded by ``select``."""
    from gaussmix.em import canonical_name

    names = [
        "all" if name.strip().lower() == "all" else canonical_name(name.strip())
        for name in text.split(",")
        if name.strip()
    ]
    if not names:
        raise UserError("--covariance names no type; use all, or e.g. tied,full or EEE,VEV")
    return list(dict.fromkeys(names))


@contextmanager
def grid_progress(total: int) -> Iterator[Callable[[FitRecord], None] | None]:
    """A progress bar over the fits of the grid on stderr, only when stderr is a terminal."""
    if not stderr_is_terminal():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr(), transient=True) as progress:
        task = progress.add_task("fitting the grid", total=total, last="")

        def advance(record: FitRecord) -> None:
            progress.update(task, advance=1, last=f"done {record.model_name}")

        yield advance


def _cell(record: FitRecord, value: float, best: FitRecord | None) -> str:
    if record.error is not None:
        return "[dim]failed[/]"
    text = f"{value:.1f}"
    if record is best:
        return f"[bold reverse] {text} * [/]"
    if record.degenerate:
        return f"[dim]{text} ![/]"
    return text


def criterion_title(result: SelectionResult, mclust_sign: bool) -> str:
    """What the numbers of ``criterion_table`` are."""
    name = result.criterion.upper()
    if mclust_sign:
        return f"{name} in mclust's sign, higher is better (* chosen, ! degenerate)"
    return (
        f"{name}, lower is better; mclust reports -{name}, higher is better "
        "(* chosen, ! degenerate)"
    )


# select's starts: mclust's hierarchical one, a k-means one for the best cells (selection.select)
SELECT_N_INIT = 2

# columns per table block: mclust prints its fourteen models in two blocks of seven
_BLOCK_COLUMNS = 7


def criterion_table(result: SelectionResult, mclust_sign: bool) -> Group:
    """Rows K, columns covariance types by mclust's names, in blocks of at most seven columns;
    the chosen fit marked *, degenerate ones !."""
    from rich.console import Group
    from rich.table import Table as RichTable

    from gaussmix.em import get_covariance

    types = result.covariance_types
    best = getattr(result, "best_record", None)  # None when no fit could be chosen
    blocks = []
    for start in range(0, len(types), _BLOCK_COLUMNS):
        table = RichTable()
        table.add_column("K", justify="right")
        for covariance_type in types[start : start + _BLOCK_COLUMNS]:
            table.add_column(get_covariance(covariance_type).mclust_label, justify="right")
        for K in result.n_components:
            row = [str(K)]
            for covariance_type in types[start : start + _BLOCK_COLUMNS]:
                record = result.record(K, covariance_type)
                value = record.value(result.criterion)
                row.append(_cell(record, -value if mclust_sign else value, best))
            table.add_row(*row)
        blocks.append(table)
    return Group(*blocks)


def _describe_choice(result: SelectionResult) -> list[str]:
    from gaussmix.em.covariance import get_covariance

    b = result.best_record
    name = result.criterion.upper()
    lines = [
        f"{name} chooses {get_covariance(b.covariance_type).label} with K={b.n_components}: "
        f"log-likelihood {b.log_likelihood:.2f}, {b.n_parameters} free parameters",
        f"  BIC {b.bic:.2f}, ICL {b.icl:.2f}, AIC {b.aic:.2f} (lower is better); "
        f"mclust's sign: BIC {b.bic_mclust:.2f}, ICL {b.icl_mclust:.2f}",
        f"top 3 by {name}: "
        + ", ".join(
            f"{r.model_name} {r.value(result.criterion):.2f}" for r in result.ranking()[:3]
        ),
    ]
    degenerate = [r.model_name for r in result.records if r.degenerate and r.error is None]
    if degenerate:
        lines += [
            f"! degenerate: {', '.join(degenerate)}; shown, never chosen: a component has no "
            "spread in some direction",
            f"  (variance <= {result.singular_tol:g} x the data's once reg_covar is taken out)",
        ]
    failed = [r.model_name for r in result.records if r.error is not None]
    if failed:
        lines.append(f"failed fits: {', '.join(failed)}")
    return lines


@app.command("select")
def select_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help=DATA_HELP)],
    k: Annotated[
        str, typer.Option("-k", "--components", help="Numbers of components: 1..9, 3, 2,3,5.")
    ] = "1..9",
    covariance: Annotated[
        str,
        typer.Option(
            "--covariance",
            "-c",
            help="all (mclust's 14 models), or a list: EII,VII,EEI,VEI,EVI,VVI,EEE,VEE,EVE,"
            "VVE,EEV,VEV,EVV,VVV, or spherical,diag,tied,full (VII,VVI,EEE,VVV).",
        ),
    ] = "all",
    criterion: Annotated[
        str, typer.Option("--criterion", help="bic, icl or aic: what chooses the model.")
    ] = "bic",
    n_init: Annotated[
        int,
        typer.Option(
            "--n-init",
            min=1,
            help="Starts: mclust's hierarchical one, the rest k-means for the best 8 fits.",
        ),
    ] = SELECT_N_INIT,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same for every fit).")] = SEED,
    max_iter: Annotated[int, typer.Option("--max-iter", min=1)] = MAX_ITER,
    tol: Annotated[float, typer.Option("--tol", min=0.0)] = TOL,
    reg_covar: Annotated[
        float, typer.Option("--reg-covar", min=0.0, help="Added to every covariance (mclust: 0).")
    ] = 0.0,
    columns: Columns = None,
    drop: Drop = None,
    sep: Sep = None,
    decimal: Decimal = None,
    na_values: NaValues = None,
    dropna: DropNa = False,
    scale: Annotated[bool, typer.Option("--scale", help="Standardise columns first.")] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            help="Worker processes; -1: every core, 1: none. Default: none for small data.",
        ),
    ] = None,
    mclust_sign: Annotated[
        bool, typer.Option("--mclust-sign", help="Show the table in mclust's sign.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Save the chosen model (.npz).")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write a picture (.png, .pdf, .svg): criterion curves."),
    ] = None,
    plot_kind: Annotated[str, typer.Option("--plot-kind", help=PLOT_KIND_HELP)] = "classification",
    plot_columns: Annotated[
        str | None, typer.Option("--plot-columns", help=PLOT_COLUMNS_HELP)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every fit as JSON.")] = False,
    prior: PriorOption = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help=SCHEDULER_HELP, metavar="ADDRESS")
    ] = None,
) -> None:
    """Fit a grid of mixtures (K x covariance type) and choose one by BIC, ICL or AIC (on a
    Dask cluster for a directory or glob of Parquet files, the fits one after another)."""
    from rich.markup import escape
    from sklearn.exceptions import ConvergenceWarning

    from gaussmix.errors import DegenerateDataWarning
    from gaussmix.figures import figure_format
    from gaussmix.selection import CRITERIA, NoFitChosen
    from gaussmix.selection import select as select_models

    ks = parse_components(k)
    types = parse_covariances(covariance)
    prior = check_prior(prior)
    if criterion.lower() not in CRITERIA:
        raise UserError(f"unknown criterion {criterion!r}; use one of {', '.join(CRITERIA)}")
    if jobs == 0:
        raise UserError("--jobs 0 runs nothing; use 1 for serial, -1 for every core")
    if plot is not None:
        figure_format(plot)
    from gaussmix.data.files import mixture_missing

    options = read_options(columns, drop, sep, decimal, na_values, dropna)
    ctx.with_resource(dask_if_asked(file, scheduler, options))
    rows, names, scaling = load_rows(file, options, scale, dask=scheduler is not None)
    from gaussmix.data.dask_source import on_dask

    # rows on Dask stay there; other sources are read into memory
    in_place = isinstance(rows, np.ndarray) or on_dask(rows)
    X: Any = rows if in_place else rows.take(np.arange(n_rows(rows)))
    check_rows(X, ks[-1], file)
    if plot is not None:
        from gaussmix.plotting import check_plot

        check_plot(plot_kind, plot_columns, names)
    warn_degenerate(X, names, refuse_constant=True)
    no_choice: NoFitChosen | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.simplefilter("ignore", DegenerateDataWarning)  # said with names above
        with grid_progress(len(ks) * len(types)) as advance:
            try:
                result = select_models(
                    X,
                    ks,
                    types,
                    criterion.lower(),
                    n_init=n_init,
                    tol=tol,
                    max_iter=max_iter,
                    reg_covar=reg_covar,
                    missing=mixture_missing(options.missing),
                    random_state=seed,
                    n_jobs=jobs,
                    progress=advance,
                    prior=prior,
                )
            except NoFitChosen as exc:  # the whole table and JSON are shown, then exit 1
                no_choice, result = exc, exc.result
    for w in caught:
        if issubclass(w.category, UserWarning):
            sys.stderr.write(f"warning: {w.message}\n")
    if no_choice is not None:
        _show_grid(result, file, X, names, scaling, n_init, mclust_sign, as_json)
        flat = _flat_columns(result, X, names, reg_covar)
        where = f"; they have no spread in column(s) {', '.join(map(repr, flat))}" if flat else ""
        raise UserError(f"{no_choice}{where}")
    if out is not None:
        result.best.save(out, columns=names, scaling=scaling)
    if plot is not None:
        from gaussmix.plotting import DATA_UNITS, STANDARDISED, plot_figure, save_figure

        units = STANDARDISED if scaling else DATA_UNITS
        picture = plot_figure(
            plot_kind, rows_to_draw(X), result.best, names, result, plot_columns, units
        )
        save_figure(picture, plot)
    console = _show_grid(result, file, X, names, scaling, n_init, mclust_sign, as_json)
    if console is None:
        return
    for line in _describe_choice(result):
        console.print(escape(line))
    for path in (out, plot):
        if path is not None:
            console.print(escape(f"wrote {path}"))


def _flat_columns(result: SelectionResult, X: Any, names: list[str], reg_covar: float) -> list[str]:
    """The columns along which some component of a degenerate fit has (all but) no variance,
    by the selection's own rule applied per column (X: the rows, in memory or on Dask)."""
    from gaussmix.data.dask_source import column_moments, on_dask
    from gaussmix.plotting import component_matrices

    if on_dask(X):
        spread = column_moments(X.X)[1] ** 2  # on the cluster
    else:
        spread = np.var(np.asarray(X, dtype=np.float64), axis=0)
    flat: set[int] = set()
    for record in result.records:
        model = result.models.get((record.n_components, record.covariance_type))
        if model is None or not record.degenerate:
            continue
        variances = np.diagonal(component_matrices(model), axis1=1, axis2=2) - reg_covar
        flat |= set(np.flatnonzero((variances <= result.singular_tol * spread).any(axis=0)))
    return [names[j] for j in sorted(flat)]


def _show_grid(
    result: SelectionResult,
    file: Path,
    X: NDArray[np.floating],
    names: list[str],
    scaling: dict[str, list[float]] | None,
    n_init: int,
    mclust_sign: bool,
    as_json: bool,
) -> Console | None:
    """The JSON document (then None), or the heading and the criterion table (then the
    console, for the lines that follow)."""
    from rich.markup import escape

    if as_json:
        document = result.to_dict() | {
            "file": str(file),
            "columns": names,
            "scaling": scaling,
            "units": units_of(scaling),
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return None
    console = stdout()
    columns = "column" if len(names) == 1 else "columns"
    shape = f"{n_rows(X)} rows x {len(names)} {columns} ({', '.join(names)})"
    units = ", standardised (log-likelihoods and criteria of the standardised data)"
    fitted = [model for model in result.models.values() if model is not None]
    with_prior = ", MAP with mclust's prior" if fitted and fitted[0].prior is not None else ""
    console.print(
        escape(
            f"{data_name(file)}: {shape}{units if scaling else ''}; "
            f"{_describe_starts(result, n_init)}{with_prior}"
        )
    )
    console.print(criterion_title(result, mclust_sign))
    console.print(criterion_table(result, mclust_sign))
    return console


def _describe_starts(result: SelectionResult, n_init: int) -> str:
    """'126 fits (115 distinct), each from mclust's hierarchical start, the best 10 also
    from 2 k-means starts' (select's default starts, module docstring of selection.py)."""
    fits = f"{len(result.records)} fits"
    if result.n_distinct < len(result.records):
        fits += f" ({result.n_distinct} distinct)"
    text = f"{fits}, each from mclust's hierarchical start"
    from gaussmix.selection import MCLUST_STARTS, _contest_starts, _extra_starts

    refined = len(result.refined)
    further = _extra_starts(MCLUST_STARTS, n_init, 2, result.n_features)
    if refined and further:
        ((method, count),) = further
        if method == "quantile":  # one feature: mclust's own start there
            text += f", the best {refined} also from mclust's quantile start"
        else:
            starts = "start" if count == 1 else "starts"
            text += f", the best {refined} also from {count} k-means {starts}"
    if result.contested:  # select's contest, above mclust's subset size
        shape = (result.n_samples, result.n_features)
        more = sum(n for _, n in _contest_starts(MCLUST_STARTS, n_init, 2, *shape))
        text += (
            f", the best {len(result.contested)} also from {more} more k-means starts and "
            "from the other models' fits of their K, each run to convergence"
        )
    return text


def _data_units(
    weights: NDArray[np.float64],
    means: NDArray[np.float64],
    matrices: NDArray[np.float64],
    scaling: dict[str, list[float]] | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Means (K, D) and covariance matrices (K, D, D) in the units of the data, undoing a
    standardisation: mu = center + scale * mu', Sigma = diag(scale) Sigma' diag(scale)."""
    from gaussmix.data.files import unstandardize

    if not scaling:
        return means, matrices
    spread = np.asarray(scaling["scale"], dtype=np.float64)
    return unstandardize(means, scaling), matrices * np.outer(spread, spread)


def parameters_table(
    weights: NDArray[np.float64],
    means: NDArray[np.float64],
    matrices: NDArray[np.float64],
    columns: list[str],
    title: str,
) -> RichTable:
    """One row per component: weight, mean and standard deviation of the first few features,
    and for two features their correlation."""
    from rich.markup import escape
    from rich.table import Table as RichTable

    shown = columns[:TABLE_FEATURES]
    table = RichTable(title=title, title_justify="left")
    table.add_column("k", justify="right")
    table.add_column("weight", justify="right")
    for name in shown:
        table.add_column(escape(f"mean {name}"), justify="right")
    for name in shown:
        table.add_column(escape(f"sd {name}"), justify="right")
    two = len(columns) == 2
    if two:
        table.add_column("corr", justify="right")
    for k, weight in enumerate(weights):
        sd = np.sqrt(np.diag(matrices[k]))
        cells = [str(k), f"{weight:.3f}"]
        cells += [f"{v:.4g}" for v in means[k, : len(shown)]]
        cells += [f"{v:.4g}" for v in sd[: len(shown)]]
        if two:
            cells.append(f"{matrices[k][0, 1] / (sd[0] * sd[1]):+.3f}")
        table.add_row(*cells)
    return table


def _column_names(meta: dict[str, Any], n_features: int) -> list[str]:
    names = meta["fit"].get("columns")
    if names and len(names) == n_features:
        return [str(c) for c in names]
    return [f"x{i}" for i in range(n_features)]


@app.command()
def sample(
    model_path: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A model saved by fit or select --out.")
    ],
    n: Annotated[int, typer.Option("-n", "--n-samples", min=1, help="Rows to draw.")],
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    labels: Annotated[
        bool, typer.Option("--labels", help="Add a column with each row's component.")
    ] = False,
) -> None:
    """Draw rows from a saved model; CSV to stdout, in the data's units, in random order."""
    from gaussmix.data.files import unstandardize
    from gaussmix.io import read_metadata
    from gaussmix.mixture import GaussianMixture

    meta, _ = read_metadata(model_path)
    model = GaussianMixture.load(model_path)
    rng = np.random.RandomState(seed)
    model.random_state = rng
    X, y = model.sample(n)
    order = rng.permutation(n)  # sample() groups the rows by component
    X = unstandardize(X[order], meta["fit"].get("scaling"))
    y = y[order]
    writer = csv.writer(sys.stdout, lineterminator="\n")
    header = _column_names(meta, X.shape[1])
    writer.writerow([*header, "component"] if labels else header)
    for row, label in zip(X, y, strict=True):
        cells = [f"{v:.10g}" for v in row]
        writer.writerow([*cells, int(label)] if labels else cells)


def model_summary(meta: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> dict[str, Any]:
    """What ``info`` reports, as JSON-ready values, from a model file's metadata and arrays
    (no estimator is built); BIC and AIC from the saved log-likelihood and number of rows
    (None when the file does not record them)."""
    from gaussmix.em.covariance import get_covariance
    from gaussmix.em.params import Params

    fit = meta["fit"]
    cov = get_covariance(meta["params"]["covariance_type"])
    params = Params(
        arrays["weights"],
        arrays["means"],
        arrays["precisions_cholesky"],
        cov,
        arrays["covariances"],
    )
    n_samples = int(fit.get("n_samples") or 0)
    log_lik = fit.get("log_likelihood")
    p = int(params.n_parameters())
    known = n_samples > 0 and log_lik is not None and math.isfinite(float(log_lik))
    n_features = params.n_features
    return {
        "n_components": params.n_components,
        "covariance_type": cov.name,
        "mclust": cov.mclust,
        "n_samples": n_samples or None,
        "n_features": n_features,
        "columns": _column_names(meta, n_features),
        "scaling": fit.get("scaling"),
        "log_likelihood": float(log_lik) if known else None,
        "n_parameters": p,
        "bic": -2.0 * float(log_lik) + p * math.log(n_samples) if known else None,
        "aic": -2.0 * float(log_lik) + 2.0 * p if known else None,
        "converged": bool(fit["converged"]),
        "n_iter": int(fit["n_iter"]),
        "params": meta["params"],
        "weights": params.weights.tolist(),
        "means": params.means.tolist(),
        "covariances": params.covariances.tolist(),
    }


def _matrices(meta: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> NDArray[np.float64]:
    from gaussmix.em.covariance import get_covariance

    cov = get_covariance(meta["params"]["covariance_type"])
    K, D = arrays["means"].shape
    return np.asarray(cov.per_component(arrays["covariances"], K, D), dtype=np.float64)


def _score_data(
    model_path: Path, meta: dict[str, Any], file: Path, options_args: tuple[Any, ...]
) -> dict[str, Any]:
    """The log-likelihood of a data file under the model (the rows chosen as predict does)."""
    options = read_options(*options_args)
    model = model_for_rows(model_path, options)
    X = rows_for_model(file, options, model_path, meta["fit"])
    n = int(X.shape[0]) if isinstance(X, np.ndarray) else int(X.n_samples)
    mean = float(model.score(X))
    p = int(model._n_parameters())
    return {
        "file": str(file),
        "n_samples": n,
        "log_likelihood": mean * n,
        "log_likelihood_per_row": mean,
        "bic": -2.0 * mean * n + p * math.log(n),
    }


@app.command()
def info(
    model_path: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A model saved by fit or select --out.")
    ],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Also score this data file under the model."),
    ] = None,
    columns: Columns = None,
    drop: Drop = None,
    sep: Sep = None,
    decimal: Decimal = None,
    na_values: NaValues = None,
    dropna: DropNa = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Describe a saved model: its parameters, BIC and AIC, and the data it was fitted on;
    with --data, the log-likelihood of another data file under it."""
    from rich.markup import escape

    from gaussmix.io import read_metadata

    meta, arrays = read_metadata(model_path)
    summary = model_summary(meta, arrays)
    if data is not None:
        options_args = (columns, drop, sep, decimal, na_values, dropna)
        summary["data"] = _score_data(model_path, meta, data, options_args)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    from gaussmix.em.covariance import get_covariance

    console = stdout()
    names: list[str] = summary["columns"]
    rows = "an unknown number of" if summary["n_samples"] is None else str(summary["n_samples"])
    scaled = ", standardised before fitting" if summary["scaling"] else ""
    console.print(
        escape(
            f"{model_path.name}: {summary['n_components']} components, "
            f"{get_covariance(summary['covariance_type']).label} covariance\n"
            f"fitted on {rows} rows x {summary['n_features']} columns ({', '.join(names)})"
            f"{scaled}"
        )
    )
    of_what = "log-likelihood of the standardised data" if summary["scaling"] else "log-likelihood"
    if summary["bic"] is None:
        console.print(
            f"{summary['n_parameters']} free parameters; BIC and AIC unknown (the file does "
            "not record the log-likelihood and the number of rows)"
        )
    else:
        console.print(
            f"{of_what} {summary['log_likelihood']:.3f}, {summary['n_parameters']} free "
            f"parameters: BIC {summary['bic']:.3f}, AIC {summary['aic']:.3f} (lower is better; "
            f"mclust's BIC {-summary['bic']:.3f})"
        )
    params = meta["params"]
    prior = params.get("prior")  # None, "mclust" or a Prior's fields
    if prior is None:
        with_prior = ""
    elif isinstance(prior, str):
        with_prior = f", prior {prior}"
    else:
        with_prior = f", a prior of its own (shrinkage {prior.get('shrinkage')})"
    console.print(
        f"EM: {'converged' if summary['converged'] else 'did NOT converge'} after "
        f"{summary['n_iter']} iterations (n_init {params.get('n_init')}, tol {params.get('tol')}, "
        f"reg_covar {params.get('reg_covar')}{with_prior})"
    )
    weights = np.asarray(arrays["weights"], dtype=np.float64)
    means, matrices = _data_units(
        weights,
        np.asarray(arrays["means"], dtype=np.float64),
        _matrices(meta, arrays),
        summary["scaling"],
    )
    units = " (in the data's units)" if summary["scaling"] else ""
    more = len(names) > TABLE_FEATURES
    title = f"components{units}" + (
        f": first {TABLE_FEATURES} of {len(names)} features (--json for all)" if more else ""
    )
    console.print(parameters_table(weights, means, matrices, names, title))
    if data is not None:
        scored = summary["data"]
        console.print(
            escape(
                f"{data_name(data)}: {scored['n_samples']} rows, log-likelihood "
                f"{scored['log_likelihood']:.3f} ({scored['log_likelihood_per_row']:.4f} per "
                f"row), BIC {scored['bic']:.3f} under this model"
            )
        )
