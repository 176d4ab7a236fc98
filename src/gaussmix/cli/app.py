"""The typer application that every command module registers on.

A command module imports ``app`` from here and decorates its function with ``@app.command()``;
``gaussmix.cli.main`` imports every command module. User errors never show a traceback: the group
class below turns them into one line on stderr and exit code 1 (usage errors keep click's exit 2).
"""

from __future__ import annotations

import enum
import sys
from typing import Any

import typer
from typer.core import TyperGroup


class ExitCode(enum.IntEnum):
    """Process exit codes of the ``gaussmix`` command."""

    OK = 0
    FAILURE = 1
    USAGE = 2


class UserError(Exception):
    """An error caused by the user's input; printed as one line, exit code 1."""


# The exceptions that mean "your input was wrong": ValueError covers the library's own
# validation (CalculusError and friends are ValueErrors), TypeError non-numeric data, OSError
# missing or unreadable files.
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, ValueError, TypeError, OSError)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` (one line) on stderr and return the Exit to raise."""
    first_line = " ".join(str(message).split())
    typer.echo(f"error: {first_line}", err=True)
    return typer.Exit(ExitCode.FAILURE)


class _Group(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            raise fail(str(exc) or type(exc).__name__) from None


app = typer.Typer(
    cls=_Group,
    name="gaussmix",
    help="Gaussian mixtures fitted by EM, and the matrix calculus that derives them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def stderr_is_terminal() -> bool:
    """Progress bars go to stderr, and only when it is a terminal."""
    return sys.stderr.isatty()
