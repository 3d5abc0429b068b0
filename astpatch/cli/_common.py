"""What the commands share: exit statuses, usage errors, and the rules they work on."""

from __future__ import annotations

import os
import sys

from .._model.rule import Rule
from .._model.ruleset import UnknownRule, rules_in_force

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def load_rules(extra: list[str], only: list[str] | None = None) -> list[Rule]:
    """The rules in force (shipped, ASTPATCH_RULES, --rules, other distributions'), as `install()`
    would have them; with `only`, those named by id or module, in the order named."""
    for path in extra:
        if not os.path.exists(path):
            raise UsageError(f"rule path {path} does not exist")
    problems: list[str] = []
    ruleset = rules_in_force(extra, problems.append)
    for message in problems:
        print(message, file=sys.stderr)
    try:
        return ruleset.select(only) if only else ruleset.rules
    except UnknownRule as error:
        raise UsageError(str(error)) from None


def installed_sources():  # type: ignore[no-untyped-def]
    from .._inspect.sources import Installed

    return Installed()
