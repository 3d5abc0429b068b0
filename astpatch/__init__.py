"""astpatch: fix bugs in installed packages by rewriting their source at import time.

    import astpatch
    astpatch.install()

Rules that target a module are applied when that module is imported: its source is read, the
target function is edited with libcst (formatting and comments kept), and the result is
compiled, cached and executed as the module. No wrapper, no extra frame.

This module is the public API. The layers below it are internal (their names start with an
underscore): `_base` (settings, messages, outcomes, the trusted store), `_model` (rules, edits,
gates, and where rules come from: rule files, entry points, the rule set), `_engine` (locate, rewrite, compile,
cache, the pipeline), `_inspect` (sources read without importing them, for the command line)
and `_hook` (finder, loader, installation, the start-up record). The names below load on first
use, so `import astpatch` loads this module alone, and `install()` only what installing the finder
needs: no edit kind, no rule file (see `astpatch._model.ruleindex`), with a start-up record no rule
set (see `astpatch._hook.record`), no rewrite engine.
"""

# No `from __future__ import annotations` here: it imports the `__future__` module, which
# `import astpatch` alone does not need.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._base import __version__
    from ._base.messages import AstpatchError, AstpatchWarning
    from ._base.outcomes import Outcome
    from ._hook.installation import Installation, applied, child_environment, install, uninstall
    from ._hook.keys import key_with_rules
    from ._model.cache_keys import KeyWithRules
    from ._model.edit import Edit, EditResult, Target
    from ._model.except_clauses import AddExceptClause, AddExceptTypes
    from ._model.hunks import ApplyHunks, Hunk
    from ._model.rule import Change, Rule, RuleError

# Public name -> the internal module that defines it.
_EXPORTS = {
    "AddExceptClause": "._model.except_clauses",
    "AddExceptTypes": "._model.except_clauses",
    "ApplyHunks": "._model.hunks",
    "AstpatchError": "._base.messages",
    "AstpatchWarning": "._base.messages",
    "Change": "._model.rule",
    "Edit": "._model.edit",
    "EditResult": "._model.edit",
    "Hunk": "._model.hunks",
    "Installation": "._hook.installation",
    "KeyWithRules": "._model.cache_keys",
    "Outcome": "._base.outcomes",
    "Rule": "._model.rule",
    "RuleError": "._model.rule",
    "Target": "._model.edit",
    "__version__": "._base",
    "applied": "._hook.installation",
    "child_environment": "._hook.installation",
    "install": "._hook.installation",
    "key_with_rules": "._hook.keys",
    "uninstall": "._hook.installation",
}

__all__ = [
    "AddExceptClause", "AddExceptTypes", "ApplyHunks", "AstpatchError", "AstpatchWarning", "Change", "Edit", "EditResult",
    "Hunk", "Installation", "KeyWithRules", "Outcome", "Rule", "RuleError", "Target", "__version__", "applied",
    "child_environment", "install", "key_with_rules", "uninstall",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'astpatch' has no attribute {name!r}")
    value = getattr(__import__(__name__ + module, fromlist=[name]), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
