"""A rule's parts on one module, and how their outcomes combine into the rule's: all or nothing.

A rule is one upstream change; each of its `Change`s on the module being rewritten is a `Part`.
The engine gives every part an outcome; `combine` turns a rule's part outcomes (here and in the
rule's other modules) into the rule's one outcome, and only a rule whose every part applies is
applied anywhere.
"""

from __future__ import annotations

from .._base import outcomes as oc
from .._model.gate import evaluate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .._model.edit import Edit
    from .._model.rule import Change, Rule


class Part:
    """One change of one rule, on the module being rewritten."""

    __slots__ = ("rule", "change")

    def __init__(self, rule: Rule, change: Change) -> None:
        self.rule = rule
        self.change = change

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def target(self) -> str:
        return self.change.scope

    @property
    def edit(self) -> Edit:
        return self.change.edit



def gate_reason(rule: Rule, versions: dict[str, str | None]) -> str | None:
    """Why the rule's gate does not select the installed version, or None when it does."""
    if rule.gate_distribution is None:
        return None
    gate = evaluate(rule.gate_distribution, rule.gate_specifier, versions.get(rule.gate_distribution))
    return None if gate.selected else gate.reason


def version(rule: Rule, versions: dict[str, str | None]) -> str | None:
    return versions.get(rule.gate_distribution) if rule.gate_distribution else None


def outcome(part: Part, module: str, versions: dict[str, str | None], status: str, reason: str) -> oc.Outcome:
    """A part's outcome; `not-applicable` instead of a problem when the gate does not select the
    installed version (a rule outside its gate has nothing to say about the code, missing or not)."""
    if status in oc.PROBLEMS:
        outside = gate_reason(part.rule, versions)
        if outside is not None:
            return oc.Outcome(part.id, module, oc.NOT_APPLICABLE, outside, version=version(part.rule, versions))
    return oc.Outcome(part.id, module, status, reason, version=version(part.rule, versions))


def _labelled(rule: Rule, change: Change, o: oc.Outcome) -> oc.Outcome:
    """A part's outcome with its reason naming the part (for a rule of several parts)."""
    label = f"part {rule.changes.index(change) + 1} ({change.where})"
    return oc.Outcome(o.rule_id, o.module, o.status, f"{label}: {o.reason}", version=o.version)


def combine(rule: Rule, module: str, found: list[tuple[Change, oc.Outcome]]) -> oc.Outcome:
    """The rule's outcome from its parts' outcomes (this module's and its other modules').

    Every part already upstream: `already-fixed`. Outside the gate: `not-applicable`. A part that
    fails: the rule fails, and the reason names the part. Some parts upstream and the others not:
    `partly-fixed`, naming the parts upstream (applying the rest would be half a change).
    Otherwise `applied`.
    """
    if len(found) == 1:
        only = found[0][1]
        return oc.Outcome(rule.id, module, only.status, only.reason, version=only.version)
    parts = [_labelled(rule, change, o) for change, o in sorted(found, key=lambda f: rule.changes.index(f[0]))]
    statuses = [p.status for p in parts]
    first = parts[0]
    if all(s == oc.ALREADY_FIXED for s in statuses):
        return oc.Outcome(rule.id, module, oc.ALREADY_FIXED, "; ".join(p.reason for p in parts), version=first.version)
    outside = next((p for p in parts if p.status == oc.NOT_APPLICABLE), None)
    if outside is not None:
        return oc.Outcome(rule.id, module, oc.NOT_APPLICABLE, outside.reason, version=first.version)
    problem = next((p for p in parts if p.status in oc.PROBLEMS or p.status == oc.MODULE_MISSING), None)
    if problem is not None:
        status = oc.FAILED if problem.status == oc.MODULE_MISSING else problem.status
        return oc.Outcome(rule.id, module, status, f"{problem.reason}; no part of the rule is applied",
                          version=first.version)
    fixed = [p for p in parts if p.status == oc.ALREADY_FIXED]
    if fixed:
        listed = "; ".join(p.reason for p in fixed)
        return oc.Outcome(rule.id, module, oc.PARTLY_FIXED,
                          f"{len(fixed)} of {len(parts)} parts are already upstream ({listed}); applying the rest "
                          "would be half a change, so no part is applied: update the rule", version=first.version)
    return oc.Outcome(rule.id, module, oc.APPLIED, "; ".join(p.reason for p in parts if p.reason), version=first.version)
