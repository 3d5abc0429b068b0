"""The rewrite engine: source and rules in, outcomes, spans and code out.

For each part of each rule on a module (`astpatch._engine.parts`): find its scope
(`astpatch._engine.locate`), run its edit there (`astpatch._engine.apply`: a function through
libcst, a class body or the module's top level as text), and splice the result back into the
module text in place of the original lines. A rule is applied only when every one of its parts
applies, here and in its other modules (`elsewhere`); otherwise none of its parts is. Everything
outside the edited lines is left as upstream wrote it, byte for byte; `astpatch._engine.compile`
keeps their line numbers.

Nothing here touches the import system, the cache or warnings: it returns values.
"""

from __future__ import annotations

import ast
import sys
import time
import types

from .._base import outcomes as oc
from .._base.lines import Span, split_lines
from .._model.rule import Change, Rule
from .apply import ENVIRONMENTAL, Unlocatable, edit_function, edit_text, signature_changed
from .compile import compile_module, compile_remapped, function_runs
from .locate import Definition, find_class, find_definitions, locate_in_code
from .names import unresolved_names
from .parts import Part, combine, outcome


class Rewrite:
    """The result of rewriting one module."""

    __slots__ = ("outcomes", "spans", "code", "parts")

    def __init__(self, outcomes: list[oc.Outcome], spans: list[Span], code: types.CodeType | None,
                 parts: dict[str, list[tuple[Change, oc.Outcome]]] | None = None) -> None:
        self.outcomes = outcomes  # one per rule, in the rules' order
        self.parts = parts or {}  # by rule id: (change, outcome) of each of its parts in this module
        self.spans = spans  # sorted by start; empty when nothing was applied
        self.code = code  # None when nothing was applied: upstream's code is used as is


def rewrite(module: str, path: str, text: str, rules: list[Rule], versions: dict[str, str | None],
            optimize: int = -1, upstream: types.CodeType | None = None,
            timings: dict[str, float] | None = None,
            elsewhere: dict[str, list[tuple[Change, oc.Outcome]]] | None = None) -> Rewrite:
    """Apply `rules` (each with a change in `module`) to the decoded source `text` of file `path`.

    `upstream` is the module's own compiled code (from its normal `.pyc`), when the caller has
    it: functions are then located from its code objects instead of parsing the module, and
    only the edited functions are compiled. Where that cannot be done exactly, the module is
    parsed with `ast` and compiled whole. `elsewhere` gives, by rule id, the outcomes of the
    rule's parts in its other modules. `timings`, when given, receives each step's seconds.
    """
    if timings is None:
        timings = {}
    parts = [Part(rule, change) for rule in rules for change in rule.changes_in(module)]
    lines = split_lines(text)
    excluded: set[str] = set()
    first: dict[int, oc.Outcome] | None = None
    while True:  # a rule that does not apply whole is taken out, and the others are applied again
        included = [p for p in parts if p.id not in excluded]
        result = _rewrite_parts(module, path, text, lines, included, versions, optimize, upstream, timings)
        if isinstance(result, Rewrite):  # the module does not parse
            return result
        outcomes_by_part, spans, edited = result
        if first is None:
            first = outcomes_by_part
        decided = {rule.id: combine(rule, module, [(p.change, outcomes_by_part.get(id(p)) or first[id(p)])
                                                   for p in parts if p.rule is rule] + (elsewhere or {}).get(rule.id, []))
                   for rule in rules}
        withdraw = {r.id for r in rules if r.id not in excluded and decided[r.id].status != oc.APPLIED
                    and any(outcomes_by_part[id(p)].status == oc.APPLIED for p in parts if p.rule is r)}
        if not withdraw:
            break
        excluded |= withdraw
    outcomes = [decided[r.id] for r in rules]
    by_part = {**(first or {}), **outcomes_by_part}
    part_outcomes = {r.id: [(p.change, by_part[id(p)]) for p in parts if p.rule is r] for r in rules}
    if not spans:
        return Rewrite(outcomes, [], None, part_outcomes)
    started = time.perf_counter()
    try:
        # A function whose line count changed keeps the numbers of the lines its edit did not change.
        spans = function_runs(lines, spans, edited)
        # Functions inside classes (or whose line count is kept) compile on their own; anything else
        # (a class body, the top level, a nested function that grew) compiles with the whole module.
        if all(s.function and (s.in_classes or not s.line_delta) for s in spans):
            code = compile_module(path, lines, spans, edited, upstream, optimize)
        else:
            code = compile_remapped(path, lines, spans, optimize, upstream)
        if upstream is None:
            upstream = compile(text, path, "exec", dont_inherit=True, optimize=optimize)
        missing = unresolved_names(code, upstream)
        if missing:
            reason = f"the patched code reads names the module does not define: {', '.join(missing)}"
            return Rewrite([_problem(o, reason) for o in outcomes], [], None, part_outcomes)
    except ENVIRONMENTAL:
        raise  # the compiler's recursion or memory ran out: not a fact about the rules (see `pipeline.build`)
    except Exception as error:  # e.g. an edit produced invalid code
        return Rewrite([_problem(o, f"the patched module does not compile: {error}") for o in outcomes], [], None,
                       part_outcomes)
    timings["compile"] = time.perf_counter() - started
    return Rewrite(outcomes, spans, code, part_outcomes)


