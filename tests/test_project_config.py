"""A project's [tool.astpatch] table: read by the command line and the pytest plugin, under the
ASTPATCH_* variables, never by install()."""

from __future__ import annotations

import json
import os

import pytest

from astpatch._base import settings
from astpatch._base.projectconfig import find, read

from conftest import RULE_FILE
from scenario import Scenario

TEST_FILE = '''
def test_dumps_is_patched():
    import pickler
    assert "ValueError" in pickler.Pickler.dumps.__code__.co_names
'''

TABLE = '''\
[project]
name = "proj"

[tool.pytest.ini_options]
testpaths = ["tests"]
{ini}
[tool.astpatch]
rules = ["patches"]
cache-dir = ".astpatch-cache"
{extra}'''

OTHER_RULE = RULE_FILE.replace("pickler-valueerror", "pickler-keyerror").replace('"ValueError"', '"KeyError"')


def plugin_loaded() -> list[str]:
    """`-p` for the plugin when no installed distribution registers it (plain pytest in a checkout)."""
    from importlib.metadata import entry_points

    registered = any(ep.value == "astpatch.pytest_plugin" for ep in entry_points(group="pytest11"))
    return [] if registered else ["-p", "astpatch.pytest_plugin"]


@pytest.fixture
def project(tmp_path):
    """The target module on PYTHONPATH (no rule, no astpatch variable); a project `proj` whose
    pyproject.toml names its rules directory `patches` and a cache directory, with a test that
    passes only when the session is patched (and a conftest that imports the target early)."""
    scene = Scenario(tmp_path, rule_file=None, cwd=tmp_path / "proj")
    root = tmp_path / "proj"
    (root / "patches").mkdir(parents=True)
    (root / "patches" / "pickler_rule.py").write_text(RULE_FILE)
    (root / "tests").mkdir()
    (root / "tests" / "test_it.py").write_text(TEST_FILE)
    (root / "tests" / "conftest.py").write_text("import pickler  # noqa: F401\n")
    scene.pyproject = root / "pyproject.toml"  # type: ignore[attr-defined]
    scene.pyproject.write_text(TABLE.format(ini="", extra=""))  # type: ignore[attr-defined]
    return scene


def pytest_in(project, *args: str, **env: str):  # type: ignore[no-untyped-def]
    return project.pytest(*plugin_loaded(), *args, settings=False, **env)


