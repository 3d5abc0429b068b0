"""Find and read a module's source without importing it (or its parent packages).

`importlib.util.find_spec("a.b.c")` imports `a` and `a.b` first; for `torch._inductor.codecache`
that means importing torch. The command line must not, so it walks the path finders itself.
"""

from __future__ import annotations

from importlib.machinery import PathFinder, SourceFileLoader
from importlib.util import decode_source


class SourceNotFound(Exception):
    pass


def locate(module: str) -> str:
    """The path of `module`'s source file; SourceNotFound says why there is none."""
    parts = module.split(".")
    search = None
    spec = None
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        spec = PathFinder.find_spec(name, search)
        if spec is None:
            raise SourceNotFound(f"{name} is not installed (not found on sys.path)")
        if i < len(parts) - 1:
            search = spec.submodule_search_locations
            if search is None:
                raise SourceNotFound(f"{name} is a module, not a package, so {module} cannot exist")
    assert spec is not None
    if not isinstance(spec.loader, SourceFileLoader) or not spec.origin:
        raise SourceNotFound(f"{module} is not a plain source file ({type(spec.loader).__name__})")
    return spec.origin


def read(path: str) -> str:
    with open(path, "rb") as f:
        return decode_source(f.read())
