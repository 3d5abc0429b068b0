"""Running edits on one scope of a module: a function (through libcst), or a class body or the
module's top level (as text). Each part gets an outcome; the new text is returned as line spans."""

from __future__ import annotations

from .._base import outcomes as oc
from .._base.lines import Span, split_lines
from .._base.messages import trace_exception
from .._model.edit import ALREADY_FIXED, APPLIED, Target
from .parts import Part, gate_reason, outcome

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    import libcst as cst

    from .locate import Definition


class Unlocatable(Exception):
    """The code-object locator's span does not parse: use the exact, slower `ast` path."""


class _Function:
    """A function's source, parsed by libcst at its own indentation when an edit asks for the node.

    An indented function cannot be parsed on its own; under `if 1:` it can, so every line
    (strings and comments included) is kept exactly. Edits that work on the text never parse it
    with libcst, so they cost no libcst import; `ast` checks that the text is one function, and
    gives its name and the column of its `def`.
    """

    def __init__(self, code: str) -> None:
        if not code.endswith("\n"):
            code += "\n"
        self.header = "if 1:\n" if code[:1].isspace() else ""
        self.code = code
        self.wrapper: cst.Module | None = None
        self._node: cst.FunctionDef | None = None
        self.name, self.column = _check_one_function(self.header + code)

    @property
    def node(self) -> cst.FunctionDef:
        if self._node is None:
            import libcst as cst

            self.wrapper = cst.parse_module(self.header + self.code)
            body = self.wrapper.body[0].body.body if self.header else self.wrapper.body  # type: ignore[union-attr]
            self._node = next(n for n in body if isinstance(n, cst.FunctionDef))
        return self._node

    def with_node(self, node: cst.FunctionDef) -> str:
        """The function's source with `node` in place of the parsed one."""
        import libcst as cst

        original = self.node
        assert self.wrapper is not None
        replaced = self.wrapper.deep_replace(original, node)
        assert isinstance(replaced, cst.Module)
        return replaced.code[len(self.header):]


def _node_of(function: _Function) -> Callable[[], cst.FunctionDef]:
    return lambda: function.node


def _check_one_function(text: str) -> tuple[str, int]:
    """The name and `def` column of the one function that `text` (under its `if 1:` header, if
    any) is; SyntaxError, saying what else it holds, when it is not exactly one function."""
    import ast

    body = ast.parse(text).body
    if len(body) == 1 and isinstance(body[0], ast.If):
        body = body[0].body
    functions = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if len(body) == 1 and functions:
        return functions[0].name, functions[0].col_offset
    if not functions:
        raise SyntaxError("the text is not one function definition")

    def label(node: ast.stmt) -> str:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return f"`{'class' if isinstance(node, ast.ClassDef) else 'def'} {node.name}`"
        return f"a statement ({type(node).__name__})"

    others = ", ".join(label(n) for n in body if n is not functions[0])
    raise SyntaxError(f"the text holds more than the function {functions[0].name}: also {others}")


def _not_the_target(function: _Function, before: _Function, qualname: str, kind: str) -> str | None:
    """Why an edit's result is not the target function it was given, or None: the engine puts it
    in place of the target's lines, so a renamed or re-indented function would not be the target
    (a renaming is a change of the enclosing class body or of the module's top level)."""
    if function.name != before.name:
        return (f"the edit {kind} renamed {qualname} to {function.name}: the result of an edit of a function must be "
                "that function (a rule renames one by changing the class body or the module's top level)")
    if function.column != before.column:
        return (f"the edit {kind} moved the `def` of {qualname} from column {before.column} to {function.column}: "
                "the result of an edit of a function must be that function, at its own indentation")
    return None


# Exceptions that say the process ran short (of stack: the import happened deep in a stack; of
# memory), not that the edit is wrong: they propagate, and `pipeline.build` caches nothing.
ENVIRONMENTAL = (RecursionError, MemoryError)


