"""The rewrite engine: source and rules in, outcomes, spans and code out.

For each rule on a module: find the target function (`astpatch._engine.locate`), give that
function's own source to libcst, let the rule's edit transform it, and splice the result back
into the module text in place of the original lines. Everything outside the edited functions is
left as upstream wrote it, byte for byte; `astpatch._engine.compile` keeps their line numbers.

Nothing here touches the import system, the cache or warnings: it returns values.
"""

from __future__ import annotations

import ast
import sys
import time
import types

from .._base import outcomes as oc
from .._base.lines import Span, split_lines
from .._base.messages import trace_exception
from .._model.edit import ALREADY_FIXED, APPLIED, Target
from .._model.gate import evaluate
from .._model.rule import Rule
from .compile import compile_module
from .locate import Definition, find_definitions, locate_in_code

TYPE_CHECKING = False
if TYPE_CHECKING:
    import libcst as cst


class Rewrite:
    """The result of rewriting one module."""

    __slots__ = ("outcomes", "spans", "code")

    def __init__(self, outcomes: list[oc.Outcome], spans: list[Span], code: types.CodeType | None) -> None:
        self.outcomes = outcomes
        self.spans = spans  # sorted by start; empty when nothing was applied
        self.code = code  # None when nothing was applied: upstream's code is used as is

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


def _edit_function(lines: list[str], definition: Definition, qualname: str, module: str, rules: list[Rule],
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
            trace_exception(f"{module}: the edit of rule {rule.id} raised", error)
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

class _Unlocatable(Exception):
    """The code-object locator's span does not parse: use the exact, slower `ast` path."""


def rewrite(module: str, path: str, text: str, rules: list[Rule], versions: dict[str, str | None],
            optimize: int = -1, upstream: types.CodeType | None = None,
            timings: dict[str, float] | None = None) -> Rewrite:
    """Apply `rules` (all targeting `module`) to the decoded source `text` of file `path`.

    `upstream` is the module's own compiled code (from its normal `.pyc`), when the caller has
    it: the targets are then located from its code objects instead of parsing the module, and
    only the edited functions are compiled. Where that cannot be done exactly, the module is
    parsed with `ast` and compiled whole. `timings`, when given, receives the seconds each step
    took (for the benchmark).
    """
    if timings is None:
        timings = {}
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
                return _rewrite(module, path, lines, rules, versions, optimize, located, upstream,  # type: ignore[arg-type]
                                timings)
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
    return _rewrite(module, path, lines, rules, versions, optimize, located, None, timings)


def _rewrite(module: str, path: str, lines: list[str], rules: list[Rule], versions: dict[str, str | None],
             optimize: int, located: list[tuple[list[Definition], str]], upstream: types.CodeType | None,
             timings: dict[str, float]) -> Rewrite:
    # Group the rules by the function they edit, so rules on one function apply in order.
    groups: dict[int, tuple[Definition, str, list[Rule]]] = {}
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
    edited: list[Definition] = []
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
        code = compile_module(path, lines, spans, edited, upstream, optimize)
    except Exception as error:  # e.g. an edit produced invalid code
        failed = [
            oc.Outcome(o.rule_id, o.module, oc.FAILED, f"the patched module does not compile: {error}",
                       version=o.version) if o.status == oc.APPLIED else o
            for o in outcomes
        ]
        return Rewrite(failed, [], None)
    timings["compile"] = time.perf_counter() - started
    return Rewrite(outcomes, spans, code)


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
