"""The rewrite engine: source in, outcomes and code out.

For each rule on a module: find the target function with `ast` (exact line spans), give that
function's own source to libcst, let the rule's edit transform it, and splice the result back
into the module text in place of the original lines. Everything outside the edited functions is
left as upstream wrote it, byte for byte.

Compilation keeps every line outside the edited functions at its original number: when the
edits keep each function's line count (the common case) the patched text is compiled as is;
when an edit adds or removes lines, the original text is compiled and only the edited
functions' code objects, taken from a compile of the patched text (so closures, name mangling
and `super()` are right), are swapped into it.

Nothing here touches the import system, the cache or warnings: it returns values.
"""

from __future__ import annotations

import ast
import sys
import time
import types

from . import outcome as oc
from .edits import ALREADY_FIXED, APPLIED, Target
from .gate import evaluate
from .rule import Rule
from .spans import Span, moved_start, patched_lines, split_lines

TYPE_CHECKING = False
if TYPE_CHECKING:
    import libcst as cst

# Statements whose bodies may hold (conditional) definitions at the same scope level.
_BLOCKS: tuple[type[ast.stmt], ...] = (ast.If, ast.Try, ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)
if hasattr(ast, "TryStar"):
    _BLOCKS = _BLOCKS + (ast.TryStar,)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


class Rewrite:
    """The result of rewriting one module."""

    __slots__ = ("outcomes", "spans", "code")

    def __init__(self, outcomes: list[oc.Outcome], spans: list[Span], code: types.CodeType | None) -> None:
        self.outcomes = outcomes
        self.spans = spans  # sorted by start; empty when nothing was applied
        self.code = code  # None when nothing was applied: upstream's code is used as is


class _Definition:
    """Where a target function is: its line span, and the scopes down to it.

    `scopes` lists (name, first line, is a class) for each enclosing class or function and
    then for the function itself, as the compiler numbers them (a decorated definition starts
    at its first decorator).
    """

    __slots__ = ("scopes", "start", "end")

    def __init__(self, scopes: list[tuple[str, int, bool]], start: int, end: int) -> None:
        self.scopes = scopes
        self.start = start
        self.end = end

    @classmethod
    def from_nodes(cls, path: list[ast.AST]) -> _Definition:
        scopes = [(n.name, first_line(n), isinstance(n, ast.ClassDef)) for n in path]  # type: ignore[attr-defined]
        return cls(scopes, first_line(path[-1]), path[-1].end_lineno)  # type: ignore[attr-defined]

    @property
    def in_classes_only(self) -> bool:
        """Whether every enclosing scope is a class: then the function compiles on its own."""
        return all(is_class for _, _, is_class in self.scopes[:-1])


def first_line(node: ast.AST) -> int:
    """The line a definition's code object starts at: its first decorator, or `def`/`class`."""
    decorators = getattr(node, "decorator_list", None) or []
    return min([d.lineno for d in decorators] + [node.lineno])  # type: ignore[attr-defined]


def _definitions_in(body: list[ast.stmt]) -> list[ast.stmt]:
    found: list[ast.stmt] = []
    for statement in body:
        if isinstance(statement, (ast.ClassDef,) + _FUNCTIONS):
            found.append(statement)
        elif isinstance(statement, _BLOCKS):
            for field in ("body", "orelse", "finalbody"):
                found.extend(_definitions_in(getattr(statement, field, []) or []))
            for handler in getattr(statement, "handlers", []) or []:
                found.extend(_definitions_in(handler.body))
    return found


def find_definitions(tree: ast.Module, qualname: str) -> tuple[list[_Definition], str]:
    """Every definition of function `qualname`, and a reason when there is none."""
    parts = qualname.split(".")
    scopes: list[list[ast.AST]] = [[]]
    bodies: list[list[ast.stmt]] = [tree.body]
    for depth, part in enumerate(parts):
        next_scopes: list[list[ast.AST]] = []
        next_bodies: list[list[ast.stmt]] = []
        for path, body in zip(scopes, bodies):
            for node in _definitions_in(body):
                if node.name == part:  # type: ignore[attr-defined]
                    next_scopes.append(path + [node])
                    next_bodies.append(node.body)  # type: ignore[attr-defined]
        if not next_scopes:
            where = ".".join(parts[:depth]) or "the module"
            return [], f"{'.'.join(parts[: depth + 1])} is not defined in {where}"
        scopes, bodies = next_scopes, next_bodies
    functions = [_Definition.from_nodes(path) for path in scopes if isinstance(path[-1], _FUNCTIONS)]
    if not functions:
        return [], f"{qualname} is a class, not a function"
    return functions, ""


