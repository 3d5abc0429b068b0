"""The rule set a process would have, loaded whole, for the command line and the pytest plugin.

Unlike `install()`, which keeps indexed rule files and entry points pending until a target is
imported, these front ends look at every rule at once, so they read no index: every rule file is
executed, and other distributions' entry points are discovered now.
"""

from __future__ import annotations

from .._base import settings
from .ruleset import RuleSet, standard_sources

TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable

    from .rule import Rule


def rules_in_force(extra: Iterable[Rule | str | os.PathLike[str]], report: Callable[[str], None],
                   failed: list[str] | None = None) -> RuleSet:
    """The rule set a process would have with `install(rules=extra)`, other distributions'
    rules loaded now. `failed`, when given, receives the problems of the files of `extra` that
    could not be loaded."""
    from .entrypoints import discover

    disabled = settings.disabled()
    ruleset = RuleSet(report, frozenset() if disabled.everything else disabled.rule_ids)
    if not disabled.everything:
        ruleset.load(standard_sources())
        problems = ruleset.load(extra)
        if failed is not None:
            failed.extend(problems)
        ruleset.add(discover(report)[1])
    return ruleset
