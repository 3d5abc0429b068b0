"""`astpatch edit` and `astpatch commit`: edit a copy of an installed package, commit one rule, and
`astpatch check` after an upgrade says whether it still applies, is upstream, or conflicts."""

from __future__ import annotations

import difflib
import json
import tempfile
import zipfile
from pathlib import Path

import pytest

from astpatch._inspect import workcopy
from astpatch._model.rulefiles import load_rule_file

from scenario import Scenario

INIT = 'LIMIT = 3\n'

CORE = '''\
"""Core."""

import os


class Parser:
    """Parses."""

    sep = ","

    def parse(self, text):
        words = text.split(self.sep)
        return words

    def count(self, text):
        return len(self.parse(text))


def helper(x):
    return x * 2


def home():
    return os.sep
'''

# The user's change: module-level code (an import, a constant, a new function), a class attribute,
# a method, a function, and a constant of a second module.
EDITED_CORE = (CORE
               .replace("import os\n", "import os\nimport re\n\nDEFAULT_SEP = \";\"\n")
               .replace('    sep = ","\n', "    sep = DEFAULT_SEP\n    strip = True\n")
               .replace("        words = text.split(self.sep)\n",
                        "        words = re.split(re.escape(self.sep), text)\n"
                        "        if self.strip:\n"
                        "            words = [w.strip() for w in words]\n")
               .replace("    return x * 2\n", "    return x * 3\n")
               + '\n\ndef added():\n    return "new"\n')
EDITED_INIT = "LIMIT = 4\n"

# What the module does, printed as JSON: the same program for the patched import and the plain copy.
BEHAVIOUR = '''
import json, pkgx, pkgx.core as core
print(json.dumps({"limit": pkgx.LIMIT, "parse": core.Parser().parse("a; b,c"), "count": core.Parser().count("x;y"),
                  "helper": core.helper(2), "added": core.added() if hasattr(core, "added") else None}))
'''

RULE_ID = "pkgx-patch"


