"""Rules that change several modules: their outcome in the other modules, from source.

A rule is applied all or nothing, across modules too. When one of its modules is rewritten, its
other modules are rewritten as well (their source read, not imported), so every module decides
the same way and no process runs half a change, whatever the order of the imports.
"""

from __future__ import annotations

from .._base import outcomes as oc
from .._base.modulefiles import SourceNotFound
from .rewrite import rewrite

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .._model.rule import Change, Rule


def outcomes_elsewhere(module: str, rules: list[Rule], versions: dict[str, str | None],
                       read: Callable[[str], tuple[str, str]]) -> dict[str, list[tuple[Change, oc.Outcome]]]:
    """By rule id, the outcome of each of the rule's parts in its other modules; `read(module)`
    gives (path, text) or raises SourceNotFound."""
    texts: dict[str, tuple[str, str] | SourceNotFound] = {}
    found: dict[str, list[tuple[Change, oc.Outcome]]] = {}
    for rule in rules:
        for other in rule.modules:
            if other == module:
                continue
            if other not in texts:
                try:
                    texts[other] = read(other)
                except SourceNotFound as missing:
                    texts[other] = missing
            source = texts[other]
            if isinstance(source, SourceNotFound):
                absent = oc.Outcome(rule.id, other, oc.MODULE_MISSING, f"{other} has no source: {source}")
                found.setdefault(rule.id, []).extend((change, absent) for change in rule.changes_in(other))
            else:
                found.setdefault(rule.id, []).extend(rewrite(other, source[0], source[1], [rule], versions).parts[rule.id])
    return found