def _run(part: Part, target: Target, module: str) -> tuple[object, str | None]:
    """The edit's result, or (None, why it raised): a broken edit must not break the import."""
    try:
        return part.edit.apply(target), None
    except ENVIRONMENTAL:
        raise
    except Exception as error:
        trace_exception(f"{module}: the edit of rule {part.id} raised", error)
        return None, f"the edit {part.edit.kind} raised {type(error).__name__}: {error}"


def edit_function(lines: list[str], definition: Definition, qualname: str, module: str, parts: list[Part],
                  versions: dict[str, str | None], strict_span: bool = False) -> tuple[list[oc.Outcome], list[str] | None]:
    """Run each part's edit on one function, in order; return the outcomes and the new lines, if any.

    The order of decisions: an edit that finds the fixed shape reports `already-fixed` (even
    outside the gate: the code itself says upstream fixed it); otherwise a gate that does not
    select the installed version makes the part `not-applicable`; otherwise the edit's result
    stands.
    """
    original = "".join(lines[definition.start - 1 : definition.end])
    try:
        function = _Function(original)
    except SyntaxError as error:
        if strict_span:
            raise Unlocatable(qualname) from error
        reason = f"{qualname} does not parse as one function: {str(error).splitlines()[0]}"
        return [outcome(part, module, versions, oc.FAILED, reason) for part in parts], None

    outcomes = []
    for part in parts:
        result, raised = _run(part, Target(None, qualname, module, function.code, _node_of(function)), module)
        if raised is not None:
            outcomes.append(outcome(part, module, versions, oc.FAILED, raised))
            continue
        status = getattr(result, "status", None)
        if status == ALREADY_FIXED:
            outcomes.append(outcome(part, module, versions, oc.ALREADY_FIXED, result.reason))  # type: ignore[attr-defined]
            continue
        outside = gate_reason(part.rule, versions)
        if outside is not None:
            outcomes.append(outcome(part, module, versions, oc.NOT_APPLICABLE, outside))
        elif status == APPLIED and (result.node is not None or result.code is not None):  # type: ignore[attr-defined]
            code = result.code  # type: ignore[attr-defined]
            candidate = code if code is not None else function.with_node(result.node)  # type: ignore[attr-defined]
            try:
                checked = _Function(candidate)  # the result must still be one function: the target
            except SyntaxError as error:
                reason = f"the edit {part.edit.kind} produced code that is not one function: {error}"
                outcomes.append(outcome(part, module, versions, oc.FAILED, reason))
                continue
            wrong = _not_the_target(checked, function, qualname, part.edit.kind)
            if wrong is not None:
                outcomes.append(outcome(part, module, versions, oc.FAILED, wrong))
                continue
            function = checked
            outcomes.append(outcome(part, module, versions, oc.APPLIED, result.reason))  # type: ignore[attr-defined]
        else:
            reason = f"the edit does not apply: {getattr(result, 'reason', '')}"
            outcomes.append(outcome(part, module, versions, oc.FAILED, reason))

    code = function.code
    if code == original or (code == original + "\n" and not original.endswith("\n")):
        return outcomes, None
    new_lines = split_lines(code)
    if not original.endswith("\n"):  # the file ended without a newline
        new_lines[-1] = new_lines[-1].rstrip("\n")
    return outcomes, new_lines


def edit_text(lines: list[str], start: int, end: int, qualname: str, module: str, part: Part,
              versions: dict[str, str | None]) -> tuple[oc.Outcome, list[Span]]:
    """Run a part's edit on lines `start`..`end` as text (a class body, or the whole module).

    Returns its outcome and the changed lines as spans of the original text, as small as a line
    diff makes them, so every line the edit did not touch keeps its number.
    """
    original = "".join(lines[start - 1 : end])
    result, raised = _run(part, Target(None, qualname, module, original), module)
    if raised is not None:
        return outcome(part, module, versions, oc.FAILED, raised), []
    status = getattr(result, "status", None)
    if status == ALREADY_FIXED:
        return outcome(part, module, versions, oc.ALREADY_FIXED, result.reason), []  # type: ignore[attr-defined]
    outside = gate_reason(part.rule, versions)
    if outside is not None:
        return outcome(part, module, versions, oc.NOT_APPLICABLE, outside), []
    if status != APPLIED:
        return outcome(part, module, versions, oc.FAILED, f"the edit does not apply: {getattr(result, 'reason', '')}"), []
    if result.code is None:  # type: ignore[attr-defined]
        reason = f"the edit {part.edit.kind} works on functions only, and {qualname} is not one"
        return outcome(part, module, versions, oc.FAILED, reason), []
    spans = diff_spans(lines[start - 1 : end], split_lines(result.code), start)  # type: ignore[attr-defined]
    return outcome(part, module, versions, oc.APPLIED, result.reason), spans  # type: ignore[attr-defined]


