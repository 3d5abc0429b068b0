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

from .evidence import settled, status_evidence

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
    return _read_version(directory)[0]


def _read_version(directory: str) -> tuple[str | None, str]:
    """(version, the file it was read from) of a `.dist-info` or `.egg-info` directory."""
    for filename in ("METADATA", "PKG-INFO"):
        path = os.path.join(directory, filename)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                version = header(f, "version")
        except OSError:
            continue
        if version is not None:
            return version, path
    return None, ""


def installed_version(distribution: str, near: str | None = None, paths: list[str] | None = None) -> str | None:
    """The installed version of `distribution`, or None when it is not installed.

    `near` is the file of a module the distribution provides: the `sys.path` entry holding it
    is searched first, so the version is that of the code actually imported (and, usually, one
    directory listing is all it takes). `paths` searches another environment's path instead of
    `sys.path`.
    """
    return find_version(distribution, near, paths)[0]


# Evidence for a version: ("stat", path, mtime_ns, ctime_ns, size, inode) of a file or directory
# that decided it (None for each when it does not exist), or ("version", distribution, near,
# version) where only asking again can tell.
Evidence = tuple


def _settled(evidence: Evidence) -> bool:
    """Whether a recorded status can vouch for the file: it exists and has not changed just now."""
    import time

    return settled(evidence[2:] if evidence[2] is not None else None, time.time_ns())


def find_version(distribution: str, near: str | None = None,
                 paths: list[str] | None = None) -> tuple[str | None, tuple[Evidence, ...]]:
    """`installed_version`, and the evidence for its answer, which `cache.evidence_holds` checks
    later with one `stat` per item instead of searching again (a cache hit's whole cost of versions).

    A version read from a METADATA file holds while that file does (an upgrade replaces the
    `.dist-info` directory, a reinstall the file); "not installed" holds while no `sys.path`
    directory changes.
    """
    wanted = normalize(distribution)
    entries = [e for e in (sys.path if paths is None else paths) if isinstance(e, str)]
    if near is not None:
        entries = [e for e in entries if e and near.startswith(os.path.join(e, ""))] + entries
    for entry in entries:
        directory = metadata_dir(entry, wanted)
        version, path = _read_version(directory) if directory is not None else (None, "")
        if version is not None:
            evidence = status_evidence(path)
            if _settled(evidence):
                return version, (evidence,)
            return version, (("version", distribution, near, version),)
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - always present on 3.10+
        return None, ()
    try:
        if paths is not None:  # another environment's: only asked (the command line), no evidence kept
            return next((d.version for d in metadata.distributions(name=distribution, path=paths)), None), ()
        version = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        # Not installed: that holds while no directory it could be installed into changes.
        listed = tuple(status_evidence(os.path.abspath(entry or ".")) for entry in dict.fromkeys(entries))
        if all(_settled(e) or e[2] is None for e in listed):
            return None, listed
        version = None
    return version, (("version", distribution, near, version),)
