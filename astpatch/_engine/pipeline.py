"""The pipeline: the code for one module under some rules, from the cache or rewritten and cached.

Key, cache lookup, rewrite, store, and the patched text for `linecache`, in one place, used alike
by the loader, the live patching of modules imported too early, `astpatch cache warm` and the
benchmark, so all of them agree on the key and on what runs.

A cache hit imports neither libcst nor the rewrite engine.
"""

from __future__ import annotations

import gc
import marshal
import sys
import time

from .._base import outcomes as oc
from .._base.lines import PatchedLines, Span, linecache_lines, patched_lines, split_lines
from .._base.messages import trace
from .._base.metadata import installed_version
from .._base.modulefiles import SourceNotFound, locate
from .._base.version import __version__
from .cache import Cache, CacheKey, Entry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import CodeType
    from typing import Any

    from .._model.rule import Rule


class Built:
    """The pipeline's result: the code to run (None: upstream's), the outcomes, the spans replaced."""

    __slots__ = ("code", "outcomes", "spans")

    def __init__(self, code: CodeType | None, outcomes: list[oc.Outcome], spans: list[tuple]) -> None:
        self.code = code
        self.outcomes = outcomes
        self.spans = spans


_libcst_version: str | None = None


def libcst_version() -> str:
    """libcst's installed version (it prints the edited functions), read once per process."""
    global _libcst_version
    if _libcst_version is None:
        _libcst_version = installed_version("libcst", near=__file__) or "not installed"
    return _libcst_version


def other_sources(fullname: str, rules: list[Rule]) -> dict[str, tuple[str, bytes] | None]:
    """The (path, bytes) of every other module that a rule on `fullname` also changes (None when
    it has no source file): they decide, with this one, whether such a rule applies."""
    found: dict[str, tuple[str, bytes] | None] = {}
    for module in (m for rule in rules for m in rule.modules if m != fullname):
        if module in found:
            continue
        try:
            path = locate(module)
            with open(path, "rb") as f:
                found[module] = (path, f.read())
        except (SourceNotFound, OSError):
            found[module] = None
    return found


def cache_key(fullname: str, path: str, source: bytes, rules: list[Rule],
              others: dict[str, tuple[str, bytes] | None] | None = None) -> tuple[CacheKey, dict[str, str | None]]:
    """The key for these rules on this source, and the gated distributions' versions."""
    # Imported here, not at start-up: importlib.util pulls in contextlib and collections.
    from importlib.util import MAGIC_NUMBER, source_hash

    versions = {d: installed_version(d, near=path) for d in sorted({r.gate_distribution for r in rules if r.gate_distribution})}
    key = CacheKey(
        astpatch=__version__,
        libcst=libcst_version(),
        magic=MAGIC_NUMBER,
        optimize=sys.flags.optimize,
        module=fullname,
        path=path,
        source_hash=source_hash(source),
        rules=tuple(r.fingerprint() for r in rules),
        versions=tuple(versions.items()),
        others=tuple((m, found[0], source_hash(found[1])) if found else (m, "", None) for m, found in (others or {}).items()),
    )
    return key, versions


def build(fullname: str, path: str, source: bytes, rules: list[Rule], cache: Cache,
          upstream: Callable[[], CodeType | None] | None = None, timings: dict[str, float] | None = None) -> Built:
    """The code, outcomes and spans for `rules` on this source: from the cache, or rewritten and cached.

    `upstream()` gives the module's own code (its normal `.pyc`), which lets the rewrite skip
    parsing and compiling the whole module. `timings`, when given, receives each step's seconds.
    """
    others = other_sources(fullname, rules)
    key, versions = cache_key(fullname, path, source, rules, others)
    entry = cache.load(key)
    if entry is not None:
        try:
            code = marshal.loads(entry.code) if entry.code is not None else None
            return Built(code, [oc.Outcome.from_tuple(t, from_cache=True) for t in entry.outcomes], entry.spans)
        except Exception as error:
            trace(f"{fullname}: cached entry unusable ({error}); rewriting")
    from importlib.util import decode_source

    from .rewrite import rewrite  # imports ast; libcst is imported by the edits
    from .spanning import outcomes_elsewhere

    if timings is None:
        timings = {}
    trace(f"{fullname}: rewriting with {', '.join(r.id for r in rules)}")
    # A rewrite allocates many small objects; in a process that already holds a large heap (torch)
    # that triggers full collections costing far more than the rewrite itself.
    collecting = gc.isenabled()
    gc.disable()
    try:
        started = time.perf_counter()
        upstream_code = upstream() if upstream is not None else None
        timings["upstream code"] = time.perf_counter() - started
        def read(module: str) -> tuple[str, str]:
            found = others.get(module)
            if found is None:
                raise SourceNotFound(f"{module} is not installed as a source file")
            return found[0], decode_source(found[1])

        elsewhere = outcomes_elsewhere(fullname, rules, versions, read) if others else None
        result = rewrite(fullname, path, decode_source(source), rules, versions, upstream=upstream_code,
                         timings=timings, elsewhere=elsewhere)
    finally:
        if collecting:
            gc.enable()
    spans = [s.to_tuple() for s in result.spans]
    entry = Entry(
        [o.to_tuple() for o in result.outcomes],
        spans,
        marshal.dumps(result.code) if result.code is not None else None,
    )
    started = time.perf_counter()
    cache.store_entry(key, entry)
    timings["cache write"] = time.perf_counter() - started
    return Built(result.code, result.outcomes, spans)


def build_file(fullname: str, path: str, rules: list[Rule], cache: Cache, timings: dict[str, float] | None = None) -> Built:
    """`build` for a module read from its file, as the import system would (`astpatch cache warm`,
    the benchmark, modules imported before `install()`). Raises OSError when it cannot be read."""
    from importlib.machinery import SourceFileLoader

    with open(path, "rb") as f:
        source = f.read()
    loader = SourceFileLoader(fullname, path)
    return build(fullname, path, source, rules, cache, upstream=lambda: loader.get_code(fullname), timings=timings)


def patched_source(source: bytes, spans: list[tuple]) -> str:
    """The module's patched text (for another hook's loader that compiles source itself)."""
    from importlib.util import decode_source

    return "".join(patched_lines(split_lines(decode_source(source)), [Span.from_tuple(s) for s in spans]))


def show_patched_source(path: str, stats: Mapping[str, Any], source: bytes, spans: list[tuple]) -> None:
    """Make tracebacks and `inspect.getsource` show the text that runs.

    The entry carries the real file's size and mtime, so `linecache.checkcache()` keeps it
    while the file is unchanged and drops it (falling back to the file) once it changes. The
    lines themselves are built only if something reads them.
    """
    import linecache

    def make() -> list[str]:
        from importlib.util import decode_source

        return linecache_lines(split_lines(decode_source(source)), [Span.from_tuple(s) for s in spans])

    linecache.cache[path] = (stats["size"], stats["mtime"], PatchedLines(make), path)
