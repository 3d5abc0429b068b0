"""`astpatch new --from-diff`: turn an upstream fix's unified diff into a rule file.

Each hunk is located in the module's source by its content (its context and removed lines,
or, where upstream's fix is already there, its context and added lines), the function that
contains its changes is named by qualified name, and the hunk is cut to that function's lines.
The rule's `ApplyHunks` edit then finds the hunk by content again at import time, so the rule
applies where line numbers have drifted.
"""

from __future__ import annotations

import ast
import os
import re

from .._base.lines import find_block, split_lines
from .._engine.locate import all_functions
from .._model.hunks import Hunk
from .sources import SourceNotFound, Sources

_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)")


class DiffError(Exception):
    """The diff cannot become a rule; the message says which hunk and why."""


class FileDiff:
    def __init__(self, old: str, new: str) -> None:
        self.old = old
        self.new = new
        self.hunks: list[RawHunk] = []


class RawHunk:
    def __init__(self, header: str, number: int) -> None:
        self.header = header
        self.number = number
        self.lines: list[tuple[str, str]] = []  # (" " | "-" | "+", text)

    def side(self, old: bool) -> list[tuple[int, str]]:
        """(index in self.lines, text) of the lines on the old (context, removed) or new side."""
        keep = " -" if old else " +"
        return [(i, text) for i, (kind, text) in enumerate(self.lines) if kind in keep]


def parse(text: str) -> list[FileDiff]:
    """The files and hunks of a unified diff (`git diff`, `diff -u`, a pull request's .diff)."""
    files: list[FileDiff] = []
    current: FileDiff | None = None
    hunk: RawHunk | None = None
    remaining_old = remaining_new = 0
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            current = FileDiff(_path(line[4:]), _path(lines[i + 1][4:]))
            files.append(current)
            hunk = None
            i += 2
            continue
        match = _HUNK.match(line)
        if match and current is not None:
            hunk = RawHunk(line, len(current.hunks) + 1)
            current.hunks.append(hunk)
            remaining_old = int(match.group(2) or 1) if match.group(2) != "0" else 0
            remaining_new = int(match.group(4) or 1) if match.group(4) != "0" else 0
            i += 1
            continue
        if hunk is not None and (remaining_old > 0 or remaining_new > 0):
            kind, body = (line[:1] or " "), line[1:]
            if kind == "\\":  # "\ No newline at end of file"
                i += 1
                continue
            if kind not in " -+":
                raise DiffError(f"line {i + 1} of the diff is not part of a hunk: {line!r}")
            hunk.lines.append((kind, body))
            if kind in " -":
                remaining_old -= 1
            if kind in " +":
                remaining_new -= 1
        i += 1
    files = [f for f in files if f.hunks]
    if not files:
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


class FunctionHunks:
    """The hunks of one function, ready for a rule."""

    def __init__(self, module: str, qualname: str) -> None:
        self.module = module
        self.qualname = qualname
        self.hunks: list[Hunk] = []


def cut(files: list[FileDiff], sources: Sources) -> list[FunctionHunks]:
    """Assign each hunk to the function it changes, cut to that function's lines."""
    result: dict[tuple[str, str], FunctionHunks] = {}
    for file in files:
        module = module_name(file.new if file.new != "/dev/null" else file.old)
        if module is None:
            raise DiffError(f"{file.new} is not a Python module; astpatch rules patch Python source")
        try:
            path, text = sources.read(module)
        except SourceNotFound as missing:
            raise DiffError(f"cannot find {module} to locate the functions the diff changes ({missing}); "
                            "install it or name its source with --source") from None
        source_lines = split_lines(text)
        functions = all_functions(ast.parse(text, path))
        for hunk in file.hunks:
            where = f"{file.new}: hunk {hunk.number} ({hunk.header})"
            for old_side in (True, False):
                side = hunk.side(old_side)
                found = find_block(source_lines, [t for _, t in side])
                if found:
                    break
            else:
                raise DiffError(f"{where}: its lines are in {path} neither as the diff expects before the change "
                                "nor after it, so it cannot tell which function it changes")
            if len(found) > 1:
                raise DiffError(f"{where}: its lines occur {len(found)} times in {path}")
            # Line number in the source of each line of this side.
            number = {index: found[0] + 1 + k for k, (index, _) in enumerate(side)}
            changed = [i for i, (kind, _) in enumerate(hunk.lines) if kind != " "]
            anchors = []
            for i in changed:
                if i in number:
                    anchors.append(number[i])
                else:  # a line only on the other side: anchor on its neighbours on this side
                    before = [number[j] for j in number if j < i]
                    after = [number[j] for j in number if j > i]
                    anchors.extend(([max(before)] if before else []) + ([min(after)] if after else []))
            owners = [f for f in functions if all(f[1] <= a <= f[2] for a in anchors)]
            if not owners:
                raise DiffError(f"{where}: it changes module-level code (lines {min(anchors)}-{max(anchors)} of "
                                f"{path}), outside any function; astpatch rules edit functions only")
            qualname, start, end = max(owners, key=lambda f: f[1])  # the innermost
            # Cut the context to the function: the rule must find the hunk inside it.
            inside = [line for i, line in enumerate(hunk.lines) if i not in number or start <= number[i] <= end]
            key = (module, qualname)
            entry = result.setdefault(key, FunctionHunks(module, qualname))
            entry.hunks.append(Hunk(
                header=hunk.header.strip(),
                before=[body for kind, body in inside if kind in " -"],
                after=[body for kind, body in inside if kind in " +"],
            ))
    return list(result.values())


def rule_file(entries: list[FunctionHunks], *, rule_id: str | None, gate: str | None, upstream: str,
              diff_name: str) -> tuple[list[str], str]:
    """The ids and the text of a rule file with one rule per changed function."""
    ids = []
    blocks = []
    for n, entry in enumerate(entries, 1):
        if rule_id:
            this_id = rule_id if len(entries) == 1 else f"{rule_id}-{n}"
        else:
            this_id = re.sub(r"[^a-z0-9]+", "-", f"{entry.module.split('.')[-1]}-{entry.qualname}".lower()).strip("-")
            this_id += "-from-diff"
        ids.append(this_id)
        hunks = "".join(
            f"            Hunk(\n"
            f"                header={h.header!r},\n"
            f"                before={_lines(h.before)},\n"
            f"                after={_lines(h.after)},\n"
            f"            ),\n"
            for h in entry.hunks
        )
        gate_line = f"        gate={gate!r},\n" if gate else ""
        blocks.append(
            f"    Rule(\n"
            f"        id={this_id!r},\n"
            f"        summary={f'Apply {diff_name} to {entry.qualname}'!r},\n"
            f"        module={entry.module!r},\n"
            f"        target={entry.qualname!r},\n"
            f"{gate_line}"
            f"        upstream={upstream!r},\n"
            f"        edit=ApplyHunks(hunks=[\n{hunks}        ]),\n"
            f"    ),\n"
        )
    text = (
        f'"""Rules made by `astpatch new --from-diff {os.path.basename(diff_name)}`.\n\n'
        f"Each rule applies the diff's hunks to one function, found by content, not by line number.\n"
        f'"""\n\nfrom astpatch import ApplyHunks, Hunk, Rule\n\nRULES = [\n{"".join(blocks)}]\n'
    )
    return ids, text


def _lines(lines: tuple[str, ...]) -> str:
    inner = "".join(f"                    {line!r},\n" for line in lines)
    return f"[\n{inner}                ]"
