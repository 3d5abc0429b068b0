"""The hunk edit kind: apply the hunks of an upstream diff to a function, found by content."""

from __future__ import annotations

from .._base.lines import find_block
from .edit import Edit, EditResult, Target

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Hunk:
    """One hunk of an upstream diff, cut to the function it changes.

    `before` is the hunk's context and removed lines, `after` its context and added lines,
    each without line endings, at the indentation they have in the file. `header` is the diff's
    `@@ ... @@` line, kept for messages.
    """

    __slots__ = ("header", "before", "after")

    def __init__(self, *, header: str = "", before: list[str] | tuple[str, ...], after: list[str] | tuple[str, ...]) -> None:
        self.header = header
        self.before = tuple(before)
        self.after = tuple(after)
        if self.before == self.after:
            raise ValueError(f"hunk {header or ''} changes nothing")
        if not self.before and not self.after:
            raise ValueError("a hunk needs lines")

    def params(self) -> tuple:
        return (self.header, self.before, self.after)

    def __repr__(self) -> str:
        return f"Hunk(header={self.header!r}, before={list(self.before)!r}, after={list(self.after)!r})"


class ApplyHunks(Edit):
    """Apply the hunks of an upstream diff to the target function, found by content.

    The hunks are located by their lines inside the target function, not by line number, so
    the edit applies to releases whose lines have drifted. A hunk whose `after` lines are
    already in the function counts as applied upstream; when every hunk is, the source is
    already fixed.
    """

    kind = "apply-hunks"
    scopes = ("function", "class", "module")

    def __init__(self, *, hunks: list[Hunk] | tuple[Hunk, ...]) -> None:
        if not hunks or not all(isinstance(h, Hunk) for h in hunks):
            raise ValueError("hunks must be a non-empty list of astpatch.Hunk")
        self.hunks = tuple(hunks)

    def params(self) -> dict[str, Any]:
        return {"hunks": tuple(h.params() for h in self.hunks)}

    def describe(self) -> str:
        return f"{self.kind}({len(self.hunks)} hunks)"

    def apply(self, target: Target) -> EditResult:
        lines = target.code.split("\n")
        applied = already = 0
        for number, hunk in enumerate(self.hunks, 1):
            name = f"hunk {number} ({hunk.header})" if hunk.header else f"hunk {number}"
            done_at = find_block(lines, hunk.after)
            # A hunk that only adds lines has its `before` inside its `after`: where the `after` is
            # found, those `before` lines are part of the fix, not a place still to patch.
            todo_at = [t for t in find_block(lines, hunk.before) if not _inside(t, hunk, done_at)]
            if (done_at or (not todo_at and _changed_lines_in(lines, hunk))) and not todo_at:
                already += 1
                continue
            if len(todo_at) > 1:
                return EditResult.no_match(f"{name}: its lines occur {len(todo_at)} times in {target.qualname}")
            if not todo_at:
                return EditResult.no_match(f"{name}: {_first_missing(lines, hunk.before)} in {target.qualname}")
            start = todo_at[0]
            indent_fix = lines[start : start + len(hunk.before)]
            # Keep the file's own trailing whitespace on unchanged lines; take the hunk's text otherwise.
            kept = {b: line for b, line in zip(hunk.before, indent_fix)}
            lines[start : start + len(hunk.before)] = [kept.get(a, a) for a in hunk.after]
            applied += 1
        if applied == 0:
            return EditResult.already_fixed(f"all {already} hunks of the diff are already in {target.qualname}")
        if already:
            return EditResult.no_match(f"{already} of the diff's {len(self.hunks)} hunks are already in "
                                       f"{target.qualname} and {applied} are not: a partial fix upstream")
        return EditResult.applied_code("\n".join(lines), f"applied {applied} hunks")


def _first_missing(lines: list[str], block: tuple[str, ...]) -> str:
    """Say which line of `block` stops matching, for a hunk that does not apply."""
    stripped = [line.rstrip() for line in lines]
    for size in range(len(block), 0, -1):
        if find_block(lines, block[:size]):
            if size == len(block):
                break
            return f"its line {size + 1}, {block[size].strip()!r}, is not where the diff expects it"
    if block and block[0].rstrip() not in stripped:
        return f"its first line, {block[0].strip()!r}, is not"
    return "its lines are not"


def _inside(position: int, hunk: Hunk, done_at: list[int]) -> bool:
    """Whether the `before` block found at `position` lies within an occurrence of `after`."""
    return any(d <= position and position + len(hunk.before) <= d + len(hunk.after) for d in done_at)


def _changed_lines_in(lines: list[str], hunk: Hunk) -> bool:
    """Whether the lines the hunk adds are there, and the lines it removes are not, though the
    context around them has changed: upstream has the fix in a later release that also moved or
    rewrote its neighbourhood."""
    before, after = list(hunk.before), list(hunk.after)
    while before and after and before[0].rstrip() == after[0].rstrip():
        before.pop(0)
        after.pop(0)
    while before and after and before[-1].rstrip() == after[-1].rstrip():
        before.pop()
        after.pop()
    added = [line for line in after if line.strip()]
    removed = [line for line in before if line.strip()]
    if removed and find_block(lines, removed):
        return False
    if not added:  # a hunk that only removes lines: they are gone
        return bool(removed)
    return bool(find_block(lines, added))
