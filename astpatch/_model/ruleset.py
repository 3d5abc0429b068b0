"""The rule set: which rules exist, which win, which are disabled; one policy for every front end.

Rules are added in load order: the shipped rules (by file name), then ASTPATCH_RULES, then the
program's own (`install(rules=...)`, `--rules`), then other distributions' entry points. The
first rule of an id wins, and a second one with that id is reported with both origins. Rules
whose id ASTPATCH_DISABLE names are left out. Entry points known only from the index are kept
pending until one of their target modules is imported.
"""

from __future__ import annotations

import os

from .._base import settings
from .rule import Rule
from .rulefiles import RuleFileError, builtin_rules_dir, load_rule_file, rule_files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .entrypoints import Plugin


def standard_sources(extra: Iterable[Rule | str | os.PathLike[str]] = ()) -> list:
    """Where rules come from, in order: shipped, ASTPATCH_RULES, then `extra`."""
    return [builtin_rules_dir(), *settings.rule_paths(), *extra]


def duplicate_id(rule: Rule, first: Rule) -> str:
    """The message for a rule whose id an earlier rule already has (the first one is used)."""
    return f"astpatch: rule id {rule.id!r} from {rule.origin} is already defined by {first.origin}; the first one is used."


def load_rules(sources: Iterable[Rule | str | os.PathLike[str]], report: Callable[[str], None]) -> list[Rule]:
    """The rules of `sources`, in order, first id wins (no ASTPATCH_DISABLE, no entry points)."""
    ruleset = RuleSet(report)
    ruleset.load(sources)
    return ruleset.rules


def rules_in_force(extra: Iterable[Rule | str | os.PathLike[str]], report: Callable[[str], None],
                   failed: list[str] | None = None) -> RuleSet:
    """The rule set a process would have with `install(rules=extra)`, other distributions'
    rules loaded now: for the command line and the pytest plugin, which read no index. `failed`,
    when given, receives the problems of the files of `extra` that could not be loaded."""
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


class UnknownRule(LookupError):
    """`select` was given a name that is no rule's id or module."""


class RuleSet:
    """The rules in force, in load order; problems go to `report` (a warning, or an error when strict)."""

    def __init__(self, report: Callable[[str], None], disabled: frozenset[str] = frozenset()) -> None:
        self.report = report
        self.disabled = disabled
        self.rules: list[Rule] = []
        self._by_id: dict[str, Rule] = {}
        self._by_module: dict[str, list[Rule]] = {}
        self._pending: dict[str, list[Plugin]] = {}  # target module -> entry points not imported yet
        self._waiting_key_rules: list[Rule] = []  # in force once another rule targets their package
        self.seen_ids: set[str] = set()  # every id loaded, disabled or not

    def load(self, sources: Iterable[Rule | str | os.PathLike[str]]) -> list[str]:
        """Add the rules of each source: a `Rule`, a rule file or a directory of them. Each file that
        cannot be loaded is reported; the problems are also returned (the command line fails on
        those of the files the user named)."""
        failed: list[str] = []
        for source in sources:
            if isinstance(source, Rule):
                self.add([source])
                continue
            path = os.fspath(source)
            if not os.path.exists(path):
                self.report(f"astpatch: rule path {path} does not exist; its rules are not loaded.")
                continue
            # The shipped rules are trusted as the astpatch package is (see astpatch._model.rulefiles).
            check = os.path.abspath(path) != builtin_rules_dir()
            try:
                files = rule_files(path, check)
            except RuleFileError as error:
                failed.append(str(error))
                self.report(f"astpatch: {error}. The other rules still apply.")
                continue
            for file in files:
                try:
                    self.add(load_rule_file(file, check))
                except RuleFileError as error:
                    failed.append(str(error))
                    self.report(f"astpatch: {error}. The other rules still apply.")
        return failed

    def add(self, rules: Iterable[Rule]) -> None:
        """Add rules: the first of an id wins; disabled ids are left out."""
        for rule in rules:
            self.seen_ids.add(rule.id)
            if rule.id in self.disabled:
                continue
            first = self._by_id.get(rule.id)
            if first is not None:
                if first is not rule:
                    self.report(duplicate_id(rule, first))
                continue
            self._by_id[rule.id] = rule
            if rule.key_package is not None:
                self._waiting_key_rules.append(rule)
            else:
                self._put_in_force(rule)
        self._activate_key_rules()

    def _put_in_force(self, rule: Rule) -> None:
        self.rules.append(rule)
        for module in rule.modules:
            self._by_module.setdefault(module, []).append(rule)

    def _activate_key_rules(self) -> None:
        """Put in force the key rules (see `astpatch._model.cache_keys`) whose package another rule
        in force, or an indexed entry point, targets: only then can a patch change their key."""
        for rule in list(self._waiting_key_rules):
            if any(_in(m, rule.key_package) for m in self._pending) or any(  # type: ignore[arg-type]
                    _in(m, rule.key_package) for r in self.rules if r.key_package is None for m in r.modules):  # type: ignore[arg-type]
                self._waiting_key_rules.remove(rule)
                self._put_in_force(rule)

    def rules_in_package(self, package: str) -> list[Rule]:
        """The rules in force on modules of `package`, key rules aside; pending entry points load first."""
        for module in [m for m in self._pending if _in(m, package)]:
            self.for_module(module)
        return [r for r in self.rules if r.key_package is None and any(_in(m, package) for m in r.modules)]

    def add_pending(self, plugins: Iterable[Plugin]) -> None:
        """Entry points known from the index: their targets now, their rules when a target is imported."""
        for plugin in plugins:
            for module in plugin.targets:
                self._pending.setdefault(module, []).append(plugin)
        self._activate_key_rules()

    def modules(self) -> frozenset[str]:
        """Every module a rule targets, pending entry points' included."""
        return frozenset(self._by_module) | frozenset(self._pending)

    def for_module(self, module: str) -> list[Rule]:
        """The rules on `module`, in order; loads the entry points pending for it first."""
        pending = self._pending.pop(module, None)
        for plugin in pending or ():
            try:
                self.add(plugin.load())
            except Exception as error:
                self.report(plugin.failed(error))
        return self._by_module.get(module, [])

    def get(self, rule_id: str) -> Rule | None:
        return self._by_id.get(rule_id)

    def unknown_disabled(self) -> list[str]:
        """The ids ASTPATCH_DISABLE names that no loaded rule has."""
        return sorted(self.disabled - self.seen_ids)

    def select(self, names: Iterable[str]) -> list[Rule]:
        """The rules named by id or by module, in the order named; `UnknownRule` for a name that is neither."""
        chosen: list[Rule] = []
        for name in names:
            matched = [r for r in self.rules if name == r.id or name in r.modules]
            if not matched:
                known = ", ".join(sorted(r.id for r in self.rules)) or "none"
                raise UnknownRule(f"no rule has the id or module {name!r} (known rule ids: {known})")
            chosen.extend(r for r in matched if r not in chosen)
        return chosen


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")
