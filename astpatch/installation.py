"""`install()`, `uninstall()`, `applied()`, and the installation they manage.

`install()` runs at start-up, before the user's program, so it does as little as possible: it
loads the rule files (small Python files, executed without libcst) and puts one finder first on
`sys.meta_path`. It imports no target, reads no package metadata and imports no libcst; all of
that happens when a target module is actually imported.
"""

from __future__ import annotations

import _thread
import os
import sys

from . import config
from . import outcome as oc
from .cache import Cache
from .finder import PatchingFinder
from .messages import trace, warn
from .rule import Rule
from .rulefiles import builtin_rules_dir, duplicate_id, load_rules

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

_lock = _thread.RLock()
_current: Installation | None = None


class Installation:
    """An installed astpatch: the handle `install()` returns.

    `uninstall()` (or leaving a `with` block) removes its finder; modules already imported keep
    the code they were given.
    """

    def __init__(self, rules: list[Rule], cache: Cache, strict: bool, active: bool = True,
                 disabled: frozenset[str] = frozenset()) -> None:
        self.rules: list[Rule] = []
        self.cache = cache
        self.strict = strict
        self._disabled = disabled
        self._by_module: dict[str, list[Rule]] = {}
        self.targets: frozenset[str] = frozenset()
        self._plugins: dict[str, list] = {}  # target module -> entry points not imported yet
        self.finder = PatchingFinder(self)
        self.add_rules(rules)
        self.active = active
        self._libcst_version: str | None = None

    def add_rules(self, rules: list[Rule]) -> None:
        """Add rules (first id wins; disabled ids are left out) and widen the finder's targets."""
        known = {r.id: r for r in self.rules}
        for rule in rules:
            if rule.id in self._disabled:
                continue
            if rule.id in known:
                if known[rule.id] is not rule:
                    self._report_problem(duplicate_id(rule, known[rule.id]))
                continue
            known[rule.id] = rule
            self.rules.append(rule)
            self._by_module.setdefault(rule.module, []).append(rule)
        self._set_targets()

    def _set_targets(self) -> None:
        self.targets = frozenset(self._by_module) | frozenset(self._plugins)
        self.finder.set_targets(self.targets)

    def add_indexed_plugins(self, plugins: list) -> None:
        """Entry points known from the index: their targets now, their rules when a target is imported."""
        for plugin in plugins:
            for module in plugin.targets:
                self._plugins.setdefault(module, []).append(plugin)
        self._set_targets()

    def discover_plugins(self) -> None:
        """Read the `astpatch.rules` entry points (importlib.metadata) and index them."""
        from . import plugins as entry_points

        trace("discovering the astpatch.rules entry points (no current index)")
        found, rules = entry_points.discover(self._report_problem)
        self.add_rules(rules)
        if self.cache.usable(create=True):
            entry_points.write_index(self.cache.directory, found)

    def rules_for(self, module: str) -> list[Rule]:
        pending = self._plugins.pop(module, None)
        if pending:
            for plugin in pending:
                try:
                    self.add_rules(plugin.load())
                except Exception as error:
                    self._report_problem(plugin.failed(error))
            self._set_targets()
        return self._by_module.get(module, [])

    def _report_problem(self, message: str) -> None:
        warn(message, strict=self.strict)

    def libcst_version(self) -> str | None:
        if self._libcst_version is None:
            from .distributions import installed_version

            self._libcst_version = installed_version("libcst", near=__file__) or "not installed"
        return self._libcst_version

    def report(self, outcomes: list[oc.Outcome]) -> None:
        """Record outcomes for `applied()`, trace each, and warn (or raise) for each problem."""
        oc.record(outcomes)
        for o in outcomes:
            source = "cache" if o.from_cache else "rewrite"
            trace(f"{o.module}: rule {o.rule_id}: {o.status} ({source}){': ' + o.reason if o.reason else ''}")
            if o.status == oc.NOT_APPLICABLE and o.version is None and self._gate_names_missing(o):
                warn(f"astpatch: rule {o.rule_id} is not applied to {o.module}: {o.reason}. Check the "
                     "distribution name in the rule's gate.", strict=False)
            if o.status in oc.PROBLEMS:
                warn(
                    f"astpatch: rule {o.rule_id} was not applied to {o.module}{self._installed(o)}: {o.reason}. "
                    f"{o.module} is imported without this fix. Run `astpatch list` to see every rule's "
                    f"state, update astpatch, or set ASTPATCH_DISABLE={o.rule_id} to turn the rule off.",
                    strict=self.strict,
                )

    def _gate_names_missing(self, o: oc.Outcome) -> bool:
        """The rule's gate names a distribution that is not installed (a typo, often)."""
        rule = next((r for r in self.rules if r.id == o.rule_id), None)
        return rule is not None and rule.gate_distribution is not None and o.version is None

    def _installed(self, o: oc.Outcome) -> str:
        """` (torch 2.10.0)`: the installed version a problem was met with, for the message."""
        rule = next((r for r in self.rules if r.id == o.rule_id), None)
        distribution = rule.gate_distribution if rule is not None else None
        version = o.version
        if distribution is None:  # no gate: the top-level package's distribution, if it has one
            from .distributions import installed_version

            distribution = o.module.split(".")[0]
            version = installed_version(distribution)
        return f" ({distribution} {version})" if version else ""

    def uninstall(self) -> None:
        global _current
        with _lock:
            while self.finder in sys.meta_path:
                sys.meta_path.remove(self.finder)
            self.active = False
            if _current is self:
                _current = None

    def __enter__(self) -> Installation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    def __repr__(self) -> str:
        state = "active" if self.active else "inactive"
        return f"<astpatch.Installation {state}, {len(self.rules)} rules, cache={self.cache.directory!r}>"


