"""What a rule's outcome on a release means for its author: keep it, delete it, or re-edit it.

`astpatch check` reports the outcome statuses (`astpatch._base.outcomes`); after an upgrade the
question is simpler, and these verdicts answer it:

- `applies`: the rule does its job there (`applied`): keep it.
- `upstream`: the release already has the change (`already-fixed`): delete the rule.
- `conflicts`: the rule cannot do its job there (`failed`, `target-missing`, `partly-fixed`):
  re-edit it (`astpatch edit --rule ID`, then `astpatch commit`).

A rule outside its version gate (`not-applicable`) does nothing there, silently, at import. So its
edit is tried there without the gate: if it does not apply, the verdict is `conflicts`; if it does,
`outside-gate` (the release may still need the change: re-edit and commit to gate the rule to it).
A source without the rule's module (`module-missing`) gets `absent`.
"""

from __future__ import annotations

from .._base import outcomes as oc
from .._model.rule import Rule
from .evaluate import evaluate, outcomes_by_rule
from .sources import Sources

APPLIES = "applies"
UPSTREAM = "upstream"
CONFLICTS = "conflicts"
OUTSIDE_GATE = "outside-gate"
ABSENT = "absent"

# Display words, for people; data (`check --json`) carries the verdicts themselves.
WORDS = {
    APPLIES: "still applies",
    UPSTREAM: "upstream: delete it",
    CONFLICTS: "conflicts: re-edit it",
    OUTSIDE_GATE: "outside its gate",
    ABSENT: "module missing",
}

_OF_STATUS = {oc.APPLIED: APPLIES, oc.ALREADY_FIXED: UPSTREAM, oc.NOT_APPLICABLE: OUTSIDE_GATE,
              oc.MODULE_MISSING: ABSENT, **{status: CONFLICTS for status in oc.PROBLEMS}}


def verdicts(rules: list[Rule], sources: Sources, outcomes: dict[str, oc.Outcome],
             dist_version: str | None = None) -> tuple[dict[str, str], dict[str, oc.Outcome]]:
    """Each rule's verdict on `sources`, by rule id, from its outcome there (see the module's docstring);
    and, for the rules outside their gate, their outcome without it (which says why they conflict)."""
    found, without_gate = {}, {}
    for rule in rules:
        status = outcomes[rule.id].status
        if status == oc.NOT_APPLICABLE and rule.gate is not None:
            outcome = outcomes_by_rule(evaluate([rule.without_gate()], sources, dist_version))[rule.id]
            without_gate[rule.id] = outcome
            status = outcome.status
            found[rule.id] = OUTSIDE_GATE if status in (oc.APPLIED, oc.NOT_APPLICABLE) else _OF_STATUS[status]
        else:
            found[rule.id] = _OF_STATUS[status]
    return found, without_gate
