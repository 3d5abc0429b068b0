"""The on-disk cache of rewritten modules: entries, their keys, their file format, and the lookup.

The lookup (`lookup`) is the whole warm path of an import: the key, one file read, the code
unmarshalled. `install()` loads it with the finder (`astpatch._hook.finder`), so a hit imports
nothing; and it imports nothing CPython has not loaded at start-up: no zlib, no `importlib.util`,
no `linecache`; neither the rewrite engine nor libcst.

An entry holds what a rewrite produced: the outcomes, the replaced line spans (so tracebacks
and `inspect` can show the patched text without redoing the rewrite) and the marshalled code,
or no code when nothing was applied (then upstream's own code runs and its normal `.pyc` is
used).

Each entry records its full `CacheKey`. The file name is derived from that key, and the recorded
key is compared again after reading, so a renamed or colliding file is never executed. A
checksum over the body (SipHash, as CPython's hash-based pycs use: no module to import) catches
truncation and corruption. Files are written and trusted through `astpatch._base.store`.

This cache is astpatch's own and does not follow PYTHONDONTWRITEBYTECODE, which is about
`__pycache__` directories beside the sources; astpatch never writes there. To turn the cache
off, set ASTPATCH_NO_CACHE=1 or call `install(cache_dir=False)`.
"""

import _imp
import marshal
import sys
from _frozen_importlib_external import MAGIC_NUMBER  # importlib.util's, without importing importlib

from . import __version__
from . import outcomes as oc
from .evidence import status_evidence
from .messages import trace, warn
from .store import Store, Unreadable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import CodeType
    from typing import Any, Protocol

    class KeyedRule(Protocol):  # what the key takes of a rule (astpatch._model.rule.Rule)
        @property
        def modules(self) -> tuple[str, ...]: ...

        def fingerprint(self) -> str: ...

# An entry: magic and format (9 bytes), the checksum of the rest (8), the length of the metadata
# (4), the metadata (marshalled key, outcomes, spans, checks), then the marshalled code, or nothing.
# The code comes last, unwrapped, so a hit unmarshals it straight from the file's bytes.
_MAGIC = b"astpatch"
FORMAT = 6
_HEADER = _MAGIC + bytes([FORMAT])
SUFFIX = ".astpatch"
_CHECKSUM_KEY = int.from_bytes(b"astp", "little")  # SipHash's key for the checksum: any constant a C long holds


class CacheKey:
    """Everything that decides the code an entry holds; recorded in the entry and compared on load."""

    __slots__ = ("astpatch", "magic", "optimize", "module", "path", "source_hash", "rules", "others")

    def __init__(self, *, astpatch: str, magic: bytes, optimize: int, module: str, path: str,
                 source_hash: bytes, rules: tuple[str, ...], others: tuple[tuple[str, str, bytes | None], ...] = ()
                 ) -> None:
        self.astpatch = astpatch  # astpatch's version: the shipped edit kinds and the engine
        self.magic = magic  # the interpreter's bytecode magic number
        self.optimize = optimize  # sys.flags.optimize (-O, -OO)
        self.module = module
        self.path = path
        self.source_hash = source_hash  # of the module's source bytes
        self.rules = rules  # each rule's fingerprint, in order (a custom edit kind's code included)
        # (module, path, source hash) of the other modules that rules spanning modules change:
        # their sources decide whether such a rule applies here too.
        self.others = others

    def as_tuple(self) -> tuple:  # in the order of __slots__
        return (self.astpatch, self.magic, self.optimize, self.module, self.path, self.source_hash, self.rules,
                self.others)

    @classmethod
    def from_tuple(cls, data: tuple) -> "CacheKey":
        return cls(**dict(zip(cls.__slots__, data)))

    def replace(self, **changes: object) -> "CacheKey":
        fields: dict[str, Any] = dict(zip(self.__slots__, self.as_tuple()))
        fields.update(changes)
        return CacheKey(**fields)

    def file_name(self) -> str:
        digest = _imp.source_hash(FORMAT, repr(self.as_tuple()).encode("utf-8"))
        return f"{self.module}-{digest.hex()}{SUFFIX}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CacheKey) and self.as_tuple() == other.as_tuple()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CacheKey({', '.join(f'{n}={getattr(self, n)!r}' for n in self.__slots__)})"