def diff_spans(old: list[str], new: list[str], first: int) -> list[Span]:
    """The spans that turn `old` (which starts at line `first`) into `new`: one per changed run.

    A patience-style line diff: lines that occur once in both anchor the match, and the runs
    between anchors are trimmed of their common ends. Linear in practice on a whole module with
    a few hunks, where `difflib` takes a quarter of a second.
    """
    spans: list[Span] = []
    _diff(old, 0, len(old), new, 0, len(new), first, spans)
    return spans


def _diff(old: list[str], a: int, b: int, new: list[str], c: int, d: int, first: int, spans: list[Span]) -> None:
    while a < b and c < d and old[a] == new[c]:
        a, c = a + 1, c + 1
    while a < b and c < d and old[b - 1] == new[d - 1]:
        b, d = b - 1, d - 1
    if a == b or c == d:
        if a < b or c < d:
            spans.append(Span(first + a, first + b - 1, new[c:d]))
        return
    anchors = _anchors(old, a, b, new, c, d)
    if not anchors:
        spans.append(Span(first + a, first + b - 1, new[c:d]))
        return
    for i, j in anchors:
        _diff(old, a, i, new, c, j, first, spans)
        a, c = i + 1, j + 1
    _diff(old, a, b, new, c, d, first, spans)


def _anchors(old: list[str], a: int, b: int, new: list[str], c: int, d: int) -> list[tuple[int, int]]:
    """Pairs of lines unique on both sides, in an order that both sides share (longest such chain)."""
    import bisect

    counts: dict[str, list[int]] = {}
    for i in range(a, b):
        counts.setdefault(old[i], [0, 0, i])[0] += 1
    for j in range(c, d):
        entry = counts.get(new[j])
        if entry is not None:
            entry[1] += 1
            entry.append(j)
    pairs = sorted((entry[2], entry[3]) for entry in counts.values() if entry[0] == 1 and entry[1] == 1)
    # Longest increasing run of the new-side positions (patience sorting).
    tails: list[int] = []
    tail_index: list[int] = []
    previous = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        position = bisect.bisect_left(tails, j)
        if position == len(tails):
            tails.append(j)
            tail_index.append(k)
        else:
            tails[position] = j
            tail_index[position] = k
        previous[k] = tail_index[position - 1] if position else -1
    chain = []
    k = tail_index[-1] if tail_index else -1
    while k != -1:
        chain.append(pairs[k])
        k = previous[k]
    return chain[::-1]


def signature_changed(old: list[str], new: list[str]) -> bool:
    """Whether an edit changed what the `def` statement itself evaluates: the name, the parameters
    and their defaults, the annotations, the decorators. Those are made by the enclosing code, so
    swapping in the function's new code object alone would leave them as upstream had them."""
    import ast

    def header(lines: list[str]) -> str:
        text = "".join(lines)
        try:
            tree = ast.parse("if 1:\n" + text if text[:1].isspace() else text)
        except SyntaxError:
            return text
        node = next(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
        parts = [type(node).__name__, node.name, node.args, node.returns, *node.decorator_list,
                 *getattr(node, "type_params", ())]
        return "|".join(ast.dump(p) if isinstance(p, ast.AST) else str(p) for p in parts)

    return header(old) != header(new)
