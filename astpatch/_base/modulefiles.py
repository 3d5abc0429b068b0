"""Where a module's source file is, found without importing the module or its parents.

`importlib.util.find_spec("a.b.c")` imports `a` and `a.b` first (for torch, all of torch); the
command line and rules that span modules must read a module's source without running anything.
"""

from __future__ import annotations

import os
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader


class SourceNotFound(Exception):
    """The module is not in these sources."""


def locate(module: str, path: list[str] | None = None) -> str:
    """The installed source file of `module`, found without importing it or its parents, on
    `path` (default: `sys.path`; another environment's search path for the command line).

    `importlib.util.find_spec("a.b.c")` imports `a` and `a.b` first (for torch, all of torch).
    """
    parts = module.split(".")
    search = path
    spec = None
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        try:
            spec = PathFinder.find_spec(name, search)
        except KeyError:
            # A namespace package inside a package: importlib reads the parent's __path__ from
            # sys.modules, where an unimported parent is not. Its portions are found here instead.
            spec = _namespace_spec(name, search or [])
        if spec is None:
            where = "sys.path" if path is None else "that environment's sys.path"
            raise SourceNotFound(f"{name} is not installed (not found on {where})")
        if i < len(parts) - 1:
            search = spec.submodule_search_locations
            if search is None:
                raise SourceNotFound(f"{name} is a module, not a package, so {module} cannot exist")
    assert spec is not None
    if not isinstance(spec.loader, SourceFileLoader) or not spec.origin:
        raise SourceNotFound(f"{module} is not a plain source file ({type(spec.loader).__name__})")
    return spec.origin


def _namespace_spec(name: str, search: list[str]) -> ModuleSpec | None:
    """The namespace package `name` (its directories in `search`), found without importing its parent."""
    last = name.rpartition(".")[2]
    portions = [os.path.join(entry, last) for entry in search if os.path.isdir(os.path.join(entry, last))]
    if not portions:
        return None
    spec = ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = portions
    return spec