class Entry:
    """What a rewrite produced, and `checks`: the evidence (see `metadata.find_version`) for the
    versions it was made with, the gated distributions' and libcst's, which a hit verifies with
    a `stat` each instead of looking the versions up (`evidence_holds`)."""

    __slots__ = ("outcomes", "spans", "code", "checks")

    def __init__(self, outcomes: list[tuple], spans: list[tuple], code: bytes | memoryview | None,
                 checks: tuple = ()) -> None:
        self.outcomes = outcomes
        self.spans = spans
        self.code = code  # marshalled code, or None: upstream's code runs
        self.checks = checks


def encode(key: CacheKey, entry: Entry) -> bytes:
    meta = marshal.dumps((key.as_tuple(), entry.outcomes, entry.spans, entry.checks))
    body = len(meta).to_bytes(4, "little") + meta + (entry.code or b"")
    return _HEADER + _imp.source_hash(_CHECKSUM_KEY, body) + body


def decode(data: bytes) -> tuple[CacheKey, Entry] | str:
    """(recorded key, entry) from an entry file's bytes, or why they are not one."""
    if not data.startswith(_MAGIC):
        return "it does not start with astpatch's header"
    if data[: len(_HEADER)] != _HEADER:
        return "another format"
    view = memoryview(data)[len(_HEADER) :]
    if len(view) < 12 or _imp.source_hash(_CHECKSUM_KEY, view[8:]) != view[:8]:
        return "its checksum does not match (truncated or altered)"
    size = int.from_bytes(view[8:12], "little")
    try:
        key, outcomes, spans, checks = marshal.loads(view[12 : 12 + size])
        key = CacheKey.from_tuple(key)
    except Exception as error:  # marshal raises several types on bad input; a key of another shape
        return f"it does not unmarshal ({type(error).__name__})"
    if not isinstance(outcomes, list) or not isinstance(spans, list) or not isinstance(checks, tuple):
        return "its contents have the wrong shape"
    code = view[12 + size :]
    return key, Entry(outcomes, spans, code if len(code) else None, checks)


def evidence_holds(evidence: tuple[tuple, ...]) -> bool:
    """Whether `metadata.find_version` would still give the answers an entry's checks were recorded
    with: one `stat` per file; only evidence that a status cannot give asks for the version again."""
    for item in evidence:
        if item[0] == "stat":
            if status_evidence(item[1]) != item:
                return False
        elif item[0] == "version":
            from .metadata import find_version

            if find_version(item[1], item[2])[0] != item[3]:
                return False
        else:
            return False
    return True


