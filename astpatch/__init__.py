"""astpatch: fix bugs in installed packages by rewriting their source at import time.

    import astpatch
    astpatch.install()

Rules that target a module are applied when that module is imported: its source is read, the
target function is edited with libcst (formatting and comments kept), and the result is
compiled, cached and executed as the module. No wrapper, no extra frame.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .edits import AddExceptClause, AddExceptTypes, ApplyHunks, Edit, EditResult, Hunk, Target
from .installation import Installation, applied, install, uninstall
from .messages import AstpatchError, AstpatchWarning
from .outcome import Outcome
from .rule import Rule, RuleError

__all__ = [
    "AddExceptClause",
    "AddExceptTypes",
    "ApplyHunks",
    "AstpatchError",
    "AstpatchWarning",
    "Edit",
    "EditResult",
    "Hunk",
    "Installation",
    "Outcome",
    "Rule",
    "RuleError",
    "Target",
    "__version__",
    "applied",
    "install",
    "uninstall",
]
