"""`astpatch new --from-diff`: one rule from an upstream diff, applied where lines have drifted."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from astpatch._inspect.diffs import DiffError, parse
from astpatch._inspect.evaluate import evaluate
from astpatch._inspect.sources import Directory
from astpatch._model.rulefiles import load_rule_file

from scenario import Scenario

# The upstream module of these tests (the README's `new --from-diff` example uses it too).
UPSTREAM_BEFORE = (Path(__file__).parent / "data" / "upstream_parser.txt").read_text()

# Upstream's fix: two hunks in Parser.parse, one in helper.
UPSTREAM_AFTER = (UPSTREAM_BEFORE
                  .replace("        text = text.strip()\n", "        text = text.strip().replace('_', '')\n")
                  .replace("        value = int(text)\n", "        value = int(text, 0)\n")
                  .replace("    return x * 2\n", "    return x * 2 if x is not None else None\n"))

# The installed release: the same functions, lower in the file (the lines drifted).
DRIFT = "# A release with more at the top.\nimport os\nimport sys\n\n\nVERSION = '1.0'\n"


def make_diff(before: str, after: str, path: str = "pkgfix/core.py", context: int = 3) -> str:
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{path}", f"b/{path}",
                                        n=context))


class Project(Scenario):
    """A package `pkgfix` 1.0 installed (no rule yet: `out` is where `new -o` writes them), upstream's diff."""

    def __init__(self, tmp_path, installed: str):
        super().__init__(tmp_path, source=None, rule_file=None, dist="pkgfix", version="1.0", cwd=tmp_path)
        self.write("pkgfix.core", installed)
        self.diff = tmp_path / "fix.diff"
        self.diff.write_text(make_diff(UPSTREAM_BEFORE, UPSTREAM_AFTER))
        self.out = tmp_path / "rules"


# A module for the cases the first one lacks: a function whose last line is not a return, a class
# with an attribute, a method to rename, a string whose lines read like a diff's file headers.
TOOLS = '''\
"""Small tools."""

import json


def record(log, x):
    log.append(x)


class Store:
    """Keeps values."""

    limit = 3

    def put(self, values, x):
        values.append(x)
        return values

    def old_name(self):
        return "renamed"


def usage():
    return """
-- run it
with care
"""


def last(x):
    return json.loads(json.dumps(x + 1))
'''


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path, DRIFT + UPSTREAM_BEFORE)


@pytest.fixture
def tools(project):
    """The project, with `pkgfix.tools` installed too."""
    project.write("pkgfix.tools", TOOLS)
    return project


def new(project, *args: str, out=None):
    """`astpatch new` on the project's diff, as rule `pkgfix-fix`; the rule it wrote."""
    out = out or project.out
    made = project.astpatch("new", "--from-diff", str(project.diff), "--id", "pkgfix-fix", "-o", str(out), *args)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == f"wrote {out / 'pkgfix_fix.py'}: pkgfix-fix"
    (rule,) = load_rule_file(str(out / "pkgfix_fix.py"))
    return rule


def parts(rule) -> list[tuple[str, str, int]]:
    """(module, scope, number of hunks) of each change of the rule."""
    return [(c.module, c.scope, len(c.edit.hunks)) for c in rule.changes]


def patched(project, module: str = "pkgfix.core", out=None) -> tuple[str, list[str]]:
    """The installed module's source as the rules in `out` make it, and their outcomes there."""
    rules = [r for path in sorted((out or project.out).glob("*.py")) for r in load_rule_file(str(path))]
    (report,) = [r for r in evaluate(rules, Directory(str(project.site))) if r.module == module]
    return "".join(report.after), [o.status for _, o in report.outcomes]


