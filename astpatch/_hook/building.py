"""How `install()` builds the rule set it puts in force, and the start-up record that later
processes install from instead (`astpatch._hook.record`), written when that start-up met no problem."""

import os
import time

from .._base import settings
from .._base.messages import configuration
from .._base.store import Store
from .._model.entrypoints import Plugin, read_index
from .._model.ruleindex import RuleIndex
from .._model.ruleset import RuleSet, standard_sources
from .session import Session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


def build_rules(given: list, store: Store, disabled: settings.Disabled, report: "Callable[[str], None]", *,
                vouched: "tuple[tuple, ...] | None" = None
                ) -> "tuple[RuleSet, list[Plugin] | None, tuple[tuple, set[str]] | None]":
    """The rule set install() puts in force; the indexed entry points (None: none are indexed,
    discover them at the first import; with `vouched`, those a start-up record holds, no index read);
    and what all that depends on, the entry-point index's stamp and the paths whose status counts, None
    when no record can stand for it (no cache, no entry-point index yet, a rule file executed at every
    start)."""
    ruleset = RuleSet(report, disabled.rule_ids)
    sources = standard_sources(given)
    index = None
    if store.directory is not None:  # no index without a cache: every rule file is executed now
        index = RuleIndex(store, [os.fspath(s) for s in sources if isinstance(s, (str, os.PathLike))], report)
    ruleset.load(sources, index)
    if index is not None:
        index.save()
    # Rules that other distributions ship: from the index when it is current (no metadata is
    # read), else discovered at the first import (see astpatch._model.entrypoints).
    stamps: list[tuple] = []
    indexed: list[Plugin] | None
    if vouched is not None:
        indexed = [Plugin(*plugin) for plugin in vouched]
    else:
        indexed = read_index(store, report, stamps) if store.usable() else None
    if indexed is not None:
        ruleset.add_pending(indexed)
    if index is None or indexed is None or not stamps or any(entry[2] is None for entry in index.files.values()):
        return ruleset, indexed, None
    depends: set[str] = set()
    depends.update(os.path.abspath(os.fspath(s)) for s in sources if isinstance(s, (str, os.PathLike)))
    depends.update(index.directories)
    depends.update(_with_directories(index.files))
    depends.update(file for plugin in indexed for file in plugin.files)  # the entry points' rule modules
    depends.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # where the shipped rules are
    return ruleset, indexed, (stamps[0], depends)


def _with_directories(files: "Iterable[str]") -> set[str]:
    """Rule files and the directories whose status decides whether they are trusted (`untrusted_rule_path`)."""
    found: set[str] = set()
    real: dict[str, str] = {}  # directory -> its real path: thousands of files share a few directories
    for path in files:
        directory = os.path.dirname(path)
        if directory not in real:
            real[directory] = os.path.realpath(directory)
        found.update((path, directory, real[directory]))
        if os.path.islink(path):
            found.add(os.path.dirname(os.path.realpath(path)))
    return found


def start_up(given: list, store: Store, disabled: settings.Disabled, strict: bool, start: str | None,
             report: "Callable[[str], None]") -> "tuple[Session, list | None]":
    """What install() does without a start-up record: the session with the rule set built, and the
    indexed entry points; and the record written for the processes that follow (`start`: its identity,
    None for none), when nothing was reported."""
    problems: list[str] = []

    def reporting(message: str) -> None:
        problems.append(message)
        report(message)

    began = time.time_ns()  # before anything is examined: a change after it is never recorded as settled
    ruleset, indexed, basis = build_rules(given, store, disabled, reporting)
    for unknown in ruleset.unknown_disabled():
        problems.append(unknown)
        configuration(f"astpatch: ASTPATCH_DISABLE names {unknown!r}, which is no known rule id "
                      f"(known: {', '.join(sorted(ruleset.seen_ids)) or 'none'}).")
    if start is not None and basis is not None and indexed is not None and not problems:
        _save_record(store, start, ruleset, indexed, *basis, began, problems)
    return Session(ruleset, store, strict), indexed


def _save_record(store: Store, start: str, ruleset: "RuleSet", plugins: "list[Plugin]", stamp: tuple,
                 depends: set[str], began: int, problems: list) -> None:
    """Write the start-up record of a start-up that met no problem, if every status it depends on was settled."""
    from . import record

    evidence = record.settled_evidence(depends, began)
    if evidence is None:
        return
    keyed: dict[str, tuple | None] = {}
    examined: dict[str, set[str]] = {}
    by_entry_points = {module for plugin in plugins for module in plugin.targets}
    for module in ruleset.modules():
        if module in by_entry_points:  # its entry points' rules are known once imported: at its import
            keyed[module], examined[module] = None, set()
            continue
        found: list[str] = []
        rules = ruleset.keyed_for_module(module, found)  # as at the import, which examines the same files
        keyed[module] = tuple((r.id, r.modules, r.fingerprint()) for r in rules)
        examined[module] = _with_directories(found)
    more = record.settled_evidence(set().union(*examined.values()) - evidence.keys(), began)  # each path once
    if more is None or problems:
        return
    evidence.update(more)
    record.save(store, start, stamp, evidence, {module: (keyed[module], examined[module]) for module in keyed},
                tuple(plugin.as_tuple() for plugin in plugins))
