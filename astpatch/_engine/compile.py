"""Compiling a rewritten module so that what runs is what the patched text says, line for line.

When the edits keep each function's line count (the common case) and the caller has no upstream
code, the patched text is compiled as is. Otherwise only the edited functions are compiled (at
their real lines, or past the end of the file when their line count changed, so that every other
line keeps its number) and swapped into the module's upstream code. A change outside functions
compiles the whole patched module, less the definitions it leaves alone, whose code is taken
from upstream's (`astpatch._engine.skeleton`).
"""

from __future__ import annotations

import types

from .._base.lines import Span, moved_start, patched_lines
from .locate import Definition

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ast


def compile_module(path: str, lines: list[str], spans: list[Span], edited: list[Definition],
                   upstream: types.CodeType | None, optimize: int) -> types.CodeType:
    """The module's code with each span in place; sets `moved_to` on the spans it moves.

    Raises whatever `compile` raises when an edit produced invalid code.
    """
    try:
        if all(d.in_classes_only for d in edited) and (upstream is not None or any(s.line_delta for s in spans)):
            if any(s.line_delta for s in spans):
                for span in spans:
                    if span.line_delta:
                        span.moved_to = moved_start(len(lines), spans)
                if upstream is None:
                    upstream = compile("".join(lines), path, "exec", dont_inherit=True, optimize=optimize)
            return compile_functions(path, lines, spans, edited, upstream, optimize)  # type: ignore[arg-type]
        return compile_patched(path, lines, spans, edited, optimize)
    except _ClosureChanged:
        # The enclosing code must create other cells for the new function (it now uses
        # super(), say): compile the whole patched module, so that it does.
        return compile_remapped(path, lines, spans, optimize, upstream)


def compile_remapped(path: str, lines: list[str], spans: list[Span], optimize: int,
                     upstream: types.CodeType | None = None) -> types.CodeType:
    """Compile the whole patched text, numbered as the file is: every line no span touches keeps
    its number, a span that keeps its line count stays in place, and the new lines of any other
    span are numbered past the end of the file, where `linecache_lines` shows them (`moved_to`).

    The numbers are set on the parsed tree before compiling, so closures, cells, decorators and
    module-level code come out exactly as a compile of the patched text gives them, on every
    supported Python, without touching line tables. With `upstream` (the module's own code), the
    definitions no span touches are not compiled again but taken from it (`astpatch._engine.skeleton`).
    """
    import ast

    for span in spans:
        span.moved_to = 0
    for span in spans:
        if span.line_delta:  # a span that keeps its line count stays in place
            span.moved_to = moved_start(len(lines), spans)
    number = [0]  # patched line -> line in the file as shown (index 0 unused)
    position = 1
    for span in spans:
        number.extend(range(position, span.start))
        first = span.moved_to or span.start
        number.extend(range(first, first + len(span.lines)))
        position = span.end + 1
    number.extend(range(position, len(lines) + 1))
    patched = patched_lines(lines, spans)
    tree = ast.parse("".join(patched), path)
    if upstream is not None and upstream.co_filename == path:  # (its code objects all carry that name)
        from .skeleton import Skeleton

        skeleton = Skeleton(tree, patched, spans, number, upstream)
        code = _compile_numbered(tree, path, spans, number, optimize)
        if not skeleton.stubs:
            return code
        if _future_flags(code) == _future_flags(upstream):  # the flags are in every code object
            filled = skeleton.fill(code)
            if filled is not None:
                return filled
        tree = ast.parse("".join(patched), path)  # compile every definition after all
    return _compile_numbered(tree, path, spans, number, optimize)


def _compile_numbered(tree: ast.Module, path: str, spans: list[Span], number: list[int],
                      optimize: int) -> types.CodeType:
    """Number the nodes of the patched module's tree as the file shows them, and compile it."""
    import ast

    last = len(number) - 1
    unchanged = spans[0].start if spans else last + 1  # lines before it are numbered as they are
    statements = [s for s in tree.body if (s.end_lineno or s.lineno) >= unchanged]
    for node in (n for statement in statements for n in ast.walk(statement)):
        start = getattr(node, "lineno", None)
        if start is None:
            continue
        node.lineno = number[min(start, last)]  # type: ignore[attr-defined]
        end = getattr(node, "end_lineno", None)
        if end is not None:
            node.end_lineno = number[min(end, last)]  # type: ignore[attr-defined]
            if node.end_lineno < node.lineno or (node.end_lineno == node.lineno  # type: ignore[attr-defined]
                                                 and (node.end_col_offset or 0) < node.col_offset):  # type: ignore[attr-defined]
                # A node that starts in changed lines and ends in kept ones (or the reverse):
                # its extent cannot be shown contiguously; it is shown from its start.
                node.end_lineno, node.end_col_offset = node.lineno, node.col_offset  # type: ignore[attr-defined]
    return compile(tree, path, "exec", dont_inherit=True, optimize=optimize)


def _future_flags(code: types.CodeType) -> int:
    import __future__

    return sum(f.compiler_flag for f in (getattr(__future__, n) for n in __future__.all_feature_names)
               if code.co_flags & f.compiler_flag)


