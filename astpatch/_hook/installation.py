"""`install()`, `uninstall()`, `applied()`, and the installation handle they manage.

`install()` runs at start-up, before the user's program, so it does as little as possible: it
reads the start-up record (`astpatch._hook.record`: what an earlier start-up with the same
arguments decided, while the files it depends on are unchanged) and puts one finder first on
`sys.meta_path`, with what a cache hit runs (the cache's lookup, the outcomes, the lines given to
`linecache`: a hit imports nothing). Without a current record it builds the rule set
(`astpatch._hook.building`) from the rule-file index (`astpatch._model.ruleindex`), which says
which modules the rule files target without executing them. It imports no target, reads no
package metadata, imports no libcst and no edit kind; all of that happens when a target module is
actually imported.
"""

import _thread
import os
import sys

from .._base import settings
from .._base.messages import configuration, report_configuration, trace, warn
from .._base.store import Store
from .finder import PatchingFinder
from .session import Session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .._base import outcomes as oc
    from .._base.cache import Cache
    from .._model.rule import Rule
    from .._model.ruleset import RuleSet

_lock = _thread.RLock()
_current: "Installation | None" = None
_latest: "Installation | None" = None  # the last one installed, active or not: its code may still run


class Installation:
    """An installed astpatch: the handle `install()` returns.

    `uninstall()` (or leaving a `with` block) removes its finder; modules already imported keep
    the code they were given.
    """

    def __init__(self, session: Session, arguments: tuple, active: bool) -> None:
        self.session = session
        self.finder = PatchingFinder(session)
        self.finder.set_targets(session.targets())
        self.arguments = arguments  # what install() was called with, to notice a different second call
        self.active = active
        self.environment: dict[str, str] = {}  # its settings for a child process (child_environment())
        self.not_carried: list[str] = []  # the ids of the rules given as objects, which that cannot carry

    @property
    def rules(self) -> list["Rule"]:
        """Every rule in force (the rule files the index kept pending are executed now)."""
        return self.session.rules.rules

    @property
    def cache(self) -> "Cache":
        return self.session.cache

    @property
    def cache_directory(self) -> str | None:
        return self.session.store.directory

    @property
    def strict(self) -> bool:
        return self.session.strict

    @property
    def targets(self) -> frozenset[str]:
        return self.session.targets()

    def uninstall(self) -> None:
        global _current
        with _lock:
            while self.finder in sys.meta_path:
                sys.meta_path.remove(self.finder)
            self.finder.removed()
            self.active = False
            if _current is self:
                _current = None

    def export(self) -> None:
        """Give its settings to the processes the program starts from now on (install(children=True))."""
        if self.not_carried:
            warn(_not_carried(self.not_carried))
        os.environ.update(self.environment)

    def __enter__(self) -> "Installation":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    def __repr__(self) -> str:
        state = "active" if self.active else "inactive"
        return f"<astpatch.Installation {state}, rules for {len(self.targets)} modules, cache={self.cache_directory!r}>"


def _same_settings(rules: "Iterable[Rule | str | os.PathLike] | None", cache_dir: object, strict: bool,
                   current: Installation) -> bool:
    """Whether install(rules, cache_dir, strict) asks for what `current` has, though in other words
    (a worker re-running the program's install() after installing from its environment): only when
    every setting can be compared as the variables carry it, so never with rules given as objects."""
    wanted, not_carried = settings.requested_child_environment(rules or (), cache_dir, strict)
    return not not_carried and not current.not_carried and wanted == current.environment


