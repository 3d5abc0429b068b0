"""The loader of target modules: a `SourceFileLoader` whose code production is patched.

Subclassing `SourceFileLoader` and overriding only `get_code` keeps everything else as Python
does it: `__file__`, `__spec__`, `__cached__`, resource readers, `pkgutil`, `get_source`.
Upstream's normal `.pyc` in `__pycache__` is never written with patched code: patched code goes
to astpatch's own cache, so a process without astpatch still runs upstream's code.
"""

from __future__ import annotations

from importlib.machinery import SourceFileLoader

from .._base import outcomes as oc
from .._base.lines import patched_source, show_patched_source
from .._base.messages import AstpatchError, AstpatchWarning, trace, trace_exception
from .._engine.cache import lookup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType

    from .session import Session


class PatchingLoader(SourceFileLoader):
    """Loads one target module, applying the rules that target it."""

    def __init__(self, fullname: str, path: str, session: Session, inner: SourceFileLoader | None = None) -> None:
        super().__init__(fullname, path)
        self._session = session
        # Another import hook's loader for this module (a SourceFileLoader subclass that
        # transforms source, like typeguard's): it compiles our patched source, so both apply,
        # and it loads the module whenever no rule changes it.
        self._inner = inner

    def get_code(self, fullname: str) -> CodeType | None:
        rules = self._session.rules.for_module(fullname)
        late = self._session.imported_without(fullname, rules)
        if late:
            # A rule over several modules, one of which already runs without its part: applying
            # this module's part would make half a change.
            self._session.report([oc.Outcome(r.id, fullname, oc.FAILED, late[r.id]) for r in rules if r.id in late])
            rules = [r for r in rules if r.id not in late]
        try:
            code = self._patched_code(fullname, rules) if rules else None
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

    def _patched_code(self, fullname: str, rules: list) -> CodeType | None:
        path = self.get_filename(fullname)
        stats = self.path_stats(path)
        source = self.get_data(path)
        found = lookup(fullname, path, source, rules, self._session.cache)
        built = found.built
        if built is None:  # a miss: only now the rewrite engine loads
            from .._engine.pipeline import build
            from .._engine.upstream import upstream_code

            # The code of these very bytes (the path is statted when it is called: after the read).
            built = build(fullname, path, source, rules, self._session.cache,
                          upstream=lambda: upstream_code(fullname, path, source), looked_up=found)
        self._session.report(built.outcomes)
        if built.code is None:
            return None
        show_patched_source(path, stats["size"], stats["mtime"], source, built.spans)
        if self._inner is not None:
            return self._inner.source_to_code(patched_source(source, built.spans), path)
        return built.code