class _Function:
    """A function's source, parsed by libcst at its own indentation.

    An indented function cannot be parsed on its own; under `if 1:` it can, so every line
    (strings and comments included) is kept exactly.
    """

    def __init__(self, code: str) -> None:
        import libcst as cst

        if not code.endswith("\n"):
            code += "\n"
        self.header = "if 1:\n" if code[:1].isspace() else ""
        self.wrapper = cst.parse_module(self.header + code)
        body = self.wrapper.body[0].body.body if self.header else self.wrapper.body  # type: ignore[union-attr]
        self.node = next(n for n in body if isinstance(n, cst.FunctionDef))
        self.code = code

    def with_node(self, node: cst.FunctionDef) -> str:
        """The function's source with `node` in place of the parsed one."""
        import libcst as cst

        replaced = self.wrapper.deep_replace(self.node, node)
        assert isinstance(replaced, cst.Module)
        return replaced.code[len(self.header):]


def _gate(rule: Rule, versions: dict[str, str | None]) -> str | None:
    """Why the rule's gate does not select the installed version, or None when it does."""
    if rule.gate_distribution is None:
        return None
    gate = evaluate(rule.gate_distribution, rule.gate_specifier, versions.get(rule.gate_distribution))
    return None if gate.selected else gate.reason


def _edit_function(lines: list[str], definition: _Definition, qualname: str, module: str, rules: list[Rule],
                   versions: dict[str, str | None], strict_span: bool = False) -> tuple[list[oc.Outcome], list[str] | None]:
    """Run each rule's edit on one function; return the outcomes and the new lines, if any.

    The order of decisions: an edit that finds the fixed shape reports `already-fixed` (even
    outside the gate: the code itself says upstream fixed it); otherwise a gate that does not
    select the installed version makes the rule `not-applicable`; otherwise the edit's result
    stands.
    """
    original = "".join(lines[definition.start - 1 : definition.end])
    try:
        function = _Function(original)
    except Exception as error:  # libcst may not know every syntax the interpreter does
        if strict_span:
            raise _Unlocatable(qualname) from error
        reason = f"libcst cannot parse {qualname}: {type(error).__name__}: {str(error).splitlines()[0]}"
        return [_not_selected_or(rule, module, versions, oc.FAILED, reason) for rule in rules], None

    outcomes = []
    edited: str | None = None  # the source after the last applied edit, parsed only if another edit follows
    for rule in rules:
        version = _version(rule, versions)
        try:
            if edited is not None:
                function, edited = _Function(edited), None
            result = rule.edit.apply(Target(function.node, qualname, module, function.code))
        except Exception as error:  # a broken edit must not break the import
            reason = f"the edit {rule.edit.kind} raised {type(error).__name__}: {error}"
            outcomes.append(_not_selected_or(rule, module, versions, oc.FAILED, reason))
            continue
        if result.status == ALREADY_FIXED:
            outcomes.append(oc.Outcome(rule.id, module, oc.ALREADY_FIXED, result.reason, version=version))
            continue
        outside = _gate(rule, versions)
        if outside is not None:
            outcomes.append(oc.Outcome(rule.id, module, oc.NOT_APPLICABLE, outside, version=version))
        elif result.status == APPLIED and (result.node is not None or result.code is not None):
            candidate = result.code if result.code is not None else function.with_node(result.node)  # type: ignore[arg-type]
            if result.code is not None:
                try:
                    _Function(candidate)  # text from an edit: it must still be one function libcst reads
                except Exception as error:
                    reason = f"the edit {rule.edit.kind} produced code libcst cannot parse: {error}"
                    outcomes.append(oc.Outcome(rule.id, module, oc.FAILED, reason, version=version))
                    continue
            edited = candidate
            outcomes.append(oc.Outcome(rule.id, module, oc.APPLIED, result.reason, version=version))
        else:
            outcomes.append(oc.Outcome(rule.id, module, oc.FAILED, f"the edit does not apply: {result.reason}",
                                       version=version))

    code = edited if edited is not None else function.code
    if code == original or (code == original + "\n" and not original.endswith("\n")):
        return outcomes, None
    new_lines = split_lines(code)
    if not original.endswith("\n"):  # the file ended without a newline
        new_lines[-1] = new_lines[-1].rstrip("\n")
    return outcomes, new_lines


# Seconds spent in the last rewrite's steps, for the benchmark (benchmarks/run.py).
timings: dict[str, float] = {}


class _Unlocatable(Exception):
    """The code-object locator's span does not parse: use the exact, slower `ast` path."""


