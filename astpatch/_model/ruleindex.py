"""The rule-file index: which rules each rule file declares, on which modules, so that `install()`
executes no rule file.

Executing a rule file costs tens of microseconds (far more without a current `.pyc`), which a
program with many rule files would pay at every start-up. So the index, one small file in the
cache directory for each list of rule paths (and astpatch version and interpreter), records for
each rule file the evidence of its content (`evidence.evidence`: its status, and its digest
while that status is too recent to vouch for it, `evidence.RACY_NS`) and its rules' ids, modules,
key packages and fingerprints; and for each rule directory its entries and status. `install()` takes each
file's evidence (one `stat`; a directory is listed again only when its status changed), and a
file whose evidence holds joins the rule set pending, in its place in the load order: it is
executed when one of its modules is imported and the cache has no entry for it (a cache hit
takes the rules' fingerprints from the index: `RuleSet.keyed_for_module`), or when every rule
is asked for (`Installation.rules`). Any other file is executed at `install()`, as without an index:
- a file added or changed since the index was written (and the index is rewritten);
- a file whose rules may depend on more than its own text (it imports a module other than
  astpatch, or names `open`, `exec`, `eval`...: see `rulefiles.load_rule_file`), at every start;
- a file that failed to load or is not trusted, at every start, so that it is reported at
  `install()` (an error in strict mode) as without an index.
A file that loaded when it was indexed, and fails when it is executed later with its text
unchanged (its directory became writable by others, astpatch changed), is reported then: at the
import of one of its modules, which raises in strict mode.

The index goes through the store, as cache entries do: read only if this user alone can have
written it (else one warning), written whole, with a checksum (a damaged one is replaced without a
word). Without a usable cache directory (the cache off, or not to be trusted) every rule file is
executed at `install()`; where the directory cannot be written, the index is not written either,
without a word (the cache's own writes say what needs saying).
"""

import marshal
import os
import sys

from .._base.evidence import evidence, file_status, holds, settled
from .._base.store import INDEX_SUFFIX, Unreadable
from .rulefiles import load_rule_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .._base.store import Store
    from .rule import Rule

    # (id, modules, key package or None, fingerprint) of each rule of a file
    Indexed = tuple[tuple[str, tuple[str, ...], "str | None", str], ...]

INDEX_PREFIX = "rule-files-"
_FORMAT = 2


def index_name(paths: list[str]) -> str:
    """The index of these rule paths (in order), for this astpatch and interpreter: programs with other
    rules each keep their own, in a cache directory they share."""
    import _imp

    from .._base import __version__

    identity = repr((__version__, sys.implementation.cache_tag, [os.path.abspath(p) for p in paths]))
    return f"{INDEX_PREFIX}{_imp.source_hash(_FORMAT, identity.encode('utf-8')).hex()}{INDEX_SUFFIX}"


class PendingFile:
    """A rule file the index vouches for, not executed yet: its place in the load order and its rules."""

    __slots__ = ("path", "check", "slot", "rules")

    def __init__(self, path: str, check: bool, slot: int, rules: "Indexed") -> None:
        self.path = path  # absolute: the working directory may change before it is executed
        self.check = check
        self.slot = slot
        self.rules = rules  # (id, modules, key package or None, fingerprint) of each rule, in the file's order


def _writable(directory: str) -> bool:
    """Whether the directory can be written, or made in the nearest existing directory above it."""
    while not os.path.lexists(directory):
        parent = os.path.dirname(directory)
        if parent == directory:
            return False
        directory = parent
    return os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK)


class RuleIndex:
    """The index of one list of rule paths: what it recorded, and what `install()` finds now.

    `RuleSet.load` asks it for a directory's entries (`names`), for a file to keep pending with its
    indexed rules (`pending`: None unless its evidence holds), and has it execute the others (`execute`, which
    records what they declare); `save` writes what was found, if it differs."""

    def __init__(self, store: "Store", paths: list[str], report: "Callable[[str], None]") -> None:
        import time

        self.store = store
        self.name = index_name(paths)
        self.now = time.time_ns()  # before anything is examined: a change after it shows
        self._files: dict[str, tuple] = {}  # as recorded: path -> (status, check, rules or None: execute it)
        self._directories: dict[str, tuple] = {}  # as recorded: path -> (status or None when racy, entries)
        self.files: dict[str, tuple] = {}  # as found by this process
        self.directories: dict[str, tuple] = {}
        if store.usable():
            self._read(report)

    def _read(self, report: "Callable[[str], None]") -> None:
        try:
            data = self.store.read(self.name)
        except Unreadable as problem:
            if problem.kind == "untrusted":
                report(f"astpatch: the rule-file index {self.store.path(self.name)} is not used because "
                       f"{problem.reason}; the rule files are executed instead. Delete it, or run `astpatch cache clear`.")
            return
        import _imp

        if _imp.source_hash(_FORMAT, data[8:]) != data[:8]:
            return  # truncated or altered: the files are executed, and the index replaced
        try:
            version, directories, files = marshal.loads(data[8:])
            if version == _FORMAT and isinstance(directories, dict) and isinstance(files, dict):
                self._directories, self._files = directories, files
        except Exception:  # not an index (marshal raises several types)
            pass

    def names(self, directory: str) -> list[str]:
        """The entries of a rule directory (an absolute path): as recorded while its status holds, else listed now."""
        recorded = self._directories.get(directory)
        found = file_status(directory)  # before listing: a change after it changes the status
        if recorded is not None and recorded[0] is not None and recorded[0] == found:
            names = recorded[1]
        else:
            names = tuple(sorted(os.listdir(directory)))
        self.directories[directory] = (found if settled(found, self.now) else None, names)
        return list(names)

    def pending(self, path: str, check: bool, slot: int) -> PendingFile | None:
        """The rule file at `path` (absolute), to keep pending at `slot` in the load order, with the
        rules the index records, if its evidence still holds; else None (execute it)."""
        entry = self._files.get(path)
        if entry is None or entry[2] is None or not holds((path, entry[0], entry[1])):
            return None
        if entry[1] is not None:  # vouched for by its digest: its status may vouch for it now
            entry = (*evidence(path, self.now)[1:], entry[2])
        self.files[path] = entry
        return PendingFile(path, check, slot, entry[2])

    def execute(self, path: str, check: bool) -> list["Rule"]:
        """The rules of a rule file (an absolute path), executed now, and recorded: as what it declares
        when they are a function of its text (it is then pending in later processes), else as a file
        to execute at every start (RuleFileError is raised, as `load_rule_file` raises it)."""
        proof = evidence(path, self.now)[1:]  # taken before it is read: a change meanwhile shows
        depends: list[str] = []
        self.files[path] = (*proof, None)
        rules = load_rule_file(path, check, depends)
        if not depends:
            self.files[path] = (*proof, tuple((r.id, r.modules, r.key_package, r.fingerprint()) for r in rules))
        return rules

    def save(self) -> None:
        """Write what this process found, for later processes, when it differs from what was recorded."""
        if self.files == self._files and self.directories == self._directories:
            return
        directory = self.store.directory
        if directory is None or not _writable(directory) or not self.store.usable(create=True):
            return
        import _imp

        data = marshal.dumps((_FORMAT, self.directories, self.files))
        self.store.write(self.name, _imp.source_hash(_FORMAT, data) + data)  # a checksum, then the index
