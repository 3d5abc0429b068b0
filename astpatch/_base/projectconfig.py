"""A project's `[tool.astpatch]` table in pyproject.toml, for the command line and the pytest plugin.

    [tool.astpatch]
    rules = ["patches"]            # rule files or directories (ASTPATCH_RULES)
    disable = ["some-rule-id"]     # rule ids to leave out (ASTPATCH_DISABLE)
    strict = true                  # a rule that cannot do its job raises (ASTPATCH_STRICT)
    cache-dir = ".astpatch-cache"  # where rewritten code is cached (ASTPATCH_CACHE_DIR)

Relative paths (and `~`) are resolved here, against the pyproject.toml's directory, so they mean
the same from any working directory. The table becomes the values of the variables of the same
jobs, which `astpatch._base.settings` puts under the variables themselves: one precedence for
every front end. `install()` never imports this module.
"""

from __future__ import annotations

import os
import sys

from . import settings

FILENAME = "pyproject.toml"

# key -> (variable, what its value must be)
KEYS = {
    "rules": (settings.RULES, "a list of paths (strings)"),
    "disable": (settings.DISABLE, "a list of rule ids (strings)"),
    "strict": (settings.STRICT, "true or false"),
    "cache-dir": (settings.CACHE_DIR, "a path (a string)"),
}

# What ASTPATCH_DISABLE reads as a switch, not as a rule id.
_SWITCHES = ("1", "true", "yes", "on", "0", "false", "no", "off")


class ConfigError(Exception):
    """A pyproject.toml that cannot be read at all; the message names it."""


class Project:
    """The `[tool.astpatch]` table of one pyproject.toml, checked.

    `values` holds what the table sets, as the ASTPATCH_* variables would (absolute paths);
    `problems` one message per key that could not be used (unknown, of the wrong type, a rule
    path that does not exist), naming the file and the key. A key with a problem is left out.
    """

    def __init__(self, path: str, values: dict[str, str], problems: list[str]) -> None:
        self.path = path
        self.values = values
        self.problems = problems


def _load(path: str) -> dict:
    """The parsed TOML document at `path`; ConfigError naming it when it cannot be read or parsed."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(f"{path}: reading [tool.astpatch] on Python 3.10 needs tomli (a dependency of "
                              "astpatch): pip install tomli") from None
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def _mentions_astpatch(path: str) -> bool:
    """Whether the file could hold the table: others, valid or not, are not parsed."""
    try:
        with open(path, "rb") as f:
            return b"astpatch" in f.read()
    except OSError:
        return True  # parsed, so that the problem is reported with the file's name


def read(path: str) -> Project | None:
    """The table of the pyproject.toml at `path`, or None when it has none (or does not exist)."""
    path = os.path.abspath(path)
    if not os.path.isfile(path) or not _mentions_astpatch(path):
        return None
    tool = _load(path).get("tool")
    if not isinstance(tool, dict) or "astpatch" not in tool:
        return None
    table = tool["astpatch"]
    if not isinstance(table, dict):
        return Project(path, {}, [f"{path}: [tool.astpatch] must be a table, not {_kind(table)}"])
    base = os.path.dirname(path)
    values: dict[str, str] = {}
    problems: list[str] = []
    for key, given in table.items():
        where = f"{path}: [tool.astpatch] {key}"
        if key not in KEYS:
            problems.append(f"{path}: [tool.astpatch] has an unknown key {key!r} (known keys: {', '.join(KEYS)})")
            continue
        variable, expected = KEYS[key]
        if key == "strict":
            if isinstance(given, bool):
                values[variable] = "1" if given else "0"
            else:
                problems.append(f"{where} must be {expected}, not {_kind(given)}")
        elif key == "cache-dir":
            if isinstance(given, str) and given.strip():
                values[variable] = _resolve(base, given)
            else:
                problems.append(f"{where} must be {expected}, not {_kind(given)}")
        elif not isinstance(given, list) or not all(isinstance(item, str) and item.strip() for item in given):
            problems.append(f"{where} must be {expected}, not {_kind(given)}")
        elif key == "rules":
            paths = [_resolve(base, item) for item in given]
            for item in paths:
                if os.pathsep in item:
                    problems.append(f"{where}: {item} contains {os.pathsep!r}, which separates the paths of {variable}")
                elif not os.path.exists(item):
                    problems.append(f"{where}: {item} does not exist")
            values[variable] = os.pathsep.join(p for p in paths if os.pathsep not in p and os.path.exists(p))
        else:
            ids = [item.strip() for item in given]
            for item in ids:
                if "," in item or item.lower() in _SWITCHES:
                    problems.append(f"{where}: {item!r} is no rule id")
            values[variable] = ",".join(item for item in ids if "," not in item and item.lower() not in _SWITCHES)
    return Project(path, {name: text for name, text in values.items() if text}, problems)


def find(start: str) -> Project | None:
    """The table of the nearest pyproject.toml that has one, from `start` upwards (as ruff looks
    for its own table): a subproject's pyproject.toml without it does not hide the project's."""
    directory = os.path.abspath(start)
    while True:
        project = read(os.path.join(directory, FILENAME))
        if project is not None:
            return project
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _resolve(base: str, path: str) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(path.strip())))


def _kind(value: object) -> str:
    """A TOML value's kind, as the file spells it: `"x"` is a string, `[..]` a list."""
    kinds = {bool: "a boolean", str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a table"}
    return f"{kinds.get(type(value), type(value).__name__)} ({value!r})"
