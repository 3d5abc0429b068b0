"""The meta-path finder: one set lookup for every import, real work only for targets.

For a target module it asks the other finders on `sys.meta_path` for the real spec (so it
composes with other import hooks instead of bypassing them), and hands plain source files to
`PatchingLoader`. Anything else (a zip import, an extension module, another hook's own loader)
is left alone, with one warning naming the rules that could not be applied.
"""

from __future__ import annotations

import _thread
import sys

from .._base.messages import report_configuration, trace, tracing

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec

    from .session import Session


def _transforms_source(loader: object) -> bool:
    """A SourceFileLoader subclass that changes only how source becomes code (typeguard's does).

    Such a loader can compile astpatch's patched source instead of the file's, so both hooks
    apply. A loader that overrides more than that is left alone.
    """
    from importlib.machinery import SourceFileLoader

    if not isinstance(loader, SourceFileLoader):
        return False
    kind = type(loader)
    return kind.get_code is SourceFileLoader.get_code and kind.source_to_code is not SourceFileLoader.source_to_code


class PatchingFinder:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._targets: frozenset[str] = frozenset()  # the whole cost of a non-target import
        self._busy = _thread._local()

    def set_targets(self, targets: frozenset[str]) -> None:
        self._targets = targets

    def discover_first(self) -> None:
        """Run entry-point discovery at the first import, then go back to the plain find_spec."""
        self.find_spec = self._discover_then_find_spec  # type: ignore[method-assign]

    def _discover_then_find_spec(self, fullname: str, path: Sequence[str] | None = None,
                                 target: object = None) -> ModuleSpec | None:
        try:
            del self.find_spec  # before discovering: it imports modules, which call find_spec again
        except AttributeError:  # another thread is discovering: go on with the targets known so far
            return self.find_spec(fullname, path, target)
        self._session.discover_plugins()
        self.set_targets(self._session.rules.modules())
        return self.find_spec(fullname, path, target)

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: object = None) -> ModuleSpec | None:
        if fullname not in self._targets:
            return None
        report_configuration()  # a setting's problem is said by the processes that import a target
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
        from importlib.machinery import SourceFileLoader  # at the first target import, not at install()

        from .._base import outcomes as oc
        from .loader import PatchingLoader

        if tracing():  # only then: naming the rules loads the entry points pending for the module
            trace(f"{fullname}: targeted by {', '.join(r.id for r in self._session.rules.for_module(fullname))}; "
                  f"found by {type(spec.loader).__name__} at {spec.origin}")
        if type(spec.loader) is SourceFileLoader and spec.origin:
            spec.loader = PatchingLoader(fullname, spec.origin, self._session)
            return spec
        if isinstance(spec.loader, SourceFileLoader) and _transforms_source(spec.loader) and spec.origin:
            spec.loader = PatchingLoader(fullname, spec.origin, self._session, inner=spec.loader)
            return spec
        loader = type(spec.loader).__name__ if spec.loader is not None else "no loader"
        self._session.report([
            oc.Outcome(rule.id, fullname, oc.FAILED,
                       f"{fullname} is loaded by {loader} from {spec.origin}, not from a plain source file, "
                       "so astpatch cannot rewrite it")
            for rule in self._session.rules.for_module(fullname)
        ])
        return spec

    def _spec_from_other_finders(self, fullname: str, path: Sequence[str] | None, target: object) -> ModuleSpec | None:
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

    def invalidate_caches(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<astpatch.PatchingFinder for {sorted(self._targets)}>"