def install(
    *,
    rules: "Iterable[Rule | str | os.PathLike[str]] | None" = None,
    cache_dir: str | os.PathLike[str] | bool | None = None,
    strict: bool = False,
    children: bool = False,
) -> Installation:
    """Put astpatch's finder first on `sys.meta_path` and return its handle.

    - `rules`: more rules, as `Rule` objects or rule files or directories, beside the shipped
      ones and those named by ASTPATCH_RULES.
    - `cache_dir`: where rewritten code is cached; `False` for no cache. Default: ASTPATCH_CACHE_DIR,
      else the user cache directory.
    - `strict`: raise `AstpatchError` instead of warning when a rule cannot do its job (also
      ASTPATCH_STRICT=1).
    - `children`: also put these settings in `os.environ` (see `child_environment()`), so the
      Python processes the program starts (multiprocessing's spawn and forkserver workers,
      subprocesses) install astpatch with them at start-up. They need astpatch installed in their
      environment as a distribution (its `astpatch-autoinstall.pth`).

    Calling it again while installed returns the same handle and installs nothing more; when
    the second call asks for something else, one warning says that it was ignored.
    """
    global _current, _latest
    arguments = _arguments(rules, cache_dir, strict)
    with _lock:
        if _current is not None and _current.active:
            if arguments != _current.arguments and not _same_settings(rules, cache_dir, strict, _current):
                warn("astpatch: install() was called again with other arguments while astpatch is installed; "
                     "they are ignored and the first installation stays. Call astpatch.uninstall() first to "
                     "install with other rules, cache or strictness.", strict=_current.strict)
            trace("install(): already installed; returning the existing handle")
            if children:
                _current.export()
            return _current

        note = configuration  # a setting's problem: never fatal, said at the first import of a target

        strict = bool(strict) or settings.flag(settings.STRICT, note)
        disabled = settings.disabled()
        # Resolved once, here: relative to the working directory of install(), `~` expanded.
        store = Store(settings.cache_directory(cache_dir, note), strict=strict,
                      by_argument=cache_dir is not None and not isinstance(cache_dir, bool))
        if disabled.everything:
            from .._model.ruleset import RuleSet

            trace("install(): ASTPATCH_DISABLE turns astpatch off")
            return Installation(Session(RuleSet(note), store, strict), arguments, active=False)

        def report(message: str) -> None:
            warn(message, strict=strict)

        given = list(rules or ())
        paths = [os.fspath(r) for r in given if isinstance(r, (str, os.PathLike))]
        start = recorded = None
        if store.directory is not None and len(paths) == len(given):  # no cache, or Rule objects: no record
            from . import record

            start = record.identity([*settings.rule_paths(), *paths], disabled.rule_ids, strict)
            recorded = record.load(store, start) if start is not None and store.usable() else None
        if recorded is not None and not recorded.targets & sys.modules.keys():
            trace("install(): from the start-up record")
            plugins = recorded.plugins
            session = Session(None, store, strict, record=recorded,
                              build_rules=lambda: _rebuilt(given, store, disabled, report, plugins))
            indexed: list | None = []
        else:
            from .building import start_up

            session, indexed = start_up(given, store, disabled, strict, start, report)
        installation = Installation(session, arguments, active=True)
        installation.environment, installation.not_carried = settings.child_environment(
            given, cache_dir, store.directory, strict, disabled)
        if children:
            installation.export()
        if indexed is None:
            installation.finder.discover_first()
        trace(f"install(): rules for {sorted(installation.targets)}, cache {store.directory}")
        sys.meta_path.insert(0, installation.finder)
        _current = _latest = installation
        for module in sorted(installation.targets & sys.modules.keys()):
            # Imported too early to be rewritten: patch its live functions if that is sound.
            from .live import patch_imported_module

            report_configuration()
            session.report(patch_imported_module(session, module, sys.modules[module]))
        return installation


def _rebuilt(given: list, store: Store, disabled: settings.Disabled, report: "Callable[[str], None]",
             plugins: tuple) -> "RuleSet":
    """The rule set that a start-up record stood for, built when something needs it, as install() would
    have built it (with the entry points the record vouched for)."""
    from .building import build_rules

    return build_rules(given, store, disabled, report, vouched=plugins)[0]


def _arguments(rules: "Iterable[Rule | str | os.PathLike[str]] | None", cache_dir: object, strict: bool) -> tuple:
    """What an install() call asks for, comparable between calls (rules by what they do)."""
    asked = [os.fspath(r) if isinstance(r, (str, os.PathLike)) else r.fingerprint() for r in (rules or ())]
    return asked, os.fspath(cache_dir) if isinstance(cache_dir, os.PathLike) else cache_dir, bool(strict)


def current() -> Installation | None:
    """The active installation, if any."""
    return _current


def latest() -> Installation | None:
    """The installation made last, even if uninstalled since: the modules it patched still run
    its code."""
    return _latest


def child_environment() -> dict[str, str]:
    """The ASTPATCH_* variables with which a Python process installs astpatch at start-up as this
    one did: the active installation's rule files, cache, strictness and disabled rules (without
    one, what install() would use). For engines that start workers with an environment of their
    own (Ray: `runtime_env={"env_vars": astpatch.child_environment()}`); the workers need astpatch
    installed in their environment."""
    installation = _current
    if installation is not None:
        environment, not_carried = installation.environment, installation.not_carried
    else:
        environment, not_carried = settings.requested_child_environment((), None, False)
    if not_carried:
        warn(_not_carried(not_carried))
    return dict(environment)


def _not_carried(ids: list[str]) -> str:
    return (f"astpatch: the rules given to install() as Rule objects ({', '.join(ids)}) do not reach the processes "
            "this program starts: environment variables carry only rule files. Give install(rules=...) the file "
            "or directory that defines them instead.")


def uninstall() -> None:
    """Remove astpatch's finder, if installed."""
    with _lock:
        if _current is not None:
            _current.uninstall()


def applied() -> list["oc.Outcome"]:
    """Every rule outcome met by an import in this process, oldest first."""
    from .._base import outcomes

    return outcomes.recorded()