def rewrite(module: str, path: str, text: str, rules: list[Rule], versions: dict[str, str | None],
            optimize: int = -1, upstream: types.CodeType | None = None) -> Rewrite:
    """Apply `rules` (all targeting `module`) to the decoded source `text` of file `path`.

    `upstream` is the module's own compiled code (from its normal `.pyc`), when the caller has
    it: the targets are then located from its code objects instead of parsing the module, and
    only the edited functions are compiled. Where that cannot be done exactly, the module is
    parsed with `ast` and compiled whole.
    """
    timings.clear()
    started = time.perf_counter()
    import libcst  # noqa: F401  (the edits need it; imported here so its cost is measured apart)

    timings["libcst import"] = time.perf_counter() - started
    lines = split_lines(text)
    if upstream is not None and sys.version_info >= (3, 11):
        started = time.perf_counter()
        located = [locate_in_code(upstream, rule.target, lines) for rule in rules]
        timings["locate"] = time.perf_counter() - started
        if all(d is not None for d in located):
            try:
                return _rewrite(module, path, lines, rules, versions, optimize, located, upstream)  # type: ignore[arg-type]
            except _Unlocatable:
                pass
    started = time.perf_counter()
    try:
        tree = ast.parse(text, path)
    except SyntaxError as error:
        reason = f"{path} does not parse: {error}"
        return Rewrite([_not_selected_or(r, module, versions, oc.FAILED, reason) for r in rules], [], None)
    located = [find_definitions(tree, r.target) for r in rules]
    timings["locate"] = time.perf_counter() - started
    return _rewrite(module, path, lines, rules, versions, optimize, located, None)


def _rewrite(module: str, path: str, lines: list[str], rules: list[Rule], versions: dict[str, str | None],
             optimize: int, located: list[tuple[list[_Definition], str]], upstream: types.CodeType | None) -> Rewrite:
    # Group the rules by the function they edit, so rules on one function apply in order.
    groups: dict[int, tuple[_Definition, str, list[Rule]]] = {}
    outcomes_by_rule: dict[str, list[oc.Outcome]] = {}
    for rule, (found, reason) in zip(rules, located):
        if not found:
            outcomes_by_rule[rule.id] = [_not_selected_or(rule, module, versions, oc.TARGET_MISSING, reason)]
        elif len(found) > 1:
            where = ", ".join(str(d.start) for d in found)
            reason = f"{rule.target} is defined {len(found)} times (lines {where}); the rule does not guess which one runs"
            outcomes_by_rule[rule.id] = [_not_selected_or(rule, module, versions, oc.FAILED, reason)]
        else:
            definition = found[0]
            group = groups.setdefault(definition.start, (definition, rule.target, []))
            group[2].append(rule)

    started = time.perf_counter()
    spans: list[Span] = []
    edited: list[_Definition] = []
    for definition, qualname, group_rules in sorted(groups.values(), key=lambda g: g[0].start):
        overlapping = [d for d in edited if d.start <= definition.end and definition.start <= d.end]
        if overlapping:
            for rule in group_rules:
                outcomes_by_rule[rule.id] = [_not_selected_or(rule, module, versions, oc.FAILED,
                                                              f"{qualname} lies inside another edited function")]
            continue
        outcomes, new_lines = _edit_function(lines, definition, qualname, module, group_rules, versions,
                                             strict_span=upstream is not None)
        for o in outcomes:
            outcomes_by_rule[o.rule_id] = [o]
        if new_lines is not None:
            spans.append(Span(definition.start, definition.end, new_lines))
            edited.append(definition)

    outcomes = [o for rule in rules for o in outcomes_by_rule[rule.id]]
    timings["edit"] = time.perf_counter() - started
    if not spans:
        return Rewrite(outcomes, [], None)
    started = time.perf_counter()
    try:
        try:
            if all(d.in_classes_only for d in edited) and (upstream is not None or any(s.line_delta for s in spans)):
                if any(s.line_delta for s in spans):
                    for span in spans:
                        if span.line_delta:
                            span.moved_to = moved_start(len(lines), spans)
                    if upstream is None:
                        upstream = compile("".join(lines), path, "exec", dont_inherit=True, optimize=optimize)
                code = compile_functions(path, lines, spans, edited, upstream, optimize)  # type: ignore[arg-type]
            else:
                code = compile_patched(path, lines, spans, edited, optimize)
        except _ClosureChanged:
            # The enclosing code must create other cells for the new function (it now uses
            # super(), say): compile the whole patched text, so that it does. Lines after an
            # edit that changed the line count then move with it.
            for span in spans:
                span.moved_to = 0
            code = compile("".join(patched_lines(lines, spans)), path, "exec", dont_inherit=True, optimize=optimize)
    except Exception as error:  # e.g. an edit produced invalid code
        failed = [
            oc.Outcome(o.rule_id, o.module, oc.FAILED, f"the patched module does not compile: {error}",
                       version=o.version) if o.status == oc.APPLIED else o
            for o in outcomes
        ]
        return Rewrite(failed, [], None)
    timings["compile"] = time.perf_counter() - started
    return Rewrite(outcomes, spans, code)