def _problem(o: oc.Outcome, reason: str) -> oc.Outcome:
    """An applied rule made a problem by what the whole module shows."""
    return oc.Outcome(o.rule_id, o.module, oc.FAILED, reason, version=o.version) if o.status == oc.APPLIED else o


def _rewrite_parts(module: str, path: str, text: str, lines: list[str], parts: list[Part],
                   versions: dict[str, str | None], optimize: int, upstream: types.CodeType | None,
                   timings: dict[str, float]) -> tuple[dict[int, oc.Outcome], list[Span], list[Definition]] | Rewrite:
    """(outcome by part, spans, edited function definitions), or a `Rewrite` of failures when the
    module does not parse."""
    tree: ast.Module | None = None
    function_parts = [p for p in parts if p.target]
    if upstream is not None and sys.version_info >= (3, 11):
        started = time.perf_counter()
        located = [locate_in_code(upstream, p.target, lines) for p in function_parts]
        timings["locate"] = time.perf_counter() - started
        if all(d is not None for d in located):
            try:
                return _apply(module, lines, parts, dict(zip(map(id, function_parts), located)),  # type: ignore[arg-type]
                              versions, tree, text, path, strict_span=True)
            except Unlocatable:
                pass
    started = time.perf_counter()
    try:
        tree = ast.parse(text, path)
    except SyntaxError as error:
        reason = f"{path} does not parse: {error}"
        return Rewrite([combine(r, module, [(p.change, outcome(p, module, versions, oc.FAILED, reason))
                                            for p in parts if p.rule is r])
                        for r in dict.fromkeys(p.rule for p in parts)], [], None)
    located = [find_definitions(tree, p.target) for p in function_parts]
    timings["locate"] = time.perf_counter() - started
    return _apply(module, lines, parts, dict(zip(map(id, function_parts), located)), versions, tree, text, path)


