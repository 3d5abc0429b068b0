"""`astpatch new --from-diff`: turn an upstream change's unified diff into one rule.

A pull request is one change, so it becomes one rule, applied all or nothing. Each hunk is
located in the module's source by its content (its context and removed lines, or, where
upstream's change is already there, its context and added lines; a hunk without context by
its header's line numbers). It then goes to the innermost scope that holds all its changed
lines: a function, a class (new methods, class attributes, a changed `def` line), or the
module's top level; and it is cut to that scope's lines. The hunks of one scope become one
`ApplyHunks` edit in one `Change`, which finds them by content again at import time, so the
rule applies where line numbers have drifted.

Files that are not installed Python modules (tests, docs, C++) are skipped, and said so.
"""

from __future__ import annotations

import ast

from .._base.lines import find_block, split_lines
from .._model.hunks import Hunk
from .diffs import NO_FILE, DiffError, FileDiff, RawHunk, module_name
from .scopes import Changed, Scope, common, findable, scopes_of
from .sources import SourceNotFound, Sources

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class _Located:
    """A hunk found in the source: on which side, the source line of each line on that side, and
    its changed lines."""

    def __init__(self, hunk: RawHunk, old_side: bool, start: int) -> None:
        self.hunk = hunk
        self.old_side = old_side
        side = hunk.side(old_side)
        self.number = {index: start + 1 + k for k, (index, _) in enumerate(side)}
        self.changes: list[Changed] = []
        for i, (kind, text) in enumerate(hunk.lines):
            if kind == " ":
                continue
            if i in self.number:
                self.changes.append(Changed(i, self.number[i], 0, 0, text))
            else:
                prev = max((n for j, n in self.number.items() if j < i), default=start)
                after = min((n for j, n in self.number.items() if j > i), default=start + len(side) + 1)
                self.changes.append(Changed(i, None, prev, after, text))


def _slide_up(hunk: RawHunk) -> None:
    """Move each run of only added (or only removed) lines that ends in a blank line above the blank
    context lines before it: the same change, placed next to the code it follows.

    `diff` puts a method added at the end of a class after the blank line that ends the class's
    last method, and before the blank line that precedes the next definition; moved up, the run
    follows the class's last line, where its indentation says whose it is.
    """
    lines = hunk.lines
    i = 0
    while i < len(lines):
        kind = lines[i][0]
        end = i
        while end + 1 < len(lines) and lines[end + 1][0] == kind:
            end += 1
        pure = kind != " " and (end + 1 == len(lines) or lines[end + 1][0] == " ")
        while pure and i > 0 and lines[i - 1][0] == " " and not lines[i - 1][1].strip() and not lines[end][1].strip():
            run = lines[i : end + 1]
            lines[i - 1 : end + 1] = [(kind, run[-1][1])] + run[:-1] + [(" ", lines[i - 1][1])]
            i, end = i - 1, end - 1
        i = end + 1


def _locate(hunk: RawHunk, lines: list[str], path: str, where: str) -> _Located:
    """Find the hunk by content (the side before the change, else the side after it); where its
    lines occur several times, at its header's line; a pure insertion without context, only there."""
    old = [t for _, t in hunk.side(True)]
    new = [t for _, t in hunk.side(False)]
    repeated = 0
    # Without context or removed lines, inserted lines found somewhere say nothing about this place.
    for old_side, block, start in ((True, old, hunk.old_start), (False, new, hunk.new_start)) if old else ():
        found = find_block(lines, block)
        if len(found) == 1:
            return _Located(hunk, old_side, found[0])
        if start - 1 in found:
            return _Located(hunk, old_side, start - 1)
        repeated = max(repeated, len(found))
    if not old:
        at = hunk.new_start - 1
        if at >= 0 and find_block(lines[at : at + len(new)], new) == [0]:
            return _Located(hunk, False, at)  # the lines are already where the header puts them
        if 0 <= hunk.old_start <= len(lines):
            return _Located(hunk, True, hunk.old_start)  # inserted after line old_start
        raise DiffError(f"{where}: its header puts it after line {hunk.old_start}, past the end of {path}")
    if repeated:
        raise DiffError(f"{where}: its lines occur {repeated} times in {path}, none of them at the line its header "
                        "gives; make the diff with more context (diff -U5)")
    raise DiffError(f"{where}: its lines are in {path} neither as the diff expects before the change "
                    "nor after it, so it cannot tell where it applies")


