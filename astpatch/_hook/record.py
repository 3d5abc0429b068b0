"""The start-up record: what `install()` decided, replayed by later processes while its evidence holds.

With a current rule-file index, `install()` still builds the rule set: it loads the modules that
decide load order, ids, trust and pending files, and takes each file's evidence. The outcome of all
that is small: the target modules, and for each the rules a cache key takes (ids, modules,
fingerprints). A start-up that decided without a problem writes that outcome here, with the status
of every path it depends on (the rule directories and files, the directories that hold them, the
entry points' rule modules) and the entry-point index's stamp (`astpatch._base.evidence`) and entry
points (a module they target decides with the rule set at its import, where their rules are
imported, as without a record); a later `install()` with the same arguments, settings, search path
and working directory that finds all of it unchanged installs the finder from the record alone, one
file read and a `stat` a path, and loads none of those modules. The rule set is built as
`install()` would have built it when something needs it: a cache miss, a problem to report,
`Installation.rules`.

A record is written only when every status it holds was settled before that start-up began
(`evidence.settled`), so no change made while it decided can hide behind an unchanged status. At a
target's import the statuses of the files that define its rules, and their directories, are taken
again, as executing them would examine them (a file made writable by others is then reported, as
without a record). Records go through the store, as cache entries do, with a checksum.
"""

import marshal
import os
import sys

from .._base import __version__
from .._base.cache import IndexedRule
from .._base.evidence import file_status, file_statuses, settled, stamp_holds
from .._base.store import INDEX_SUFFIX, Unreadable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .._base.store import Store

PREFIX = "start-up-"
_FORMAT = 3


def identity(sources: list[str], disabled: frozenset[str], strict: bool) -> str | None:
    """What a start-up's decisions depend on besides the files: astpatch, the interpreter, the
    rule paths (absolute), ASTPATCH_DISABLE's ids, strictness, and the search path its entry points
    come from (a relative entry, "" among them, counts by the distributions it holds wherever it
    is: the stamp); None when a relative rule path cannot be resolved (the working directory is gone)."""
    try:
        paths = [os.path.abspath(s) for s in sources]
    except OSError:
        return None
    return repr((_FORMAT, __version__, sys.implementation.cache_tag, os.path.dirname(os.path.dirname(__file__)),
                 paths, sorted(disabled), bool(strict), sys.prefix, [p for p in sys.path if isinstance(p, str)]))


def _name(identity: str) -> str:
    import _imp

    return f"{PREFIX}{_imp.source_hash(_FORMAT, identity.encode('utf-8')).hex()}{INDEX_SUFFIX}"


class Record:
    """A start-up's decisions: its target modules, and each one's keyed rules with the evidence to
    take again at its import."""

    __slots__ = ("targets", "plugins", "_modules")

    def __init__(self, modules: "dict[str, bytes | None]", plugins: tuple) -> None:
        self.targets = frozenset(modules)
        self.plugins = plugins  # each indexed entry point, as `Plugin.as_tuple()` gives it
        # module -> marshalled (((id, modules, fingerprint), ...), ((path, status), ...) of the files
        # that define them and of their directories), unmarshalled at its import alone; None for a
        # module that entry points target
        self._modules = modules

    def keyed(self, module: str) -> list | None:
        """The rules a cache key takes for `module`, as recorded, if the files that define them are
        unchanged still; None when they are not, or entry points target it (the rule set decides then)."""
        if module not in self._modules:
            return []  # no rule targets it
        blob = self._modules[module]
        if blob is None:
            return None
        rules, checks = marshal.loads(blob)
        for path, status in checks:
            if file_status(path) != status:
                return None
        return [IndexedRule(rule_id, modules, fingerprint) for rule_id, modules, fingerprint in rules]


def load(store: "Store", identity: str) -> Record | None:
    """The record of a start-up with this identity, if there is one and every status it holds is unchanged."""
    try:
        data = store.read(_name(identity))
    except Unreadable:
        return None  # whatever the problem, the rule set is built: it reports what needs reporting
    import _imp

    if _imp.source_hash(_FORMAT, data[8:]) != data[:8]:
        return None
    try:
        recorded, stamp, directories, statuses, modules, plugins = marshal.loads(data[8:])
        if recorded != identity:
            return None
        n = 0
        for prefix, names in directories:  # the paths grouped by directory: a smaller record to read
            if file_statuses(prefix, names) != list(statuses[n:n + len(names)]):
                return None
            n += len(names)
        return Record(modules, plugins) if stamp_holds(stamp) else None
    except Exception:  # not a record (marshal raises several types)
        return None


def settled_evidence(paths: "Iterable[str]", began: int) -> "dict[str, tuple | None] | None":
    """The status of each path (absent ones too: one made later changes it), if none changed since
    `began` less `evidence.RACY_NS`; else None (no record)."""
    evidence = {}
    for path in paths:
        status = file_status(path)
        if status is not None and not settled(status, began):
            return None
        evidence[path] = status
    return evidence


def save(store: "Store", identity: str, stamp: tuple, evidence: "dict[str, tuple | None]", modules: "dict[str, tuple]",
         plugins: tuple) -> None:
    """Write a record (not where the cache directory cannot be written: the cache's own writes say so):
    `stamp` is the entry-point index's (`evidence.stamp`) and `plugins` its entry points, `evidence` the
    status of every other path it depends on, `modules` each target's keyed rules (None: entry points
    target it) and the paths (in `evidence`) to examine again at its import."""
    import _imp

    if store.directory is None or not os.access(store.directory, os.W_OK | os.X_OK):
        return
    grouped: dict[str, list[str]] = {}
    for path in sorted(evidence):
        directory, name = os.path.split(path)
        grouped.setdefault(os.path.join(directory, ""), []).append(name)
    directories = tuple((prefix, tuple(names)) for prefix, names in grouped.items())
    statuses = tuple(evidence[prefix + name] for prefix, names in directories for name in names)
    blobs = {module: None if rules is None else marshal.dumps((rules, tuple((path, evidence[path]) for path in sorted(checks))))
             for module, (rules, checks) in modules.items()}
    data = marshal.dumps((identity, stamp, directories, statuses, blobs, plugins))
    store.write(_name(identity), _imp.source_hash(_FORMAT, data) + data)
