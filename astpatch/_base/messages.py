"""How astpatch talks to the user: one warning category, one error, one logger.

Messages say what happened, where, and what to do. A problem is a Python warning, nothing else,
so it is shown once, and a program that logs its warnings (`logging.captureWarnings`) logs it
once. `trace()` leaves one record per decision on the `astpatch` logger (DEBUG; INFO for a rule's
outcome). `logging` is imported only when a record is emitted, so the start-up path stays free of it.
"""

import os
import sys

from . import settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging


class AstpatchWarning(UserWarning):
    """A rule could not do what it promised; the program goes on without it."""


class AstpatchError(ImportError):
    """Raised instead of `AstpatchWarning` in strict mode.

    A subclass of ImportError because it is raised from an import.
    """


# A setting's problem waits for the first import of a target: a process that imports none (a
# launcher, a worker that never touches the patched library) says nothing. Each is said once.
_pending: list[str] = []
_noted: set[str] = set()


def configuration(message: str) -> None:
    """Note a problem with a setting, said by `report_configuration()`, once per process."""
    if message not in _noted:
        _noted.add(message)
        _pending.append(message)


def report_configuration() -> None:
    """Say the settings' problems noted so far (the finder calls this at each target's import)."""
    while _pending:
        try:
            message = _pending.pop(0)
        except IndexError:  # another thread's import said it
            return
        warn_setting(message)


def warn_setting(message: str) -> None:
    """A warning about the environment, which no line of code caused: it is given no location
    (`sys:1`, as Python shows warnings issued outside any code) rather than the line of whatever
    import or `.pth` file happened to read the setting."""
    import warnings

    warnings.warn_explicit(message, AstpatchWarning, "sys", 1)


_unlocated = False


class unlocated:
    """While astpatch installs itself at start-up, before any code of the program: its warnings
    are about the environment (see `warn_setting`)."""

    def __enter__(self) -> None:
        global _unlocated
        _unlocated = True

    def __exit__(self, *exc_info: object) -> None:
        global _unlocated
        _unlocated = False


_level: str | None = None  # ASTPATCH_LOG's level name, "" when off; read once per process
_logger: "logging.Logger | None" = None


def _log_level() -> str:
    global _level
    if _level is None:
        _level = settings.log_level(configuration) or ""
    return _level


def tracing() -> bool:
    """Whether DEBUG records are wanted (ASTPATCH_LOG=debug): only then is costly trace text made."""
    return _log_level() == "DEBUG"


def trace(message: str, *, outcome: bool = False) -> None:
    """One record for one decision on the `astpatch` logger: DEBUG, or INFO for a rule's `outcome`."""
    if not _log_level() and "logging" not in sys.modules:
        return
    logger = _logger or _make_logger()
    logger.log(20 if outcome else 10, message)


def _make_logger() -> "logging.Logger":
    """The `astpatch` logger, set up at its first record: a NullHandler, as libraries have; with
    ASTPATCH_LOG, its level, and a handler that writes to stderr while the program has none."""
    global _logger
    import logging

    class UntilConfigured(logging.Handler):
        """Writes to stderr only while no handler of the program's would get the record, so a
        line is printed once, whether (and when) the program configures logging or not."""

        def handle(self, record: logging.LogRecord) -> bool:
            return False if _program_handles(self) else bool(super().handle(record))

        def emit(self, record: logging.LogRecord) -> None:
            try:
                sys.stderr.write(self.format(record) + "\n")
                sys.stderr.flush()
            except Exception:
                self.handleError(record)

    logger = logging.getLogger("astpatch")
    logger.addHandler(logging.NullHandler())
    if _log_level():
        logger.setLevel(_log_level())
        handler = UntilConfigured()
        handler.setFormatter(logging.Formatter("astpatch: %(message)s"))
        logger.addHandler(handler)
    _logger = logger
    return logger


def _program_handles(ours: "logging.Handler") -> bool:
    """Whether a handler other than astpatch's own is on the way from its logger to the root."""
    import logging

    logger: logging.Logger | None = logging.getLogger("astpatch")
    while logger is not None:
        if any(h is not ours and not isinstance(h, logging.NullHandler) for h in logger.handlers):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def trace_exception(what: str, error: BaseException) -> None:
    """Trace `what` with the whole traceback of `error` (only when tracing: formatting costs)."""
    if tracing():
        import traceback

        trace(f"{what}:\n{''.join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()}")


# astpatch's own directory, with a separator: `site-packages/astpatch_example_rules.py` is a user's.
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
    if strict:
        raise AstpatchError(message)
    import warnings  # not at start-up: only a warning needs it

    if _unlocated:
        warn_setting(message)
    else:
        warnings.warn(message, AstpatchWarning, stacklevel=_user_stacklevel())