def _owner(located: _Located, scopes: list[Scope]) -> Scope:
    """The innermost scope that holds every changed line (inserted blank lines decide nothing)."""
    deciding = [c for c in located.changes if c.at is not None or c.text.strip()] or located.changes
    owners = [s for s in scopes if all(s.contains(c) for c in deciding)]
    innermost = max(owners, key=lambda s: (s.start, -s.end) if s.kind != "module" else (0, 0))
    return findable(innermost)


def _extents(scope: Scope, members: list[_Located], lines: list[str]) -> list[tuple[int, int]]:
    """The lines a part on `scope` replaces, as the engine sees them: a whole function; or, for a
    class or the top level, each changed line (an insertion as an empty range), an insertion or a
    removed blank line widened over the blank lines next to it inside the scope (a line diff may
    place it anywhere among them)."""
    if scope.kind == "function":
        return [(scope.start, scope.end)]
    first, last = (1, len(lines)) if scope.kind == "module" else (scope.start, scope.end)
    found = []
    for located in members:
        removed = {c.at for c in located.changes if c.at is not None}
        for change in located.changes:
            start, end = (change.at, change.at) if change.at is not None else (change.next, change.prev)
            if change.at is None and (change.prev in removed or change.next in removed):
                continue  # it replaces removed lines: their range is the change's
            if change.at is not None and change.text.strip():
                found.append((start, end))  # a changed line of code: a line diff finds it just there
                continue
            while start > first and not lines[start - 2].strip():
                start -= 1
            while end < last and not lines[end].strip():
                end += 1
            found.append((start, end))
    return found


def _clash(a: Scope, a_extents: list[tuple[int, int]], b: Scope, b_extents: list[tuple[int, int]]) -> bool:
    """Whether the engine would refuse parts on `a` and `b` together: nested functions, or a class
    or top-level change that touches (or adjoins) the lines of another part."""
    margin = 0 if a.kind == b.kind == "function" else 1
    return any(s <= f + margin and e <= t + margin for s, t in a_extents for e, f in b_extents)


class ScopeChange:
    """The hunks of one scope of one module: one `Change` of the rule."""

    def __init__(self, module: str, scope: Scope, hunks: list[Hunk]) -> None:
        self.module = module
        self.scope = scope.target or ""
        self.hunks = hunks


def _cut(located: _Located, scope: Scope, lines: list[str], others: list[tuple[int, int]], where: str) -> Hunk:
    """The hunk cut to the scope's lines, with context from the source added until its lines occur
    once in the scope (a hunk without context; or one whose context the cut took away), never
    reaching lines that the diff's other hunks change."""
    first, last = (1, len(lines)) if scope.kind == "module" else (scope.start, scope.end)
    hunk = located.hunk
    kept = [(kind, text) for i, (kind, text) in enumerate(hunk.lines)
            if kind != " " or first <= located.number[i] <= last]
    side = " -" if located.old_side else " +"
    numbers = [located.number[i] for i, (kind, _) in enumerate(hunk.lines)
               if kind in side and i in located.number and (kind != " " or first <= located.number[i] <= last)]
    top, bottom = (numbers[0], numbers[-1]) if numbers else (located.changes[0].next, located.changes[0].prev)
    scope_lines = lines[first - 1 : last]

    def occurrences() -> int:
        return len(find_block(scope_lines, [text for kind, text in kept if kind in side]))

    def free(top: int, bottom: int) -> bool:
        return not any(s <= 2 * bottom and 2 * top <= e for s, e in others)

    count = occurrences()
    while count != 1:
        grown = False
        if top > first and free(top - 1, bottom):
            top -= 1
            kept.insert(0, (" ", lines[top - 1].rstrip("\n")))
            grown = True
        if bottom < last and free(top, bottom + 1):
            bottom += 1
            kept.append((" ", lines[bottom - 1].rstrip("\n")))
            grown = True
        if not grown:
            raise DiffError(f"{where}: its lines occur {count} times in {scope.label}, even with all the context "
                            "the scope and the diff's other hunks leave it" if count else
                            f"{where}: {scope.label} has no lines around it to find it by")
        count = occurrences()
    return Hunk(header=hunk.header, before=[t for k, t in kept if k in " -"], after=[t for k, t in kept if k in " +"])


