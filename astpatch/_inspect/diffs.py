"""Unified diffs, read the way `patch` reads them: each hunk by its header's line counts.

A line inside a hunk that happens to start with `--- ` or `+++ ` (a removed or added line that
begins with `-- ` or `++ `) is part of the hunk, never a new file header.
"""

from __future__ import annotations

import re

_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_GIT_HEADER = re.compile(r"diff --git a/(.+) b/(.+)")
NO_FILE = "/dev/null"


class DiffError(Exception):
    """The diff cannot become a rule; the message says which hunk and why."""


# --- Reading the diff -----------------------------------------------------------------------


class FileDiff:
    """One file of the diff: its paths before and after (NO_FILE when created or deleted)."""

    def __init__(self, old: str, new: str) -> None:
        self.old = old
        self.new = new
        self.hunks: list[RawHunk] = []

    @property
    def path(self) -> str:
        return self.new if self.new != NO_FILE else self.old


class RawHunk:
    """One hunk as the diff has it: its header's line numbers and its lines."""

    def __init__(self, header: str, number: int, old_start: int, old_count: int, new_start: int,
                 new_count: int) -> None:
        self.header = header
        self.number = number
        self.old_start, self.old_count = old_start, old_count
        self.new_start, self.new_count = new_start, new_count
        self.lines: list[tuple[str, str]] = []  # (" " | "-" | "+", text)

    @property
    def name(self) -> str:
        return f"hunk {self.number} ({self.header})"

    def side(self, old: bool) -> list[tuple[int, str]]:
        """(index in self.lines, text) of the lines on the old (context, removed) or new side."""
        keep = " -" if old else " +"
        return [(i, text) for i, (kind, text) in enumerate(self.lines) if kind in keep]


def parse(text: str) -> list[FileDiff]:
    """The files and hunks of a unified diff (`git diff`, `diff -u`, a pull request's .diff).

    A hunk's lines are read by the counts in its header, so a removed line that reads `-- x`
    followed by an added `++ y` is part of the hunk, not the next file's `---`/`+++` header.
    Anything between hunks that is not a header (git's `index` lines, a commit message) is skipped.
    """
    files: list[FileDiff] = []
    current: FileDiff | None = None
    awaiting_paths = False  # a `diff --git` line began a file whose `---`/`+++` lines may follow
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        line = lines[i]
        git = _GIT_HEADER.fullmatch(line)
        if git:
            current = FileDiff(git.group(1), git.group(2))
            files.append(current)
            awaiting_paths = True
            i += 1
            continue
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old, new = _path(line[4:]), _path(lines[i + 1][4:])
            if awaiting_paths and current is not None:
                current.old, current.new = old, new
            else:
                current = FileDiff(old, new)
                files.append(current)
            awaiting_paths = False
            i += 2
            continue
        match = _HUNK.match(line)
        if match is None:
            i += 1
            continue
        if current is None:
            raise DiffError(f"line {i + 1} of the diff is a hunk header before any file header: {line!r}")
        old_start, old_count = int(match.group(1)), int(match.group(2) if match.group(2) is not None else 1)
        new_start, new_count = int(match.group(3)), int(match.group(4) if match.group(4) is not None else 1)
        hunk = RawHunk(line[: match.end()], len(current.hunks) + 1, old_start, old_count, new_start, new_count)
        current.hunks.append(hunk)
        awaiting_paths = False
        old_left, new_left = old_count, new_count
        i += 1
        while old_left > 0 or new_left > 0:
            if i >= len(lines):
                raise DiffError(f"{current.path}: {hunk.name} ends before its last line: the diff is cut short")
            body = lines[i]
            kind = body[:1] or " "  # an empty line: a blank context line whose space was stripped
            i += 1
            if kind == "\\":  # "\ No newline at end of file"
                continue
            if kind not in " -+" or (kind in " -" and old_left == 0) or (kind in " +" and new_left == 0):
                raise DiffError(f"line {i} of the diff does not fit {current.path}'s {hunk.name}: {body!r}")
            hunk.lines.append((kind, body[1:]))
            old_left -= kind in " -"
            new_left -= kind in " +"
    if not any(f.hunks for f in files):
        raise DiffError("it is not a unified diff: no '--- a/...', '+++ b/...' and '@@ ... @@' hunks found")
    return files


def _path(text: str) -> str:
    path = text.split("\t")[0].strip()
    if path.startswith(("a/", "b/")):
        path = path[2:]
    return path


def module_name(path: str) -> str | None:
    """`torch/_inductor/codecache.py` -> `torch._inductor.codecache`; None for non-Python files."""
    if not path.endswith(".py"):
        return None
    parts = path[:-3].split("/")
    for prefix in ("src", "lib"):
        if len(parts) > 1 and parts[0] == prefix:
            parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) if parts and all(p.isidentifier() for p in parts) else None


# --- The scopes of a module ------------------------------------------------------------------