_NEWLOCALS = 0x0002  # CO_NEWLOCALS: set on function code objects, not on class bodies


def locate_in_code(code: types.CodeType, qualname: str, lines: list[str]) -> tuple[list[_Definition], str] | None:
    """Find function `qualname` from the module's code objects, without parsing the module.

    Returns None whenever the answer would not be exact (a missing or repeated name, a span
    that cannot be bounded), so the caller falls back to `ast`, which also words the reason.
    Needs the end positions that code objects carry from Python 3.11.
    """
    candidates: list[tuple[types.CodeType, list[tuple[str, int, bool]]]] = [(code, [])]
    for part in qualname.split("."):
        candidates = [
            (const, scopes + [(part, const.co_firstlineno, not const.co_flags & _NEWLOCALS)])
            for parent, scopes in candidates
            for const in parent.co_consts
            if isinstance(const, types.CodeType) and const.co_name == part
        ]
        if len(candidates) != 1:
            return None
    function, scopes = candidates[0]
    if scopes[-1][2]:
        return None  # a class: let the ast path say so
    start = function.co_firstlineno
    first = lines[start - 1].lstrip() if start <= len(lines) else ""
    if not first.startswith(("@", "def ", "async ")):
        return None
    end = max(_last_line(function), start)
    # Lines after the last instruction that are still inside the function (a closing bracket,
    # comments, the rest of a string): everything indented deeper than the definition.
    indent = len(lines[start - 1]) - len(first)
    following = end
    while following < len(lines):
        line = lines[following]
        if not line.strip():
            following += 1
            continue
        if len(line) - len(line.lstrip()) <= indent:
            break
        following += 1
        end = following
    return [_Definition(scopes, start, end)], ""


def _last_line(code: types.CodeType) -> int:
    last = max((end for _, end, _, _ in code.co_positions() if end is not None), default=code.co_firstlineno)  # type: ignore[attr-defined]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            last = max(last, _last_line(const))
    return last


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


def compile_functions(path: str, lines: list[str], spans: list[Span], edited: list[_Definition],
                      upstream: types.CodeType, optimize: int) -> types.CodeType:
    """Compile only the edited functions and swap them into the module's upstream code.

    Each function is compiled inside empty classes named like its real ones, at its real line
    and column, with the module's `__future__` flags, so its code object (qualified name,
    `__class__` cell, name mangling, positions) is the one a full compile would produce.
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
        start = span.moved_to or definition.start
        padding = start - 1 - len(classes) - (1 if imports else 0)
        if len(indent) < len(classes) or padding < 0:
            for other in spans:
                other.moved_to = 0
            return compile_patched(path, lines, spans, edited, optimize)
        header = "".join(f"{indent[:i]}class {name}:\n" for i, (name, _, _) in enumerate(classes))
        text = imports + "\n" * padding + header + "".join(span.lines)
        if not text.endswith("\n"):
            text += "\n"
        wrapper = compile(text, path, "exec", flags=flags, dont_inherit=True, optimize=optimize)
        for name, _, _ in definition.scopes:
            wrapper = next(c for c in wrapper.co_consts if isinstance(c, types.CodeType) and c.co_name == name)
        code = _replace_code(code, [(name, line) for name, line, _ in definition.scopes], wrapper)
    return code


def compile_patched(path: str, lines: list[str], spans: list[Span], edited: list[_Definition],
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


def _version(rule: Rule, versions: dict[str, str | None]) -> str | None:
    return versions.get(rule.gate_distribution) if rule.gate_distribution else None


def _not_selected_or(rule: Rule, module: str, versions: dict[str, str | None], status: str, reason: str) -> oc.Outcome:
    """`not-applicable` when the gate does not select the installed version, else `status`.

    A rule outside its gate has nothing to say about the code, missing or not.
    """
    outside = _gate(rule, versions)
    if outside is not None:
        return oc.Outcome(rule.id, module, oc.NOT_APPLICABLE, outside, version=_version(rule, versions))
    return oc.Outcome(rule.id, module, status, reason, version=_version(rule, versions))
