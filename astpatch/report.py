"""What each rule would do to a module's source, computed afresh (never from the cache).

Shared by the command line (`list`, `diff`, `check`, `cache warm`) and the pytest plugin. The
source comes from a `Sources` (the installed environment, a wheel, a directory...), so nothing
is imported.
"""

from __future__ import annotations

from . import outcome as oc
from .rewrite import rewrite
from .rule import Rule
from .sources import SourceNotFound, Sources
from .spans import patched_lines, split_lines

APPLIES = "applies"
ALREADY_FIXED = "already-fixed"
OUTSIDE_GATE = "outside-gate"
NOT_INSTALLED = "not-installed"
TARGET_MISSING = "target-missing"
EDIT_FAILS = "edit-fails"

DESCRIPTIONS = {
    APPLIES: "would apply",
    ALREADY_FIXED: "already fixed upstream",
    OUTSIDE_GATE: "outside its version gate",
    NOT_INSTALLED: "target module not installed",
    TARGET_MISSING: "target missing",
    EDIT_FAILS: "edit fails",
}

# A rule that its gate selects but that cannot do its job: it needs updating.
STALE = frozenset((TARGET_MISSING, EDIT_FAILS))

_STATE_OF = {
    oc.APPLIED: APPLIES,
    oc.ALREADY_FIXED: ALREADY_FIXED,
    oc.NOT_APPLICABLE: OUTSIDE_GATE,
    oc.TARGET_MISSING: TARGET_MISSING,
    oc.FAILED: EDIT_FAILS,
}


class ModuleReport:
    """One module's source, the rules on it, and what they make of it."""

    def __init__(self, module: str, path: str | None, before: list[str], after: list[str],
                 states: list[tuple[Rule, str, oc.Outcome]]) -> None:
        self.module = module
        self.path = path
        self.before = before
        self.after = after
        self.states = states  # (rule, state, outcome), in the rules' order


def evaluate(rules: list[Rule], sources: Sources, dist_version: str | None = None) -> list[ModuleReport]:
    """Rewrite each targeted module's source from `sources`; `dist_version` overrides versions."""
    by_module: dict[str, list[Rule]] = {}
    for rule in rules:
        by_module.setdefault(rule.module, []).append(rule)
    reports = []
    for module, module_rules in by_module.items():
        try:
            path, text = sources.read(module)
        except SourceNotFound as missing:
            states = [(r, NOT_INSTALLED, oc.Outcome(r.id, module, oc.NOT_APPLICABLE, str(missing))) for r in module_rules]
            reports.append(ModuleReport(module, None, [], [], states))
            continue
        versions = {
            r.gate_distribution: dist_version or sources.version(r.gate_distribution)
            for r in module_rules if r.gate_distribution
        }
        result = rewrite(module, path, text, module_rules, versions)
        before = split_lines(text)
        states = [(r, _STATE_OF[o.status], o) for r, o in zip(module_rules, result.outcomes)]
        reports.append(ModuleReport(module, path, before, patched_lines(before, result.spans), states))
    return reports
