"""Regenerate tests/data/pytorch-*.diff: three upstream torch pull requests, read from the
released wheels on each side of the fix (nothing is installed or imported).

    python3 tools/pr_diffs.py [WHEEL_DIR]     # default: .venvs/wheels, where tools/venvs.py keeps them

Between two releases a file has many changes besides the pull request's. The diff of the file is
cut down to the pull request's: each changed run of lines (a difflib opcode) is named by the
innermost function or class that holds all its non-blank lines ("" for the module's top level),
and only the runs a selector names are kept. The kept runs applied to the broken release's file
give a text whose unified diff against that file is saved. Every function the kept runs touch
must then read exactly as in the fixed release: no half of a function's change is kept or left.
"""

from __future__ import annotations

import ast
import difflib
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"

# (diff file, broken release, fixed release, {file in the wheel: [(scope, text the run must contain)]})
PULL_REQUESTS = [
    ("pytorch-177558.diff", "2.11.0", "2.12.0", {
        "torch/_dynamo/convert_frame.py": [("_safe_builtins_dict", ""), ("GraphCaptureOutput.get_runtime_env", "")],
    }),
    ("pytorch-166458.diff", "2.9.0", "2.9.1", {
        "torch/_inductor/config.py": [("", "custom_should_partition_ops")],
        "torch/_inductor/scheduler.py": [("", "weakref"), ("Scheduler.should_partition", "")],
    }),
    ("pytorch-167131.diff", "2.9.1", "2.10.0", {
        "torch/_inductor/codegen/wrapper.py": [
            ("PythonWrapperCodegen.write_kernel_autotune_defs_header", ""),
            ("SubgraphPythonWrapperCodegen.__init__", ""),
            ("SubgraphPythonWrapperCodegen", ""),
        ],
    }),
]


def read_wheel(directory: Path, version: str, path: str) -> str:
    found = sorted(directory.glob(f"torch-{version}[-+]*.whl"))
    if not found:
        raise SystemExit(f"no torch {version} wheel in {directory}")
    with zipfile.ZipFile(found[0]) as wheel:
        return wheel.read(path).decode("utf-8")


def scope_of_lines(lines: list[str]) -> dict[int, str]:
    """The innermost function or class holding each line (1-based), from its first decorator."""
    owner: dict[int, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                for number in range(first, (child.end_lineno or child.lineno) + 1):
                    owner[number] = name
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse("".join(lines)), "")
    return owner


def common_scope(names: list[str]) -> str:
    parts = [name.split(".") if name else [] for name in names]
    common: list[str] = []
    for column in zip(*parts):
        if len(set(column)) != 1:
            break
        common.append(column[0])
    return ".".join(common)


def functions(lines: list[str]) -> dict[str, str]:
    """The source of every function, by qualified name."""
    found: dict[str, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    found[name] = "".join(lines[first - 1 : child.end_lineno])
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse("".join(lines)), "")
    return found


def pull_request_diff(path: str, old_text: str, new_text: str, selectors: list[tuple[str, str]]) -> str:
    old, new = old_text.splitlines(True), new_text.splitlines(True)
    old_owner, new_owner = scope_of_lines(old), scope_of_lines(new)
    kept: list[str] = []
    position = 0
    used = set()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        owners = [old_owner.get(i + 1, "") for i in range(i1, i2) if old[i].strip()]
        owners += [new_owner.get(j + 1, "") for j in range(j1, j2) if new[j].strip()]
        if not owners:
            continue  # blank lines only
        scope = common_scope(owners)
        text = "".join(old[i1:i2] + new[j1:j2])
        chosen = [s for s in selectors if s[0] == scope and s[1] in text]
        if chosen:
            used.update(chosen)
            kept += old[position:i1] + new[j1:j2]
            position = i2
    kept += old[position:]
    missing = [s for s in selectors if s not in used]
    if missing:
        raise SystemExit(f"{path}: no change matches {missing}")
    before, fixed, result = functions(old), functions(new), functions(kept)
    for name, source in result.items():
        if source != before.get(name) and source != fixed.get(name):
            raise SystemExit(f"{path}: {name} is neither as in the broken release nor as in the fixed one")
    return "".join(difflib.unified_diff(old, kept, f"a/{path}", f"b/{path}"))


def main() -> int:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".venvs" / "wheels"
    DATA.mkdir(exist_ok=True)
    for name, broken, fixed, files in PULL_REQUESTS:
        parts = [pull_request_diff(path, read_wheel(directory, broken, path), read_wheel(directory, fixed, path),
                                   selectors) for path, selectors in files.items()]
        (DATA / name).write_text("".join(parts), encoding="utf-8")
        hunks = sum(line.startswith("@@") for part in parts for line in part.splitlines())
        print(f"{name}: torch {broken} -> {fixed}, {hunks} hunks, {sum(map(len, parts))} characters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