def _apply(module: str, lines: list[str], parts: list[Part], located: dict[int, tuple[list[Definition], str]],
           versions: dict[str, str | None], tree: ast.Module | None, text: str, path: str,
           strict_span: bool = False, refused: dict[int, oc.Outcome] | None = None,
           ) -> tuple[dict[int, oc.Outcome], list[Span], list[Definition]]:
    """`refused`: parts withdrawn by an earlier pass, with their outcomes (see `_every_definition`)."""
    outcomes: dict[int, oc.Outcome] = dict(refused or {})
    # Function parts, grouped by the function they edit, so parts on one function apply in order.
    groups: dict[int, tuple[Definition, str, list[Part]]] = {}
    several: dict[int, tuple[Part, list[Definition]]] = {}  # parts whose target has several definitions
    each: dict[tuple[int, int], oc.Outcome] = {}  # (part, definition's first line): its outcome there
    text_parts: list[tuple[Part, int, int, str]] = []
    for part in (p for p in parts if id(p) not in outcomes):
        scope = "module" if not part.target else "function"
        found, reason = located.get(id(part), ([], ""))
        if part.target and not found and reason.endswith("is a class, not a function"):
            tree = tree if tree is not None else ast.parse(text, path)
            span = find_class(tree, part.target)
            if span is not None:
                scope = "class"
        if scope not in getattr(part.edit, "scopes", ("function",)):
            what = "the module's top level" if scope == "module" else f"{part.target}, a {scope}"
            outcomes[id(part)] = outcome(part, module, versions, oc.TARGET_MISSING if scope == "class" else oc.FAILED,
                                         reason if scope == "class" else f"the edit {part.edit.kind} cannot edit {what}")
        elif scope == "module":
            text_parts.append((part, 1, len(lines), "the module"))
        elif scope == "class":
            text_parts.append((part, span[0], span[1], part.target))  # type: ignore[index]
        elif not found:
            outcomes[id(part)] = outcome(part, module, versions, oc.TARGET_MISSING, reason)
        else:
            if len(found) > 1:
                several[id(part)] = (part, found)
            for definition in found:
                groups.setdefault(definition.start, (definition, part.target, []))[2].append(part)

    spans: list[Span] = []
    edited: list[Definition] = []
    for definition, qualname, group in sorted(groups.values(), key=lambda g: g[0].start):
        if any(d.start <= definition.end and definition.start <= d.end for d in edited):
            for part in group:
                outcomes[id(part)] = each[id(part), definition.start] = outcome(
                    part, module, versions, oc.FAILED, f"{qualname} lies inside another edited function")
            continue
        results, new_lines = edit_function(lines, definition, qualname, module, group, versions, strict_span)
        for part, o in zip(group, results):
            outcomes[id(part)] = each[id(part), definition.start] = o
        if new_lines is not None:
            # A function whose `def` statement itself changed compiles with the whole module.
            whole = signature_changed(lines[definition.start - 1 : definition.end], new_lines)
            spans.append(Span(definition.start, definition.end, new_lines, function=not whole,
                              in_classes=definition.in_classes_only))
            edited.append(definition)
    withdrawn = {}
    for key, (part, found) in several.items():
        results = [each[key, d.start] for d in found]
        outcomes[key] = _every_definition(part, module, versions, found, results)
        if outcomes[key].status not in _TAKEN and any(o.status == oc.APPLIED for o in results):
            withdrawn[key] = outcomes[key]
    if withdrawn:  # edited in some of its definitions only: the edits must go, so the others apply again
        return _apply(module, lines, parts, located, versions, tree, text, path, strict_span,
                      {**(refused or {}), **withdrawn})
    for part, start, end, qualname in text_parts:
        o, found_spans = edit_text(lines, start, end, qualname, module, part, versions)
        if any(s.start <= t.end + 1 and t.start <= s.end + 1 for s in found_spans for t in spans):
            o = outcome(part, module, versions, oc.FAILED, "its lines overlap another change to the module")
            found_spans = []
        outcomes[id(part)] = o
        spans.extend(found_spans)
    spans.sort(key=lambda s: (s.start, s.end))
    return outcomes, spans, edited


_TAKEN = (oc.APPLIED, oc.ALREADY_FIXED, oc.NOT_APPLICABLE)


def _every_definition(part: Part, module: str, versions: dict[str, str | None], found: list[Definition],
                      results: list[oc.Outcome]) -> oc.Outcome:
    """The outcome of a part whose target is defined several times (in the branches of an `if`, or
    of a `try` and its `except ImportError`). Which one runs is decided as the module runs, so the
    rule edits every definition or none; the reason says which lines it edited."""
    head = f"{part.target} is defined {len(found)} times (lines {', '.join(str(d.start) for d in found)})"

    def reasons(status: str) -> str:
        return "; ".join(dict.fromkeys(o.reason for o in results if o.status == status and o.reason))

    def at(status: str) -> str:
        starts = [str(d.start) for d, o in zip(found, results) if o.status == status]
        return f"line{'s' if len(starts) > 1 else ''} {', '.join(starts)}"

    if all(o.status == oc.ALREADY_FIXED for o in results):
        return outcome(part, module, versions, oc.ALREADY_FIXED,
                       f"{head}: every definition is already fixed: {reasons(oc.ALREADY_FIXED)}")
    outside = next((o for o in results if o.status == oc.NOT_APPLICABLE), None)
    if outside is not None:
        return outside  # the rule's gate does not select the installed version: the same for every definition
    refusing = next(((d, o) for d, o in zip(found, results) if o.status not in _TAKEN), None)
    if refusing is not None:
        return outcome(part, module, versions, oc.FAILED, f"{head} and the rule edits every definition or none: "
                       f"the one at line {refusing[0].start} does not take the edit: {refusing[1].reason}")
    if all(o.status == oc.APPLIED for o in results):
        return outcome(part, module, versions, oc.APPLIED, f"{head}: edited every definition: {reasons(oc.APPLIED)}")
    return outcome(part, module, versions, oc.APPLIED, f"{head}: edited {at(oc.APPLIED)}: {reasons(oc.APPLIED)}; "
                   f"already fixed at {at(oc.ALREADY_FIXED)}: {reasons(oc.ALREADY_FIXED)}")
