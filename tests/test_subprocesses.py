"""Every process patched: `astpatch run` and ASTPATCH_AUTOINSTALL reach spawned and subprocess children."""

from __future__ import annotations

import os
import sys

import pytest

from conftest import ROOT, check
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


STOPS = "astpatch: this process stops before its program runs (exit status 1): astpatch could not be installed at its "


def not_loaded(path: object) -> str:
    return f"astpatch: rule path {path} does not exist; its rules are not loaded."


@pytest.mark.parametrize("raising", ["ASTPATCH_STRICT=1", "-W error"])
def test_a_start_up_install_that_raises_stops_the_process(scene, raising):
    """ASTPATCH_AUTOINSTALL, strict (or -W error): a start-up install() that raises stops the process, exit status 1.

    It says why once, and the program does not run (`site` would print the error and run the program without astpatch).
    """
    installed_pth()
    missing = scene.tmp / "nowhere"
    python_args, env = (("-W", "error"), {}) if raising == "-W error" else ((), {"ASTPATCH_STRICT": "1"})
    result = scene.execute(*python_args, "-c", "print('the program ran')", ASTPATCH_AUTOINSTALL="1",
                           ASTPATCH_RULES=str(missing), ASTPATCH_CACHE_DIR=str(scene.cache), **env)
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    problem, stops = result.stderr.splitlines()
    assert problem == not_loaded(missing)
    assert stops.startswith(STOPS) and ("ASTPATCH_STRICT=1" in stops) == (raising == "ASTPATCH_STRICT=1"), stops
    # Neither: one warning, and the program runs without those rules.
    result = scene.execute("-c", "print('the program ran')", ASTPATCH_AUTOINSTALL="1", ASTPATCH_RULES=str(missing),
                           ASTPATCH_CACHE_DIR=str(scene.cache))
    assert check(result) == "the program ran\n" and f"AstpatchWarning: {not_loaded(missing)}" in result.stderr


CHILD = r'''
import json, os, subprocess, sys
rules = os.environ["ASTPATCH_RULES"] + os.pathsep + sys.argv[1]  # this child alone is given a rule path that is missing
child = subprocess.run([sys.executable, "-c", "print('the child ran')"], env=dict(os.environ, ASTPATCH_RULES=rules),
                       capture_output=True, text=True, timeout=120)
print(json.dumps({"returncode": child.returncode, "stdout": child.stdout, "stderr": child.stderr.splitlines()}))
'''


def test_astpatch_run_strict_stops_a_child_that_cannot_install(scene):
    """`astpatch run --strict`: a child process whose install() raises at start-up stops there, exit status 1."""
    installed_pth()
    (scene.tmp / "child.py").write_text(CHILD)
    missing = scene.tmp / "nowhere"
    data = scene.astpatch("run", "--strict", "--", str(scene.tmp / "child.py"), str(missing)).json()
    assert (data["returncode"], data["stdout"]) == (1, ""), data
    assert data["stderr"][0] == not_loaded(missing) and data["stderr"][1].startswith(STOPS) and len(data["stderr"]) == 2
    data = scene.astpatch("run", "--", str(scene.tmp / "child.py"), str(missing)).json()  # not strict: it runs
    assert (data["returncode"], data["stdout"]) == (0, "the child ran\n"), data


CHILDREN = r'''
import json, multiprocessing, subprocess, sys
import astpatch

def patched(_=None):
    import pickler
    return "ValueError" in pickler.Pickler.dumps.__code__.co_names

def install():
    return astpatch.install(rules=[sys.argv[1]], cache_dir=sys.argv[2], children=sys.argv[3] == "children")

if sys.argv[4] == "top-level":  # run again by spawned workers and the fork server, as __mp_main__
    install()

if __name__ == "__main__":
    install()
    result = {"parent": patched()}
    for method in ("spawn", "forkserver"):
        with multiprocessing.get_context(method).Pool(2) as pool:
            result[method] = pool.map(patched, range(2))
    code = "import pickler; print('ValueError' in pickler.Pickler.dumps.__code__.co_names)"
    result["subprocess"] = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout == "True\n"
    print(json.dumps(result))
'''


