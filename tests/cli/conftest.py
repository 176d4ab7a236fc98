"""Run the command line in-process."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

import gaussmix.cli.main  # noqa: F401  (registers every command)
from gaussmix.cli.app import app


@pytest.fixture
def gaussmix_cli() -> Callable[..., Result]:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, [str(a) for a in args])

    return invoke