class Cache:
    """Rewritten modules in a `Store`; `Cache(Store(None))` caches nothing."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def directory(self) -> str | None:
        return self.store.directory

    def __repr__(self) -> str:
        return f"Cache({self.store.directory!r})"

    def load(self, key: CacheKey) -> Entry | None:
        """The entry for `key`, or None on a miss or any problem with it."""
        if not self.store.usable():
            return None
        name = key.file_name()
        path = self.store.path(name)
        try:
            data = self.store.read(name)
        except Unreadable as problem:
            if problem.kind == "missing":
                trace(f"cache miss for {key.module}: {path}")
            elif problem.kind == "untrusted":
                warn(f"astpatch: the cache entry {path} is not used because {problem.reason}; "
                     "the module is rewritten instead. Delete it, or run `astpatch cache clear`.",
                     strict=self.store.strict)
            elif problem.kind == "damaged":
                self._corrupt(path, problem.reason)
            else:
                trace(f"cache entry {path} unreadable: {problem.reason}")
            return None
        decoded = decode(data)
        if decoded == "another format":
            trace(f"cache entry {path} has another format; replacing it")
            return None
        if isinstance(decoded, str):
            self._corrupt(path, decoded)
            return None
        recorded_key, entry = decoded
        if recorded_key != key:
            trace(f"cache entry {path} records another key; replacing it")
            return None
        trace(f"cache hit for {key.module}: {path}")
        return entry

    def _corrupt(self, path: str, reason: str) -> None:
        """Say once that an entry is damaged; it is treated as a miss."""
        warn(f"astpatch: ignored the cache entry {path} because {reason}; it will be rewritten.",
             strict=self.store.strict)

    def store_entry(self, key: CacheKey, entry: Entry) -> bool:
        """Write `entry` atomically, and say whether it was; a failure is one warning for the process."""
        return self.store.write(key.file_name(), encode(key, entry))


# -- keys and the lookup ----------------------------------------------------------------------------


class IndexedRule:
    """A rule of a pending rule file, as the index records it: what a cache lookup takes of a rule,
    so that a cache hit executes no rule file (its fingerprint is a function of the file's text
    and astpatch's version, which the index's and the start-up record's evidence and names cover)."""

    __slots__ = ("id", "modules", "_fingerprint")

    def __init__(self, rule_id: str, modules: tuple[str, ...], fingerprint: str) -> None:
        self.id = rule_id
        self.modules = modules
        self._fingerprint = fingerprint

    def fingerprint(self) -> str:
        return self._fingerprint


class Built:
    """The code for a module under some rules (None: upstream's runs), the outcomes, the spans replaced."""

    __slots__ = ("code", "outcomes", "spans")

    def __init__(self, code: "CodeType | None", outcomes: list[oc.Outcome], spans: list[tuple]) -> None:
        self.code = code
        self.outcomes = outcomes
        self.spans = spans


def other_sources(fullname: str, rules: "Sequence[KeyedRule]",
                  unreadable: dict[str, str]) -> dict[str, tuple[str, bytes] | None]:
    """The (path, bytes) of every other module that a rule on `fullname` also changes (None when
    it has no source file): they decide, with this one, whether such a rule applies. One that
    exists but cannot be read (an I/O error, a permission) is None and goes into `unreadable`,
    with why: a failure of the environment, which is never cached (see `pipeline.build`)."""
    found: dict[str, tuple[str, bytes] | None] = {}
    for module in (m for rule in rules for m in rule.modules if m != fullname):
        if module in found:
            continue
        from .modulefiles import SourceNotFound, locate

        try:
            path = locate(module)
            with open(path, "rb") as f:
                found[module] = (path, f.read())
        except (SourceNotFound, FileNotFoundError, NotADirectoryError):
            found[module] = None
        except OSError as error:
            found[module], unreadable[module] = None, str(error)
    return found


# The key that CPython's hash-based pycs use for the source hash (importlib.util.source_hash).
_RAW_MAGIC = int.from_bytes(MAGIC_NUMBER, "little")


def cache_key(fullname: str, path: str, source: bytes, rules: "Sequence[KeyedRule]",
              others: dict[str, tuple[str, bytes] | None] | None = None) -> CacheKey:
    """The key for these rules on this source (the versions they depend on are the entry's checks)."""
    return CacheKey(
        astpatch=__version__,
        magic=MAGIC_NUMBER,
        optimize=sys.flags.optimize,
        module=fullname,
        path=path,
        source_hash=_imp.source_hash(_RAW_MAGIC, source),
        rules=tuple(r.fingerprint() for r in rules),
        others=tuple((m, found[0], _imp.source_hash(_RAW_MAGIC, found[1])) if found else (m, "", None)
                     for m, found in (others or {}).items()),
    )


class Lookup:
    """A key and what the cache holds for it: `built` on a hit; on a miss, the other modules'
    sources the rewrite reads, and those that cannot be read."""

    __slots__ = ("key", "built", "others", "unreadable")

    def __init__(self, key: CacheKey, built: Built | None, others: dict[str, tuple[str, bytes] | None],
                 unreadable: dict[str, str] | None = None) -> None:
        self.key = key
        self.built = built
        self.others = others
        self.unreadable = unreadable or {}


def lookup(fullname: str, path: str, source: bytes, rules: "Sequence[KeyedRule]", cache: Cache) -> Lookup:
    """The key for `rules` on this source, and the cached result for it if there is a usable one."""
    unreadable: dict[str, str] = {}
    others = other_sources(fullname, rules, unreadable)
    key = cache_key(fullname, path, source, rules, others)
    entry = cache.load(key) if not unreadable else None  # its key says "absent", which is not so
    if entry is not None:
        if not evidence_holds(entry.checks):
            trace(f"{fullname}: a distribution the cached entry depends on changed; rewriting")
        else:
            try:
                code = marshal.loads(entry.code) if entry.code is not None else None
                outcomes = [oc.Outcome.from_tuple(t, from_cache=True) for t in entry.outcomes]
                return Lookup(key, Built(code, outcomes, entry.spans), others)
            except Exception as error:
                trace(f"{fullname}: cached entry unusable ({error}); rewriting")
    return Lookup(key, None, others, unreadable)
