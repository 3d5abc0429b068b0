"""The start-up record: what `install()` decided, replayed by later processes while its evidence holds.

With a current rule-file index, `install()` still builds the rule set: it loads the modules that
decide load order, ids, trust and pending files, and takes each file's evidence. The outcome of all
that is small: the target modules, and for each the rules a cache key takes (ids, modules,
fingerprints). A start-up that decided without a problem writes that outcome here, with the status
of every path it depends on (the rule directories and files, the directories that hold them, the
search path's entries and their distributions' `entry_points.txt`); a later `install()` with the
same arguments and settings that finds every status unchanged installs the finder from the record
alone, one file read and a `stat` a path, and loads none of those modules. The rule set is built as
`install()` would have built it when something needs it: a cache miss, a problem to report,
`Installation.rules`.

A record is written only when every status it holds was settled before that start-up began
(`trust.RACY_NS`), so no change made while it decided can hide behind an unchanged status. At a
target's import the statuses of the files that define its rules, and their directories, are taken
again, as executing them would examine them (a file made writable by others is then reported, as
without a record). Records go through the store, as cache entries do, with a checksum.
"""

import marshal
import os
import sys

from .._base import __version__
from .._base.store import INDEX_SUFFIX, Unreadable
from .._base.trust import RACY_NS, status_evidence

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .._base.store import Store

PREFIX = "start-up-"
_FORMAT = 1


def identity(sources: list[str], disabled: frozenset[str], strict: bool) -> str | None:
    """What a start-up's decisions depend on besides the files: astpatch, the interpreter, the
    rule paths (absolute), ASTPATCH_DISABLE's ids, strictness, and the search path its entry points
    come from (with the working directory, which "" names); None when the working directory is gone."""
    try:
        here = os.getcwd()
    except OSError:
        return None
    return repr((_FORMAT, __version__, sys.implementation.cache_tag, os.path.dirname(os.path.dirname(__file__)),
                 [os.path.abspath(s) for s in sources], sorted(disabled), bool(strict), sys.prefix,
                 [p for p in sys.path if isinstance(p, str)], here))


def _name(identity: str) -> str:
    import _imp

    return f"{PREFIX}{_imp.source_hash(_FORMAT, identity.encode('utf-8')).hex()}{INDEX_SUFFIX}"


def _holds(evidence: "tuple[tuple, ...]") -> bool:
    for item in evidence:
        if status_evidence(item[1]) != item:
            return False
    return True


class Record:
    """A start-up's decisions: its target modules, and each one's keyed rules with the evidence to
    take again at its import."""

    __slots__ = ("targets", "_modules", "_evidence")

    def __init__(self, modules: "dict[str, bytes]", evidence: "tuple[tuple, ...]") -> None:
        self.targets = frozenset(modules)
        # module -> marshalled (((id, modules, fingerprint), ...), the indexes in `evidence` of the
        # files that define them and their directories), unmarshalled at its import alone
        self._modules = modules
        self._evidence = evidence

    def keyed(self, module: str) -> list | None:
        """The rules a cache key takes for `module`, as recorded, if the files that define them are
        unchanged still; None when they are not (the rule set decides then)."""
        blob = self._modules.get(module)
        if blob is None:
            return []  # no rule targets it
        rules, checks = marshal.loads(blob)
        if not _holds(tuple(self._evidence[n] for n in checks)):
            return None
        from .._base.cache import IndexedRule

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
        recorded, evidence, modules = marshal.loads(data[8:])
        if recorded != identity or not _holds(evidence):
            return None
        return Record(modules, evidence)
    except Exception:  # not a record (marshal raises several types)
        return None


def settled_evidence(paths: "set[str]", began: int) -> "tuple[tuple, ...] | None":
    """The status of each path (absent ones too: one made later changes it), if none changed since
    `began - RACY_NS`; else None (no record)."""
    evidence = []
    for path in sorted(paths):
        item = status_evidence(path)
        if item[2] is not None and began - max(item[2], item[3]) < RACY_NS:
            return None
        evidence.append(item)
    return tuple(evidence)


def save(store: "Store", identity: str, evidence: "tuple[tuple, ...]", modules: "dict[str, tuple]") -> None:
    """Write a record (not where the cache directory cannot be written: the cache's own writes say so)."""
    import _imp

    if store.directory is None or not os.access(store.directory, os.W_OK | os.X_OK):
        return
    data = marshal.dumps((identity, evidence, {module: marshal.dumps(value) for module, value in modules.items()}))
    store.write(_name(identity), _imp.source_hash(_FORMAT, data) + data)
