"""The base class of every error a user of gaussmix can cause.

A ``GaussmixError`` means "the input was wrong": a file that cannot be read as data, a column
that is not there, a model file that is not a model. Its message is one line in gaussmix's own
words saying what was wrong, where, and what to try. It is a ``ValueError`` so that code written
against scikit-learn's conventions keeps working. The command line turns a ``GaussmixError`` (and
an ``OSError``) into that one line and exit code 1; any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

__all__ = ["DegenerateDataWarning", "GaussmixError"]


class GaussmixError(ValueError):
    """An error caused by the user's input; its message is one line that says what to try."""


class DegenerateDataWarning(UserWarning):
    """The data has constant or duplicated columns: along them every covariance of a mixture
    is singular (held up only by ``reg_covar``), so the log-likelihood means little."""
