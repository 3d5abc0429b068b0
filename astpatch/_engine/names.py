"""Names resolve: the patched module must define every global name its patched code reads.

A backport that calls a helper, or reads a config entry, that only another part of the upstream
change defines would fail at run time with NameError (or worse, read something else); it is
refused when rewriting instead, with the names. Read from the compiled code (global and name
loads, module-level stores), which costs a scan of the bytecode instead of another parse.
"""

from __future__ import annotations

import builtins
import opcode
import sys
import types

_OP = opcode.opmap
_LOAD_GLOBAL, _LOAD_NAME = _OP["LOAD_GLOBAL"], _OP["LOAD_NAME"]
_STORE_NAME, _STORE_GLOBAL, _DELETE_NAME = _OP["STORE_NAME"], _OP["STORE_GLOBAL"], _OP["DELETE_NAME"]
_EXTENDED_ARG = _OP["EXTENDED_ARG"]
_GLOBAL_SHIFT = 1 if sys.version_info >= (3, 11) else 0  # 3.11+ keeps a flag in LOAD_GLOBAL's low bit
_MODULE_NAMES = {"__file__", "__name__", "__spec__", "__loader__", "__package__", "__builtins__", "__path__",
                 "__cached__", "__doc__", "__annotations__", "__dict__"}


def _instructions(code: types.CodeType):  # type: ignore[no-untyped-def]
    """(opcode, argument) of each instruction, extended arguments folded in."""
    raw = code.co_code
    argument = 0
    for i in range(0, len(raw), 2):
        op, argument = raw[i], raw[i + 1] | (argument << 8)
        if op == _EXTENDED_ARG:
            continue
        yield op, argument
        argument = 0


def _codes(code: types.CodeType):  # type: ignore[no-untyped-def]
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _reads(codes: list[types.CodeType]) -> set[str]:
    """The names these code objects read as globals (module and class bodies: as names)."""
    reads: set[str] = set()
    for code in codes:
        names = code.co_names
        body = not code.co_flags & 0x2  # CO_NEWLOCALS: a function's code, not a module or class body
        for op, argument in _instructions(code):
            if op == _LOAD_GLOBAL:
                reads.add(names[argument >> _GLOBAL_SHIFT])
            elif op == _LOAD_NAME and body:
                reads.add(names[argument])
    return reads


def _binds(code: types.CodeType, name: str) -> bool:
    """Whether `code` (a module or class body, or a function declaring it global) stores `name`."""
    if name not in code.co_names:
        return False
    index = code.co_names.index(name)
    body = not code.co_flags & 0x2
    return any(argument == index and (op == _STORE_GLOBAL or (body and op in (_STORE_NAME, _DELETE_NAME)))
               for op, argument in _instructions(code))


def unresolved_names(patched: types.CodeType, upstream: types.CodeType) -> list[str]:
    """The global names the patched code reads that no code of the module binds and that are no
    builtins, leaving out those the replaced upstream code already read (upstream's own dynamic
    names are not ours to judge).

    Only the code objects the patch changed are scanned, so the check costs little.
    """
    before = {id(c) for c in _codes(upstream)}
    after = list(_codes(patched))
    kept = {id(c) for c in after}
    # Code the patch did not change reads what it read: the same bytecode and names (only its
    # constants or line numbers differ, as around a swapped function or in a renumbered module).
    made = [c for c in after if id(c) not in before]
    replaced = [c for c in _codes(upstream) if id(c) not in kept]
    same = {(c.co_code, c.co_names) for c in made} & {(c.co_code, c.co_names) for c in replaced}
    candidates = _reads([c for c in made if (c.co_code, c.co_names) not in same]) - _reads(
        [c for c in replaced if (c.co_code, c.co_names) not in same])
    candidates = {n for n in candidates - _MODULE_NAMES if not hasattr(builtins, n)}
    if not candidates or ("*",) in patched.co_consts:  # a star import binds names no one can list
        return []
    return sorted(n for n in candidates if not any(_binds(c, n) for c in after if n in c.co_names))
