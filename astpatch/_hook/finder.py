"""The meta-path finder and its loader: one set lookup for every import, real work only for targets.

For a target module the finder asks the other finders on `sys.meta_path` for the real spec (so it
composes with other import hooks instead of bypassing them), and hands plain source files to
`PatchingLoader`. Anything else (a zip import, an extension module, another hook's own loader)
is left alone, with one warning naming the rules that could not be applied.

The loader lives here, with the finder, and what a cache hit runs is imported with them, by
`install()`: the cache's lookup, the outcomes, the lines given to `linecache`. So a hit imports
nothing: every module it needs is one the installed finder already has, and the patched text
reaches `linecache` when the program imports it, which the finder sees (`show_patched_text`).
"""

import _thread
import sys
from _frozen_importlib_external import SourceFileLoader  # importlib.machinery's, without importing it

from .._base import outcomes as oc
from .._base.cache import lookup
from .._base.lines import give_to_linecache, patched_source
from .._base.messages import AstpatchError, AstpatchWarning, report_configuration, trace, trace_exception, tracing

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import CodeType, ModuleType

    from .session import Session


def _transforms_source(loader: object) -> bool:
    """A SourceFileLoader subclass that changes only how source becomes code (typeguard's does).

    Such a loader can compile astpatch's patched source instead of the file's, so both hooks
    apply. A loader that overrides more than that is left alone.
    """
    if not isinstance(loader, SourceFileLoader):
        return False
    kind = type(loader)
    return kind.get_code is SourceFileLoader.get_code and kind.source_to_code is not SourceFileLoader.source_to_code


