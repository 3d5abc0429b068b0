"""Find an installed distribution's version without importing `importlib.metadata`.

`importlib.metadata` costs several milliseconds to import. The version a gate needs is in the
`.dist-info` (or `.egg-info`) directory beside the package, so one directory listing per
`sys.path` entry and a few lines of METADATA give the same answer, in the same order
(`sys.path` order) that `importlib.metadata.version()` uses. Only when nothing is found that way
(a distribution inside a zip, a custom finder) is `importlib.metadata` asked.
"""

from __future__ import annotations

import os
import sys


def normalize(name: str) -> str:
    """PEP 503 normalisation: `Foo_Bar.baz` and `foo-bar-baz` are one name."""
    out = []
    previous_sep = False
    for ch in name.lower():
        if ch in "-_.":
            if not previous_sep:
                out.append("-")
            previous_sep = True
        else:
            out.append(ch)
            previous_sep = False
    return "".join(out)


def _metadata_dir(entry: str, wanted: str) -> str | None:
    try:
        names = os.listdir(entry or ".")
    except OSError:
        return None
    for name in names:
        if name.endswith(".dist-info"):
            stem = name[: -len(".dist-info")]
        elif name.endswith(".egg-info"):
            stem = name[: -len(".egg-info")]
        else:
            continue
        if normalize(stem.split("-", 1)[0]) == wanted:
            return os.path.join(entry or ".", name)
    return None


def _read_version(directory: str) -> str | None:
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(directory, filename), encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.strip():
                        break  # end of the headers
                    if line.lower().startswith("version:"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            continue
    return None


def installed_version(distribution: str) -> str | None:
    """The installed version of `distribution`, or None when it is not installed."""
    wanted = normalize(distribution)
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        directory = _metadata_dir(entry, wanted)
        if directory is not None:
            version = _read_version(directory)
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
