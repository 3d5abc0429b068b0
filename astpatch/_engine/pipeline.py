"""The pipeline: the code for one module under some rules, from the cache or rewritten and cached.

Key, cache lookup, rewrite and store in one place, used alike by the loader, the live patching of
modules imported too early, `astpatch cache warm` and the benchmark, so all of them agree on the
key and on what runs. The loader looks the cache up first (`cache.lookup`) and imports this module
only on a miss.
"""

from __future__ import annotations

import gc
import marshal
import time

from .._base.messages import trace
from .._base.modulefiles import SourceNotFound
from .cache import Built, Cache, Entry, Lookup, lookup

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
    key, versions, others = looked_up.key, looked_up.versions, looked_up.others
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
        looked_up.checks,
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
