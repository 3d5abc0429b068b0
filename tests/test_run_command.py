"""`astpatch run PROGRAM`: what `python PROGRAM` (or the command PROGRAM) does, with every Python process patched.

The oracle is the same program run without astpatch: the same output, errors, tracebacks and exit status, except
that the target module is patched. Each case runs in two virtual environments that find the astpatch under test: one
with astpatch-autoinstall.pth in its site-packages (as an installed astpatch has), one without (a checkout).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import astpatch

from conftest import ROOT
from scenario import Scenario

PTH = "astpatch-autoinstall.pth"


def make_venv(root: Path, with_pth: bool) -> Path:
    """A venv (no pip) whose site-packages reaches the astpatch under test, libcst and packaging; with its .pth or not."""
    venv = root / ("installed" if with_pth else "bare")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    under_test = root / "under-test"
    if not under_test.exists():
        under_test.mkdir()
        package = Path(astpatch.__file__).resolve().parent
        (under_test / "astpatch").symlink_to(package, target_is_directory=True)
        if not (package / "rules").is_dir():  # a checkout: the shipped rules are beside the package
            (under_test / "rules").symlink_to(package.parent / "rules", target_is_directory=True)
    # Named to come before astpatch-autoinstall.pth: site runs .pth files in the order of their names.
    (purelib / "_test_environment.pth").write_text(f"{under_test}\n{sysconfig.get_paths()['purelib']}\n")
    if with_pth:
        shutil.copy(ROOT / PTH, purelib / PTH)
    return python


@pytest.fixture(scope="module")
def pythons(tmp_path_factory):
    root = tmp_path_factory.mktemp("run-venvs")
    return {"installed": make_venv(root, True), "bare": make_venv(root, False)}


@pytest.fixture(params=["installed", "bare"])
def setup(request, pythons, tmp_path):
    """(scene, python, its environment, with_pth): programs run in tmp_path, the venv's bin first on PATH."""
    python = pythons[request.param]
    scene = Scenario(tmp_path, cwd=tmp_path)
    env = scene.env(**scene.settings(), PATH=f"{tmp_path / 'bin'}{os.pathsep}{python.parent}{os.pathsep}{os.environ['PATH']}")
    return scene, python, env, request.param == "installed"


def run(python: Path, args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None) -> tuple:
    done = subprocess.run([str(python), *args], capture_output=True, text=True, env=env, cwd=cwd, input=stdin,
                          timeout=300)
    return done.returncode, done.stdout, done.stderr


MISSING = "astpatch: astpatch-autoinstall.pth is not in this Python's site-packages ("

# What python tells a program about how it was started, whether it is patched, and a traceback through two frames.
PROBE = r'''
import json, sys, __main__
import pickler
def fail():
    raise ValueError("from the program")
state = {name: repr(getattr(__main__, name, "-")) for name in ("__file__", "__cached__", "__package__")}
state.update(spec=getattr(__main__.__spec__, "name", None), loader=type(__main__.__loader__).__name__,
             argv=sys.argv, path0=sys.path[0], names=sorted(vars(__main__)), orig=sys.orig_argv[1:])
print(json.dumps(state))
print("patched" if "ValueError" in pickler.Pickler.dumps.__code__.co_names else "upstream")
if sys.argv[-1] == "fail":
    fail()
raise SystemExit(3)
'''


def write_programs(tmp: Path) -> None:
    (tmp / "prog.py").write_text(PROBE)
    (tmp / "progmod.py").write_text(PROBE)
    (tmp / "app").mkdir()
    (tmp / "app" / "__main__.py").write_text(PROBE)
    with zipfile.ZipFile(tmp / "app.zip", "w") as archive:
        archive.writestr("__main__.py", PROBE)


CASES = {
    "script": ["prog.py", "a", "fail"],
    "module": ["-m", "progmod", "x"],
    "code": ["-c", PROBE, "z", "fail"],
    "directory": ["app", "fail"],
    "zip": ["app.zip", "b"],
    "options first": ["-X", "utf8", "-W", "ignore", "-u", "-m", "progmod", "fail"],
    "stdin": ["-", "s"],
}


@pytest.mark.parametrize("case", CASES)
def test_a_python_program_runs_as_python_runs_it_and_is_patched(setup, case):
    """`astpatch run ARGS` = `python ARGS` (output, traceback, exit status, __main__, sys.argv, sys.path[0]), patched."""
    scene, python, env, with_pth = setup
    write_programs(scene.tmp)
    stdin = PROBE if case == "stdin" else None
    expected = run(python, CASES[case], env, scene.tmp, stdin)
    got = run(python, ["-m", "astpatch", "run", *CASES[case]], env, scene.tmp, stdin)
    fails = CASES[case][-1] == "fail"
    assert expected[0] == (1 if fails else 3) and expected[1].splitlines()[1] == "upstream", expected
    assert ('ValueError: from the program' in expected[2]) == fails
    patched = (expected[0], expected[1].replace("\nupstream\n", "\npatched\n"), expected[2])
    if with_pth:
        assert got == patched
    else:  # started through the bootstrap, which says so in one line
        note, _, rest = got[2].partition("\n")
        assert note.startswith(MISSING) and (got[0], got[1], rest) == patched


