"""Installs astpatch at interpreter start-up, from `astpatch-autoinstall.pth`.

The .pth file that the wheel puts in site-packages runs one line at every start-up of every
Python process of that environment:

    import os; os.environ.get("ASTPATCH_AUTOINSTALL") and __import__("astpatch._autoinstall")

so it costs an environment lookup unless ASTPATCH_AUTOINSTALL is set, which `astpatch run`
does for the program it runs and every process that program starts (`multiprocessing` with
spawn, `subprocess`), the way coverage measures subprocesses. Settings come from the
environment (ASTPATCH_RULES, ASTPATCH_STRICT, ...), which child processes inherit.

Strict mode holds here too. `site` catches what a .pth line raises, prints it and starts the
program anyway, and a SystemExit escaping `site` is a "Fatal Python error" of the start-up; so a
failure to install in strict mode (or a warning that a `-W error` filter raises) is written to
stderr here, and the process ends at once with status 1, before its program runs.
"""

from __future__ import annotations

from ._base import settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn


def _note(message: str) -> None:
    from ._base.messages import warn

    warn(message)


def _stop(error: Exception, strict: bool) -> NoReturn:
    """Say why this process cannot run its program, and end it (no exception can leave `site`)."""
    import os
    import sys

    from ._base.messages import AstpatchError, AstpatchWarning

    if isinstance(error, (AstpatchError, AstpatchWarning)):
        problem = f"{error}\n"
    else:  # astpatch itself failed: the whole traceback, to report it
        import traceback

        problem = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    if strict:
        why = "ASTPATCH_STRICT=1 runs no program without its rules. Fix the problem above, or unset ASTPATCH_STRICT " \
              "to go on with a warning."
    else:
        why = "warnings are errors here (-W error or PYTHONWARNINGS). Fix the problem above."
    sys.stderr.write(f"{problem}astpatch: this process stops before its program runs (exit status 1): astpatch could "
                     "not be installed at its start-up (ASTPATCH_AUTOINSTALL=1, which `astpatch run` sets for every "
                     f"process it starts), and {why}\n")
    sys.stderr.flush()
    os._exit(1)


def _autoinstall() -> None:
    from ._hook.installation import install

    try:
        install()
    except Exception as error:
        from ._base.messages import AstpatchWarning

        strict = settings.flag(settings.STRICT)
        if strict or isinstance(error, AstpatchWarning):
            _stop(error, strict)
        raise  # not strict: as for any .pth line, `site` prints it and the program runs without astpatch


if settings.flag(settings.AUTOINSTALL, _note):
    _autoinstall()
