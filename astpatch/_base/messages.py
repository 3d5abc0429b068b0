"""How astpatch talks to the user: one warning category, one error, one logger.

Messages say what happened, where, and what to do. `trace()` leaves one line per decision on
the `astpatch` logger at DEBUG level; `logging` is imported only when a line is emitted, so the
start-up path stays free of it.
"""

from __future__ import annotations

import os
import sys
import warnings

from . import settings


class AstpatchWarning(UserWarning):
    """A rule could not do what it promised; the program goes on without it."""


class AstpatchError(ImportError):
    """Raised instead of `AstpatchWarning` in strict mode.

    A subclass of ImportError because it is raised from an import.
    """


_trace_enabled: bool | None = None


def tracing() -> bool:
    """Whether trace lines are wanted (ASTPATCH_LOG=debug), read once per process."""
    global _trace_enabled
    if _trace_enabled is None:
        _trace_enabled = settings.tracing()
    return _trace_enabled


def trace(message: str) -> None:
    """One line for one decision, on the `astpatch` logger at DEBUG level."""
    if not tracing() and "logging" not in sys.modules:
        return
    import logging

    logger = logging.getLogger("astpatch")
    if tracing() and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("astpatch: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    logger.debug(message)


# astpatch's own directory, with a separator: `site-packages/astpatch_example_rules.py` is a user's.
def trace_exception(what: str, error: BaseException) -> None:
    """Trace `what` with the whole traceback of `error` (only when tracing: formatting costs)."""
    if tracing():
        import traceback

        trace(f"{what}:\n{''.join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()}")


_PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")


def _user_stacklevel() -> int:
    """The stacklevel of the first frame outside astpatch and importlib: the user's import."""
    level = 1
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith("<frozen importlib"):
            pass  # warnings.warn skips importlib's own frames without counting them
        elif filename.startswith(_PACKAGE):
            level += 1
        else:
            return level
        frame = frame.f_back  # type: ignore[assignment]
    return 1


def warn(message: str, *, strict: bool = False) -> None:
    """Warn, or raise `AstpatchError` when strict.

    The warning is attributed to the user's code that triggered it (an import statement, the
    call to install()), not to astpatch's internals.
    """
    trace(message)
    if strict:
        raise AstpatchError(message)
    if "logging" in sys.modules:  # also to the program's log, when it has one (never imported for this)
        import logging

        logger = logging.getLogger("astpatch")
        if logger.hasHandlers() and not tracing():
            logger.warning(message)
    warnings.warn(message, AstpatchWarning, stacklevel=_user_stacklevel())
