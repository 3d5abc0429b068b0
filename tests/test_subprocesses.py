"""Every process patched: `astpatch run` and ASTPATCH_AUTOINSTALL reach spawned and subprocess children."""

from __future__ import annotations

import os
import sys

import pytest

from scenario import Scenario

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
def scene(tmp_path):
    """The scene with SCRIPT beside it; programs run in tmp_path with the scene's settings in their environment."""
    (tmp_path / "script.py").write_text(SCRIPT)
    return Scenario(tmp_path, cwd=tmp_path)


def script(scene: Scenario) -> str:
    return str(scene.tmp / "script.py")


def installed_pth() -> str:
    import sysconfig

    path = os.path.join(sysconfig.get_paths()["purelib"], "astpatch-autoinstall.pth")
    assert os.path.exists(path), "astpatch-autoinstall.pth is not in site-packages: install astpatch (tools/test.py does)"
    return path


def test_astpatch_run_patches_spawned_and_subprocess_children(scene):
    installed_pth()
    assert scene.astpatch("run", "--", script(scene)).json() == {"parent": True, "spawn": True, "subprocess": True}


def test_the_environment_switch_alone(scene):
    installed_pth()
    assert scene.execute(script(scene), settings=True, ASTPATCH_AUTOINSTALL="1").json() == {
        "parent": True, "spawn": True, "subprocess": True}


def test_without_the_switch_nothing_is_installed(scene):
    installed_pth()
    assert scene.execute(script(scene), settings=True).json() == {"parent": False, "spawn": False, "subprocess": False}
    probe = "import sys, json; print(json.dumps({'parent': 'astpatch' in sys.modules, 'spawn': None, 'subprocess': None}))"
    assert scene.python(probe, settings=True).json()["parent"] is False  # the .pth line did not import astpatch


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
