"""Compiling a rewritten module so that what runs is what the patched text says, line for line.

When the edits keep each function's line count (the common case) and the caller has no upstream
code, the patched text is compiled as is. Otherwise only the edited functions are compiled, at
their real lines, and swapped into the module's upstream code. A change outside functions
compiles the whole patched module, less the definitions it leaves alone, whose code is taken
from upstream's (`astpatch._engine.skeleton`).

Either way every line no edit changed keeps its number in the file: a function edit that changes
the line count is cut into the runs of lines it changed (`function_runs`), and only the runs that
change the count are numbered past the end of the file (`Span.moved_to`), where `linecache`
shows them; the code is compiled from a parsed tree renumbered so.
"""

from __future__ import annotations

import types

from .._base.lines import Span, moved_start, patched_lines
from .locate import Definition

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ast
    from collections.abc import Iterable


def function_runs(lines: list[str], spans: list[Span], edited: list[Definition]) -> list[Span]:
    """`spans`, the span of each function in `edited` given its `owner` and, when the edit changed
    the function's line count, cut into the runs of lines it changed (`diff_spans`): the function's
    other lines keep their numbers, and only the runs that change the count move past the end."""
    from .apply import diff_spans

    firsts = {(d.start, d.end) for d in edited}
    runs: list[Span] = []
    for span in spans:
        if (span.start, span.end) not in firsts:  # a class body's or the top level's: as small already
            runs.append(span)
            continue
        span.owner = span.start
        if not span.line_delta:  # kept in place whole, as the patched text has it
            runs.append(span)
            continue
        for run in diff_spans(lines[span.start - 1 : span.end], span.lines, span.start):
            run.function, run.in_classes, run.owner = span.function, span.in_classes, span.start
            runs.append(run)
    return runs


def compile_module(path: str, lines: list[str], spans: list[Span], edited: list[Definition],
                   upstream: types.CodeType | None, optimize: int) -> types.CodeType:
    """The module's code with each span in place; sets `moved_to` on the spans it moves.

    `spans` are those of `function_runs`. Raises whatever `compile` raises when an edit produced
    invalid code.
    """
    try:
        alone = all(d.in_classes_only for d in edited)  # each function can be compiled on its own
        if any(s.line_delta for s in spans):
            if not alone:
                return compile_remapped(path, lines, spans, optimize, upstream)
            for span in spans:
                if span.line_delta:
                    span.moved_to = moved_start(len(lines), spans)
            if upstream is None:
                upstream = compile("".join(lines), path, "exec", dont_inherit=True, optimize=optimize)
        if alone and upstream is not None:
            return compile_functions(path, lines, spans, edited, upstream, optimize)
        return compile_patched(path, lines, spans, optimize)
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
    patched, shown = _region(lines, 1, len(lines), spans)
    number = [0, *shown]  # patched line -> line in the file as shown (index 0 unused)
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


def _region(lines: list[str], first: int, last: int, spans: list[Span]) -> tuple[list[str], list[int]]:
    """Lines `first`..`last` of the file with `spans` (those within them, sorted) in place, and the
    line each of them is shown at: its own for a line no span touches, else its span's (`moved_to`)."""
    text: list[str] = []
    shown: list[int] = []
    position = first
    for span in spans:
        text.extend(lines[position - 1 : span.start - 1])
        shown.extend(range(position, span.start))
        text.extend(span.lines)
        at = span.moved_to or span.start
        shown.extend(range(at, at + len(span.lines)))
        position = span.end + 1
    text.extend(lines[position - 1 : last])
    shown.extend(range(position, last + 1))
    return text, shown


def _compile_numbered(tree: ast.Module, path: str, spans: list[Span], number: list[int],
                      optimize: int) -> types.CodeType:
    """Number the nodes of the patched module's tree as the file shows them, and compile it."""
    import ast

    unchanged = spans[0].start if spans else len(number)  # lines before it are numbered as they are
    statements = [s for s in tree.body if (s.end_lineno or s.lineno) >= unchanged]
    _renumber((n for statement in statements for n in ast.walk(statement)), number)
    return compile(tree, path, "exec", dont_inherit=True, optimize=optimize)


def _renumber(nodes: Iterable[ast.AST], number: list[int]) -> None:
    """Give `nodes` the lines `number` maps theirs to (`number[line]`)."""
    last = len(number) - 1
    for node in nodes:
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
    mangling, positions) is the one a full compile would produce. A function with runs moved past
    the end of the file (`function_runs`) is compiled from its parsed tree, renumbered as shown.
    """
    flags = _future_flags(upstream)
    # The compiler treats `module.attr(...)` differently when `module` is bound by an import at
    # module level (no method lookup), so the wrapper binds the same names by import.
    imported = _imported_names(upstream)
    imports = f"import {', '.join(imported)}\n" if imported else ""
    code = upstream
    for definition in edited:
        first = lines[definition.start - 1]
        indent = first[: len(first) - len(first.lstrip())]
        classes = definition.scopes[:-1]
        headers = _headers(indent, [name for name, _, _ in classes])
        padding = definition.start - 1 - len(headers or ()) - (1 if imports else 0)
        if headers is None or padding < 0:  # too shallow for its classes, or too few lines above it
            if any(s.line_delta for s in spans):
                return compile_remapped(path, lines, spans, optimize, upstream)
            return compile_patched(path, lines, spans, optimize)
        own = [s for s in spans if s.owner == definition.start]
        body, shown = _region(lines, definition.start, definition.end, own)
        text = imports + "\n" * padding + "".join(headers) + "".join(body)
        if not text.endswith("\n"):
            text += "\n"
        source: str | ast.Module = text
        if any(s.moved_to for s in own):  # its lines after a moved run are not where the text has them
            import ast

            tree = compile(text, path, "exec", flags=flags | ast.PyCF_ONLY_AST, dont_inherit=True)
            _renumber(ast.walk(tree), [*range(definition.start), *shown])
            source = tree
        wrapper = compile(source, path, "exec", flags=flags, dont_inherit=True, optimize=optimize)
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


def compile_patched(path: str, lines: list[str], spans: list[Span], optimize: int) -> types.CodeType:
    """The patched text compiled as it is: every span keeps its line count, so every line its number."""
    return compile("".join(patched_lines(lines, spans)), path, "exec", dont_inherit=True, optimize=optimize)


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
