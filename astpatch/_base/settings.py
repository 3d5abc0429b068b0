"""The one reader of astpatch's environment variables.

| variable             | meaning                                                          |
|----------------------|------------------------------------------------------------------|
| ASTPATCH_DISABLE     | `1` turns astpatch off; `id,id` turns those rules off             |
| ASTPATCH_STRICT      | `1`: a rule that cannot do its job raises instead of warning      |
| ASTPATCH_CACHE_DIR   | where rewritten code is cached (default: the user cache directory)|
| ASTPATCH_NO_CACHE    | `1`: no on-disk cache                                             |
| ASTPATCH_RULES       | more rule files or directories, separated like PATH              |
| ASTPATCH_LOG         | `debug`: one line per decision on stderr                          |
| ASTPATCH_AUTOINSTALL | `1`: install astpatch at interpreter start-up (`astpatch run`)    |

Booleans accept 1/true/yes/on and 0/false/no/off (any case); anything else counts as off and is
reported to the caller's `report`, once per read.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

DISABLE = "ASTPATCH_DISABLE"
STRICT = "ASTPATCH_STRICT"
CACHE_DIR = "ASTPATCH_CACHE_DIR"
NO_CACHE = "ASTPATCH_NO_CACHE"
RULES = "ASTPATCH_RULES"
LOG = "ASTPATCH_LOG"
AUTOINSTALL = "ASTPATCH_AUTOINSTALL"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def flag(name: str, report: Callable[[str], None] | None = None) -> bool:
    """A boolean variable; an unknown value counts as off and is passed to `report`."""
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value not in _FALSE and report is not None:
        report(f"astpatch: ignoring {name}={os.environ[name]!r}: use 1 to turn it on or 0 to turn it off.")
    return False


def tracing() -> bool:
    """ASTPATCH_LOG=debug: one trace line per decision."""
    return os.environ.get(LOG, "").strip().lower() == "debug"


class Disabled:
    """What ASTPATCH_DISABLE asks for: everything, some rule ids, or nothing."""

    __slots__ = ("everything", "rule_ids")

    def __init__(self, everything: bool, rule_ids: frozenset[str]) -> None:
        self.everything = everything
        self.rule_ids = rule_ids


def disabled() -> Disabled:
    value = os.environ.get(DISABLE, "").strip()
    if value.lower() in _TRUE:
        return Disabled(True, frozenset())
    if value.lower() in _FALSE:
        return Disabled(False, frozenset())
    return Disabled(False, frozenset(part.strip() for part in value.split(",") if part.strip()))


def rule_paths() -> list[str]:
    value = os.environ.get(RULES, "")
    return [p for p in value.split(os.pathsep) if p.strip()]


def default_cache_directory() -> str:
    """The user cache directory, as each platform places it."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "astpatch", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/astpatch")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "astpatch")


def cache_directory(argument: str | os.PathLike | bool | None, report: Callable[[str], None] | None = None) -> str | None:
    """The cache directory to use, as an absolute path, or None for no cache.

    ASTPATCH_NO_CACHE=1 turns the cache off whatever the program asks (an operator's switch, as
    on a read-only image); otherwise `install(cache_dir=...)` wins over ASTPATCH_CACHE_DIR, and
    `False` means no cache. Either may be relative or start with `~`: it is resolved here, once,
    so a later `os.chdir()` does not move the cache, and `~` is the home directory, not a folder named `~`.
    """
    if argument is False or flag(NO_CACHE, report):
        return None
    if argument is not None and argument is not True:
        path = os.fspath(argument)
    else:
        path = os.environ.get(CACHE_DIR, "").strip() or default_cache_directory()
    return os.path.abspath(os.path.expanduser(path)) if path else path
