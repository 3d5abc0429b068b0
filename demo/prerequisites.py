"""What the demonstration needs besides Python and pip, checked before anything is downloaded.

Each check returns None, or one line: what is missing and what to install. tools/demo.py checks
all three before it makes the torch environment; the demonstration itself checks the compiler.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# What the torch 2.10 environment takes on disk (about 7 GB installed), with room for pip's download.
TORCH_ENVIRONMENT_BYTES = 9 * 10**9


def compiler_problem() -> str | None:
    """torch.compile's CPU backend (inductor) compiles C++ with $CXX, else g++ (clang++ on macOS),
    and gives up unless `COMPILER --version` runs: the same test here."""
    chosen = os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")
    found = shutil.which(chosen)
    try:
        if found and subprocess.run([found, "--version"], capture_output=True, timeout=60).returncode == 0:
            return None
    except (OSError, subprocess.SubprocessError):
        pass
    what = f"CXX={chosen} does not run" if os.environ.get("CXX") else f"no {chosen} on PATH"
    other = next((c for c in ("c++", "clang++", "g++") if c != chosen and shutil.which(c)), None)
    instead = f", or set CXX={other}" if other else ", or set CXX to one"
    return (f"torch.compile needs a C++ compiler and finds none ({what}): install one "
            f"(Debian/Ubuntu: apt install g++; Fedora: dnf install gcc-c++; macOS: xcode-select --install){instead}")


def venv_problem(python: str) -> str | None:
    """`python -m venv` needs the venv and ensurepip modules; Debian and Ubuntu ship ensurepip apart,
    in python3.X-venv."""
    if subprocess.run([python, "-c", "import ensurepip, venv"], capture_output=True).returncode == 0:
        return None
    version = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2], sep='.')"],
                             capture_output=True, text=True).stdout.strip() or "3"
    return (f"{python} has no venv or ensurepip module, so it cannot create an environment with pip: install "
            f"Python's venv module (Debian/Ubuntu: apt install python{version}-venv)")


def disk_problem(directory: Path, needed: int = TORCH_ENVIRONMENT_BYTES) -> str | None:
    """Enough free space where the environment will be made (its nearest existing parent)."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free >= needed:
        return None
    return (f"the torch 2.10 environment needs about {needed / 1e9:.0f} GB free in {existing}, which has "
            f"{free / 1e9:.1f} GB: free some, or set ASTPATCH_VENV_DIR to a directory on a larger disk")
