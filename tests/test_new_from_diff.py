"""`astpatch new --from-diff`: rules from an upstream diff, applied where lines have drifted."""

from __future__ import annotations

import difflib
import json

import pytest

from scenario import Scenario

UPSTREAM_BEFORE = '''\
import re


class Parser:
    """Parses numbers."""

    def parse(self, text):
        text = text.strip()
        if not text:
            return None
        # step one
        a = 1
        # step two
        b = 2
        # step three
        c = 3
        # step four
        d = 4
        # step five
        value = int(text)
        return value

    def other(self):
        return "unchanged"


def helper(x):
    return x * 2
'''

# Upstream's fix: two hunks in Parser.parse, one in helper.
UPSTREAM_AFTER = (UPSTREAM_BEFORE
                  .replace("        text = text.strip()\n", "        text = text.strip().replace('_', '')\n")
                  .replace("        value = int(text)\n", "        value = int(text, 0)\n")
                  .replace("    return x * 2\n", "    return x * 2 if x is not None else None\n"))

# The installed release: the same functions, lower in the file (the lines drifted).
DRIFT = "# A release with more at the top.\nimport os\nimport sys\n\n\nVERSION = '1.0'\n"


def make_diff(before: str, after: str, path: str = "pkgfix/core.py") -> str:
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{path}", f"b/{path}"))


class Project(Scenario):
    """A package `pkgfix` 1.0 installed (no rule yet: `out` is where `new -o` writes them), upstream's diff."""

    def __init__(self, tmp_path, installed: str):
        super().__init__(tmp_path, source=None, rule_file=None, dist="pkgfix", version="1.0", cwd=tmp_path)
        self.write("pkgfix.core", installed)
        self.diff = tmp_path / "fix.diff"
        self.diff.write_text(make_diff(UPSTREAM_BEFORE, UPSTREAM_AFTER))
        self.out = tmp_path / "rules"


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path, DRIFT + UPSTREAM_BEFORE)


def test_a_rule_per_function_written_and_applied_where_lines_drifted(project):
    made = project.astpatch("new", "--from-diff", str(project.diff), "--id", "pkgfix-parse", "--gate", "pkgfix>=1",
                            "--upstream", "pkgfix PR 12, released in 1.1", "-o", str(project.out))
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == f"wrote {project.out / 'pkgfix_parse.py'}: pkgfix-parse-1, pkgfix-parse-2"
    text = (project.out / "pkgfix_parse.py").read_text()
    assert "target='Parser.parse'" in text and "target='helper'" in text and "gate='pkgfix>=1'" in text

    listed = json.loads(project.astpatch("list", "--json", "--rules", str(project.out)).stdout)
    states = {r["id"]: (r["target"], r["outcome"]) for r in listed if r["id"].startswith("pkgfix")}
    assert states == {"pkgfix-parse-1": ("Parser.parse", "applied"), "pkgfix-parse-2": ("helper", "applied")}

    # The diff astpatch makes on the installed (drifted) file is upstream's diff, moved down.
    diff = project.astpatch("diff", "--rules", str(project.out), "pkgfix.core").stdout
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    expected = [line for line in make_diff(UPSTREAM_BEFORE, UPSTREAM_AFTER).splitlines()
                if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == expected
    upstream_start = int(make_diff(UPSTREAM_BEFORE, UPSTREAM_AFTER).split("@@ -")[1].split(",")[0])
    assert f"@@ -{upstream_start + DRIFT.count(chr(10))}," in diff  # the same hunk, moved down by the drift

    code = (f"import astpatch; astpatch.install(rules=[{str(project.out)!r}]); from pkgfix.core import Parser, helper; "
            "print(Parser().parse(' 0x1_0 '), helper(None), [o.status for o in astpatch.applied()])")
    result = project.python(code, settings=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "16 None ['applied', 'applied']"


def test_printed_when_no_output_directory(project):
    made = project.astpatch("new", "--from-diff", str(project.diff))
    assert made.returncode == 0, made.stderr
    assert "id='core-parser-parse-from-diff'" in made.stdout and "id='core-helper-from-diff'" in made.stdout
    compile(made.stdout, "rule.py", "exec")  # a valid rule file


def test_already_fixed_where_the_diffs_result_is_present(project):
    project.astpatch("new", "--from-diff", str(project.diff), "--id", "pkgfix-parse", "-o", str(project.out))
    (project.site / "pkgfix" / "core.py").write_text(DRIFT + UPSTREAM_AFTER)
    listed = json.loads(project.astpatch("list", "--json", "--rules", str(project.out)).stdout)
    assert {r["id"]: r["outcome"] for r in listed if r["id"].startswith("pkgfix")} == {
        "pkgfix-parse-1": "already-fixed", "pkgfix-parse-2": "already-fixed"}


def test_a_hunk_that_no_longer_applies_is_named(project):
    project.astpatch("new", "--from-diff", str(project.diff), "--id", "pkgfix-parse", "--gate", "pkgfix>=1",
                     "-o", str(project.out))
    (project.site / "pkgfix" / "core.py").write_text(DRIFT + UPSTREAM_BEFORE.replace("        # step four\n", "        # step 4\n"))
    result = project.astpatch("check", "--rules", str(project.out), "--rule", "pkgfix-parse-1", "-v")
    assert result.returncode == 1
    assert ("pkgfix-parse-1 @ pkgfix 1.0: failed: the edit does not apply: hunk 2 (@@ -17,7 +17,7 @@): "
            "its first line, '# step four', is not in Parser.parse") in result.stdout


def test_module_level_hunks_are_refused(project):
    project.diff.write_text(make_diff(UPSTREAM_BEFORE, UPSTREAM_BEFORE.replace("import re\n", "import re\nimport os\n")))
    result = project.astpatch("new", "--from-diff", str(project.diff))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"astpatch: error: {project.diff}: pkgfix/core.py: hunk 1 (@@ -1,4 +1,5 @@): it "
                                     "changes module-level code (lines 7-8 of "
                                     f"{project.site / 'pkgfix' / 'core.py'}), outside any function; "
                                     "astpatch rules edit functions only")


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