def test_pytest_in_a_project_whose_pyproject_names_its_rules_patches_the_session(project):
    result = pytest_in(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout and "pickler-valueerror on pickler: applied" in result.stdout
    assert "  pickler-valueerror: would apply" in result.stdout  # the header: the table's rules
    # Its cache: the table's, relative to the pyproject.toml's directory.
    assert [p.name.split("-")[0] for p in (project.cwd / ".astpatch-cache").glob("*.astpatch")] == ["pickler"]
    # The same project without the table: the same test fails, nothing is patched.
    project.pyproject.write_text(TABLE.format(ini="", extra="").split("[tool.astpatch]")[0])
    result = pytest_in(project)
    assert result.returncode == 1 and "1 failed" in result.stdout and "astpatch:" not in result.stdout


def test_ini_astpatch_false_turns_the_plugin_off_despite_the_table(project):
    project.pyproject.write_text(TABLE.format(ini="astpatch = false", extra=""))
    result = pytest_in(project)
    assert result.returncode == 1 and "1 failed" in result.stdout
    assert pytest_in(project, "--astpatch").returncode == 0  # the option still asks for it, with the table's rules


def test_environment_variables_override_the_table_in_the_plugin(project, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    assert pytest_in(project, ASTPATCH_CACHE_DIR=str(elsewhere)).returncode == 0
    assert list(elsewhere.glob("*.astpatch")) and not (project.cwd / ".astpatch-cache").exists()
    result = pytest_in(project, ASTPATCH_DISABLE="pickler-valueerror")
    assert result.returncode == 1 and "1 failed" in result.stdout
    other = tmp_path / "other.py"
    other.write_text(OTHER_RULE)
    result = pytest_in(project, ASTPATCH_RULES=str(other))  # replaces the table's rules, as pip's variables do
    assert result.returncode == 1 and "pickler-keyerror on pickler: applied" in result.stdout
    assert "pickler-valueerror" not in result.stdout


def test_environment_variables_override_the_table_in_the_command_line(project, tmp_path):
    root = project.cwd
    project.pyproject.write_text(TABLE.format(ini="", extra='disable = ["pickler-valueerror"]\n'))

    def ids(**env: str) -> set[str]:
        return {row["id"] for row in json.loads(project.astpatch("list", "--json", settings=False, **env).stdout)}

    assert "pickler-valueerror" not in ids()
    assert "pickler-valueerror" in ids(ASTPATCH_DISABLE="0")
    other = tmp_path / "other.py"
    other.write_text(OTHER_RULE)
    assert {"pickler-keyerror"} <= ids(ASTPATCH_DISABLE="0", ASTPATCH_RULES=str(other))
    assert "pickler-valueerror" not in ids(ASTPATCH_DISABLE="0", ASTPATCH_RULES=str(other))
    assert project.astpatch("cache", "dir", settings=False).stdout.strip() == str(root / ".astpatch-cache")
    assert project.astpatch("cache", "dir", settings=False,
                            ASTPATCH_CACHE_DIR=str(tmp_path / "env-cache")).stdout.strip() == str(tmp_path / "env-cache")


def test_the_command_line_reads_the_table_from_a_subdirectory(project):
    root = project.cwd
    deeper = root / "src" / "pkg"
    deeper.mkdir(parents=True)
    # A subproject's pyproject.toml without the table does not hide the project's.
    (root / "src" / "pyproject.toml").write_text('[project]\nname = "sub"\n# astpatch is a dependency\n')
    listed = project.astpatch("list", "--json", settings=False, cwd=deeper)
    assert listed.returncode == 0, listed.stderr
    (row,) = [r for r in json.loads(listed.stdout) if r["id"] == "pickler-valueerror"]
    assert row["outcome"] == "applied" and row["origin"].startswith(str(root / "patches"))
    # Relative to the pyproject.toml's directory, not to the working directory.
    assert project.astpatch("cache", "dir", settings=False, cwd=deeper).stdout.strip() == str(root / ".astpatch-cache")
    # Outside the project, no table: the rule is unknown.
    outside = project.astpatch("list", "--json", settings=False, cwd=project.tmp)
    assert "pickler-valueerror" not in {r["id"] for r in json.loads(outside.stdout)}


def test_astpatch_run_passes_the_table_to_the_program(project):
    code = ("import os, pickler; print(os.environ['ASTPATCH_RULES'], os.environ['ASTPATCH_CACHE_DIR'], "
            "'ValueError' in pickler.Pickler.dumps.__code__.co_names)")
    result = project.astpatch("run", "--", "-c", code, settings=False)
    assert result.returncode == 0, result.stderr
    root = project.cwd
    assert result.stdout.split() == [str(root / "patches"), str(root / ".astpatch-cache"), "True"]
    # A variable that is set wins, and is passed on as it is.
    result = project.astpatch("run", "--", "-c", code, settings=False, ASTPATCH_CACHE_DIR=str(project.tmp / "c"))
    assert result.stdout.split()[1] == str(project.tmp / "c")


def test_a_broken_rule_file_the_table_names_fails_the_command(project):
    """A CI job must not stay green when a rule file of the project cannot be loaded (as with --rules);
    one that only ASTPATCH_RULES names keeps its warning."""
    broken = project.cwd / "patches" / "broken.py"
    broken.write_text("RULES = [\n")
    result = project.astpatch("check", settings=False)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert any(line.startswith(f"astpatch: error: rule file {broken} failed to load: SyntaxError")
               for line in result.stderr.splitlines()), result.stderr
    assert "pickler-valueerror" in result.stdout  # the other rules are still checked
    project.pyproject.write_text(TABLE.format(ini="", extra="").split("[tool.astpatch]")[0])
    result = project.astpatch("check", settings=False, ASTPATCH_RULES=str(broken.parent))
    assert result.returncode == 0 and f"rule file {broken} failed to load" in result.stderr


@pytest.mark.parametrize("extra, message", [
    ("rule = ['patches']\n", "has an unknown key 'rule' (known keys: rules, disable, strict, cache-dir)"),
    ("strict = 'yes'\n", "strict must be true or false, not a string ('yes')"),
    ("disable = 'pickler-valueerror'\n", "disable must be a list of rule ids (strings), not a string ('pickler-valueerror')"),
    ("cache-dir = 3\n", "cache-dir must be a path (a string), not an integer (3)"),
])
def test_a_bad_key_is_one_message_naming_the_file_and_the_key(project, extra, message):
    pyproject = project.pyproject
    pyproject.write_text(TABLE.format(ini="", extra=extra).replace('cache-dir = ".astpatch-cache"\n', ""))
    expected = f"{pyproject}: [tool.astpatch] {message}"
    result = project.astpatch("list", settings=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"astpatch: error: {expected}"]
    # The plugin: a warning, and the other settings apply; in strict mode, a usage error.
    result = pytest_in(project)
    assert result.returncode == 0 and f"AstpatchWarning: astpatch: {expected}; the rest of the table applies" in result.stdout
    result = pytest_in(project, ASTPATCH_STRICT="1")
    assert result.returncode == 4 and f"ERROR: astpatch: {expected} (strict mode" in result.stderr


def test_a_file_that_is_not_toml_and_a_rule_path_that_does_not_exist(project):
    project.pyproject.write_text("[tool.astpatch\n")
    result = project.astpatch("cache", "dir", settings=False)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"astpatch: error: {project.pyproject} is not valid TOML: ")
    project.pyproject.write_text('[tool.astpatch]\nrules = ["patches", "missing"]\n')
    result = project.astpatch("list", settings=False)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"astpatch: error: {project.pyproject}: [tool.astpatch] rules: {project.cwd / 'missing'} does not exist"]


