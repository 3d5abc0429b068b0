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


def _scan(module: types.CodeType) -> tuple[set[str], set[str], bool]:
    """(names read as globals, names bound at module level, whether that can be known)."""
    reads: set[str] = set()
    bound: set[str] = set()
    knowable = True
    for code in _codes(module):
        names = code.co_names
        top = code is module
        if ("*",) in code.co_consts:  # a star import binds names no one can list
            knowable = False
        for op, argument in _instructions(code):
            if op == _LOAD_GLOBAL:
                reads.add(names[argument >> _GLOBAL_SHIFT])
            elif op == _LOAD_NAME and (top or not code.co_flags & 0x2):  # module and class bodies
                reads.add(names[argument])
            elif op == _STORE_GLOBAL or (op in (_STORE_NAME, _DELETE_NAME) and not code.co_flags & 0x2):
                bound.add(names[argument])  # module level, or a class body's own names
    if "globals" in reads:  # names written through globals() cannot be listed either
        knowable = False
    return reads, bound, knowable


def unresolved_names(patched: types.CodeType, upstream: types.CodeType) -> list[str]:
    """The global names the patched module reads, binds nowhere and that are no builtins, and that
    upstream's module did not already read (upstream's own dynamic names are not ours to judge)."""
    reads, bound, knowable = _scan(patched)
    if not knowable:
        return []
    before, _, _ = _scan(upstream)
    return sorted(n for n in reads - before - bound - _MODULE_NAMES if not hasattr(builtins, n))
