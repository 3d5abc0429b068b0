"""Names resolve: the patched module must define every global name its patched code reads.

A backport that calls a helper, or reads a config entry, that only another part of the upstream
change defines would fail at run time with NameError (or worse, read something else); it is
refused when rewriting instead, with the names.
"""

from __future__ import annotations

import builtins
import symtable

from .._base.lines import Span, patched_lines


def _reads(table: symtable.SymbolTable, found: set[str]) -> set[str]:
    """Global names read anywhere below the module scope (functions, classes, comprehensions)."""
    for child in table.get_children():
        for symbol in child.get_symbols():
            if symbol.is_referenced() and symbol.is_global() and not symbol.is_declared_global():
                found.add(symbol.get_name())
        _reads(child, found)
    return found


def _undefined(text: str) -> set[str] | None:
    """Names read as globals that the module neither binds at its top level nor gets from the
    builtins; None when that cannot be known (a star import, a `globals()` write)."""
    table = symtable.symtable(text, "<module>", "exec")
    top = table.get_symbols()
    if any(s.get_name() == "*" for s in top) or "globals" in {s.get_name() for s in top if s.is_referenced()}:
        return None
    bound = {s.get_name() for s in top if s.is_assigned() or s.is_imported() or s.is_namespace()}
    for child in table.get_children():  # `global x` in a function that assigns x binds it too
        bound |= {s.get_name() for s in child.get_symbols() if s.is_declared_global() and s.is_assigned()}
    reads = _reads(table, {s.get_name() for s in top if s.is_referenced()})
    return {name for name in reads if name not in bound and not hasattr(builtins, name)
            and name not in ("__file__", "__name__", "__spec__", "__loader__", "__package__", "__builtins__",
                             "__path__", "__cached__", "__doc__", "__annotations__", "__dict__")}


def unresolved_names(text: str, lines: list[str], spans: list[Span]) -> list[str]:
    """The names the patched module reads and does not define, that upstream's did not already."""
    patched = _undefined("".join(patched_lines(lines, spans)))
    if not patched:
        return []
    before = _undefined(text) or set()
    return sorted(patched - before)
