"""Run the command line in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

import gaussmix.cli.main  # noqa: F401  (registers every command)
from gaussmix.cli.app import app
from gaussmix.datasets import load_faithful


@pytest.fixture
def gaussmix_cli() -> Callable[..., Result]:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, [str(a) for a in args])

    return invoke


def write_faithful_csv(folder: Path) -> Path:
    """The bundled Old Faithful data as a CSV with a header row, in ``folder``."""
    data = load_faithful()
    path = folder / "faithful.csv"
    np.savetxt(path, data.X, delimiter=",", header=",".join(data.columns), comments="")
    return path


@pytest.fixture
def faithful_csv(tmp_path: Path) -> Path:
    """Old Faithful as a CSV in this test's own folder (the test may write beside it)."""
    return write_faithful_csv(tmp_path)