def _selected(files: list[FileDiff], only: list[str]) -> list[FileDiff]:
    def clean(path: str) -> str:
        path = path.strip()
        while path.startswith("./"):
            path = path[2:]
        return path

    wanted = [clean(p) for p in only]
    for path in wanted:
        if not any(path in (f.old, f.new) for f in files):
            raise DiffError(f"--only {path}: the diff has no such file (it has {', '.join(f.path for f in files)})")
    return [f for f in files if f.old in wanted or f.new in wanted]


def plan(files: list[FileDiff], sources: Sources, only: list[str] | None = None,
         skip: Callable[[str, str], None] = lambda path, why: None) -> list[ScopeChange]:
    """The changes of the rule, in the diff's order; `skip(path, why)` hears of each file or hunk left out."""
    if only:
        files = _selected(files, only)
    changes: list[ScopeChange] = []
    seen: set[str] = set()
    for file in files:
        module = module_name(file.old if file.old != NO_FILE else file.new)
        why = (
            "no text changes (a binary file, a rename or a mode change)" if not file.hunks else
            "the diff deletes it" if file.new == NO_FILE else
            "a new file: a rule changes modules that exist" if file.old == NO_FILE else
            "not a Python file" if not file.path.endswith(".py") else
            "not a module: its path is not a dotted Python name" if module is None else None
        )
        if why is None:
            assert module is not None
            try:
                path, text = sources.read(module)
            except SourceNotFound as missing:
                why = f"module {module} not found: {missing}"
        if why is not None:
            skip(file.path, why)
            continue
        assert module is not None
        if module in seen:
            raise DiffError(f"{file.path}: the diff changes {module} twice")
        seen.add(module)
        found, notes = _plan_module(file, module, path, text)
        changes.extend(found)
        for note in notes:
            skip(file.path, note)
    if not changes:
        raise DiffError("none of its files changes an installed Python module, so there is no rule to make")
    return changes


def _plan_module(file: FileDiff, module: str, path: str, text: str) -> tuple[list[ScopeChange], list[str]]:
    try:
        tree = ast.parse(text, path)
    except SyntaxError as error:
        raise DiffError(f"{path} does not parse, so the scopes of the diff's hunks cannot be found: {error}") from None
    lines = split_lines(text)
    scopes = scopes_of(tree, lines)
    notes = []
    groups: dict[Scope, list[_Located]] = {}
    for hunk in file.hunks:
        where = f"{file.path}: {hunk.name}"
        if [t.rstrip() for _, t in hunk.side(True)] == [t.rstrip() for _, t in hunk.side(False)]:
            notes.append(f"{hunk.name} changes only whitespace at line ends")
            continue
        _slide_up(hunk)
        located = _locate(hunk, lines, path, where)
        groups.setdefault(_owner(located, scopes), []).append(located)
    # Parts the engine would refuse together (nested functions, a class or top-level change next to
    # another part) become one part on the scope that holds both.
    while True:
        extents = {scope: _extents(scope, members, lines) for scope, members in groups.items()}
        order = list(groups)
        pair = next(((a, b) for n, a in enumerate(order) for b in order[n + 1 :]
                     if _clash(a, extents[a], b, extents[b])), None)
        if pair is None:
            break
        merged = groups.pop(pair[0]) + groups.pop(pair[1])
        groups.setdefault(findable(common(*pair)), []).extend(merged)
    changes = []
    everything = [located for members in groups.values() for located in members]
    for scope, members in sorted(groups.items(), key=lambda g: min(m.hunk.number for m in g[1])):
        members.sort(key=lambda m: m.hunk.number)
        hunks = []
        for located in members:
            others = [c.coordinates() for o in everything if o is not located for c in o.changes]
            hunks.append(_cut(located, scope, lines, others, f"{file.path}: {located.hunk.name}"))
        changes.append(ScopeChange(module, scope, hunks))
    return changes, notes
