"""The one reader of astpatch's settings: the ASTPATCH_* variables, over a project's table.

| variable             | meaning                                                          |
|----------------------|------------------------------------------------------------------|
| ASTPATCH_DISABLE     | `1` turns astpatch off; `id,id` turns those rules off             |
| ASTPATCH_STRICT      | `1`: a rule that cannot do its job raises instead of warning      |
| ASTPATCH_CACHE_DIR   | where rewritten code is cached (default: the user cache directory)|
| ASTPATCH_NO_CACHE    | `1`: no on-disk cache                                             |
| ASTPATCH_RULES       | more rule files or directories, separated like PATH              |
| ASTPATCH_LOG         | the `astpatch` logger's level (`debug`: every decision) on stderr |
| ASTPATCH_AUTOINSTALL | `1`: install astpatch at interpreter start-up (`astpatch run`)    |

Booleans accept 1/true/yes/on and 0/false/no/off (any case); anything else counts as off and is
reported to the caller's `report`, once per read.

A front end that reads a project's `[tool.astpatch]` table (the command line, the pytest plugin:
see `astpatch._base.projectconfig`) hands it over with `use_project`, as the values of the
variables of the same jobs. A variable that is set (not empty) wins over the table, and the table
over the defaults, as pip's variables win over its configuration files: every reader below goes
through `value`, and `astpatch run` passes on to its program `not_overridden(table)`, so the one
rule holds in the command, in the program it runs and in the program's own child processes.
`install()` never reads the table: it reads no file at start-up beyond the rule files.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

DISABLE = "ASTPATCH_DISABLE"
STRICT = "ASTPATCH_STRICT"
CACHE_DIR = "ASTPATCH_CACHE_DIR"
NO_CACHE = "ASTPATCH_NO_CACHE"
RULES = "ASTPATCH_RULES"
LOG = "ASTPATCH_LOG"
AUTOINSTALL = "ASTPATCH_AUTOINSTALL"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")

# The project's settings in force in this process, by variable name (empty: none). Set only by a
# front end (`use_project`), so a program that calls install() itself reads the variables alone.
_project: dict[str, str] = {}


def use_project(values: "Mapping[str, str]") -> dict[str, str]:
    """Put a project's settings (ASTPATCH_* name -> value) under the variables; returns the ones
    it replaces, for the caller to restore."""
    global _project
    previous, _project = _project, dict(values)
    return previous


def _is_set(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


def value(name: str) -> str:
    """A setting as text: the variable when it is set (not empty), else the project's, else ""."""
    return os.environ[name] if _is_set(name) else _project.get(name, "")


def not_overridden(values: "Mapping[str, str]") -> dict[str, str]:
    """The project's settings that no variable overrides: what a child process must be given."""
    return {name: text for name, text in values.items() if not _is_set(name)}


def flag(name: str, report: "Callable[[str], None] | None" = None) -> bool:
    """A boolean setting; an unknown value counts as off and is passed to `report`."""
    text = value(name)
    if text.strip().lower() in _TRUE:
        return True
    if text.strip().lower() not in _FALSE and report is not None:
        report(f"astpatch: ignoring {name}={text!r}: use 1 to turn it on or 0 to turn it off.")
    return False


LEVELS = ("debug", "info", "warning", "error", "critical")


def log_level(report: "Callable[[str], None] | None" = None) -> str | None:
    """ASTPATCH_LOG as a `logging` level name ("DEBUG", ...), or None when unset or off; an unknown
    value counts as off and is passed to `report`."""
    given = value(LOG).strip().lower()
    if given in LEVELS:
        return given.upper()
    if given not in _FALSE and report is not None:
        report(f"astpatch: ignoring {LOG}={value(LOG)!r}: use one of {', '.join(LEVELS)}, or 0 to turn it off.")
    return None


class Disabled:
    """What ASTPATCH_DISABLE asks for: everything, some rule ids, or nothing."""

    __slots__ = ("everything", "rule_ids")

    def __init__(self, everything: bool, rule_ids: frozenset[str]) -> None:
        self.everything = everything
        self.rule_ids = rule_ids


def disabled() -> Disabled:
    text = value(DISABLE).strip()
    if text.lower() in _TRUE:
        return Disabled(True, frozenset())
    if text.lower() in _FALSE:
        return Disabled(False, frozenset())
    return Disabled(False, frozenset(part.strip() for part in text.split(",") if part.strip()))


def rule_paths() -> list[str]:
    return [p for p in value(RULES).split(os.pathsep) if p.strip()]


def default_cache_directory() -> str:
    """The user cache directory, as each platform places it."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "astpatch", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/astpatch")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "astpatch")


def cache_directory(argument: str | os.PathLike | bool | None, report: "Callable[[str], None] | None" = None) -> str | None:
    """The cache directory to use, as an absolute path, or None for no cache.

    ASTPATCH_NO_CACHE=1 turns the cache off whatever the program asks (an operator's switch, as
    on a read-only image); otherwise `install(cache_dir=...)` wins over ASTPATCH_CACHE_DIR (or the
    project's `cache-dir`), and `False` means no cache. Either may be relative or start with `~`: it is resolved here, once,
    so a later `os.chdir()` does not move the cache, and `~` is the home directory, not a folder named `~`.
    """
    if argument is False or flag(NO_CACHE, report):
        return None
    if argument is not None and argument is not True:
        path = os.fspath(argument)
    else:
        path = value(CACHE_DIR).strip() or default_cache_directory()
    return os.path.abspath(os.path.expanduser(path)) if path else path


def child_environment(rules: "Iterable[object]", cache_argument: object, directory: str | None, strict: bool,
                      disabled: Disabled) -> tuple[dict[str, str], list[str]]:
    """The variables with which a child process installs astpatch at start-up as `install(rules,
    cache_argument, strict)` did here (cache resolved to `directory`), and the ids of the rules
    given as objects, which no variable carries.

    Each setting is given explicitly, so what the child inherits cannot change it; the cache
    directory only when chosen (a worker on another machine has its own user's default).
    """
    paths: list[str] = []
    objects: list[str] = []
    for rule in [*rule_paths(), *rules]:
        if isinstance(rule, (str, os.PathLike)):
            if os.path.abspath(rule) not in paths:  # from this directory, as install() found them
                paths.append(os.path.abspath(rule))
        else:
            objects.append(getattr(rule, "id", repr(rule)))
    env = {AUTOINSTALL: "1", RULES: os.pathsep.join(paths), STRICT: "1" if strict else "0",
           DISABLE: "1" if disabled.everything else ",".join(sorted(disabled.rule_ids)) or "0"}
    if directory is None:
        env[NO_CACHE] = "1"
    elif cache_argument not in (None, True, False) or value(CACHE_DIR).strip():
        env[CACHE_DIR] = directory
    if log_level() is not None:
        env[LOG] = value(LOG)
    return env, objects


def requested_child_environment(rules: "Iterable[object]", cache_argument: object,
                                strict: bool) -> tuple[dict[str, str], list[str]]:
    """`child_environment()` for an install() call that has not been made (nothing reported)."""
    directory = cache_directory(cache_argument)  # type: ignore[arg-type]
    return child_environment(rules, cache_argument, directory, bool(strict) or flag(STRICT), disabled())
