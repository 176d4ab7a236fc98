"""The typer application that every command module registers on.

A command module imports ``app`` from here and decorates its function with ``@app.command()``;
``gaussmix.cli.main`` imports every command module. The group class below decides what a
failure looks like:

- a ``GaussmixError`` (the library's user errors, and ``UserError`` here) or an ``OSError`` is
  one ``error:`` line on stderr and exit code 1; anything else is a bug and keeps its traceback;
- usage errors keep click's exit code 2; an unknown option that is really a value starting with
  ``-`` (``gaussmix grad "-x'*x" ...``) gets a hint to put it after ``--``;
- a closed pipe (``gaussmix predict m.npz big.csv | head -2``) ends quietly with exit code 0:
  the reader had all it wanted, which is no failure of ours.

Nothing heavy is imported here or by ``main`` before a command runs (``gaussmix --help`` starts
in about the time of ``import numpy``; tests/cli/test_imports.py).
"""

from __future__ import annotations

import enum
import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

try:  # typer >= 0.2x carries its own copy of click
    from typer._click.exceptions import NoSuchOption
except ImportError:  # pragma: no cover - older typer on top of click
    from click.exceptions import NoSuchOption  # type: ignore[no-redef,assignment,unused-ignore]

from gaussmix import __version__
from gaussmix.errors import GaussmixError


class ExitCode(enum.IntEnum):
    """Process exit codes of the ``gaussmix`` command."""

    OK = 0
    FAILURE = 1
    USAGE = 2


class UserError(GaussmixError):
    """An error in the command line's input; printed as one line, exit code 1."""


# The exceptions that mean "your input was wrong"; everything else is a bug.
USER_ERRORS: tuple[type[BaseException], ...] = (GaussmixError, OSError)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` (one line) on stderr and return the Exit to raise."""
    first_line = " ".join(str(message).split())
    typer.echo(f"error: {first_line}", err=True)
    return typer.Exit(ExitCode.FAILURE)


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so that the interpreter's final flush
    does not complain again."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # an in-process stream (tests) has no descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _os_message(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror.lower()}"
    return str(exc) or type(exc).__name__


class _Group(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe shows here, not in click's own handler (exit 1)
            return result
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(ExitCode.OK) from None
        except NoSuchOption as exc:
            name = exc.option_name
            if not name.startswith("--"):
                exc.message += (
                    f". If {name!r} is a value (an expression or a negative number), put it "
                    f"after --: e.g. gaussmix grad --wrt x -- {name!r}"
                )
            raise
        except GaussmixError as exc:
            raise fail(str(exc) or type(exc).__name__) from None
        except OSError as exc:
            raise fail(_os_message(exc)) from None


app = typer.Typer(
    cls=_Group,
    name="gaussmix",
    help="Gaussian mixtures fitted by EM, and the matrix calculus that derives them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help and usage errors: no rich import to show them
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"gaussmix {__version__}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    """Gaussian mixtures fitted by EM, and the matrix calculus that derives them."""


def _broken_pipe() -> None:
    raise BrokenPipeError  # rich's own handler exits 1; ours (the group above) ends quietly


def on_closed_pipe(console: Any) -> Any:
    """A rich Console whose closed pipe ends the command like any other (exit 0)."""
    console.on_broken_pipe = _broken_pipe
    return console


def stderr_is_terminal() -> bool:
    """Progress bars go to stderr, and only when it is a terminal."""
    return sys.stderr.isatty()
