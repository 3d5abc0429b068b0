"""Where module sources come from, read without installing or importing anything.

The command line reads a rule's target module from the installed environment, or from a path
given with `--against`: a wheel, an sdist, a site-packages or source-checkout directory, or a
single `.py` file. Each is a `Sources`: it reads a module's text and a distribution's version.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from importlib.util import decode_source

from .._base.metadata import header, installed_version, metadata_dir, normalize, read_version
from .._base.modulefiles import SourceNotFound, locate

__all__ = ["SourceError", "SourceNotFound", "Sources", "locate", "open_sources"]


class SourceError(Exception):
    """A path cannot be read as sources; the message says what and where."""


def module_paths(module: str) -> list[str]:
    """The relative paths a module's source can have: `a/b/c.py` or `a/b/c/__init__.py`."""
    base = module.replace(".", "/")
    return [f"{base}.py", f"{base}/__init__.py"]


def _decode(data: bytes, where: str) -> str:
    try:
        return decode_source(data)
    except (SyntaxError, UnicodeDecodeError, LookupError) as error:
        raise SourceError(f"{where} cannot be decoded as Python source: {error}") from None


class Sources:
    """Module sources and distribution versions from one place."""

    label = ""

    def read(self, module: str) -> tuple[str, str]:
        """(path, text) of `module`; SourceNotFound when it is not there."""
        raise NotImplementedError

    def version(self, distribution: str) -> str | None:
        raise NotImplementedError


class Installed(Sources):
    """An installed environment: this process's (`path` None: `sys.path`), or another interpreter's
    search path (see `astpatch._inspect.environment`), read as that interpreter would find them."""

    label = "installed"

    def __init__(self, path: list[str] | None = None) -> None:
        self.path = path

    def read(self, module: str) -> tuple[str, str]:
        path = locate(module, self.path)
        with open(path, "rb") as f:
            return path, _decode(f.read(), path)

    def version(self, distribution: str) -> str | None:
        return installed_version(distribution, paths=self.path)


class Wheel(Sources):
    def __init__(self, path: str) -> None:
        self.path = path
        self.label = os.path.basename(path)
        try:
            self._zip = zipfile.ZipFile(path)
            self._names = set(self._zip.namelist())
        except (zipfile.BadZipFile, OSError) as error:
            raise SourceError(f"{path} is not a readable wheel: {error}") from None
        self._metadata = [n for n in self._names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if not self._metadata:
            raise SourceError(f"{path} is not a wheel: it has no *.dist-info/METADATA")

    def read(self, module: str) -> tuple[str, str]:
        for name in module_paths(module):
            if name in self._names:
                try:
                    data = self._zip.read(name)
                except (zipfile.BadZipFile, OSError, EOFError) as error:  # a damaged member
                    raise SourceError(f"{self.path}: cannot read {name}: {error}") from None
                return f"{self.path}!{name}", _decode(data, f"{self.path}!{name}")
        raise SourceNotFound(f"{module} is not in {self.label}")

    def version(self, distribution: str) -> str | None:
        for name in self._metadata:
            if normalize(name.split("/")[0].split("-")[0]) == normalize(distribution):
                return header(self._zip.read(name).decode("utf-8", "replace").splitlines(), "version")
        return None


class Sdist(Sources):
    def __init__(self, path: str) -> None:
        self.path = path
        self.label = os.path.basename(path)
        try:
            self._tar = tarfile.open(path)
            self._members = {m.name: m for m in self._tar.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError, EOFError) as error:
            raise SourceError(f"{path} is not a readable sdist (tar archive): {error}") from None
        roots = {name.split("/")[0] for name in self._members}
        if len(roots) != 1:
            raise SourceError(f"{path} is not an sdist: it does not have one top-level directory")
        self._root = roots.pop()

    def _data(self, name: str) -> bytes:
        extracted = self._tar.extractfile(self._members[name])
        assert extracted is not None
        return extracted.read()

    def read(self, module: str) -> tuple[str, str]:
        for prefix in ("", "src/", "lib/"):
            for relative in module_paths(module):
                name = f"{self._root}/{prefix}{relative}"
                if name in self._members:
                    return f"{self.path}!{name}", _decode(self._data(name), f"{self.path}!{name}")
        raise SourceNotFound(f"{module} is not in {self.label}")

    def version(self, distribution: str) -> str | None:
        name = f"{self._root}/PKG-INFO"
        if name in self._members:
            lines = self._data(name).decode("utf-8", "replace").splitlines()
            found = header(lines, "name")
            if found is not None and normalize(found) == normalize(distribution):
                return header(lines, "version")
        return None


class Directory(Sources):
    """A site-packages directory, or a source checkout (the module under it or under src/)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.label = os.path.basename(os.path.normpath(path)) or path

    def read(self, module: str) -> tuple[str, str]:
        for prefix in ("", "src", "lib"):
            for relative in module_paths(module):
                candidate = os.path.join(self.path, prefix, *relative.split("/"))
                if os.path.isfile(candidate):
                    with open(candidate, "rb") as f:
                        return candidate, _decode(f.read(), candidate)
        raise SourceNotFound(f"{module} is not in {self.path}")

    def version(self, distribution: str) -> str | None:
        directory = metadata_dir(self.path, normalize(distribution))
        return read_version(directory) if directory else None


class SingleFile(Sources):
    """One `.py` file, read as the source of whichever module a rule targets."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.label = os.path.basename(path)

    def read(self, module: str) -> tuple[str, str]:
        try:
            with open(self.path, "rb") as f:
                return self.path, _decode(f.read(), self.path)
        except OSError as error:
            raise SourceError(f"cannot read {self.path}: {error.strerror or error}") from None

    def version(self, distribution: str) -> str | None:
        return None


def open_sources(path: str) -> Sources:
    """The `Sources` a path names; SourceError says why it cannot be used."""
    if not os.path.exists(path):
        raise SourceError(f"{path} does not exist")
    if os.path.isdir(path):
        return Directory(path)
    lower = path.lower()
    if lower.endswith(".whl"):
        return Wheel(path)
    if lower.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")):
        return Sdist(path)
    if lower.endswith(".py"):
        return SingleFile(path)
    raise SourceError(f"{path} is not a wheel (.whl), an sdist (.tar.gz), a directory or a .py file")
