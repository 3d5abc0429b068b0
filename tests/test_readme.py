"""README.md's example outputs are what running them gives (tools/readme.py), and the demonstration
checks what it needs before it downloads anything (demo/prerequisites.py).

Each environment's examples are checked in the tier that has it: torch 2.10's in torch210, the
released wheels' in wheels, the others in the engine tiers. They show what an installed astpatch
prints (a checkout on sys.path puts its `tests` package there too), so those checks need one.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import clean_env, require_torch

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "readme.py"


def readme_tool(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args, "--python", sys.executable], capture_output=True,
                          text=True, env=clean_env(**env), timeout=1800)


@pytest.mark.installed
def test_the_readme_examples_without_torch_are_what_they_print():
    result = readme_tool("--check", "--env", "pkgfix")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.torch210
@pytest.mark.installed
def test_the_readme_examples_with_torch_210_are_what_they_print():
    require_torch("2.10.0")
    result = readme_tool("--check", "--env", "torch210")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.wheels
@pytest.mark.installed
def test_the_readme_examples_against_the_released_wheels_are_what_they_print():
    wheels = os.environ.get("ASTPATCH_TEST_WHEELS")
    assert wheels, "the wheels tier sets ASTPATCH_TEST_WHEELS"
    result = readme_tool("--check", "--env", "wheels", ASTPATCH_TEST_WHEELS=wheels)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.installed
def test_a_stale_block_is_shown_as_a_diff_and_regenerated(tmp_path):
    readme = (ROOT / "README.md").read_text()
    current = "pkgfix-parse  applied          failed\n"
    assert readme.count(current) == 1
    copy = tmp_path / "README.md"
    copy.write_text(readme.replace(current, "pkgfix-parse  applied          applied\n"))
    checked = readme_tool("--check", "--env", "pkgfix", "--readme", str(copy))
    assert checked.returncode == 1
    assert "-pkgfix-parse  applied          applied\n+pkgfix-parse  applied          failed\n" in checked.stdout
    assert "python3 tools/readme.py --env pkgfix" in checked.stderr
    assert copy.read_text() != readme  # --check writes nothing
    written = readme_tool("--env", "pkgfix", "--readme", str(copy))
    assert written.returncode == 0, written.stderr
    assert copy.read_text() == readme


def test_what_varies_is_normalised_and_a_failing_command_writes_nothing(tmp_path):
    copy = tmp_path / "README.md"
    copy.write_text('<!-- example file: hello.txt -->\n```\nhello\n```\n\n'
                    '<!-- example pkgfix:\n$ cat hello.txt\necho "$HOME/.cache" "$PWD/x" "$PWD" 0x7f0bb00f95c0 1024 bytes\n'
                    '$ python -c "import astpatch; print(\'astpatch\', astpatch.__version__)"\n-->\n```\nold\n```\n')
    assert readme_tool("--env", "pkgfix", "--readme", str(copy)).returncode == 0
    assert copy.read_text().endswith('-->\n```\n$ cat hello.txt\nhello\n~/.cache x . 0x... ... bytes\n'
                                     '$ python -c "import astpatch; print(\'astpatch\', astpatch.__version__)"\n'
                                     'astpatch ...\n```\n')
    broken = "<!-- example pkgfix: $ exit 3 -->\n```\nold\n```\n"
    copy.write_text(broken)
    result = readme_tool("--env", "pkgfix", "--readme", str(copy))
    assert result.returncode != 0 and "`exit 3` exited 3, not 0" in result.stderr
    assert copy.read_text() == broken


# The demonstration's prerequisites.

def prerequisites():
    spec = importlib.util.spec_from_file_location("prerequisites", ROOT / "demo" / "prerequisites.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{text}\n")
    path.chmod(0o755)
    return path


def demo(tmp_path: Path, program: str, **env: str) -> subprocess.CompletedProcess:
    """tools/demo.py (or the demo script) with no compiler found unless `env` gives one, and an index
    that cannot be reached, so a missing check fails at once instead of downloading torch."""
    env.setdefault("PATH", str(tmp_path / "empty-bin"))
    settings = clean_env(ASTPATCH_VENV_DIR=str(tmp_path / "venvs"), PIP_NO_INDEX="1", **env)
    if "CXX" not in env:
        settings.pop("CXX", None)
    return subprocess.run([sys.executable, str(ROOT / program)], capture_output=True, text=True, env=settings,
                          timeout=300)


def test_the_demo_without_a_compiler_says_what_to_install_before_downloading(tmp_path):
    result = demo(tmp_path, "tools/demo.py")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "tools/demo.py: torch.compile needs a C++ compiler and finds none (no g++ on PATH): install one "
        "(Debian/Ubuntu: apt install g++; Fedora: dnf install gcc-c++; macOS: xcode-select --install), "
        "or set CXX to one"]
    assert not (tmp_path / "venvs").exists()  # nothing made, nothing downloaded


def test_a_cxx_that_does_not_run_is_named_and_a_compiler_on_path_proposed(tmp_path):
    bin_dir = tmp_path / "bin"
    script(bin_dir / "c++", "echo 'c++ (fake) 1.0'")
    result = demo(tmp_path, "tools/demo.py", PATH=str(bin_dir), CXX=str(tmp_path / "nowhere" / "g++"))
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert f"(CXX={tmp_path / 'nowhere' / 'g++'} does not run)" in line and line.endswith(", or set CXX=c++")
    assert not (tmp_path / "venvs").exists()


def test_the_demonstration_itself_checks_the_compiler_before_importing_torch(tmp_path):
    result = demo(tmp_path, "demo/fxgraph_cache_valueerror.py")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()  # one line, no traceback (this environment has no torch)
    assert line.startswith("torch.compile needs a C++ compiler and finds none (no g++ on PATH)")


def test_a_compiler_that_runs_is_enough(tmp_path, monkeypatch):
    check = prerequisites()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("CXX", str(script(tmp_path / "bin" / "clang++", "echo 'clang version 18'")))
    assert check.compiler_problem() is None
    monkeypatch.setenv("CXX", str(script(tmp_path / "bin" / "broken", "exit 1")))  # found, but fails `--version`
    assert "does not run" in check.compiler_problem()


def test_a_python_whose_venv_cannot_install_pip_is_told_what_to_install(tmp_path):
    # As on Debian or Ubuntu without python3-venv, which ships ensurepip: the module is not there.
    (tmp_path / "hidden" / "ensurepip").mkdir(parents=True)
    (tmp_path / "hidden" / "ensurepip" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'ensurepip'\", name='ensurepip')\n")
    python = script(tmp_path / "python", f'PYTHONPATH={tmp_path / "hidden"} exec {sys.executable} "$@"')
    check = prerequisites()
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert check.venv_problem(str(python)) == (
        f"{python} has no venv or ensurepip module, so it cannot create an environment with pip: install "
        f"Python's venv module "
        f"(Debian/Ubuntu: apt install python{version}-venv)")
    assert check.venv_problem(sys.executable) is None


def test_too_little_free_disk_is_named_with_the_directory_checked(tmp_path):
    check = prerequisites()
    problem = check.disk_problem(tmp_path / "venvs" / "torch210", needed=10**18)
    assert problem.startswith(f"the torch 2.10 environment needs about 1000000000 GB free in {tmp_path}, which has ")
    assert check.disk_problem(tmp_path / "venvs" / "torch210", needed=1) is None
