"""The pytest plugin, run as a user would: pytest in a subprocess on a project the test writes."""

from __future__ import annotations

import pytest

from conftest import PICKLER_SOURCE
from scenario import Scenario

pytestmark = pytest.mark.installed  # the entry point and the .pth come with the installed distribution

TEST_FILE = '''
def test_dumps_is_patched():
    import pickler
    assert "ValueError" in pickler.Pickler.dumps.__code__.co_names
'''


@pytest.fixture
def scene(tmp_path):
    """The scene, and a project of tests in which pytest runs, with the scene's settings."""
    tests = tmp_path / "proj"
    tests.mkdir()
    (tests / "test_it.py").write_text(TEST_FILE)
    # A conftest that imports the target: the plugin must be installed before it runs.
    (tests / "conftest.py").write_text("import pickler  # noqa: F401\n")
    return Scenario(tmp_path, cwd=tests)


def test_the_plugin_is_registered_by_the_installed_distribution(scene):
    result = scene.pytest("--help")
    assert "--astpatch-still-needed" in result.stdout, "the pytest11 entry point is missing: is astpatch installed?"


def test_off_unless_asked_for(scene):
    result = scene.pytest()
    assert result.returncode == 1 and "1 failed" in result.stdout
    assert "astpatch:" not in result.stdout


def test_on_with_the_option_header_and_summary(scene):
    result = scene.pytest("--astpatch")
    assert result.returncode == 0, result.stdout + result.stderr
    from astpatch._model.rulefiles import builtin_rules_dir
    from astpatch._model.ruleset import load_rules

    assert f"astpatch: {len(load_rules([builtin_rules_dir()], print)) + 1} rules" in result.stdout
    assert "  pickler-valueerror: would apply" in result.stdout
    assert "pickler-valueerror on pickler: applied" in result.stdout
    assert "1 passed" in result.stdout


def test_on_with_the_ini_option(scene):
    (scene.cwd / "pytest.ini").write_text("[pytest]\nastpatch = true\n")
    result = scene.pytest()
    assert result.returncode == 0 and "1 passed" in result.stdout


def test_still_needed_fails_the_run_when_upstream_fixed_it(scene):
    scene.module.write_text(
        PICKLER_SOURCE.replace("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)"))
    assert scene.pytest("--astpatch").returncode == 0
    result = scene.pytest("--astpatch-still-needed")
    assert result.returncode == 1
    assert "1 passed" in result.stdout
    assert "rule pickler-valueerror is no longer needed:" in result.stdout
    assert "Delete it (" in result.stdout
