"""Distribution metadata: an installed version, found without importing `importlib.metadata`.

`importlib.metadata` costs several milliseconds to import. The version a gate needs is in the
`.dist-info` (or `.egg-info`) directory beside the package, so one directory listing per
`sys.path` entry and a few lines of METADATA give the same answer, in the same order
(`sys.path` order) that `importlib.metadata.version()` uses. Only when nothing is found that way
(a distribution inside a zip, a custom finder) is `importlib.metadata` asked.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

_SEPARATORS = str.maketrans("_.", "--")


def normalize(name: str) -> str:
    """PEP 503 normalisation: `Foo_Bar.baz` and `foo-bar-baz` are one name."""
    name = name.lower().translate(_SEPARATORS)
    while "--" in name:
        name = name.replace("--", "-")
    return name


# Per sys.path entry: its mtime and {normalized distribution name: metadata directory name}.
_index: dict[str, tuple[int, dict[str, str]]] = {}


def metadata_dir(entry: str, wanted: str) -> str | None:
    directory = entry or "."
    try:
        mtime = os.stat(directory).st_mtime_ns
    except OSError:
        return None
    known = _index.get(directory)
    if known is None or known[0] != mtime:  # new, or something was installed since
        try:
            names = os.listdir(directory)
        except OSError:
            return None
        found: dict[str, str] = {}
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                found.setdefault(normalize(name.rsplit(".", 1)[0].split("-", 1)[0]), name)
        known = _index[directory] = (mtime, found)
    found_name = known[1].get(wanted)
    return os.path.join(directory, found_name) if found_name else None


def header(lines: Iterable[str], name: str) -> str | None:
    """The value of header `name` (`Version`, `Name`) in METADATA or PKG-INFO text, or None."""
    prefix = name.lower() + ":"
    for line in lines:
        if not line.strip():
            return None  # end of the headers
        if line.lower().startswith(prefix):
            return line.split(":", 1)[1].strip()
    return None


def read_version(directory: str) -> str | None:
    """The version recorded in a `.dist-info` or `.egg-info` directory."""
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(directory, filename), encoding="utf-8", errors="replace") as f:
                version = header(f, "version")
        except OSError:
            continue
        if version is not None:
            return version
    return None


def installed_version(distribution: str, near: str | None = None) -> str | None:
    """The installed version of `distribution`, or None when it is not installed.

    `near` is the file of a module the distribution provides: the `sys.path` entry holding it
    is searched first, so the version is that of the code actually imported (and, usually, one
    directory listing is all it takes).
    """
    wanted = normalize(distribution)
    if near is not None:
        for entry in sys.path:
            if isinstance(entry, str) and entry and near.startswith(os.path.join(entry, "")):
                directory = metadata_dir(entry, wanted)
                version = read_version(directory) if directory is not None else None
                if version is not None:
                    return version
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        directory = metadata_dir(entry, wanted)
        if directory is not None:
            version = read_version(directory)
            if version is not None:
                return version
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - always present on 3.10+
        return None
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
