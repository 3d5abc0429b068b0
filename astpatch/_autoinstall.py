"""Installs astpatch at interpreter start-up, from `astpatch-autoinstall.pth`.

The .pth file that the wheel puts in site-packages runs one line at every start-up of every
Python process of that environment:

    import os; os.environ.get("ASTPATCH_AUTOINSTALL") and __import__("astpatch._autoinstall")

so it costs an environment lookup unless ASTPATCH_AUTOINSTALL is set, which `astpatch run`
does for the program it runs and every process that program starts (`multiprocessing` with
spawn, `subprocess`), the way coverage measures subprocesses. Settings come from the
environment (ASTPATCH_RULES, ASTPATCH_STRICT, ...), which child processes inherit.
"""

from __future__ import annotations

from ._base import settings


def _note(message: str) -> None:
    from ._base.messages import warn

    warn(message)


if settings.flag(settings.AUTOINSTALL, _note):
    from ._hook.installation import install

    install()
