"""--plot-kind and --plot-columns of ``fit`` and ``select``, in-process: every kind writes a
PNG for 1, 2, 13 and 64 columns; chosen columns do not change the fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gaussmix.plotting import PLOT_KINDS
from tests.conftest import mixture_data

PNG = b"\x89PNG\r\n\x1a\n"


def _csv(tmp_path: Path, n_features: int, n: int = 90) -> Path:
    X = mixture_data(n_features, n=n, n_features=n_features, n_components=2, spread=6.0)
    path = tmp_path / f"d{n_features}.csv"
    header = ",".join(f"col{d}" for d in range(n_features))
    np.savetxt(path, X, delimiter=",", header=header, comments="")
    return path


COMMANDS = {
    "fit": ("fit", "-k", 2, "-c", "diag", "--seed", 0, "--max-iter", 15),
    "select": (
        "select", "-k", "1..2", "-c", "VII,VVI", "--n-init", 1, "--jobs", 1, "--max-iter", 15,
        "--scale",
    ),
}  # fmt: skip


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("n_features", [1, 2, 13, 64])
def test_every_plot_kind_writes_a_png(gaussmix_cli, tmp_path: Path, command, n_features) -> None:
    data = _csv(tmp_path, n_features)
    name, *options = COMMANDS[command]
    for kind in PLOT_KINDS:
        plot = tmp_path / f"{kind}.png"
        result = gaussmix_cli(name, data, *options, "--plot", plot, "--plot-kind", kind)
        assert result.exit_code == 0, (kind, result.output)
        assert plot.read_bytes()[:8] == PNG, kind


def test_plot_columns_leave_the_fit_unchanged(gaussmix_cli, tmp_path: Path) -> None:
    data = _csv(tmp_path, 5, n=120)
    args = ["fit", data, "-k", 2, "--seed", 0, "--json"]
    plain = json.loads(gaussmix_cli(*args).stdout)
    plot = tmp_path / "cols.png"
    drawn = gaussmix_cli(*args, "--plot", plot, "--plot-columns", "col3,col1")
    assert drawn.exit_code == 0, drawn.output
    assert plot.read_bytes()[:8] == PNG
    chosen = json.loads(drawn.stdout)
    assert chosen["columns"] == plain["columns"] == [f"col{d}" for d in range(5)]
    for key in ("weights", "means", "covariances", "log_likelihood", "lower_bounds"):
        assert chosen[key] == plain[key], key


def test_plot_options_are_checked_before_fitting(gaussmix_cli, tmp_path: Path) -> None:
    data = _csv(tmp_path, 3)
    plot = tmp_path / "x.png"
    wrong = gaussmix_cli("fit", data, "-k", 2, "--plot", plot, "--plot-columns", "col1,nope")
    assert wrong.exit_code == 1
    assert "error: --plot-columns: no column named nope" in wrong.stderr
    assert "Traceback" not in wrong.output and not plot.exists()
    kind = gaussmix_cli("select", data, "-k", "1", "--plot", plot, "--plot-kind", "pie")
    assert kind.exit_code == 1
    assert "unknown --plot-kind 'pie'; use one of classification, uncertainty" in kind.stderr
