"""The pytest plugin, run as a user would: pytest in a subprocess on a project the test writes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import PICKLER_SOURCE, RULE_FILE, clean_env

pytestmark = pytest.mark.installed  # the entry point and the .pth come with the installed distribution

TEST_FILE = '''
def test_dumps_is_patched():
    import pickler
    assert "ValueError" in pickler.Pickler.dumps.__code__.co_names
'''


@pytest.fixture
def project(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "pickler.py").write_text(PICKLER_SOURCE)
    (tmp_path / "rule.py").write_text(RULE_FILE)
    tests = tmp_path / "proj"
    tests.mkdir()
    (tests / "test_it.py").write_text(TEST_FILE)
    # A conftest that imports the target: the plugin must be installed before it runs.
    (tests / "conftest.py").write_text("import pickler  # noqa: F401\n")

    def pytest_run(*args: str) -> subprocess.CompletedProcess:
        env = clean_env(site=site, ASTPATCH_RULES=str(tmp_path / "rule.py"), ASTPATCH_CACHE_DIR=str(tmp_path / "cache"))
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=tests,
                              capture_output=True, text=True, env=env, timeout=300)

    pytest_run.site = site  # type: ignore[attr-defined]
    pytest_run.dir = tests  # type: ignore[attr-defined]
    return pytest_run


def test_the_plugin_is_registered_by_the_installed_distribution(project):
    result = project("--help")
    assert "--astpatch-still-needed" in result.stdout, "the pytest11 entry point is missing: is astpatch installed?"


def test_off_unless_asked_for(project):
    result = project()
    assert result.returncode == 1 and "1 failed" in result.stdout
    assert "astpatch:" not in result.stdout


def test_on_with_the_option_header_and_summary(project):
    result = project("--astpatch")
    assert result.returncode == 0, result.stdout + result.stderr
    from astpatch._rules.rulefiles import builtin_rules_dir
    from astpatch._rules.ruleset import load_rules

    assert f"astpatch: {len(load_rules([builtin_rules_dir()], print)) + 1} rules" in result.stdout
    assert "  pickler-valueerror: would apply" in result.stdout
    assert "pickler-valueerror on pickler: applied" in result.stdout
    assert "1 passed" in result.stdout


def test_on_with_the_ini_option(project):
    (project.dir / "pytest.ini").write_text("[pytest]\nastpatch = true\n")
    result = project()
    assert result.returncode == 0 and "1 passed" in result.stdout


def test_still_needed_fails_the_run_when_upstream_fixed_it(project):
    (project.site / "pickler.py").write_text(
        PICKLER_SOURCE.replace("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)"))
    assert project("--astpatch").returncode == 0
    result = project("--astpatch-still-needed")
    assert result.returncode == 1
    assert "1 passed" in result.stdout
    assert "rule pickler-valueerror is no longer needed:" in result.stdout
    assert "Delete it (" in result.stdout