class Project(Scenario):
    """The distribution `pkgx_dist` 1.0 installs the package `pkgx` (two modules); commands run in tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path, source=None, rule_file=None, dist="pkgx_dist", version="1.0", cwd=tmp_path)
        self.install("1.0", INIT, CORE)
        self.work = tmp_path / "work"
        self.rules_dir = tmp_path / "astpatch_rules"  # commit's default, in the current directory

    def install(self, version: str, init: str, core: str) -> None:
        self.write("pkgx.core", core)
        (self.site / "pkgx" / "__init__.py").write_text(init)
        dist = self.install_dist(version)
        (dist / "top_level.txt").write_text("pkgx\n")
        (dist / "RECORD").write_text(f"pkgx/__init__.py,,\npkgx/core.py,,\n{dist.name}/METADATA,,\n../../bin/pkgx,,\n")

    def edit_copy(self, work: Path | None = None) -> None:
        work = work or self.work
        (work / "pkgx" / "core.py").write_text(EDITED_CORE)
        (work / "pkgx" / "__init__.py").write_text(EDITED_INIT)

    def rule_file(self) -> Path:
        return self.rules_dir / "pkgx_patch.py"


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path)


def ok(result) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def committed(project: Project, work: Path | None = None, *args: str) -> str:
    """Edit (unless `work` was made already), change the copy, commit; what commit printed."""
    if work is None:
        ok(project.astpatch("edit", "pkgx", "--dir", str(project.work)))
        project.edit_copy()
    return ok(project.astpatch("commit", str(work or project.work), "--upstream", "pkgx issue 7", *args))


def wheel(project: Project, version: str, init: str, core: str) -> Path:
    path = project.tmp / f"pkgx_dist-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("pkgx/__init__.py", init)
        z.writestr("pkgx/core.py", core)
        z.writestr(f"pkgx_dist-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: pkgx_dist\nVersion: {version}\n\n")
    return path


def test_edit_copies_the_installed_modules_and_records_what_they_were_made_from(project):
    out = ok(project.astpatch("edit", "pkgx", "--dir", str(project.work))).splitlines()
    assert out[0] == str(project.work)  # the first line is the work directory, for scripts
    assert out[-1] == f"Edit them with any editor, then write the rule: astpatch commit {project.work}"
    for name in ("__init__.py", "core.py"):
        assert (project.work / "pkgx" / name).read_bytes() == (project.site / "pkgx" / name).read_bytes()
    record = json.loads((project.work / workcopy.RECORD).read_text())
    assert (record["distribution"], record["version"]) == ("pkgx_dist", "1.0")
    import hashlib

    assert {f["module"]: f["sha256"] for f in record["files"]} == {
        m: hashlib.sha256((project.site / p).read_bytes()).hexdigest()
        for m, p in (("pkgx", "pkgx/__init__.py"), ("pkgx.core", "pkgx/core.py"))}
    # A distribution's name (not a module) gives the modules it installs.
    other = project.tmp / "by-dist"
    ok(project.astpatch("edit", "pkgx_dist", "--dir", str(other)))
    assert sorted(f["module"] for f in json.loads((other / workcopy.RECORD).read_text())["files"]) == ["pkgx", "pkgx.core"]
    # By default, a new temporary directory.
    made = Path(ok(project.astpatch("edit", "pkgx.core")).splitlines()[0])
    assert made.parent == Path(tempfile.gettempdir()).resolve() or made.parent == Path(tempfile.gettempdir())
    assert (made / "pkgx" / "core.py").read_text() == CORE and not (made / "pkgx" / "__init__.py").exists()


def test_the_committed_rule_applies_at_import_and_diff_shows_the_users_change(project):
    out = committed(project)
    rule_path = project.rule_file()
    assert out.splitlines()[0] == f"wrote {rule_path.relative_to(project.tmp)}: {RULE_ID}"
    (rule,) = load_rule_file(str(rule_path))
    assert rule.gate == "pkgx_dist>=1.0,<1.1" and rule.written_for == "pkgx_dist 1.0"
    assert rule.upstream == "pkgx issue 7"
    assert {(c.module, c.scope) for c in rule.changes} == {
        ("pkgx", ""), ("pkgx.core", ""), ("pkgx.core", "Parser"), ("pkgx.core", "Parser.parse"), ("pkgx.core", "helper")}
    # A fresh process imports the modules: the text astpatch runs is the edited copy's, and the
    # modules behave as the edited copy does when imported plainly.
    program = f'''
import astpatch, json
astpatch.install(rules=[{str(project.rules_dir)!r}], cache_dir={str(project.cache)!r})
import pkgx, pkgx.core
from astpatch._base.lines import patched_source
from astpatch._hook.finder import SHOWN
print(json.dumps({{m.__name__: patched_source(*SHOWN[m.__file__]) for m in (pkgx, pkgx.core)}}))
print(json.dumps([[o.rule_id, o.status] for o in astpatch.applied()]))
''' + BEHAVIOUR
    lines = ok(project.python(program)).splitlines()
    assert json.loads(lines[0]) == {"pkgx": EDITED_INIT, "pkgx.core": EDITED_CORE}
    assert json.loads(lines[1]) == [[RULE_ID, "applied"], [RULE_ID, "applied"]]
    plain = ok(project.python(f"import sys; sys.path.insert(0, {str(project.work)!r})\n" + BEHAVIOUR))
    assert json.loads(lines[2]) == json.loads(plain) and json.loads(plain)["added"] == "new"
    # `astpatch diff` shows the user's change: the diff from the installed files to the copy.
    expected = "".join(
        "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"{path} (upstream)",
                                     f"{path} (astpatch)"))
        for path, before, after in ((project.site / "pkgx" / "__init__.py", INIT, EDITED_INIT),
                                    (project.site / "pkgx" / "core.py", CORE, EDITED_CORE)))
    assert ok(project.astpatch("diff", "--rules", str(project.rules_dir), RULE_ID)) == expected
    assert expected in out  # commit shows the same diff


def test_check_after_an_upgrade_says_applies_upstream_or_conflicts(project):
    committed(project)
    drifted = wheel(project, "1.0.1", INIT, "# more at the top\n\n" + CORE)  # inside the gate, lines moved
    fixed = wheel(project, "1.1", EDITED_INIT, EDITED_CORE)  # upstream made the same change
    same = wheel(project, "1.2", INIT, CORE)  # outside the gate, the edit would still apply
    rewritten = CORE.replace("text.split(self.sep)", "text.split(self.sep, -1)")
    conflicting = wheel(project, "2.0", INIT, rewritten)  # outside the gate, the lines the change edits differ
    against = [a for path in (drifted, fixed, same, conflicting) for a in ("--against", str(path))]
    result = project.astpatch("check", "--rules", str(project.rules_dir), "--rule", RULE_ID, *against, "--json")
    data = json.loads(ok(result))
    assert data["written_for"] == {RULE_ID: "pkgx_dist 1.0"}
    results = [c["results"][RULE_ID] for c in data["columns"]]
    assert [(r["outcome"], r["verdict"], r["version"]) for r in results] == [
        ("applied", "applies", "1.0.1"), ("already-fixed", "upstream", "1.1"),
        ("not-applicable", "outside-gate", "1.2"), ("not-applicable", "conflicts", "2.0")]
    assert results[2]["without_gate"]["outcome"] == "applied"
    assert results[3]["without_gate"]["outcome"] == "failed"
    assert "split(self.sep)" in results[3]["without_gate"]["reason"]
    text = ok(project.astpatch("check", "--rules", str(project.rules_dir), "--rule", RULE_ID, *against)).splitlines()
    assert text[1].split() == [RULE_ID, "applied", "already-fixed", "not-applicable", "not-applicable"]
    assert text[3].split() == ["verdict", "written", "for", *"pkgx_dist 1.0.1 pkgx_dist 1.1 pkgx_dist 1.2 pkgx_dist 2.0".split()]
    assert [cell.strip() for cell in text[4].split("  ") if cell.strip()] == [
        RULE_ID, "pkgx_dist 1.0", "still applies", "upstream: delete it", "outside its gate", "conflicts: re-edit it"]
    assert f"re-edit {RULE_ID}: astpatch edit --rule {RULE_ID}, change the copy, then astpatch commit DIR" in text
    # Inside the gate, a conflict is a stale rule too: exit 1.
    inside = wheel(project, "1.0.2", INIT, rewritten)
    result = project.astpatch("check", "--rules", str(project.rules_dir), "--rule", RULE_ID, "--against", str(inside))
    assert result.returncode == 1 and "conflicts: re-edit it" in result.stdout and "1 stale" in result.stdout


def test_after_an_upgrade_past_the_gate_check_says_the_rule_does_nothing(project):
    committed(project)
    project.install("1.1", INIT, "# 1.1\n" + CORE)
    result = project.astpatch("check", "--rules", str(project.rules_dir), "--rule", RULE_ID)
    assert result.returncode == 0
    assert result.stdout.splitlines()[4].split() == [RULE_ID, "pkgx_dist", "1.0", "outside", "its", "gate"]
    assert (f"{RULE_ID} does nothing on the installed release (outside its gate pkgx_dist>=1.0,<1.1) though its edit "
            "still applies") in result.stdout


def test_edit_a_rules_result_and_commit_rewrites_its_file(project):
    committed(project)
    again = project.tmp / "again"
    ok(project.astpatch("edit", "--rule", RULE_ID, "--dir", str(again)))  # found in ./astpatch_rules
    assert (again / "pkgx" / "core.py").read_text() == EDITED_CORE  # the patched text
    assert (again / "pkgx" / "__init__.py").read_text() == EDITED_INIT
    (again / "pkgx" / "core.py").write_text(EDITED_CORE.replace("x * 3", "x * 4"))
    out = committed(project, again)
    assert out.splitlines()[0] == f"wrote {project.rule_file()}: {RULE_ID}"
    assert sorted(p.name for p in project.rules_dir.iterdir()) == ["pkgx_patch.py"]
    (rule,) = load_rule_file(str(project.rule_file()))
    assert (rule.gate, rule.written_for) == ("pkgx_dist>=1.0,<1.1", "pkgx_dist 1.0")
    diff = json.loads(ok(project.astpatch("diff", "--rules", str(project.rules_dir), RULE_ID, "--json")))
    assert "+    return x * 4\n" in diff[1]["diff"]
    # An upgrade rewrote the lines the rule changes: check says conflicts; the re-edit starts from the
    # installed text (said on stderr), and the new rule is gated to the installed release series.
    rewritten = CORE.replace("text.split(self.sep)", "text.split(self.sep, -1)")
    project.install("1.1", INIT, rewritten)
    checked = project.astpatch("check", "--rules", str(project.rules_dir), "--rule", RULE_ID)
    assert "conflicts: re-edit it" in checked.stdout
    third = project.tmp / "third"
    result = project.astpatch("edit", "--rule", RULE_ID, "--dir", str(third))
    assert f"rule {RULE_ID} is failed on the installed pkgx.core" in ok(result) + result.stderr
    assert (third / "pkgx" / "core.py").read_text() == rewritten
    (third / "pkgx" / "core.py").write_text(rewritten.replace("x * 2", "x * 5"))
    committed(project, third)
    (rule,) = load_rule_file(str(project.rule_file()))
    assert (rule.id, rule.gate, rule.written_for) == (RULE_ID, "pkgx_dist>=1.1,<1.2", "pkgx_dist 1.1")
    assert ok(project.python(f"import astpatch; astpatch.install(rules=[{str(project.rules_dir)!r}]); "
                             "import pkgx.core; print(pkgx.core.helper(1))")).strip() == "5"


def test_commit_refuses_when_the_installed_source_changed_since_edit(project):
    ok(project.astpatch("edit", "pkgx", "--dir", str(project.work)))
    project.edit_copy()
    project.install("1.0.1", INIT, CORE + "\n# a fix in 1.0.1\n")
    result = project.astpatch("commit", str(project.work))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"astpatch: error: the installed source of pkgx.core ({project.site / 'pkgx' / 'core.py'}) changed since the "
        f"copy in {project.work} was made from pkgx_dist 1.0, now pkgx_dist 1.0.1: redo the change on a new copy "
        "(astpatch edit); the old copy is left as it is")
    assert not project.rules_dir.exists()
    assert (project.work / "pkgx" / "core.py").read_text() == EDITED_CORE


def test_work_directories_and_rule_files_are_not_overwritten_by_mistake(project):
    project.work.mkdir()
    (project.work / "notes.txt").write_text("mine")
    result = project.astpatch("edit", "pkgx", "--dir", str(project.work))
    assert result.returncode == 2 and "is not empty; choose another --dir, or give --force" in result.stderr
    ok(project.astpatch("edit", "pkgx", "--dir", str(project.work), "--force"))
    assert (project.work / "notes.txt").read_text() == "mine"  # other files left alone
    nothing = project.astpatch("commit", str(project.work))
    assert nothing.returncode == 2 and "nothing to commit" in nothing.stderr
    not_work = project.astpatch("commit", str(project.tmp))
    assert not_work.returncode == 2 and f"{project.tmp} is not a work directory of `astpatch edit`" in not_work.stderr
    project.edit_copy()
    (project.work / "pkgx" / "new.py").write_text("X = 1\n")
    out = project.astpatch("commit", str(project.work))
    assert "skipped pkgx/new.py is not a copy of an installed module" in ok(out) + out.stderr
    again = project.astpatch("commit", str(project.work))
    assert again.returncode == 2 and "pkgx_patch.py exists; give another --id, or --force" in again.stderr
    ok(project.astpatch("commit", str(project.work), "--force"))
    other = project.astpatch("commit", str(project.work), "--id", RULE_ID, "-o", str(project.tmp / "other"))
    assert other.returncode == 2 and f"rule id {RULE_ID} is already defined by" in other.stderr
    ok(project.astpatch("commit", str(project.work), "--id", "pkgx-other", "--no-gate", "-o", str(project.tmp / "other")))
    (rule,) = load_rule_file(str(project.tmp / "other" / "pkgx_other.py"))
    assert rule.gate is None and rule.written_for == "pkgx_dist 1.0"


def test_verify_names_where_a_rule_does_not_give_the_copy(project, monkeypatch):
    """commit's safety net: the rule it writes must give the edited copy, or it is not written."""
    committed(project)
    (rule,) = load_rule_file(str(project.rule_file()))
    monkeypatch.syspath_prepend(str(project.site))
    ok(project.astpatch("edit", "pkgx", "--dir", str(project.tmp / "w2")))
    (project.tmp / "w2" / "pkgx" / "core.py").write_text(EDITED_CORE.replace("x * 3", "x * 9"))
    (project.tmp / "w2" / "pkgx" / "__init__.py").write_text(EDITED_INIT)
    problems, _ = workcopy.verify(rule, workcopy.edited(str(project.tmp / "w2")))
    assert problems == ["pkgx.core: the rule's result differs from the copy from line 26 on (the rule gives "
                        "'    return x * 3\\n', the copy has '    return x * 9\\n')"]
    (project.tmp / "w2" / "pkgx" / "core.py").write_text(EDITED_CORE)
    assert workcopy.verify(rule, workcopy.edited(str(project.tmp / "w2")))[0] == []


