"""Rules from other distributions: the `astpatch.rules` entry point group.

A project ships rules by declaring, in its pyproject.toml,

    [project.entry-points."astpatch.rules"]
    myproject = "myproject.astpatch_rules"

where the object named (a module, or any attribute) holds the rules in `RULES` (or `RULE`),
is a list of rules, or is a callable that returns them.

Reading entry points means reading every distribution's metadata, which costs milliseconds,
and `install()` must not do that. So the entry points found are kept in an index in the cache
directory, stamped with the modification times of the `sys.path` directories (installing or
removing a distribution changes them). `install()` reads the index (one small file) to learn
the target modules; the rules themselves are imported when one of their targets is. When the
index is missing or stale, discovery runs at the first import after `install()`, once, and
writes a fresh index for later processes.
"""

from __future__ import annotations

import marshal
import os
import sys

from .._base.store import Store, Unreadable
from .rule import Rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

GROUP = "astpatch.rules"
INDEX_PREFIX = "entry-points-"
INDEX_SUFFIX = ".index"
_INDEX_FORMAT = 2


def _search_path() -> list[str]:
    return [entry for entry in sys.path if isinstance(entry, str)]


def fingerprint() -> tuple:
    """The sys.path directories and their modification times."""
    stamps = []
    for entry in _search_path():
        try:
            stamps.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            continue
    return tuple(stamps)


def index_name() -> str:
    """The index file of this environment: named by the interpreter's prefix and search path, so
    environments that share a cache directory each keep their own instead of replacing
    each other's."""
    import _imp

    identity = repr((sys.prefix, sys.implementation.cache_tag, _search_path())).encode("utf-8")
    return f"{INDEX_PREFIX}{_imp.source_hash(_INDEX_FORMAT, identity).hex()}{INDEX_SUFFIX}"


class Plugin:
    """One entry point of the group: who provides it, what it names, which modules it targets."""

    __slots__ = ("name", "value", "distribution", "targets")

    def __init__(self, name: str, value: str, distribution: str, targets: tuple[str, ...]) -> None:
        self.name = name
        self.value = value
        self.distribution = distribution
        self.targets = targets

    def failed(self, error: Exception) -> str:
        """The message for rules of this entry point that cannot be loaded."""
        return (f"astpatch: the rules of {self.distribution} (entry point {self.name!r} = {self.value!r}) cannot be "
                f"loaded: {type(error).__name__}: {error}. The other rules still apply; report it to {self.distribution}.")

    def load(self) -> list[Rule]:
        """Import the object the entry point names and take its rules; raises on any problem."""
        import importlib

        module_name, _, attribute = self.value.partition(":")
        obj: object = importlib.import_module(module_name.strip())
        for part in filter(None, attribute.strip().split(".")):
            obj = getattr(obj, part)
        if callable(obj) and not isinstance(obj, type(sys)):
            obj = obj()
        if isinstance(obj, type(sys)):
            obj = getattr(obj, "RULES", None) or ([obj.RULE] if hasattr(obj, "RULE") else None)
        if isinstance(obj, Rule):
            obj = [obj]
        if not isinstance(obj, (list, tuple)) or not all(isinstance(r, Rule) for r in obj):
            raise TypeError(f"{self.value} does not give astpatch rules (a module with RULES, a list of Rule, "
                            "or a callable returning them)")
        for rule in obj:
            rule.origin = f"entry point {self.name!r} of {self.distribution}"
        return list(obj)


def discover(report: Callable[[str], None]) -> tuple[list[Plugin], list[Rule]]:
    """Every entry point of the group, loaded; problems go to `report` with the distribution."""
    from importlib.metadata import entry_points

    plugins: list[Plugin] = []
    rules: list[Rule] = []
    for ep in entry_points(group=GROUP):
        source = getattr(ep, "dist", None)
        dist = source.name if source is not None else "an unknown distribution"
        plugin = Plugin(ep.name, ep.value, dist, ())
        try:
            found = plugin.load()
        except Exception as error:
            report(plugin.failed(error))
            continue
        plugin.targets = tuple(sorted({m for r in found for m in r.modules}))
        plugins.append(plugin)
        rules.extend(found)
    return plugins, rules


def read_index(store: Store, report: Callable[[str], None]) -> list[Plugin] | None:
    """The indexed entry points, or None when there is no index, it is stale or not to be trusted.

    The index names modules that will be imported, so it is read with the trust checks that
    cache entries get.
    """
    name = index_name()
    try:
        data = store.read(name)
    except Unreadable as problem:
        if problem.kind == "untrusted":
            report(f"astpatch: the entry-point index {store.path(name)} is not used because {problem.reason}; "
                   "other distributions' rules are discovered again. Delete it, or run `astpatch cache clear`.")
        return None
    try:
        version, stamp, entries = marshal.loads(data)
    except (ValueError, EOFError, TypeError):
        return None
    if version != _INDEX_FORMAT or stamp != fingerprint():
        return None
    try:
        return [Plugin(name, value, dist, tuple(targets)) for name, value, dist, targets in entries]
    except (TypeError, ValueError):
        return None


def write_index(store: Store, plugins: list[Plugin]) -> None:
    """Record the entry points for later processes (a failed write is reported by the store)."""
    entries = [(p.name, p.value, p.distribution, list(p.targets)) for p in plugins]
    store.write(index_name(), marshal.dumps((_INDEX_FORMAT, fingerprint(), entries)))
