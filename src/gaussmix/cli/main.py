"""Entry point of the ``gaussmix`` command: imports every command module, then runs the app."""

from __future__ import annotations

from gaussmix.cli import commands_em  # noqa: F401  (demo, fit, predict)
from gaussmix.cli import commands_select as _commands_select  # noqa: F401  (select, sample, info)
from gaussmix.cli import derive as _derive  # noqa: F401  (derive gmm)
from gaussmix.cli import grad as _grad  # noqa: F401  (grad)
from gaussmix.cli.app import app


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
