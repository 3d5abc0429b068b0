"""Test and demo virtual environments, created once and reused.

Each environment is keyed by its requirements file and the interpreter that runs it, so a
second run reuses what the first installed (torch is several GB) and a changed requirement
gets a fresh environment instead of a half-upgraded one. They live in `.venvs/`, which git
ignores; `ASTPATCH_VENV_DIR` moves them elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "tests" / "requirements"
VENV_DIR = Path(os.environ.get("ASTPATCH_VENV_DIR") or ROOT / ".venvs")
READY = "astpatch-venv-ready"


def find_python(version: str) -> str | None:
    """Return a working interpreter for `version` ("3.10"), from pyenv or PATH, or None."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = [str(p) for p in sorted((pyenv_root / "versions").glob(f"{version}.*/bin/python{version}"))]
    candidates.reverse()
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        # A pyenv shim for a version that is not selected exists on PATH but does not run.
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


def interpreter_id(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0], sys.implementation.cache_tag)"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def venv_path(name: str, python: str) -> Path:
    requirements = (REQUIREMENTS / f"{name}.txt").read_bytes()
    ident = interpreter_id(python)
    digest = hashlib.sha256(requirements + b"\0" + ident.encode()).hexdigest()[:10]
    tag = ident.split()[1]
    return VENV_DIR / f"{name}-{tag}-{digest}"


def bin_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure(name: str, python: str, log=print) -> Path:
    """Create (or reuse) the environment for requirements `name` under `python`."""
    venv = venv_path(name, python)
    if (venv / READY).exists():
        log(f"[venv] reusing {venv.name}")
        return venv
    if venv.exists():
        shutil.rmtree(venv)  # an interrupted earlier build: start again
    log(f"[venv] creating {venv.name} (requirements: tests/requirements/{name}.txt)")
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    py = str(bin_python(venv))
    subprocess.run(
        [py, "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS / f"{name}.txt")],
        check=True,
    )
    (venv / READY).write_text(interpreter_id(python) + "\n")
    return venv


def install_project(venv: Path, log=print) -> None:
    """Install this checkout into `venv` as a regular (non-editable) wheel install.

    The tests then import astpatch and its shipped rules exactly as users get them.
    """
    py = str(bin_python(venv))
    log(f"[venv] installing astpatch from the checkout into {venv.name}")
    # setuptools builds in the checkout's build/, which keeps files deleted or moved since the
    # last build and would ship them: start from an empty one.
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    subprocess.run(
        [py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--force-reinstall", "--no-cache-dir", str(ROOT)],
        check=True, cwd=str(venv),
    )


WHEEL_DIR = VENV_DIR / "wheels"


def fetch_wheels(requirements: list[str], log=print) -> Path:
    """Download wheels (no dependencies) into .venvs/wheels once; later runs reuse them."""
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    for requirement in requirements:
        name, version = requirement.split("==")
        if any(WHEEL_DIR.glob(f"{name}-{version}-*.whl")) or any(WHEEL_DIR.glob(f"{name}-{version}+*.whl")):
            continue
        log(f"[wheels] downloading {requirement}")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "--dest", str(WHEEL_DIR), requirement],
            check=True,
        )
    return WHEEL_DIR