def test_install_reads_no_project_configuration(project):
    """install() keeps its start-up: the table is not read, nor a TOML parser imported."""
    result = project.python("""
        import sys, astpatch
        handle = astpatch.install(cache_dir=False)
        print(sorted(m for m in sys.modules if m.endswith("projectconfig") or m in ("tomllib", "tomli")))
        print("pickler-valueerror" in [r.id for r in handle.rules])
    """, settings=False)
    assert result.stdout.split("\n")[:2] == ["[]", "False"], result.stderr


def test_the_table_becomes_the_variables_values(tmp_path):
    """In-process: paths resolved against the file's directory, `~` expanded, values in the variables' syntax."""
    (tmp_path / "patches").mkdir()
    (tmp_path / "one.py").write_text("")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.astpatch]\nrules = ["patches", "./one.py"]\ndisable = [" a ", "b"]\n'
                         'strict = false\ncache-dir = "~/somewhere"\n')
    project = read(str(pyproject))
    assert project is not None and project.problems == []
    assert project.values == {
        settings.RULES: os.pathsep.join([str(tmp_path / "patches"), str(tmp_path / "one.py")]),
        settings.DISABLE: "a,b", settings.STRICT: "0",
        settings.CACHE_DIR: os.path.join(os.path.expanduser("~"), "somewhere"),
    }
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find(str(tmp_path / "a" / "b")).path == str(pyproject)  # type: ignore[union-attr]
    pyproject.write_text('[tool.other]\nx = "astpatch"\n')
    assert read(str(pyproject)) is None


def test_one_precedence_variables_then_table_then_defaults(monkeypatch):
    table = {settings.STRICT: "1", settings.DISABLE: "x,y", settings.CACHE_DIR: "/from/table"}
    for name in (settings.STRICT, settings.DISABLE, settings.CACHE_DIR, settings.NO_CACHE):
        monkeypatch.delenv(name, raising=False)
    assert settings.flag(settings.STRICT) is False
    previous = settings.use_project(table)
    try:
        assert settings.flag(settings.STRICT) is True
        assert settings.disabled().rule_ids == {"x", "y"}
        assert settings.cache_directory(None) == "/from/table"
        assert settings.cache_directory("/argument") == "/argument"  # install(cache_dir=...) still wins
        monkeypatch.setenv(settings.STRICT, "0")
        monkeypatch.setenv(settings.DISABLE, "z")
        monkeypatch.setenv(settings.CACHE_DIR, "/from/env")
        assert settings.flag(settings.STRICT) is False and settings.disabled().rule_ids == {"z"}
        assert settings.cache_directory(None) == "/from/env"
        assert settings.not_overridden(table) == {}
        monkeypatch.setenv(settings.CACHE_DIR, "  ")  # set but empty: not set
        assert settings.not_overridden(table) == {settings.CACHE_DIR: "/from/table"}
    finally:
        settings.use_project(previous)
    assert settings.cache_directory(None) == settings.default_cache_directory()

