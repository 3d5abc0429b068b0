"""Every process patched: `astpatch run` and ASTPATCH_AUTOINSTALL reach spawned and subprocess children."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import PICKLER_SOURCE, RULE_FILE, clean_env

pytestmark = pytest.mark.installed  # the .pth comes with the installed distribution

SCRIPT = r'''
import json, multiprocessing, subprocess, sys

def patched():
    import pickler
    return "ValueError" in pickler.Pickler.dumps.__code__.co_names

def child(queue):
    queue.put(patched())

if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    process.start()
    spawned = queue.get(timeout=120)
    process.join(120)
    out = subprocess.run([sys.executable, "-c", "import pickler; print('ValueError' in pickler.Pickler.dumps.__code__.co_names)"],
                         capture_output=True, text=True, timeout=120).stdout.strip()
    print(json.dumps({"parent": patched(), "spawn": spawned, "subprocess": out == "True"}))
'''


@pytest.fixture
def project(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "pickler.py").write_text(PICKLER_SOURCE)
    (tmp_path / "rule.py").write_text(RULE_FILE)
    (tmp_path / "script.py").write_text(SCRIPT)

    def run(*command: str, **env: str) -> dict:
        environment = clean_env(site=site, ASTPATCH_RULES=str(tmp_path / "rule.py"),
                                ASTPATCH_CACHE_DIR=str(tmp_path / "cache"), **env)
        result = subprocess.run([sys.executable, *command], capture_output=True, text=True, env=environment,
                                cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    run.script = str(tmp_path / "script.py")  # type: ignore[attr-defined]
    return run


def installed_pth() -> str:
    import sysconfig

    path = os.path.join(sysconfig.get_paths()["purelib"], "astpatch-autoinstall.pth")
    assert os.path.exists(path), "astpatch-autoinstall.pth is not in site-packages: install astpatch (tools/test.py does)"
    return path


def test_astpatch_run_patches_spawned_and_subprocess_children(project):
    installed_pth()
    assert project("-m", "astpatch", "run", "--", project.script) == {"parent": True, "spawn": True, "subprocess": True}


def test_the_environment_switch_alone(project):
    installed_pth()
    assert project(project.script, ASTPATCH_AUTOINSTALL="1") == {"parent": True, "spawn": True, "subprocess": True}


def test_without_the_switch_nothing_is_installed(project):
    installed_pth()
    assert project(project.script) == {"parent": False, "spawn": False, "subprocess": False}
    probe = "import sys, json; print(json.dumps({'parent': 'astpatch' in sys.modules, 'spawn': None, 'subprocess': None}))"
    assert project("-c", probe)["parent"] is False  # the .pth line did not import astpatch


def test_the_pth_line_is_one_environment_lookup_when_the_switch_is_off():
    """Its cost is measured by benchmarks/run.py; here: what it does."""
    line = open(installed_pth()).read().strip()
    assert line == 'import os; os.environ.get("ASTPATCH_AUTOINSTALL") and __import__("astpatch._autoinstall")'
    namespace: dict = {}
    environment = {k: v for k, v in os.environ.items() if k != "ASTPATCH_AUTOINSTALL"}
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(environment)
        before = set(sys.modules)
        exec(line, namespace)
        assert set(sys.modules) - before == set()
    finally:
        os.environ.clear()
        os.environ.update(saved)
