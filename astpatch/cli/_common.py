"""What the commands share: exit statuses, usage errors, and the rules they work on."""

from __future__ import annotations

import os
import sys

from .._model.rule import Rule
from .._model.ruleset import UnknownRule, rules_in_force

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class Rules(list[Rule]):
    """The rules a command works on; `broken` names the rule files the user gave (`--rules`) that
    failed to load, each reported on stderr: the command still reports the others, then exits 1."""

    broken: list[str]


def load_rules(extra: list[str], only: list[str] | None = None) -> Rules:
    """The rules in force (shipped, ASTPATCH_RULES, --rules, other distributions'), as `install()`
    would have them; with `only`, those named by id or module, in the order named."""
    for path in extra:
        if not os.path.exists(path):
            raise UsageError(f"rule path {path} does not exist")
    problems: list[str] = []
    broken: list[str] = []
    ruleset = rules_in_force(extra, problems.append, broken)
    for message in problems:
        if not any(problem in message for problem in broken):  # those get their error line below
            print(message, file=sys.stderr)
    for problem in broken:  # a file the user named must load, or the command fails
        print(f"astpatch: error: {problem}", file=sys.stderr)
    try:
        rules = Rules(ruleset.select(only) if only else ruleset.rules)
    except UnknownRule as error:
        raise UsageError(str(error)) from None
    rules.broken = broken
    return rules


def status(found: int, rules: Rules) -> int:
    """A command's exit status: EXIT_FINDING for a finding or a named rule file that failed to load."""
    return EXIT_FINDING if found or rules.broken else EXIT_OK


def installed_sources():  # type: ignore[no-untyped-def]
    from .._inspect.sources import Installed

    return Installed()
