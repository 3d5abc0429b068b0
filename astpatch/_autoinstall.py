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

import os

if os.environ.get("ASTPATCH_AUTOINSTALL", "").strip() not in ("", "0"):
    import astpatch

    astpatch.install()
