"""Settings from the environment, read once by `install()`.

| variable            | meaning                                                          |
|---------------------|------------------------------------------------------------------|
| ASTPATCH_DISABLE    | `1` turns astpatch off; `id,id` turns those rules off             |
| ASTPATCH_STRICT     | `1`: a rule that cannot do its job raises instead of warning      |
| ASTPATCH_CACHE_DIR  | where rewritten code is cached (default: the user cache directory)|
| ASTPATCH_NO_CACHE   | `1`: no on-disk cache                                             |
| ASTPATCH_RULES      | more rule files or directories, separated like PATH              |
| ASTPATCH_LOG        | `debug`: one line per decision on stderr                          |
"""

from __future__ import annotations

import os

from .messages import warn

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def flag(name: str) -> bool:
    """A boolean variable; an unknown value is reported once and counts as off."""
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value not in _FALSE:
        warn(f"astpatch: ignoring {name}={os.environ[name]!r}: use 1 to turn it on or 0 to turn it off.")
    return False


class Disabled:
    """What ASTPATCH_DISABLE asks for: everything, some rule ids, or nothing."""

    __slots__ = ("everything", "rule_ids")

    def __init__(self, everything: bool, rule_ids: frozenset[str]) -> None:
        self.everything = everything
        self.rule_ids = rule_ids


def disabled() -> Disabled:
    value = os.environ.get("ASTPATCH_DISABLE", "").strip()
    if value.lower() in _TRUE:
        return Disabled(True, frozenset())
    if value.lower() in _FALSE:
        return Disabled(False, frozenset())
    return Disabled(False, frozenset(part.strip() for part in value.split(",") if part.strip()))


def rule_paths() -> list[str]:
    value = os.environ.get("ASTPATCH_RULES", "")
    return [p for p in value.split(os.pathsep) if p.strip()]


def cache_directory(argument: str | os.PathLike | bool | None) -> str | None:
    """The cache directory to use, or None for no cache.

    ASTPATCH_NO_CACHE=1 turns the cache off whatever the program asks (an operator's switch, as
    on a read-only image); otherwise `install(cache_dir=...)` wins over ASTPATCH_CACHE_DIR, and
    `False` means no cache.
    """
    if argument is False or flag("ASTPATCH_NO_CACHE"):
        return None
    if argument is not None and argument is not True:
        return os.fspath(argument)
    configured = os.environ.get("ASTPATCH_CACHE_DIR", "").strip()
    if configured:
        return configured
    from .cache import default_directory

    return default_directory()