@pytest.mark.parametrize("where", ["main-guarded", "top-level"])
def test_install_children_gives_its_rules_and_cache_to_spawned_forkserver_and_subprocess_pythons(tmp_path, where):
    """install(rules=..., cache_dir=..., children=True) in the program, whether under `if __name__ == "__main__":`
    or not: every worker and subprocess installs astpatch with those rules, silently. Without `children`, only the
    workers that run the install() at the top of the main module again are patched."""
    installed_pth()
    scene = Scenario(tmp_path, cwd=tmp_path)
    (tmp_path / "children.py").write_text(CHILDREN)
    arguments = [str(tmp_path / "children.py"), str(scene.rule), str(scene.cache)]
    result = scene.execute(*arguments, "children", where)
    assert result.json() == {"parent": True, "spawn": [True, True], "forkserver": [True, True], "subprocess": True}
    assert result.stderr == ""
    result = scene.execute(*arguments, "alone", where)
    workers = [where == "top-level"] * 2
    assert result.json() == {"parent": True, "spawn": workers, "forkserver": workers, "subprocess": False}


ENVIRONMENT = r'''
import json, os, subprocess, sys, warnings
warnings.simplefilter("always")
import astpatch
before = dict(os.environ)
environment = astpatch.child_environment()  # not installed: what install() would use
astpatch.install(rules=[sys.argv[1]], cache_dir=sys.argv[2])
given = astpatch.child_environment()
assert dict(os.environ) == before, "install() without children, or child_environment(), changed os.environ"
code = "import pickler; print('ValueError' in pickler.Pickler.dumps.__code__.co_names)"
out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **given}).stdout
print(json.dumps({"before": environment, "given": given, "patched": out == "True\n"}))
'''


def test_child_environment_carries_the_installations_settings(tmp_path):
    """astpatch.child_environment(): the variables for an engine's own workers (Ray's runtime_env env_vars)."""
    installed_pth()
    scene = Scenario(tmp_path, cwd=tmp_path)
    (tmp_path / "environment.py").write_text(ENVIRONMENT)
    data = scene.execute(str(tmp_path / "environment.py"), str(scene.rule), "cache", ASTPATCH_STRICT="1").json()
    assert data["before"] == {"ASTPATCH_AUTOINSTALL": "1", "ASTPATCH_RULES": "", "ASTPATCH_STRICT": "1",
                              "ASTPATCH_DISABLE": "0"}
    assert data["given"] == {"ASTPATCH_AUTOINSTALL": "1", "ASTPATCH_RULES": str(scene.rule), "ASTPATCH_STRICT": "1",
                             "ASTPATCH_DISABLE": "0", "ASTPATCH_CACHE_DIR": str(scene.cache)}
    assert data["patched"] is True


def test_rules_given_as_objects_are_named_as_not_reaching_children(tmp_path):
    scene = Scenario(tmp_path, cwd=tmp_path)
    code = ("import sys, warnings; warnings.simplefilter('always'); sys.path.insert(0, sys.argv[1]); import astpatch\n"
            "from conftest import rule\nastpatch.install(rules=[rule()], cache_dir=False, children=True)\n")
    result = scene.python(code, str(ROOT / "tests"))
    check(result)
    assert result.stderr.count("AstpatchWarning") == 1 and ("the rules given to install() as Rule objects "
                                                            "(pickler-valueerror) do not reach the processes") in result.stderr


SETTINGS_ONCE = r'''
import multiprocessing, subprocess, sys

def child():
    import pickler

if __name__ == "__main__":
    import pickler
    process = multiprocessing.get_context("spawn").Process(target=child)
    process.start()
    process.join()
    subprocess.run([sys.executable, "-c", "print('no target imported')"])
'''


def test_a_settings_problem_is_said_once_by_each_process_that_imports_a_target(scene):
    """ASTPATCH_STRICT=banana under ASTPATCH_AUTOINSTALL: said by the program and its spawned worker, which import
    the target, not by the subprocess that imports none; never located at the .pth line (`<string>:1`)."""
    installed_pth()
    (scene.tmp / "once.py").write_text(SETTINGS_ONCE)
    result = scene.astpatch("run", str(scene.tmp / "once.py"), ASTPATCH_STRICT="banana")
    assert check(result) == "no target imported\n"
    said = "sys:1: AstpatchWarning: astpatch: ignoring ASTPATCH_STRICT='banana': use 1 to turn it on or 0 to turn it off."
    assert result.stderr.splitlines() == [said, said], result.stderr
