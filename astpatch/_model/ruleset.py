"""The rule set: which rules exist, which win, which are disabled; one policy for every front end.

Rules are added in load order: the shipped rules (by file name), then ASTPATCH_RULES, then the program's
own (`install(rules=...)`, `--rules`), then other distributions' entry points. The first rule of an id
wins, and a second one with that id is reported with both origins. Rules whose id ASTPATCH_DISABLE names
are left out. Entry points known only from their index, and rule files known only from theirs
(`astpatch._model.ruleindex`), are kept pending until one of their target modules is imported; a pending
file keeps its place in the load order, and its rules' ids count from the start (conflicts and
ASTPATCH_DISABLE are judged as if it were loaded).
"""

import _thread
import os

from .._base import settings
from .rulefiles import RuleFileError, builtin_rules_dir, examine_rule_file, load_rule_file, rule_files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .._base.cache import IndexedRule
    from .entrypoints import Plugin
    from .rule import Rule
    from .ruleindex import PendingFile, RuleIndex


def standard_sources(extra: "Iterable[Rule | str | os.PathLike[str]]" = ()) -> list:
    """Where rules come from, in order: shipped, ASTPATCH_RULES, then `extra`."""
    return [builtin_rules_dir(), *settings.rule_paths(), *extra]


def duplicate_id(rule_id: str, origin: str, first: str) -> str:
    """The message for a rule whose id an earlier rule (from `first`) already has: the first one is used."""
    return f"astpatch: rule id {rule_id!r} from {origin} is already defined by {first}; the first one is used."


def load_rules(sources: "Iterable[Rule | str | os.PathLike[str]]", report: "Callable[[str], None]") -> list["Rule"]:
    """The rules of `sources`, in order, first id wins (no ASTPATCH_DISABLE, no entry points)."""
    ruleset = RuleSet(report)
    ruleset.load(sources)
    return ruleset.rules


