"""What happened when a rule met its module: a value, never an exception.

Every rule that meets an import leaves one `Outcome` in the process-wide record that
`astpatch.applied()` returns, whether it was applied, found already fixed upstream, skipped by
its gate, or failed.
"""

import _thread  # not threading: this module is imported at start-up

APPLIED = "applied"
ALREADY_FIXED = "already-fixed"
NOT_APPLICABLE = "not-applicable"
TARGET_MISSING = "target-missing"
FAILED = "failed"
# A rule of several parts, some of them already upstream and the others not: nothing is applied.
PARTLY_FIXED = "partly-fixed"
# Only from the command line and the pytest plugin, which read sources without importing them:
# the rule's module is not in the sources (an import would never meet the rule).
MODULE_MISSING = "module-missing"

STATUSES = (APPLIED, ALREADY_FIXED, NOT_APPLICABLE, TARGET_MISSING, FAILED, PARTLY_FIXED, MODULE_MISSING)

# Outcomes that mean the user's program runs without a fix it was promised: these warn (or
# raise, in strict mode), and make `astpatch check` and `astpatch list` exit 1 (a stale rule).
# `not-applicable` (outside the rule's gate) and `already-fixed` do not.
PROBLEMS = frozenset((TARGET_MISSING, FAILED, PARTLY_FIXED))

# Display words, for people; data (JSON, `applied()`) carries the statuses themselves.
DESCRIPTIONS = {
    APPLIED: "would apply",
    ALREADY_FIXED: "already fixed upstream",
    NOT_APPLICABLE: "outside its version gate",
    TARGET_MISSING: "target missing",
    FAILED: "edit fails",
    PARTLY_FIXED: "partly fixed upstream",
    MODULE_MISSING: "target module not installed",
}


class Outcome:
    """The result of one rule on one module in this process."""

    __slots__ = ("rule_id", "module", "status", "reason", "from_cache", "version")

    def __init__(
        self,
        rule_id: str,
        module: str,
        status: str,
        reason: str = "",
        from_cache: bool = False,
        version: str | None = None,
    ) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown outcome status {status!r}")
        self.rule_id = rule_id
        self.module = module
        self.status = status
        self.reason = reason
        self.from_cache = from_cache
        self.version = version  # the gated distribution's version, when the rule has a gate

    def to_tuple(self) -> tuple[str, str, str, str, str | None]:
        """The cacheable part (everything but `from_cache`)."""
        return (self.rule_id, self.module, self.status, self.reason, self.version)

    @classmethod
    def from_tuple(cls, data: tuple, from_cache: bool) -> "Outcome":
        rule_id, module, status, reason, version = data
        return cls(rule_id, module, status, reason, from_cache, version)

    def as_dict(self) -> dict:
        return {
            "rule": self.rule_id,
            "module": self.module,
            "outcome": self.status,
            "reason": self.reason,
            "from_cache": self.from_cache,
            "version": self.version,
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Outcome):
            return NotImplemented
        return self.to_tuple() == other.to_tuple() and self.from_cache == other.from_cache

    def __repr__(self) -> str:
        reason = f", reason={self.reason!r}" if self.reason else ""
        return (
            f"Outcome(rule_id={self.rule_id!r}, module={self.module!r}, "
            f"status={self.status!r}{reason}, from_cache={self.from_cache})"
        )


_record: list[Outcome] = []
_record_lock = _thread.allocate_lock()


def record(outcomes: list[Outcome]) -> None:
    with _record_lock:
        _record.extend(outcomes)


def recorded() -> list[Outcome]:
    """Every outcome recorded in this process, oldest first."""
    with _record_lock:
        return list(_record)


def clear_recorded() -> None:
    """Forget the outcomes recorded so far (for tests: `astpatch.testing.clear_outcomes`)."""
    with _record_lock:
        _record.clear()