def run(project, code: str) -> str:
    """What `code` prints, run after installing the rules in `project.out`."""
    result = project.python(f"import astpatch; astpatch.install(rules=[{str(project.out)!r}])\n{code}", settings=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def outcomes(project, *rules) -> dict[str, str]:
    listed = project.astpatch("list", "--json", *(a for r in rules or [project.out] for a in ("--rules", str(r))))
    assert "Traceback" not in listed.stderr, listed.stderr
    return {r["id"]: r["outcome"] for r in json.loads(listed.stdout) if r["id"].startswith("pkgfix")}


def test_one_rule_for_the_whole_diff_written_and_applied_where_lines_drifted(project):
    made = project.astpatch("new", "--from-diff", str(project.diff), "--id", "pkgfix-parse", "--gate", "pkgfix>=1",
                            "--upstream", "pkgfix PR 12, released in 1.1", "-o", str(project.out))
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == f"wrote {project.out / 'pkgfix_parse.py'}: pkgfix-parse"
    (rule,) = load_rule_file(str(project.out / "pkgfix_parse.py"))
    assert (rule.gate, rule.upstream) == ("pkgfix>=1", "pkgfix PR 12, released in 1.1")
    assert parts(rule) == [("pkgfix.core", "Parser.parse", 2), ("pkgfix.core", "helper", 1)]
    assert outcomes(project) == {"pkgfix-parse": "applied"}
    # The oracle: upstream's change, made by hand to the installed (drifted) file.
    assert patched(project) == (DRIFT + UPSTREAM_AFTER, ["applied"])

    # The diff astpatch makes on the installed (drifted) file is upstream's diff, moved down.
    diff = project.astpatch("diff", "--rules", str(project.out), "pkgfix.core").stdout
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    expected = [line for line in make_diff(UPSTREAM_BEFORE, UPSTREAM_AFTER).splitlines()
                if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == expected
    upstream_start = int(make_diff(UPSTREAM_BEFORE, UPSTREAM_AFTER).split("@@ -")[1].split(",")[0])
    assert f"@@ -{upstream_start + DRIFT.count(chr(10))}," in diff  # the same hunk, moved down by the drift

    assert run(project, "from pkgfix.core import Parser, helper\n"
                        "print(Parser().parse(' 0x1_0 '), helper(None), [o.status for o in astpatch.applied()])"
               ) == "16 None ['applied']"


def test_printed_when_no_output_directory(project):
    made = project.astpatch("new", "--from-diff", str(project.diff))
    assert made.returncode == 0, made.stderr
    assert made.stdout.count("Rule(") == 1 and "id='core-parser-parse-from-diff'" in made.stdout
    assert "scope='Parser.parse'" in made.stdout and "scope='helper'" in made.stdout
    compile(made.stdout, "rule.py", "exec")  # a valid rule file


def test_already_fixed_where_the_diffs_result_is_present(project):
    new(project)
    (project.site / "pkgfix" / "core.py").write_text(DRIFT + UPSTREAM_AFTER)
    assert outcomes(project) == {"pkgfix-fix": "already-fixed"}


def test_a_hunk_that_no_longer_applies_is_named(project):
    new(project, "--gate", "pkgfix>=1")
    (project.site / "pkgfix" / "core.py").write_text(DRIFT + UPSTREAM_BEFORE.replace("# step four", "# step 4"))
    result = project.astpatch("check", "--rules", str(project.out), "--rule", "pkgfix-fix", "-v")
    assert result.returncode == 1
    assert ("pkgfix-fix @ pkgfix 1.0: failed: part 1 (pkgfix.core:Parser.parse): the edit does not apply: hunk 2 "
            "(@@ -17,7 +17,7 @@): its first line, '# step four', is not in Parser.parse; no part of the rule is applied"
            ) in result.stdout
    assert patched(project)[0] == DRIFT + UPSTREAM_BEFORE.replace("# step four", "# step 4")  # helper unchanged too


SHAPES = '''\
"""Shapes."""

import math

UNITS = "cm"


class Square:
    """A square."""

    sides = 4

    def __init__(self, size):
        self.size = size

    def area(self):
        return self.size ** 2

    def describe(self):
        return f"square of {self.size}{UNITS}"


def total(shapes):
    result = 0
    for shape in shapes:
        result += shape.area()
    if result < 0:
        raise ValueError(result)
    return result
'''

SHAPES_AFTER = (SHAPES
                .replace('UNITS = "cm"', 'UNITS = "mm"')
                .replace("    sides = 4\n", "    sides = 4\n    corners = 4\n")
                .replace("return self.size ** 2", "return float(self.size ** 2)")
                .replace('{UNITS}"\n', '{UNITS}"\n\n    def diagonal(self):\n        return self.size * math.sqrt(2)\n')
                .replace("result += shape.area()", "result += round(shape.area(), 2)")
                + "\n\ndef largest(shapes):\n    return max(shapes, key=lambda s: s.area())\n")


def test_each_hunk_goes_to_the_innermost_scope_that_holds_its_changes(project):
    """A module constant (top level), a class attribute and a new method (the class), a method's body
    (the method); a function's body next to definitions appended after it: the engine would refuse a
    function change next to a top-level one, so both are one change of the top level."""
    project.write("pkgfix.shapes", SHAPES)
    diff = make_diff(SHAPES, SHAPES_AFTER, "pkgfix/shapes.py", context=1)
    assert diff.count("@@ -") == 6  # the change of total() and the function added after it are two hunks
    # The new method placed as git places it: after the blank line that ends the class, where its
    # neighbours are two blank lines outside the class (and `["", ""]` occurs often in the module).
    placed_by_git = "@@ -21,2 +22,5 @@\n \n+    def diagonal(self):\n+        return self.size * math.sqrt(2)\n+\n \n"
    diff = diff.replace("@@ -20,2 +21,5 @@\n         return f\"square of {self.size}{UNITS}\"\n+\n"
                        "+    def diagonal(self):\n+        return self.size * math.sqrt(2)\n \n", placed_by_git)
    assert placed_by_git in diff
    project.diff.write_text(diff)
    rule = new(project)
    assert parts(rule) == [("pkgfix.shapes", "", 3), ("pkgfix.shapes", "Square", 2),
                           ("pkgfix.shapes", "Square.area", 1)]
    assert patched(project, "pkgfix.shapes") == (SHAPES_AFTER, ["applied"])
    assert run(project, "from pkgfix.shapes import Square, total, largest, UNITS\n"
                        "s = Square(3)\n"
                        "print(UNITS, s.corners, s.area(), round(s.diagonal(), 3), total([s]), "
                        "largest([s, Square(1)]).size)"
               ) == "mm 4 9.0 4.243 9.0 3"


def test_lines_added_at_the_end_of_a_function_belong_to_it(tools):
    """Their neighbours are the blank line after the function and the next definition: their
    indentation says whose they are."""
    after = TOOLS.replace("    log.append(x)\n", "    log.append(x)\n    log.append(x * 10)\n")
    tools.diff.write_text(make_diff(TOOLS, after, "pkgfix/tools.py"))
    assert parts(new(tools)) == [("pkgfix.tools", "record", 1)]
    assert patched(tools, "pkgfix.tools") == (after, ["applied"])
    assert run(tools, "from pkgfix.tools import record; log = []; record(log, 1); print(log)") == "[1, 10]"


def test_definitions_appended_after_the_last_function_are_a_top_level_change(tools):
    after = TOOLS + "\n\nLIMIT = 2\n\n\ndef later(x):\n    return min(last(x) * 2, LIMIT * 10)\n"
    tools.diff.write_text(make_diff(TOOLS, after, "pkgfix/tools.py"))
    assert parts(new(tools)) == [("pkgfix.tools", "", 1)]
    assert patched(tools, "pkgfix.tools") == (after, ["applied"])
    assert run(tools, "import pkgfix.tools as t; print(t.later(1), t.LIMIT, [o.status for o in astpatch.applied()])"
               ) == "4 2 ['applied']"


def test_a_renamed_method_is_a_change_of_its_class_and_check_and_import_agree(tools):
    after = TOOLS.replace("def old_name(", "def new_name(")
    tools.diff.write_text(make_diff(TOOLS, after, "pkgfix/tools.py"))
    assert parts(new(tools)) == [("pkgfix.tools", "Store", 1)]
    checked = tools.astpatch("check", "--rules", str(tools.out), "--rule", "pkgfix-fix", "-v")
    assert checked.returncode == 0 and "pkgfix-fix @ installed: applied: applied 1 hunks" in checked.stdout
    assert run(tools, "import pkgfix.tools as t\n"
                      "print(hasattr(t.Store, 'old_name'), t.Store().new_name(), "
                      "[(o.status, o.reason) for o in astpatch.applied()])"
               ) == "False renamed [('applied', 'applied 1 hunks')]"


def test_a_removed_line_that_reads_like_a_file_header(tools):
    """In the diff, `-- run it` removed and `++ run it` added read `--- run it` and `+++ run it`."""
    after = TOOLS.replace("-- run it\n", "++ run it\n")
    diff = make_diff(TOOLS, after, "pkgfix/tools.py")
    assert "\n--- run it\n+++ run it\n" in diff
    tools.diff.write_text(diff)
    assert parts(new(tools)) == [("pkgfix.tools", "usage", 1)]
    assert patched(tools, "pkgfix.tools") == (after, ["applied"])
    assert run(tools, "from pkgfix.tools import usage; print(usage().split())") == "['++', 'run', 'it', 'with', 'care']"


def test_a_module_in_a_namespace_package_inside_a_package(project):
    """`pkgfix/plugins` has no __init__.py: finding it must not need `pkgfix` imported."""
    plugins = project.site / "pkgfix" / "plugins"
    plugins.mkdir()
    source = "def load(name):\n    return name.upper()\n"
    after = source.replace("name.upper()", "name.strip().upper()")
    (plugins / "loader.py").write_text(source)
    project.diff.write_text(make_diff(source, after, "pkgfix/plugins/loader.py"))
    assert parts(new(project)) == [("pkgfix.plugins.loader", "load", 1)]
    assert outcomes(project) == {"pkgfix-fix": "applied"}
    diff = project.astpatch("diff", "--rules", str(project.out), "pkgfix.plugins.loader")
    assert diff.returncode == 0 and "Traceback" not in diff.stderr, diff.stderr
    assert "+    return name.strip().upper()" in diff.stdout.splitlines()
    assert run(project, "from pkgfix.plugins.loader import load; print(load(' x '))") == "X"


MODES = """\
\"\"\"Modes.\"\"\"

MODE = "fast"

match MODE:
    case "fast":
        def speed(x):
            return x * 2
    case _:
        SLOW = True
"""


def test_a_function_defined_in_a_match_case_is_a_scope_the_engine_finds(project):
    """The hunk goes to the function in the `match` case, and the engine finds it there: a definition
    in a case is as conditional as one in an `if`, for placing hunks and for locating targets alike."""
    after = MODES.replace("return x * 2", "return x * 3")
    project.write("pkgfix.modes", MODES)
    project.diff.write_text(make_diff(MODES, after, "pkgfix/modes.py"))
    assert parts(new(project)) == [("pkgfix.modes", "speed", 1)]
    assert patched(project, "pkgfix.modes") == (after, ["applied"])


SIZES = """\
\"\"\"Sizes.\"\"\"

import sys
from typing import overload


class Box:
    def __init__(self):
        self._size = 0

    @property
    def size(self):
        return self._size

    @size.setter
    def size(self, value):
        self._size = value


@overload
def scale(x: int) -> int: ...
@overload
def scale(x: str) -> str: ...
def scale(x):
    return x * 2


if sys.version_info >= (3, 0):
    def pick(x):
        return x + 1
else:
    def pick(x):
        return x - 1
"""


def test_hunks_in_a_property_accessor_or_an_overloaded_implementation_target_it(project):
    """A property's getter and setter share their name, as an overloaded function's stubs and
    implementation do: the hunks go to `Box.size`, `Box.size.setter` and `scale`, the targets that
    name each, not to the class or the top level; a hunk in one branch of an `if` stays a change of
    the top level (a rule on `pick` would edit both branches)."""
    after = (SIZES.replace("return self._size\n", "return self._size or 0\n")
             .replace("self._size = value", "self._size = max(value, 0)")
             .replace("return x * 2", "return x * 3")
             .replace("return x + 1", "return x + 10"))
    project.write("pkgfix.sizes", SIZES)
    project.diff.write_text(make_diff(SIZES, after, "pkgfix/sizes.py", context=1))
    assert parts(new(project)) == [("pkgfix.sizes", "Box.size", 1), ("pkgfix.sizes", "Box.size.setter", 1),
                                   ("pkgfix.sizes", "scale", 1), ("pkgfix.sizes", "", 1)]
    assert patched(project, "pkgfix.sizes") == (after, ["applied"])
    assert run(project, "from pkgfix.sizes import Box, scale, pick\n"
                        "b = Box(); b.size = -3; b2 = Box(); b2._size = None\n"
                        "print(b.size, b2.size, scale(2), pick(1), [o.status for o in astpatch.applied()])"
               ) == "0 0 6 11 ['applied']"


# Definitions in every kind of block, some twice, some nested, some decorated.
BLOCKS = """\
import sys

if sys.platform == "win32":
    def sep():
        return "\\\\"
elif sys.platform == "darwin":
    def sep():
        return ":"
else:
    @staticmethod
    def sep():
        return "/"

for _ in range(1):
    def looped():
        return 1
else:
    def after_loop():
        return 2

while not sys.argv:
    def never():
        return 3
else:
    def after_while():
        return 4

with open(__file__) as handle:
    class Opened:
        def read(self):
            return handle

try:
    import json
except ImportError:
    def fallback():
        return 6
else:
    def found():
        return 7
finally:
    def cleanup():
        return 8

match sys.version_info[:2]:
    case (3, 10):
        def speed(x):
            return x
    case (major, minor) if minor > 10:
        @staticmethod
        def speed(x):
            return x * 2

        class Modern:
            def run(self):
                def inner():
                    match self:
                        case Modern():
                            def deepest():
                                return 9
                    return deepest
                return inner
    case _:
        pass


async def coroutine(lock):
    async with lock:
        def locked():
            return 10
    async for item in lock:
        def each():
            return 11
    return locked, each
"""

TRY_STAR = """
try:
    pass
except* ValueError:
    def grouped():
        return 12
"""


def compiled_definitions(code, prefix: str = "") -> list[tuple[str, int, str]]:
    """(qualified name, first line, kind) of every function and class, from the compiler's code objects."""
    found = []
    for const in code.co_consts:
        if isinstance(const, type(code)) and not const.co_name.startswith("<"):
            name = prefix + const.co_name
            found.append((name, const.co_firstlineno, "function" if const.co_flags & 0x0002 else "class"))
            found.extend(compiled_definitions(const, name + "."))
    return found


def test_scopes_and_the_engine_see_the_definitions_the_compiler_makes():
    """Every block that can hold a definition (a `match` case included) is entered alike by the
    scopes a diff's hunks go to and by the engine's lookup, and both agree with the code objects."""
    import ast
    import sys

    from astpatch._base.lines import split_lines
    from astpatch._engine.locate import all_functions, find_class, find_definitions
    from astpatch._inspect.scopes import scopes_of

    source = BLOCKS + (TRY_STAR if sys.version_info >= (3, 11) else "")
    expected = sorted(compiled_definitions(compile(source, "blocks.py", "exec", dont_inherit=True)))
    assert ("Modern.run.inner.deepest", source.splitlines().index(" " * 28 + "def deepest():") + 1, "function") \
        in expected and len(expected) == 21 + (sys.version_info >= (3, 11))
    tree = ast.parse(source)
    scopes = scopes_of(tree, split_lines(source))
    assert scopes[0].qualname == "" and sorted((s.qualname, s.start, s.kind) for s in scopes[1:]) == expected
    functions = sorted((name, start, "function") for name, start, _ in all_functions(tree))
    assert functions == [d for d in expected if d[2] == "function"]
    for name in dict.fromkeys(name for name, _, _ in expected):
        starts = sorted(start for n, start, _ in expected if n == name)
        kind = next(k for n, _, k in expected if n == name)
        definitions, reason = find_definitions(tree, name)
        if kind == "function":
            assert (sorted(d.start for d in definitions), reason) == (starts, "")
        else:
            assert (definitions, reason) == ([], f"{name} is a class, not a function")
            assert find_class(tree, name)[0] == starts[0]


def test_a_diff_without_context_is_placed_by_its_line_numbers(tools):
    """`diff -U0`: pure insertions have no lines of their own to be found by; the header says where,
    and lines from the source make each hunk unique (without reaching the next hunk's changes)."""
    after = (TOOLS.replace("    log.append(x)\n", "    log.append(x)\n    return log\n")
             .replace("    limit = 3\n", "    limit = 4\n")
             .replace("        values.append(x)\n",
                      "        x = int(x)\n        values.append(x)\n        values.sort()\n"))
    diff = make_diff(TOOLS, after, "pkgfix/tools.py", context=0)
    assert diff.count("@@ -") == 4 and "\n " not in diff  # four hunks, no context lines
    tools.diff.write_text(diff)
    assert parts(new(tools)) == [("pkgfix.tools", "record", 1), ("pkgfix.tools", "Store", 1),
                                 ("pkgfix.tools", "Store.put", 2)]
    assert patched(tools, "pkgfix.tools") == (after, ["applied"])
    assert run(tools, "from pkgfix.tools import Store, record; print(Store().put([3], '1'), Store.limit, record([], 2))"
               ) == "[1, 3] 4 [2]"


def test_a_gated_rule_checked_against_a_single_file_asks_for_the_version(project):
    new(project, "--gate", "pkgfix>=1")
    single = project.tmp / "core.py"
    single.write_text(DRIFT + UPSTREAM_BEFORE)

    def check(*args: str) -> dict:
        result = project.astpatch("check", "--rules", str(project.out), "--rule", "pkgfix-fix",
                                  "--against", str(single), "--json", *args)
        return json.loads(result.stdout)["columns"][0]["results"]["pkgfix-fix"]

    found = check()
    assert found["outcome"] == "not-applicable"
    assert found["reason"] == ("the version of pkgfix in core.py is unknown (a single file has no metadata), so the "
                               "gate pkgfix>=1 cannot be checked; give it with --dist-version")
    assert check("--dist-version", "1.0")["outcome"] == "applied"
    assert check("--dist-version", "0.9")["reason"].endswith("pkgfix 0.9 is outside the gate pkgfix>=1")


def test_fixed_in_stops_the_gate_below_the_fixed_release(project):
    bounded = new(project, "--gate", "pkgfix>=1", "--fixed-in", "1.1")
    assert bounded.gate == "pkgfix>=1,<1.1"
    assert new(project, "--fixed-in", "1.1", out=project.tmp / "plain").gate == "pkgfix<1.1"
    unbounded = project.tmp / "unbounded"
    new(project, "--gate", "pkgfix>=1", out=unbounded)
    assert outcomes(project) == {"pkgfix-fix": "applied"}
    # The fixed release rewrote the code the diff changes: the hunks no longer apply there, and the
    # lines they add are not there either.
    project.install_dist("1.1")
    (project.site / "pkgfix" / "core.py").write_text(
        DRIFT + UPSTREAM_AFTER.replace("# step four", "# step 4").replace("int(text, 0)", "int(text, base=0)"))
    assert outcomes(project) == {"pkgfix-fix": "not-applicable"}
    assert outcomes(project, unbounded) == {"pkgfix-fix": "failed"}  # without the bound: a false alarm
    (project.site / "pkgfix" / "core.py").write_text(DRIFT + UPSTREAM_AFTER)
    assert outcomes(project) == {"pkgfix-fix": "already-fixed"}


def test_fixed_in_must_be_a_version(project):
    result = project.astpatch("new", "--from-diff", str(project.diff), "--fixed-in", "next")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("astpatch: error: --fixed-in 'next' is not a PEP 440 version; "
                                     "write it like '2.11.0'")


def file_diff(old: str | None, new: str | None, path: str) -> str:
    """A diff of one file, created (old None) or deleted (new None) as git writes it."""
    if old is not None and new is not None:
        return f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n" + make_diff(old, new, path)
    body = "".join(difflib.unified_diff((old or "").splitlines(True), (new or "").splitlines(True)))
    hunks = body[body.index("@@"):]
    heads = ("/dev/null", f"b/{path}") if old is None else (f"a/{path}", "/dev/null")
    return f"diff --git a/{path} b/{path}\n--- {heads[0]}\n+++ {heads[1]}\n{hunks}"


def test_files_that_are_not_installed_modules_are_skipped(tools):
    tools_after = TOOLS.replace("    limit = 3\n", "    limit = 4\n")
    tools.diff.write_text(
        file_diff(UPSTREAM_BEFORE, UPSTREAM_AFTER, "pkgfix/core.py")
        + file_diff("def test_parse():\n    pass\n", "def test_parse():\n    assert True\n", "tests/test_core.py")
        + file_diff("Usage\n=====\n", "Usage\n=====\n\nParse.\n", "docs/index.rst")
        + "diff --git a/csrc/kernel.cpp b/csrc/kernel.cpp\n--- a/csrc/kernel.cpp\n+++ b/csrc/kernel.cpp\n"
          "@@ -1 +1 @@\n-int f();\n+int f(int);\n"
        + file_diff("print(1)\n", "print(2)\n", "scripts/run-me.py")
        + file_diff(None, "VALUE = 1\n", "pkgfix/brand_new.py")
        + file_diff("OLD = 1\n", None, "pkgfix/gone.py")
        + "diff --git a/pkgfix/logo.png b/pkgfix/logo.png\n"
          "Binary files a/pkgfix/logo.png and b/pkgfix/logo.png differ\n"
        + file_diff(TOOLS, tools_after, "pkgfix/tools.py"))
    made = tools.astpatch("new", "--from-diff", str(tools.diff), "--id", "pkgfix-fix", "-o", str(tools.out))
    assert made.returncode == 0, made.stderr
    skipped = made.stderr.splitlines()
    assert skipped[0].startswith("skipped tests/test_core.py: module tests.test_core not found: ")
    assert skipped[1:] == [
        "skipped docs/index.rst: not a Python file",
        "skipped csrc/kernel.cpp: not a Python file",
        "skipped scripts/run-me.py: not a module: its path is not a dotted Python name",
        "skipped pkgfix/brand_new.py: a new file: a rule changes modules that exist",
        "skipped pkgfix/gone.py: the diff deletes it",
        "skipped pkgfix/logo.png: no text changes (a binary file, a rename or a mode change)",
    ]
    (rule,) = load_rule_file(str(tools.out / "pkgfix_fix.py"))
    assert parts(rule) == [("pkgfix.core", "Parser.parse", 2), ("pkgfix.core", "helper", 1),
                           ("pkgfix.tools", "Store", 1)]
    code = ("import pkgfix.core, pkgfix.tools\n"
            "print(pkgfix.core.helper(None), pkgfix.tools.Store.limit, sorted({o.status for o in astpatch.applied()}))")
    assert run(tools, code) == "None 4 ['applied']"

    only = tools.astpatch("new", "--from-diff", str(tools.diff), "--only", "pkgfix/tools.py",
                          "--only", "docs/index.rst")
    assert only.returncode == 0, only.stderr
    assert only.stderr == "skipped docs/index.rst: not a Python file\n"
    assert "module='pkgfix.tools'" in only.stdout and "pkgfix.core" not in only.stdout

    # One module no longer as the diff expects: the rule is applied in neither.
    (tools.site / "pkgfix" / "tools.py").write_text(TOOLS.replace("limit = 3", "limit = 5"))
    assert run(tools, code.replace("helper(None)", "helper(2)")) == "4 5 ['failed']"


@pytest.mark.parametrize("only, message", [
    (["docs/index.rst"], "none of its files changes an installed Python module, so there is no rule to make"),
    (["pkgfix/nothing.py"],
     "--only pkgfix/nothing.py: the diff has no such file (it has pkgfix/core.py, docs/index.rst)"),
])
def test_nothing_left_to_make_a_rule_of(project, only, message):
    project.diff.write_text(file_diff(UPSTREAM_BEFORE, UPSTREAM_AFTER, "pkgfix/core.py")
                            + file_diff("Usage\n", "Use\n", "docs/index.rst"))
    result = project.astpatch("new", "--from-diff", str(project.diff), *(a for p in only for a in ("--only", p)))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == f"astpatch: error: {project.diff}: {message}"


def test_the_diff_is_read_by_each_hunks_line_counts():
    text = ("From 0123 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] Fix it\n\n---\n pkgfix/a.py | 2 +-\n\n"
            "diff --git a/pkgfix/a.py b/pkgfix/a.py\nindex 1111111..2222222 100644\n"
            "--- a/pkgfix/a.py\n+++ b/pkgfix/a.py\n"
            "@@ -1,3 +1,3 @@\n x = 1\n--- a\n+++ b\n\n"  # removed `-- a`, added `++ b`, a blank context line
            "@@ -9 +9,2 @@ def f():\n     pass\n+    return 1\n\\ No newline at end of file\n"
            "--- pkgfix/b.py\t2024-01-01\n+++ pkgfix/b.py\t2024-01-02\n@@ -0,0 +1 @@\n+import os\n-- \n2.40.0\n")
    a, b = parse(text)
    assert (a.old, a.new, b.old, b.new) == ("pkgfix/a.py", "pkgfix/a.py", "pkgfix/b.py", "pkgfix/b.py")
    assert [h.lines for h in a.hunks] == [[(" ", "x = 1"), ("-", "-- a"), ("+", "++ b"), (" ", "")],
                                          [(" ", "    pass"), ("+", "    return 1")]]
    assert (a.hunks[1].old_start, a.hunks[1].old_count, a.hunks[1].new_start, a.hunks[1].new_count) == (9, 1, 9, 2)
    assert [h.lines for h in b.hunks] == [[("+", "import os")]]
    with pytest.raises(DiffError, match=r"pkgfix/a.py: hunk 1 \(@@ -1,3 \+1,3 @@\) ends before its last line"):
        parse(text[: text.index("\n\n@@ -9")])


def test_module_level_hunks_are_a_change_of_the_top_level(project):
    after = UPSTREAM_BEFORE.replace("import re\n", "import re\nimport textwrap\n")
    project.diff.write_text(make_diff(UPSTREAM_BEFORE, after))
    assert parts(new(project)) == [("pkgfix.core", "", 1)]
    assert patched(project) == (DRIFT + after, ["applied"])


@pytest.mark.parametrize("content, message", [
    ("this is not a diff\n", "it is not a unified diff: no '--- a/...', '+++ b/...' and '@@ ... @@' hunks found"),
    ("", "it is not a unified diff: no '--- a/...', '+++ b/...' and '@@ ... @@' hunks found"),
])
def test_not_a_diff(project, content, message):
    project.diff.write_text(content)
    result = project.astpatch("new", "--from-diff", str(project.diff))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"astpatch: error: {project.diff}: {message}"


def test_bad_arguments(project):
    missing = project.tmp / "missing.diff"
    result = project.astpatch("new", "--from-diff", str(missing))
    assert result.returncode == 2 and result.stderr.strip() == f"astpatch: error: cannot read {missing}: No such file or directory"
    result = project.astpatch("new", "--from-diff", str(project.diff), "--gate", "pkgfix>>1")
    assert result.returncode == 2 and "--gate 'pkgfix>>1'" in result.stderr and "Traceback" not in result.stderr
    result = project.astpatch("new", "--from-diff", str(project.diff), "--id", "Bad Id")
    assert result.returncode == 2 and "--id 'Bad Id' must be lower case" in result.stderr
