"""The main demonstration: a real torch 2.10 `torch.compile` failure, fixed by astpatch.

    python3 tools/demo.py

Creates (once, then reuses) a virtual environment with torch 2.10.0, installs astpatch into it
(the wheel built from this checkout's sdist), and runs demo/fxgraph_cache_valueerror.py there. It first checks what it needs besides
Python and pip (demo/prerequisites.py: a C++ compiler for torch.compile; for a new environment,
Python's venv module and the disk space), and stops with one line for each that is missing,
saying what to install, before it downloads anything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import venvs  # noqa: E402

sys.path.insert(0, str(venvs.ROOT / "demo"))
import prerequisites  # noqa: E402


def main() -> int:
    python = venvs.find_python("3.11") or sys.executable
    venv = venvs.venv_path("torch210", python)
    problems = [prerequisites.compiler_problem()]
    if not (venv / venvs.READY).exists():
        problems += [prerequisites.venv_problem(python), prerequisites.disk_problem(venv)]
    for problem in filter(None, problems):
        print(f"tools/demo.py: {problem}", file=sys.stderr)
    if any(problems):
        return 1
    venv = venvs.ensure("torch210", python)
    venvs.install_project(venv)
    script = venvs.ROOT / "demo" / "fxgraph_cache_valueerror.py"
    return subprocess.run([str(venvs.bin_python(venv)), str(script)], cwd=str(venv)).returncode


if __name__ == "__main__":
    raise SystemExit(main())
