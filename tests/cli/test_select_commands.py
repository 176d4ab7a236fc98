"""gaussmix select / sample / info, in-process: tables, files, formats and exit codes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.datasets import load_faithful
from gaussmix.selection import select
from tests.cli.conftest import write_faithful_csv

# a small, quick grid for the format tests: one initialisation, no worker processes
QUICK = ("-k", "1..2", "-c", "tied,full", "--n-init", "1", "--jobs", "1")


@pytest.fixture(scope="module")
def faithful_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_faithful_csv(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def saved_models(faithful_csv: Path) -> dict[str, Path]:
    """Models written by `select --out`, raw and standardised (quick grids)."""
    from typer.testing import CliRunner

    import gaussmix.cli.main  # noqa: F401
    from gaussmix.cli.app import app

    folder = faithful_csv.parent
    runner = CliRunner()
    out = {"raw": folder / "raw.npz", "scaled": folder / "scaled.npz"}
    for name, extra in (("raw", []), ("scaled", ["--scale"])):
        args = ["select", str(faithful_csv), *QUICK, "-k", "1..3", "--out", str(out[name]), *extra]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    return out


def test_select_all_shows_mclusts_fourteen_models_in_two_blocks(
    gaussmix_cli, faithful_csv: Path
) -> None:
    result = gaussmix_cli(
        "select",
        faithful_csv,
        "-k",
        "1..2",
        "-c",
        "all",
        "--n-init",
        "1",
        "--jobs",
        "1",
        "--mclust-sign",
    )
    assert result.exit_code == 0, result.output
    headers = [line for line in result.stdout.splitlines() if line.startswith("┃")]
    assert len(headers) == 2  # seven models per block, as mclust prints them
    for name in ("EII", "VEI", "EVI", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV (full)"):
        assert name in "".join(headers)
    assert "28 fits" in result.stdout
    assert "BIC in mclust's sign, higher is better" in result.stdout


def json_of(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ------------------------------------------------------------------ select


def test_select_old_faithful_table_choice_and_pictures(
    gaussmix_cli, faithful_csv: Path, tmp_path: Path
) -> None:
    plot = tmp_path / "select.png"
    model = tmp_path / "best.npz"
    result = gaussmix_cli(
        "select", faithful_csv, "-c", "spherical,diag,tied,full", "--plot", plot, "--out", model
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "BIC chooses tied (EEE) with K=3: log-likelihood -1126.3" in out
    header = next(line for line in out.splitlines() if "VII (spherical)" in line)
    assert all(name in header for name in ("VVI (diag)", "EEE (tied)", "VVV (full)"))
    # nine rows K = 1..9, the chosen cell marked with *, in the EEE column of the row K = 3
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == [str(k) for k in range(1, 10)]
    marked = [row for row in rows if "*" in row]
    assert len(marked) == 1 and marked[0].split("│")[1].strip() == "3"
    assert "*" in marked[0].split("│")[4]
    assert "mclust's sign: BIC -2314.3" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    chosen = GaussianMixture.load(model)
    assert (chosen.n_components, chosen.covariance_type) == (3, "tied")
    assert chosen.log_likelihood_ == pytest.approx(-1126.3, abs=0.1)


def test_select_marks_degenerate_fits(gaussmix_cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(200, 2)), np.column_stack([rng.normal(4, 1, 30), [5.0] * 30])])
    path = tmp_path / "collapse.npy"
    np.save(path, X)
    result = gaussmix_cli(
        "select", path, "-k", "1..3", "-c", "diag", "--n-init", "1", "--jobs", "1",
        "--reg-covar", "1e-6",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # the rule of a regularised grid (without reg_covar, select's default, these fits fail)
    grid = select(X, [1, 2, 3], "diag", n_init=1, random_state=0, n_jobs=1, reg_covar=1e-6)
    degenerate = [r for r in grid.records if r.degenerate]
    assert degenerate
    assert "! degenerate: " + ", ".join(r.model_name for r in degenerate) in result.stdout
    assert result.stdout.count(" !") >= len(degenerate)


def test_select_shows_failed_fits(gaussmix_cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(200, 2)), np.column_stack([rng.normal(4, 1, 30), [5.0] * 30])])
    path = tmp_path / "collapse.csv"
    np.savetxt(path, X, delimiter=",")
    result = gaussmix_cli(
        "select",
        path,
        "-k",
        "1..2",
        "-c",
        "diag",
        "--reg-covar",
        "0",
        "--n-init",
        "1",
        "--jobs",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "failed fits: VVI,2" in result.stdout
    assert "failed" in next(line for line in result.stdout.splitlines() if line.startswith("│ 2"))


def test_select_json_matches_the_api(gaussmix_cli, faithful_csv: Path) -> None:
    document = json_of(gaussmix_cli("select", faithful_csv, *QUICK, "--json"))
    api = select(load_faithful().X, [1, 2], ("tied", "full"), n_init=1, random_state=0, n_jobs=1)
    assert document["best"]["n_components"] == api.best_record.n_components
    assert document["columns"] == ["eruptions", "waiting"]
    assert document["scaling"] is None
    assert [f["bic"] for f in document["fits"]] == pytest.approx([r.bic for r in api.records])
    assert [f["bic_mclust"] for f in document["fits"]] == pytest.approx(
        [-r.bic for r in api.records]
    )


def test_select_criterion_and_mclust_sign(gaussmix_cli, faithful_csv: Path) -> None:
    icl = gaussmix_cli("select", faithful_csv, *QUICK, "--criterion", "icl", "--mclust-sign")
    assert icl.exit_code == 0, icl.output
    assert "ICL in mclust's sign, higher is better" in icl.stdout
    assert "ICL chooses" in icl.stdout
    document = json_of(gaussmix_cli("select", faithful_csv, *QUICK, "--criterion", "aic", "--json"))
    assert document["criterion"] == "aic"
    best_aic = min(f["aic"] for f in document["fits"] if f["eligible"])
    assert document["best"]["aic"] == best_aic


def _quick_json(gaussmix_cli, path: Path, *extra: str) -> dict:
    return json_of(gaussmix_cli("select", path, *QUICK, "--json", *extra))


def test_file_formats_give_the_same_fits(gaussmix_cli, faithful_csv: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = load_faithful()
    tsv = tmp_path / "faithful.tsv"
    np.savetxt(tsv, data.X, delimiter="\t", header="\t".join(data.columns), comments="")
    npy = tmp_path / "faithful.npy"
    np.save(npy, data.X)
    parquet = tmp_path / "faithful.parquet"
    table = {"id": np.arange(len(data.X)), "eruptions": data.X[:, 0], "waiting": data.X[:, 1]}
    pq.write_table(pa.table(table), parquet)
    wide = tmp_path / "wide.csv"
    np.savetxt(
        wide,
        np.column_stack([data.X[:, 1], np.arange(len(data.X)), data.X[:, 0]]),
        delimiter=",",
        header="waiting,id,eruptions",
        comments="",
    )
    reference = _quick_json(gaussmix_cli, faithful_csv)
    bics = [f["bic"] for f in reference["fits"]]
    for path, extra in (
        (tsv, ()),
        (npy, ()),
        (parquet, ("--columns", "eruptions,waiting")),
        (wide, ("--columns", "eruptions, waiting")),
    ):
        document = _quick_json(gaussmix_cli, path, *extra)
        assert [f["bic"] for f in document["fits"]] == pytest.approx(bics), path.name
    assert _quick_json(gaussmix_cli, npy)["columns"] == ["x0", "x1"]
    assert _quick_json(gaussmix_cli, parquet, "--columns", "waiting")["n_features"] == 1


def test_scale_shifts_the_log_likelihood_by_the_log_scales(
    gaussmix_cli, faithful_csv: Path
) -> None:
    # standardising divides column d by s_d: the density of each row is multiplied by prod s_d
    raw = json_of(gaussmix_cli("select", faithful_csv, "-k", "1", "-c", "full", "--json"))
    scaled = json_of(
        gaussmix_cli("select", faithful_csv, "-k", "1", "-c", "full", "--json", "--scale")
    )
    spread = np.asarray(scaled["scaling"]["scale"])
    np.testing.assert_allclose(spread, load_faithful().X.std(axis=0))
    n = raw["n_samples"]
    expected = raw["fits"][0]["log_likelihood"] + n * np.log(spread).sum()
    assert scaled["fits"][0]["log_likelihood"] == pytest.approx(expected, rel=1e-7)


def test_progress_bar_when_stderr_is_a_terminal(
    gaussmix_cli, faithful_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gaussmix.cli.commands_select.stderr_is_terminal", lambda: True)
    result = gaussmix_cli("select", faithful_csv, *QUICK)
    assert result.exit_code == 0, result.output
    assert "chooses" in result.stdout
    assert "fitting the grid" not in result.stdout  # the bar is drawn on stderr


# ------------------------------------------------------------------ sample and info


def test_sample_writes_csv_in_the_data_units(gaussmix_cli, saved_models: dict[str, Path]) -> None:
    X = load_faithful().X
    for name in ("raw", "scaled"):
        result = gaussmix_cli("sample", saved_models[name], "-n", 2000, "--seed", 3)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[0] == "eruptions,waiting"
        rows = np.loadtxt(lines[1:], delimiter=",")
        assert rows.shape == (2000, 2)
        # the sample mean is the data's mean within a few standard errors
        error = X.std(axis=0) / math.sqrt(2000)
        assert np.all(np.abs(rows.mean(axis=0) - X.mean(axis=0)) < 5 * error), name
    again = gaussmix_cli("sample", saved_models["raw"], "-n", 2000, "--seed", 3)
    first = gaussmix_cli("sample", saved_models["raw"], "-n", 2000, "--seed", 3)
    assert again.stdout == first.stdout


def test_sample_labels_follow_the_weights(gaussmix_cli, saved_models: dict[str, Path]) -> None:
    model = GaussianMixture.load(saved_models["raw"])
    result = gaussmix_cli("sample", saved_models["raw"], "-n", 3000, "--seed", 0, "--labels")
    lines = result.stdout.splitlines()
    assert lines[0] == "eruptions,waiting,component"
    labels = np.array([int(line.rsplit(",", 1)[1]) for line in lines[1:]])
    shares = np.bincount(labels, minlength=model.n_components) / len(labels)
    np.testing.assert_allclose(shares, model.weights_, atol=0.04)
    assert len(set(labels[:50])) > 1  # rows come in random order, not grouped by component


def test_info_reports_parameters_and_criteria(gaussmix_cli, saved_models: dict[str, Path]) -> None:
    X = load_faithful().X
    model = GaussianMixture.load(saved_models["raw"])
    result = gaussmix_cli("info", saved_models["raw"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{model.n_components} components" in out
    assert "fitted on 272 rows x 2 columns (eruptions, waiting)" in out
    assert f"BIC {model.bic(X):.3f}, AIC {model.aic(X):.3f}" in out
    assert "mean eruptions" in out and "sd waiting" in out
    document = json_of(gaussmix_cli("info", saved_models["raw"], "--json"))
    assert document["bic"] == pytest.approx(model.bic(X), rel=1e-9)
    assert document["aic"] == pytest.approx(model.aic(X), rel=1e-9)
    assert document["n_parameters"] == model._n_parameters()
    assert document["columns"] == ["eruptions", "waiting"]
    assert document["n_samples"] == 272 and document["n_features"] == 2


def test_info_of_a_scaled_model_shows_the_data_units(
    gaussmix_cli, saved_models: dict[str, Path]
) -> None:
    result = gaussmix_cli("info", saved_models["scaled"])
    assert result.exit_code == 0, result.output
    assert "standardised before fitting" in result.stdout
    assert "components (in the data's units)" in result.stdout
    model = GaussianMixture.load(saved_models["scaled"])
    document = json_of(gaussmix_cli("info", saved_models["scaled"], "--json"))
    center = np.asarray(document["scaling"]["center"])
    spread = np.asarray(document["scaling"]["scale"])
    means = center + spread * model.means_
    # the table shows the means in minutes, e.g. the waiting time of each component
    for value in means[:, 1]:
        assert f"{value:.4g}" in result.stdout


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("select", "missing.csv"), "no such file: missing.csv"),
        (("select", "{csv}", "-k", "1..x"), "is not a list of numbers of components"),
        (("select", "{csv}", "-k", "5..2"), "the range 5..2 is empty"),
        (("select", "{csv}", "-k", "0"), "must be >= 1"),
        (("select", "{csv}", "-k", "1..500"), "272 rows of data; 500 components need at least 500"),
        (("select", "{csv}", "-c", "VXV"), "unknown covariance type 'VXV'"),
        (("select", "{csv}", "--criterion", "dic"), "unknown criterion 'dic'"),
        (("select", "{csv}", "--columns", "speed"), "has no column 'speed'"),
        (("select", "{csv}", "--columns", ","), "names no column"),
        (("select", "{csv}", "--jobs", "0"), "--jobs 0 runs nothing"),
        (("select", "{constant}", "-k", "1..2"), "constant column(s) 'b': every covariance"),
        (("sample", "{csv}", "-n", "5"), "is not a gaussmix model but a text file"),
        (("sample", "missing.npz", "-n", "5"), "no such model file"),
        (("info", "{csv}"), "is not a gaussmix model but a text file"),
    ],
)
def test_user_errors_are_one_line_and_exit_1(
    gaussmix_cli, faithful_csv: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    constant = tmp_path / "constant.csv"
    constant.write_text("a,b\n" + "".join(f"{i},7\n" for i in range(20)))
    result = gaussmix_cli(*(a.format(csv=faithful_csv, constant=constant) for a in args))
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_usage_errors_exit_2(gaussmix_cli, saved_models: dict[str, Path]) -> None:
    assert gaussmix_cli("sample", saved_models["raw"]).exit_code == 2
    assert gaussmix_cli("sample", saved_models["raw"], "-n", 0).exit_code == 2
    assert gaussmix_cli("select").exit_code == 2


def test_the_heading_names_the_starts_select_ran(gaussmix_cli, tmp_path: Path) -> None:
    # one feature: the refined cells' further start is mclust's quantile one, not k-means
    # (selection._extra_starts); the heading says which, and "1 column"
    values = np.random.default_rng(0).normal(size=60) + np.repeat([0.0, 6.0], 30)
    one = tmp_path / "one.csv"
    one.write_text("x\n" + "\n".join(f"{v:.6f}" for v in values) + "\n")
    result = gaussmix_cli("select", one, "-k", "1..3", "--jobs", 1)
    assert result.exit_code == 0, result.output
    heading = result.stdout.splitlines()[0]
    assert "60 rows x 1 column (x)" in heading
    assert "also from mclust's quantile start" in heading and "k-means" not in heading
    two = tmp_path / "two.csv"
    rows = np.column_stack([values, values[::-1]])
    two.write_text("x,y\n" + "\n".join(f"{a:.6f},{b:.6f}" for a, b in rows) + "\n")
    heading = gaussmix_cli("select", two, "-k", "1..3", "--jobs", 1).stdout.splitlines()[0]
    assert "60 rows x 2 columns (x, y)" in heading and "also from 1 k-means start" in heading
    assert "convergence" not in heading  # no contest below mclust's subset size
    # above it, the contest's cells and starts (selection.py, "The grid", 5)
    big = tmp_path / "big.csv"
    centres = np.repeat([[0.0, 0.0], [4.0, 1.0]], 1050, axis=0)
    rows = np.random.default_rng(1).normal(size=(2100, 2)) + centres
    big.write_text("x,y\n" + "\n".join(f"{a:.6f},{b:.6f}" for a, b in rows) + "\n")
    result = gaussmix_cli("select", big, "-k", "1..3", "-c", "VII,VVV", "--jobs", 1)
    assert result.exit_code == 0, result.output
    heading = result.stdout.splitlines()[0]
    assert "the best 3 also from 8 more k-means starts and from the other models' fits" in heading