def test_python_from_path_and_a_command_from_path(setup):
    """`astpatch run python ARGS` and `astpatch run tool ARGS` (found on PATH, starting Python) run as the shell runs them."""
    scene, python, env, with_pth = setup
    write_programs(scene.tmp)
    expected = run(python, ["prog.py", "p", "fail"], env, scene.tmp)
    got = run(python, ["-m", "astpatch", "run", "python", "prog.py", "p", "fail"], env, scene.tmp)
    patched = (expected[0], expected[1].replace("\nupstream\n", "\npatched\n"), expected[2])
    assert expected[0] == 1 and got[2].startswith(MISSING) != with_pth
    assert (got[0], got[1], got[2] if with_pth else got[2].partition("\n")[2]) == patched

    (scene.tmp / "bin").mkdir()
    tool = scene.tmp / "bin" / "tool"
    tool.write_text(f'#!/bin/sh\necho "tool: $0 $*"\nexec python {scene.tmp / "prog.py"} "$@"\n')
    tool.chmod(0o755)
    expected = run(Path("/bin/sh"), ["-c", 'exec tool "$@"', "sh", "t", "fail"], env, scene.tmp)
    got = run(python, ["-m", "astpatch", "run", "tool", "t", "fail"], env, scene.tmp)
    assert expected[0] == 1 and expected[1].startswith(f"tool: {tool} t fail\n") and "\nupstream\n" in expected[1]
    if with_pth:
        assert got == (expected[0], expected[1].replace("\nupstream\n", "\npatched\n"), expected[2])
    else:  # the tool's Python has no .pth to install astpatch: it runs unpatched, as one line said
        note, _, rest = got[2].partition("\n")
        assert note.startswith(MISSING) and note.endswith("so the Python processes that tool starts are patched only "
                                                          "where astpatch is installed with pip, not here.")
        assert (got[0], got[1], rest) == expected


def test_a_missing_command_or_file_and_the_exit_status(setup):
    """A missing command: one line, 127 as a shell; a missing script: python's own message and status."""
    scene, python, env, with_pth = setup
    assert run(python, ["-m", "astpatch", "run", "no-such-tool", "x"], env, scene.tmp) == (
        127, "", "astpatch run: no-such-tool: command not found\n")
    expected = run(python, ["missing.py"], env, scene.tmp)
    got = run(python, ["-m", "astpatch", "run", "missing.py"], env, scene.tmp)
    assert expected[0] == 2 and "can't open file" in expected[2]
    assert got == expected if with_pth else (got[0], got[1], got[2].partition("\n")[2]) == expected
    nothing = run(python, ["-m", "astpatch", "run"], env, scene.tmp)
    assert nothing[0] == 2 and nothing[2].splitlines() == [
        "astpatch: error: nothing to run: give a script, -m module, -c code or a command, and its arguments"]


SPAWN = r'''
import json, multiprocessing, sys

def patched(_):
    import pickler
    return "ValueError" in pickler.Pickler.dumps.__code__.co_names

if __name__ == "__main__":
    with multiprocessing.get_context(sys.argv[1]).Pool(2) as pool:
        workers = pool.map(patched, range(4))
    print(json.dumps({"parent": patched(0), "workers": workers}))
'''


@pytest.mark.parametrize("start", ["spawn", "forkserver", "fork"])
def test_a_pool_of_workers_runs_a_function_of_the_main_module_and_every_worker_is_patched(setup, start):
    """The program's `__main__` is python's own, so its functions pickle: under -c with fork (spawn and forkserver
    workers cannot import a -c program's functions, with or without astpatch), from a script with every method."""
    scene, python, env, with_pth = setup
    (scene.tmp / "pool.py").write_text(SPAWN)
    program = ["-c", SPAWN, start] if start == "fork" else ["pool.py", start]
    assert run(python, program, env, scene.tmp)[:2] == (0, '{"parent": false, "workers": [false, false, false, false]}\n')
    code, out, err = run(python, ["-m", "astpatch", "run", *program], env, scene.tmp)
    assert code == 0, err
    # Without the .pth, a spawned or forkserver worker is a new interpreter that nothing patches (as the note says).
    workers = "true" if with_pth or start == "fork" else "false"
    assert out == f'{{"parent": true, "workers": [{", ".join([workers] * 4)}]}}\n'
    assert err == ("" if with_pth else err.splitlines()[0] + "\n") and err.startswith(MISSING) != with_pth


def test_astpatch_options_come_before_the_program(setup):
    """--rule, --strict and --rules are astpatch's before PROGRAM, the program's after it; `--` is still accepted."""
    scene, python, env, with_pth = setup
    probe = "import pickler, sys; print('ValueError' in pickler.Pickler.dumps.__code__.co_names, sys.argv[1:])"
    for args in (["--", "-c", probe, "--strict"], ["-c", probe, "--strict"]):
        code, out, err = run(python, ["-m", "astpatch", "run", *args], env, scene.tmp)
        assert (code, out) == (0, "True ['--strict']\n"), err
    other = {k: v for k, v in env.items() if k != "ASTPATCH_RULES"}
    code, out, err = run(python, ["-m", "astpatch", "run", "--rules", str(scene.rule), "--rule", "pickler-valueerror",
                                  "-c", probe, "--rule"], other, scene.tmp)
    assert (code, out) == (0, "True ['--rule']\n"), err
    code, out, err = run(python, ["-m", "astpatch", "run", "--rule", "torch-fxgraph-cache-key-valueerror", "-c", probe],
                         env, scene.tmp)
    assert (code, out) == (0, "False []\n"), err
    scene.module.write_text(scene.module.read_text().replace("def dumps", "def dump"))
    code, out, err = run(python, ["-m", "astpatch", "run", "--strict", "-c", "import pickler"], env, scene.tmp)
    assert code == 1 and "AstpatchError: astpatch: rule pickler-valueerror was not applied to pickler" in err