def _imported_names(module: types.CodeType) -> list[str]:
    """The names that import statements bind at module level, read from the module's bytecode.

    A direct scan of the instructions (`dis` costs more to import and run than the whole
    compile this serves): after IMPORT_NAME, every STORE_NAME up to the next instruction that
    is not part of an import statement binds an imported name.
    """
    import opcode

    op = opcode.opmap
    import_name, store_name, store_global = op["IMPORT_NAME"], op["STORE_NAME"], op["STORE_GLOBAL"]
    within = {op[n] for n in ("IMPORT_NAME", "IMPORT_FROM", "STORE_NAME", "STORE_GLOBAL", "POP_TOP", "SWAP", "COPY",
                              "EXTENDED_ARG", "CACHE") if n in op}
    extended = op["EXTENDED_ARG"]
    names: list[str] = []
    importing = False
    argument = 0
    code = module.co_code
    for i in range(0, len(code), 2):
        instruction, argument = code[i], code[i + 1] | (argument << 8 if code[i - 2] == extended and i else 0)
        if instruction == import_name:
            importing = True
        elif importing and instruction in (store_name, store_global):
            name = module.co_names[argument]
            if name not in names:
                names.append(name)
        elif instruction not in within:
            importing = False
    return names


def compile_functions(path: str, lines: list[str], spans: list[Span], edited: list[Definition],
                      upstream: types.CodeType, optimize: int) -> types.CodeType:
    """Compile only the edited functions and swap them into the module's upstream code.

    Each function is compiled inside empty classes named like its real ones (or a neutral block
    when a compound statement indents it at module level), at its real line and column, with the
    module's `__future__` flags, so its code object (qualified name, `__class__` cell, name
    mangling, positions) is the one a full compile would produce.
    """
    flags = _future_flags(upstream)
    # The compiler treats `module.attr(...)` differently when `module` is bound by an import at
    # module level (no method lookup), so the wrapper binds the same names by import.
    imported = _imported_names(upstream)
    imports = f"import {', '.join(imported)}\n" if imported else ""
    code = upstream
    for span, definition in zip(spans, edited):
        first = lines[definition.start - 1]
        indent = first[: len(first) - len(first.lstrip())]
        classes = definition.scopes[:-1]
        headers = _headers(indent, [name for name, _, _ in classes])
        start = span.moved_to or definition.start
        padding = start - 1 - len(headers or ()) - (1 if imports else 0)
        if headers is None or padding < 0:  # too shallow for its classes, or too few lines above it
            for other in spans:
                other.moved_to = 0
            return compile_patched(path, lines, spans, edited, optimize)
        text = imports + "\n" * padding + "".join(headers) + "".join(span.lines)
        if not text.endswith("\n"):
            text += "\n"
        wrapper = compile(text, path, "exec", flags=flags, dont_inherit=True, optimize=optimize)
        for name, _, _ in definition.scopes:
            wrapper = next(c for c in wrapper.co_consts if isinstance(c, types.CodeType) and c.co_name == name)
        code = _replace_code(code, [(name, line) for name, line, _ in definition.scopes], wrapper)
    return code


def _headers(indent: str, classes: list[str]) -> list[str] | None:
    """The lines that open the function's enclosing blocks in the wrapper, each shallower than the
    next and than `indent` (prefixes of it, so tabs and spaces stay consistent); None when its
    indentation cannot hold them.

    Each class needs its header (its scope gives the qualified name, `__class__`, mangling). A
    compound statement (`if`, `try`, `with`, a loop, a `match` case) indents what it holds but adds
    no scope: a function indented under one at module level gets a neutral `if 1:` block, whose body
    may be indented at any depth, as a class body may.
    """
    if len(indent) < len(classes):
        return None
    headers = [f"{indent[:i]}class {name}:\n" for i, name in enumerate(classes)]
    return headers if headers or not indent else ["if 1:\n"]


def compile_patched(path: str, lines: list[str], spans: list[Span], edited: list[Definition],
                    optimize: int) -> types.CodeType:
    patched_text = "".join(patched_lines(lines, spans))
    patched = compile(patched_text, path, "exec", dont_inherit=True, optimize=optimize)
    if all(s.line_delta == 0 for s in spans):
        return patched
    # Some edit changed a function's line count: keep the original line numbers everywhere else.
    original = compile("".join(lines), path, "exec", dont_inherit=True, optimize=optimize)
    for definition in edited:
        original_path = [(name, line) for name, line, _ in definition.scopes]
        patched_path = [(name, line + _shift_before(spans, line)) for name, line in original_path]
        original = _replace_code(original, original_path, _find_code(patched, patched_path))
    return original


def _shift_before(spans: list[Span], line: int) -> int:
    """How far line `line` of the original moved in the patched text."""
    return sum(s.line_delta for s in spans if s.end < line)


def _find_code(code: types.CodeType, path: list[tuple[str, int]]) -> types.CodeType:
    for name, line in path:
        code = next(c for c in code.co_consts
                    if isinstance(c, types.CodeType) and c.co_name == name and c.co_firstlineno == line)
    return code


class _ClosureChanged(Exception):
    """A new function code needs other closure cells than the one it would replace."""


def _replace_code(code: types.CodeType, path: list[tuple[str, int]], new: types.CodeType) -> types.CodeType:
    name, line = path[0]
    consts = list(code.co_consts)
    for i, const in enumerate(consts):
        if isinstance(const, types.CodeType) and const.co_name == name and const.co_firstlineno == line:
            if len(path) == 1 and const.co_freevars != new.co_freevars:
                # The enclosing code builds the function's closure from the cells the old code
                # needed; a function given other cells would read the wrong ones (or crash).
                raise _ClosureChanged(name)
            consts[i] = new if len(path) == 1 else _replace_code(const, path[1:], new)
            return code.replace(co_consts=tuple(consts))
    raise LookupError(f"no code object {name} at line {line}")