def install(
    *,
    rules: Iterable[Rule | str | os.PathLike[str]] | None = None,
    cache_dir: str | os.PathLike[str] | bool | None = None,
    strict: bool = False,
) -> Installation:
    """Put astpatch's finder first on `sys.meta_path` and return its handle.

    - `rules`: more rules, as `Rule` objects or rule files or directories, beside the shipped
      ones and those named by ASTPATCH_RULES.
    - `cache_dir`: where rewritten code is cached; `False` for no cache. Default: ASTPATCH_CACHE_DIR,
      else the user cache directory.
    - `strict`: raise `AstpatchError` instead of warning when a rule cannot do its job (also
      ASTPATCH_STRICT=1).

    Calling it again while installed returns the same handle and installs nothing more.
    """
    global _current
    with _lock:
        if _current is not None and _current.active:
            trace("install(): already installed; returning the existing handle")
            return _current
        strict = bool(strict) or config.flag("ASTPATCH_STRICT")
        disabled = config.disabled()
        if disabled.everything:
            trace("install(): ASTPATCH_DISABLE turns astpatch off")
            return Installation([], Cache(None), strict, active=False)

        def report(message: str) -> None:
            warn(message, strict=strict)

        sources: list = [builtin_rules_dir(), *config.rule_paths(), *(rules or ())]
        loaded = load_rules(sources, report)
        known = {r.id for r in loaded}
        for unknown in sorted(disabled.rule_ids - known):
            report(f"astpatch: ASTPATCH_DISABLE names {unknown!r}, which is no known rule id "
                   f"(known: {', '.join(sorted(known)) or 'none'}).")
        cache = Cache(config.cache_directory(cache_dir), strict=strict)
        installation = Installation(loaded, cache, strict, disabled=disabled.rule_ids)
        # Rules that other distributions ship: from the index when it is current (no metadata is
        # read), else discovered at the first import (see astpatch.plugins).
        from .plugins import read_index

        indexed = read_index(cache.directory) if cache.usable() else None
        if indexed is not None:
            installation.add_indexed_plugins(indexed)
        else:
            installation.finder.discover_first()
        trace(f"install(): {len(installation.rules)} rules for {sorted(installation.targets)}, cache {cache.directory}")
        sys.meta_path.insert(0, installation.finder)
        _current = installation
        for module in sorted(installation.targets & sys.modules.keys()):
            # Imported too early to be rewritten: patch its live functions if that is sound.
            from .live import patch_imported_module

            installation.report(patch_imported_module(installation, module, sys.modules[module]))
        return installation


def uninstall() -> None:
    """Remove astpatch's finder, if installed."""
    with _lock:
        if _current is not None:
            _current.uninstall()


def applied() -> list[oc.Outcome]:
    """Every rule outcome met by an import in this process, oldest first."""
    return oc.recorded()
