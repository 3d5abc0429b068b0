"""Loading rules from rule files.

A rule file is a Python file that builds its rules from `astpatch`'s declarations and lists them
in `RULES` (or a single `RULE`). It is executed, not imported: it does not become a module, and
its directory does not have to be a package. The rules that ship with astpatch are such files.
"""

from __future__ import annotations

import os
from importlib.machinery import SourceFileLoader

from .rule import Rule


class RuleFileError(Exception):
    """A rule file could not be loaded; the message names the file and the problem."""


def builtin_rules_dir() -> str:
    """The rules that ship with astpatch: `astpatch/rules` when installed, `rules/` in a checkout."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    installed = os.path.join(here, "rules")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(here), "rules")


def rule_files(path: str) -> list[str]:
    """The rule files a path names: itself, or the `*.py` files of a directory (not `_*.py`)."""
    if os.path.isdir(path):
        return [os.path.join(path, n) for n in sorted(os.listdir(path)) if n.endswith(".py") and not n.startswith("_")]
    return [path]


class _RuleFileLoader(SourceFileLoader):
    """Reads a rule file's `.pyc` when it is current (pip writes one for the shipped rules at
    install time: a first compile() in a process costs more than install() may), and never
    writes one: a user's rule directory is theirs, not a place for astpatch's `__pycache__`."""

    def set_data(self, *args: object, **kwargs: object) -> None:
        pass


def load_rule_file(path: str) -> list[Rule]:
    """The rules a rule file declares; RuleFileError names the file and the problem."""
    if not os.path.isfile(path):
        raise RuleFileError(f"cannot read rule file {path}: it is not a file")
    namespace = {"__name__": "astpatch.rulefile", "__file__": path}
    try:
        code = _RuleFileLoader("astpatch.rulefile", path).get_code("astpatch.rulefile")
        assert code is not None
    except OSError as error:
        raise RuleFileError(f"cannot read rule file {path}: {error.strerror or error}") from None
    except SyntaxError as error:
        raise RuleFileError(f"rule file {path} failed to load: SyntaxError: {error}") from None
    try:
        exec(code, namespace)
    except Exception as error:
        raise RuleFileError(f"rule file {path} failed to load: {type(error).__name__}: {error}") from None
    rules: object
    if "RULES" in namespace:
        rules = namespace["RULES"]
        if not isinstance(rules, (list, tuple)):
            raise RuleFileError(f"rule file {path}: RULES must be a list of astpatch.Rule")
    elif "RULE" in namespace:
        rules = [namespace["RULE"]]
    else:
        raise RuleFileError(f"rule file {path} defines neither RULES nor RULE")
    checked: list[Rule] = []
    for rule in rules:
        if not isinstance(rule, Rule):
            raise RuleFileError(f"rule file {path}: {rule!r} is not an astpatch.Rule")
        rule.origin = path
        checked.append(rule)
    return checked
