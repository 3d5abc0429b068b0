"""Test and demo virtual environments, created once and reused.

Each environment is keyed by its requirements file (with the files it includes) and the
interpreter that runs it, so a second run reuses what the first installed (torch is several GB)
and a changed requirement gets a fresh environment instead of a half-upgraded one. They live in
`.venvs/`, which git ignores; `ASTPATCH_VENV_DIR` moves them elsewhere.

astpatch goes into them as users get it: the sdist is built from the checkout, a wheel from that
sdist, and the wheel is installed; an environment keeps its install while the wheel's content is
unchanged, and gets the new wheel when it changes.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "tests" / "requirements"
VENV_DIR = Path(os.environ.get("ASTPATCH_VENV_DIR") or ROOT / ".venvs")
READY = "astpatch-venv-ready"
# The sha256 of the astpatch wheel installed in an environment.
INSTALLED = "astpatch-installed-wheel"


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


def requirements_text(path: Path) -> bytes:
    """The requirements file at `path` with the files it includes (`-r other.txt`) appended: what the key covers."""
    text = path.read_bytes()
    for line in text.decode().splitlines():
        if line.startswith(("-r ", "--requirement ")):
            text += b"\0" + requirements_text(path.parent / line.split(None, 1)[1].strip())
    return text


def venv_path(name: str, python: str) -> Path:
    requirements = requirements_text(REQUIREMENTS / f"{name}.txt")
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


_built: list[Path] = []


def build_project(log=print) -> Path:
    """Build the sdist from the checkout and a wheel from that sdist, once per process; return the wheel.

    The build front end and backend (tests/requirements/build.txt) run in an environment of their
    own under this interpreter; nothing is written into the checkout.
    """
    if _built:
        return _built[0]
    builder = bin_python(ensure("build", sys.executable, log=log))
    out = Path(tempfile.mkdtemp(prefix="astpatch-dist-"))
    atexit.register(shutil.rmtree, out, True)
    log("[venv] building the sdist, and a wheel from it")
    result = subprocess.run([str(builder), "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        log(result.stdout + result.stderr)
        result.check_returncode()
    (wheel,) = out.glob("astpatch-*.whl")
    _built.append(wheel)
    return wheel


def install_project(venv: Path, log=print) -> None:
    """Install the wheel of build_project() into `venv`, unless that same wheel is installed already.

    The tests then import astpatch and its shipped rules exactly as users get them.
    """
    wheel = build_project(log)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    marker = venv / INSTALLED
    if marker.exists() and marker.read_text().strip() == digest:
        log(f"[venv] {venv.name} has this astpatch wheel already")
        return
    marker.unlink(missing_ok=True)  # an interrupted install is not taken for a complete one
    log(f"[venv] installing {wheel.name} into {venv.name}")
    subprocess.run(
        [str(bin_python(venv)), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--force-reinstall", str(wheel)],
        check=True, cwd=str(venv),
    )
    marker.write_text(digest + "\n")


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
