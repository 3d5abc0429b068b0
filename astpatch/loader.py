"""The loader of target modules: a `SourceFileLoader` whose code production is patched.

Subclassing `SourceFileLoader` and overriding only `get_code` keeps everything else as Python
does it: `__file__`, `__spec__`, `__cached__`, resource readers, `pkgutil`, `get_source`.
Upstream's normal `.pyc` in `__pycache__` is never written with patched code: patched code goes
to astpatch's own cache, so a process without astpatch still runs upstream's code.
"""

from __future__ import annotations

import gc
import marshal
import sys
import time
from importlib.machinery import SourceFileLoader

from . import __version__
from . import outcome as oc
from .cache import Entry
from .distributions import installed_version
from .messages import AstpatchError, trace
from .spans import PatchedLines, Span, linecache_lines, patched_lines, split_lines

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import CodeType
    from typing import Any

    from .installation import Installation


# Seconds spent in the last rewrite's steps, for the benchmark (benchmarks/run.py).
timings: dict[str, float] = {}


class PatchingLoader(SourceFileLoader):
    """Loads one target module, applying the rules that target it."""

    def __init__(self, fullname: str, path: str, session: Installation, inner: SourceFileLoader | None = None) -> None:
        super().__init__(fullname, path)
        self._session = session
        # Another import hook's loader for this module (a SourceFileLoader subclass that
        # transforms source, like typeguard's): it compiles our patched source, so both apply.
        self._inner = inner

    def get_code(self, fullname: str) -> CodeType | None:
        rules = self._session.rules_for(fullname)
        try:
            code = self._patched_code(fullname, rules) if rules else None
        except AstpatchError:
            raise
        except Exception as error:  # astpatch itself failed: the import must still work
            self._session.report([
                oc.Outcome(r.id, fullname, oc.FAILED, f"astpatch failed: {type(error).__name__}: {error}")
                for r in rules
            ])
            code = None
        if code is None:
            trace(f"{fullname}: running upstream's code")
            return super().get_code(fullname)
        return code

    def _patched_code(self, fullname: str, rules: list) -> CodeType | None:
        path = self.get_filename(fullname)
        stats = self.path_stats(path)
        source = self.get_data(path)
        code, outcomes, spans = build(fullname, path, source, rules, self._session,
                                      upstream=lambda: SourceFileLoader.get_code(self, fullname))
        self._session.report(outcomes)
        if code is None:
            return None
        show_patched_source(path, stats, source, spans)
        if self._inner is not None:
            from importlib.util import decode_source

            patched = "".join(patched_lines(split_lines(decode_source(source)), [Span.from_tuple(s) for s in spans]))
            return self._inner.source_to_code(patched, path)
        return code


def build(fullname: str, path: str, source: bytes, rules: list, session: Installation,
          upstream: Callable[[], CodeType | None] | None = None) -> tuple[CodeType | None, list[oc.Outcome], list[tuple]]:
    """The code, outcomes and spans for `rules` on this source: from the cache, or rewritten and cached.

    Shared by the loader, `astpatch cache warm` and the live patching of modules imported too
    early, so all use the same key. `upstream()` gives the module's own code (its normal
    `.pyc`), which lets the rewrite skip parsing and compiling the whole module.
    """
    # Imported here, not at start-up: importlib.util pulls in contextlib and collections.
    from importlib.util import MAGIC_NUMBER, decode_source, source_hash

    versions = {d: installed_version(d, near=path) for d in sorted({r.gate_distribution for r in rules if r.gate_distribution})}
    key = (
        __version__,
        session.libcst_version(),
        MAGIC_NUMBER,
        sys.flags.optimize,
        fullname,
        path,
        source_hash(source),
        tuple(r.fingerprint() for r in rules),
        tuple(versions.items()),
    )
    entry = session.cache.load(fullname, key)
    if entry is not None:
        try:
            code = marshal.loads(entry.code) if entry.code is not None else None
            return code, [oc.Outcome.from_tuple(t, from_cache=True) for t in entry.outcomes], entry.spans
        except Exception as error:
            trace(f"{fullname}: cached entry unusable ({error}); rewriting")
    from .rewrite import rewrite  # imports ast; libcst is imported by the edits

    trace(f"{fullname}: rewriting with {', '.join(r.id for r in rules)}")
    # A rewrite allocates many small objects; in a process that already holds a large heap (torch)
    # that triggers full collections costing far more than the rewrite itself.
    collecting = gc.isenabled()
    gc.disable()
    try:
        started = time.perf_counter()
        upstream_code = upstream() if upstream is not None else None
        timings["upstream code"] = time.perf_counter() - started
        result = rewrite(fullname, path, decode_source(source), rules, versions, upstream=upstream_code)
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
    session.cache.store(fullname, key, entry)
    timings["cache write"] = time.perf_counter() - started
    return result.code, result.outcomes, spans


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
