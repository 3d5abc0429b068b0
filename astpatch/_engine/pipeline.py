"""The pipeline: the code for one module under some rules, from the cache or rewritten and cached.

Key, cache lookup, rewrite and store in one place, used alike by the loader, the live patching of
modules imported too early, `astpatch cache warm` and the benchmark, so all of them agree on the
key and on what runs. The loader looks the cache up first (`astpatch._base.cache.lookup`) and
imports this module only on a miss.

What is stored is what the rules and the sources decide, and nothing that the moment decides.
A failure of the environment gives the module upstream's code in this process, with the reason
in each rule's outcome (one warning a rule), and stores nothing, so the next process tries again:
- RecursionError: the import happened deep in a stack, and the rewrite (libcst and `ast`
  recurse over the tree, the compiler too) ran out of it;
- MemoryError: the process ran out of memory;
- OSError while reading the source of another module a rule also changes, other than its
  absence (an I/O error, a permission, too many open files; see `cache.other_sources`).
KeyboardInterrupt and SystemExit are not caught: they propagate, and nothing is stored. Any other
exception of an edit is the rule's own failure and is cached with it (see `apply._run`); any other
exception of astpatch propagates to the loader, which runs upstream's code and stores nothing.

After its first write, a process sweeps the cache directory once (`tidy`): the temporary files of
writers that died, and the least recently used entries beyond MAX_BYTES.
"""

from __future__ import annotations

import gc
import marshal
import time

from .._base import outcomes as oc
from .._base.cache import SUFFIX, Built, Cache, Entry, Lookup, lookup
from .._base.messages import trace
from .._base.metadata import find_version
from .._base.modulefiles import SourceNotFound
from .._base.store import INDEX_SUFFIX
from .apply import ENVIRONMENTAL

# The most astpatch's files (entries and entry-point indexes) may take in the cache directory; beyond
# it, the least recently used go first. A large module's entry takes a few megabytes.
MAX_BYTES = 256 * 1024 * 1024
OWN_SUFFIXES = (SUFFIX, INDEX_SUFFIX)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType

    from .._model.rule import Rule


def build(fullname: str, path: str, source: bytes, rules: list[Rule], cache: Cache,
          upstream: Callable[[], CodeType | None] | None = None, timings: dict[str, float] | None = None,
          looked_up: Lookup | None = None) -> Built:
    """The code, outcomes and spans for `rules` on this source: from the cache, or rewritten and cached.

    `upstream()` gives the module's own code (its normal `.pyc`), which lets the rewrite skip
    parsing and compiling the whole module. `timings`, when given, receives each step's seconds.
    `looked_up` is the caller's own `lookup` of the same arguments, when it already made it.
    """
    if looked_up is None:
        looked_up = lookup(fullname, path, source, rules, cache)
    if looked_up.built is not None:
        return looked_up.built
    key, others = looked_up.key, looked_up.others
    versions, checks = environment(path, rules)
    if looked_up.unreadable:
        module, error = next(iter(looked_up.unreadable.items()))
        return _not_cached(fullname, rules, versions, f"the source of {module} cannot be read ({error})")
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
    except ENVIRONMENTAL as error:
        what = "stack (the import happened deep in a stack)" if isinstance(error, RecursionError) else "memory"
        return _not_cached(fullname, rules, versions, f"the rewrite ran out of {what}: {type(error).__name__}"
                                                      f"{': ' if str(error) else ''}{error}")
    finally:
        if collecting:
            gc.enable()
    spans = [s.to_tuple() for s in result.spans]
    entry = Entry(
        [o.to_tuple() for o in result.outcomes],
        spans,
        marshal.dumps(result.code) if result.code is not None else None,
        checks,
    )
    started = time.perf_counter()
    stored = cache.store_entry(key, entry)
    timings["cache write"] = time.perf_counter() - started
    if stored and cache.directory is not None and cache.directory not in _tidied:
        _tidied.add(cache.directory)
        tidy(cache, keep=key.file_name())
    return Built(result.code, result.outcomes, spans)


_libcst: tuple | None = None


def environment(path: str, rules: list[Rule]) -> tuple[dict[str, str | None], tuple]:
    """The gated distributions' versions, by name, and the evidence for them and for libcst's
    version (libcst prints the edited functions): what an entry records as its `checks`."""
    global _libcst
    if _libcst is None:
        _libcst = find_version("libcst", near=__file__)[1]
    versions: dict[str, str | None] = {}
    checks = list(_libcst)
    for distribution in sorted({r.gate_distribution for r in rules if r.gate_distribution}):
        versions[distribution], evidence = find_version(distribution, near=path)
        checks.extend(evidence)
    return versions, tuple(checks)


def _not_cached(fullname: str, rules: list[Rule], versions: dict[str, str | None], cause: str) -> Built:
    """Upstream's code, with each rule failed for `cause` (a failure of the environment); nothing is stored."""
    from .parts import gate_reason, version

    trace(f"{fullname}: {cause}; running upstream's code, nothing stored")
    outcomes = []
    for rule in rules:
        outside = gate_reason(rule, versions)  # a rule outside its gate has nothing to say about it
        outcomes.append(oc.Outcome(rule.id, fullname, oc.NOT_APPLICABLE if outside else oc.FAILED,
                                   outside or f"{cause}; nothing was cached, so the next process tries again",
                                   version=version(rule, versions)))
    return Built(None, outcomes, [])


_tidied: set[str] = set()  # the cache directories this process has tidied


def tidy(cache: Cache, keep: str | None = None) -> None:
    """Remove the temporary files of writers that died, then the least recently used of astpatch's files
    beyond MAX_BYTES, never `keep` (the entry just written). Unknown files are not looked at."""
    store = cache.store
    for file, problem in store.sweep(OWN_SUFFIXES):
        trace(f"{'cannot remove' if problem else 'removed'} {file.path}: a temporary file of a writer that died "
              f"(pid {file.pid}){f' ({problem})' if problem else ''}")
    for file, why, problem in store.evict(OWN_SUFFIXES, MAX_BYTES, keep=keep):
        trace(f"{'cannot remove' if problem else 'removed'} {file.path}: {why}{f' ({problem})' if problem else ''}")


def build_file(fullname: str, path: str, rules: list[Rule], cache: Cache, timings: dict[str, float] | None = None) -> Built:
    """`build` for a module read from its file, as the import system would (`astpatch cache warm`,
    the benchmark, modules imported before `install()`). Raises OSError when it cannot be read."""
    import os

    from .upstream import upstream_code

    with open(path, "rb") as f:
        source = f.read()
        status = os.fstat(f.fileno())  # after the read: what vouches for these bytes
    return build(fullname, path, source, rules, cache, upstream=lambda: upstream_code(fullname, path, source, status),
                 timings=timings)
