"""How astpatch talks to the user: one warning category, one error, one logger.

Messages say what happened, where, and what to do. `trace()` leaves one line per decision on
the `astpatch` logger at DEBUG level; `logging` is imported only when a line is emitted, so the
start-up path stays free of it.
"""

from __future__ import annotations

import os
import sys
import warnings


class AstpatchWarning(UserWarning):
    """A rule could not do what it promised; the program goes on without it."""


class AstpatchError(ImportError):
    """Raised instead of `AstpatchWarning` in strict mode.

    A subclass of ImportError because it is raised from an import.
    """


_trace_enabled: bool | None = None


def _tracing() -> bool:
    global _trace_enabled
    if _trace_enabled is None:
        _trace_enabled = os.environ.get("ASTPATCH_LOG", "").strip().lower() == "debug"
    return _trace_enabled


def trace(message: str) -> None:
    """One line for one decision, on the `astpatch` logger at DEBUG level."""
    if not _tracing() and "logging" not in sys.modules:
        return
    import logging

    logger = logging.getLogger("astpatch")
    if _tracing() and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("astpatch: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    logger.debug(message)


def warn(message: str, *, strict: bool = False) -> None:
    """Warn, or raise `AstpatchError` when strict."""
    trace(message)
    if strict:
        raise AstpatchError(message)
    warnings.warn(message, AstpatchWarning, stacklevel=2)
