"""What the import hook works with: the rule set, the cache, and where outcomes are reported.

The finder, the loader and live patching see only this, so the hook's parts do not depend on
the `Installation` handle that owns them.
"""

import _thread
import sys

from .._base import outcomes as oc
from .._base.cache import Cache
from .._base.messages import trace, warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .._base.cache import IndexedRule
    from .._base.store import Store
    from .._model.rule import Rule
    from .._model.ruleset import RuleSet
    from .record import Record


class Session:
    """The rules and the cache of one installation, and its reporting policy (warn, or raise when strict).

    Installed from a start-up record (`astpatch._hook.record`), it has the record's targets and keyed
    rules, and builds the rule set with `build_rules` when something needs it."""

    def __init__(self, rules: "RuleSet | None", store: "Store", strict: bool, *,
                 record: "Record | None" = None, build_rules: "Callable[[], RuleSet] | None" = None) -> None:
        self._rules = rules
        self.store = store
        self.strict = strict
        self._record = record
        self._build_rules = build_rules
        self._lock = _thread.RLock()
        self._cache: Cache | None = None
        self._warned: set[str] = set()  # rules a problem was already reported for

    @property
    def rules(self) -> "RuleSet":
        """The rule set, built now if the session was installed from a record."""
        if self._rules is None:
            with self._lock:
                if self._rules is None:
                    assert self._build_rules is not None
                    trace("building the rule set that the start-up record stood for")
                    self._rules = self._build_rules()
        return self._rules

    def targets(self) -> frozenset[str]:
        """Every module a rule targets."""
        if self._rules is None and self._record is not None:
            return self._record.targets
        return self.rules.modules()

    def keyed_for_module(self, module: str) -> "list[Rule | IndexedRule]":
        """The rules a cache key takes for `module` (`RuleSet.keyed_for_module`): from the start-up
        record while the files that define them are unchanged, so a cache hit builds no rule set."""
        if self._rules is None and self._record is not None:
            keyed = self._record.keyed(module)
            if keyed is not None:
                return keyed
        return self.rules.keyed_for_module(module)

    @property
    def cache(self) -> "Cache":
        """The code cache, made at the first target import."""
        if self._cache is None:
            self._cache = Cache(self.store)
        return self._cache

    def report_problem(self, message: str) -> None:
        warn(message, strict=self.strict)

    def discover_plugins(self) -> None:
        """Read the `astpatch.rules` entry points (importlib.metadata) and index them.

        A discovery that met a problem (metadata that cannot be read, rules that cannot be
        loaded) writes no index: an index would hide the problem, and the rules missing, from
        the processes that follow, which discover again and report it too.
        """
        from .._base.evidence import stamp
        from .._model import entrypoints

        trace("discovering the astpatch.rules entry points (no current index)")
        problems: list[str] = []

        def report(message: str) -> None:
            problems.append(message)
            self.report_problem(message)

        taken = stamp()  # before reading: a distribution installed meanwhile makes the index stale
        found, rules = entrypoints.discover(report)
        self.rules.add(rules)
        if not problems and self.store.usable(create=True):
            entrypoints.write_index(self.store, found, taken)

    def imported_without(self, module: str, rules: "Sequence[Rule | IndexedRule]") -> dict[str, str]:
        """By rule id, why a rule over several modules cannot apply in `module`: another of its
        modules already runs without its part (it failed there, or was imported before install())."""
        late: dict[str, str] = {}
        recorded: dict[tuple[str, str], oc.Outcome] | None = None  # read only for a rule over several modules
        for rule in rules:
            for other in rule.modules:
                if other == module or other not in sys.modules:
                    continue
                if recorded is None:
                    recorded = {(o.rule_id, o.module): o for o in oc.recorded()}
                done = recorded.get((rule.id, other))
                if done is not None and done.status == oc.APPLIED:
                    continue
                late[rule.id] = done.reason if done is not None else (
                    f"{other} was imported without its part of the rule (before astpatch.install()), so no part "
                    "is applied. Call astpatch.install() before anything imports it, or run the program with "
                    "`astpatch run`")
                break
        return late

    def outcome_before_import(self, rule: "Rule") -> "oc.Outcome | None":
        """The outcome the import of `rule`'s first module will have, decided now from its source
        (a cache lookup, or a rewrite whose entry the import then finds); None when that module
        is already imported, or has no source file."""
        module = rule.modules[0]
        if module in sys.modules:
            return None  # imported before install() and not patched live: it runs upstream's code
        from .._base.modulefiles import SourceNotFound, locate
        from .._engine.pipeline import build_file

        try:
            built = build_file(module, locate(module), self.rules.for_module(module), self.cache)
        except (SourceNotFound, OSError):
            return None
        return next((o for o in built.outcomes if o.rule_id == rule.id), None)

    def report(self, outcomes: "list[oc.Outcome]") -> None:
        """Record outcomes for `applied()`, trace each, and warn (or raise) for each problem."""
        oc.record(outcomes)
        for o in outcomes:
            source = "cache" if o.from_cache else "rewrite"
            trace(f"{o.module}: rule {o.rule_id}: {o.status} ({source}){': ' + o.reason if o.reason else ''}",
                  outcome=True)
            if o.status not in oc.PROBLEMS and not (o.status == oc.NOT_APPLICABLE and o.version is None):
                continue  # nothing to say, so the rule is not looked up: a pending rule file stays pending
            rule = self.rules.get(o.rule_id)
            if o.status == oc.NOT_APPLICABLE and o.version is None and rule is not None and rule.gate_distribution:
                # The gate names a distribution that is not installed (a typo, often).
                warn(f"astpatch: rule {o.rule_id} is not applied to {o.module}: {o.reason}. Check the "
                     "distribution name in the rule's gate.", strict=False)
            if o.status in oc.PROBLEMS and o.rule_id not in self._warned:
                # One warning a rule: a rule over several modules fails in each of them alike. It
                # counts once given: a warning raised (strict, -W error) fails this import, and
                # the next import of the module raises it again rather than run without the fix.
                modules = ", ".join(rule.modules) if rule is not None and len(rule.modules) > 1 else o.module
                warn(
                    f"astpatch: rule {o.rule_id} was not applied to {modules}{self._installed(o)}: {o.reason}. "
                    f"{modules} {'are' if ', ' in modules else 'is'} imported without this fix. Run `astpatch list` "
                    f"to see every rule's state, update astpatch, or set ASTPATCH_DISABLE={o.rule_id} to turn "
                    "the rule off.",
                    strict=self.strict,
                )
                self._warned.add(o.rule_id)

    def _installed(self, o: "oc.Outcome") -> str:
        """` (torch 2.10.0)`: the installed version a problem was met with, for the message."""
        rule = self.rules.get(o.rule_id)
        distribution = rule.gate_distribution if rule is not None else None
        version = o.version
        if distribution is None:  # no gate: the top-level package's distribution, if it has one
            from .._base.metadata import installed_version

            distribution = o.module.split(".")[0]
            version = installed_version(distribution)
        return f" ({distribution} {version})" if version else ""