class PatchingFinder:
    def __init__(self, session: "Session") -> None:
        self._session = session
        self._rule_targets: frozenset[str] = frozenset()
        self._targets: frozenset[str] = frozenset()  # the whole cost of a non-target import
        self._busy = _thread._local()

    def set_targets(self, targets: frozenset[str]) -> None:
        self._rule_targets = targets
        self._targets = (targets | {"linecache"}) if _waiting else targets

    def watch_linecache(self, watch: bool = True) -> None:
        """See (or stop seeing) the import of `linecache`, to give it the patched texts waiting for it."""
        self._targets = (self._rule_targets | {"linecache"}) if watch else self._rule_targets

    def discover_first(self) -> None:
        """Run entry-point discovery at the first import, then go back to the plain find_spec."""
        self.find_spec = self._discover_then_find_spec  # type: ignore[method-assign]

    def _discover_then_find_spec(self, fullname: str, path: "Sequence[str] | None" = None,
                                 target: object = None) -> "ModuleSpec | None":
        try:
            del self.find_spec  # before discovering: it imports modules, which call find_spec again
        except AttributeError:  # another thread is discovering: go on with the targets known so far
            return self.find_spec(fullname, path, target)
        self._session.discover_plugins()
        self.set_targets(self._session.targets())
        return self.find_spec(fullname, path, target)

    def find_spec(self, fullname: str, path: "Sequence[str] | None" = None, target: object = None) -> "ModuleSpec | None":
        if fullname not in self._targets:
            return None
        busy = self._busy.__dict__.setdefault("names", set())
        if fullname in busy:  # another finder asked the import system again: stay out of the way
            return None
        busy.add(fullname)
        try:
            spec = self._spec_from_other_finders(fullname, path, target)
        finally:
            busy.discard(fullname)
        if spec is None:
            trace(f"{fullname}: targeted, but no finder finds it")
            return None
        if fullname in self._rule_targets:
            self._patching(fullname, spec)
        if fullname == "linecache" and _waiting and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenShow(spec)  # type: ignore[assignment]  # a loader, though not an importlib.abc one
        return spec

    def _patching(self, fullname: str, spec: "ModuleSpec") -> None:
        """Give a target's spec the patching loader, or say why it cannot have it."""
        report_configuration()  # a setting's problem is said by the processes that import a target
        if tracing():  # only then: naming the rules loads the entry points pending for the module
            trace(f"{fullname}: targeted by {', '.join(r.id for r in self._session.rules.for_module(fullname))}; "
                  f"found by {type(spec.loader).__name__} at {spec.origin}")
        if type(spec.loader) is SourceFileLoader and spec.origin:
            spec.loader = PatchingLoader(fullname, spec.origin, self._session)
        elif isinstance(spec.loader, SourceFileLoader) and _transforms_source(spec.loader) and spec.origin:
            spec.loader = PatchingLoader(fullname, spec.origin, self._session, inner=spec.loader)
        else:
            loader = type(spec.loader).__name__ if spec.loader is not None else "no loader"
            self._session.report([
                oc.Outcome(rule.id, fullname, oc.FAILED,
                           f"{fullname} is loaded by {loader} from {spec.origin}, not from a plain source file, "
                           "so astpatch cannot rewrite it")
                for rule in self._session.rules.for_module(fullname)
            ])

    def _spec_from_other_finders(self, fullname: str, path: "Sequence[str] | None", target: object) -> "ModuleSpec | None":
        for finder in list(sys.meta_path):
            if isinstance(finder, PatchingFinder):
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec  # (untyped third-party finders)
        return None

    def removed(self) -> None:
        """Called once the finder is off `sys.meta_path`: with no finder left to see `linecache`'s
        import, the texts waiting for it are given to it now."""
        if _waiting and not _finders():
            import linecache  # noqa: F401 - imported for the texts

            _give_waiting()

    def invalidate_caches(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<astpatch.PatchingFinder for {sorted(self._rule_targets)}>"


class PatchingLoader(SourceFileLoader):
    """Loads one target module, applying the rules that target it.

    Subclassing `SourceFileLoader` and overriding only `get_code` keeps everything else as Python
    does it: `__file__`, `__spec__`, `__cached__`, resource readers, `pkgutil`, `get_source`.
    Upstream's normal `.pyc` in `__pycache__` is never written with patched code: patched code goes
    to astpatch's own cache, so a process without astpatch still runs upstream's code.
    """

    def __init__(self, fullname: str, path: str, session: "Session", inner: SourceFileLoader | None = None) -> None:
        super().__init__(fullname, path)
        self._session = session
        # Another import hook's loader for this module (a SourceFileLoader subclass that
        # transforms source, like typeguard's): it compiles our patched source, so both apply,
        # and it loads the module whenever no rule changes it.
        self._inner = inner

    def get_code(self, fullname: str) -> "CodeType | None":
        # As the rule-file index records them: a cache hit executes no rule file.
        rules = self._session.keyed_for_module(fullname)
        late = self._session.imported_without(fullname, rules)
        if late:
            # A rule over several modules, one of which already runs without its part: applying
            # this module's part would make half a change.
            self._session.report([oc.Outcome(r.id, fullname, oc.FAILED, late[r.id]) for r in rules if r.id in late])
            rules = [r for r in rules if r.id not in late]
        try:
            code = self._patched_code(fullname, rules, late) if rules else None
        except (AstpatchError, AstpatchWarning):
            # A problem raised by strict mode, or by a warnings filter that makes warnings errors
            # (-W error): that problem, once, for the import; astpatch itself did not fail.
            raise
        except Exception as error:  # astpatch itself failed: the import must still work
            trace_exception(f"{fullname}: astpatch failed", error)
            self._session.report([
                oc.Outcome(r.id, fullname, oc.FAILED, f"astpatch failed: {type(error).__name__}: {error}")
                for r in rules
            ])
            code = None
        if code is None:
            trace(f"{fullname}: running upstream's code")
            return self._inner.get_code(fullname) if self._inner is not None else super().get_code(fullname)
        return code

    def _patched_code(self, fullname: str, keyed: list, late: dict[str, str]) -> "CodeType | None":
        path = self.get_filename(fullname)
        stats = self.path_stats(path)
        source = self.get_data(path)
        found = lookup(fullname, path, source, keyed, self._session.cache)
        built = found.built
        if built is None:  # a miss: only now the rule files are executed and the rewrite engine loads
            from .._engine.pipeline import build
            from .._engine.upstream import upstream_code

            rules = [r for r in self._session.rules.for_module(fullname) if r.id not in late]
            if [r.fingerprint() for r in rules] != list(found.key.rules):  # a rule file changed since install()
                found = lookup(fullname, path, source, rules, self._session.cache)
            # The code of these very bytes (the path is statted when it is called: after the read).
            built = found.built or build(fullname, path, source, rules, self._session.cache,
                                         upstream=lambda: upstream_code(fullname, path, source), looked_up=found)
        self._session.report(built.outcomes)
        if built.code is None:
            return None
        show_patched_text(path, stats["size"], stats["mtime"], source, built.spans)
        if self._inner is not None:
            return self._inner.source_to_code(patched_source(source, built.spans), path)
        return built.code


# -- the patched text, for tracebacks, `inspect`, debuggers and coverage ------------------------

# The files whose patched code runs in this process, by the path their code objects name: the
# source bytes and the spans (as cached) that `lines.linecache_lines` shows. Read by the coverage
# plugin (`astpatch.coverage`), which claims these files and no others.
SHOWN: dict[str, tuple[bytes, list[tuple]]] = {}
# Of those, the ones `linecache` is yet to receive, with the file's size and mtime.
_waiting: dict[str, tuple[int, float]] = {}


def show_patched_text(path: str, size: int, mtime: float, source: bytes, spans: list[tuple]) -> None:
    """Make tracebacks, `inspect` and debuggers show the text that runs in the file at `path`.

    It goes to `linecache` at once when the program has imported it, else when the program
    imports it: the finder sees that import and gives linecache the text as soon as it has run
    (importing it here, with `tokenize` and `re`, would cost many times the cache hit)."""
    SHOWN[path] = (source, spans)
    _waiting[path] = (size, mtime)
    if _give_waiting():
        return
    finders = _finders()
    for finder in finders:
        finder.watch_linecache()
    if not finders:  # no finder installed (a reload after uninstall()): none would see linecache's import
        import linecache  # noqa: F401 - imported for the texts

        _give_waiting()


def _finders() -> list[PatchingFinder]:
    return [f for f in sys.meta_path if isinstance(f, PatchingFinder)]


def _give_waiting() -> bool:
    """Give `linecache` the texts waiting for it, if it is imported; whether it is."""
    cache = getattr(sys.modules.get("linecache"), "cache", None)
    if not isinstance(cache, dict):
        return False
    while _waiting:
        try:
            path, (size, mtime) = _waiting.popitem()
        except KeyError:  # another thread gave the last one
            break
        give_to_linecache(cache, path, size, mtime, *SHOWN[path])
    return True


class _ThenShow:
    """`linecache`'s own loader, then the waiting texts given to it; the module and its spec name
    that loader, as they do without astpatch."""

    def __init__(self, spec: "ModuleSpec") -> None:
        self._spec = spec
        self._loader = spec.loader

    def create_module(self, spec: "ModuleSpec") -> "ModuleType | None":
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: "ModuleType") -> None:
        self._spec.loader = module.__loader__ = self._loader
        self._loader.exec_module(module)  # type: ignore[union-attr]
        _give_waiting()
        for finder in _finders():
            finder.watch_linecache(False)
