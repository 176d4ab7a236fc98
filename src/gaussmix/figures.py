"""The picture formats ``--plot`` and ``save_figure`` write, chosen by the file's suffix.

Kept apart from ``gaussmix.plotting`` (which imports matplotlib) so that the command line can
refuse an unknown suffix before it fits anything.
"""

from __future__ import annotations

from pathlib import Path

from gaussmix.errors import GaussmixError

# suffix -> matplotlib's name of the format
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def figure_format(path: str | Path) -> str:
    """The format a picture file's suffix names; GaussmixError for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise GaussmixError(
            f"cannot write a picture to {path}: the suffix {suffix or '(none)'!r} names no "
            f"format gaussmix writes; use {', '.join(FORMATS)}"
        )
    return FORMATS[suffix]
