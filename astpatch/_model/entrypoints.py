"""Rules from other distributions: the `astpatch.rules` entry point group.

A project ships rules by declaring, in its pyproject.toml,

    [project.entry-points."astpatch.rules"]
    myproject = "myproject.astpatch_rules"

where the object named (a module, or any attribute) holds the rules in `RULES` (or `RULE`),
is a list of rules, or is a callable that returns them.

Reading entry points means reading every distribution's metadata, which costs milliseconds,
and `install()` must not do that. So the entry points found are kept in an index in the cache
directory, with a stamp of what discovery's answer depends on (`stamp()`), and `install()` reads
the index (one small file) to learn the target modules; the rules themselves are imported when
one of their targets is. When the index is missing, stale or not to be trusted, discovery runs
at the first import after `install()`, once, and writes a fresh index for later processes.

Discovery never breaks the program: metadata that cannot be read gives one warning, and the
program goes on without other distributions' rules (astpatch's own and the program's apply).
"""

import marshal
import sys

from .._base.evidence import evidence, holds, search_path, stamp_holds
from .._base.store import INDEX_SUFFIX, Unreadable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .._base.store import Store
    from .rule import Rule

GROUP = "astpatch.rules"
INDEX_PREFIX = "entry-points-"
_INDEX_FORMAT = 3

def index_name() -> str:
    """The index file of this environment: named by the interpreter's prefix and search path, so
    environments that share a cache directory each keep their own instead of replacing
    each other's."""
    import _imp

    identity = repr((sys.prefix, sys.implementation.cache_tag, search_path())).encode("utf-8")
    return f"{INDEX_PREFIX}{_imp.source_hash(_INDEX_FORMAT, identity).hex()}{INDEX_SUFFIX}"


class Plugin:
    """One entry point of the group: who provides it, what it names, which modules it targets,
    and the files of its rule modules (known once loaded)."""

    __slots__ = ("name", "value", "distribution", "targets", "files")

    def __init__(self, name: str, value: str, distribution: str, targets: tuple[str, ...],
                 files: tuple[str, ...] = ()) -> None:
        self.name = name
        self.value = value
        self.distribution = distribution
        self.targets = targets
        self.files = files

    def as_tuple(self) -> tuple:
        """What the start-up record keeps of it: `Plugin(*plugin.as_tuple())` is the same entry point."""
        return (self.name, self.value, self.distribution, self.targets, self.files)

    def failed(self, error: Exception) -> str:
        """The message for rules of this entry point that cannot be loaded."""
        return (f"astpatch: the rules of {self.distribution} (entry point {self.name!r} = {self.value!r}) cannot be "
                f"loaded: {type(error).__name__}: {error}. The other rules still apply; report it to {self.distribution}.")

    def load(self) -> list["Rule"]:
        """Import the object the entry point names and take its rules; raises on any problem."""
        import importlib

        from .rule import Rule

        module_name, _, attribute = self.value.partition(":")
        module_name = module_name.strip()
        obj: object = importlib.import_module(module_name)
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
        # The rule modules, whose change makes the index stale: the one named, and its submodules.
        inside = module_name + "."
        self.files = tuple(sorted({
            file for name, module in list(sys.modules.items())
            if (name == module_name or name.startswith(inside))
            and isinstance(file := getattr(module, "__file__", None), str)}))
        return list(obj)


def _provider(entry_point: object) -> str:
    """The name of the distribution that declares `entry_point` (its METADATA is read only now)."""
    try:
        source = getattr(entry_point, "dist", None)
        return str(source.name) if source is not None else "an unknown distribution"
    except Exception:
        return "an unknown distribution"


def _unreadable(error: Exception) -> str:
    """The message for metadata that cannot be read, naming the distributions whose entry points
    are at fault when they can be found."""
    culprits: list[str] = []
    try:
        from importlib.metadata import distributions

        for dist in distributions():
            try:
                dist.entry_points  # noqa: B018 - reading them is the test
            except Exception:  # named by its metadata directory (`_path`: no public name gives it)
                culprits.append(str(getattr(dist, "_path", None) or dist))
    except Exception:
        pass
    where = f" (the metadata in {', '.join(culprits)})" if culprits else ""
    return (f"astpatch: other distributions' rules are not loaded: reading the installed distributions' entry points "
            f"failed with {type(error).__name__}: {error}{where}. astpatch's own rules and the program's still apply; "
            "repair or reinstall that distribution.")


def discover(report: "Callable[[str], None]") -> tuple[list[Plugin], list["Rule"]]:
    """Every entry point of the group, loaded; problems go to `report` with the distribution.

    Any exception from reading other distributions' metadata is reported once, and no rules
    come from entry points then."""
    plugins: list[Plugin] = []
    rules: list[Rule] = []
    unreadable = None
    try:
        from importlib.metadata import entry_points

        found = [(ep.name, ep.value, _provider(ep)) for ep in entry_points(group=GROUP)]
    except Exception as error:
        found, unreadable = [], _unreadable(error)
    if unreadable is not None:
        report(unreadable)  # outside the handler: in strict mode, the error it raises stands alone
        return plugins, rules
    for name, value, dist in found:
        plugin = Plugin(name, value, dist, ())
        try:
            loaded = plugin.load()
        except Exception as error:
            report(plugin.failed(error))
            continue
        plugin.targets = tuple(sorted({m for r in loaded for m in r.modules}))
        plugins.append(plugin)
        rules.extend(loaded)
    return plugins, rules


def read_index(store: "Store", report: "Callable[[str], None]", stamps: "list[tuple] | None" = None
               ) -> list[Plugin] | None:
    """The indexed entry points, or None when there is no index, it is stale or not to be trusted;
    the stamp that vouched for them is added to `stamps` (for the start-up record).

    The index names modules that will be imported, so it is read with the trust checks that
    cache entries get (the store's: a private directory, a file only this user can have written).
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
        version, recorded, entries = marshal.loads(data)
        if version != _INDEX_FORMAT or not stamp_holds(recorded):
            return None
        plugins = [Plugin(entry, value, dist, tuple(targets), tuple(item[0] for item in files))
                   for entry, value, dist, targets, files in entries]
        if not all(holds(item) for _, _, _, _, files in entries for item in files):
            return None  # a rule module changed: its rules may target other modules now
        if stamps is not None:
            stamps.append(recorded)
    except Exception:  # damaged: discovered again, and replaced
        return None
    return plugins


def write_index(store: "Store", plugins: list[Plugin], taken: tuple) -> None:
    """Record the entry points, with the stamp `taken` before discovery, for later processes
    (a failed write is reported by the store)."""
    import time

    now = time.time_ns()
    entries = [(p.name, p.value, p.distribution, list(p.targets), [evidence(f, now) for f in p.files])
               for p in plugins]
    store.write(index_name(), marshal.dumps((_INDEX_FORMAT, taken, entries)))