class RuleSet:
    """The rules in force, in load order; problems go to `report` (a warning, or an error when strict)."""

    def __init__(self, report: "Callable[[str], None]", disabled: frozenset[str] = frozenset()) -> None:
        self.report = report
        self.disabled = disabled
        self._rules: list[Rule] = []
        self._by_id: dict[str, Rule] = {}
        self._by_module: dict[str, list[Rule]] = {}
        self._pending: dict[str, list[Plugin]] = {}  # target module -> entry points not imported yet
        self._files: dict[str, list[PendingFile]] = {}  # target module -> rule files not executed yet
        self._packages: set[str] = set()  # every package (and module) a rule in force or pending targets, key rules aside
        self._waiting_key_rules: list[tuple[Rule, int, int]] = []  # key rules, till in force (`_activate_key_rules`)
        self._waiting_file_keys: list[tuple[PendingFile, int, str, tuple[str, ...]]] = []  # the same, pending
        self._activated: dict[str, int] = {}  # id of a pending key rule -> the slot that put it in force
        self._claims: dict[str, tuple[int, int, str]] = {}  # rule id -> (slot, position, origin) of its first rule
        self._ranks: dict[str, tuple[int, ...]] = {}  # rule id -> its place among the rules in force
        self._reported: set[tuple[int, int]] = set()  # pending rules whose id conflict was reported
        self._slots = 0  # places in the load order: a file, an entry point, or a call of add()
        self._executed: set[int] = set()  # the slots of the pending files executed
        self._lock = _thread.RLock()  # two threads may import two modules of one pending file at once
        self.seen_ids: set[str] = set()  # every id loaded, disabled or not

    @property
    def rules(self) -> list["Rule"]:
        """Every rule in force, in load order: pending rule files are executed now."""
        for file in sorted({f for files in self._files.values() for f in files}, key=lambda f: f.slot):
            self._load_file(file)
        return self._rules

    def load(self, sources: "Iterable[Rule | str | os.PathLike[str]]", index: "RuleIndex | None" = None) -> list[str]:
        """Add the rules of each source: a `Rule`, a rule file or a directory of them. Each file that
        cannot be loaded is reported; the problems are also returned (the command line fails on
        those of the files the user named). With `index`, a file it vouches for is not executed:
        it is kept pending (see `astpatch._model.ruleindex`)."""
        failed: list[str] = []

        def fail(error: RuleFileError) -> None:
            failed.append(str(error))
            self.report(f"astpatch: {error}. The other rules still apply.")

        for source in sources:
            if not isinstance(source, (str, os.PathLike)):
                self.add([source])
                continue
            path = os.fspath(source)
            if not os.path.exists(path):
                self.report(f"astpatch: rule path {path} does not exist; its rules are not loaded.")
                continue
            absolute = os.path.abspath(path)
            # The shipped rules are trusted as the astpatch package is (see astpatch._model.rulefiles).
            check = absolute != builtin_rules_dir()
            if index is not None:  # a file kept pending is executed later, maybe in another working directory
                path = absolute
            try:
                files = rule_files(path, check, index.names if index is not None else os.listdir)
            except RuleFileError as error:
                fail(error)
                continue
            for file in files:
                try:
                    if index is None:
                        self.add(load_rule_file(file, check))
                    elif not self._pending_file(file, check, index, file is path):
                        self.add(index.execute(file, check))
                except RuleFileError as error:
                    fail(error)
        return failed

    def _pending_file(self, file: str, check: bool, index: "RuleIndex", named: bool) -> bool:
        """Keep `file` pending if `index` vouches for it (a file `named` by itself is examined now, as
        executing it now would); whether it is."""
        pending = index.pending(file, check, self._slot())
        if pending is None:
            return False
        if named:
            examine_rule_file(file, check)
        self._add_file(pending)
        return True

    def _slot(self) -> int:
        self._slots += 1
        return self._slots

    def _add_file(self, file: "PendingFile") -> None:
        """Register a pending rule file from what its index entry says of its rules."""
        for position, (rule_id, modules, key_package, _) in enumerate(file.rules):
            self.seen_ids.add(rule_id)
            if rule_id in self.disabled:
                continue
            first = self._claims.get(rule_id)
            if first is not None:
                self.report(duplicate_id(rule_id, file.path, first[2]))
                self._reported.add((file.slot, position))
                continue
            self._claims[rule_id] = (file.slot, position, file.path)
            if key_package is not None:
                self._waiting_file_keys.append((file, position, key_package, modules))
                continue
            self._targeting(modules)
            self._target(file, modules)
        self._activate_key_rules(file.slot)

    def _target(self, file: "PendingFile", modules: "Iterable[str]") -> None:
        for module in modules:
            pending = self._files.setdefault(module, [])
            if file not in pending:
                pending.append(file)
                if pending[0] is not file and pending[-2].slot > file.slot:  # a key rule's file, put in force late
                    pending.sort(key=lambda f: f.slot)

    def _load_file(self, file: "PendingFile") -> None:
        """Execute a pending rule file (once) and put its rules in its place in the load order."""
        with self._lock:
            if file.slot in self._executed:
                return
            self._executed.add(file.slot)
            for module in {m for _, modules, _, _ in file.rules for m in modules}:
                waiting = self._files.get(module)
                if waiting is not None and file in waiting:
                    waiting.remove(file)
                    if not waiting:
                        del self._files[module]
            self._waiting_file_keys = [w for w in self._waiting_file_keys if w[0] is not file]
            try:
                rules = load_rule_file(file.path, file.check)
            except RuleFileError as error:  # it loaded when it was indexed: its surroundings changed
                self.report(f"astpatch: {error}. The other rules still apply.")
                return
            self.add(rules, file.slot)

    def add(self, rules: "Iterable[Rule]", slot: int | None = None) -> None:
        """Add rules, in their order at `slot` in the load order (default: after every other): the first
        of an id wins; disabled ids are left out."""
        with self._lock:
            slot = self._slot() if slot is None else slot
            for position, rule in enumerate(rules):
                self.seen_ids.add(rule.id)
                if rule.id in self.disabled:
                    continue
                claim = self._claims.get(rule.id)
                if claim is not None and claim[:2] != (slot, position):
                    if self._by_id.get(rule.id) is not rule and (slot, position) not in self._reported:
                        self.report(duplicate_id(rule.id, rule.origin, claim[2]))
                    continue
                self._claims[rule.id] = (slot, position, rule.origin)
                self._by_id[rule.id] = rule
                if rule.key_package is None:
                    self._targeting(rule.modules)
                    self._put_in_force(rule, _rank(slot, position), rule.modules)
                elif rule.id in self._activated:  # put in force while its file was pending
                    self._put_in_force(rule, _rank(slot, position, self._activated.pop(rule.id)))
                else:
                    self._waiting_key_rules.append((rule, slot, position))
            self._activate_key_rules(slot)

    def _put_in_force(self, rule: "Rule", rank: tuple[int, ...], modules: tuple[str, ...] | None = None) -> None:
        """Put `rule` among the rules in force at `rank` (a rule file executed late keeps its place)."""
        ranks = self._ranks
        ranks[rule.id] = rank
        for kept in [self._rules, *(self._by_module.setdefault(m, []) for m in modules or rule.modules)]:
            at = len(kept)
            while at and ranks[kept[at - 1].id] > rank:
                at -= 1
            kept.insert(at, rule)

    def _activate_key_rules(self, slot: int) -> None:
        """Put in force the key rules (see `astpatch._model.cache_keys`) whose package another rule
        in force, a pending rule file's or an indexed entry point targets: only then can a patch
        change their key. One takes its place after the rules of `slot`, the step that put it in
        force, whether its file is executed now or later."""
        if not (self._waiting_key_rules or self._waiting_file_keys):
            return
        for waiting in [w for w in self._waiting_key_rules if w[0].key_package in self._packages]:
            self._waiting_key_rules.remove(waiting)
            rule, added, position = waiting
            self._put_in_force(rule, _rank(added, position, slot))
        for pending in [w for w in self._waiting_file_keys if w[2] in self._packages]:
            self._waiting_file_keys.remove(pending)
            file, position, _, modules = pending
            self._activated[file.rules[position][0]] = slot
            self._target(file, modules)

    def _targeting(self, modules: "Iterable[str]") -> None:
        """Note that a rule (not a key rule) targets `modules`: so it does each package they are in."""
        for module in modules:
            while module and module not in self._packages:
                self._packages.add(module)
                module = module.rpartition(".")[0]

    def rules_in_package(self, package: str) -> list["Rule"]:
        """The rules in force on modules of `package`, key rules aside; pending ones load first."""
        for module in [m for m in [*self._pending, *self._files] if _in(m, package)]:
            self.for_module(module)
        return [r for r in self._rules if r.key_package is None and any(_in(m, package) for m in r.modules)]

    def add_pending(self, plugins: "Iterable[Plugin]") -> None:
        """Entry points known from the index: their targets now, their rules when a target is imported."""
        for plugin in plugins:
            for module in plugin.targets:
                self._pending.setdefault(module, []).append(plugin)
            self._targeting(plugin.targets)
        self._activate_key_rules(self._slot())

    def modules(self) -> frozenset[str]:
        """Every module a rule targets, pending entry points' and rule files' included."""
        return frozenset(self._by_module) | frozenset(self._pending) | frozenset(self._files)

    def for_module(self, module: str) -> list["Rule"]:
        """The rules on `module`, in order; loads the rule files and entry points pending for it first."""
        for file in list(self._files.get(module, ())):
            self._load_file(file)
        self._load_plugins(module)
        return self._by_module.get(module, [])

    def keyed_for_module(self, module: str, examined: list[str] | None = None) -> list["Rule | IndexedRule"]:
        """The rules on `module` as `for_module` gives them, but those of pending rule files as
        their index records them, not executed: enough for a cache key (ids, modules, fingerprints).
        Entry points pending for the module are loaded (no index records their rules' fingerprints).
        The pending files, examined for trust as executing them would be, go into `examined`."""
        from .._base.cache import IndexedRule

        with self._lock:
            self._load_plugins(module)
            for file in list(self._files.get(module, ())):
                if examined is not None:
                    examined.append(file.path)
                try:  # trusted still, as executing it would check first (a few `stat`s)
                    examine_rule_file(file.path, file.check)
                except RuleFileError:
                    self._load_file(file)  # which reports it, as for_module would
            files = self._files.get(module)
            if not files:
                return list(self._by_module.get(module, []))
            ranked: list[tuple[tuple[int, ...], Rule | IndexedRule]] = [
                (self._ranks[r.id], r) for r in self._by_module.get(module, [])]
            for file in files:
                for position, (rule_id, modules, key_package, fingerprint) in enumerate(file.rules):
                    if module not in modules or self._claims.get(rule_id, ())[:2] != (file.slot, position):
                        continue  # another module's, or disabled, or another rule has its id
                    if key_package is not None and rule_id not in self._activated:
                        continue  # a key rule not in force (yet)
                    rank = _rank(file.slot, position, self._activated[rule_id] if key_package is not None else None)
                    ranked.append((rank, IndexedRule(rule_id, modules, fingerprint)))
            ranked.sort(key=lambda item: item[0])
            return [rule for _, rule in ranked]

    def _load_plugins(self, module: str) -> None:
        """Import the entry points pending for `module` and add their rules."""
        pending = self._pending.pop(module, None)
        for plugin in pending or ():
            try:
                self.add(plugin.load())
            except Exception as error:
                self.report(plugin.failed(error))

    def get(self, rule_id: str) -> "Rule | None":
        """The rule in force with this id; a pending rule file that has it is executed first."""
        claim = self._claims.get(rule_id)
        if claim is not None and rule_id not in self._by_id:
            for file in {f for files in self._files.values() for f in files if f.slot == claim[0]}:
                self._load_file(file)
        return self._by_id.get(rule_id)

    def unknown_disabled(self) -> list[str]:
        """The ids ASTPATCH_DISABLE names that no loaded rule has."""
        return sorted(self.disabled - self.seen_ids)


def _rank(slot: int, position: int, in_force_at: int | None = None) -> tuple[int, ...]:
    """A rule's place among those in force: (slot, position); a key rule's after the slot that put it in force."""
    return (slot, 0, position) if in_force_at is None else (in_force_at, 1, slot, position)


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")
