"""The one exception of the calculus engine.

Everything the engine cannot do (bad syntax, mismatched shapes, an expression it cannot
differentiate, a point where the expression is undefined) raises :class:`CalculusError`, a
``ValueError``: the engine never answers with a wrong or silently zero result. Parse errors carry
the source text and the position of the offending character, so that a caret can be drawn under it.
"""

from __future__ import annotations

from gaussmix.errors import GaussmixError

__all__ = ["CalculusError", "ParseError"]


class CalculusError(GaussmixError):
    """An expression the engine cannot parse, type, differentiate or evaluate.

    Parameters
    ----------
    message : str
        One line: what was wrong, and what to try.
    source : str, optional
        The text the error points into.
    position : int, optional
        0-based index into ``source`` of the offending character; a caret is drawn under it.

    Attributes
    ----------
    message : str
        The one-line message, without the caret display.
    source, position
        As given.
    """

    def __init__(
        self, message: str, *, source: str | None = None, position: int | None = None
    ) -> None:
        self.message = message
        self.source = source
        self.position = position
        super().__init__(self.render())

    @property
    def caret(self) -> str:
        """The source and a caret under the offending character ('' without a position)."""
        if self.source is None or self.position is None:
            return ""
        line = self.source.replace("\n", " ").replace("\t", " ")
        return f"  {line}\n  {' ' * self.position}^"

    def render(self) -> str:
        """The message, followed by the caret display when there is one."""
        caret = self.caret
        return f"{self.message}\n{caret}" if caret else self.message


class ParseError(CalculusError):
    """The input is not an expression of the engine's syntax (a :class:`CalculusError`)."""