@pytest.mark.parametrize("version, series", [
    ("2.10.0", ">=2.10,<2.11"), ("2.10.0a0+git1234", ">=2.10,<2.11"), ("2.10.3.post1", ">=2.10,<2.11"),
    ("0.4.2", ">=0.4,<0.5"), ("3", ">=3,<4"), ("2024.1.15", ">=2024.1,<2024.2")])
def test_the_release_series_gate(version, series):
    """The gate selects the releases with the version's first two numbers, as gates compare them."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    from astpatch._model.gate import evaluate

    gate = workcopy.release_series("dist", version)
    assert gate == f"dist{series}"
    release = Version(version).release + (0,)
    for candidate, inside in ((version, True), (f"{release[0]}.{release[1] + 1}" if len(Version(version).release) > 1
                                                else f"{release[0] + 1}", False)):
        assert evaluate("dist", series, candidate).selected is inside
        assert SpecifierSet(series).contains(Version(candidate).base_version) is inside


def test_rule_files_keep_written_for_out_of_the_fingerprint():
    """written_for is provenance: it does not change the code a rule makes, so not its cache key."""
    from conftest import rule

    assert rule(written_for="pickledist 1.0").fingerprint() == rule().fingerprint()
    assert rule(written_for=" pickledist 1.0 ").written_for == "pickledist 1.0"
    from astpatch import RuleError

    with pytest.raises(RuleError, match="written_for must be one line"):
        rule(written_for="a\nb")


def test_edit_a_rule_that_is_not_a_users_file_is_refused(project):
    result = project.astpatch("edit", "--rule", "torch-fxgraph-cache-key-valueerror")
    assert result.returncode == 2 and "not a rule file of yours" in result.stderr
    assert project.astpatch("edit").returncode == 2
    missing = project.astpatch("edit", "no_such_module_here")
    assert missing.returncode == 2
    assert "no_such_module_here is neither an installed module" in missing.stderr



def test_commit_writes_into_the_projects_rule_directory_and_both_commands_speak_json(project):
    """With `[tool.astpatch] rules` in the project's pyproject.toml, commit writes the rule where the
    project loads rules from, so `astpatch diff` in the project shows it with no --rules."""
    (project.tmp / "pyproject.toml").write_text('[tool.astpatch]\nrules = ["patches"]\n')
    (project.tmp / "patches").mkdir()
    edit = json.loads(ok(project.astpatch("edit", "pkgx", "--dir", str(project.work), "--json")))
    assert edit == {"directory": str(project.work), "distribution": "pkgx_dist", "version": "1.0", "rule": None,
                    "files": [{"module": "pkgx", "path": str(project.work / "pkgx" / "__init__.py")},
                              {"module": "pkgx.core", "path": str(project.work / "pkgx" / "core.py")}]}
    project.edit_copy()
    commit = json.loads(ok(project.astpatch("commit", str(project.work), "--upstream", "pkgx issue 7", "--json")))
    written = project.tmp / "patches" / "pkgx_patch.py"
    assert Path(commit["file"]).resolve() == written.resolve() and not project.rules_dir.exists()
    (rule,) = load_rule_file(str(written))
    assert (commit["rule"], commit["gate"], commit["written_for"], commit["upstream"]) == (
        rule.id, rule.gate, rule.written_for, rule.upstream) == (RULE_ID, "pkgx_dist>=1.0,<1.1", "pkgx_dist 1.0",
                                                                 "pkgx issue 7")
    shown = ok(project.astpatch("diff", RULE_ID))
    assert shown == "".join(commit["diff"]) and "+LIMIT = 4" in shown
