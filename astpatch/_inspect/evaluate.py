"""What each rule would do to a module's source, computed afresh (never from the cache).

Shared by the command line (`list`, `diff`, `check`) and the pytest plugin. The source comes
from a `Sources` (the installed environment, a wheel, a directory...), so nothing is imported.
The states are the outcome statuses of `astpatch.applied()` (`astpatch._base.outcomes`), plus
`module-missing` when the sources do not have the module.
"""

from __future__ import annotations

from .._base import outcomes as oc
from .._base.lines import patched_lines, split_lines
from .._engine.rewrite import rewrite
from .._engine.spanning import outcomes_elsewhere
from .._model.rule import Change, Rule
from .sources import SourceNotFound, Sources


class ModuleReport:
    """One module's source, the rules on it, and what they make of it."""

    def __init__(self, module: str, path: str | None, before: list[str], after: list[str],
                 outcomes: list[tuple[Rule, oc.Outcome]],
                 parts: dict[str, list[tuple[Change, oc.Outcome]]] | None = None) -> None:
        self.module = module
        self.path = path
        self.before = before
        self.after = after
        self.outcomes = outcomes  # (rule, outcome), in the rules' order
        self.parts = parts or {}  # by rule id: (change, outcome) of each of its parts in this module


def evaluate(rules: list[Rule], sources: Sources, dist_version: str | None = None) -> list[ModuleReport]:
    """Rewrite each targeted module's source from `sources`; `dist_version` overrides versions."""
    by_module: dict[str, list[Rule]] = {}
    for rule in rules:
        for module in rule.modules:
            by_module.setdefault(module, []).append(rule)
    reports = []
    for module, module_rules in by_module.items():
        try:
            path, text = sources.read(module)
        except SourceNotFound as missing:
            outcomes = [(r, oc.Outcome(r.id, module, oc.MODULE_MISSING, str(missing))) for r in module_rules]
            reports.append(ModuleReport(module, None, [], [], outcomes))
            continue
        versions = {
            r.gate_distribution: dist_version or sources.version(r.gate_distribution)
            for r in module_rules if r.gate_distribution
        }
        def read(other: str) -> tuple[str, str]:
            return sources.read(other)

        elsewhere = outcomes_elsewhere(module, module_rules, versions, read)
        result = rewrite(module, path, text, module_rules, versions, elsewhere=elsewhere)
        before = split_lines(text)
        reports.append(ModuleReport(module, path, before, patched_lines(before, result.spans),
                                    list(zip(module_rules, result.outcomes)), result.parts))
    return reports


def outcomes_by_rule(reports: list[ModuleReport]) -> dict[str, oc.Outcome]:
    """Each rule's outcome, by rule id."""
    return {rule.id: o for report in reports for rule, o in report.outcomes}


def parts_by_rule(reports: list[ModuleReport]) -> dict[str, list[tuple[Change, oc.Outcome]]]:
    """Each rule's parts, in every module, with their own outcomes (for `check -v`)."""
    found: dict[str, list[tuple[Change, oc.Outcome]]] = {}
    for report in reports:
        for rule_id, parts in report.parts.items():
            found.setdefault(rule_id, []).extend(parts)
    return found
